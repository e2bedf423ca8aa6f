"""Settings read from FOREWARN_* environment variables (and a .env file if present)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from forewarn.cleantext import without_credentials
from forewarn.durations import cadence_steps, parse_duration, parse_steps
from forewarn.quiet import QuietHours


class Process(BaseSettings):
    """The settings a process reads once, before any flow or text is built: its template
    folder and its task runner (read at import, so they cannot wait for `Settings`)."""

    model_config = SettingsConfigDict(
        env_prefix="FOREWARN_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # A folder of the operator's own templates: each file replaces the shipped one.
    templates_dir: Path | None = None
    # Run the flows' tasks on Dask: "local" (a cluster on this machine) or a scheduler's
    # address (tcp://host:8786); unset = Prefect's thread pool. Needs the [dask] extra.
    dask_address: str | None = None


class Settings(Process):
    """Every knob an operator can turn, by stage, in the order of the README's tables;
    names match ARCHITECTURE.md. The knobs nobody turns are constants (README)."""

    # --- running: the store, the site, where files go ---------------------------------
    # A secret: its password never shows in a repr or a log (make_engine gets the value).
    db_url: SecretStr = SecretStr("sqlite:///forewarn.db")
    site_dir: Path = Path("./site")
    site_url: str = "http://localhost:8000"
    operator_name: str = "forewarn"
    # The operator's time zone: times in public posts, on the page and in ops views.
    time_zone: str = "UTC"
    outbox: Path = Path("./outbox")
    # Where each worker journals outcomes as they happen (crash recovery; see README).
    journal_dir: Path = Path("./journal")

    # --- feeds and the receiver (feeds/, receiver.py) ---------------------------------
    alertmanager_url: str | None = None
    jsonl_feed: str | None = None
    element_labels: str = "element,instance"
    webhook_token: SecretStr | None = None
    # The forewarn receiver as the internet reaches it; Twilio's status callbacks and
    # signature checks need it. Unset: no status callbacks are requested.
    public_url: str | None = None
    # The receiver refuses bodies larger than this (bytes).
    max_body_bytes: int = 5_000_000
    # Where `serve` listens for customers' emails back (host:port, SMTP), as the operator's
    # mail server hands them on; unset: no email reply is read, and no email asks for one.
    inbound_smtp: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.\-:\[\]]*:\d{1,5}$")
    # The authserv-id the operator's mail server writes in Authentication-Results (its
    # DMARC check): an email back is acted on only when it says dmarc=pass.
    inbound_authserv: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.\-]+$")

    # --- the network (network/) -------------------------------------------------------
    # Country assumed for phone numbers written without +: at import and when ops look a
    # customer up.
    phone_region: str = "US"
    geocoder_url: str | None = None
    # Nominatim's usage policy asks for at most one request per second.
    geocoder_rate: float = Field(default=1.0, gt=0)

    # --- detection (detection/): see README "How detection decides" -------------------
    down_after_s: float = 120.0
    up_after_s: float = 600.0
    burst_ratio: float = Field(default=0.75, gt=0, le=1)
    burst_min_down: int = Field(default=3, ge=2)
    burst_window_s: float = 900.0

    # --- incidents and the conversation (incidents/) ----------------------------------
    notify_single_premise: bool = False
    # From each age of the outage on, how often customers hear from us (ACMA's rule:
    # 6-hourly, then daily).
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
    # OUT replies from this many lines behind one element, within this long, open an
    # incident there as monitoring's signals would (for equipment nothing monitors).
    reports_min: int = Field(default=3, ge=2)
    reports_window_s: float = Field(default=1800.0, gt=0)
    # An at-risk customer (customers' `needs`) who has not confirmed our message this long
    # after it was queued is escalated: called where voice is set up, else listed for a visit.
    confirm_within_s: float = Field(default=900.0, gt=0)
    # The night, in each customer's own time zone (README "The conversation"): quiet hours
    # hold routine messages; sleep hours hold everything but an answer to a customer who
    # just wrote. Empty: no such window.
    quiet_hours: str = "21:00-08:00"
    sleep_hours: str = "23:00-07:00"
    # Routine messages per customer and channel in any 24 hours: the cadence is planned
    # within it, and a promised update or estimate warning is never held by it.
    routine_per_day: int = Field(default=4, ge=1, le=24)
    # What HELP answers (after the operator's name); empty: the words of
    # templates/words/<locale>/reply_help.txt, in the customer's language.
    help_text: str = ""
    privacy_floor: int = Field(default=10, ge=1)

    # --- channels (channels/) ---------------------------------------------------------
    # SMS through Twilio (TWILIO_* are Twilio's own names, without our prefix).
    twilio_account_sid: str | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_ACCOUNT_SID", "twilio_account_sid")
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_AUTH_TOKEN", "twilio_auth_token")
    )
    sms_from: str | None = None
    twilio_api_url: str = "https://api.twilio.com"
    # Segments per second; unset = what Twilio documents for the sender (see channels/sms).
    sms_rate: float | None = Field(default=None, gt=0)
    # A text still queued at Twilio after this long expires instead of arriving late.
    sms_validity_s: int = Field(default=1800, ge=1, le=36000)
    # Calls through Twilio: the calling number (unset: the SMS sender, when it is a phone
    # number) and calls per second.
    voice_from: str | None = None
    voice_rate: float = Field(default=1.0, gt=0)
    # Email through SMTP: smtp://[user:pass@]host:port, smtps:// for TLS.
    smtp_url: SecretStr | None = None
    email_from: str | None = None
    email_rate: float = Field(default=50.0, gt=0)
    # DKIM signing of every email (optional): the private key's PEM, or a file holding
    # it, and the selector its public key is published under in DNS.
    dkim_private_key: SecretStr | None = None
    dkim_selector: str = Field(default="forewarn", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    # Public posts (and direct messages) through Mastodon.
    mastodon_url: str | None = None
    mastodon_token: SecretStr | None = None
    # Mastodon lets an account post 300 statuses in 3 hours.
    social_rate: float = Field(default=300 / 10800, gt=0)
    # Partners and other systems: Statuspage-shaped JSON POSTs, comma-separated URLs.
    webhook_urls: SecretStr | None = None
    webhook_rate: float = Field(default=10.0, gt=0)
    # How many sends are in flight at once, per channel.
    send_concurrency: int = Field(default=8, ge=1, le=256)
    # A claimed delivery not recorded within this long is presumed lost with its worker
    # and reconciled with the provider before anything is resent. A worker sends under a
    # claim only while it holds the lease, so it must outlast a send or two (>= 1 s).
    claim_lease_s: float = Field(default=300.0, ge=1)
    # Where every worker's shared send rate lives: "store" (a budget in the store) or
    # "prefect" (a global concurrency limit per channel on the Prefect server, forewarn-<channel>).
    rate_limits: Literal["store", "prefect"] = "store"

    # --- the status page (status_page/) -----------------------------------------------
    # Impact by the share of premises out (of a component or of the network): from a fifth
    # "major" (more than a few streets), from a half "critical" (most of the service).
    impact_major_share: float = Field(default=0.2, gt=0, le=1)
    impact_critical_share: float = Field(default=0.5, gt=0, le=1)
    # The public page: components (JSON, see README) and the operator's colour.
    components_file: Path | None = None
    brand_colour: str = Field(default="#1f5fa8", pattern=r"^#[0-9a-fA-F]{6}$")
    # A street map under the affected areas: a tile server's URL with {z}, {x} and {y}
    # (the operator's own provider: OpenStreetMap's tiles are not for heavy use) and the
    # attribution it asks for. Unset: the page's drawn map alone.
    map_tiles: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s\"'<>]*\{z\}[^\s\"'<>]*\{x\}[^\s\"'<>]*\{y\}[^\s\"'<>]*$",
    )
    map_attribution: str = Field(default="© OpenStreetMap contributors", max_length=300)

    @field_validator("db_url")
    @classmethod
    def _store_url_parses(cls, value: SecretStr) -> SecretStr:
        try:
            make_url(value.get_secret_value())
        except ArgumentError:
            # The value may hold a password: the message does not repeat it.
            raise ValueError(
                "not a store URL (write e.g. sqlite:///forewarn.db or "
                "postgresql+psycopg://user:password@host/forewarn)"
            ) from None
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url_parses(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            smtp_url_problem(value.get_secret_value())
        return value

    @field_validator("dkim_private_key")
    @classmethod
    def _dkim_key_readable(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            dkim_key_pem(value.get_secret_value())  # it must sign before anything is sent
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"not a time zone: {value!r} (write e.g. Europe/London or UTC)"
            ) from None
        return value

    @field_validator("quiet_hours", "sleep_hours")
    @classmethod
    def _quiet_hours_parse(cls, value: str) -> str:
        QuietHours.from_setting(value)
        return value

    @field_validator("impact_critical_share")
    @classmethod
    def _critical_above_major(cls, value: float, info: ValidationInfo) -> float:
        major = info.data.get("impact_major_share")
        if major is not None and value < major:
            raise ValueError(f"must be at least FOREWARN_IMPACT_MAJOR_SHARE ({major})")
        return value

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
        set, the store's URL without its password, no URL's credentials."""
        values = self.model_dump(mode="json")  # secrets dump as "**********"
        values = {k: without_credentials(v) if isinstance(v, str) else v for k, v in values.items()}
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


