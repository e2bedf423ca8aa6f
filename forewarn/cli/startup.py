"""The check every command makes first: settings that parse and a store that answers.

Both answer in one line per problem, naming the environment variable, before Prefect or
any server starts."""

from __future__ import annotations

from collections.abc import Mapping
from difflib import get_close_matches
from pathlib import Path
from typing import Any, get_args

from dotenv import dotenv_values
from pydantic import AliasChoices, SecretStr, ValidationError
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from forewarn.cleantext import without_credentials
from forewarn.config import Settings

# How long a command waits for the store to answer before saying it cannot reach it.
CONNECT_TIMEOUT_S = 5


class StartupError(Exception):
    """What stops a command before it starts: one line per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def checked_settings() -> Settings:
    """The settings, or a StartupError naming each bad environment variable."""
    try:
        return Settings()
    except ValidationError as err:
        raise StartupError(settings_problems(err)) from None


def check_store(settings: Settings, may_create: bool = False) -> None:
    """Open (and close) one connection to the store; a StartupError says why it failed.

    A SQLite file that does not exist is refused unless the command may create the store
    (every command but those that only read): `forewarn status` in the wrong folder
    would otherwise make an empty store there and report that all is well."""
    url = make_url(settings.db_url.get_secret_value())
    shown = _without_password(url)
    if not may_create and _missing_sqlite_file(url):
        raise StartupError([
            f"FOREWARN_DB_URL: there is no store at {url.database} ({shown}): import a network "
            "first (`forewarn import-network`), or run from the folder that holds it, or set "
            "FOREWARN_DB_URL to it"
        ])  # fmt: skip
    try:
        engine = create_engine(url, connect_args=_timeout(url))
    except (SQLAlchemyError, ImportError) as err:
        raise StartupError([f"FOREWARN_DB_URL: cannot use the store {shown}: {err}"]) from None
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as err:
        reason = _reason(err)
        raise StartupError(
            [f"FOREWARN_DB_URL: cannot reach the store at {shown}: {reason}"]
        ) from None
    finally:
        engine.dispose()


def _missing_sqlite_file(url: URL) -> bool:
    """A SQLite store named by a file path that does not exist (not `:memory:`)."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return False
    if database.startswith("file:"):
        return False  # a URI filename: its options say what may be created
    return not Path(database).exists()


def _without_password(url: URL) -> str:
    return url._replace(password=None).render_as_string(hide_password=False)


def _timeout(url: URL) -> dict[str, object]:
    """A short connect timeout, in the words of the store's driver."""
    if url.get_backend_name() == "postgresql":
        return {"connect_timeout": CONNECT_TIMEOUT_S}
    return {}


# What drivers say, and how an operator reads it.
_KNOWN = [
    ("connection refused", "connection refused"),
    ("timeout expired", f"no answer within {CONNECT_TIMEOUT_S} s"),
    ("timed out", f"no answer within {CONNECT_TIMEOUT_S} s"),
    ("password authentication failed", "the server refused the user or password"),
    ("does not exist", "the server has no such database or user"),
    ("name or service not known", "unknown host"),
    ("could not translate host name", "unknown host"),
    ("unable to open database file", "cannot open the file (does its folder exist?)"),
]


def _reason(err: SQLAlchemyError) -> str:
    """The driver's complaint in a few words (never the URL's password)."""
    text = str(getattr(err, "orig", None) or err)
    lowered = text.lower()
    for needle, words in _KNOWN:
        if needle in lowered:
            return words
    return text.strip().splitlines()[0] if text.strip() else type(err).__name__


# --- what an operator is told about their settings ---------------------------------

# Settings an operator may have set that are now constants: what each became.
RETIRED = {
    "FOREWARN_DISPATCH_BATCH": "deliveries are claimed 1,000 at a time "
    "(forewarn.notifiers.delivery.BATCH)",
}


def retired_settings(environ: Mapping[str, str]) -> list[str]:
    """One line for each retired setting still set: it is no longer read, and why."""
    return [
        f"{name} is no longer read: {became}" for name, became in RETIRED.items() if name in environ
    ]


# FOREWARN_* names that are not settings but are read by forewarn's own test script.
NOT_SETTINGS = frozenset({"FOREWARN_TWILIO_SPEC"})


def unknown_settings(environ: Mapping[str, str], dotenv: Path) -> list[str]:
    """One line for each FOREWARN_* name, in the environment or in `dotenv`, that no
    setting has (a misspelling is otherwise silently ignored), with the nearest one."""
    known = {env_name(field) for field in Settings.model_fields} | RETIRED.keys() | NOT_SETTINGS
    given = {name for name in environ if name.startswith("FOREWARN_")}
    if dotenv.is_file():
        given |= {n for n in dotenv_values(dotenv) if n.upper().startswith("FOREWARN_")}
    lines = []
    for name in sorted(given):
        if name.upper() in known:
            continue
        near = get_close_matches(name.upper(), sorted(known), n=1, cutoff=0.75)
        hint = f" (did you mean {near[0]}?)" if near else ""
        lines.append(f"{name} is not a setting and is ignored{hint}")
    return lines


# Readable reasons for pydantic's error types; the bad value follows them.
_REASONS = {
    "float_parsing": "not a number",
    "int_parsing": "not a whole number",
    "int_from_float": "not a whole number",
    "bool_parsing": "not true or false",
}
_LIMITS = {
    "greater_than": ("gt", "must be more than"),
    "greater_than_equal": ("ge", "must be at least"),
    "less_than": ("lt", "must be less than"),
    "less_than_equal": ("le", "must be at most"),
}
# What a setting checked by a pattern should look like.
_PATTERNS = {"brand_colour": "not a colour (write #RRGGBB, e.g. #1f5fa8)"}
_SECRETS = {
    name
    for name, field in Settings.model_fields.items()
    if SecretStr in (field.annotation, *get_args(field.annotation))
}


def env_name(field: str) -> str:
    """The environment variable an operator sets for a setting."""
    known = Settings.model_fields.get(field)
    alias = known.validation_alias if known else None
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return f"FOREWARN_{field.upper()}"


def settings_problems(err: ValidationError) -> list[str]:
    """One line per bad setting: its variable, why, and the value (secrets withheld)."""
    return [_problem(error) for error in err.errors()]


def _problem(error: Any) -> str:
    field = str(error["loc"][0]) if error["loc"] else "?"
    kind, value = error["type"], error.get("input")
    shown = "" if field in _SECRETS else without_credentials(f": {value!r}")
    if kind == "value_error":
        reason, shown = str(error["ctx"]["error"]), ""  # our validators name the value
    elif kind in _REASONS:
        reason = _REASONS[kind]
    elif kind in _LIMITS:
        key, words = _LIMITS[kind]
        reason = f"{words} {error['ctx'][key]}"
    elif kind == "string_pattern_mismatch":
        reason = _PATTERNS.get(field, f"does not match {error['ctx']['pattern']}")
    else:
        reason = str(error["msg"])
    return f"{env_name(field)}: {reason}{shown}"
