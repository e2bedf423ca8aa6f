"""Settings read from FOREWARN_* environment variables (and a .env file if present)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob an operator can turn; names match ARCHITECTURE.md."""

    model_config = SettingsConfigDict(
        env_prefix="FOREWARN_", env_file=".env", extra="ignore", populate_by_name=True
    )

    db_url: str = "sqlite:///forewarn.db"
    site_dir: Path = Path("./site")
    site_url: str = "http://localhost:8000"
    outbox: Path = Path("./outbox")
    operator_name: str = "forewarn"
    alertmanager_url: str | None = None
    jsonl_feed: str | None = None
    geocoder_url: str | None = None
    # Nominatim's usage policy asks for at most one request per second.
    geocoder_rate: float = Field(default=1.0, gt=0)
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

    # Customer messages and the public page.
    update_every_s: float = 7200.0
    privacy_floor: int = Field(default=10, ge=1)
    # The public page: components (JSON, see README) and the operator's colour.
    components_file: Path | None = None
    brand_colour: str = Field(default="#1f5fa8", pattern=r"^#[0-9a-fA-F]{6}$")
    dispatch_batch: int = Field(default=1000, ge=1)

    @property
    def element_label_list(self) -> list[str]:
        """The alert labels that name an element, in the order they are tried."""
        return [label.strip() for label in self.element_labels.split(",") if label.strip()]
