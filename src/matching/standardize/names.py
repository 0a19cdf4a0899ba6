"""Person names: honorifics, suffixes, nicknames and splitting a one-field name."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from matching.standardize._data import read_table
from matching.standardize._text import CACHE_SIZE, clip, fold_tokens, limit_tokens, to_text


def _load_name_words() -> dict[str, frozenset[str]]:
    """Honorifics, suffixes and family-name particles (see data/person_name_words.csv)."""
    words: dict[str, set[str]] = {
        "honorific": set(),
        "honorific_tail": set(),
        "suffix": set(),
        "particle": set(),
    }
    for row in read_table("person_name_words.csv"):
        words[row["kind"]].add(row["word"])
    return {kind: frozenset(members) for kind, members in words.items()}


_NAME_WORDS = _load_name_words()
_HONORIFICS = _NAME_WORDS["honorific"]
_HONORIFIC_TAILS = _NAME_WORDS["honorific_tail"]
_SUFFIXES = _NAME_WORDS["suffix"]
_PARTICLES = _NAME_WORDS["particle"]

# "M. Jean Dupont" is Monsieur Dupont; "M. Dupont" may be an initial, so it stays.
_MONSIEUR = re.compile(r"^\s*(?:m|mm)\.\s*(?=\S+\s+\S)", re.IGNORECASE)
# A whole name in Han or Hangul (family name first); two characters are as often a given name
# alone, so only three or four are split.
_CJK_NAME = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]{3,4}$")
_COMMA = re.compile(r"[,;]")


class NameParts(NamedTuple):
    """A person name split into standardized parts ("" where absent)."""

    given: str
    middle: str
    family: str


def _load_nicknames() -> dict[str, str]:
    """name -> canonical, first row per name winning, chains followed to a fixed point."""
    direct: dict[str, str] = {}
    for row in read_table("nicknames.csv"):
        name = " ".join(fold_tokens(row["name"]))
        canonical = " ".join(fold_tokens(row["canonical"]))
        if name and canonical and name != canonical:
            direct.setdefault(name, canonical)
    resolved: dict[str, str] = {}
    for name in direct:
        seen = [name]
        target = direct[name]
        while target in direct and target not in seen:
            seen.append(target)
            target = direct[target]
        if target in seen:  # a cycle: its alphabetically first member stands for all of it
            target = min(seen[seen.index(target) :])
        if target != name:
            resolved[name] = target
    return resolved


NICKNAMES: dict[str, str] = _load_nicknames()
"""Given-name nickname or variant -> canonical given name (all folded)."""


_CONNECTORS = frozenset({"and", "und", "et", "y", "e"})
_AFTER_HONORIFIC = _CONNECTORS | _HONORIFIC_TAILS
_TITLE_WORDS = _HONORIFICS | _HONORIFIC_TAILS


def _strip_titles(tokens: list[str]) -> list[str]:
    """Leading honorifics and trailing suffixes removed, never the last remaining word."""
    tokens = limit_tokens(tokens)
    start, end = 0, len(tokens)
    changed = True
    while changed:
        changed = False
        while end - start > 1 and tokens[end - 1] in _SUFFIXES:
            end -= 1
            changed = True
        while end - start > 1 and (
            tokens[start] in _HONORIFICS
            or (
                # "Dr. med. Hans Müller", "Mr and Mrs Smith"; but "Dr. Phil Smith" keeps Phil.
                start > 0
                and tokens[start] in _AFTER_HONORIFIC
                and tokens[start - 1] in _TITLE_WORDS
                and end - start > 2
            )
        ):
            start += 1
            changed = True
    return tokens[start:end]


def _prepare(raw: str) -> str:
    return _MONSIEUR.sub("", raw, count=1)


def _cjk_family_first(raw: str) -> tuple[str, str] | None:
    """(family, given) of a name written in Han or Hangul without spaces (王小明), else None."""
    stripped = raw.strip()
    if not _CJK_NAME.match(stripped):
        return None
    family = "".join(fold_tokens(stripped[0]))
    given = "".join(fold_tokens(stripped[1:]))
    return (family, given) if family and given else None


def _name_tokens(raw: str) -> list[str]:
    cjk = _cjk_family_first(raw)
    if cjk is not None:
        return [cjk[0], cjk[1]]
    return _strip_titles(fold_tokens(raw))


@lru_cache(maxsize=CACHE_SIZE)
def _standardize_person_name(raw: str) -> str:
    return " ".join(_name_tokens(_prepare(raw)))


def standardize_person_name(text: object) -> str:
    """A person name (or one part of it) as a comparison key.

    ASCII, lower case, hyphens and other punctuation to spaces, apostrophes joined (O'Brien ->
    obrien), leading honorifics (Mr, Dr, Herr, Mme, ...) and trailing suffixes (Jr, III, PhD,
    ...) removed. A name in Han or Hangul script is romanised family name first (王小明 ->
    "wang xiaoming"). Returns "" when there is no name.
    """
    return _standardize_person_name(clip(to_text(text)))


def _canonical_token(token: str) -> str:
    return NICKNAMES.get(token, token)


@lru_cache(maxsize=CACHE_SIZE)
def _canonical_given_name(raw: str) -> str:
    return " ".join(_canonical_token(token) for token in _standardize_person_name(raw).split())


def canonical_given_name(text: object) -> str:
    """A given name standardized, each word replaced by its canonical name (Bob -> robert).

    The canonical form of a name that is short for several (Alex) is the first one the
    nickname table lists; canonical names map to themselves, so this is idempotent.
    """
    return _canonical_given_name(clip(to_text(text)))


def _family_start(tokens: list[str]) -> int:
    """Index where the family name begins: the last word plus the particles before it."""
    start = len(tokens) - 1
    while start > 1 and tokens[start - 1] in _PARTICLES:
        start -= 1
    return start


def _is_title_only(tokens: list[str]) -> bool:
    return all(token in _SUFFIXES or token in _HONORIFICS for token in tokens)


@lru_cache(maxsize=CACHE_SIZE)
def _split_name_parts(raw: str) -> NameParts:
    prepared = _prepare(raw)
    cjk = _cjk_family_first(prepared)
    if cjk is not None:
        return NameParts(given=cjk[1], middle="", family=cjk[0])
    segments = [fold_tokens(part) for part in _COMMA.split(prepared)]
    # Drop empty segments and trailing qualifiers ("John Smith, Jr.", "Smith, John, PhD").
    segments = [
        seg for index, seg in enumerate(segments) if seg and not (index and _is_title_only(seg))
    ]
    if not segments:
        return NameParts("", "", "")
    if len(segments) >= 2:
        # "Smith, John A." -- family name first.
        family = _strip_titles(segments[0])
        rest = _strip_titles([token for seg in segments[1:] for token in seg])
        return NameParts(given=rest[0], middle=" ".join(rest[1:]), family=" ".join(family))
    tokens = _strip_titles(segments[0])
    if len(tokens) == 1:
        return NameParts(given="", middle="", family=tokens[0])
    start = _family_start(tokens)
    return NameParts(
        given=tokens[0], middle=" ".join(tokens[1:start]), family=" ".join(tokens[start:])
    )


def split_name_parts(text: object) -> NameParts:
    """A full name in one field split into standardized (given, middle, family).

    "Smith, John A." and "Mr John A. Smith Jr." both give ("john", "a", "smith"); family-name
    particles stay with the family name ("Ludwig van Beethoven" -> family "van beethoven");
    a lone word is taken as the family name; Han/Hangul names are family name first.
    """
    return _split_name_parts(clip(to_text(text)))


def split_full_name(text: object) -> tuple[str, str]:
    """A full name in one field split into standardized (given, family); see split_name_parts."""
    parts = _split_name_parts(clip(to_text(text)))
    return parts.given, parts.family
