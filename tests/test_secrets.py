"""Secrets stay where they are: a context sent to a Dask worker carries no secret (the
worker reads its own environment), the store's password never shows in a repr or a log,
and building the notifiers leaves the process's loggers as they were."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from forewarn import context
from forewarn.channels.base import Message
from forewarn.channels.webhook import WebhookSender, partner_key
from forewarn.config import Settings
from forewarn.context import Context, SettingsDiffer
from forewarn.notifiers.journal import Journal
from forewarn.notifiers.registry import Registry

ROOT = Path(__file__).parent.parent
PG = "postgresql+psycopg://forewarn:DBSECRET@db.example/forewarn"
SECRETS = ("DBSECRET", "TWILIOSECRET", "SMTPSECRET", "MASTODONSECRET", "HOOKSECRET")


def secret_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    for name, value in {
        "FOREWARN_DB_URL": db_url,
        "FOREWARN_OUTBOX": str(tmp_path / "outbox"),
        "FOREWARN_JOURNAL_DIR": str(tmp_path / "journal"),
        "TWILIO_ACCOUNT_SID": "AC123",
        "TWILIO_AUTH_TOKEN": "TWILIOSECRET",
        "FOREWARN_SMS_FROM": "+15005550006",
        "FOREWARN_SMTP_URL": "smtp://mail:SMTPSECRET@smtp.example:25",
        "FOREWARN_EMAIL_FROM": "noc@example.net",
        "FOREWARN_MASTODON_URL": "https://social.example",
        "FOREWARN_MASTODON_TOKEN": "MASTODONSECRET",
        "FOREWARN_WEBHOOK_URLS": "https://partner.example/hook?token=HOOKSECRET",
    }.items():
        monkeypatch.setenv(name, value)


def test_a_context_sent_to_a_worker_carries_no_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, engine: Engine
) -> None:
    secret_env(monkeypatch, tmp_path, PG)
    ctx = Context(Settings(), engine, httpx.Client(), Registry({}, Journal(tmp_path / "journal")))
    sent = pickle.dumps(ctx)
    for secret in SECRETS:
        assert secret.encode() not in sent, secret


def test_a_worker_builds_its_own_context_from_its_own_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str
) -> None:
    secret_env(monkeypatch, tmp_path, db_url)
    context.received.cache_clear()
    ctx = Context.build(Settings())
    there = pickle.loads(pickle.dumps(ctx))
    assert there is not ctx
    assert there.settings == ctx.settings
    assert there.settings.twilio_auth_token == SecretStr("TWILIOSECRET")  # its own copy
    assert pickle.loads(pickle.dumps(ctx)) is there  # one per configuration, not per task
    # A worker configured otherwise says so, and which settings differ.
    sent = pickle.dumps(ctx)
    context.received.cache_clear()
    monkeypatch.setenv("FOREWARN_SITE_URL", "https://status.elsewhere.example")
    with pytest.raises(SettingsDiffer, match="site_url"):
        pickle.loads(sent)
    ctx.close()
    there.close()


def test_the_stores_password_never_shows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret_env(monkeypatch, tmp_path, PG)
    settings = Settings()
    assert "DBSECRET" not in repr(settings) and "DBSECRET" not in str(settings)
    assert "DBSECRET" not in str(settings.public())
    assert settings.public()["db_url"] == "postgresql+psycopg://forewarn:***@db.example/forewarn"
    engine = create_engine(settings.db_url.get_secret_value())  # what make_engine is given
    assert "DBSECRET" not in str(engine.url) and "DBSECRET" not in repr(engine)
    ctx = Context(settings, engine, httpx.Client(), Registry({}, Journal(tmp_path / "journal")))
    assert "DBSECRET" not in repr(ctx)


def test_building_the_notifiers_leaves_the_httpx_logger_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret_env(monkeypatch, tmp_path, "sqlite:///unused.db")
    # In a fresh process: importing and building the notifiers must not touch it.
    script = (
        "import logging; logging.getLogger('httpx').setLevel(logging.INFO)\n"
        "from forewarn.config import Settings\n"
        "from forewarn.notifiers.registry import build\n"
        "assert 'webhook' in build(Settings()).senders\n"
        "print(logging.getLevelName(logging.getLogger('httpx').level))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "INFO"
    # The partner's URL (with its token) is still kept out of httpx's request lines.
    url = "https://partner.example/hook?token=HOOKSECRET"
    notifier = WebhookSender([url], transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    message = Message(
        delivery_id=1, channel="webhook", to=partner_key(url), customer_id=None, incident_id=1,
        update_seq=1, body="{}",
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="httpx"):
        notifier.send([message])
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert lines and all("HOOKSECRET" not in line for line in lines)
    assert partner_key(url) in lines[0]