@lru_cache(maxsize=1)
def process_settings() -> Process:
    """This process's template folder and task runner, read once."""
    return Process()


def dkim_key_pem(setting: str) -> bytes:
    """The private key FOREWARN_DKIM_PRIVATE_KEY names, as PEM bytes: the value itself
    (an env file's literal \\n read as line breaks), or the file it names; a ValueError
    that never repeats the key when it is not an unencrypted RSA private key."""
    from dkim.crypto import UnparsableKeyError, parse_pem_private_key

    text = setting.strip()
    if not text.startswith("-----BEGIN"):
        path = Path(text)
        try:
            if len(text) > 4096 or not path.is_file():
                raise ValueError("neither a PEM private key nor a file holding one")
            text = path.read_text(errors="replace").strip()
        except OSError:
            raise ValueError("neither a PEM private key nor a file holding one") from None
    pem = text.replace("\\n", "\n").encode()
    try:
        parse_pem_private_key(pem)
    except (UnparsableKeyError, ValueError, IndexError, TypeError):
        raise ValueError("not an unencrypted RSA private key in PEM") from None
    return pem


def smtp_url_problem(url: str) -> None:
    """Raise ValueError naming what is wrong with an SMTP URL (never its password)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        given = f"{parts.scheme}://" if parts.scheme else "none"
        raise ValueError(f"the scheme must be smtp:// or smtps://, not {given}")
    if not parts.hostname:
        raise ValueError("no host (write smtp://[user:pass@]host:port)")
    try:
        parts.port  # noqa: B018  (reading it checks it)
    except ValueError:
        port = parts.netloc.rpartition("@")[2].rpartition(":")[2]
        raise ValueError(f"not a port: {port!r} (write smtp://[user:pass@]host:port)") from None
