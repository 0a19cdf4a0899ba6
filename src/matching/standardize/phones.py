"""Telephone numbers to E.164 with phonenumbers, the record's country as default region."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

from matching.standardize._text import CACHE_SIZE, to_text

_MAX_PHONE_CHARS = 64
_DIGITS = re.compile(r"\d")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# A national number with this little variety (0000000, 1111111) is a placeholder, not a line.
_MIN_DISTINCT_DIGITS = 3
_IS_POSSIBLE = phonenumbers.ValidationResult.IS_POSSIBLE  # not IS_POSSIBLE_LOCAL_ONLY
_SEQUENTIAL = ("0123456789", "1234567890", "9876543210", "0987654321")


def _is_placeholder(national: str) -> bool:
    if len(set(national)) < _MIN_DISTINCT_DIGITS:
        return True
    return any(national in run or run in national for run in _SEQUENTIAL if len(national) >= 9)


@lru_cache(maxsize=CACHE_SIZE)
def _standardize_phone(raw: str, region: str | None) -> str | None:
    text = raw.strip()
    if len(_DIGITS.findall(text)) < 5:
        return None
    if text.startswith("00") and region is None:
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    national = str(number.national_number)
    if _is_placeholder(national):
        return None
    # The length check is cheap; full validation (number-range patterns) costs as much as the
    # parse, and matching needs a consistent key rather than a routable line: test and
    # fictional ranges (555-01xx) and allocations newer than the metadata are kept.
    if phonenumbers.is_possible_number_with_reason(number) != _IS_POSSIBLE:
        return None
    if number.italian_leading_zero and not phonenumbers.is_valid_number(number):
        # Leading zeros of an impossible number do not survive a second reading.
        return None
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return formatted if _E164.match(formatted) else None


def _region(default_region: object) -> str | None:
    region = to_text(default_region).strip().upper()
    return region if len(region) == 2 and region.isalpha() and region.isascii() else None


def standardize_phone(text: object, default_region: str | None = None) -> str | None:
    """A telephone number in E.164 (+4930123456), or None when it is not a number.

    ``default_region`` (ISO alpha-2, usually the record's country) is used for numbers written
    without a country code. Extensions are dropped; placeholders (0000000, 123456789) and
    strings with fewer than five digits give None.
    """
    raw = to_text(text)
    if len(raw) > _MAX_PHONE_CHARS:
        return None
    return _standardize_phone(raw, _region(default_region))
