"""Text from customers, ops and feeds made safe for where it is shown: a terminal, XML,
a public page or post. Control characters and bidi overrides never pass through raw."""

from __future__ import annotations

import re
import sys
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

# C0 (but tab and newline), DEL and C1: they move cursors, clear screens, set titles, and
# XML 1.0 refuses most of them outright. A carriage return is a control too: it rewrites
# the line a reader is looking at.
_CONTROLS = [c for c in range(0x20) if c not in (0x09, 0x0A)] + list(range(0x7F, 0xA0))
# Bidi embeddings, overrides and isolates reorder what a reader sees ("Trojan Source");
# the plain marks (U+200E/F) only nudge neutral characters and stay.
_BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x061C]
# Not characters at all in XML 1.0, nor useful anywhere else.
_NONCHARACTERS = [0xFFFE, 0xFFFF]

_REMOVE = dict.fromkeys([*_CONTROLS, *_BIDI, *_NONCHARACTERS])
_SURROGATES = re.compile("[\ud800-\udfff]")
_SHOWN = {c: f"\\x{c:02x}" for c in _CONTROLS} | {c: f"\\u{c:04x}" for c in _BIDI}


def clean(text: str) -> str:
    """`text` without control characters, bidi controls, noncharacters or lone surrogates
    (tab and newline kept): what is stored from ops and shown to the public."""
    cleaned = text.translate(_REMOVE)
    if cleaned.isascii():
        return cleaned
    return _SURROGATES.sub("", cleaned)


def clean_all(value: Any) -> Any:
    """`clean` applied to every string inside a JSON-like value (dicts, lists, strings)."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean_all(k): clean_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_all(v) for v in value]
    return value


def for_terminal(text: str) -> str:
    """`text` with every control and bidi character shown as an escape (`\\x1b`), so an
    operator sees what a customer sent without the terminal obeying it."""
    return _SURROGATES.sub(lambda m: f"\\u{ord(m.group()):04x}", text.translate(_SHOWN))


def argument(value: str) -> str:
    """A command-line argument as text: bytes that were not UTF-8 (kept by Python as
    surrogates) are read as Windows-1252, the likeliest other terminal encoding."""
    if not _SURROGATES.search(value):
        return value
    raw = value.encode(sys.getfilesystemencoding(), "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


# user:password@ (or token@) in any URL, to the host's last "@": what a log or an error
# must not show. Spaces are allowed in it (a malformed URL still hides its password):
# over-hiding a log line's words is the safer mistake. A scheme is tried only where a run
# of scheme characters begins, possessively, so no text makes this quadratic.
_USERINFO = re.compile(r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*+://)[^/?#'\"\n]*@")


def without_credentials(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by `***`: for errors and
    logs that quote a URL an operator configured (httpx names the URL it failed on)."""
    return _USERINFO.sub(r"\1***@", text)


def credentials_apart(url: str) -> tuple[str, tuple[str, str] | None]:
    """`url` without its user:password, and those apart (for HTTP basic auth), so that no
    request line, log or error built from the URL carries them."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    bare = urlunsplit(parts._replace(netloc=host))
    return bare, (unquote(parts.username or ""), unquote(parts.password or ""))
