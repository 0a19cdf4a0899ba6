"""How a record deviates from the truth: the mistakes and habits of the people who typed it.

``Corruption`` holds the rates; the ``write_*`` functions turn one true value into what one
record says (a nickname, a typo, an abbreviation, a legal-form variant, an old address or
e-mail, a missing field, another transliteration). Each call draws from the caller's
``random.Random``, so a record's deviations are reproducible from the generator's seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import TypeVar

from unidecode import unidecode

from mdh.demo.entities import Address, OrgName, PersonName, street_line
from mdh.demo.formats import Phone
from mdh.demo.vocabulary import Abbreviator, Vocabulary

T = TypeVar("T")


@dataclass(frozen=True)
class Corruption:
    """How often a record deviates from the truth, per record (or per field or word where
    noted). A duplicate record gets every rate ``duplicate_factor`` times (capped at 0.9):
    the second record of a customer is typically keyed in later, by someone else, from less."""

    typo: float = 0.05
    """Per name, street or city: one slip (a neighbouring key, a dropped, doubled or swapped
    letter)."""
    nickname: float = 0.2
    """A given name written as its short form (Robert -> Bob), where it has one."""
    initial: float = 0.03
    """A given name reduced to its initial."""
    swap_names: float = 0.03
    """Given and family name in each other's field."""
    transliteration: float = 0.5
    """A Japanese, Russian or Greek name romanised another way (Satō/Sato/Satoh)."""
    drop_accents: float = 0.08
    second_surname_dropped: float = 0.35
    """A Spanish second surname left out."""
    abbreviation: float = 0.3
    """Per abbreviable word of a street or company name (Street -> St, International -> Intl)."""
    legal_form_variant: float = 0.35
    """The legal form spelled another way (GmbH -> G.m.b.H., Inc. -> Incorporated)."""
    legal_form_dropped: float = 0.12
    missing: float = 0.06
    """Per optional field (phone, e-mail, postcode, address line 2, website)."""
    stale_address: float = 0.35
    """A record of a customer that moved still shows the old address."""
    stale_email: float = 0.35
    """A record of someone who changed e-mail still shows the old one."""
    city_variant: float = 0.12
    """The city written another way (München/Munich, Den Haag/'s-Gravenhage)."""
    duplicate_factor: float = 1.8

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "duplicate_factor":
                if value < 0:
                    raise ValueError("duplicate_factor must not be negative")
            elif not 0.0 <= value <= 1.0:
                raise ValueError(f"corruption rate {item.name} must be in [0, 1], got {value}")

    def for_duplicate(self) -> Corruption:
        """The rates for a duplicate record."""
        factor = self.duplicate_factor
        changes = {
            item.name: min(0.9, getattr(self, item.name) * factor)
            for item in fields(self)
            if item.name != "duplicate_factor"
        }
        return replace(self, **changes)


NO_CORRUPTION = Corruption(**{item.name: 0.0 for item in fields(Corruption)})
"""No deviations at all: every record says exactly the truth (in its system's format)."""


_KEYBOARD = (
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
)
_NEIGHBOURS: dict[str, str] = {}
for _row_index, _row in enumerate(_KEYBOARD):
    for _col, _char in enumerate(_row):
        around = _row[max(0, _col - 1) : _col] + _row[_col + 1 : _col + 2]
        for _other in (_row_index - 1, _row_index + 1):
            if 0 <= _other < len(_KEYBOARD):
                around += _KEYBOARD[_other][max(0, _col - 1) : _col + 1]
        _NEIGHBOURS[_char] = around


def pick(rng: random.Random, items: Sequence[T]) -> T:
    return items[int(rng.random() * len(items))]


def typo(text: str, rng: random.Random) -> str:
    """One slip of the keyboard, never on the first letter (people rarely get that wrong)."""
    if len(text) < 4:
        return text
    i = 1 + int(rng.random() * (len(text) - 1))
    char = text[i]
    roll = rng.random()
    if roll < 0.35 and char.lower() in _NEIGHBOURS:
        other = pick(rng, _NEIGHBOURS[char.lower()])
        return text[:i] + (other.upper() if char.isupper() else other) + text[i + 1 :]
    if roll < 0.6:
        return text[:i] + text[i + 1 :]
    if roll < 0.8 and text[i - 1] != " " and char != " ":
        return text[: i - 1] + char + text[i - 1] + text[i + 1 :]
    return text[:i] + char + text[i:]


def fold_german(text: str) -> str:
    """Umlauts and ß as legacy systems store them (Müller -> Mueller, Straße -> Strasse)."""
    return (
        text.replace("ä", "ae")
        .replace("ö", "oe")
        .replace("ü", "ue")
        .replace("Ä", "Ae")
        .replace("Ö", "Oe")
        .replace("Ü", "Ue")
        .replace("ß", "ss")
    )


def drop_accents(text: str, country: str) -> str:
    return fold_german(text) if country == "DE" else unidecode(text)


