"""Postal addresses: street words, house numbers and units, postcodes per country, cities."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

from matching.standardize._data import read_table
from matching.standardize._text import (
    CACHE_SIZE,
    clip,
    fold_tokens,
    limit_tokens,
    to_text,
    transliterate,
)
from matching.standardize.countries import standardize_country


class StreetParts(NamedTuple):
    """A street line split into house number, standardized street name and unit."""

    house_number: str | None
    street: str
    unit: str | None


def _load_street_words() -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    words: dict[str, str] = {}
    compounds: list[tuple[str, str]] = []
    for row in read_table("street_words.csv"):
        variant = "".join(fold_tokens(row["variant"]))
        canonical = "".join(fold_tokens(row["canonical"]))
        if row["kind"] == "compound":
            compounds.append((variant, canonical))
        else:
            words.setdefault(variant, canonical)
    compounds.sort(key=lambda item: -len(item[0]))
    return words, tuple(compounds)


STREET_WORDS, _COMPOUNDS = _load_street_words()

# --- raw-text rewrites, before folding -------------------------------------------------
_NUMERO = re.compile(r"\b[Nn][°º]\s*|№\s*|\b[Nn]o\.\s*(?=\d)")
_CALLE = re.compile(r"^\s*[Cc]\s*/\s*(?!o\b)(?=[^\W\d_])")  # "C/ Mayor", not "c/o"
# On folded text. The short forms only count before a number ("BP 12", "CP 345").
_PO_BOX = re.compile(
    r"\b(?:p\s?o\s?box|post\s+office\s+box|postfach|postbus|boite\s+postale"
    r"|apartado\s+de\s+correos|caixa\s+postal|casella\s+postale"
    r"|(?:pob|bp|cp|apdo|apartado|casilla)(?=\s*\d))\b"
)

# --- splitting (on lower-case ASCII that keeps , ; / - #) -----------------------------------
_SEGMENT_SEPARATORS = re.compile(r"[,;\n\r|]+")
_SPLIT_TABLE = str.maketrans(
    {
        **{chr(code): " " for code in range(128) if not chr(code).isalnum()},
        **{keep: keep for keep in ",;/-#"},
        "'": "",
        "`": "",
    }
)
_NUMBER_JOIN = re.compile(r"(\d)\s*([-/])\s*(\d)")
_NUMBER_LETTER = re.compile(r"\b(\d+)\s+([a-z])\b$")
_UNIT_WORDS = r"apartment|apt|appt|app|apto|suite|ste|unit|flat|room|rm|whg|wohnung|top|door|tuer"
# A unit is a number ("Apt 4B", "Suite 200", "#12") or a single letter ("Flat C"): "Ste Marie"
# is a saint, not suite "marie".
_UNIT = re.compile(
    rf"(?:^|\s)(?:(?:{_UNIT_WORDS})\s*(?:no\s+)?|#\s*)"
    r"([a-z]?\d[a-z0-9]*(?:-[a-z0-9]+)*|[a-z])(?=\s|$)"
)
_UNIT_SLASH = re.compile(r"^(?:unit\s+|u\s*)?(\d+[a-z]?)\s*/\s*(\d+[a-z]?)\s+(?=[a-z])")
_FLOOR = re.compile(
    r"(?:^|\s)(?:\d+(?:st|nd|rd|th|o|a|e|er|eme)?\s*(?:floor|fl|etage|og|stock|piso|planta|level)"
    r"|(?:floor|fl|etage|piso|planta|level|lvl)\s*\d+)\b"
)
_HOUSE = r"\d+[a-z]?(?:[-/]\d+[a-z]?)?"
# Words that announce a house number: No., Nr., n°, Russian "д." (dom).
_MARK = r"(?:(?:no|nr|num|numero|d|dom)\s+)?"
_LEADING_NUMBER = re.compile(rf"^{_MARK}({_HOUSE})(?=\s|$)\s*(.*)$")
_TRAILING_NUMBER = re.compile(rf"^(.*?\D)\s+{_MARK}({_HOUSE})$")
_ONLY_NUMBER = re.compile(rf"^{_MARK}({_HOUSE})$")
_TRAILING_MARK = re.compile(r"(?:^|\s)(?:no|nr|num|numero|d|dom)$")
_CARE_OF = re.compile(r"^(?:c\s?/\s?o|attn|attention|z\s?hd|zu\s+handen)\b")
_HAS_LETTER = re.compile(r"[a-z]")
_HAS_DIGIT = re.compile(r"\d")

# Most lines hold none of what the rewrites above look for, and a substring test is much
# cheaper than a regex scan. Each rewrite below runs only when its pattern cannot fail for
# want of text it requires, so every result is the same; splitting a typical street line
# takes about a quarter less time.
_NUMERO_NEEDS = ("°", "º", "№", "o.")
_MARK_WORDS = ("no", "nr", "num", "numero", "d", "dom")
# Every word of _FLOOR contains one of these.
_FLOOR_NEEDS = ("fl", "etage", "og", "stock", "piso", "planta", "level", "lvl")


def _mark_numero(text: str) -> str:
    if any(needed in text for needed in _NUMERO_NEEDS):
        return _NUMERO.sub(" no ", text)
    return text


def _join_number(segment: str) -> str:
    if "-" in segment or "/" in segment:
        return _NUMBER_JOIN.sub(r"\1\2\3", segment)
    return segment


def _join_number_letter(segment: str) -> str:
    # "12 a" -> "12a": the pattern ends in a space and one letter.
    if len(segment) > 2 and segment[-2].isspace() and "a" <= segment[-1] <= "z":
        return _NUMBER_LETTER.sub(r"\1\2", segment)
    return segment


def _drop_floor(segment: str) -> str:
    if any(needed in segment for needed in _FLOOR_NEEDS):
        return _FLOOR.sub(" ", segment)
    return segment


def _drop_trailing_mark(text: str) -> str:
    return _TRAILING_MARK.sub("", text) if text.endswith(_MARK_WORDS) else text


def _street_word(token: str) -> str:
    mapped = STREET_WORDS.get(token)
    if mapped is not None:
        return mapped
    for suffix, canonical in _COMPOUNDS:
        if len(token) > len(suffix) and token.endswith(suffix):
            return token[: -len(suffix)] + canonical
    return token


def _rewrite_raw(text: str) -> str:
    text = _mark_numero(text)
    return _CALLE.sub("calle ", text) if "/" in text else text


@lru_cache(maxsize=CACHE_SIZE)
def _standardize_street(raw: str) -> str:
    folded = " ".join(fold_tokens(_rewrite_raw(raw)))
    folded = _PO_BOX.sub("po box", folded)
    tokens = limit_tokens(folded.split())
    return " ".join(_street_word(token) for token in tokens)


def standardize_street(text: object) -> str:
    """A street line as a comparison key, house number and unit included.

    ASCII, lower case, punctuation removed, street types and directions abbreviated the
    USPS way across languages (Street/St. -> st, Avenue/Avenida/Av. -> ave, Boulevard/Bd ->
    blvd, Straße/Strasse/Str. -> str also inside a word: Hauptstraße -> hauptstr; North -> n),
    ordinals written as numbers (Fifth -> 5th), P.O. Box/Postfach -> "po box".
    """
    return _standardize_street(clip(to_text(text)))


def _split_text(raw: str) -> str:
    text = transliterate(_rewrite_raw(raw)).lower().translate(_SPLIT_TABLE)
    text = _join_number(text)
    return _PO_BOX.sub("po box", " ".join(text.split()))


def _take_unit(segment: str) -> tuple[str, str | None]:
    match = _UNIT.search(segment)
    if match is None:
        return segment, None
    rest = (segment[: match.start()] + " " + segment[match.end() :]).strip()
    return " ".join(rest.split()), match.group(1)


def _take_number(segment: str) -> tuple[str, str | None]:
    for pattern, number_group, rest_group in ((_LEADING_NUMBER, 1, 2), (_TRAILING_NUMBER, 2, 1)):
        match = pattern.match(segment)
        if match is None:
            continue
        rest = _drop_trailing_mark(match.group(rest_group)).strip()
        if _HAS_LETTER.search(rest):
            return rest, match.group(number_group)
    return segment, None


def _normalise_number(number: str | None) -> str | None:
    return number.replace(" ", "") if number else None


def _split_once(raw: str, want_number: bool, want_unit: bool) -> StreetParts:
    segments = [seg.strip(" -/") for seg in _SEGMENT_SEPARATORS.split(_split_text(raw))]
    segments = ["" if _CARE_OF.match(seg) else seg for seg in segments]
    unit: str | None = None
    number: str | None = None

    if want_unit or want_number:
        first = next((index for index, seg in enumerate(segments) if seg), None)
        if first is not None:
            slash = _UNIT_SLASH.match(segments[first])
            if slash is not None:  # Australian "5/12 George St": unit 5, number 12
                if want_unit:
                    unit = slash.group(1)
                if want_number:
                    number = slash.group(2)
                segments[first] = segments[first][slash.end() :]
    if want_unit and unit is None:
        for index, seg in enumerate(segments):
            rest, found = _take_unit(seg)
            if found is not None:
                segments[index], unit = rest, found
                break
    segments = [" ".join(_drop_floor(seg).split()).strip(" -/#") for seg in segments]

    street_index: int | None = None
    if want_number and number is None:
        for index, seg in enumerate(segments):
            rest, found = _take_number(_join_number_letter(seg))
            if found is not None:
                segments[index], number, street_index = rest, found, index
                break
            only = _ONLY_NUMBER.match(seg)
            if only is None:
                continue
            # "12, rue de la Paix" / "Calle Mayor, 5": the number is a segment of its own.
            neighbours = [i for i in (index + 1, index - 1) if 0 <= i < len(segments)]
            letters = [i for i in neighbours if _HAS_LETTER.search(segments[i])]
            if letters:
                number, street_index = only.group(1), letters[0]
                segments[index] = ""
                break
    if street_index is None:
        street_index = next(
            (index for index, seg in enumerate(segments) if _HAS_LETTER.search(seg)), None
        )
    if street_index is None:
        street = " ".join(seg for seg in segments if seg)
    else:
        street = segments[street_index]
    return StreetParts(
        house_number=_normalise_number(number),
        street=_standardize_street(street),
        unit=unit,
    )


_MAX_PASSES = 4


@lru_cache(maxsize=CACHE_SIZE)
def _split_street(raw: str, want_number: bool, want_unit: bool) -> StreetParts:
    """_split_once repeated on its own street name until that finds nothing more.

    The first pass reads the raw line, where "/", "-" and "," still separate parts; the
    street name it returns is standardized, and in rare lines ("0/0A") only then shows a
    number. Repeating makes the result a fixed point: splitting the street name again
    changes nothing, which is what keeps record features idempotent.
    """
    parts = _split_once(raw, want_number, want_unit)
    for _ in range(_MAX_PASSES):
        need_number = want_number and parts.house_number is None
        need_unit = want_unit and parts.unit is None
        street = parts.street
        if not (need_number or need_unit) or not street:
            break
        # Numbers and floors need a digit, units a digit or a unit word: most street names
        # ("main st") have neither and need no second pass.
        if not _HAS_DIGIT.search(street) and not (need_unit and _UNIT.search(street)):
            break
        again = _split_once(street, need_number, need_unit)
        if again == (None, parts.street, None):
            break
        parts = StreetParts(
            house_number=parts.house_number or again.house_number,
            street=again.street,
            unit=parts.unit or again.unit,
        )
    return parts


def split_street(text: object) -> StreetParts:
    """A street line split into (house_number, street_name, unit); absent parts are None.

    Handles the number before the street (123 Main St, 12 rue de la Paix) and after it
    (Hauptstraße 12a, Via Roma 10, Calle Mayor, 5), units (Apt 4B, Suite 200, Flat 3, #12,
    Unit 5/12 George St), and drops floors (3rd floor, 2. OG). The street name is
    standardized as by standardize_street; when the line holds several comma-separated parts
    (c/o lines, building names) the part with the house number is the street.
    """
    return _split_street(clip(to_text(text)), True, True)


def split_street_parts(
    text: object, *, want_number: bool = True, want_unit: bool = True
) -> StreetParts:
    """split_street, optionally leaving the number or unit in the street name.

    Used when a record already supplies the house number or unit in a field of its own.
    """
    return _split_street(clip(to_text(text)), want_number, want_unit)


_UNIT_WORD_SET = frozenset(_UNIT_WORDS.split("|")) | {"no", "nr", "number"}
_HOUSE_MARKS = frozenset({"no", "nr", "num", "numero", "number", "d", "dom"})
_KEEP_IN_IDS = re.compile(r"[^a-z0-9/-]+")


_ID_TABLE = str.maketrans({",": " ", ";": " ", "#": " "})
_MAX_ID_CHARS = 32


def _identifier(raw: str, marks: frozenset[str]) -> str | None:
    text = transliterate(_mark_numero(raw)).lower().translate(_SPLIT_TABLE)
    tokens = text.translate(_ID_TABLE).split()
    while tokens and tokens[0] in marks:
        tokens = tokens[1:]
    joined = _KEEP_IN_IDS.sub("", "".join(tokens)).strip("-/")
    return joined[:_MAX_ID_CHARS].strip("-/") or None


@lru_cache(maxsize=CACHE_SIZE)
def _standardize_unit(raw: str) -> str | None:
    return _identifier(raw, _UNIT_WORD_SET)


def standardize_unit(text: object) -> str | None:
    """A unit (flat, apartment, suite) given in a field of its own, as split_street writes it.

    "Apt 4B", "#4B", "Suite 4 B" and "4b" all give "4b"; None when empty.
    """
    return _standardize_unit(clip(to_text(text), 64))


@lru_cache(maxsize=CACHE_SIZE)
def _standardize_house_number(raw: str) -> str | None:
    return _identifier(raw, _HOUSE_MARKS)


def standardize_house_number(text: object) -> str | None:
    """A house number given in a field of its own, as split_street writes it.

    "12 A", "No. 12a" and "12a" give "12a"; ranges keep their dash ("12-14"); None when empty.
    """
    return _standardize_house_number(clip(to_text(text), 64))


# --- postcodes ------------------------------------------------------------------------------

_COMPACT_DROP = re.compile(r"[\s\-.]+")
_COUNTRY_PREFIX = re.compile(r"^[A-Z]{1,3}\s*-\s*(?=\d)")
_GB = re.compile(r"^([A-Z]{1,2}\d[A-Z\d]?|GIR)(\d[A-Z]{2})$")
_CA = re.compile(r"^([A-Z]\d[A-Z])(\d[A-Z]\d)$")
_NL = re.compile(r"^([1-9]\d{3})([A-Z]{2})$")
_IE = re.compile(r"^([AC-FHKNPRTV-Y]\d{2}|D6W)([AC-FHKNPRTV-Y\d]{4})$")
_MT = re.compile(r"^([A-Z]{3})(\d{4})$")
_AR = re.compile(r"^([A-Z]\d{4}[A-Z]{3}|\d{4})$")
_GENERIC = re.compile(r"[^A-Z0-9 -]+")


def _digits(count: int, pad_from: int | None = None) -> Callable[[str], str | None]:
    def check(compact: str) -> str | None:
        if not compact.isdigit():
            return None
        if pad_from is not None and pad_from <= len(compact) < count:
            compact = compact.zfill(count)  # a leading zero lost in a spreadsheet
        return compact if len(compact) == count else None

    return check


def _us(compact: str) -> str | None:
    if compact.isdigit() and len(compact) == 9:  # ZIP+4 written without its dash
        compact = compact[:5]
    return _digits(5, pad_from=3)(compact[:5] if len(compact) > 5 else compact)


def _spaced(digits: int, split: int, sep: str) -> Callable[[str], str | None]:
    def check(compact: str) -> str | None:
        if not compact.isdigit() or len(compact) != digits:
            return None
        return f"{compact[:split]}{sep}{compact[split:]}"

    return check


def _pattern(regex: re.Pattern[str], sep: str = " ") -> Callable[[str], str | None]:
    def check(compact: str) -> str | None:
        match = regex.match(compact)
        if match is None:
            return None
        return sep.join(group for group in match.groups() if group)

    return check


def _pt(compact: str) -> str | None:
    if compact.isdigit() and len(compact) == 7:
        return f"{compact[:4]}-{compact[4:]}"
    return compact if compact.isdigit() and len(compact) == 4 else None


_POSTCODE_RULES: dict[str, Callable[[str], str | None]] = {
    "US": _us,
    "PR": _us,
    "GB": _pattern(_GB),
    "GG": _pattern(_GB),
    "JE": _pattern(_GB),
    "IM": _pattern(_GB),
    "CA": _pattern(_CA),
    "NL": _pattern(_NL),
    "IE": _pattern(_IE),
    "MT": _pattern(_MT),
    "AR": _pattern(_AR, ""),
    "SE": _spaced(5, 3, " "),
    "CZ": _spaced(5, 3, " "),
    "SK": _spaced(5, 3, " "),
    "GR": _spaced(5, 3, " "),
    "PL": _spaced(5, 2, "-"),
    "JP": _spaced(7, 3, "-"),
    "BR": _spaced(8, 5, "-"),
    "PT": _pt,
    **dict.fromkeys(("DE", "FR", "IT", "ES", "FI", "MC", "SM", "VA"), _digits(5, pad_from=4)),
    **dict.fromkeys(
        ("MX", "KR", "TR", "HR", "EE", "LT", "UA", "MY", "TH", "ID", "SA", "EG", "MA", "DZ"),
        _digits(5),
    ),
    **dict.fromkeys(("NO", "AU", "NZ", "ZA"), _digits(4, pad_from=3)),
    **dict.fromkeys(
        ("AT", "BE", "CH", "DK", "HU", "LU", "BG", "CY", "SI", "PH", "LI", "LV", "MK", "TN", "AM"),
        _digits(4),
    ),
    **dict.fromkeys(("IN", "CN", "RU", "SG", "KZ", "BY", "RO", "VN", "CO", "EC", "KG"), _digits(6)),
    "IL": _digits(7),
}


@lru_cache(maxsize=CACHE_SIZE)
def _standardize_postcode(raw: str, country: str | None) -> str | None:
    # Punctuation goes first, so that what is left never reads as a country prefix ("D-").
    text = " ".join(_GENERIC.sub(" ", transliterate(raw).upper()).split()).strip(" -")
    text = _COUNTRY_PREFIX.sub("", text)
    rule = _POSTCODE_RULES.get(country or "")
    if rule is None:
        if not any(char.isdigit() for char in text):
            return None
        return None if set(text) <= {"0", " ", "-"} else text
    compact = _COMPACT_DROP.sub("", text)
    if not compact or set(compact) == {"0"}:
        return None
    return rule(compact)


def standardize_postcode(text: object, country: str | None = None) -> str | None:
    """A postcode in its country's standard form, or None when it cannot be one.

    US: ZIP+4 -> ZIP5, leading zeros restored ("2139" -> "02139"); GB: "sw1a1aa" ->
    "SW1A 1AA"; CA: "k1a0b1" -> "K1A 0B1"; NL: "1234ab" -> "1234 AB"; DE/FR/IT/ES: five
    digits, "D-10115" -> "10115"; SE/CZ/SK/GR "123 45"; PL "00-950"; JP "100-0001"; and more.
    Other or unknown countries: upper case, other punctuation removed. All-zero placeholders
    give None. ``country`` is anything standardize_country accepts.
    """
    return _standardize_postcode(clip(to_text(text), 64), standardize_country(country))


# --- cities ---------------------------------------------------------------------------------

_CITY_WORDS = {"st": "saint", "ste": "sainte", "mt": "mount", "ft": "fort"}
_CEDEX = re.compile(r"\bcedex\b.*$")


@lru_cache(maxsize=CACHE_SIZE)
def _standardize_city(raw: str) -> str:
    segments = (fold_tokens(segment) for segment in _SEGMENT_SEPARATORS.split(raw))
    tokens = next((segment for segment in segments if segment), [])
    text = _CEDEX.sub("", " ".join(tokens))
    tokens = [token for token in text.split() if not token.isdigit()] or text.split()
    return " ".join(_CITY_WORDS.get(token, token) for token in limit_tokens(tokens))


def standardize_city(text: object) -> str:
    """A city or town as a comparison key: ASCII, lower case, St./Mt./Ft. written in full.

    A trailing region or country after a comma ("Springfield, IL"), postcode digits and
    French CEDEX suffixes are dropped.
    """
    return _standardize_city(clip(to_text(text), 128))
