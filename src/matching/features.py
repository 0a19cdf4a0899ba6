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
from collections.abc import Iterable, Mapping
from typing import Any

from matching.standardize import (
    canonical_given_name,
    is_free_mail_domain,
    split_name_parts,
    split_org_name,
    split_street_parts,
    standardize_city,
    standardize_country,
    standardize_date,
    standardize_domain,
    standardize_email,
    standardize_legal_form,
    standardize_national_id,
    standardize_person_name,
    standardize_phone,
    standardize_postcode,
    standardize_region,
    standardize_tax_id,
)
from matching.standardize._text import to_text

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

# Accepted spellings of each input, first match wins. Canonical names first, then the
# feature names themselves (so that features fed back in are understood), then common
# column names of flat files.
_ORG_NAME_KEYS = ("legal_name", "company", "company_name", "organization", "organisation")
_FULL_NAME_KEYS = ("full_name", "fullname", "name")
_GIVEN_KEYS = ("given_name", "first_name", "firstname", "forename")
_FAMILY_KEYS = ("family_name", "last_name", "lastname", "surname")
_MIDDLE_KEYS = ("middle_name", "middlename")
_EMAIL_KEYS = ("emails", "email", "email_address", "e_mail")
_PHONE_KEYS = ("phones", "phone", "phone_number", "telephone", "mobile", "mobile_phone")
_DOB_KEYS = ("date_of_birth", "dob", "birth_date", "birthdate")
_WEBSITE_KEYS = ("website", "url", "web", "domain")
_STREET_KEYS = ("street", "address", "address_line1", "address1", "line1", "street_address")
_STREET2_KEYS = ("address_line2", "address2", "line2")
_POSTCODE_KEYS = ("postal_code", "postcode", "zip", "zip_code", "zipcode", "post_code")
_CITY_KEYS = ("city", "town", "locality")
_REGION_KEYS = ("region", "state", "province", "county")
_COUNTRY_KEYS = ("country", "country_code")

_EMAIL_SPLIT = re.compile(r"[;,\s]+")
_PHONE_SPLIT = re.compile(r"[;|\n]+")
_HOUSE_NUMBER_CLEAN = re.compile(r"\s+")

# Countries that write numeric dates month first.
_MONTH_FIRST = frozenset({"US", "PH", "FM", "MH", "PW", "AS", "GU", "MP", "PR", "VI", "UM"})

# Dates that systems store for "unknown": equal by accident, so they must not match.
_DOB_PLACEHOLDERS = frozenset(
    {"0001-01-01", "1753-01-01", "1800-01-01", "1899-12-30", "1899-12-31", "1900-01-01"}
    | {"9999-12-31", "9999-01-01"}
)


def _field(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | set | frozenset | dict):
        return not value
    return False


def _first(obj: Any, keys: Iterable[str]) -> Any:
    for key in keys:
        value = _field(obj, key)
        if not _is_empty(value):
            return value
    return None


def _values(value: Any, splitter: re.Pattern[str]) -> list[Any]:
    """A list-valued attribute as a list: lists as they are, a scalar split on separators."""
    if _is_empty(value):
        return []
    if isinstance(value, list | tuple | set | frozenset):
        items: list[Any] = []
        for item in value:
            items.extend(_values(item, splitter) if isinstance(item, str) else [item])
        return items
    if isinstance(value, str):
        return [part for part in splitter.split(value) if part.strip()]
    return [value]


def _all_values(obj: Any, keys: Iterable[str], splitter: re.Pattern[str]) -> list[Any]:
    found: list[Any] = []
    for key in keys:
        found.extend(_values(_field(obj, key), splitter))
    return found


def _kind(attrs: Mapping[str, Any]) -> str | None:
    raw = _field(attrs, "kind")
    if raw is None:
        raw = _field(attrs, "party_type")
    key = " ".join(to_text(raw).lower().split())
    return _KIND_ALIASES.get(key)


def _or_none(text: str | None) -> str | None:
    return text or None


def _first_address(attrs: Mapping[str, Any]) -> Any:
    addresses = _field(attrs, "addresses")
    if isinstance(addresses, Mapping):
        addresses = [addresses]
    if isinstance(addresses, list | tuple):
        for address in addresses:
            if isinstance(address, str) and address.strip():
                return {"lines": [address]}
            if not isinstance(address, str) and any(
                not _is_empty(_field(address, key))
                for key in ("lines", "city", "postal_code", "region", "country")
            ):
                return address
    return None


