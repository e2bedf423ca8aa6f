"""The HTTP receiver `forewarn serve` runs: webhooks in (stored durably before the 2xx),
and the published site for local use."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from forewarn.feeds import alertmanager
from forewarn.feeds.inbox import quarantine_rejects, store_payload
from forewarn.feeds.signal import Reject
from forewarn.store import now_utc


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
) -> Starlette:
    """The receiver's ASGI app; `webhook_token` None turns the Alertmanager hook off."""

    async def alertmanager_hook(request: Request) -> JSONResponse:
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
        reason = _malformed(body)
        now = clock()
        with engine.begin() as conn:
            if reason is not None:
                quarantine_rejects(conn, [Reject.of(alertmanager.SOURCE, reason, body)], now)
                return JSONResponse({"error": reason}, 400)
            inbox_id = store_payload(conn, alertmanager.SOURCE, body, now)
        return JSONResponse({"stored": inbox_id}, 200)

    routes: list[Route | Mount] = [
        Route("/hooks/alertmanager", alertmanager_hook, methods=["POST"]),
    ]
    if site_dir is not None:
        routes.append(Mount("/", StaticFiles(directory=site_dir, html=True, check_dir=False)))
    return Starlette(routes=routes)


def _malformed(body: bytes) -> str | None:
    """Why a webhook body cannot be an Alertmanager payload, or None if it may be one."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        return "body is not UTF-8"
    except json.JSONDecodeError as err:
        return f"body is not JSON: {err.msg} at position {err.pos}"
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        return "body is not an Alertmanager payload (an object with an alerts list)"
    return None
