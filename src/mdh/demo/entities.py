"""The real customers of the demo world: who they are, before any system writes them down.

A ``Customer`` is an organisation (with the people who work there as ``contacts``) or a
person. ``build_customer`` derives one from its own seed alone, so any customer can be rebuilt
later (live traffic does, to write a new duplicate of an existing customer) without storing
it. Values here are clean: spelled out, correctly cased, in the country's conventions. The
systems' ways of writing them, and the mistakes, come later (``corruption``, ``systems``).
"""

from __future__ import annotations

import bisect
import functools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar

from unidecode import unidecode

from mdh.demo.countries import COUNTRIES, Country, fill_pattern, make_tax_id
from mdh.demo.formats import Phone, make_phone
from mdh.demo.vocabulary import City, LegalForm, Name, Street, Vocabulary

T = TypeVar("T")
PartyKind = Literal["organization", "person"]
Script = Literal["latin", "ja", "ru", "el"]

INDUSTRIES = (
    "Agriculture",
    "Apparel",
    "Banking",
    "Biotechnology",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Entertainment",
    "Finance",
    "Food & Beverage",
    "Healthcare",
    "Hospitality",
    "Insurance",
    "Machinery",
    "Manufacturing",
    "Media",
    "Not For Profit",
    "Retail",
    "Shipping",
    "Technology",
    "Telecommunications",
    "Transportation",
    "Utilities",
    "Other",
)
ACCOUNT_TYPES = ("Customer - Direct", "Customer - Channel", "Reseller", "Partner", "Other")
PAYMENT_TERMS = ("Due Upon Receipt", "Net 15", "Net 30", "Net 45", "Net 60", "Net 90")
CONTACT_TITLES = (
    "Accounts Payable Manager",
    "Accounts Payable Clerk",
    "CFO",
    "CEO",
    "Controller",
    "Head of Finance",
    "Procurement Manager",
    "Purchasing Agent",
    "IT Director",
    "Office Manager",
    "Operations Manager",
    "Managing Director",
    "Buyer",
    "Finance Director",
)
_ROLE_MAILBOXES = {
    "en": ("accounts", "ap", "billing", "invoices", "finance"),
    "de": ("buchhaltung", "rechnungen", "invoice", "finanzen"),
    "fr": ("comptabilite", "factures", "compta"),
    "nl": ("administratie", "facturen", "crediteuren"),
    "es": ("administracion", "facturas", "contabilidad"),
    "it": ("amministrazione", "fatture", "contabilita"),
    "ja": ("keiri", "invoice", "accounting"),
}
_SONS = {
    "en": "& Sons",
    "de": "& Söhne",
    "fr": "& Fils",
    "nl": "& Zonen",
    "es": "e Hijos",
    "it": "& Figli",
}


@dataclass(frozen=True, slots=True)
class PersonName:
    given: Name
    family: Name
    family2: Name | None
    """A Spanish second surname."""
    script: Script

    @property
    def given_latin(self) -> str:
        return self.given.latin

    @property
    def family_latin(self) -> str:
        if self.family2 is None:
            return self.family.latin
        return f"{self.family.latin} {self.family2.latin}"


@dataclass(frozen=True, slots=True)
class Address:
    country: str
    city: City
    street: Street
    number: str
    unit: str
    """A second address line ("Suite 400", "Flat 2", "3º B"), or ""."""
    postcode: str

    def line(self) -> str:
        """The street line in the country's order, spelled out."""
        return street_line(self, self.street.name, native=False)


def street_line(address: Address, street: str, native: bool) -> str:
    """Number and street in the order the country writes them."""
    country, number = address.country, address.number
    if country == "JP":
        return f"{street}{number}" if native else f"{number} {street}"
    if country in ("DE", "NL"):
        return f"{street} {number}"
    if country in ("ES", "IT"):
        return f"{street}, {number}"
    if country == "CA" and street[:1].islower():
        return f"{number}, {street}"
    return f"{number} {street}"


