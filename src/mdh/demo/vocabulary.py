"""The demo's word lists (package data under ``mdh/demo/data``), loaded once into typed tables.

Every list was written for mdh (see the header of each CSV). Rows are frozen values shared by
every generated entity, so an entity holds references to them rather than copies.
"""

from __future__ import annotations

import csv
import functools
import io
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Name:
    """A given or family name with its other spellings."""

    latin: str
    native: str
    """The name in its own script (Japanese, Cyrillic, Greek); "" for Latin-script names."""
    variants: tuple[str, ...]
    """Other romanisations or transliterations records use."""
    nicknames: tuple[str, ...]
    gender: str
    """"m", "f" or "" (used by everyone)."""


@dataclass(frozen=True, slots=True)
class Street:
    name: str
    native: str


@dataclass(frozen=True, slots=True)
class City:
    country: str
    name: str
    variants: tuple[str, ...]
    native: str
    region: str
    region_name: str
    region_native: str
    postcodes: tuple[str, ...]
    """Patterns: "#" a digit, "@" a letter the country uses."""
    area_code: str
    streets: tuple[Street, ...]


@dataclass(frozen=True, slots=True)
class CompanyWord:
    word: str
    native: str
    variants: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LegalForm:
    country: str
    code: str
    weight: float
    variants: tuple[str, ...]
    """Spellings; the first is the registered form."""
    native: tuple[str, ...]


class Abbreviator:
    """Which words of a text can be abbreviated, and how (remembered per text)."""

    def __init__(
        self,
        words: dict[str, tuple[str, ...]],
        suffixes: tuple[tuple[str, tuple[str, ...]], ...] = (),
    ) -> None:
        self.words = words
        self.suffixes = suffixes
        self._known: dict[str, tuple[tuple[int, str, tuple[str, ...]], ...]] = {}

    def candidates(self, text: str) -> tuple[tuple[int, str, tuple[str, ...]], ...]:
        """(word position, the part of the word kept, abbreviations) per abbreviable word."""
        known = self._known.get(text)
        if known is not None:
            return known
        found = []
        for position, token in enumerate(text.split(" ")):
            key = token.lower()
            options = self.words.get(key)
            if options is not None:
                found.append((position, "", options))
                continue
            for suffix, abbreviations in self.suffixes:
                if key.endswith(suffix) and len(key) > len(suffix):
                    found.append((position, token[: -len(suffix)], abbreviations))
                    break
        result = tuple(found)
        if len(self._known) < 100_000:
            self._known[text] = result
        return result


@dataclass(frozen=True, slots=True)
class Vocabulary:
    given: dict[tuple[str, str], tuple[Name, ...]]
    """By (language, gender)."""
    family: dict[tuple[str, str], tuple[Name, ...]]
    """By (country or origin language, gender); names for everyone appear under both genders."""
    cities: dict[str, tuple[City, ...]]
    company_prefixes: dict[str, tuple[CompanyWord, ...]]
    company_nouns_after: dict[str, tuple[CompanyWord, ...]]
    company_nouns_before: dict[str, tuple[CompanyWord, ...]]
    legal_forms: dict[str, tuple[LegalForm, ...]]
    email_domains: dict[str, tuple[tuple[str, ...], tuple[float, ...]]]
    """Per country: domains and their cumulative weights."""
    street_abbreviations: Abbreviator
    org_abbreviations: Abbreviator


def _rows(filename: str) -> Iterator[dict[str, str]]:
    text = (
        resources.files("mdh.demo").joinpath("data").joinpath(filename).read_text(encoding="utf-8")
    )
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    yield from csv.DictReader(io.StringIO("\n".join(lines)))


def _split(value: str) -> tuple[str, ...]:
    return tuple(part for part in value.split("|") if part)


