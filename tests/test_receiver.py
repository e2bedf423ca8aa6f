"""The HTTP receiver: bearer token, size limit, durable store before the 2xx."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from forewarn.receiver import create_app
from forewarn.store import inbox, quarantine
from tests.conftest import NOW, serving

TOKEN = "s3cret-token"
GOOD = json.dumps({"version": "4", "status": "firing", "alerts": []}).encode()


@pytest.fixture
def client(engine: Engine) -> Iterator[httpx.Client]:
    app = create_app(engine, TOKEN, max_body_bytes=1_000_000, clock=lambda: NOW)
    with serving(app) as url, httpx.Client(base_url=url) as http:
        yield http


def stored(engine: Engine) -> list[bytes]:
    with engine.connect() as conn:
        return [bytes(b) for b in conn.execute(select(inbox.c.body)).scalars()]


def test_a_payload_with_the_token_is_stored_before_the_answer(
    client: httpx.Client, engine: Engine
) -> None:
    response = client.post(
        "/hooks/alertmanager", content=GOOD, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200
    assert stored(engine) == [GOOD]
    assert response.json() == {"stored": 1}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
    ],
    ids=["none", "wrong", "no-scheme", "basic"],
)
def test_without_the_right_token_nothing_is_stored(
    client: httpx.Client, engine: Engine, headers: dict[str, str]
) -> None:
    response = client.post("/hooks/alertmanager", content=GOOD, headers=headers)
    assert response.status_code == 401
    assert TOKEN not in response.text
    assert stored(engine) == []


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"x" * 10_000_000, 413, "larger than"),
        (b"\xff\xfe", 400, "not UTF-8"),
        (b"{nope", 400, "not JSON"),
        (b'{"alerts": 7}', 400, "not an Alertmanager payload"),
        (b"[]", 400, "not an Alertmanager payload"),
    ],
    ids=["ten-megabytes", "not-utf8", "not-json", "alerts-not-list", "array"],
)
def test_bad_bodies_get_a_clear_4xx_and_store_nothing(
    client: httpx.Client, engine: Engine, body: bytes, status: int, reason: str
) -> None:
    response = client.post(
        "/hooks/alertmanager", content=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == status
    assert reason in response.json()["error"]
    assert stored(engine) == []
    with engine.connect() as conn:
        kept = conn.execute(select(quarantine.c.reason)).scalars().all()
    assert len(kept) == (0 if status == 413 else 1)


def test_a_streamed_body_over_the_limit_is_refused(engine: Engine) -> None:
    app = create_app(engine, TOKEN, max_body_bytes=1000, clock=lambda: NOW)

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 500

    with serving(app) as url:
        response = httpx.post(
            f"{url}/hooks/alertmanager",
            content=chunks(),
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    assert response.status_code == 413
    assert stored(engine) == []


def test_the_hook_is_off_without_a_token(engine: Engine) -> None:
    with serving(create_app(engine, None, max_body_bytes=1000)) as url:
        response = httpx.post(
            f"{url}/hooks/alertmanager", content=GOOD, headers={"Authorization": "Bearer anything"}
        )
    assert response.status_code == 404
    assert stored(engine) == []


def test_the_site_answers_while_a_webhook_waits_on_the_stores_lock(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    (site / "api" / "v2").mkdir(parents=True)
    (site / "index.html").write_text("<p>all well</p>")
    (site / "api" / "v2" / "summary.json").write_text("{}")
    app = create_app(engine, TOKEN, 1_000_000, site_dir=site, clock=lambda: NOW)
    holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    waited: list[httpx.Response] = []
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert http.get("/index.html").status_code == 200  # connected, warm
        holder.execute("BEGIN IMMEDIATE")  # a cycle holding the write lock
        hook = threading.Thread(
            target=lambda: waited.append(
                http.post("/hooks/alertmanager", content=GOOD,
                          headers={"Authorization": f"Bearer {TOKEN}"})
            )
        )  # fmt: skip
        hook.start()
        time.sleep(0.3)  # the webhook is in, waiting on the lock
        try:
            for page in ("/index.html", "/api/v2/summary.json"):
                took = []  # the best of a few: a loaded test machine adds its own pauses
                for _ in range(5):
                    started = time.monotonic()
                    assert http.get(page, timeout=5).status_code == 200
                    took.append(time.monotonic() - started)
                assert min(took) < 0.1, (page, took)
            assert not waited  # still waiting: the store was really locked
        finally:
            holder.execute("COMMIT")
            hook.join(timeout=30)
    assert waited[0].status_code == 200
    assert stored(engine) == [GOOD]