@dataclass(frozen=True, slots=True)
class Person:
    entity_id: str
    gender: str
    name: PersonName
    email: str | None
    previous_email: str | None
    """The address the person used before (an old employer, an old provider), if any."""
    phone: Phone | None
    title: str
    birthdate: date | None


@dataclass(frozen=True, slots=True)
class OrgName:
    core: str
    """The name without its legal form, in Latin script."""
    native: str
    """The name in Japanese script, or ""."""
    variants: tuple[str, ...]
    """Other romanisations of ``core``."""
    legal_form: LegalForm
    native_prefix: bool
    """Japanese companies put 株式会社 before (前株) or after (後株) the name."""

    @property
    def legal_name(self) -> str:
        return f"{self.core} {self.legal_form.variants[0]}"

    @property
    def native_legal_name(self) -> str:
        form = self.legal_form.native[0] if self.legal_form.native else ""
        return f"{form}{self.native}" if self.native_prefix else f"{self.native}{form}"


@dataclass(frozen=True, slots=True)
class Customer:
    index: int
    entity_id: str
    seed: int
    kind: PartyKind
    country: Country
    lang: str
    org: OrgName | None
    person: Person | None
    """The customer as a person (person customers only)."""
    address: Address
    previous_address: Address | None
    """Where the customer was before it moved, if it did; stale systems still hold it."""
    phone: Phone
    email: str | None
    """A person's own address; an organisation's accounts mailbox."""
    previous_email: str | None
    domain: str | None
    website: str | None
    tax_id: str | None
    industry: str | None
    account_type: str
    employees: int | None
    contacts: tuple[Person, ...]
    billing_contact: int
    """Index into ``contacts`` of the person invoices go to."""
    currency: str
    payment_term: str
    credit_limit: Decimal
    created_at: datetime

    @property
    def bill_to(self) -> Person:
        if self.person is not None:
            return self.person
        return self.contacts[self.billing_contact]


@dataclass(frozen=True)
class WorldShape:
    """What kinds of customers the world holds: the generator's knobs for ``build_customer``."""

    organization_share: float = 0.6
    countries: tuple[tuple[str, float], ...] = tuple(
        (code, country.weight) for code, country in COUNTRIES.items()
    )
    nonlatin_share: float = 0.05
    """Share of people outside Japan whose name is Russian or Greek, written natively in some
    systems and transliterated (several ways) in others."""
    moved_share: float = 0.25
    """Share of customers with a previous address that stale records still show."""
    changed_email_share: float = 0.2
    as_of: datetime = datetime(2025, 6, 30, tzinfo=UTC)


def entity_id_for(index: int) -> str:
    return f"E{index:07d}"


def contact_id_for(customer_entity_id: str, position: int) -> str:
    return f"{customer_entity_id}-C{position + 1}"


@functools.lru_cache(maxsize=256)
def _cumulative(weights: tuple[float, ...]) -> tuple[float, ...]:
    total = sum(weights)
    running, out = 0.0, []
    for weight in weights:
        running += weight
        out.append(running / total)
    return tuple(out)


@functools.lru_cache(maxsize=256)
def _cumulative_items(items: tuple[tuple[str, float], ...]) -> tuple[float, ...]:
    return _cumulative(tuple(weight for _, weight in items))


def _weighted(rng: random.Random, items: tuple[tuple[str, float], ...]) -> str:
    index = bisect.bisect_right(_cumulative_items(items), rng.random())
    return items[min(index, len(items) - 1)][0]


def _below(rng: random.Random, stop: int) -> int:
    return int(rng.random() * stop)


def _between(rng: random.Random, start: int, stop: int) -> int:
    """A whole number in [start, stop), like ``randrange`` but a single draw."""
    return start + int(rng.random() * (stop - start))


def _pick(rng: random.Random, items: Sequence[T]) -> T:
    return items[int(rng.random() * len(items))]


