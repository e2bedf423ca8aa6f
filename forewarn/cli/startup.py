"""The check every command makes first: settings that parse and a store that answers.

Both answer in one line per problem, naming the environment variable, before Prefect or
any server starts."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from forewarn.config import Settings, settings_problems

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
