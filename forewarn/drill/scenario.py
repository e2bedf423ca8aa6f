"""A drill's scenario file: when it starts and ends, the network, settings to try, and the
timeline of feed events, ops actions and customer replies; read strictly, every problem a
DrillError naming the field."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from forewarn.channels import customer_channels, sms


class DrillError(ValueError):
    """A scenario that cannot be run, with the reason."""


# --- the scenario file --------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeedStep(_Strict):
    """Monitoring says elements changed state: one element, a list, or every leaf under one."""

    element: str | None = None
    elements: list[str] = Field(default_factory=list, max_length=1_000_000)
    under: str | None = None
    state: Literal["down", "up", "degraded"]


class OpsStep(_Strict):
    """What ops do: the `forewarn incident` and `forewarn maintenance` commands' options."""

    action: Literal["open", "update", "resolve", "heads-up", "maintenance"]
    incident: int | Annotated[str, Field(pattern=r"^(latest|customer:.+)$")] = "latest"
    title: str | None = None
    element: str | None = None
    area: dict[str, Any] | None = None
    near: tuple[float, float] | None = None  # lat, lon (drills do not geocode)
    radius_m: float | None = None
    status: str | None = None
    cause: str | None = None
    etr: str | None = None
    note: str | None = None
    start: str | None = None
    end: str | None = None


class ReplyStep(_Strict):
    """A customer writes back (OUT, STOP, HELP...), by text unless `channel` says how."""

    customer: str
    body: str = Field(max_length=2000)
    channel: str = sms.CHANNEL.name

    @field_validator("channel")
    @classmethod
    def _a_customers_channel(cls, value: str) -> str:
        known = customer_channels()
        if value not in known:
            raise ValueError(f"a customer writes back on one of {', '.join(known)}")
        return value


class TextStep(_Strict):
    """A text from any number, customer or not (FOLLOW CB1 2AB, YES, STATUS...)."""

    sender: str = Field(pattern=r"^\+[1-9][0-9]{6,14}$")
    body: str = Field(max_length=2000)


class ReportStep(_Strict):
    """Someone reports a problem on the site's form: from an IP, an address (or a house
    number and postcode), and perhaps a contact to follow it."""

    origin: str = Field(default="192.0.2.1", min_length=1, max_length=128)
    place: str = Field(min_length=1, max_length=200)
    contact: str | None = Field(default=None, max_length=320)
    locale: Literal["en", "es"] = "en"


class Step(_Strict):
    """One timed event; `at` is "+90m" from the start or an ISO-8601 time."""

    at: str
    # What the moment is, in a sentence: the demo prints it as the moment comes.
    say: str | None = Field(default=None, max_length=1000)
    feed: FeedStep | list[FeedStep] | None = None
    # A line as monitoring writes it to a JSON lines feed, read by that feed's own parser:
    # a garbled one is refused with its reason and kept in quarantine, as in operation.
    feed_line: str | None = Field(default=None, max_length=100_000)
    ops: OpsStep | None = None
    reply: ReplyStep | None = None
    text: TextStep | None = None
    report: ReportStep | None = None


class Scenario(_Strict):
    """A drill: when it starts and ends, the network, settings to try, and the timeline."""

    name: str = "drill"
    start: datetime
    until: str = "+3d"
    tick: str = "1m"
    network: dict[str, str] | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    events: list[Step] = Field(default_factory=list, max_length=100_000)
    # Where relative paths in `network` are read from.
    base: Path = Path(".")

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("start needs a UTC offset, e.g. 2026-11-23T08:00:00+00:00")
        return value


def load_scenario(path: Path) -> Scenario:
    """Read a YAML or JSON scenario; every problem is a DrillError naming the field."""
    if path.stat().st_size > 50_000_000:
        raise DrillError("the scenario file is larger than 50 MB")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise DrillError(f"{path}: not YAML or JSON: {err}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise DrillError(f"{path}: nested too deeply to be a scenario") from None
    if not isinstance(raw, dict):
        raise DrillError(f"{path}: a scenario is a mapping with start and events")
    try:
        return Scenario.model_validate({**raw, "base": path.parent})
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DrillError(f"{path}: {where}: {first['msg']}") from None