_SLUG = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=65536)
def slug(text: str, sep: str = "") -> str:
    return _SLUG.sub(sep, unidecode(text).lower()).strip(sep)


def _lang(rng: random.Random, country: Country) -> str:
    if len(country.languages) == 1:
        return country.languages[0][0]
    return _weighted(rng, country.languages)


def make_address(
    rng: random.Random, vocab: Vocabulary, country: Country, kind: PartyKind, city: City | None
) -> Address:
    """A street address in ``city`` (a random city of the country when None)."""
    if city is None:
        city = _pick(rng, vocab.cities[country.code])
    street = _pick(rng, city.streets)
    code = country.code
    roll = rng.random()
    unit = ""
    if code == "JP":
        number = f"{_between(rng, 1, 10)}-{_between(rng, 1, 30)}-{_between(rng, 1, 20)}"
        if kind == "organization" and roll < 0.4:
            unit = f"{_between(rng, 2, 40)}F"
    elif code in ("US", "CA"):
        number = str(_between(rng, 1, 10000) if roll < 0.7 else _between(rng, 1, 400))
        if kind == "organization" and rng.random() < 0.4:
            unit = f"Suite {_between(rng, 1, 40) * 100 + _between(rng, 0, 20)}"
        elif kind == "person" and rng.random() < 0.2:
            unit = f"Apt {_between(rng, 1, 30)}{_pick(rng, 'ABCDEF')}"
    elif code == "GB":
        number = str(_between(rng, 1, 200))
        if rng.random() < 0.15:
            unit = (
                f"Flat {_between(rng, 1, 30)}"
                if kind == "person"
                else f"Unit {_between(rng, 1, 20)}"
            )
    elif code == "AU":
        number = str(_between(rng, 1, 500))
        if rng.random() < 0.25:
            unit = (
                f"Unit {_between(rng, 1, 40)}"
                if kind == "person"
                else f"Level {_between(rng, 1, 40)}"
            )
    elif code == "ES":
        number = str(_between(rng, 1, 150))
        if rng.random() < 0.5:
            unit = f"{_between(rng, 1, 9)}º {_pick(rng, 'ABCD')}"
    elif code == "FR":
        number = str(_between(rng, 1, 200)) + (" bis" if roll < 0.03 else "")
        if rng.random() < 0.1:
            unit = f"Bâtiment {_pick(rng, 'ABC')}"
    elif code == "DE":
        number = str(_between(rng, 1, 150)) + (_pick(rng, "abc") if roll < 0.1 else "")
    elif code == "NL":
        number = str(_between(rng, 1, 300)) + (f"-{_pick(rng, 'ABC')}" if roll < 0.07 else "")
    else:
        number = str(_between(rng, 1, 200))
    postcode = fill_pattern(_pick(rng, city.postcodes), country.postcode_letters, rng)
    return Address(code, city, street, number, unit, postcode)


def _person_name(
    rng: random.Random, vocab: Vocabulary, country: Country, lang: str, gender: str, nonlatin: float
) -> PersonName:
    script: Script = "latin"
    if country.code == "JP":
        script = "ja"
    elif rng.random() < nonlatin:
        script = "ru" if rng.random() < 0.6 else "el"
    if script in ("ru", "el"):
        given = _pick(rng, vocab.given[(script, gender)])
        family = _pick(rng, vocab.family[(script, gender)])
        return PersonName(given, family, None, script)
    given = _pick(rng, vocab.given[(lang, gender)])
    family = _pick(rng, vocab.family[(country.code, gender)])
    family2 = None
    if country.code == "ES":
        family2 = _pick(rng, vocab.family[("ES", gender)])
        if family2 is family:
            family2 = _pick(rng, vocab.family[("ES", gender)])
    return PersonName(given, family, family2, script)


