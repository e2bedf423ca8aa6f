"""A real Alertmanager (Debian `prometheus-alertmanager`) on loopback: alerts posted to it
reach forewarn by its webhook and by polling its API, and become the right incident."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from forewarn.config import Settings
from forewarn.flows import detection_cycle
from forewarn.receiver import create_app
from forewarn.store import inbox, incidents, make_engine, now_utc
from testkit.servers import free_port
from tests.conftest import NOW, serving, use_settings
from tests.town import Town

pytestmark = pytest.mark.integration
TOKEN = "am-token-123"
BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def _binary() -> str:
    if BINARY is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus-alertmanager is not installed; .ci/run installs it")
        pytest.skip(
            "prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)"
        )
    return BINARY


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    """forewarn's receiver, with its own store and town."""
    hooked = tmp_path / "hooked"
    hooked.mkdir()
    settings = Settings(
        db_url=SecretStr(f"sqlite:///{hooked / 'forewarn.db'}"), site_dir=hooked / "site",
        outbox=hooked / "outbox", _env_file=None,  # type: ignore[call-arg]
    )  # fmt: skip
    engine = make_engine(settings.db_url)
    Town.street(hooked, engine, NOW)
    with serving(create_app(engine, TOKEN, 5_000_000)) as url:
        yield url, settings


@pytest.fixture
def alertmanager(tmp_path: Path, receiver: tuple[str, Settings]) -> Iterator[str]:
    binary = _binary()
    port = free_port()
    config = tmp_path / "am.yml"
    config.write_text(
        f"""
route:
  receiver: forewarn
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: forewarn
    webhook_configs:
      - url: {receiver[0]}/hooks/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {TOKEN}
"""
    )
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'am-data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("alertmanager did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.communicate(timeout=10)  # and close its stderr pipe


@pytest.mark.usefixtures("prefect_harness")
def test_alerts_reach_forewarn_by_webhook_and_by_polling(
    alertmanager: str,
    receiver: tuple[str, Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = now_utc() - timedelta(minutes=10)
    alerts = [
        {"labels": {"alertname": "PonDown", "element": "pon1", "severity": "critical"},
         "annotations": {"summary": "PON port 1 lost light"}, "startsAt": started.isoformat()},
        {"labels": {"alertname": "PonDown", "instance": "cpe41:9100"},
         "annotations": {}, "startsAt": started.isoformat()},
        {"labels": {"alertname": "Mystery", "element": "not-in-topology"},
         "annotations": {}, "startsAt": started.isoformat()},
    ]  # fmt: skip
    assert httpx.post(f"{alertmanager}/api/v2/alerts", json=alerts, timeout=5).status_code == 200

    # 1. By webhook: Alertmanager posts to forewarn's receiver, which stores the payload.
    _, hooked = receiver
    engine = make_engine(hooked.db_url)
    deadline = time.monotonic() + 20
    while True:
        with engine.connect() as conn:
            if conn.execute(select(inbox.c.id)).first() is not None:
                break
        assert time.monotonic() < deadline, "Alertmanager never called the webhook"
        time.sleep(0.2)
    use_settings(monkeypatch, hooked)
    report = detection_cycle()
    assert [(f.root, f.reason) for f in report.detection.faults] == [("pon1", "reported")]
    assert "cpe41" in report.detection.faults[0].down_elements  # host:port matched, folded in
    assert report.rejects == 1  # the unknown element, quarantined
    with engine.connect() as conn:
        (row,) = conn.execute(select(incidents.c.root_element, incidents.c.premises_count)).all()
    assert tuple(row) == ("pon1", 8)

    # 2. By polling GET /api/v2/alerts, into a second store that has no webhook.
    polled_dir = tmp_path / "polled"
    polled_dir.mkdir()
    polled = Settings(
        db_url=SecretStr(f"sqlite:///{polled_dir / 'forewarn.db'}"), site_dir=polled_dir / "site",
        outbox=polled_dir / "outbox", alertmanager_url=alertmanager,
        _env_file=None,  # type: ignore[call-arg]
    )  # fmt: skip
    Town.street(polled_dir, make_engine(polled.db_url), NOW)
    use_settings(monkeypatch, polled)
    report = detection_cycle()
    assert [(f.root, f.reason) for f in report.detection.faults] == [("pon1", "reported")]
    assert report.changes.opened == [1] and report.dispatch.sent > 0
