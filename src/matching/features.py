"""Record-level match features: one canonical or flat record -> one flat dict of comparison keys.

``standardize_record`` is the only entry point the scoring model needs. It accepts the shape
of ``CanonicalParty.to_attributes()`` (nested ``addresses``, list-valued ``emails``/``phones``)
and also flat records as ``mdh match`` reads them from CSV columns mapped to canonical names
(``street``, ``house_number``, ``postcode``, ``city``, ``dob``, scalar ``email``/``phone``...).
Every key is optional. The output always has exactly the keys of ``FEATURE_KEYS``; a value is
None when unknown, lists are sorted and free of duplicates, and feeding the output back in
gives the same output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from matching.standardize import (
    canonical_given_name,
    is_role_email,
    split_name_parts,
    split_org_name,
    split_street_parts,
    standardize_city,
    standardize_country,
    standardize_date,
    standardize_domain,
    standardize_email,
    standardize_house_number,
    standardize_legal_form,
    standardize_national_id,
    standardize_person_name,
    standardize_phone,
    standardize_postcode,
    standardize_region,
    standardize_tax_id,
    standardize_unit,
)
from matching.standardize._text import to_text
from matching.standardize.domains import is_free_mail_registrable, registrable_domain

FEATURE_KEYS: tuple[str, ...] = (
    "kind",
    "name",
    "given_name",
    "given_name_raw",
    "middle_initial",
    "family_name",
    "legal_form",
    "emails",
    "email_locals",
    "phones",
    "tax_id",
    "national_id",
    "dob",
    "house_number",
    "street",
    "unit",
    "postcode",
    "city",
    "region",
    "country",
    "domain",
)
"""The keys of every dict standardize_record returns, in this order."""

ORGANIZATION = "organization"
PERSON = "person"

_KIND_ALIASES = {
    "organization": ORGANIZATION,
    "organisation": ORGANIZATION,
    "org": ORGANIZATION,
    "company": ORGANIZATION,
    "business": ORGANIZATION,
    "account": ORGANIZATION,
    "b2b": ORGANIZATION,
    "person": PERSON,
    "individual": PERSON,
    "private": PERSON,
    "consumer": PERSON,
    "contact": PERSON,
    "b2c": PERSON,
}

# Input spellings of each attribute, best first: canonical names, then the feature names
# themselves (so that features fed back in are understood), then common column names of
# flat files.
_ALIASES: dict[str, tuple[str, ...]] = {
    "kind": ("kind", "party_type"),
    "org_name": ("legal_name", "company", "company_name", "organization", "organisation"),
    "full_name": ("full_name", "fullname", "name"),
    "given": ("given_name_raw", "given_name", "first_name", "firstname", "forename"),
    "family": ("family_name", "last_name", "lastname", "surname"),
    "middle": ("middle_name", "middlename"),
    "middle_initial": ("middle_initial",),
    "legal_form": ("legal_form",),
    "emails": ("emails", "email", "email_address", "e_mail"),
    "phones": ("phones", "phone", "phone_number", "telephone", "mobile", "mobile_phone"),
    "tax_id": ("tax_id",),
    "national_id": ("national_id",),
    "dob": ("date_of_birth", "dob", "birth_date", "birthdate"),
    "website": ("website", "url", "web", "domain"),
    "addresses": ("addresses", "address_list"),
    "street": ("street", "address", "address_line1", "address1", "line1", "street_address"),
    "street2": ("address_line2", "address2", "line2"),
    "house_number": ("house_number",),
    "unit": ("unit",),
    "postcode": ("postal_code", "postcode", "zip", "zip_code", "zipcode", "post_code"),
    "city": ("city", "town", "locality"),
    "region": ("region", "state", "province", "county"),
    "country": ("country", "country_code"),
}
_MULTI_VALUED = frozenset({"emails", "phones"})
_KEY_TO_ATTRIBUTE: dict[str, tuple[str, int]] = {
    key: (attribute, rank) for attribute, keys in _ALIASES.items() for rank, key in enumerate(keys)
}
_ADDRESS_FIELDS = ("lines", "city", "region", "postal_code", "country")

_EMAIL_SPLIT = re.compile(r"[;,\s]+")
_PHONE_SPLIT = re.compile(r"[;|\n]+")

# Countries that write numeric dates month first.
_MONTH_FIRST = frozenset({"US", "PH", "FM", "MH", "PW", "AS", "GU", "MP", "PR", "VI", "UM"})

# Dates that systems store for "unknown": equal by accident, so they must not match.
_DOB_PLACEHOLDERS = frozenset(
    {"0001-01-01", "1753-01-01", "1800-01-01", "1899-12-30", "1899-12-31", "1900-01-01"}
    | {"9999-12-31", "9999-01-01"}
)

_CONTAINERS = (list, tuple, set, frozenset, dict)
_SEQUENCES = (list, tuple, set, frozenset)


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if type(value) is str:
        return not value or value.isspace()
    if isinstance(value, _CONTAINERS):
        return not value
    return False


def _as_mapping(attributes: object) -> Mapping[str, Any]:
    """The record as a mapping: a Mapping as it is, a pandas row or similar via ``items()``."""
    if isinstance(attributes, Mapping):
        return attributes
    items = getattr(attributes, "items", None)
    if callable(items):
        try:
            return dict(items())
        except Exception:  # not a mapping after all: no features rather than an error
            return {}
    return {}


def _rank(item: tuple[int, Any]) -> int:
    return item[0]


class _Record:
    """The attributes of one input record, read in one pass over its keys."""

    __slots__ = ("_multi", "_single")

    def __init__(self, attributes: Mapping[str, Any]) -> None:
        single: dict[str, Any] = {}
        ranks: dict[str, int] = {}
        multi: dict[str, list[tuple[int, Any]]] = {}
        for key, value in attributes.items():
            found = _KEY_TO_ATTRIBUTE.get(key)
            if found is None or value is None:
                continue
            if type(value) is str:
                if not value or value.isspace():
                    continue
            elif isinstance(value, _CONTAINERS):
                if not value:
                    continue
            elif not to_text(value):  # NaN and the other missing-value markers
                continue
            attribute, rank = found
            if attribute in _MULTI_VALUED:
                multi.setdefault(attribute, []).append((rank, value))
            elif rank < ranks.get(attribute, len(_KEY_TO_ATTRIBUTE)):
                single[attribute] = value
                ranks[attribute] = rank
        self._single = single
        self._multi = {
            attribute: [value for _, value in sorted(values, key=_rank)]
            for attribute, values in multi.items()
        }

    def get(self, attribute: str) -> Any:
        return self._single.get(attribute)

    def values(self, attribute: str, splitter: re.Pattern[str]) -> list[Any]:
        found: list[Any] = []
        for value in self._multi.get(attribute, ()):
            found.extend(_values(value, splitter))
        return found


def _values(value: Any, splitter: re.Pattern[str]) -> list[Any]:
    """A list-valued attribute as a list: lists as they are, a scalar split on separators."""
    if isinstance(value, str):
        return [part for part in splitter.split(value) if part and not part.isspace()]
    if isinstance(value, _SEQUENCES):
        items: list[Any] = []
        for item in value:
            if isinstance(item, str):
                items.extend(_values(item, splitter))
            elif item is not None:
                items.append(item)
        return items
    return [value]


def _field(obj: Any, key: str) -> Any:
    if type(obj) is dict or isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _or_none(text: str | None) -> str | None:
    return text or None


def _first_address(record: _Record) -> Any:
    """The first address with any content (a dict, an object with attributes, or a string)."""
    addresses = record.get("addresses")
    if addresses is None:
        return None
    if isinstance(addresses, Mapping) or not isinstance(addresses, _SEQUENCES):
        addresses = [addresses]
    for address in addresses:
        if isinstance(address, str):
            if address.strip():
                return {"lines": [address]}
        elif address is not None and any(
            not _is_empty(_field(address, key)) for key in _ADDRESS_FIELDS
        ):
            return address
    return None


def _address_features(record: _Record, address: Any, country: str | None) -> dict[str, str | None]:
    lines: list[str] = []
    if address is not None:
        raw_lines = _field(address, "lines")
        if isinstance(raw_lines, _SEQUENCES):
            lines = [to_text(line) for line in raw_lines if not _is_empty(line)]
        elif not _is_empty(raw_lines):
            lines = [to_text(raw_lines)]
    if not lines:
        lines = [to_text(record.get(key)) for key in ("street", "street2")]
        lines = [line for line in lines if line and not line.isspace()]

    def pick(address_key: str, attribute: str) -> Any:
        value = _field(address, address_key) if address is not None else None
        return record.get(attribute) if _is_empty(value) else value

    given_number = standardize_house_number(record.get("house_number"))
    given_unit = standardize_unit(record.get("unit"))
    street = None
    number, unit = given_number, given_unit
    if lines:
        parts = split_street_parts(
            ", ".join(lines), want_number=given_number is None, want_unit=given_unit is None
        )
        street, number, unit = (
            _or_none(parts.street),
            number or parts.house_number,
            unit or parts.unit,
        )
    return {
        "house_number": number,
        "street": street,
        "unit": unit,
        "postcode": standardize_postcode(pick("postal_code", "postcode"), country),
        "city": _or_none(standardize_city(pick("city", "city"))),
        "region": standardize_region(pick("region", "region"), country),
    }


def _person_features(record: _Record, kind: str | None) -> dict[str, str | None]:
    given_raw = standardize_person_name(record.get("given"))
    family = standardize_person_name(record.get("family"))
    middle = standardize_person_name(record.get("middle") or record.get("middle_initial"))
    if not given_raw and not family and kind == PERSON:
        # A person whose source has one name field only.
        full = record.get("full_name") or record.get("org_name")
        if full is not None:
            parts = split_name_parts(full)
            given_raw, family = parts.given, parts.family
            middle = middle or parts.middle
    words = given_raw.split()
    initials: list[str] = []
    while len(words) > 1 and len(words[-1]) == 1:  # "Robert J." -> given robert, middle j
        initials.insert(0, words.pop())
    if initials:
        middle = middle or " ".join(initials)
        given_raw = " ".join(words)
    given = canonical_given_name(given_raw)
    return {
        "given_name": _or_none(given),
        "given_name_raw": _or_none(given_raw),
        "middle_initial": middle[0] if middle else None,
        "family_name": _or_none(family),
        "person_name": _or_none(" ".join(part for part in (given, family) if part)),
    }


def _name_and_legal_form(
    record: _Record, kind: str | None, person_name: str | None
) -> tuple[str | None, str | None]:
    """The ``name`` and ``legal_form`` features.

    A record that does not say its kind is named as a person when it has person name parts,
    else as an organisation: only the record's own fields decide, never a guess, so that the
    features of the features are the features.
    """
    if kind == PERSON or (kind is None and person_name):
        return person_name, None
    source = record.get("org_name")
    if source is None:
        source = record.get("full_name")
    org = split_org_name(source)
    legal = org.legal_form or standardize_legal_form(record.get("legal_form"))
    return _or_none(org.core), legal


def _kind(record: _Record) -> str | None:
    raw = record.get("kind")
    if raw is None:
        return None
    return _KIND_ALIASES.get(" ".join(to_text(raw).lower().split()))


def _domain(record: _Record, emails: list[str]) -> str | None:
    domain = standardize_domain(record.get("website"))
    if domain is not None:
        return domain
    for email in emails:
        found = registrable_domain(email.rsplit("@", 1)[1])
        if found is not None and not is_free_mail_registrable(found):
            return found
    return None


def standardize_record(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The match features of one record (see the module docstring and FEATURE_KEYS).

    - ``kind``: "organization", "person" or None (when the record does not say).
    - ``name``: an organisation's core name without legal form; a person's canonical given
      name and family name ("Bob Smith Jr." -> "robert smith").
    - ``given_name`` (nickname-canonical), ``given_name_raw``, ``middle_initial``,
      ``family_name``; ``legal_form`` (code, organisations only).
    - ``emails``, ``email_locals``, ``phones`` (E.164; the record's country is the default
      region): sorted lists without duplicates.
    - ``tax_id``, ``national_id``, ``dob`` (ISO date; placeholder dates such as 1900-01-01
      are None).
    - ``house_number``, ``street``, ``unit``, ``postcode``, ``city``, ``region``,
      ``country`` (ISO alpha-2) from the first address.
    - ``domain``: from the website, else from the first e-mail address not at a free-mail
      provider.
    """
    record = _Record(_as_mapping(attributes))
    address = _first_address(record)
    country = standardize_country(_field(address, "country")) if address is not None else None
    if country is None:
        country = standardize_country(record.get("country"))
    kind = _kind(record)
    person = _person_features(record, kind)
    name, legal = _name_and_legal_form(record, kind, person["person_name"])

    addresses = sorted(
        {e for e in map(standardize_email, record.values("emails", _EMAIL_SPLIT)) if e}
    )
    # A person's role-account address (invoices@ their employer) is shared with colleagues:
    # it says where they work (``domain``), not who they are.
    is_person = kind == PERSON or (kind is None and person["person_name"] is not None)
    emails = [e for e in addresses if not is_role_email(e)] if is_person else addresses
    phones = sorted(
        {
            p
            for p in (
                standardize_phone(value, country) for value in record.values("phones", _PHONE_SPLIT)
            )
            if p
        }
    )
    dob = standardize_date(record.get("dob"), "MDY" if country in _MONTH_FIRST else "DMY")

    return {
        "kind": kind,
        "name": name,
        "given_name": person["given_name"],
        "given_name_raw": person["given_name_raw"],
        "middle_initial": person["middle_initial"],
        "family_name": person["family_name"],
        "legal_form": legal,
        "emails": emails,
        "email_locals": sorted({email.split("@", 1)[0] for email in emails}),
        "phones": phones,
        "tax_id": standardize_tax_id(record.get("tax_id"), country),
        "national_id": standardize_national_id(record.get("national_id")),
        "dob": None if dob in _DOB_PLACEHOLDERS else dob,
        **_address_features(record, address, country),
        "country": country,
        "domain": _domain(record, addresses),
    }
