"""Country names, codes and aliases to ISO 3166-1 alpha-2; first-level regions to their codes."""

from __future__ import annotations

from functools import cache, lru_cache

from matching.standardize._data import read_table
from matching.standardize._text import CACHE_SIZE, clip, fold, to_text

# Codes that are not ISO alpha-2 but stand for a country in records and VAT numbers.
_CODE_ALIASES = {"UK": "GB", "EL": "GR"}


@cache
def _countries() -> tuple[frozenset[str], dict[str, str], dict[str, str]]:
    """(ISO alpha-2 codes, alpha-3 -> alpha-2, folded name or alias -> alpha-2) from the CSV."""
    alpha2: set[str] = set()
    alpha3: dict[str, str] = {}
    names: dict[str, str] = {}
    for row in read_table("countries.csv"):
        code = row["iso2"]
        alpha2.add(code)
        alpha3[row["iso3"]] = code
        for name in [row["name"], *row["aliases"].split("|")]:
            key = fold(name)
            if key:
                names.setdefault(key, code)
    return frozenset(alpha2), alpha3, names


@cache
def _localised_names() -> dict[str, str]:
    """Folded country names in many languages -> alpha-2, from phonenumbers' locale data.

    Loaded on the first name the CSV does not know (it is large). English first, then the
    other languages in a fixed order, so that a clash resolves the same way every time; a
    name the CSV has keeps the CSV's code.
    """
    from phonenumbers.geodata.locale import LOCALE_DATA

    alpha2, _, csv_names = _countries()
    names: dict[str, str] = {}
    languages = sorted({lang for langs in LOCALE_DATA.values() for lang in langs} - {"en"})
    for lang in ["en", *languages]:
        for code in sorted(LOCALE_DATA):
            if code not in alpha2:
                continue
            localised = LOCALE_DATA[code]
            name = localised.get(lang, "")
            if name.startswith("*"):  # "*xx": same as in language xx
                name = localised.get(name[1:], "")
            key = fold(name)
            if key and key not in csv_names:
                names.setdefault(key, code)
    return names


def _find_name(key: str) -> str | None:
    found = _countries()[2].get(key)
    return found if found is not None else _localised_names().get(key)


@lru_cache(maxsize=4096)
def _standardize_country(raw: str) -> str | None:
    alpha2, alpha3, _ = _countries()
    key = fold(raw)
    if not key:
        return None
    upper = key.upper()
    if len(upper) == 2:
        upper = _CODE_ALIASES.get(upper, upper)
        if upper in alpha2:
            return upper
    if len(upper) == 3 and upper in alpha3:
        return alpha3[upper]
    found = _find_name(key)
    if found is None and key.startswith("the "):
        found = _find_name(key[4:])
    return found


def standardize_country(text: object) -> str | None:
    """A country as ISO 3166-1 alpha-2, or None when it is not recognised.

    Accepts alpha-2 (also UK, EL), alpha-3, English names and common aliases (USA, Holland,
    Great Britain), and names in many languages (Deutschland, Allemagne, Германия, 德国).
    """
    return _standardize_country(clip(to_text(text), 128))


@cache
def _regions() -> tuple[dict[tuple[str, str], str], dict[str, set[tuple[str, str]]]]:
    """((country, folded name) -> code, folded name -> {(country, code)})."""
    by_country: dict[tuple[str, str], str] = {}
    anywhere: dict[str, set[tuple[str, str]]] = {}
    for row in read_table("regions.csv"):
        country, code = row["country"], row["code"]
        for name in [code, row["name"], *row["aliases"].split("|")]:
            key = fold(name)
            if not key:
                continue
            by_country.setdefault((country, key), code)
            anywhere.setdefault(key, set()).add((country, code))
    return by_country, anywhere


@lru_cache(maxsize=CACHE_SIZE)
def _standardize_region(raw: str, country: str | None) -> str | None:
    key = fold(raw)
    if not key:
        return None
    by_country, anywhere = _regions()
    if country is not None:
        code = by_country.get((country, key))
        if code is not None:
            return code
    else:
        matches = anywhere.get(key, set())
        codes = {code for _, code in matches}
        if len(codes) == 1:
            return next(iter(codes))
    # A code we know somewhere stays a code (so that a second pass changes nothing).
    if len(key) <= 3 and key.upper() in {code for _, code in anywhere.get(key, set())}:
        return key.upper()
    return key


def standardize_region(text: object, country: str | None = None) -> str | None:
    """A state, province or other first-level region as a comparison key, or None.

    Where the country's regions are known (US, CA, AU, DE) names and abbreviations become the
    postal/ISO 3166-2 code (California, Calif., ca -> "CA"; Bayern, Bavaria -> "BY"); other
    regions are folded (ASCII, lower case). ``country`` is ISO alpha-2 or None.
    """
    return _standardize_region(clip(to_text(text), 128), standardize_country(country))
