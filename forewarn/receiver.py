"""The HTTP receiver `forewarn serve` runs: webhooks in (stored durably before the 2xx),
Twilio's inbound texts and status callbacks (signed, deduplicated), one-click email
unsubscribes, the site's forms (`forewarn.receiver_forms`), and the published site for
local use; its OpenAPI description is served at /openapi.json (`forewarn.receiver_api`).

Starlette's own shape: the endpoints are module-level functions, and what they need (the
store, tokens, the clock, the pool that writes) is the app's `state.receiver`."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl

from sqlalchemy.engine import Connection, Engine
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from forewarn import receiver_forms as forms
from forewarn.channels import email, sms, voice
from forewarn.channels.unsubscribe import verify
from forewarn.feeds import alertmanager
from forewarn.feeds.inbox import quarantine_rejects, store_payload
from forewarn.feeds.safejson import Unreadable, loads
from forewarn.feeds.signal import Reject
from forewarn.incidents import callbacks
from forewarn.incidents.replies import Voice, handle_reply, opt_out
from forewarn.receiver_api import description
from forewarn.receiver_forms import FollowDesk
from forewarn.receiver_io import BodyTooLarge, WritePool, read_limited
from forewarn.store import first_seen, now_utc, writing
from forewarn.texts import environment


@dataclass(frozen=True, slots=True)
class TwilioHooks:
    """What the Twilio endpoints need: the token that signs requests, the public URL
    Twilio calls (the signature covers it), and the voice that answers."""

    auth_token: str
    public_url: str
    voice: Voice
    # The operator's phone region: the language a call's thanks is said in.
    region: str = "US"

    def __repr__(self) -> str:
        return f"TwilioHooks(public_url={self.public_url!r})"


@dataclass(frozen=True, slots=True)
class Receiver:
    """What the endpoints need, held on the app's state: `webhook_token` None turns the
    Alertmanager hook off, `twilio` None the Twilio hooks, `unsubscribe_key` None the
    unsubscribe links. The store is used synchronously, so every write happens in a
    thread of `writers`: never on the event loop, never in the threads the site uses."""

    engine: Engine
    webhook_token: str | None
    max_body_bytes: int
    clock: Callable[[], datetime]
    twilio: TwilioHooks | None
    unsubscribe_key: bytes | None
    writers: WritePool
    follows: FollowDesk | None = None

    def write(self, work: Callable[[Connection], Response], what: str) -> Response:
        """Run `work` in a transaction of the store's one way of writing (busy retry)."""
        return writing(self.engine, work, what)