def free_mail_address(
    rng: random.Random, vocab: Vocabulary, country: Country, name: PersonName
) -> str:
    domains, cumulative = vocab.email_domains[country.code]
    point = rng.random() * cumulative[-1]
    domain = next(d for d, c in zip(domains, cumulative, strict=True) if point < c)
    given, family = slug(name.given_latin), slug(name.family.latin)
    roll = rng.random()
    if roll < 0.35:
        local = f"{given}.{family}"
    elif roll < 0.5:
        local = f"{given}{family}"
    elif roll < 0.62:
        local = f"{given[0]}{family}"
    elif roll < 0.72:
        local = f"{family}.{given}"
    elif roll < 0.8:
        local = f"{given}_{family}"
    else:
        local = f"{given}{family[:1]}"
    if rng.random() < 0.45:
        local += str(_between(rng, 1, 100) if rng.random() < 0.6 else _between(rng, 1950, 2006))
    return f"{local}@{domain}"


def company_mail_address(pattern: int, name: PersonName, domain: str) -> str:
    given, family = slug(name.given_latin), slug(name.family.latin)
    local = (
        f"{given}.{family}",
        f"{given[0]}.{family}",
        f"{given[0]}{family}",
        f"{family}",
        f"{given}",
        f"{family}.{given}",
    )[pattern]
    return f"{local}@{domain}"


def _org_name(
    rng: random.Random, vocab: Vocabulary, country: Country, lang: str, city: City
) -> OrgName:
    forms = vocab.legal_forms[country.code]
    cumulative = _cumulative(tuple(form.weight for form in forms))
    legal_form = forms[min(bisect.bisect_right(cumulative, rng.random()), len(forms) - 1)]
    if lang == "ja":
        family = _pick(rng, vocab.family[("JP", "m")])
        noun = _pick(rng, vocab.company_nouns_after["ja"])
        if rng.random() < 0.55:
            first_latin, first_native, first_variants = family.latin, family.native, family.variants
        else:
            prefix = _pick(rng, vocab.company_prefixes["ja"])
            first_latin, first_native, first_variants = prefix.word, prefix.native, prefix.variants
        core = f"{first_latin} {noun.word}"
        variants = tuple(
            f"{a} {b}"
            for a, b in zip(
                first_variants or (first_latin,), noun.variants or (noun.word,), strict=False
            )
            if f"{a} {b}" != core
        )
        return OrgName(
            core, f"{first_native}{noun.native}", variants, legal_form, rng.random() < 0.5
        )

    families = vocab.family[(country.code, "m")]
    after = vocab.company_nouns_after[lang]
    before = vocab.company_nouns_before.get(lang, ())
    prefixes = vocab.company_prefixes[lang]
    roll = rng.random()
    if roll < 0.22:
        core = f"{_pick(rng, families).latin} {_pick(rng, after).word}"
    elif roll < 0.32 and before:
        core = f"{_pick(rng, before).word} {_pick(rng, families).latin}"
    elif roll < 0.5:
        joiner = "-" if lang == "de" and rng.random() < 0.5 else " "
        core = f"{_pick(rng, prefixes).word}{joiner}{_pick(rng, after).word}"
    elif roll < 0.7:
        first, second = _pick(rng, families).latin, _pick(rng, families).latin
        conj = "and" if lang == "en" and rng.random() < 0.3 else "&"
        core = f"{first} {conj} {second}"
        if rng.random() < 0.5:
            core += f" {_pick(rng, after).word}"
    elif roll < 0.8:
        nouns = rng.sample(after, 2)
        core = f"{_pick(rng, prefixes).word} {nouns[0].word} {nouns[1].word}"
    elif roll < 0.86:
        core = f"{_pick(rng, families).latin} {_SONS.get(lang, '& Sons')}"
    elif roll < 0.94:
        core = f"{city.name} {_pick(rng, after).word}"
    else:
        core = f"{_pick(rng, prefixes).word} {_pick(rng, families).latin} {_pick(rng, after).word}"
    return OrgName(core, "", (), legal_form, False)


