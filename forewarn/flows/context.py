"""What the flows need at run time, built once per process from Settings."""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta
from typing import Any

import httpx
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from forewarn.config import Settings
from forewarn.detection import Thresholds
from forewarn.durations import parse_duration, parse_steps
from forewarn.feeds.read import FeedConfig
from forewarn.incidents import Policy
from forewarn.incidents.cadence import Cadence
from forewarn.network import NetworkIndex
from forewarn.notifiers.compose import Brand
from forewarn.notifiers.dispatch import Rules
from forewarn.notifiers.registry import Registry, build
from forewarn.status_page import PageConfig
from forewarn.store import get_meta, make_engine, secret_key


class Context:
    """Engine, HTTP client, notifiers and the cached network index for one configuration.

    A plain class, not a dataclass, on purpose: Prefect walks dataclasses passed to a task
    (looking for futures), and walking the network index cost 1.5 s per task call on
    120,000 premises."""

    def __init__(
        self, settings: Settings, engine: Engine, http: httpx.Client, registry: Registry
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.http = http
        self.registry = registry
        self._index: NetworkIndex | None = None

    def __repr__(self) -> str:
        return f"Context({self.engine.url!r})"

    def __reduce__(self) -> tuple[Any, tuple[Settings]]:
        # Sent to another process (a Dask worker), a context is rebuilt there from its
        # settings: engines, clients and notifiers do not travel.
        return (context_for, (self.settings,))

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
            cadence=Cadence.parse(
                s.follow_up_cadence, Rules.parse_quiet(s.quiet_hours), s.time_zone
            ),
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
        return Brand(s.operator_name, s.site_url, s.time_zone, parse_steps(s.outage_offers, "|"))

    @property
    def rules(self) -> Rules:
        """Quiet hours, the per-incident cap and the claim lease."""
        s = self.settings
        start, end = Rules.parse_quiet(s.quiet_hours)
        return Rules(
            quiet_start=start,
            quiet_end=end,
            max_per_incident=s.max_messages_per_incident,
            lease=timedelta(seconds=s.claim_lease_s),
        )

    @property
    def page(self) -> PageConfig:
        """The public page's settings."""
        s = self.settings
        return PageConfig(s.operator_name, s.site_url, s.privacy_floor, s.brand_colour)


def task_runner() -> TaskRunner[Any]:
    """The flows' task runner: Dask when FOREWARN_DASK_ADDRESS is set, else threads."""
    address = os.environ.get("FOREWARN_DASK_ADDRESS")
    if not address:
        return ThreadPoolTaskRunner()
    from prefect_dask.task_runners import DaskTaskRunner

    if address == "local":
        return DaskTaskRunner()
    return DaskTaskRunner(address=address)


_contexts: dict[str, Context] = {}


def context_for(settings: Settings | None = None) -> Context:
    """The context for these settings (read from the environment when not given)."""
    settings = settings or Settings()
    # Secrets dump as "**********": key on their values too, or two tokens would share.
    secrets = [v.get_secret_value() for v in dict(settings).values() if isinstance(v, SecretStr)]
    key = settings.model_dump_json() + json.dumps(secrets)
    if key not in _contexts:
        engine = make_engine(settings.db_url)
        with engine.begin() as conn:
            signing_key = secret_key(conn, "unsubscribe")
        registry = build(settings, signing_key)
        if registry.to_outbox:
            # Said once, when the process first builds its notifiers.
            logging.getLogger("forewarn").warning(
                "no credentials for %s: those messages go to the outbox %s",
                ", ".join(registry.to_outbox),
                settings.outbox,
            )
        _contexts[key] = Context(
            settings=settings,
            engine=engine,
            http=httpx.Client(headers={"User-Agent": "forewarn"}),
            registry=registry,
        )
    return _contexts[key]
