"""The site's own forms, answered by the receiver: following a place (`POST /follow`, and
the confirmation link's page and button), reporting a problem (`POST /report`); and the
link an at-risk customer's email carries to say they have it (its page and button).

Each answer is the same whether or not the place exists, and whatever a report came to:
nobody learns from them who lives where. Nothing is followed until confirmed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from sqlalchemy import select
from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from forewarn.incidents import followers, reporting, safety
from forewarn.incidents.updates import Policy
from forewarn.notifiers.confirmations import confirms, confirms_safe
from forewarn.receiver_io import BodyTooLarge, read_limited
from forewarn.store import customers
from forewarn.texts import environment, say

if TYPE_CHECKING:
    from forewarn.receiver import Receiver


@dataclass(frozen=True, slots=True)
class FollowDesk:
    """What the site's forms need: the region numbers are read in, the zone a follower's
    times are told in, the key that signs confirmation links, the page to go back to, the
    limits on asking and reporting, and the policy a reported line's case is opened by."""

    region: str
    time_zone: str
    key: bytes
    site_url: str
    limits: followers.Limits = followers.LIMITS
    report_limits: reporting.ReportLimits = reporting.REPORT_LIMITS
    policy: Policy = field(default_factory=Policy)

    def __repr__(self) -> str:
        return f"FollowDesk(region={self.region!r}, site_url={self.site_url!r})"


# A form is a few short fields: anything bigger is not one.
FORM_BODY_BYTES = 16_000
LOCALES = ("en", "es")
_OFF = {"error": "the site's forms are off: FOREWARN_PUBLIC_URL is not set"}


def _receiver(request: Request) -> Receiver:
    receiver: Receiver = request.app.state.receiver
    return receiver


class _Refused(Exception):
    """A form that cannot be taken, with the page that says why."""

    def __init__(self, page: HTMLResponse) -> None:
        self.page = page


async def _read_form(r: Receiver, request: Request) -> tuple[dict[str, str], str]:
    """The form's fields and the asker's language, or _Refused."""
    try:
        body = await read_limited(request, FORM_BODY_BYTES)
    except BodyTooLarge:
        raise _Refused(_page(r, "en", "follow_refused_title", "form_too_big", 413)) from None
    try:
        form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
    except (UnicodeDecodeError, ValueError):
        raise _Refused(_page(r, "en", "follow_refused_title", "form_unreadable", 400)) from None
    locale = form.get("locale", "en") if form.get("locale") in LOCALES else "en"
    if any("\x00" in key or "\x00" in value for key, value in form.items()):
        raise _Refused(_page(r, locale, "follow_refused_title", "form_unreadable", 400))
    return form, locale


def _contact(r: Receiver, form: dict[str, str], locale: str) -> tuple[str, str]:
    assert r.follows is not None
    try:
        return followers.contact_of(form.get("contact", ""), r.follows.region)
    except followers.FollowError as err:
        raise _Refused(_page(r, locale, "follow_refused_title", str(err), 400)) from None


# --- Following a place -------------------------------------------------------------


async def follow(request: Request) -> Response:
    """The site's "get updates for a place" form: a follow asked, pending until confirmed.
    The answer is the same whether or not the place exists (nobody learns who lives where)."""
    r = _receiver(request)
    if r.follows is None:
        return JSONResponse(_OFF, 404)
    try:
        form, locale = await _read_form(r, request)
        channel, contact = _contact(r, form, locale)
    except _Refused as refused:
        return refused.page
    place = " ".join(form.get("place", "").split())[:200]
    if not place:
        return _page(r, locale, "follow_refused_title", "follow_no_place", 400)
    origin = request.client.host if request.client else "unknown"
    return await r.writers.run(_ask_follow, r, channel, contact, place, locale, origin)


def _ask_follow(
    r: Receiver, channel: str, contact: str, place: str, locale: str, origin: str
) -> Response:
    assert r.follows is not None
    desk, now = r.follows, r.clock()

    def work(conn: Connection) -> Response:
        followers.ask(
            conn, channel, contact, place, locale, desk.time_zone, "web", origin, now,
            desk.limits,
        )  # fmt: skip
        words = {"channel": channel, "contact": contact, "place": place}
        return _page(r, locale, "follow_asked_title", "follow_asked", 202, **words)

    return r.write(work, "follow")


async def confirm_follow(request: Request) -> Response:
    """A follow's signed confirmation link: the page with its button, or (POST) confirmed.
    Only the button confirms: mail scanners open links, and must not follow anything."""
    r = _receiver(request)
    if r.follows is None:
        return JSONResponse(_OFF, 404)
    follower_id = request.path_params["follower"]
    if not confirms(r.follows.key, follower_id, request.path_params["signature"]):
        return _page(r, "en", "follow_invalid_title", "follow_invalid", 403)
    return await r.writers.run(
        _confirm_follow, r, request.method, follower_id, request.url.path, refusable=False
    )