def _address_features(attrs: Mapping[str, Any], country: str | None) -> dict[str, str | None]:
    address = _first_address(attrs)
    lines: list[str] = []
    if address is not None:
        raw_lines = _field(address, "lines")
        if isinstance(raw_lines, list | tuple):
            lines = [to_text(line) for line in raw_lines if not _is_empty(line)]
        elif not _is_empty(raw_lines):
            lines = [to_text(raw_lines)]
    if not lines:
        lines = [to_text(_first(attrs, keys)) for keys in (_STREET_KEYS, _STREET2_KEYS)]
        lines = [line for line in lines if line.strip()]

    def pick(keys: tuple[str, ...]) -> Any:
        value = _first(address, keys) if address is not None else None
        return value if value is not None else _first(attrs, keys)

    given_number = _or_none(
        _HOUSE_NUMBER_CLEAN.sub("", to_text(_field(attrs, "house_number"))).lower()
    )
    given_unit = _or_none(" ".join(to_text(_field(attrs, "unit")).lower().split()))
    parts = split_street_parts(
        ", ".join(lines), want_number=given_number is None, want_unit=given_unit is None
    )
    return {
        "house_number": given_number or parts.house_number,
        "street": _or_none(parts.street),
        "unit": given_unit or parts.unit,
        "postcode": standardize_postcode(pick(_POSTCODE_KEYS), country),
        "city": _or_none(standardize_city(pick(_CITY_KEYS))),
        "region": standardize_region(pick(_REGION_KEYS), country),
    }


def _record_country(attrs: Mapping[str, Any]) -> str | None:
    address = _first_address(attrs)
    if address is not None:
        country = standardize_country(_field(address, "country"))
        if country is not None:
            return country
    return standardize_country(_first(attrs, _COUNTRY_KEYS))


def _person_features(attrs: Mapping[str, Any], kind: str | None) -> dict[str, str | None]:
    given_raw = standardize_person_name(_first(attrs, ("given_name_raw", *_GIVEN_KEYS)))
    family = standardize_person_name(_first(attrs, _FAMILY_KEYS))
    middle = standardize_person_name(_first(attrs, _MIDDLE_KEYS))
    if not middle:
        middle = standardize_person_name(_field(attrs, "middle_initial"))
    if not given_raw and not family and kind == PERSON:
        # A person whose source has one name field only.
        full = _first(attrs, (*_FULL_NAME_KEYS, *_ORG_NAME_KEYS))
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
    attrs: Mapping[str, Any], kind: str | None, person_name: str | None
) -> tuple[str | None, str | None]:
    """The ``name`` and ``legal_form`` features.

    A record that does not say its kind is named as a person when it has person name parts,
    else as an organisation: only the record's own fields decide, never a guess, so that the
    features of the features are the features.
    """
    if kind == PERSON or (kind is None and person_name):
        return person_name, None
    source = _first(attrs, _ORG_NAME_KEYS)
    if source is None:
        source = _first(attrs, _FULL_NAME_KEYS)
    org = split_org_name(source)
    legal = org.legal_form or standardize_legal_form(_field(attrs, "legal_form"))
    return _or_none(org.core), legal


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
    attrs: Mapping[str, Any] = attributes if isinstance(attributes, Mapping) else {}
    country = _record_country(attrs)
    kind = _kind(attrs)
    person = _person_features(attrs, kind)
    name, legal = _name_and_legal_form(attrs, kind, person["person_name"])

    emails = sorted(
        {e for e in map(standardize_email, _all_values(attrs, _EMAIL_KEYS, _EMAIL_SPLIT)) if e}
    )
    phones = sorted(
        {
            p
            for p in (
                standardize_phone(value, country)
                for value in _all_values(attrs, _PHONE_KEYS, _PHONE_SPLIT)
            )
            if p
        }
    )
    domain = standardize_domain(_first(attrs, _WEBSITE_KEYS))
    if domain is None:
        domain = next(
            (d for d in map(standardize_domain, emails) if d and not is_free_mail_domain(d)),
            None,
        )

    order = "MDY" if country in _MONTH_FIRST else "DMY"
    dob = standardize_date(_first(attrs, _DOB_KEYS), order)
    if dob in _DOB_PLACEHOLDERS:
        dob = None

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
        "tax_id": standardize_tax_id(_field(attrs, "tax_id"), country),
        "national_id": standardize_national_id(_field(attrs, "national_id")),
        "dob": dob,
        **_address_features(attrs, country),
        "country": country,
        "domain": domain,
    }
