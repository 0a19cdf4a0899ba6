"""Invariants of every standardizer: never raises, idempotent, bounded on hostile input."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.standardize import (
    canonical_given_name,
    email_local_part,
    is_free_mail_domain,
    legal_form,
    split_full_name,
    split_name_parts,
    split_org_name,
    split_street,
    standardize_city,
    standardize_country,
    standardize_date,
    standardize_domain,
    standardize_email,
    standardize_house_number,
    standardize_legal_form,
    standardize_national_id,
    standardize_org_name,
    standardize_person_name,
    standardize_phone,
    standardize_postcode,
    standardize_region,
    standardize_street,
    standardize_tax_id,
    standardize_unit,
)

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Arbitrary text, text decoded from arbitrary bytes, and lone surrogates (which a str can hold
# when it came from a lenient decoder).
any_text = st.one_of(
    st.text(),
    st.binary().map(lambda b: b.decode("latin-1")),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)),
    st.text(st.sampled_from("王小明김민준Иван Ελλάδα ßÆØ°º№&+-./,#@'’ 0123456789abcXYZ")),
)

_WORDS = [
    "main",
    "Street",
    "St.",
    "Straße",
    "Hauptstr.",
    "rue",
    "de",
    "la",
    "Via",
    "Calle",
    "C/",
    "Avenue",
    "Ave",
    "Apt",
    "Suite",
    "Unit",
    "Flat",
    "#",
    "No.",
    "Nr.",
    "nº",
    "PO",
    "Box",
    "Postfach",
    "c/o",
    "3rd",
    "Floor",
    "OG",
    "Fifth",
    "North",
    "route",
    "Ste",
    "Marie",
    "Level",
    "d.",
    "ул.",
    "Тверская",
    "Inc",
    "GmbH",
    "&",
    "Co.",
    "KG",
    "S.A.",
    "The",
    "Mr",
    "Dr.",
    "Jr.",
    "PhD",
    "Bob",
    "Smith",
    "van",
    "O'Brien",
    "Müller",
    "-",
    "/",
    ",",
    ";",
]
address_like = st.lists(
    st.one_of(
        st.sampled_from(_WORDS),
        st.integers(min_value=0, max_value=99999).map(str),
        st.from_regex(r"\d{1,4}[a-dA-D]?(?:[-/]\d{1,3})?", fullmatch=True),
    ),
    max_size=12,
).map(" ".join)
text_input = st.one_of(any_text, address_like)
countries = st.sampled_from(
    [
        None,
        "US",
        "GB",
        "DE",
        "FR",
        "NL",
        "CA",
        "SE",
        "PL",
        "JP",
        "BR",
        "IE",
        "CH",
        "NO",
        "GR",
        "BE",
        "AT",
        "AU",
        "IN",
        "XX",
        "Germany",
        "usa",
        "",
    ]
)

HUGE = [
    "x" * 1_000_000,
    "王" * 200_000,
    "1" * 1_000_000,
    "@" * 1_000_000,
    "." * 1_000_000,
    "a." * 500_000,
    "Dr " * 300_000 + "Smith",
    "Smith " + "Jr " * 300_000,
    ("12 Main St Apt 4 " * 50_000),
    "\x00" * 100_000,
    "a@" + "b" * 1_000_000 + ".com",
    "+" + "1" * 1_000_000,
]

ONE_ARG_TEXT: list[tuple[str, Callable[[object], str]]] = [
    ("standardize_person_name", standardize_person_name),
    ("canonical_given_name", canonical_given_name),
    ("standardize_org_name", standardize_org_name),
    ("standardize_street", standardize_street),
    ("standardize_city", standardize_city),
]
ONE_ARG_OPTIONAL: list[tuple[str, Callable[[object], str | None]]] = [
    ("standardize_email", standardize_email),
    ("standardize_domain", standardize_domain),
    ("standardize_country", standardize_country),
    ("standardize_national_id", standardize_national_id),
    ("standardize_legal_form", standardize_legal_form),
    ("standardize_house_number", standardize_house_number),
    ("standardize_unit", standardize_unit),
]
TWO_ARG_OPTIONAL: list[tuple[str, Callable[[object, str | None], str | None]]] = [
    ("standardize_phone", standardize_phone),
    ("standardize_postcode", standardize_postcode),
    ("standardize_tax_id", standardize_tax_id),
    ("standardize_region", standardize_region),
]


@pytest.mark.parametrize(("name", "function"), ONE_ARG_TEXT)
@PROPERTY
@given(text=text_input)
def test_text_standardizers_are_idempotent(
    name: str, function: Callable[[object], str], text: str
) -> None:
    once = function(text)
    assert isinstance(once, str)
    assert once == " ".join(once.split()), "single-spaced, no surrounding blanks"
    assert once.isascii()
    assert function(once) == once, name


@pytest.mark.parametrize(("name", "function"), ONE_ARG_OPTIONAL)
@PROPERTY
@given(text=text_input)
def test_optional_standardizers_are_idempotent(
    name: str, function: Callable[[object], str | None], text: str
) -> None:
    once = function(text)
    if once is not None:
        assert once
        assert function(once) == once, name


@pytest.mark.parametrize(("name", "function"), TWO_ARG_OPTIONAL)
@PROPERTY
@given(text=text_input, country=countries)
def test_country_aware_standardizers_are_idempotent(
    name: str, function: Callable[[object, str | None], str | None], text: str, country: str | None
) -> None:
    once = function(text, country)
    if once is not None:
        assert once
        assert function(once, country) == once, name


@PROPERTY
@given(
    text=st.one_of(
        text_input,
        st.dates().map(str),
        st.dates().map(lambda d: d.strftime("%d/%m/%Y")),
        st.dates().map(lambda d: d.strftime("%m/%d/%y")),
        st.dates().map(lambda d: d.strftime("%d %B %Y")),
        st.dates().map(lambda d: d.strftime("%Y%m%d")),
    ),
    order=st.sampled_from(["DMY", "MDY", "YMD"]),
)
def test_standardize_date_is_idempotent(text: str, order: str) -> None:
    once = standardize_date(text, order)
    if once is not None:
        assert len(once) == 10
        assert standardize_date(once, order) == once


@PROPERTY
@given(day=st.dates(), order=st.sampled_from(["DMY", "MDY", "YMD"]))
def test_iso_dates_round_trip(day: object, order: str) -> None:
    assert standardize_date(str(day), order) == str(day)


@PROPERTY
@given(number=st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True)))
def test_standardize_date_never_raises_on_numbers(number: float) -> None:
    result = standardize_date(number)
    assert result is None or standardize_date(result) == result


@PROPERTY
@given(text=text_input)
def test_split_street_leaves_nothing_to_split(text: str) -> None:
    number, street, unit = split_street(text)
    assert standardize_street(street) == street
    again = split_street(street)
    assert again.street == street or number is not None or unit is not None
    if number is None:
        assert again.house_number is None
    else:
        assert standardize_house_number(number) == number
    if unit is None:
        assert again.unit is None
    else:
        assert standardize_unit(unit) == unit


@PROPERTY
@given(text=text_input)
def test_name_splitting_returns_standardized_parts(text: str) -> None:
    given_name, middle, family = split_name_parts(text)
    for part in (given_name, middle, family):
        assert part == " ".join(part.split())
        assert part.isascii()
    assert split_full_name(text) == (given_name, family)


@PROPERTY
@given(text=text_input)
def test_org_name_split_agrees_with_its_parts(text: str) -> None:
    core, code = split_org_name(text)
    assert core == standardize_org_name(text)
    assert code == legal_form(text)
    if code is not None:
        assert standardize_legal_form(code) == code


@PROPERTY
@given(text=text_input)
def test_free_mail_and_local_part_never_raise(text: str) -> None:
    assert isinstance(is_free_mail_domain(text), bool)
    local = email_local_part(text)
    assert local is None or "@" not in local


ALL_ONE_ARG: list[Callable[[object], object]] = [
    *(function for _, function in ONE_ARG_TEXT + ONE_ARG_OPTIONAL),
    split_street,
    split_name_parts,
    split_org_name,
    legal_form,
    is_free_mail_domain,
    email_local_part,
    standardize_date,
]


@pytest.mark.parametrize("value", HUGE, ids=lambda value: f"{value[:12]!r}x{len(value)}")
def test_huge_inputs_are_handled(value: str) -> None:
    for function in ALL_ONE_ARG:
        result = function(value)
        if isinstance(result, str):
            assert len(result) <= 1024
    for _, two_arg in TWO_ARG_OPTIONAL:
        two_arg(value, "DE")


@pytest.mark.parametrize(
    "value", [None, 0, -1, 3.5, True, b"bytes \xff", bytearray(b"x"), object(), [1, 2], {"a": 1}]
)
def test_non_text_inputs_never_raise(value: object) -> None:
    for function in ALL_ONE_ARG:
        function(value)
    for _, two_arg in TWO_ARG_OPTIONAL:
        two_arg(value, None)


def test_broken_str_is_treated_as_empty() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert standardize_person_name(Broken()) == ""
    assert standardize_email(Broken()) is None


@pytest.mark.parametrize(
    "name",
    [
        "nicknames.csv",
        "legal_forms.csv",
        "street_words.csv",
        "countries.csv",
        "regions.csv",
        "free_mail_domains.csv",
        "person_name_words.csv",
    ],
)
def test_reference_tables_are_package_data(name: str) -> None:
    resource = files("matching").joinpath("data", name)
    assert resource.is_file()
    assert len(resource.read_text(encoding="utf-8").splitlines()) > 10
