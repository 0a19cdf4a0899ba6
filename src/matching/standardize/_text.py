"""Text primitives shared by the standardizers: coercion, transliteration and folding.

Every standardizer folds its input to a *comparison key*: ASCII, lower case, words made of
``[a-z0-9]`` separated by single spaces. Folding is idempotent (a key folds to itself), which
is what makes every standardizer built on it idempotent.
"""

from __future__ import annotations

import re
from functools import lru_cache

from unidecode import unidecode

# Inputs longer than this are cut before any work: no name, street or e-mail address is
# longer, and it bounds the time a hostile value can cost.
MAX_INPUT_CHARS = 512

# Characters that join the letters around them instead of separating words: O'Brien ->
# obrien, McDonald's -> mcdonalds. Applied after transliteration, so only ASCII is listed.
_JOINERS = "'`"

_FOLD_TABLE = str.maketrans(
    {
        **{chr(code): " " for code in range(128) if not chr(code).isalnum()},
        **dict.fromkeys(_JOINERS, ""),
    }
)

# Runs of Han ideographs: unidecode writes one capitalised syllable per character followed by
# a space ("Wang Xiao Ming "); for names and places the syllables of one run form one word
# in the usual romanisation ("Xiaoming", "Beijing").
_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_UNIDECODE_SPACES = re.compile(r"\s+")

_CACHE_MAX_LEN = 128
"""Values up to this length are memoised; longer ones are rare and would bloat the caches."""

CACHE_SIZE = 16384
"""Entries per memo cache. Repeated values (names, streets, cities) and a record seen again
on its next change hit; a full set of caches holds about 30 MB."""


# How data frames spell a missing value; only non-text objects are read this way ("Nan" the
# text is a name).
_MISSING_MARKERS = frozenset({"nan", "<NA>", "NaT", "None"})


def to_text(value: object) -> str:
    """Any value as text, never raising.

    None and missing-value markers (float NaN, pandas NA/NaT) -> ""; bytes decoded leniently;
    a whole float without its ".0" (a phone or postcode read as a number: 2139.0 -> "2139");
    anything else str().
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    try:
        text = str(value)
    except Exception:  # a broken __str__ must not break standardization
        return ""
    return "" if text in _MISSING_MARKERS else text


def clip(text: str, limit: int = MAX_INPUT_CHARS) -> str:
    """``text`` cut to ``limit`` characters (on a word boundary when there is one)."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return cut[:space] if space > limit // 2 else cut


def _join_han(match: re.Match[str]) -> str:
    syllables = _UNIDECODE_SPACES.sub("", unidecode(match.group(0)))
    return f" {syllables} "


# Lone surrogates (from lenient decoders) are not characters; unidecode would warn on each.
_SURROGATES = re.compile("[\ud800-\udfff]")


# unidecode works character by character in Python; most text is ASCII with a few accented
# letters, so only the non-ASCII runs are handed to it (the result is the same).
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")


def _unidecode_run(match: re.Match[str]) -> str:
    try:
        return unidecode(match.group(0))
    except Exception:  # unidecode tables are data; never let one bad entry escape
        return ""


def _transliterate(text: str) -> str:
    text = _HAN_RUN.sub(_join_han, _SURROGATES.sub("", text))
    return _NON_ASCII_RUN.sub(_unidecode_run, text)


def transliterate(text: str) -> str:
    """``text`` in ASCII: diacritics dropped, other scripts romanised (Иван -> Ivan)."""
    if text.isascii():
        return text
    if len(text) <= _CACHE_MAX_LEN:
        return _transliterate_cached(text)
    return _transliterate(text)


@lru_cache(maxsize=CACHE_SIZE)
def _transliterate_cached(text: str) -> str:
    return _transliterate(text)


def fold(text: str) -> str:
    """The comparison key of ``text``: ASCII, lower case, alphanumeric words, single spaces.

    Apostrophes join (O'Brien -> obrien); every other punctuation mark separates words.
    """
    return " ".join(transliterate(text).lower().translate(_FOLD_TABLE).split())


def fold_tokens(text: str) -> list[str]:
    """The words of ``fold(text)``."""
    return transliterate(text).lower().translate(_FOLD_TABLE).split()


MAX_KEY_CHARS = 256
"""Longest comparison key a standardizer writes (transliteration can lengthen its input)."""


def limit_tokens(tokens: list[str], limit: int = MAX_KEY_CHARS) -> list[str]:
    """The leading ``tokens`` whose space-joined length stays within ``limit``.

    Standardizers apply this before their word rules, so that a second pass over their
    output (already within the limit) sees the same words and changes nothing.
    """
    total = -1
    for index, token in enumerate(tokens):
        total += len(token) + 1
        if total > limit:
            return tokens[:index] if index else [token[:limit]]
    return tokens
