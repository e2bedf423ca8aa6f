"""Settings read from FOREWARN_* environment variables (and a .env file if present)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from forewarn.durations import cadence_steps, parse_duration, parse_steps


class Settings(BaseSettings):
    """Every knob an operator can turn; names match ARCHITECTURE.md."""

    model_config = SettingsConfigDict(
        env_prefix="FOREWARN_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # A secret: its password never shows in a repr or a log (make_engine gets the value).
    db_url: SecretStr = SecretStr("sqlite:///forewarn.db")
    site_dir: Path = Path("./site")
    site_url: str = "http://localhost:8000"
    outbox: Path = Path("./outbox")
    operator_name: str = "forewarn"
    # The operator's time zone: times in public posts.
    time_zone: str = "UTC"
    alertmanager_url: str | None = None
    jsonl_feed: str | None = None
    geocoder_url: str | None = None
    # Nominatim's usage policy asks for at most one request per second.
    geocoder_rate: float = Field(default=1.0, gt=0)
    # Country assumed for phone numbers written without +, when ops look a customer up.
    phone_region: str = "US"
    element_labels: str = "element,instance"
    webhook_token: SecretStr | None = None
    # The receiver refuses bodies larger than this (bytes).
    max_body_bytes: int = 5_000_000

    # Detection: see README "How detection decides".
    down_after_s: float = 120.0
    up_after_s: float = 600.0
    burst_ratio: float = Field(default=0.75, gt=0, le=1)
    burst_min_down: int = Field(default=3, ge=2)
    burst_window_s: float = 900.0
    notify_single_premise: bool = False

    # Customer messages and the public page. The follow-up cadence: from each age of the
    # outage on, how often customers hear from us (ACMA's rule: 6-hourly, then daily).
    follow_up_cadence: str = "0h=6h,24h=24h"
    # Estimate changes smaller than this are recorded but not announced.
    etr_change_threshold_s: float = Field(default=1800.0, ge=0)
    # How long before an estimate passes customers hear that it will be missed.
    etr_warning_s: float = Field(default=1800.0, gt=0)
    # What the operator offers once an outage is this old: "24h=text|72h=text".
    outage_offers: str = ""
    # An element degraded this long opens an at-risk incident.
    degraded_after_s: float = Field(default=900.0, gt=0)
    # Notices of planned work, this long before it starts (then at start and at end).
    maintenance_notices: str = "72h,24h"
    privacy_floor: int = Field(default=10, ge=1)
    # The public page: components (JSON, see README) and the operator's colour.
    components_file: Path | None = None
    brand_colour: str = Field(default="#1f5fa8", pattern=r"^#[0-9a-fA-F]{6}$")
    dispatch_batch: int = Field(default=1000, ge=1)
    # Run the flows' tasks on Dask: "local" (a cluster on this machine) or a scheduler's
    # address (tcp://host:8786); unset = Prefect's thread pool. Needs the [dask] extra.
    dask_address: str | None = None

    # The forewarn receiver as the internet reaches it; Twilio's status callbacks and
    # signature checks need it. Unset: no status callbacks are requested.
    public_url: str | None = None

    # SMS through Twilio (TWILIO_* are Twilio's own names, without our prefix).
    twilio_account_sid: str | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_ACCOUNT_SID", "twilio_account_sid")
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_AUTH_TOKEN", "twilio_auth_token")
    )
    sms_from: str | None = None
    twilio_api_url: str = "https://api.twilio.com"
    # Segments per second; unset = what Twilio documents for the sender (see notifiers/sms).
    sms_rate: float | None = Field(default=None, gt=0)
    # A text still queued at Twilio after this long expires instead of arriving late.
    sms_validity_s: int = Field(default=1800, ge=1, le=36000)

    # Email through SMTP: smtp://[user:pass@]host:port, smtps:// for TLS.
    smtp_url: SecretStr | None = None
    email_from: str | None = None
    email_rate: float = Field(default=50.0, gt=0)

    # Public posts (and direct messages) through Mastodon.
    mastodon_url: str | None = None
    mastodon_token: SecretStr | None = None
    # Mastodon lets an account post 300 statuses in 3 hours.
    social_rate: float = Field(default=300 / 10800, gt=0)

    # Partners and other systems: Statuspage-shaped JSON POSTs, comma-separated URLs.
    webhook_urls: SecretStr | None = None
    webhook_rate: float = Field(default=10.0, gt=0)

    # Where each worker journals outcomes as they happen (crash recovery; see README).
    journal_dir: Path = Path("./journal")
    # How many sends are in flight at once, per channel.
    send_concurrency: int = Field(default=8, ge=1, le=256)
    # A claimed delivery not recorded within this long is presumed lost with its worker
    # and reconciled with the provider before anything is resent.
    claim_lease_s: float = Field(default=300.0, gt=0)

    # The night, in each customer's own time zone (README "The conversation"): quiet hours
    # hold routine messages; sleep hours hold everything but an answer to a customer who
    # just wrote. Empty: no such window.
    quiet_hours: str = Field(default="21:00-08:00", pattern=r"^(\d\d:\d\d-\d\d:\d\d)?$")
    sleep_hours: str = Field(default="23:00-07:00", pattern=r"^(\d\d:\d\d-\d\d:\d\d)?$")
    # Routine messages per customer and channel in any 24 hours: the cadence is planned
    # within it, and a promised update or estimate warning is never held by it.
    routine_per_day: int = Field(default=4, ge=1, le=24)
    # What HELP answers (after the operator's name); empty: the words of
    # templates/words/<locale>/reply_help.txt, in the customer's language.
    help_text: str = ""

    @field_validator("follow_up_cadence")
    @classmethod
    def _cadence_parses(cls, value: str) -> str:
        cadence_steps(value)
        return value

    @field_validator("outage_offers")
    @classmethod
    def _offers_parse(cls, value: str) -> str:
        parse_steps(value, "|")
        return value

    @field_validator("maintenance_notices")
    @classmethod
    def _notices_parse(cls, value: str) -> str:
        for part in filter(None, value.split(",")):
            parse_duration(part)
        return value

    def public(self) -> dict[str, object]:
        """Every setting a log or another process may see: secrets as whether they are
        set, the store's URL without its password."""
        values = self.model_dump(mode="json")  # secrets dump as "**********"
        values["db_url"] = make_url(self.db_url.get_secret_value()).render_as_string(
            hide_password=True
        )
        return values

    @property
    def webhook_url_list(self) -> list[str]:
        """The partner webhook URLs."""
        raw = self.webhook_urls.get_secret_value() if self.webhook_urls else ""
        return [url.strip() for url in raw.split(",") if url.strip()]

    @property
    def element_label_list(self) -> list[str]:
        """The alert labels that name an element, in the order they are tried."""
        return [label.strip() for label in self.element_labels.split(",") if label.strip()]
