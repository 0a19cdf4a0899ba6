"""Organisation names: legal forms (Inc, GmbH, S.A., ...), leading "The", "&" and punctuation."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from matching.standardize._data import read_table
from matching.standardize._text import CACHE_SIZE, clip, fold_tokens, limit_tokens, to_text

# Dotted or slashed initials are one word: S.A. -> SA, L.L.C. -> LLC, A/S -> AS, I.B.M. -> IBM.
_INITIALS = re.compile(r"(?<![^\W\d_])(?:[^\W\d_][./])+[^\W\d_](?![^\W\d_])\.?")
_AMPERSAND = re.compile(r"\s*[&＋+]\s*")

# Words that join two names ("Smith & Co" once "Co" is gone leaves a dangling "and").
_CONNECTORS = frozenset({"and", "und", "et", "en", "e", "y", "u"})
_ARTICLES = frozenset({"the"})

_CJK = re.compile(r"[\u3000-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_BRACKETS = "()（）[]"

_MAX_FORM_WORDS = 6


class _LegalForms(NamedTuple):
    suffixes: dict[tuple[str, ...], str]
    prefixes: dict[tuple[str, ...], str]
    raw_suffixes: tuple[tuple[str, str], ...]
    raw_prefixes: tuple[tuple[str, str], ...]


class OrgName(NamedTuple):
    """An organisation name split into its standardized core and legal-form code."""

    core: str
    legal_form: str | None


def _join_initials(match: re.Match[str]) -> str:
    return match.group(0).replace(".", "").replace("/", "")


def _org_tokens(text: str) -> list[str]:
    text = _INITIALS.sub(_join_initials, text)
    text = _AMPERSAND.sub(" and ", text)
    return fold_tokens(text)


def _load_legal_forms() -> _LegalForms:
    suffixes: dict[tuple[str, ...], str] = {}
    prefixes: dict[tuple[str, ...], str] = {}
    raw_suffixes: list[tuple[str, str]] = []
    raw_prefixes: list[tuple[str, str]] = []
    for row in read_table("legal_forms.csv"):
        code, variant, position = row["code"], row["variant"], row["position"]
        if _CJK.search(variant):
            if position in ("suffix", "both"):
                raw_suffixes.append((variant, code))
            if position in ("prefix", "both"):
                raw_prefixes.append((variant, code))
            continue
        key = tuple(_org_tokens(variant))
        if not key:
            continue
        if position in ("suffix", "both"):
            suffixes.setdefault(key, code)
        if position in ("prefix", "both"):
            prefixes.setdefault(key, code)
    # Longest first, so that 股份有限公司 wins over 有限公司.
    raw_suffixes.sort(key=lambda item: -len(item[0]))
    raw_prefixes.sort(key=lambda item: -len(item[0]))
    return _LegalForms(suffixes, prefixes, tuple(raw_suffixes), tuple(raw_prefixes))


LEGAL_FORMS = _load_legal_forms()

# Business words written in full or abbreviated; the abbreviation is the standard form.
_ORG_WORDS: dict[str, str] = {
    "international": "intl",
    "internat": "intl",
    "intl": "intl",
    "manufacturing": "mfg",
    "mfg": "mfg",
    "services": "svcs",
    "service": "svc",
    "svcs": "svcs",
    "svc": "svc",
    "brothers": "bros",
    "bros": "bros",
    "associates": "assoc",
    "association": "assn",
    "assoc": "assoc",
    "assn": "assn",
    "technologies": "tech",
    "technology": "tech",
    "tech": "tech",
    "systems": "sys",
    "sys": "sys",
    "department": "dept",
    "dept": "dept",
    "university": "univ",
    "univ": "univ",
    "laboratories": "labs",
    "laboratory": "lab",
    "labs": "labs",
    "lab": "lab",
    "industries": "inds",
    "inds": "inds",
    "holdings": "hldgs",
    "hldgs": "hldgs",
    "management": "mgmt",
    "mgmt": "mgmt",
    "engineering": "eng",
    "eng": "eng",
    "national": "natl",
    "natl": "natl",
    "solutions": "solns",
    "solns": "solns",
}


def _strip_raw_forms(text: str) -> tuple[str, str | None]:
    """CJK-script legal forms (株式会社, 有限公司) cut from the raw text, before romanisation."""
    if not _CJK.search(text):
        return text, None
    stripped = text.strip()
    code: str | None = None
    for variant, form_code in LEGAL_FORMS.raw_suffixes:
        if stripped.endswith(variant) and len(stripped) > len(variant):
            stripped, code = stripped[: -len(variant)].rstrip(), form_code
            break
    for variant, form_code in LEGAL_FORMS.raw_prefixes:
        if stripped.startswith(variant) and len(stripped) > len(variant):
            stripped = stripped[len(variant) :].lstrip()
            code = code or form_code
            break
    return stripped.strip(_BRACKETS + " "), code


def _match_suffix(tokens: list[str]) -> tuple[int, str] | None:
    """(words, code) of the longest legal form ending ``tokens``, leaving at least one word."""
    for size in range(min(_MAX_FORM_WORDS, len(tokens) - 1), 0, -1):
        code = LEGAL_FORMS.suffixes.get(tuple(tokens[-size:]))
        if code is not None:
            return size, code
    return None


def _match_prefix(tokens: list[str]) -> tuple[int, str] | None:
    for size in range(min(_MAX_FORM_WORDS, len(tokens) - 1), 0, -1):
        code = LEGAL_FORMS.prefixes.get(tuple(tokens[:size]))
        if code is not None:
            return size, code
    return None


def _strip_forms(tokens: list[str]) -> tuple[list[str], str | None]:
    """Legal forms, articles and dangling connectors removed from both ends, to a fixed point.

    The code returned is the one closest to the end of the name (the form a name "ends in"),
    or the leading one when there is no trailing form.
    """
    trailing: str | None = None
    leading: str | None = None
    changed = True
    while changed and len(tokens) > 1:
        changed = False
        suffix = _match_suffix(tokens)
        if suffix is not None:
            size, code = suffix
            tokens = tokens[:-size]
            trailing = trailing or code
            changed = True
        prefix = _match_prefix(tokens)
        if prefix is not None:
            size, code = prefix
            tokens = tokens[size:]
            leading = leading or code
            changed = True
        while len(tokens) > 1 and (tokens[-1] in _CONNECTORS or tokens[-1] in _ARTICLES):
            tokens = tokens[:-1]
            changed = True
        while len(tokens) > 1 and (tokens[0] in _ARTICLES or tokens[0] in _CONNECTORS):
            tokens = tokens[1:]
            changed = True
    return tokens, trailing or leading


@lru_cache(maxsize=CACHE_SIZE)
def _split_org_name(raw: str) -> OrgName:
    text, raw_code = _strip_raw_forms(raw)
    tokens = limit_tokens(_org_tokens(text))
    tokens, code = _strip_forms(tokens)
    core = " ".join(_ORG_WORDS.get(token, token) for token in tokens)
    return OrgName(core=core, legal_form=code or raw_code)


def split_org_name(text: object) -> OrgName:
    """An organisation name as (standardized core name, legal-form code or None).

    "The Coca-Cola Company" -> ("coca cola", "CO"); "Müller & Söhne GmbH & Co. KG" ->
    ("muller and sohne", "GMBH_CO_KG"); "トヨタ自動車株式会社" -> ("toyota zidongche", "KK").
    """
    return _split_org_name(clip(to_text(text)))


def standardize_org_name(text: object) -> str:
    """An organisation name as a comparison key, without its legal form.

    ASCII, lower case, punctuation removed (S.A. -> sa), "&" written "and", a leading "The"
    and legal-form words at either end (Inc, Ltd, GmbH, S.A., Sp. z o.o., ...) removed,
    common business words abbreviated (International -> intl). Returns "" when empty.
    """
    return _split_org_name(clip(to_text(text))).core


LEGAL_FORM_CODES: frozenset[str] = frozenset(
    [*LEGAL_FORMS.suffixes.values(), *LEGAL_FORMS.prefixes.values()]
    + [code for _, code in LEGAL_FORMS.raw_suffixes + LEGAL_FORMS.raw_prefixes]
)
"""Every code legal_form() can return."""


@lru_cache(maxsize=4096)
def _standardize_legal_form(raw: str) -> str | None:
    stripped = raw.strip()
    if stripped in LEGAL_FORM_CODES:
        return stripped
    _, raw_code = _strip_raw_forms("x" + stripped)
    if raw_code is not None:
        return raw_code
    tokens = tuple(_org_tokens(stripped))
    return LEGAL_FORMS.suffixes.get(tokens) or LEGAL_FORMS.prefixes.get(tokens)


def standardize_legal_form(text: object) -> str | None:
    """A legal form written on its own ("GmbH", "S.A.", "Incorporated") as its code, or None.

    A code (as legal_form returns) is returned unchanged.
    """
    return _standardize_legal_form(clip(to_text(text), 128))


def legal_form(text: object) -> str | None:
    """The normalised legal-form code of an organisation name (INC, GMBH, SA, ...), or None."""
    return _split_org_name(clip(to_text(text))).legal_form
