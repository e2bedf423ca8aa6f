"""STATUS from anyone (issue 22, item 2): a texted STATUS (or ESTADO) is answered in the
same exchange with the state of the sender's own premises now; a stranger hears where to
look. Through the real receiver, with Twilio's signature."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from forewarn.config import Settings
from forewarn.context import Context
from forewarn.incidents.ops import add_maintenance, by_element
from forewarn.incidents.replies import Voice, classify
from forewarn.incidents.updates import Policy
from forewarn.receiver import TwilioHooks, create_app
from forewarn.store import customers, replies
from tests import twilio_hooks
from tests.conftest import NOW, run_cycle, serving
from tests.town import Town, report_cabinet
from tests.twilio_hooks import signed


@pytest.fixture
def hooks(town: Town, settings: Settings) -> Iterator[httpx.Client]:
    """Cabinet A down since 14:00 (its customers told), the receiver answering texts."""
    ctx = Context.build(settings.model_copy(update={"time_zone": "Europe/London"}))
    report_cabinet(settings.jsonl_feed, "cabA", "down", NOW)
    run_cycle(ctx, NOW + timedelta(minutes=3))
    ctx.close()
    voice = Voice("Mill Road Fibre", "", time_zone="Europe/London", site="status.millroad.example")
    twilio = TwilioHooks(twilio_hooks.AUTH_TOKEN, twilio_hooks.PUBLIC, voice)
    app = create_app(
        town.engine, None, 100_000, clock=lambda: NOW + timedelta(hours=1), twilio=twilio
    )
    with serving(app) as url, httpx.Client(base_url=url) as http:
        yield http


def ask(http: httpx.Client, sender: str, body: str = "STATUS") -> str:
    form = {"From": sender, "To": "+441632960000", "Body": body, "MessageSid": f"SM{sender}{body}"}
    answer = http.post(
        "/hooks/twilio/inbound", data=form, headers=signed("/hooks/twilio/inbound", form)
    )
    assert answer.status_code == 200
    return answer.text


def test_a_customer_whose_line_is_down_hears_the_fault_its_estimate_and_the_next_update(
    hooks: httpx.Client, town: Town
) -> None:
    said = ask(hooks, "+447911123039")
    assert (
        "Mill Road Fibre: 39 Mill Road: we know of a fault, no fix time yet; next update by" in said
    )
    assert "GMT" in said  # in the customer's own zone, named
    with town.engine.connect() as conn:
        kept = conn.execute(select(replies.c.customer_id, replies.c.action, replies.c.answer)).one()
    assert kept.customer_id == "c39" and kept.action == "status" and "39 Mill Road" in kept.answer


def test_a_customer_whose_line_is_fine_hears_so_and_what_to_do(hooks: httpx.Client) -> None:
    said = ask(hooks, "+447911123047")  # no. 47, on cabinet B
    assert "47 Mill Road: no known fault." in said and "reply OUT" in said


def test_a_stranger_hears_where_to_look(hooks: httpx.Client) -> None:
    said = ask(hooks, "+447700900999")
    assert "we cannot match you to a customer" in said
    assert "status.millroad.example" in said


def test_a_spanish_customer_asks_in_spanish_and_is_answered_in_spanish(
    hooks: httpx.Client, town: Town
) -> None:
    with town.engine.begin() as conn:
        conn.execute(update(customers).where(customers.c.customer_id == "c41").values(locale="es"))
    said = ask(hooks, "+447911123041", "estado")
    assert "41 Mill Road: conocemos una avería, sin hora de arreglo todavía; próximo aviso" in said


@pytest.mark.parametrize(("body", "action"), [("STATUS", "status"), ("estado.", "status"),
                                              ("status please", "other")])  # fmt: skip
def test_status_is_one_word_in_either_language(body: str, action: str) -> None:
    assert classify(body) == action


def test_planned_work_ahead_is_not_a_fault(hooks: httpx.Client, town: Town) -> None:
    with town.engine.begin() as conn:
        target = by_element(town.index, "cabB")
        starts = NOW + timedelta(days=4)
        add_maintenance(conn, town.index, target, "New fibre", starts, starts + timedelta(hours=2),
                        NOW, Policy())  # fmt: skip
    said = ask(hooks, "+447911123049")  # no. 49, behind cabinet B
    assert "49 Mill Road: no known fault." in said