def _birthdate(rng: random.Random, as_of: datetime) -> date:
    return (as_of - timedelta(days=_between(rng, 18 * 365, 85 * 365))).date()


def build_customer(
    index: int,
    seed: int,
    vocab: Vocabulary,
    shape: WorldShape,
    rng: random.Random | None = None,
) -> Customer:
    """The customer number ``index`` of the world, derived from ``seed`` alone.

    The same (index, seed, shape) always yields the same customer, whatever else was built
    before it, so generation is reproducible and any customer can be rebuilt on demand.
    ``rng``, when given, must be freshly seeded with ``seed``; the caller may go on drawing
    from it afterwards.
    """
    rng = rng or random.Random(seed)
    entity_id = entity_id_for(index)
    country = COUNTRIES[_weighted(rng, shape.countries)]
    lang = _lang(rng, country)
    kind: PartyKind = "organization" if rng.random() < shape.organization_share else "person"
    address = make_address(rng, vocab, country, kind, None)
    city = address.city
    previous_address = None
    if rng.random() < shape.moved_share:
        same_city = city if rng.random() < 0.5 else None
        previous_address = make_address(rng, vocab, country, kind, same_city)
    created_at = shape.as_of - timedelta(seconds=_between(rng, 30 * 86400, 6 * 365 * 86400))
    currency = country.currency if rng.random() < 0.92 else _pick(rng, ("USD", "EUR"))
    payment_term = _pick(rng, PAYMENT_TERMS)

    if kind == "person":
        gender = "m" if rng.random() < 0.5 else "f"
        name = _person_name(rng, vocab, country, lang, gender, shape.nonlatin_share)
        email = free_mail_address(rng, vocab, country, name) if rng.random() < 0.93 else None
        previous_email = None
        if email is not None and rng.random() < shape.changed_email_share:
            previous_email = free_mail_address(rng, vocab, country, name)
            if previous_email == email:
                previous_email = None
        phone = make_phone(country, city.area_code, rng, mobile=rng.random() < 0.8)
        person = Person(
            entity_id,
            gender,
            name,
            email,
            previous_email,
            phone,
            "",
            _birthdate(rng, shape.as_of) if rng.random() < 0.6 else None,
        )
        return Customer(
            index=index,
            entity_id=entity_id,
            seed=seed,
            kind=kind,
            country=country,
            lang=lang,
            org=None,
            person=person,
            address=address,
            previous_address=previous_address,
            phone=phone,
            email=email,
            previous_email=previous_email,
            domain=None,
            website=None,
            tax_id=None,
            industry=None,
            account_type="Customer - Direct",
            employees=None,
            contacts=(),
            billing_contact=0,
            currency=currency,
            payment_term=payment_term,
            credit_limit=Decimal(_pick(rng, (0, 500, 1000, 2500))),
            created_at=created_at,
        )

    org = _org_name(rng, vocab, country, lang, city)
    sep = "-" if rng.random() < 0.3 else ""
    base = slug(org.core, sep)
    if len(base) > 22:
        # Long names get short domains: the first two words, or the initials.
        words = slug(org.core, " ").split()
        base = (
            sep.join(words[:2])
            if len(words[0]) + len(words[1:2]) < 16
            else "".join(word[0] for word in words)
        )
    roll = rng.random()
    if roll < 0.3:
        label = base
    elif roll < 0.55 and len(base) + len(city.name) < 30:
        label = f"{base}-{slug(city.name)}"
    elif roll < 0.75:
        label = f"{base}{slug(org.legal_form.variants[0])}"
    else:
        label = f"{base}{_between(rng, 1, 100)}"
    tld = country.tld if rng.random() < 0.75 else "com"
    domain = f"{label}.{tld}"
    website = f"www.{domain}" if rng.random() < 0.7 else domain
    phone = make_phone(country, city.area_code, rng, mobile=False)
    mailbox = _pick(rng, _ROLE_MAILBOXES.get(lang, _ROLE_MAILBOXES["en"]))
    email = f"{mailbox}@{domain}"
    tax_id = make_tax_id(country.code, rng) if rng.random() < 0.85 else None
    mail_pattern = _below(rng, 6) if rng.random() < 0.8 else 0
    contacts = []
    for position in range(1 + (rng.random() < 0.5) + (rng.random() < 0.2)):
        gender = "m" if rng.random() < 0.5 else "f"
        name = _person_name(rng, vocab, country, lang, gender, shape.nonlatin_share)
        contact_mail = company_mail_address(mail_pattern, name, domain)
        previous = None
        if rng.random() < shape.changed_email_share:
            previous = free_mail_address(rng, vocab, country, name)
        direct = rng.random()
        if direct < 0.5:
            contact_phone: Phone | None = make_phone(country, city.area_code, rng, mobile=False)
        elif direct < 0.85:
            contact_phone = make_phone(country, city.area_code, rng, mobile=True)
        else:
            contact_phone = None
        contacts.append(
            Person(
                contact_id_for(entity_id, position),
                gender,
                name,
                contact_mail,
                previous,
                contact_phone,
                _pick(rng, CONTACT_TITLES),
                None,
            )
        )
    employees = int(10 ** (1 + rng.random() * 3.5))
    return Customer(
        index=index,
        entity_id=entity_id,
        seed=seed,
        kind=kind,
        country=country,
        lang=lang,
        org=org,
        person=None,
        address=address,
        previous_address=previous_address,
        phone=phone,
        email=email,
        previous_email=None,
        domain=domain,
        website=website,
        tax_id=tax_id,
        industry=_pick(rng, INDUSTRIES),
        account_type=_pick(rng, ACCOUNT_TYPES),
        employees=employees,
        contacts=tuple(contacts),
        billing_contact=_below(rng, len(contacts)),
        currency=currency,
        payment_term=payment_term,
        credit_limit=Decimal(_pick(rng, (5000, 10000, 25000, 50000, 100000, 250000, 500000))),
        created_at=created_at,
    )


