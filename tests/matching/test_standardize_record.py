"""Record features from canonical (CRM, billing, ERP) and flat (CSV) records."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.model import CanonicalParty, PostalAddress
from matching.features import FEATURE_KEYS, standardize_record

# One customer as three systems hold it.
CRM_PERSON: dict[str, Any] = {
    "kind": "person",
    "given_name": "Robert",
    "family_name": "Smith Jr.",
    "emails": ["Bob.Smith+crm@GoogleMail.com", "rsmith@acme-widgets.com"],
    "phones": ["(415) 555-2671"],
    "addresses": [
        {
            "lines": ["123 Main Street", "Apt 4B"],
            "city": "San Francisco",
            "region": "California",
            "postal_code": "94105-1234",
            "country": "US",
        }
    ],
    "date_of_birth": "1980-02-03",
}
BILLING_PERSON: dict[str, Any] = {
    "kind": "person",
    "given_name": "bob",
    "family_name": "SMITH",
    "emails": ["bobsmith@gmail.com"],
    "phones": ["+1 415-555-2671"],
    "addresses": [
        {
            "lines": ["123 Main St. #4B"],
            "city": "SAN FRANCISCO",
            "region": "CA",
            "postal_code": "94105",
            "country": "US",
        }
    ],
    "date_of_birth": "1980-02-03",
}
CSV_PERSON: dict[str, Any] = {  # a flat extract with columns mapped to canonical names
    "first_name": "Bob",
    "last_name": "Smith",
    "email": "bob.smith@gmail.com",
    "phone": "415 555 2671",
    "street": "123 Main St",
    "unit": "4B",
    "zip": "94105",
    "city": "San Francisco",
    "state": "CA",
    "country": "USA",
    "dob": "02/03/1980",
}

ERP_ORG: dict[str, Any] = {
    "kind": "organization",
    "legal_name": "Müller & Söhne GmbH & Co. KG",
    "emails": ["info@mueller-soehne.de"],
    "phones": ["030 1234567"],
    "addresses": [
        {
            "lines": ["Hauptstraße 12a", "3. OG"],
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        }
    ],
    "tax_id": "123 456 789",
    "website": "https://www.mueller-soehne.de/kontakt",
    "currency": "EUR",
}
CRM_ORG: dict[str, Any] = {
    "kind": "organization",
    "legal_name": "Mueller und Soehne GmbH & Co KG".replace("Mueller und Soehne", "Müller & Söhne"),
    "emails": ["Einkauf@Mueller-Soehne.de"],
    "phones": ["+49 (0)30 123 4567"],
    "addresses": [
        {
            "lines": ["Hauptstr. 12 a"],
            "city": "BERLIN",
            "postal_code": "D-10115",
            "country": "Germany",
        }
    ],
    "tax_id": "DE123456789",
}

PERSON_KEYS = ("name", "given_name", "family_name", "phones", "dob", "house_number", "street")
ADDRESS_KEYS = ("house_number", "street", "unit", "postcode", "city", "region", "country")


def test_features_have_exactly_the_documented_keys() -> None:
    for record in (CRM_PERSON, BILLING_PERSON, CSV_PERSON, ERP_ORG, CRM_ORG, {}):
        features = standardize_record(record)
        assert tuple(features) == FEATURE_KEYS


def test_one_person_in_three_systems_gives_the_same_identity_features() -> None:
    crm, billing, csv = map(standardize_record, (CRM_PERSON, BILLING_PERSON, CSV_PERSON))
    for key in (*PERSON_KEYS, *ADDRESS_KEYS):
        assert crm[key] == billing[key] == csv[key], key
    assert crm["name"] == "robert smith"
    assert crm["given_name"] == "robert"
    assert billing["given_name_raw"] == "bob"
    assert crm["phones"] == ["+14155552671"]
    assert crm["dob"] == "1980-02-03"
    assert (crm["house_number"], crm["street"], crm["unit"]) == ("123", "main st", "4b")
    assert (crm["postcode"], crm["city"], crm["region"], crm["country"]) == (
        "94105",
        "san francisco",
        "CA",
        "US",
    )
    assert crm["emails"] == ["bobsmith@gmail.com", "rsmith@acme-widgets.com"]
    assert billing["emails"] == csv["emails"] == ["bobsmith@gmail.com"]


def test_one_company_in_two_systems_gives_the_same_features() -> None:
    erp, crm = standardize_record(ERP_ORG), standardize_record(CRM_ORG)
    for key in ("kind", "name", "legal_form", "phones", "tax_id", "domain", *ADDRESS_KEYS):
        assert erp[key] == crm[key], key
    assert erp["name"] == "muller and sohne"
    assert erp["legal_form"] == "GMBH_CO_KG"
    assert erp["tax_id"] == "DE123456789"
    assert erp["phones"] == ["+49301234567"]
    assert erp["domain"] == "mueller-soehne.de"
    assert (erp["house_number"], erp["street"], erp["postcode"]) == ("12a", "hauptstr", "10115")
    assert erp["given_name"] is None
    assert erp["dob"] is None


def test_canonical_party_attributes_are_accepted() -> None:
    party = CanonicalParty(
        kind="person",
        given_name="Liz",
        middle_name="Anne",
        family_name="O'Neil",
        emails=("Liz.ONeil@Example.co.uk",),
        phones=("020 7946 0958",),
        addresses=(
            PostalAddress(
                lines=("Flat 3", "12 High Street"),
                city="London",
                postal_code="sw1a1aa",
                country="GB",
            ),
        ),
        national_id="AB 12 34 56 C",
        date_of_birth=date(1975, 7, 14),
        website="http://www.oneil-consulting.co.uk",
    )
    features = standardize_record(party.to_attributes())
    assert features["kind"] == "person"
    assert features["name"] == "elizabeth oneil"
    assert features["given_name_raw"] == "liz"
    assert features["middle_initial"] == "a"
    assert features["emails"] == ["liz.oneil@example.co.uk"]
    assert features["email_locals"] == ["liz.oneil"]
    assert features["phones"] == ["+442079460958"]
    assert features["national_id"] == "AB123456C"
    assert features["dob"] == "1975-07-14"
    assert (features["house_number"], features["street"], features["unit"]) == (
        "12",
        "high st",
        "3",
    )
    assert (features["postcode"], features["city"], features["country"]) == (
        "SW1A 1AA",
        "london",
        "GB",
    )
    assert features["domain"] == "oneil-consulting.co.uk"


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"kind": "person", "name": "Dr. Jane A. Doe"}, ("jane", "a", "doe", "jane doe")),
        ({"kind": "person", "legal_name": "Smith, John"}, ("john", None, "smith", "john smith")),
        (
            {"kind": "person", "full_name": "Ludwig van Beethoven"},
            ("ludwig", None, "van beethoven", "ludwig van beethoven"),
        ),
        ({"kind": "person", "given_name": "Robert J."}, ("robert", "j", None, "robert")),
        (
            {"given_name": "Peggy", "family_name": "Olson"},
            ("margaret", None, "olson", "margaret olson"),
        ),
        (
            {"kind": "person", "given_name": "小明", "family_name": "王"},
            ("xiaoming", None, "wang", "xiaoming wang"),
        ),
        ({"kind": "person", "name": "王小明"}, ("xiaoming", None, "wang", "xiaoming wang")),
        (
            {"kind": "person", "given_name": "Иван", "family_name": "Петров"},
            ("john", None, "petrov", "john petrov"),
        ),
    ],
)
def test_person_name_features(record: dict[str, Any], expected: tuple[Any, ...]) -> None:
    features = standardize_record(record)
    given, middle, family, name = expected
    if record.get("given_name") == "Иван":
        given, name = "ivan", "ivan petrov"  # Ivan is a name of its own, not John
    assert (features["given_name"], features["middle_initial"]) == (given, middle)
    assert (features["family_name"], features["name"]) == (family, name)


def test_a_free_mail_address_is_not_a_company_domain() -> None:
    features = standardize_record({"emails": ["jane@gmail.com", "jane@yahoo.co.uk"]})
    assert features["domain"] is None
    features = standardize_record({"emails": ["jane@gmail.com", "jane.doe@sales.acme.com"]})
    assert features["domain"] == "acme.com"
    features = standardize_record({"website": "acme.io", "emails": ["jane@other.com"]})
    assert features["domain"] == "acme.io"


def test_dates_are_read_in_the_order_of_the_records_country() -> None:
    us = standardize_record({"dob": "02/03/1980", "country": "US"})
    de = standardize_record({"dob": "02/03/1980", "country": "DE"})
    assert (us["dob"], de["dob"]) == ("1980-02-03", "1980-03-02")


@pytest.mark.parametrize("placeholder", ["1900-01-01", "01/01/1900", "9999-12-31", "0001-01-01"])
def test_placeholder_birth_dates_are_unknown(placeholder: str) -> None:
    assert standardize_record({"kind": "person", "date_of_birth": placeholder})["dob"] is None


def test_flat_records_may_give_scalars_for_lists_and_lists_for_scalars() -> None:
    features = standardize_record(
        {
            "emails": "a@x.com; B@Y.com, a@x.com",
            "phones": "+44 20 7946 0958 | +44 20 7946 0959",
            "addresses": {"lines": "10 Downing Street", "city": "London", "country": "UK"},
        }
    )
    assert features["emails"] == ["a@x.com", "b@y.com"]
    assert features["phones"] == ["+442079460958", "+442079460959"]
    assert (features["house_number"], features["street"], features["country"]) == (
        "10",
        "downing st",
        "GB",
    )


def test_a_unit_column_and_a_unit_in_the_street_line_agree() -> None:
    column = standardize_record({"street": "123 Main St", "unit": "Apt. 4B", "country": "US"})
    inline = standardize_record({"street": "123 Main St #4b", "country": "US"})
    assert (column["house_number"], column["street"], column["unit"]) == ("123", "main st", "4b")
    assert (inline["house_number"], inline["street"], inline["unit"]) == ("123", "main st", "4b")


def test_a_separate_house_number_column_is_used_as_is() -> None:
    features = standardize_record(
        {"street": "Hauptstraße", "house_number": "12 A", "postcode": "1067", "country": "DE"}
    )
    assert (features["house_number"], features["street"], features["postcode"]) == (
        "12a",
        "hauptstr",
        "01067",
    )


@pytest.mark.parametrize(
    "record",
    [
        {},
        {"kind": None},
        {"kind": "alien", "legal_name": 42, "emails": [None, 5, "x"], "phones": [{"a": 1}]},
        {"addresses": ["", None, 7]},
        {"addresses": "not a list"},
        {"addresses": [{"lines": None, "city": None}]},
        {"date_of_birth": 3.5, "tax_id": ["DE", 1], "national_id": object()},
        {"given_name": b"\xff\xfe", "family_name": "\ud800"},
        {"emails": ["x" * 100_000 + "@example.com"], "legal_name": "Y" * 1_000_000},
    ],
)
def test_malformed_records_give_features_instead_of_errors(record: dict[str, Any]) -> None:
    features = standardize_record(record)
    assert tuple(features) == FEATURE_KEYS
    assert standardize_record(features) == features


@pytest.mark.parametrize("record", [CRM_PERSON, BILLING_PERSON, CSV_PERSON, ERP_ORG, CRM_ORG])
def test_standardizing_features_again_changes_nothing(record: dict[str, Any]) -> None:
    features = standardize_record(record)
    assert standardize_record(features) == features


def test_lists_are_sorted_without_duplicates() -> None:
    features = standardize_record(
        {"emails": ["b@x.com", "a@x.com", "B@X.com"], "phones": ["+49 30 2", "+4930 1234567"]}
    )
    assert features["emails"] == ["a@x.com", "b@x.com"]
    assert features["email_locals"] == ["a", "b"]
    assert features["phones"] == sorted(set(features["phones"]))


_FIELD_VALUES = {
    "kind": st.sampled_from(["person", "organization", "Company", None]),
    "legal_name": st.sampled_from(["Acme Inc.", "The Acme Company", "Müller GmbH", "AB Volvo"]),
    "name": st.sampled_from(["Bob Smith", "Smith, Robert", "Acme Ltd", "王小明"]),
    "given_name": st.sampled_from(["Bob", "Robert J.", "Dr. Liz", "Иван", ""]),
    "given_name_raw": st.sampled_from(["bob", "liz"]),
    "middle_name": st.sampled_from(["Anne", "J.", ""]),
    "family_name": st.sampled_from(["Smith Jr.", "van Beethoven", "O'Brien", ""]),
    "emails": st.lists(st.sampled_from(["B.Smith+x@gmail.com", "sales@acme.de", "bad", ""])),
    "email": st.sampled_from(["jane@acme.com; x@y.org", "nope"]),
    "phones": st.lists(st.sampled_from(["(415) 555-2671", "030 1234567", "+44 20 7946 0958"])),
    "addresses": st.lists(
        st.fixed_dictionaries(
            {
                "lines": st.lists(
                    st.sampled_from(
                        [
                            "123 Main St Apt 4",
                            "Hauptstraße 12a",
                            "Flat 3",
                            "12, rue de la Paix",
                            "0/0A",
                            "Route 66",
                            "c/o Acme",
                            "PO Box 5",
                        ]
                    ),
                    max_size=3,
                ),
                "city": st.sampled_from(["St. Louis", "Berlin", "", "Paris Cedex 08"]),
                "region": st.sampled_from(["California", "Bayern", "NT", ""]),
                "postal_code": st.sampled_from(["94105-1234", "1067", "sw1a1aa", "x"]),
                "country": st.sampled_from(["US", "Germany", "UK", "FR", "", "Narnia"]),
            }
        ),
        max_size=2,
    ),
    "street": st.sampled_from(["12 Main St", "Calle Mayor, 5", "Apt 3, 9 Elm Dr"]),
    "house_number": st.sampled_from(["12", "5 b", ""]),
    "unit": st.sampled_from(["4B", ""]),
    "postcode": st.sampled_from(["94105", "SW1A1AA", "10115"]),
    "country": st.sampled_from(["US", "DE", "GB", "XX"]),
    "tax_id": st.sampled_from(["123456789", "DE123456789", "12-3456789", "n/a"]),
    "national_id": st.sampled_from(["123-45-6788", "000"]),
    "date_of_birth": st.sampled_from(["1980-02-03", "02/03/1980", "3 Feb 1980", "1900-01-01"]),
    "website": st.sampled_from(["https://www.acme.com/x", "gmail.com", "nonsense"]),
    "legal_form": st.sampled_from(["GmbH", "LLC", "INC"]),
}
records = st.fixed_dictionaries(
    {},
    optional={key: st.one_of(value, st.text(max_size=30)) for key, value in _FIELD_VALUES.items()},
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=records)
def test_features_of_features_are_the_features(record: dict[str, Any]) -> None:
    features = standardize_record(record)
    assert tuple(features) == FEATURE_KEYS
    for key in ("emails", "email_locals", "phones"):
        assert features[key] == sorted(set(features[key]))
    assert standardize_record(features) == features


def test_robert_smith_jr_and_bob_smith_are_the_same_person() -> None:
    full = standardize_record({"kind": "person", "name": "Robert Smith Jr."})
    parts = standardize_record({"kind": "person", "given_name": "bob", "family_name": "smith"})
    for key in ("name", "given_name", "family_name"):
        assert full[key] == parts[key], key
    assert full["given_name_raw"] == "robert"
    assert parts["given_name_raw"] == "bob"


def test_rows_of_a_data_frame_are_read_like_dicts() -> None:
    pd = pytest.importorskip("pandas")
    row = pd.Series(
        {
            "given_name": "Bob",
            "family_name": "Smith",
            "phone": 4155552671.0,  # a phone column read as numbers
            "postcode": 2139.0,  # a ZIP code that lost its leading zero
            "country": "US",
            "dob": float("nan"),
            "email": pd.NA,
            "city": None,
        }
    )
    features = standardize_record(row)
    assert features["name"] == "robert smith"
    assert features["phones"] == ["+14155552671"]
    assert features["postcode"] == "02139"
    assert (features["dob"], features["emails"], features["city"]) == (None, [], None)


def test_a_persons_role_address_gives_the_employer_but_not_an_identity() -> None:
    person = standardize_record(
        {"kind": "person", "given_name": "Ann", "family_name": "Lee", "email": "Invoices@Acme.com"}
    )
    company = standardize_record(
        {"kind": "organization", "legal_name": "Acme Inc", "email": "invoices@acme.com"}
    )
    assert (person["emails"], person["email_locals"], person["domain"]) == ([], [], "acme.com")
    assert company["emails"] == ["invoices@acme.com"]