def _confirm_follow(r: Receiver, method: str, follower_id: str, path: str) -> Response:
    now = r.clock()

    def work(conn: Connection) -> Response:
        asked = followers.pending(conn, follower_id)
        if asked is None:
            return _page(r, "en", "follow_invalid_title", "follow_invalid", 404)
        label, locale = asked
        if method != "POST":
            return _page(
                r, locale, "follow_confirm_title", None, action=path, place=label,
                button=say("follow_confirm_button", locale),
            )  # fmt: skip
        followers.confirm(conn, [follower_id], "email link", now)
        return _page(r, locale, "follow_confirmed_title", "follow_confirmed", place=label)

    return r.write(work, "confirm follow")


# --- An at-risk customer confirms --------------------------------------------------


async def confirm_safe(request: Request) -> Response:
    """An at-risk customer's signed link: the page with its button, or (POST) confirmed
    (they have our message: no visit needed). Only the button confirms."""
    r = _receiver(request)
    if r.unsubscribe_key is None:
        return JSONResponse({"error": "signed links are off"}, 404)
    customer_id = request.path_params["customer"]
    incident = request.path_params["incident"]
    if not (incident.isascii() and incident.isdigit()) or len(incident) > 12:
        return _page(r, "en", "follow_invalid_title", "follow_invalid", 404)
    if not confirms_safe(
        r.unsubscribe_key, customer_id, int(incident), request.path_params["signature"]
    ):
        return _page(r, "en", "follow_invalid_title", "follow_invalid", 403)
    return await r.writers.run(
        _confirm_safe, r, request.method, customer_id, int(incident), request.url.path,
        refusable=False,
    )  # fmt: skip


def _confirm_safe(
    r: Receiver, method: str, customer_id: str, incident_id: int, path: str
) -> Response:
    now = r.clock()

    def work(conn: Connection) -> Response:
        locale = conn.execute(
            select(customers.c.locale).where(customers.c.customer_id == customer_id)
        ).scalar()
        if locale is None:
            return _page(r, "en", "follow_invalid_title", "follow_invalid", 404)
        locale = locale if locale in LOCALES else "en"
        if method != "POST":
            return _page(
                r, locale, "safe_confirm_title", "safe_confirm", action=path,
                button=say("safe_confirm_button", locale),
            )  # fmt: skip
        safety.confirm(conn, [customer_id], "email link", now, incident_id)
        return _page(r, locale, "safe_confirmed_title", "safe_confirmed")

    return r.write(work, "at-risk confirmation")


# --- Reporting a problem -----------------------------------------------------------


async def report(request: Request) -> Response:
    """The site's "report a problem" form: an address (or a house number and postcode),
    and optionally a contact, who may then follow it once confirmed. Answered alike
    whatever the report came to."""
    r = _receiver(request)
    if r.follows is None:
        return JSONResponse(_OFF, 404)
    try:
        form, locale = await _read_form(r, request)
        given = bool(form.get("contact", "").strip())
        channel, contact = _contact(r, form, locale) if given else ("", "")
    except _Refused as refused:
        return refused.page
    place = " ".join(form.get("place", "").split())
    if not place and form.get("number", "").strip() and form.get("postcode", "").strip():
        place = f"{' '.join(form['number'].split())}, {' '.join(form['postcode'].split())}"
    if not place:
        return _page(r, locale, "follow_refused_title", "report_no_place", 400)
    origin = request.client.host if request.client else "unknown"
    return await r.writers.run(_take_report, r, place[:200], channel, contact, locale, origin)


def _take_report(
    r: Receiver, place: str, channel: str, contact: str, locale: str, origin: str
) -> Response:
    assert r.follows is not None
    desk, now = r.follows, r.clock()

    def work(conn: Connection) -> Response:
        reporting.take_from_site(
            conn, origin, place, (channel, contact) if contact else None, locale,
            desk.time_zone, now, desk.policy, desk.report_limits, desk.limits,
        )  # fmt: skip
        words = {"channel": channel, "contact": contact}
        return _page(r, locale, "report_taken_title", "report_taken", 202, **words)

    return r.write(work, "report")


def _page(
    r: Receiver,
    locale: str,
    title: str,
    text: str | None,
    status: int = 200,
    action: str | None = None,
    button: str | None = None,
    **values: str,
) -> HTMLResponse:
    """A page of the forms' answers, in the asker's language, with a way back to the site."""
    page = (
        environment()
        .get_template("receiver/follow.html.j2")
        .render(
            lang=locale,
            heading=say(title, locale, **values),
            text=say(text, locale, **values) if text else None,
            action=action,
            button=button,
            back=r.follows.site_url if r.follows else None,
            back_text=say("follow_back", locale),
        )
    )
    return HTMLResponse(page, status)


__all__ = ["FORM_BODY_BYTES", "FollowDesk", "confirm_follow", "confirm_safe", "follow", "report"]
