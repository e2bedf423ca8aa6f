"""The receiver's OpenAPI description: served at /openapi.json, it names every endpoint
the receiver answers, and schemathesis, generating requests from it (well-formed and
not), finds no server error and no answer the description does not allow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from forewarn.channels.unsubscribe import sign
from forewarn.incidents.replies import Voice
from forewarn.receiver import TwilioHooks, create_app
from forewarn.receiver_api import description
from forewarn.receiver_forms import FollowDesk
from forewarn.store import secret_key
from tests.conftest import NOW, serving
from tests.town import Town

TOKEN = "s3cret-token"


def receiver(town: Town, site: Path) -> Any:
    site.mkdir(exist_ok=True)
    (site / "index.html").write_text("<p>all well</p>")
    with town.engine.begin() as conn:
        key = secret_key(conn, "unsubscribe")
    twilio = TwilioHooks("auth-token", "https://alerts.example", Voice("Mill Road Fibre", "Help."))
    follows = FollowDesk("GB", "Europe/London", key, "https://status.example/")
    return create_app(
        town.engine, TOKEN, 100_000, site_dir=site, clock=lambda: NOW, twilio=twilio,
        unsubscribe_key=key, follows=follows,
    )  # fmt: skip


def test_the_description_is_served_and_names_every_endpoint(town: Town, tmp_path: Path) -> None:
    app = receiver(town, tmp_path / "site")
    with serving(app) as url:
        served = httpx.get(url + "/openapi.json")
    assert served.status_code == 200 and served.json() == description()
    routes = {
        (route.path, method.lower())
        for route in app.routes
        if isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"}
    }
    described = {(path, method) for path, item in description()["paths"].items() for method in item}
    assert routes == described


def test_generated_requests_get_no_server_error_and_only_described_answers(
    town: Town, tmp_path: Path
) -> None:
    # Each operation of the served description, driven by schemathesis' strategies through
    # hypothesis (its pytest plugin does not run under this pytest), over real HTTP.
    with town.engine.begin() as conn:
        key = secret_key(conn, "unsubscribe")
    with serving(receiver(town, tmp_path / "site")) as url:
        schema = schemathesis.openapi.from_url(url + "/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        labels = {o.label for o in operations}  # all but the description's own path
        assert len(labels) == 14 and {"POST /follow", "POST /report"} <= labels
        answered: set[tuple[str, int]] = set()
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
            def call(case: Any) -> None:
                # Whether a string is a number or an address someone can be reached at is
                # beyond a schema: a form's well-formed contact may still be refused (400).
                forms = ("/follow", "/report")
                lenient = [positive_data_acceptance] if case.path in forms else []
                response = case.call_and_validate(
                    headers=credentials(case, key), excluded_checks=lenient
                )
                answered.add((case.operation.label, response.status_code))

            call()
        reached = {label for label, status in answered if status not in (401, 403)}
    # Past the door: the generated requests reached every handler, not only the checks.
    assert {
        "POST /hooks/alertmanager",
        "POST /hooks/twilio/inbound",
        "POST /hooks/twilio/status",
        "POST /unsubscribe/{customer}/{signature}",
        "POST /follow",
        "POST /report",
        "GET /follow/confirm/{follower}/{signature}",
    } <= reached


def credentials(case: Any, key: bytes) -> dict[str, str]:
    """What a real caller would carry: the bearer token, Twilio's signature over the
    generated form, a valid link's signature; so the requests reach the handlers."""
    if case.path == "/hooks/alertmanager":
        return {"Authorization": f"Bearer {TOKEN}"}
    if case.path.startswith("/hooks/twilio/") and isinstance(case.body, dict):
        form = {str(k): str(v) for k, v in case.body.items() if isinstance(v, str)}
        if len(form) == len(case.body):
            url = "https://alerts.example" + case.path
            return {
                "X-Twilio-Signature": RequestValidator("auth-token").compute_signature(url, form)
            }
    if case.path.startswith("/unsubscribe/") and case.path_parameters:
        customer = str(case.path_parameters.get("customer", ""))
        case.path_parameters["signature"] = sign(key, customer)
    if case.path.startswith("/follow/confirm/") and case.path_parameters:
        follower = str(case.path_parameters.get("follower", ""))
        case.path_parameters["signature"] = sign(key, "confirm " + follower)
    return {}
