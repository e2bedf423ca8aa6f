"""The receiver's OpenAPI 3.1 description, served at /openapi.json: what outside tools
(and schemathesis, in the tests) need to call and check the endpoints `forewarn serve`
answers. Kept beside the receiver and checked against it by tests/test_receiver_api.py.
Long because it is one literal document: every endpoint, its fields and its answers."""

from __future__ import annotations

from typing import Any

from forewarn import __version__

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}
_RETRY = {
    "description": "Busy: too many writes waiting for the store; retry after the delay.",
    "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
    "content": {"application/json": {"schema": _ERROR}},
}


def _error(why: str) -> dict[str, Any]:
    return {"description": why, "content": {"application/json": {"schema": _ERROR}}}


def _twilio_form(required: list[str], optional: list[str]) -> dict[str, Any]:
    names = required + optional
    return {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    # Twilio sends no NUL, and PostgreSQL's text refuses one: such a form
                    # is refused (400).
                    "properties": {name: _NO_NUL for name in names},
                    "required": required,
                }
            }
        },
    }


_NO_NUL = {"type": "string", "pattern": "^[^\\u0000]*$"}
_TWILIO_SIGNATURE = {
    "name": "X-Twilio-Signature",
    "in": "header",
    "required": True,
    "description": "HMAC-SHA1 of the public URL and form, keyed by TWILIO_AUTH_TOKEN.",
    "schema": {"type": "string"},
}
_IDEMPOTENCY = {
    "name": "I-Twilio-Idempotency-Token",
    "in": "header",
    "required": False,
    "description": "Twilio's retry token: a request seen before is not handled again.",
    "schema": {"type": "string"},
}


def _signed_link(key: str, link: str) -> list[dict[str, Any]]:
    """The path parameters of a link sent in an email: whose it is, and its HMAC."""
    return [
        {"name": key, "in": "path", "required": True, "schema": {"type": "string"}},
        {
            "name": "signature",
            "in": "path",
            "required": True,
            "description": f"The {link}'s HMAC, as sent in the email.",
            "schema": {"type": "string"},
        },
    ]


_UNSUBSCRIBE_PARAMS = _signed_link("customer", "link")
_HTML = {"text/html": {"schema": {"type": "string"}}}
_FOLLOW_PARAMS = _signed_link("follower", "confirmation link")


_SAFE_PARAMS = [
    {"name": "customer", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "incident", "in": "path", "required": True, "schema": {"type": "string"}},
    _signed_link("customer", "confirmation link")[1],
]


def _page(why: str) -> dict[str, Any]:
    return {"description": why, "content": _HTML}


_FOLLOW_OFF = _error("The site's forms are off: FOREWARN_PUBLIC_URL is not set.")
# A page when the follow is gone (used, stopped); the error when following is off.
_GONE = {
    "description": "Used already or stopped (a page), or following is off (an error).",
    "content": {**_HTML, "application/json": {"schema": _ERROR}},
}


# No such customer or incident (a page), or signed links are off (an error).
_GONE_SAFE = {
    "description": "No such customer or incident (a page), or signed links are off (an error).",
    "content": {**_HTML, "application/json": {"schema": _ERROR}},
}


