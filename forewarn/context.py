"""What the pipeline needs at run time, built once by an entrypoint from Settings."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from forewarn.channels.unsubscribe import no_links, unsubscribe_link
from forewarn.clock import Clock
from forewarn.config import Settings
from forewarn.detection import Thresholds
from forewarn.durations import parse_duration, parse_steps
from forewarn.feeds.read import FeedConfig
from forewarn.incidents import Policy
from forewarn.incidents.cadence import Cadence
from forewarn.incidents.ledger import Rules
from forewarn.network import NetworkIndex
from forewarn.notifiers.compose import Brand
from forewarn.notifiers.confirmations import safe_path
from forewarn.notifiers.registry import Registry, build, half_configured
from forewarn.quiet import Night, QuietHours
from forewarn.status_page import PageConfig
from forewarn.store import get_meta, make_engine, secret_key, writing


class Context:
    """Engine, HTTP client, senders, clock and the cached network index for one configuration.

    A plain class, not a dataclass, on purpose: Prefect walks dataclasses passed to a task
    (looking for futures), and walking the network index cost 1.5 s per task call on
    120,000 premises."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        http: httpx.Client,
        registry: Registry,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.http = http
        self.registry = registry
        self.clock = clock or Clock()
        # Set by a dispatcher once its claim is in: the rest of a big fan-out is queued
        # after the first customers' messages are claimed (forewarn.pipeline.queue_rest).
        self.claimed = threading.Event()
        self._index: NetworkIndex | None = None
        self._signing_key: bytes | None = None

    def __repr__(self) -> str:
        return f"Context({self.engine.url!r})"

    def __reduce__(self) -> tuple[Any, tuple[str, dict[datetime, timedelta]]]:
        # Sent to another process (a Dask worker), a context travels as a reference: the
        # settings with no secret in them. The worker builds its own from its own
        # environment, and checks that it names the same store and the same choices.
        return (_rebuilt, (_public(self.settings), dict(self.clock.offsets)))

    @classmethod
    def build(cls, settings: Settings, sending: bool = True) -> Context:
        """A context for these settings: the store's engine, an HTTP client, the channels.
        Built once by an entrypoint and passed down; says once which channels fall back
        to the outbox.

        A channel given only part of its settings stops a context that sends
        (`ChannelSettingsError`): its customers' messages would quietly go to the outbox.
        One that only reads (`sending=False`) warns instead, and does not say where
        messages would go."""
        misconfigured = half_configured(settings)
        if misconfigured and sending:
            raise ChannelSettingsError(misconfigured)
        engine = make_engine(settings.db_url)
        signing_key = writing(engine, lambda conn: secret_key(conn, "unsubscribe"), "secret key")
        registry = build(settings, signing_key, engine)
        log = logging.getLogger("forewarn")
        for line in misconfigured:
            log.warning(line)
        named = {line.partition(":")[0] for line in misconfigured}
        unset = [channel for channel in registry.to_outbox if channel not in named]
        if unset and sending:  # a command that only reads sends nothing anywhere
            log.warning(
                "no credentials for %s: those messages are written to %s",
                ", ".join(unset),
                settings.outbox / "<channel>.jsonl",
            )
        http = httpx.Client(headers={"User-Agent": "forewarn"})
        ctx = cls(settings=settings, engine=engine, http=http, registry=registry)
        ctx._signing_key = signing_key
        return ctx

    def close(self) -> None:
        """Release the store's connections, the HTTP client and the senders' connections."""
        self.http.close()
        self.registry.close()
        self.engine.dispose()

    def index(self) -> NetworkIndex:
        """The network index, reloaded only when an import has changed the network."""
        with self.engine.connect() as conn:
            version = get_meta(conn, "network_version") or ""
            if self._index is None or self._index.version != version:
                self._index = NetworkIndex.load(conn)
        return self._index

    @property
    def thresholds(self) -> Thresholds:
        """Detection thresholds from settings."""
        s = self.settings
        return Thresholds(
            down_after=timedelta(seconds=s.down_after_s),
            up_after=timedelta(seconds=s.up_after_s),
            burst_ratio=s.burst_ratio,
            burst_min_down=s.burst_min_down,
            burst_window=timedelta(seconds=s.burst_window_s),
        )

    @property
    def policy(self) -> Policy:
        """Incident policy from settings."""
        s = self.settings
        return Policy(
            cadence=Cadence.parse(s.follow_up_cadence, self.night, s.time_zone, s.routine_per_day),
            privacy_floor=s.privacy_floor,
            notify_single_premise=s.notify_single_premise,
            etr_threshold=timedelta(seconds=s.etr_change_threshold_s),
            etr_warning=timedelta(seconds=s.etr_warning_s),
            degraded_after=timedelta(seconds=s.degraded_after_s),
            notices=tuple(
                sorted(
                    (parse_duration(n) for n in s.maintenance_notices.split(",") if n), reverse=True
                )
            ),
            reports_min=s.reports_min,
            reports_window=timedelta(seconds=s.reports_window_s),
            confirm_within=timedelta(seconds=s.confirm_within_s),
            # A call is the escalation only where calls really go (not to the outbox).
            calling="voice" in self.registry.senders and "voice" not in self.registry.to_outbox,
        )

    @property
    def feeds(self) -> FeedConfig:
        """Which feeds to read."""
        s = self.settings
        return FeedConfig(s.alertmanager_url, s.jsonl_feed, s.element_label_list)

    @property
    def brand(self) -> Brand:
        """Who speaks in messages."""
        s = self.settings
        offers = parse_steps(s.outage_offers, "|")
        replies_read = s.inbound_smtp is not None
        stop_link = unsubscribe_link(s.public_url, self.signing_key) if s.public_url else no_links
        key, public = self.signing_key, s.public_url

        def safe_link(customer_id: str, incident_id: int) -> str | None:
            return public.rstrip("/") + safe_path(key, customer_id, incident_id) if public else None

        return Brand(
            s.operator_name, s.site_url, s.time_zone, offers, replies_read, stop_link, safe_link
        )

    @property
    def signing_key(self) -> bytes:
        """The store's key for signed links (unsubscribing, confirming a follow); read once."""
        if self._signing_key is None:
            self._signing_key = writing(
                self.engine, lambda conn: secret_key(conn, "unsubscribe"), "secret key"
            )
        return self._signing_key

    @property
    def night(self) -> Night:
        """Quiet hours and sleep hours from settings."""
        s = self.settings
        return Night(QuietHours.from_setting(s.quiet_hours), QuietHours.from_setting(s.sleep_hours))

    @property
    def rules(self) -> Rules:
        """The night, the day's ceiling of routine messages and the claim lease."""
        s = self.settings
        return Rules(
            night=self.night,
            routine_per_day=s.routine_per_day,
            etr_warning=timedelta(seconds=s.etr_warning_s),
            lease=timedelta(seconds=s.claim_lease_s),
        )

    @property
    def page(self) -> PageConfig:
        """The public page's settings."""
        s = self.settings
        return PageConfig(
            s.operator_name, s.site_url, s.privacy_floor, s.brand_colour,
            time_zone=s.time_zone,
            major_share=s.impact_major_share, critical_share=s.impact_critical_share,
            tiles=s.map_tiles or None, attribution=s.map_attribution,
            follow_url=f"{s.public_url.rstrip('/')}/follow" if s.public_url else None,
            report_url=f"{s.public_url.rstrip('/')}/report" if s.public_url else None,
        )  # fmt: skip


class ChannelSettingsError(ValueError):
    """Channels given only part of their settings, one line each."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


class SettingsDiffer(RuntimeError):
    """A worker's own settings are not the ones the flow that sent it work runs with."""


def _public(settings: Settings) -> str:
    return json.dumps(settings.public(), sort_keys=True)


def _rebuilt(expected: str, offsets: dict[datetime, timedelta]) -> Context:
    context = received(expected)
    # The hours the flow's moments live at (a drill's, a rehearsal's; the true hour).
    context.clock.offsets.update(offsets)
    return context


@lru_cache(maxsize=4)
def received(expected: str) -> Context:
    """The context this process builds for the flows of another (a Dask worker receives a
    reference with every task): one per configuration, kept for the process's life (its
    connections are what a task would otherwise open again), not one per task."""
    own = Settings()
    if _public(own) != expected:
        theirs, mine = json.loads(expected), own.public()
        differ = sorted(k for k in theirs.keys() | mine.keys() if theirs.get(k) != mine.get(k))
        raise SettingsDiffer(
            "this worker's FOREWARN_* settings differ from the flow's in "
            f"{', '.join(differ)}: give every worker the same environment"
        )
    return Context.build(own)
