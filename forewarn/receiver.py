"""The HTTP receiver `forewarn serve` runs: webhooks in (stored durably before the 2xx),
Twilio's inbound texts and status callbacks (signed, deduplicated), one-click email
unsubscribes, and the published site for local use; its OpenAPI description is served
at /openapi.json (`forewarn.receiver_api`).

Starlette's own shape: the endpoints are module-level functions, and what they need (the
store, tokens, the clock, the pool that writes) is the app's `state.receiver`.

Long because every endpoint the receiver answers is here, beside the routes that name
them (following a place among them: the form and its confirmation link)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import anyio
import anyio.to_thread
from sqlalchemy.engine import Connection, Engine
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from forewarn.channels import email, sms
from forewarn.channels.unsubscribe import verify
from forewarn.feeds import alertmanager
from forewarn.feeds.inbox import quarantine_rejects, store_payload
from forewarn.feeds.safejson import Unreadable, loads
from forewarn.feeds.signal import Reject
from forewarn.incidents import callbacks, followers
from forewarn.incidents.replies import Voice, handle_reply, opt_out
from forewarn.notifiers.confirmations import confirms
from forewarn.receiver_api import description
from forewarn.store import first_seen, now_utc, writing
from forewarn.texts import environment, say


@dataclass(frozen=True, slots=True)
class TwilioHooks:
    """What the Twilio endpoints need: the token that signs requests, the public URL
    Twilio calls (the signature covers it), and the voice that answers."""

    auth_token: str
    public_url: str
    voice: Voice

    def __repr__(self) -> str:
        return f"TwilioHooks(public_url={self.public_url!r})"


# Threads the hooks that write to the store share, and how many more requests may wait
# for one; beyond that a hook answers 503 with Retry-After. The site, the health check
# and the description keep Starlette's own pool, so a burst never starves them.
WRITER_THREADS = 4
WRITERS_WAITING = 64
RETRY_AFTER_S = 5


class WritePool:
    """A bounded pool for the handlers that write: a burst waits here, or is told to
    come back later, instead of filling the pool the static pages share."""

    def __init__(self, threads: int = WRITER_THREADS, waiting: int = WRITERS_WAITING) -> None:
        self._limiter = anyio.CapacityLimiter(threads)
        self._most = threads + waiting
        self._busy = 0  # only touched on the event loop: no lock needed

    async def run(
        self, work: Callable[..., Response], *args: Any, refusable: bool = True
    ) -> Response:
        """Run `work(*args)` on one of the pool's threads, or answer 503 when full; what
        is not `refusable` (a customer's text, an unsubscribe) waits its turn instead."""
        if refusable and self._busy >= self._most:
            return JSONResponse(
                {"error": "busy: try again shortly"},
                503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self._busy += 1
        try:
            return await anyio.to_thread.run_sync(work, *args, limiter=self._limiter)
        finally:
            self._busy -= 1


class BodyTooLarge(Exception):
    """The request body is over the configured limit."""


async def read_limited(request: Request, limit: int) -> bytes:
    """Read the body, refusing (before reading it all) anything over `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class FollowDesk:
    """What the follow endpoints need: the region numbers are read in, the zone a
    follower's times are told in, the key that signs confirmation links, the page to go
    back to, and the limits on asking."""

    region: str
    time_zone: str
    key: bytes
    site_url: str
    limits: followers.Limits = followers.LIMITS

    def __repr__(self) -> str:
        return f"FollowDesk(region={self.region!r}, site_url={self.site_url!r})"


# A follow form is a few short fields: anything bigger is not one.
FOLLOW_BODY_BYTES = 16_000
LOCALES = ("en", "es")


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
        Route("/unsubscribe/{customer}/{signature}", unsubscribe, methods=["GET", "POST"]),
        Route("/follow", follow, methods=["POST"]),
        Route("/follow/confirm/{follower}/{signature}", confirm_follow, methods=["GET", "POST"]),
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


# --- Following a place -------------------------------------------------------------


async def follow(request: Request) -> Response:
    """The site's "get updates for a place" form: a follow asked, pending until confirmed.
    The answer is the same whether or not the place exists (nobody learns who lives where)."""
    r = _receiver(request)
    if r.follows is None:
        return JSONResponse({"error": "follows are off: FOREWARN_PUBLIC_URL is not set"}, 404)
    try:
        body = await read_limited(request, FOLLOW_BODY_BYTES)
    except BodyTooLarge:
        return _follow_page(r, "en", "follow_refused_title", "follow_bad_contact", status=413)
    try:
        form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
    except (UnicodeDecodeError, ValueError):
        return _follow_page(r, "en", "follow_refused_title", "follow_no_contact", status=400)
    locale = form.get("locale", "en") if form.get("locale") in LOCALES else "en"
    if any("\x00" in key or "\x00" in value for key, value in form.items()):
        return _follow_page(r, locale, "follow_refused_title", "follow_bad_contact", status=400)
    try:
        channel, contact = followers.contact_of(form.get("contact", ""), r.follows.region)
    except followers.FollowError as err:
        return _follow_page(r, locale, "follow_refused_title", str(err), status=400)
    place = " ".join(form.get("place", "").split())[:200]
    if not place:
        return _follow_page(r, locale, "follow_refused_title", "follow_no_place", status=400)
    origin = request.client.host if request.client else "unknown"
    return await r.writers.run(_ask_follow, r, channel, contact, place, locale, origin)


def _ask_follow(
    r: Receiver, channel: str, contact: str, place: str, locale: str, origin: str
) -> Response:
    assert r.follows is not None
    desk, now = r.follows, r.clock()

    def work(conn: Connection) -> Response:
        followers.ask(
            conn, channel, contact, place, locale, desk.time_zone, "web", origin, now,
            desk.limits,
        )  # fmt: skip
        words = {"channel": channel, "contact": contact, "place": place}
        return _follow_page(r, locale, "follow_asked_title", "follow_asked", status=202, **words)

    return r.write(work, "follow")


async def confirm_follow(request: Request) -> Response:
    """A follow's signed confirmation link: the page with its button, or (POST) confirmed.
    Only the button confirms: mail scanners open links, and must not follow anything."""
    r = _receiver(request)
    if r.follows is None:
        return JSONResponse({"error": "follows are off: FOREWARN_PUBLIC_URL is not set"}, 404)
    follower_id = request.path_params["follower"]
    if not confirms(r.follows.key, follower_id, request.path_params["signature"]):
        return _follow_page(r, "en", "follow_invalid_title", "follow_invalid", status=403)
    return await r.writers.run(
        _confirm_follow, r, request.method, follower_id, request.url.path, refusable=False
    )


def _confirm_follow(r: Receiver, method: str, follower_id: str, path: str) -> Response:
    now = r.clock()

    def work(conn: Connection) -> Response:
        asked = followers.pending(conn, follower_id)
        if asked is None:
            return _follow_page(r, "en", "follow_invalid_title", "follow_invalid", status=404)
        label, locale = asked
        if method != "POST":
            return _follow_page(
                r, locale, "follow_confirm_title", None, action=path, place=label,
                button=say("follow_confirm_button", locale),
            )  # fmt: skip
        followers.confirm(conn, [follower_id], "email link", now)
        return _follow_page(r, locale, "follow_confirmed_title", "follow_confirmed", place=label)

    return r.write(work, "confirm follow")


def _follow_page(
    r: Receiver,
    locale: str,
    title: str,
    text: str | None,
    status: int = 200,
    action: str | None = None,
    button: str | None = None,
    **values: str,
) -> HTMLResponse:
    """A page of the follow endpoints, in the asker's language, with a way back to the site."""
    page = (
        environment()
        .get_template("receiver/follow.html.j2")
        .render(
            lang=locale,
            heading=say(title, locale, **values),
            text=say(text, locale, **values) if text else None,
            action=action,
            button=button,
            back=r.follows.site_url if r.follows else None,
            back_text=say("follow_back", locale),
        )
    )
    return HTMLResponse(page, status)


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