def description() -> dict[str, Any]:
    """The OpenAPI document of the receiver's own endpoints (not the static site's files)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "forewarn receiver",
            "version": __version__,
            "description": (
                "Webhooks in from monitoring and Twilio, one-click unsubscribes, following a place."
            ),
        },
        "paths": {
            "/hooks/alertmanager": {
                "post": {
                    "summary": "Alertmanager webhook (payload version 4); stored before the 200.",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "version": {"type": "string"},
                                        "alerts": {"type": "array", "items": {"type": "object"}},
                                        "truncatedAlerts": {"type": "integer"},
                                    },
                                    "required": ["alerts"],
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Stored; read by the next cycle.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {"stored": {"type": "integer"}},
                                        "required": ["stored"],
                                    }
                                }
                            },
                        },
                        "400": _error("Not an Alertmanager payload; quarantined with the reason."),
                        "401": _error("Missing or wrong bearer token."),
                        "404": _error("Receiver off: FOREWARN_WEBHOOK_TOKEN is not set."),
                        "413": _error("Body larger than FOREWARN_MAX_BODY_BYTES."),
                        "503": _RETRY,
                    },
                }
            },
            "/hooks/twilio/inbound": {
                "post": {
                    "summary": "An inbound text (STOP, START, HELP, STATUS, or a reply).",
                    "parameters": [_TWILIO_SIGNATURE, _IDEMPOTENCY],
                    "requestBody": _twilio_form(["From", "Body"], ["MessageSid", "To"]),
                    "responses": {
                        "200": {
                            "description": "TwiML: the answer, if any.",
                            "content": {"application/xml": {"schema": {"type": "string"}}},
                        },
                        "400": _error("Not a form, or From or Body missing."),
                        "403": _error("Missing or wrong X-Twilio-Signature."),
                        "404": _error("Twilio hooks off: no Twilio credentials."),
                        "413": _error("Body too large."),
                    },
                }
            },
            "/hooks/twilio/status": {
                "post": {
                    "summary": "A message status callback.",
                    "parameters": [_TWILIO_SIGNATURE, _IDEMPOTENCY],
                    "requestBody": _twilio_form(
                        ["MessageSid", "MessageStatus"], ["ErrorCode", "AccountSid"]
                    ),
                    "responses": {
                        "204": {"description": "Recorded."},
                        "400": _error("Not a form, or MessageSid or MessageStatus missing."),
                        "403": _error("Missing or wrong X-Twilio-Signature."),
                        "404": _error("Twilio hooks off: no Twilio credentials."),
                        "413": _error("Body too large."),
                        "503": _RETRY,
                    },
                }
            },
            "/hooks/twilio/voice/status": {
                "post": {
                    "summary": "A call's status callback: how it ended.",
                    "parameters": [_TWILIO_SIGNATURE, _IDEMPOTENCY],
                    "requestBody": _twilio_form(
                        ["CallSid", "CallStatus"], ["AccountSid", "CallDuration", "To"]
                    ),
                    "responses": {
                        "204": {"description": "Recorded."},
                        "400": _error("Not a form, or CallSid or CallStatus missing."),
                        "403": _error("Missing or wrong X-Twilio-Signature."),
                        "404": _error("Twilio hooks off: no Twilio credentials."),
                        "413": _error("Body too large."),
                        "503": _RETRY,
                    },
                }
            },
            "/hooks/twilio/voice/gather": {
                "post": {
                    "summary": "A key pressed during a call: the customer heard it.",
                    "parameters": [_TWILIO_SIGNATURE, _IDEMPOTENCY],
                    "requestBody": _twilio_form(["CallSid", "Digits"], ["AccountSid", "From"]),
                    "responses": {
                        "200": {
                            "description": "TwiML: thanks, and goodbye.",
                            "content": {"application/xml": {"schema": {"type": "string"}}},
                        },
                        "400": _error("Not a form, or CallSid or Digits missing."),
                        "403": _error("Missing or wrong X-Twilio-Signature."),
                        "404": _error("Twilio hooks off: no Twilio credentials."),
                        "413": _error("Body too large."),
                    },
                }
            },
            "/unsubscribe/{customer}/{signature}": {
                "get": {
                    "summary": "The confirmation page with a button; changes nothing.",
                    "parameters": _UNSUBSCRIBE_PARAMS,
                    "responses": {
                        "200": {"description": "The page.", "content": _HTML},
                        "403": _error("Not a valid link."),
                        "404": _error("Unsubscribe links are off."),
                    },
                },
                "post": {
                    "summary": "Unsubscribe (RFC 8058 one-click, or the page's button).",
                    "parameters": _UNSUBSCRIBE_PARAMS,
                    "responses": {
                        "200": {"description": "Unsubscribed.", "content": _HTML},
                        "403": _error("Not a valid link."),
                        "404": _error("No such customer, or unsubscribe links are off."),
                    },
                },
            },
            "/follow": {
                "post": {
                    "summary": "Ask to follow a place (the site's form); pending until confirmed.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "contact": {
                                            "type": "string",
                                            "description": "An email address or a mobile number.",
                                        },
                                        "place": {
                                            "type": "string",
                                            "description": "A postcode, address or incident id.",
                                        },
                                        "locale": {"enum": ["en", "es"]},
                                    },
                                    "required": ["contact", "place"],
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": _page(
                            "Asked: the same page whether or not the place exists; a "
                            "confirmation goes to the contact."
                        ),
                        "400": _page("Not a form, or no contact, a malformed one, or no place."),
                        "404": _FOLLOW_OFF,
                        "413": _page("Body larger than a follow form."),
                        "503": _RETRY,
                    },
                }
            },
            "/follow/confirm/{follower}/{signature}": {
                "get": {
                    "summary": "The confirmation page with its button; changes nothing.",
                    "parameters": _FOLLOW_PARAMS,
                    "responses": {
                        "200": _page("The page."),
                        "403": _page("Not a valid link."),
                        "404": _GONE,
                    },
                },
                "post": {
                    "summary": "Confirm the follow (the page's button).",
                    "parameters": _FOLLOW_PARAMS,
                    "responses": {
                        "200": _page("Confirmed: the place is followed."),
                        "403": _page("Not a valid link."),
                        "404": _GONE,
                    },
                },
            },
            "/report": {
                "post": {
                    "summary": (
                        "Report a problem at an address (the site's form): a signal for "
                        "detection; with a contact, a follow of it asked, pending until "
                        "confirmed."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "place": {
                                            "type": "string",
                                            "description": "The address, e.g. 45 Mill Road.",
                                        },
                                        "number": {
                                            "type": "string",
                                            "description": "The house number (with postcode).",
                                        },
                                        "postcode": {"type": "string"},
                                        "contact": {
                                            "type": "string",
                                            "description": (
                                                "Optional: an email address or a mobile "
                                                "number, to follow the place once confirmed."
                                            ),
                                        },
                                        "locale": {"enum": ["en", "es"]},
                                    },
                                    "anyOf": [
                                        {"required": ["place"]},
                                        {"required": ["number", "postcode"]},
                                    ],
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": _page(
                            "Taken: the same page whatever the report came to (or a limit)."
                        ),
                        "400": _page("Not a form, no place, or a malformed contact."),
                        "404": _FOLLOW_OFF,
                        "413": _page("Body larger than a form."),
                        "503": _RETRY,
                    },
                }
            },
            "/at-risk/confirm/{customer}/{incident}/{signature}": {
                "get": {
                    "summary": "An at-risk customer's confirmation page; changes nothing.",
                    "parameters": _SAFE_PARAMS,
                    "responses": {
                        "200": _page("The page with its button."),
                        "403": _page("Not a valid link."),
                        "404": _GONE_SAFE,
                    },
                },
                "post": {
                    "summary": "They have our message (the page's button): no visit needed.",
                    "parameters": _SAFE_PARAMS,
                    "responses": {
                        "200": _page("Confirmed."),
                        "403": _page("Not a valid link."),
                        "404": _GONE_SAFE,
                    },
                },
            },
            "/healthz": {
                "get": {
                    "summary": "The receiver is up (asks nothing of the store).",
                    "responses": {
                        "200": {
                            "description": "Up.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {"status": {"const": "ok"}},
                                        "required": ["status"],
                                    }
                                }
                            },
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This description.",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
