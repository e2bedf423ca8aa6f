"""Address helpers shared by import and the public lookup: postcodes, districts, streets."""

from __future__ import annotations

import re

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
