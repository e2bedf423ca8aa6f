"""The receiver's plumbing: the bounded pool its writing handlers run in, and reading a
request body no bigger than a limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

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
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
