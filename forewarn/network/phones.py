"""Phone numbers to E.164, fast: the import's hot spot.

`phonenumbers` costs ~18 µs a number. Most numbers in an operator's file are plain
digits in the home country's national (`07911 123456`) or international (`+44 7911
123456`) format, and for those the answer needs only the country's own validity
patterns, which `phonenumbers` ships as metadata: one compiled expression and a
dictionary look-up. Whatever that shortcut cannot vouch for goes to `phonenumbers`
itself, so both paths give the same answer (a test compares them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneMetadata
from phonenumbers.phonemetadata import PhoneNumberDesc

# Digits with the separators people type; anything else (letters, extensions, unicode
# digits) is left to phonenumbers.
_PLAIN = re.compile(r"^\+?[0-9 ().\-]+$")
_SEPARATORS = str.maketrans("", "", " ().-")


def normalise_phones(texts: list[str], region: str) -> list[str]:
    """E.164 for each valid number; for the others the reason, which never starts with +."""
    shortcut = Shortcut.for_region(region)
    return [shortcut.e164(text) or _slow(text, region) for text in texts]


def normalise_slowly(texts: list[str], region: str) -> list[str]:
    """As normalise_phones, through phonenumbers alone (for texts the shortcut declined)."""
    return [_slow(text, region) for text in texts]


def _slow(text: str, region: str) -> str:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return f"phone {text[:32]!r} cannot be parsed"
    if phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return f"phone {text[:32]!r} {NOT_VALID}"


# Why a number that parses is refused (the import counts these to suggest a region).
NOT_VALID = "is not a valid number"

_TYPES = (
    "fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "personal_number",
    "voip", "pager", "uan", "voicemail",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Shortcut:
    """Vouches for numbers of one region that need no more than its validity patterns."""

    country_code: str
    national_prefix: str
    valid: re.Pattern[str] | None  # None: no shortcut for this region
    lengths: frozenset[int]
    strippable: re.Pattern[str] | None  # what phonenumbers would strip as a national prefix
    international: re.Pattern[str] | None

    @classmethod
    def for_region(cls, region: str) -> Shortcut:
        """The shortcut for a region (cached); one that vouches for nothing if unsafe."""
        key = region.upper()
        found = _CACHE.get(key)
        if found is None:
            found = _CACHE[key] = _build(key)
        return found

    def e164(self, text: str) -> str | None:
        """The E.164 form when the region's patterns alone prove the number valid, else None."""
        if self.valid is None or not _PLAIN.match(text):
            return None
        digits = text.translate(_SEPARATORS)
        if digits.startswith("+"):
            if not digits.startswith(self.country_code, 1):
                return None
            national = digits[1 + len(self.country_code) :]
        elif self.international is not None and self.international.match(digits):
            return None  # an international call prefix: phonenumbers reads the country
        elif self.national_prefix and digits.startswith(self.national_prefix):
            national = digits[len(self.national_prefix) :]
            assert self.strippable is not None
            found = self.strippable.match(digits)
            if found is None or found.end() != len(self.national_prefix):
                return None  # phonenumbers would strip something else
        else:
            national = digits
        if national.startswith("0") or len(national) not in self.lengths:
            return None
        if self.strippable is not None and self.strippable.match(national):
            return None  # phonenumbers might strip a prefix from this
        if not self.valid.fullmatch(national):
            return None
        return f"+{self.country_code}{national}"


_CACHE: dict[str, Shortcut] = {}


def _build(region: str) -> Shortcut:
    none = Shortcut("", "", None, frozenset(), None, None)
    meta = PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.national_prefix_transform_rule or meta.leading_digits:
        return none
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(meta.country_code or 0, ())
    if not regions or regions[0] != region:
        return none  # not the country code's main region: its numbers may be another's
    general = meta.general_desc
    if general is None or not general.national_number_pattern:
        return none
    # Valid = the general pattern and one type's pattern, each with its possible lengths;
    # lengths are checked per type inside the expression by a lookahead.
    alternatives = []
    lengths: set[int] = set()
    for name in _TYPES:
        desc: PhoneNumberDesc | None = getattr(meta, name)
        if desc is None or not desc.national_number_pattern:
            continue
        type_lengths = desc.possible_length or general.possible_length
        lengths |= set(type_lengths)
        sizes = "|".join(f".{{{n}}}" for n in type_lengths)
        alternatives.append(f"(?=(?:{sizes})$)(?:{desc.national_number_pattern})")
    if not alternatives:
        return none
    general_sizes = "|".join(f".{{{n}}}" for n in general.possible_length)
    general_pattern = f"(?=(?:{general_sizes})$)(?=(?:{general.national_number_pattern})$)"
    valid = f"{general_pattern}(?:{'|'.join(alternatives)})"
    prefix = meta.national_prefix or ""
    parsing = meta.national_prefix_for_parsing or prefix
    return Shortcut(
        country_code=str(meta.country_code),
        national_prefix=prefix,
        valid=re.compile(valid),
        lengths=frozenset(lengths & set(general.possible_length)),
        strippable=re.compile(parsing) if parsing else None,
        international=re.compile(meta.international_prefix) if meta.international_prefix else None,
    )