@functools.cache
def load_vocabulary() -> Vocabulary:
    """Read the package data once per process."""
    nicknames = {row["name"]: _split(row["nicknames"]) for row in _rows("nicknames.csv")}

    given: defaultdict[tuple[str, str], list[Name]] = defaultdict(list)
    for row in _rows("given_names.csv"):
        name = Name(
            row["name"],
            row["native"],
            _split(row["variants"]),
            nicknames.get(row["name"], ()),
            row["gender"],
        )
        given[(row["lang"], row["gender"])].append(name)

    family: defaultdict[tuple[str, str], list[Name]] = defaultdict(list)
    for row in _rows("family_names.csv"):
        name = Name(row["name"], row["native"], _split(row["variants"]), (), row["gender"])
        for gender in (row["gender"],) if row["gender"] else ("m", "f"):
            family[(row["group"], gender)].append(name)

    streets_by_country: defaultdict[str, list[tuple[str, Street]]] = defaultdict(list)
    for row in _rows("streets.csv"):
        streets_by_country[row["country"]].append(
            (row["locality"], Street(row["name"], row["native"]))
        )

    cities: defaultdict[str, list[City]] = defaultdict(list)
    for row in _rows("cities.csv"):
        country = row["country"]
        local = tuple(
            street
            for locality, street in streets_by_country[country]
            if locality in ("", row["city"], row["region"])
        )
        cities[country].append(
            City(
                country=country,
                name=row["city"],
                variants=_split(row["variants"]),
                native=row["native"],
                region=row["region"],
                region_name=row["region_name"],
                region_native=row["region_native"],
                postcodes=_split(row["postcode"]),
                area_code=row["area_code"],
                streets=local,
            )
        )

    prefixes: defaultdict[str, list[CompanyWord]] = defaultdict(list)
    after: defaultdict[str, list[CompanyWord]] = defaultdict(list)
    before: defaultdict[str, list[CompanyWord]] = defaultdict(list)
    for row in _rows("company_words.csv"):
        word = CompanyWord(row["word"], row["native"], _split(row["variants"]))
        if row["kind"] == "prefix":
            prefixes[row["lang"]].append(word)
        elif row["position"] == "before":
            before[row["lang"]].append(word)
        else:
            after[row["lang"]].append(word)

    legal: defaultdict[str, list[LegalForm]] = defaultdict(list)
    for row in _rows("legal_forms.csv"):
        legal[row["country"]].append(
            LegalForm(
                row["country"],
                row["code"],
                float(row["weight"]),
                _split(row["variants"]),
                _split(row["native"]),
            )
        )

    domains: defaultdict[str, list[tuple[str, float]]] = defaultdict(list)
    for row in _rows("email_domains.csv"):
        domains[row["country"]].append((row["domain"], float(row["weight"])))

    street_words: dict[str, tuple[str, ...]] = {}
    suffixes: list[tuple[str, tuple[str, ...]]] = []
    org_words: dict[str, tuple[str, ...]] = {}
    for row in _rows("abbreviations.csv"):
        abbreviations = _split(row["abbreviations"])
        if row["scope"] == "org":
            org_words[row["word"].lower()] = abbreviations
        elif row["match"] == "suffix":
            suffixes.append((row["word"].lower(), abbreviations))
        else:
            key = row["word"].lower()
            street_words[key] = street_words.get(key, ()) + abbreviations

    return Vocabulary(
        given={key: tuple(value) for key, value in given.items()},
        family={key: tuple(value) for key, value in family.items()},
        cities={key: tuple(value) for key, value in cities.items()},
        company_prefixes={key: tuple(value) for key, value in prefixes.items()},
        company_nouns_after={key: tuple(value) for key, value in after.items()},
        company_nouns_before={key: tuple(value) for key, value in before.items()},
        legal_forms={key: tuple(value) for key, value in legal.items()},
        email_domains={
            key: (tuple(d for d, _ in value), tuple(_cumulative([w for _, w in value])))
            for key, value in domains.items()
        },
        street_abbreviations=Abbreviator(street_words, tuple(suffixes)),
        org_abbreviations=Abbreviator(org_words),
    )


def _cumulative(weights: list[float]) -> list[float]:
    total = 0.0
    out: list[float] = []
    for weight in weights:
        total += weight
        out.append(total)
    return out
