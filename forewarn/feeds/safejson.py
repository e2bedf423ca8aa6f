"""JSON from outside, read with a depth limit: a body nested thousands deep is refused
with a reason instead of exhausting the stack (json's RecursionError is not a
JSONDecodeError, and code that walks a parsed value recurses too)."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

# Alertmanager's payloads are four deep, Mastodon's a little more; nothing real is 32.
MAX_DEPTH = 32
# A string, escapes included: brackets inside one are not structure. Possessive, so that
# no input makes it backtrack (an unclosed string with many escaped quotes made the
# plain pattern quadratic: 87 s for 160 kB, holding the GIL); an unclosed string runs to
# the end, where json.loads refuses it anyway.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_STEP = np.zeros(256, dtype=np.int8)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1


class Unreadable(ValueError):
    """The input is not JSON this program will read; the message says why."""


def depth(data: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (0 for a scalar)."""
    structure = _STRING.sub(b"", data) if b'"' in data else data
    if not structure:
        return 0
    steps = _STEP[np.frombuffer(structure, dtype=np.uint8)]
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def loads(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse UTF-8 JSON no deeper than `max_depth`; raise Unreadable with the reason."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Unreadable("not UTF-8") from None
    if depth(raw) > max_depth:
        raise Unreadable(f"nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise Unreadable(f"not JSON: {err.msg} at position {err.pos}") from None
    except ValueError as err:  # an integer of more digits than Python will convert
        raise Unreadable(f"not JSON this program reads: {str(err)[:100]}") from None
    except RecursionError:  # the depth check makes this unreachable; kept as a backstop
        raise Unreadable(f"nested deeper than {max_depth} levels") from None
