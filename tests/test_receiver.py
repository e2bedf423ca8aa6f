"""The HTTP receiver: bearer token, size limit, durable store before the 2xx."""

from __future__ import annotations

import json
from collections.abc import Iterator

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
