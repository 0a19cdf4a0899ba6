"""Dates in the formats records use, to ISO 8601 (YYYY-MM-DD)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import lru_cache
from numbers import Number

from matching.standardize._text import CACHE_SIZE, fold_tokens, to_text

ORDERS = ("DMY", "MDY", "YMD")

# Two-digit years: 00-29 are 20xx, 30-99 are 19xx. Fixed, not relative to today, so that the
# same input standardizes the same way whenever it is replayed.
_PIVOT = 30

_EXCEL_EPOCH = date(1899, 12, 30)  # serial 1 = 1900-01-01 after Excel's 1900 leap-year bug
_EXCEL_MAX = (date(9999, 12, 31) - _EXCEL_EPOCH).days

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:$|[T\s_].*$)")
_COMPACT = re.compile(r"^(\d{8})(?:$|[T\s].*$)")
_NUMERIC = re.compile(r"^(\d{1,4})[-/.\s]+(\d{1,2})[-/.\s]+(\d{1,4})\.?(?:$|[T\s,].*$)")
_ORDINAL = re.compile(r"^(\d{1,2})(?:st|nd|rd|th|er|e|eme|o|a)$")

_MONTHS: dict[str, int] = {}
for _month, _names in enumerate(
    (
        "january jan januar jaenner janner janvier janv enero ene gennaio gen januari janeiro",
        "february feb februar fevrier fevr fev febrero febbraio februari fevereiro",
        "march mar marz maerz mars marzo maart mrt marco",
        "april apr avril avr abril abr aprile",
        "may mai mayo maggio mag mei maio",
        "june jun juni juin junio giugno giu junho",
        "july jul juli juillet juil julio luglio lug julho",
        "august aug aout agosto ago augustus",
        "september sep sept septembre septiembre setiembre set settembre setembro",
        "october oct oktober okt octobre octubre ottobre ott outubro out",
        "november nov novembre noviembre novembro",
        "december dec dezember dez decembre diciembre dic dicembre dezembro",
    ),
    start=1,
):
    for _name in _names.split():
        _MONTHS[_name] = _month


def _year(text: str) -> int:
    value = int(text)
    if len(text) <= 2:
        return value + (2000 if value < _PIVOT else 1900)
    return value


def _iso(year: int, month: int, day: int) -> str | None:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def _ordered(first: str, second: str, third: str, order: str) -> str | None:
    """The date of three numeric fields in ``order``; if that cannot exist, the other reading."""
    if len(first) >= 3 or order == "YMD":
        return _iso(_year(first), int(second), int(third))
    year = _year(third)
    day, month = (int(first), int(second)) if order == "DMY" else (int(second), int(first))
    found = _iso(year, month, day)
    if found is None and month > 12 >= day:  # "13/02/1980" read as MDY: only DMY can be meant
        found = _iso(year, day, month)
    return found


def _from_words(text: str) -> str | None:
    """Dates with a month name: "3 Feb 1980", "February 3rd, 1980", "03-FEB-80", "3. März 1980"."""
    month: int | None = None
    numbers: list[str] = []
    for token in fold_tokens(text):
        if token.isdigit():
            numbers.append(token)
            continue
        ordinal = _ORDINAL.match(token)
        if ordinal is not None:
            numbers.append(ordinal.group(1))
            continue
        found = _MONTHS.get(token)
        if found is not None:
            if month is not None:
                return None
            month = found
    if month is None or len(numbers) != 2:
        return None
    first, second = numbers
    if len(first) == 4 or (len(first) <= 2 and int(first) > 31):
        year, day = first, second
    else:
        day, year = first, second
    if len(day) > 2:
        return None
    return _iso(_year(year), month, int(day))


@lru_cache(maxsize=CACHE_SIZE)
def _standardize_date_text(text: str, order: str) -> str | None:
    text = text.strip()
    if not text or len(text) > 64:
        return None
    iso = _ISO.match(text)
    if iso is not None:
        return _iso(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
    compact = _COMPACT.match(text)
    if compact is not None:
        digits = compact.group(1)
        found = _iso(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        if found is not None or order == "YMD":
            return found
        return _ordered(digits[:2], digits[2:4], digits[4:], order)
    numeric = _NUMERIC.match(text)
    if numeric is not None:
        return _ordered(numeric.group(1), numeric.group(2), numeric.group(3), order)
    return _from_words(text)


def standardize_date(value: object, order: str = "DMY") -> str | None:
    """A date as ISO ``YYYY-MM-DD``, or None when it is not one or cannot exist (31/02/1980).

    Accepts date and datetime objects; ISO dates and timestamps (the time is dropped);
    YYYYMMDD; day-month-year with ``/ . -`` or spaces in the field ``order`` given ("DMY",
    "MDY" or "YMD"; a reading that cannot exist falls back to the other one when that can);
    month names in English, German, French, Spanish, Italian, Dutch and Portuguese ("3 Feb
    1980", "February 3rd, 1980"); an 8-digit integer as YYYYMMDD; other numbers as Excel
    serial days. Two-digit years 00-29 are 20xx, 30-99 are 19xx.
    """
    if isinstance(value, date):  # datetime included; pandas NaT is one too, and not a date
        try:
            text = (value.date() if isinstance(value, datetime) else value).isoformat()
        except (TypeError, ValueError, AttributeError, OverflowError):
            return None
        return text if isinstance(text, str) and _ISO_DAY.match(text) else None
    if isinstance(value, bool):
        return None
    order = order.upper() if isinstance(order, str) and order.upper() in ORDERS else "DMY"
    if isinstance(value, Number):
        return _from_number(value)
    return _standardize_date_text(to_text(value)[:65], order)


def _from_number(value: Number) -> str | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    whole = int(number)
    if whole == number and 10_000_101 <= whole <= 99_991_231:
        text = str(whole)
        return _iso(int(text[:4]), int(text[4:6]), int(text[6:]))
    if 1 <= whole <= _EXCEL_MAX:
        return (_EXCEL_EPOCH + timedelta(days=whole)).isoformat()
    return None
