"""A channel added from one module alone (its description, its sender, its templates) is
queued, sent and recorded like the shipped ones: nothing else in forewarn names a channel.

The throwaway channel pages a customer's phone; no. 41 chose it and nobody else did.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from forewarn import texts
from forewarn.channels import CHANNELS
from forewarn.channels.base import (
    Channel,
    Limiter,
    Message,
    Outcome,
    Result,
    Sending,
    Session,
    Stateless,
)
from forewarn.channels.rate import RateLimiter
from forewarn.config import Settings, process_settings
from forewarn.context import Context
from forewarn.network import import_network
from forewarn.network.csvfile import CUSTOMER_COLUMNS, TOPOLOGY_COLUMNS
from forewarn.notifiers import compose
from forewarn.store import customers, deliveries, make_engine
from tests.conftest import NOW, outage_and_restoration
from tests.town import customer_rows, topology_rows, write_csv

# --- the channel's module: what a new channel's author writes -----------------------------


class PagerSender(Sending):
    """Pages a phone number; keeps each page it was handed."""

    channel = "pager"

    def __init__(self, limiter: RateLimiter | None = None) -> None:
        self.limiter = limiter
        self.pages: list[Message] = []

    def session(self) -> Session:
        """One request per page."""
        return Stateless(self._page)

    def _page(self, message: Message) -> Result:
        self.pages.append(message)
        return Result(message.delivery_id, Outcome.DELIVERED, "paged", f"PG{message.delivery_id}")


def build(settings: Settings, signing_key: bytes, limiter: Limiter) -> PagerSender:
    """Always configured: a pager needs no credentials."""
    return PagerSender(limiter(50.0, None))


PAGER = Channel(
    name="pager",
    noun="page",
    contact="phone",
    fits=lambda body: len(body) <= 80,
    build=build,
)

# Its templates: one per kind of message (templates/<channel>/<locale>/<kind>.txt).
TEMPLATES = {
    kind: f"{{{{ operator }}}} {kind}: {{{{ address }}}}"
    for kind in ("opened", "update", "restored", "still_down", "summary", "at_risk", "maintenance")
}


@pytest.fixture
def pager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The channel's entry in the registry and its templates, for this test only."""
    folder = tmp_path / "templates" / "pager" / "en"
    folder.mkdir(parents=True)
    for kind, text in TEMPLATES.items():
        (folder / f"{kind}.txt").write_text(text + "\n", encoding="utf-8")
    monkeypatch.setitem(CHANNELS, PAGER.name, PAGER)
    monkeypatch.setenv("FOREWARN_TEMPLATES_DIR", str(tmp_path / "templates"))
    forget_templates()
    yield
    forget_templates()


def forget_templates() -> None:
    """Drop what this process read of its template folder and templates."""
    process_settings.cache_clear()
    texts.environment.cache_clear()
    compose.template_for.cache_clear()


def test_a_channel_from_one_module_is_queued_sent_and_recorded(
    pager: None, tmp_path: Path, settings: Settings
) -> None:
    rows = customer_rows()
    for row in rows:
        if row[0] == "c41":
            row[10] = "pager"  # the channels column
    engine = make_engine(settings.db_url.get_secret_value())
    report = import_network(
        engine,
        write_csv(tmp_path / "topology.csv", TOPOLOGY_COLUMNS, topology_rows()),
        write_csv(tmp_path / "customers.csv", CUSTOMER_COLUMNS, rows),
        None,
        NOW,
        "GB",
    )
    assert report.problems == []  # "pager" is a channel the importer knows
    ctx = Context.build(settings)
    sender = ctx.registry.senders["pager"]
    assert isinstance(sender, PagerSender) and "pager" not in ctx.registry.to_outbox

    outage_and_restoration(ctx, settings)

    with engine.connect() as conn:
        phone = conn.execute(
            select(customers.c.phone).where(customers.c.customer_id == "c41")
        ).scalar_one()
        ledger = conn.execute(
            select(deliveries.c.customer_id, deliveries.c.status, deliveries.c.provider_ref)
            .where(deliveries.c.channel == "pager")
            .order_by(deliveries.c.id)
        ).all()
        others = conn.execute(
            select(deliveries.c.channel).where(deliveries.c.customer_id == "c43")
        ).scalars()
        neighbours_channels = set(others)
    pages = [(m.to, m.body) for m in sender.pages]
    assert pages == [
        (phone, "Mill Road Fibre opened: 41 Mill Road"),
        (phone, "Mill Road Fibre restored: 41 Mill Road"),
    ]
    assert [(c, s) for c, s, _ in ledger] == [("c41", "sent"), ("c41", "sent")]
    assert [ref for _, _, ref in ledger] == [f"PG{m.delivery_id}" for m in sender.pages]
    assert neighbours_channels == {"sms", "email"}  # the neighbour's own, as before
    ctx.close()


def test_without_its_entry_the_channel_is_unknown(tmp_path: Path, settings: Settings) -> None:
    # The same customers file with no registry entry: the importer says so and keeps them.
    rows = customer_rows()
    rows[0][10] = "pager"
    engine = make_engine(settings.db_url.get_secret_value())
    report = import_network(
        engine,
        write_csv(tmp_path / "topology.csv", TOPOLOGY_COLUMNS, topology_rows()),
        write_csv(tmp_path / "customers.csv", CUSTOMER_COLUMNS, rows),
        None,
        NOW + timedelta(seconds=1),
        "GB",
    )
    reasons = [p.reason for p in report.problems]
    assert any("unknown channel 'pager' ignored" in r for r in reasons), reasons
    with engine.connect() as conn:
        chosen = conn.execute(
            select(customers.c.channels).where(customers.c.customer_id == rows[0][0])
        ).scalar_one()
    assert chosen == "sms;email"  # told on every channel of the first tier instead
