"""The HTTP receiver `forewarn serve` runs: webhooks in (stored durably before the 2xx),
Twilio's inbound texts and status callbacks (signed, deduplicated), one-click email
unsubscribes, and the published site for local use; its OpenAPI description is served
at /openapi.json (`forewarn.receiver_api`)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import anyio
import anyio.to_thread
from sqlalchemy.engine import Connection, Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from forewarn.feeds import alertmanager
from forewarn.feeds.inbox import quarantine_rejects, store_payload
from forewarn.feeds.safejson import Unreadable, loads
from forewarn.feeds.signal import Reject
from forewarn.incidents import callbacks
from forewarn.incidents.replies import Voice, handle_reply, opt_out
from forewarn.notifiers.unsubscribe import verify
from forewarn.receiver_api import description
from forewarn.store import insert_ignoring_conflicts, now_utc, seen_requests


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

    async def run(self, work: Callable[..., Response], *args: Any) -> Response:
        """Run `work(*args)` on one of the pool's threads, or answer 503 when full."""
        if self._busy >= self._most:
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


def create_app(
    engine: Engine,
    webhook_token: str | None,
    max_body_bytes: int,
    site_dir: Path | None = None,
    clock: Callable[[], datetime] = now_utc,
    twilio: TwilioHooks | None = None,
    unsubscribe_key: bytes | None = None,
    writers: WritePool | None = None,
) -> Starlette:
    """The receiver's ASGI app; `webhook_token` None turns the Alertmanager hook off,
    `twilio` None the Twilio hooks, `unsubscribe_key` None the unsubscribe links.

    The store is used synchronously, so every handler does its database work in a
    thread of `writers` (a WritePool of its own): a webhook waiting on the store's lock
    never holds up the event loop, nor the threads that serve the site."""
    pool = writers if writers is not None else WritePool()

    async def alertmanager_hook(request: Request) -> Response:
        if webhook_token is None:
            return JSONResponse({"error": "receiver off: FOREWARN_WEBHOOK_TOKEN is not set"}, 404)
        given = request.headers.get("authorization", "")
        expected = f"Bearer {webhook_token}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return JSONResponse({"error": "missing or wrong bearer token"}, 401)
        try:
            body = await read_limited(request, max_body_bytes)
        except BodyTooLarge:
            return JSONResponse({"error": f"body larger than {max_body_bytes} bytes"}, 413)
        return await pool.run(keep_webhook, body)

    def keep_webhook(body: bytes) -> Response:
        reason = _malformed(body)
        now = clock()
        with engine.begin() as conn:
            if reason is not None:
                quarantine_rejects(conn, [Reject.of(alertmanager.SOURCE, reason, body)], now)
                return JSONResponse({"error": reason}, 400)
            inbox_id = store_payload(conn, alertmanager.SOURCE, body, now)
        return JSONResponse({"stored": inbox_id}, 200)

    async def twilio_form(request: Request) -> tuple[Response | None, dict[str, str]]:
        """Check size, form and signature; on success the caller holds the parsed form."""
        if twilio is None:
            return JSONResponse({"error": "Twilio hooks off: no Twilio credentials"}, 404), {}
        try:
            body = await read_limited(request, min(max_body_bytes, 64_000))
        except BodyTooLarge:
            return JSONResponse({"error": "body too large"}, 413), {}
        try:
            form = dict(
                parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
            )
        except (UnicodeDecodeError, ValueError):
            return JSONResponse({"error": "body is not a form"}, 400), {}
        # Twilio signs the URL it called, so rebuild it from the public URL, not the Host.
        url = twilio.public_url.rstrip("/") + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        signature = request.headers.get("x-twilio-signature", "")
        if not signature or not RequestValidator(twilio.auth_token).validate(url, form, signature):
            return JSONResponse({"error": "missing or wrong X-Twilio-Signature"}, 403), {}
        return None, form

    def first_time(conn: Connection, request: Request, now: datetime, *names: str) -> bool:
        """False when this request was handled before: by Twilio's idempotency token (a
        retry), or by `names` (the message's own SID: a captured, signed request sent
        again with a new token, since Twilio's signature carries no nonce)."""
        given = request.headers.get("i-twilio-idempotency-token")
        tokens = [t[:256] for t in (given, *names) if t]
        if not tokens:
            return True
        before = conn.execute(
            seen_requests.select().where(seen_requests.c.token.in_(tokens)).limit(1)
        ).first()
        if before is not None:
            return False
        insert_ignoring_conflicts(
            conn, seen_requests, [{"token": t, "received_at": now} for t in tokens]
        )
        return True

    async def twilio_inbound(request: Request) -> Response:
        refused, form = await twilio_form(request)
        if refused is not None:
            return refused
        if "From" not in form or "Body" not in form:
            return JSONResponse({"error": "an inbound message needs From and Body"}, 400)
        return await pool.run(answer_inbound, request, form)

    def answer_inbound(request: Request, form: dict[str, str]) -> Response:
        assert twilio is not None
        now = clock()
        reply = MessagingResponse()
        with engine.begin() as conn:
            sid = form.get("MessageSid")
            if first_time(conn, request, now, f"sid:{sid}" if sid else ""):
                inbox_id = callbacks.keep(conn, callbacks.INBOUND_SOURCE, form, now)
                answer = handle_reply(
                    conn, "sms", form["From"], form["Body"], form.get("MessageSid"), now,
                    twilio.voice,
                )  # fmt: skip
                callbacks.handled(conn, [inbox_id], now)
                if answer:
                    reply.message(answer)
        return Response(str(reply), 200, media_type="application/xml")

    async def twilio_status(request: Request) -> Response:
        refused, form = await twilio_form(request)
        if refused is not None:
            return refused
        if "MessageSid" not in form or "MessageStatus" not in form:
            return JSONResponse(
                {"error": "a status callback needs MessageSid and MessageStatus"}, 400
            )
        return await pool.run(apply_status, request, form)

    def apply_status(request: Request, form: dict[str, str]) -> Response:
        now = clock()
        with engine.begin() as conn:
            if first_time(conn, request, now):
                inbox_id = callbacks.keep(conn, callbacks.STATUS_SOURCE, form, now)
                applied = callbacks.apply_status(
                    conn, form["MessageSid"], form["MessageStatus"], form.get("ErrorCode"), now
                )
                if applied:
                    callbacks.handled(conn, [inbox_id], now)
        return Response(status_code=204)

    async def unsubscribe(request: Request) -> Response:
        if unsubscribe_key is None:
            return JSONResponse({"error": "unsubscribe links are off"}, 404)
        customer_id = request.path_params["customer"]
        given = request.path_params["signature"]
        if not verify(unsubscribe_key, customer_id, given):
            return JSONResponse({"error": "this unsubscribe link is not valid"}, 403)
        if request.method != "POST":
            # RFC 8058: only a POST unsubscribes. A GET or a HEAD (a mail scanner, a link
            # preview) gets the page with the button, and changes nothing.
            action = escape(request.url.path, quote=True)
            page = (
                '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                "<title>Unsubscribe</title></head><body><main><h1>Stop outage messages?</h1>"
                f'<form method="post" action="{action}"><button>Stop all outage messages</button>'
                "</form></main></body></html>"
            )
            return HTMLResponse(page)
        return await pool.run(opt_out_now, customer_id)

    def opt_out_now(customer_id: str) -> Response:
        with engine.begin() as conn:
            if not opt_out(conn, customer_id, "email", clock()):
                return JSONResponse({"error": "no such customer"}, 404)
        return HTMLResponse("<!DOCTYPE html><title>Unsubscribed</title><p>Done: no more messages.")

    async def health(request: Request) -> Response:
        # Alive and answering; asks nothing of the store (`forewarn status` does that).
        return JSONResponse({"status": "ok"})

    async def openapi(request: Request) -> Response:
        return JSONResponse(description())

    routes: list[Route | Mount] = [
        Route("/hooks/alertmanager", alertmanager_hook, methods=["POST"]),
        Route("/hooks/twilio/inbound", twilio_inbound, methods=["POST"]),
        Route("/hooks/twilio/status", twilio_status, methods=["POST"]),
        Route("/unsubscribe/{customer}/{signature}", unsubscribe, methods=["GET", "POST"]),
        Route("/healthz", health, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    if site_dir is not None:
        routes.append(Mount("/", StaticFiles(directory=site_dir, html=True, check_dir=False)))
    return Starlette(routes=routes)


def _malformed(body: bytes) -> str | None:
    """Why a webhook body cannot be an Alertmanager payload, or None if it may be one."""
    try:
        payload = loads(body)
    except Unreadable as err:
        return f"body is {err}"
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        return "body is not an Alertmanager payload (an object with an alerts list)"
    return None