def create_app(
    engine: Engine,
    webhook_token: str | None,
    max_body_bytes: int,
    site_dir: Path | None = None,
    clock: Callable[[], datetime] = now_utc,
    twilio: TwilioHooks | None = None,
    unsubscribe_key: bytes | None = None,
    writers: WritePool | None = None,
    follows: FollowDesk | None = None,
) -> Starlette:
    """The receiver's ASGI app (see `Receiver` for what each setting turns off)."""
    routes: list[Route | Mount] = [
        Route("/hooks/alertmanager", alertmanager_hook, methods=["POST"]),
        Route("/hooks/twilio/inbound", twilio_inbound, methods=["POST"]),
        Route("/hooks/twilio/status", twilio_status, methods=["POST"]),
        Route("/hooks/twilio/voice/status", twilio_call_status, methods=["POST"]),
        Route("/hooks/twilio/voice/gather", twilio_key_pressed, methods=["POST"]),
        Route("/unsubscribe/{customer}/{signature}", unsubscribe, methods=["GET", "POST"]),
        Route("/follow", forms.follow, methods=["POST"]),
        Route(
            "/follow/confirm/{follower}/{signature}", forms.confirm_follow, methods=["GET", "POST"]
        ),
        Route("/report", forms.report, methods=["POST"]),
        Route(
            "/at-risk/confirm/{customer}/{incident}/{signature}",
            forms.confirm_safe,
            methods=["GET", "POST"],
        ),
        Route("/healthz", health, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    if site_dir is not None:
        # The page's JSON, feeds and maps are read by other sites (an operator's home page
        # embedding the status, a partner's dashboard), as Statuspage's API is: any origin
        # may read them. Only the site: no hook answers a browser on another origin.
        site = StaticFiles(directory=site_dir, html=True, check_dir=False)
        shared = CORSMiddleware(site, allow_origins=["*"], allow_methods=["GET", "HEAD"])
        routes.append(Mount("/", shared))
    app = Starlette(routes=routes)
    app.state.receiver = Receiver(
        engine, webhook_token, max_body_bytes, clock, twilio, unsubscribe_key,
        writers if writers is not None else WritePool(), follows,
    )  # fmt: skip
    return app


def _receiver(request: Request) -> Receiver:
    receiver: Receiver = request.app.state.receiver
    return receiver


# --- Alertmanager --------------------------------------------------------------------


async def alertmanager_hook(request: Request) -> Response:
    """Keep a webhook payload for the next cycle (or quarantine it, with a 400)."""
    r = _receiver(request)
    if r.webhook_token is None:
        return JSONResponse({"error": "receiver off: FOREWARN_WEBHOOK_TOKEN is not set"}, 404)
    given = request.headers.get("authorization", "")
    expected = f"Bearer {r.webhook_token}"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return JSONResponse({"error": "missing or wrong bearer token"}, 401)
    try:
        body = await read_limited(request, r.max_body_bytes)
    except BodyTooLarge:
        return JSONResponse({"error": f"body larger than {r.max_body_bytes} bytes"}, 413)
    return await r.writers.run(_keep_webhook, r, body)


def _keep_webhook(r: Receiver, body: bytes) -> Response:
    reason = _malformed(body)
    now = r.clock()

    def work(conn: Connection) -> Response:
        if reason is not None:
            quarantine_rejects(conn, [Reject.of(alertmanager.SOURCE, reason, body)], now)
            return JSONResponse({"error": reason}, 400)
        return JSONResponse({"stored": store_payload(conn, alertmanager.SOURCE, body, now)})

    return r.write(work, "alertmanager webhook")


# --- Twilio ----------------------------------------------------------------------------


async def _twilio_form(
    request: Request, what: str, required: tuple[str, str]
) -> tuple[Response | None, dict[str, str]]:
    """Check size, form, signature and the `required` fields of `what` Twilio sends; on
    success the caller holds the parsed form."""
    r = _receiver(request)
    if r.twilio is None:
        return JSONResponse({"error": "Twilio hooks off: no Twilio credentials"}, 404), {}
    try:
        body = await read_limited(request, min(r.max_body_bytes, 64_000))
    except BodyTooLarge:
        return JSONResponse({"error": "body too large"}, 413), {}
    try:
        form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
    except (UnicodeDecodeError, ValueError):
        return JSONResponse({"error": "body is not a form"}, 400), {}
    # Twilio signs the URL it called, so rebuild it from the public URL, not the Host.
    url = r.twilio.public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    signature = request.headers.get("x-twilio-signature", "")
    if not sms.signed_by_twilio(r.twilio.auth_token, url, form, signature):
        return JSONResponse({"error": "missing or wrong X-Twilio-Signature"}, 403), {}
    if any("\x00" in key or "\x00" in value for key, value in form.items()):
        # Twilio sends none, and PostgreSQL's text refuses one: refused, nothing stored
        return JSONResponse({"error": "body holds a NUL character"}, 400), {}
    if any(name not in form for name in required):
        return JSONResponse({"error": f"{what} needs {' and '.join(required)}"}, 400), {}
    return None, form


def _first_time(conn: Connection, request: Request, now: datetime, *names: str) -> bool:
    """False when this request was handled before: by Twilio's idempotency token (a
    retry), or by `names` (the message's own SID: a captured, signed request sent again
    with a new token, since Twilio's signature carries no nonce)."""
    given = request.headers.get("i-twilio-idempotency-token") or ""
    return first_seen(conn, [given, *names], now)


async def twilio_inbound(request: Request) -> Response:
    """An inbound text: recorded, acted on (STOP, START, HELP, OUT...), answered in TwiML."""
    refused, form = await _twilio_form(request, "an inbound message", ("From", "Body"))
    if refused is not None:
        return refused
    r = _receiver(request)
    # Never refused: a STOP must not be lost, and Twilio retries only when told to.
    return await r.writers.run(_answer_inbound, r, request, form, refusable=False)


def _answer_inbound(r: Receiver, request: Request, form: dict[str, str]) -> Response:
    assert r.twilio is not None
    voice = r.twilio.voice
    now = r.clock()
    sid = form.get("MessageSid")

    def work(conn: Connection) -> Response:
        reply = None
        if _first_time(conn, request, now, f"sid:{sid}" if sid else ""):
            inbox_id = callbacks.keep(conn, callbacks.INBOUND_SOURCE, form, now)
            reply = handle_reply(
                conn, sms.CHANNEL.name, form["From"], form["Body"], sid, now, voice
            )
            callbacks.handled(conn, [inbox_id], now)
        return Response(sms.answer(reply), 200, media_type="application/xml")

    return r.write(work, "inbound text")


async def twilio_status(request: Request) -> Response:
    """A status callback: the ledger row it names is marked delivered or failed."""
    refused, form = await _twilio_form(
        request, "a status callback", ("MessageSid", "MessageStatus")
    )
    if refused is not None:
        return refused
    r = _receiver(request)
    return await r.writers.run(_apply_status, r, request, form)


def _apply_status(r: Receiver, request: Request, form: dict[str, str]) -> Response:
    now = r.clock()

    def work(conn: Connection) -> Response:
        if _first_time(conn, request, now):
            inbox_id = callbacks.keep(conn, callbacks.STATUS_SOURCE, form, now)
            applied = callbacks.apply_status(
                conn, form["MessageSid"], form["MessageStatus"], form.get("ErrorCode"), now
            )
            if applied:
                callbacks.handled(conn, [inbox_id], now)
        return Response(status_code=204)

    return r.write(work, "status callback")


async def twilio_call_status(request: Request) -> Response:
    """A call's status callback: how it ended, on the ledger row of the call."""
    refused, form = await _twilio_form(request, "a call status callback", ("CallSid", "CallStatus"))
    if refused is not None:
        return refused
    r = _receiver(request)
    return await r.writers.run(_apply_call_status, r, request, form)


def _apply_call_status(r: Receiver, request: Request, form: dict[str, str]) -> Response:
    now = r.clock()

    def work(conn: Connection) -> Response:
        if _first_time(conn, request, now, f"call:{form['CallSid']}:{form['CallStatus']}"):
            inbox_id = callbacks.keep(conn, callbacks.CALL_STATUS_SOURCE, form, now)
            if callbacks.apply_call_status(conn, form["CallSid"], form["CallStatus"], now):
                callbacks.handled(conn, [inbox_id], now)
        return Response(status_code=204)

    return r.write(work, "call status callback")


async def twilio_key_pressed(request: Request) -> Response:
    """A key pressed during one of our calls (the gather's action): the customer heard it."""
    refused, form = await _twilio_form(request, "a key press", ("CallSid", "Digits"))
    if refused is not None:
        return refused
    r = _receiver(request)
    # Never refused: an at-risk customer's confirmation must not be lost.
    return await r.writers.run(_key_pressed, r, request, form, refusable=False)


def _key_pressed(r: Receiver, request: Request, form: dict[str, str]) -> Response:
    assert r.twilio is not None
    region = r.twilio.region
    now = r.clock()

    def work(conn: Connection) -> Response:
        locale = None
        if form["Digits"].strip():
            inbox_id = callbacks.keep(conn, callbacks.KEY_SOURCE, form, now)
            locale = callbacks.key_pressed(conn, form["CallSid"], now)
            callbacks.handled(conn, [inbox_id], now)
        # A press confirms only the check of the call's own customer and incident, so one
        # sent again (a replay) confirms nothing new; a call not ours hears only goodbye.
        return Response(voice.thanks(locale or "en", region), 200, media_type="application/xml")

    return r.write(work, "key press")


# --- Unsubscribe links, health, the description --------------------------------------


async def unsubscribe(request: Request) -> Response:
    """A signed unsubscribe link: the page with its button, or (POST) the opt-out."""
    r = _receiver(request)
    if r.unsubscribe_key is None:
        return JSONResponse({"error": "unsubscribe links are off"}, 404)
    customer_id = request.path_params["customer"]
    if not verify(r.unsubscribe_key, customer_id, request.path_params["signature"]):
        return JSONResponse({"error": "this unsubscribe link is not valid"}, 403)
    if request.method != "POST":
        # RFC 8058: only a POST unsubscribes. A GET or a HEAD (a mail scanner, a link
        # preview) gets the page with the button, and changes nothing.
        return _page("unsubscribe", action=request.url.path)
    return await r.writers.run(_opt_out, r, customer_id, refusable=False)


def _opt_out(r: Receiver, customer_id: str) -> Response:
    def work(conn: Connection) -> Response:
        if not opt_out(conn, customer_id, email.CHANNEL.name, r.clock()):
            return JSONResponse({"error": "no such customer"}, 404)
        return _page("unsubscribed")

    return r.write(work, "unsubscribe")


def _page(name: str, **values: str) -> HTMLResponse:
    """One of the receiver's own pages, from templates/receiver/ (escaped as HTML)."""
    return HTMLResponse(environment().get_template(f"receiver/{name}.html.j2").render(values))


# --- Health, the description ----------------------------------------------------


async def health(request: Request) -> Response:
    """Alive and answering; asks nothing of the store (`forewarn status` does that)."""
    return JSONResponse({"status": "ok"})


async def openapi(request: Request) -> Response:
    """The receiver's OpenAPI description."""
    return JSONResponse(description())


def _malformed(body: bytes) -> str | None:
    """Why a webhook body cannot be an Alertmanager payload, or None if it may be one."""
    try:
        payload = loads(body)
    except Unreadable as err:
        return f"body is {err}"
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        return "body is not an Alertmanager payload (an object with an alerts list)"
    return None
