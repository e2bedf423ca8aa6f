"""Address helpers shared by import, the public lookup and the site's forms: postcodes,
districts, streets, and the one premise a person names: its number and street ("45 Mill
Road"), the whole address ("45 Mill Road, CB1 2AB"), or its number and postcode ("45,
CB1 2AB"), as the network has them; a name that fits none, or several, finds nothing."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Row

from forewarn.store import premises

_HOUSE_NUMBER = re.compile(r"^\s*(?:flat\s+\w+,?\s*)?\d+[a-z]?\s*,?\s+", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def normalise_postcode(text: str) -> str:
    """Upper case with single spaces: the form postcodes are stored and looked up in."""
    return _SPACES.sub(" ", text.strip().upper())


def district(postcode: str) -> str:
    """The coarser area a postcode belongs to: a UK outward code, or a US ZIP's first 3 digits."""
    code = normalise_postcode(postcode)
    if " " in code:
        return code.split(" ")[0]
    return code[:3]


def street_of(address: str) -> str:
    """The street of an address, without the house number, lower case."""
    return _SPACES.sub(" ", _HOUSE_NUMBER.sub("", address).strip().lower())


_NUMBER = re.compile(r"^\d{1,6}[a-z]?$", re.IGNORECASE)


def squeezed(postcode: str) -> str:
    """A postcode without its spaces, in capitals, as two spellings of it compare."""
    return postcode.replace(" ", "").upper()


def premise_at(conn: Connection, text: str) -> Row[Any, Any, Any, Any] | None:
    """The premise (id, element, address, postcode) `text` names, or None."""
    text = " ".join(text.split())[:200]
    if not text:
        return None
    p = premises.c
    lowered = func.lower(p.address)
    head, _, tail = (part.strip() for part in text.rpartition(","))
    same_postcode = func.upper(func.replace(p.postcode, " ", "")) == squeezed(tail)
    literal = _literal(text.lower())
    tries = [
        # The address as the network has it (its street, indexed, narrows the search).
        (p.street == street_of(text)) & (lowered == text.lower()),
        lowered.like(literal + ",%", escape="\\"),  # its first part: "45 Mill Road"
    ]
    if head:
        if _NUMBER.match(head):  # "45, CB1 2AB": the address the number starts
            tries.append(same_postcode & lowered.like(_literal(head.lower()) + " %", escape="\\"))
        else:  # "45 Mill Road, CB1 2AB"
            tries.append(same_postcode & (lowered == head.lower()))
            tries.append(same_postcode & lowered.like(_literal(head.lower()) + ",%", escape="\\"))
    for test in tries:
        matches = conn.execute(
            select(p.premise_id, p.element_id, p.address, p.postcode).where(test).limit(2)
        ).all()
        if matches:
            return matches[0] if len(matches) == 1 else None  # two fit: nobody is named
    return None


def _literal(text: str) -> str:
    """`text` for a LIKE pattern, its wildcards taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