def abbreviate(text: str, abbreviator: Abbreviator, rate: float, rng: random.Random) -> str:
    """Abbreviate each abbreviable word of ``text`` with probability ``rate``."""
    if rate <= 0.0:
        return text
    candidates = abbreviator.candidates(text)
    if not candidates:
        return text
    tokens: list[str] | None = None
    for position, keep, options in candidates:
        if rng.random() < rate:
            if tokens is None:
                tokens = text.split(" ")
            tokens[position] = keep + pick(rng, options)
    return text if tokens is None else " ".join(tokens)


def write_person_name(
    name: PersonName, rng: random.Random, rates: Corruption, native: bool, country: str
) -> tuple[str, str]:
    """(given, family) as one record writes them. ``native``: in the name's own script."""
    if native and name.script != "latin" and name.given.native:
        return name.given.native, name.family.native
    given_name, family_name = name.given, name.family
    given = given_name.latin
    family = family_name.latin
    if name.script != "latin":
        if given_name.variants and rng.random() < rates.transliteration:
            given = pick(rng, given_name.variants)
        if family_name.variants and rng.random() < rates.transliteration:
            family = pick(rng, family_name.variants)
    if name.family2 is not None and rng.random() >= rates.second_surname_dropped:
        family = f"{family} {name.family2.latin}"
    roll = rng.random()
    if given_name.nicknames and roll < rates.nickname:
        given = pick(rng, given_name.nicknames)
    elif roll > 1.0 - rates.initial:
        given = f"{given[0]}."
    if rng.random() < rates.typo:
        given = typo(given, rng)
    if rng.random() < rates.typo:
        family = typo(family, rng)
    if rng.random() < rates.drop_accents:
        given, family = drop_accents(given, country), drop_accents(family, country)
    if rng.random() < rates.swap_names:
        given, family = family, given
    return given, family


def write_org_name(
    org: OrgName,
    vocab: Vocabulary,
    rng: random.Random,
    rates: Corruption,
    native: bool,
    country: str,
) -> tuple[str, str, bool]:
    """(name without legal form, legal form as written or "", legal form goes first)."""
    form = org.legal_form
    dropped = rng.random() < rates.legal_form_dropped
    if native and org.native:
        legal = ""
        if not dropped and form.native:
            legal = (
                form.native[0]
                if rng.random() >= rates.legal_form_variant
                else pick(rng, form.native)
            )
        return org.native, legal, org.native_prefix
    core = org.core
    if org.variants and rng.random() < rates.transliteration:
        core = pick(rng, org.variants)
    core = abbreviate(core, vocab.org_abbreviations, rates.abbreviation, rng)
    if rng.random() < rates.typo:
        core = typo(core, rng)
    if rng.random() < rates.drop_accents:
        core = drop_accents(core, country)
    legal = ""
    if not dropped:
        legal = form.variants[0]
        if len(form.variants) > 1 and rng.random() < rates.legal_form_variant:
            legal = pick(rng, form.variants[1:])
    return core, legal, False


@dataclass(frozen=True, slots=True)
class WrittenAddress:
    """An address as one record writes it (before the system's own formatting)."""

    street: str
    unit: str
    city: str
    region: str
    region_name: str
    postcode: str
    country: str
    stale: bool
    """True when this is the customer's previous address."""


def write_address(
    address: Address,
    previous: Address | None,
    vocab: Vocabulary,
    rng: random.Random,
    rates: Corruption,
    native: bool,
) -> WrittenAddress:
    stale = previous is not None and rng.random() < rates.stale_address
    where = previous if stale and previous is not None else address
    city = where.city
    country = where.country
    if native and where.street.native:
        street = street_line(where, where.street.native, native=True)
        return WrittenAddress(
            street,
            where.unit,
            city.native or city.name,
            city.region,
            city.region_native or city.region_name,
            where.postcode,
            country,
            stale,
        )
    name = abbreviate(where.street.name, vocab.street_abbreviations, rates.abbreviation, rng)
    if rng.random() < rates.typo:
        name = typo(name, rng)
    street = street_line(where, name, native=False)
    unit = where.unit
    if unit:
        unit = (
            ""
            if rng.random() < rates.missing
            else abbreviate(unit, vocab.street_abbreviations, rates.abbreviation, rng)
        )
    city_name = city.name
    if city.variants and rng.random() < rates.city_variant:
        city_name = pick(rng, city.variants)
    elif rng.random() < rates.typo * 0.5:
        city_name = typo(city_name, rng)
    if rng.random() < rates.drop_accents:
        street, city_name = drop_accents(street, country), drop_accents(city_name, country)
    postcode = "" if rng.random() < rates.missing * 0.5 else where.postcode
    return WrittenAddress(
        street, unit, city_name, city.region, city.region_name, postcode, country, stale
    )


def write_email(
    email: str | None, previous: str | None, rng: random.Random, rates: Corruption
) -> tuple[str | None, bool]:
    """(e-mail as written or None, whether it is the old one)."""
    if email is None or rng.random() < rates.missing:
        return None, False
    if previous is not None and rng.random() < rates.stale_email:
        return previous, True
    if rng.random() < rates.typo * 0.5:
        local, _, domain = email.partition("@")
        return f"{local.title()}@{domain.capitalize()}", False
    return email, False


def write_phone(phone: Phone | None, rng: random.Random, rates: Corruption) -> Phone | None:
    if phone is None or rng.random() < rates.missing:
        return None
    return phone