def address_attributes(address: Address) -> dict[str, Any]:
    lines = [address.line()]
    if address.unit:
        lines.append(address.unit)
    out: dict[str, Any] = {
        "lines": lines,
        "city": address.city.name,
        "postal_code": address.postcode,
        "country": address.country,
    }
    if address.city.region:
        out["region"] = address.city.region
    return out


def _person_attributes(person: Person) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "person",
        "given_name": person.name.given_latin,
        "family_name": person.name.family_latin,
    }
    if person.email:
        out["emails"] = [person.email]
    if person.phone:
        out["phones"] = [person.phone.e164()]
    if person.birthdate:
        out["date_of_birth"] = person.birthdate.isoformat()
    native = person.name.given.native
    if native:
        out["extra"] = {"native_name": f"{person.name.family.native} {native}"}
    return out


def true_attributes(customer: Customer) -> dict[str, Any]:
    """The customer as it really is, in the canonical model's attribute names (what a perfect
    golden record would say). Names are in Latin script; native spellings go to ``extra``."""
    if customer.person is not None:
        out = _person_attributes(customer.person)
    else:
        assert customer.org is not None
        out = {"kind": "organization", "legal_name": customer.org.legal_name}
        if customer.email:
            out["emails"] = [customer.email]
        out["phones"] = [customer.phone.e164()]
        if customer.tax_id:
            out["tax_id"] = customer.tax_id
        if customer.website:
            out["website"] = customer.website
        if customer.org.native:
            out["extra"] = {"native_name": customer.org.native_legal_name}
    out["addresses"] = [address_attributes(customer.address)]
    out["currency"] = customer.currency
    out["payment_terms"] = customer.payment_term
    out["credit_limit"] = str(customer.credit_limit)
    return out


def contact_attributes(contact: Person) -> dict[str, Any]:
    """A contact person as they really are (canonical attribute names)."""
    return _person_attributes(contact)
