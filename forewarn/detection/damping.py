"""Flap damping: an element counts as down only after staying down for `down_after`,
and stops counting only after staying up for `up_after`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from forewarn.feeds import Reject, Signal

REMEMBER = timedelta(days=1)
# How far ahead of our clock a signal may be dated (clocks drift a little); beyond it the
# signal is refused, or it would make every true signal until then look like old news.
FUTURE_TOLERANCE = timedelta(minutes=5)
_LONG_AGO = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Detection settings; see the README for what each one means."""

    down_after: timedelta = timedelta(minutes=2)
    up_after: timedelta = timedelta(minutes=10)
    burst_ratio: float = 0.75
    burst_min_down: int = 3
    burst_window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class ElementState:
    """What we believe about one element now."""

    element: str
    state: str
    since: datetime  # last change of `state`
    observed_at: datetime  # newest signal applied; older ones are repeats
    source: str
    confirmed: bool = False
    down_since: datetime | None = None  # start of the confirmed outage


def resolve_element(element: str, known: Callable[[str], bool]) -> str | None:
    """Match a feed's element name to the topology; `host:port` instances match `host`."""
    if known(element):
        return element
    host = element.rsplit(":", 1)[0]
    if host != element and known(host):
        return host
    return None


def apply_signals(
    states: dict[str, ElementState],
    signals: Iterable[Signal],
    known: Callable[[str], bool],
    now: datetime | None = None,
) -> tuple[set[str], list[Reject]]:
    """Apply signals in time order; returns the elements changed and the rejects (unknown
    elements, and with `now`, signals dated beyond FUTURE_TOLERANCE ahead of it)."""
    changed: set[str] = set()
    rejects: list[Reject] = []
    horizon = None if now is None else now + FUTURE_TOLERANCE
    for signal in sorted(signals, key=lambda s: s.observed_at):
        if horizon is not None and signal.observed_at > horizon:
            reason = (
                f"dated {signal.observed_at:%Y-%m-%d %H:%M:%S} UTC, more than "
                f"{FUTURE_TOLERANCE.seconds // 60} minutes ahead of our clock"
            )
            rejects.append(signal.rejected(reason))
            continue
        element = resolve_element(signal.element, known)
        if element is None:
            rejects.append(signal.rejected(f"unknown element {signal.element!r}"))
            continue
        current = states.get(element)
        if current is not None and horizon is not None and current.observed_at > horizon:
            # Stored before future dates were refused: older than any news, from now on.
            current = replace(
                current, since=min(current.since, signal.observed_at), observed_at=_LONG_AGO
            )
        if current is None:
            if signal.state == "up":
                continue  # up is the default: nothing to remember
            states[element] = ElementState(
                element, signal.state, signal.observed_at, signal.observed_at, signal.source
            )
        elif signal.observed_at <= current.observed_at:
            continue  # a repeat, or news older than what we know
        elif signal.state == current.state:
            states[element] = replace(current, observed_at=signal.observed_at)
        else:
            states[element] = replace(
                current,
                state=signal.state,
                since=signal.observed_at,
                observed_at=signal.observed_at,
                source=signal.source,
            )
        changed.add(element)
    return changed, rejects


def settle(
    states: dict[str, ElementState], now: datetime, thresholds: Thresholds
) -> tuple[set[str], set[str]]:
    """Confirm elements down long enough, clear those up long enough.

    Returns (changed, forgettable): elements whose state changed, and elements that have
    been simply up for a day and need not be remembered.
    """
    changed: set[str] = set()
    forgettable: set[str] = set()
    for element, st in list(states.items()):
        held = now - st.since
        if st.state == "down" and not st.confirmed and held >= thresholds.down_after:
            states[element] = replace(st, confirmed=True, down_since=st.since)
            changed.add(element)
        elif st.state != "down" and st.confirmed and held >= thresholds.up_after:
            states[element] = replace(st, confirmed=False, down_since=None)
            changed.add(element)
        latest = states[element]
        # Keep an up element's last observation a while so that repeats of older news
        # (a feed re-read from its start) are recognised and ignored.
        if latest.state == "up" and not latest.confirmed and now - latest.observed_at >= REMEMBER:
            forgettable.add(element)
    return changed, forgettable


def effective_down(states: dict[str, ElementState]) -> dict[str, datetime]:
    """Elements that count as down now, with the start of their outage."""
    return {
        element: st.down_since
        for element, st in states.items()
        if st.confirmed and st.down_since is not None
    }
