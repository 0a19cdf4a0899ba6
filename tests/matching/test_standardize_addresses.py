"""Streets, house numbers, units, postcodes, cities, regions and countries."""

from __future__ import annotations

import pytest

from matching.standardize import (
    split_street,
    split_street_parts,
    standardize_city,
    standardize_country,
    standardize_house_number,
    standardize_postcode,
    standardize_region,
    standardize_street,
    standardize_unit,
)
from matching.standardize.addresses import STREET_WORDS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("123 Main Street", "123 main st"),
        ("123 MAIN ST.", "123 main st"),
        ("1600 Pennsylvania Avenue NW", "1600 pennsylvania ave nw"),
        ("1600 Pennsylvania Ave. N.W.", "1600 pennsylvania ave n w"),
        ("10 Downing Street", "10 downing st"),
        ("742 Evergreen Terrace", "742 evergreen ter"),
        ("350 Fifth Avenue", "350 5th ave"),
        ("350 5th Ave", "350 5th ave"),
        ("55 North Boulevard", "55 n blvd"),
        ("9 Sunset Blvd", "9 sunset blvd"),
        ("4 Elm Drive", "4 elm dr"),
        ("Hauptstraße 12a", "hauptstr 12a"),
        ("Hauptstrasse 12a", "hauptstr 12a"),
        ("Hauptstr. 12a", "hauptstr 12a"),
        ("HAUPTSTR 12A", "hauptstr 12a"),
        ("Berliner Straße 5", "berliner str 5"),
        ("Konrad-Adenauer-Straße 7", "konrad adenauer str 7"),
        ("Kerkstraat 12", "kerkstr 12"),
        ("12, rue de la Paix", "12 rue de la paix"),
        ("8 Avenue des Champs-Élysées", "8 ave des champs elysees"),
        ("Bd Haussmann 40", "blvd haussmann 40"),
        ("C/ Mayor 5", "calle mayor 5"),
        ("Avda. de la Constitución 3", "ave de la constitucion 3"),
        ("Av. Paulista, 1578", "ave paulista 1578"),
        ("Rua Augusta nº 200", "rua augusta no 200"),
        ("Via Roma 10", "via roma 10"),
        ("Piazza del Duomo 1", "pza del duomo 1"),
        ("P.O. Box 456", "po box 456"),
        ("Postfach 1234", "po box 1234"),
        ("St. Mary's Road", "st marys rd"),
        ("Saint Mary's Road", "st marys rd"),
        ("ул. Тверская, д. 7", "ul tverskaia d 7"),
        ("", ""),
    ],
)
def test_standardize_street(raw: str, expected: str) -> None:
    assert standardize_street(raw) == expected


@pytest.mark.parametrize(
    ("raw", "number", "street", "unit"),
    [
        ("123 Main Street", "123", "main st", None),
        ("123 Main Street Apt 4B", "123", "main st", "4b"),
        ("123 Main St., Apt. 4B", "123", "main st", "4b"),
        ("123 Main St #4B", "123", "main st", "4b"),
        ("Apt 4B, 123 Main St", "123", "main st", "4b"),
        ("Suite 200, 1 Infinite Loop", "1", "infinite loop", "200"),
        ("Flat 3, 12 High Street", "12", "high st", "3"),
        ("Flat C, 12 High Street", "12", "high st", "c"),
        ("221B Baker Street", "221b", "baker st", None),
        ("12-14 Market Street", "12-14", "market st", None),
        ("Unit 5/12 George St", "12", "george st", "5"),
        ("5/12 George St", "12", "george st", "5"),
        ("Level 5, 10 Queen St", "10", "queen st", None),
        ("3rd Floor, 20 King Street", "20", "king st", None),
        ("1600 Pennsylvania Avenue NW", "1600", "pennsylvania ave nw", None),
        ("350 Fifth Avenue", "350", "5th ave", None),
        ("Fifth Avenue", None, "5th ave", None),
        ("Hauptstraße 12a", "12a", "hauptstr", None),
        ("Hauptstr. 12 a, 3. OG", "12a", "hauptstr", None),
        ("Kirchweg Nr. 5", "5", "kirchweg", None),
        ("Kerkstraat 12-3", "12-3", "kerkstr", None),
        ("12, rue de la Paix", "12", "rue de la paix", None),
        ("12 rue de la Paix", "12", "rue de la paix", None),
        ("Calle Mayor, 5", "5", "calle mayor", None),
        ("C/ Mayor 5", "5", "calle mayor", None),
        ("Via Roma 10", "10", "via roma", None),
        ("Rua Augusta nº 200", "200", "rua augusta", None),
        ("ул. Тверская, д. 7", "7", "ul tverskaia", None),
        ("c/o Acme Ltd, 12 Main St", "12", "main st", None),
        ("12 Rue Ste Marie", "12", "rue ste marie", None),
        ("PO Box 123", "123", "po box", None),
        ("Main Street", None, "main st", None),
        ("", None, "", None),
    ],
)
def test_split_street(raw: str, number: str | None, street: str, unit: str | None) -> None:
    assert split_street(raw) == (number, street, unit)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Apt 4B", "4b"),
        ("#4B", "4b"),
        ("Suite 4 B", "4b"),
        ("4b", "4b"),
        ("Flat C", "c"),
        ("Whg. 3", "3"),
        ("Top 5/3", "5/3"),
        ("Apt", None),
        ("", None),
    ],
)
def test_standardize_unit(raw: str, expected: str | None) -> None:
    assert standardize_unit(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12", "12"),
        ("12 A", "12a"),
        ("No. 12a", "12a"),
        ("Nr. 5", "5"),
        ("n° 7", "7"),
        ("12-14", "12-14"),
        ("#12", "12"),
        ("", None),
    ],
)
def test_standardize_house_number(raw: str, expected: str | None) -> None:
    assert standardize_house_number(raw) == expected


@pytest.mark.parametrize("line", ["123 Main St Apt 4B", "Flat C, 12 High St", "Hauptstr. 12 a"])
def test_split_parts_read_back_unchanged(line: str) -> None:
    number, _, unit = split_street(line)
    assert standardize_house_number(number) == number
    assert unit is None or standardize_unit(unit) == unit


def test_split_street_can_leave_the_number_in_place() -> None:
    parts = split_street_parts("12 Main St Apt 3", want_number=False)
    assert parts == (None, "12 main st", "3")
    parts = split_street_parts("12 Main St Apt 3", want_unit=False)
    assert parts == ("12", "main st apt 3", None)


def test_street_words_are_fixed_points() -> None:
    for variant, canonical in STREET_WORDS.items():
        assert STREET_WORDS.get(canonical, canonical) == canonical, (variant, canonical)


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("02139-4307", "US", "02139"),
        ("021394307", "US", "02139"),
        ("2139", "US", "02139"),
        ("94105", "USA", "94105"),
        ("00000", "US", None),
        ("ABCDE", "US", None),
        ("sw1a1aa", "GB", "SW1A 1AA"),
        ("SW1A 1AA", "United Kingdom", "SW1A 1AA"),
        ("ec1a 1bb", "UK", "EC1A 1BB"),
        ("M1 1AE", "GB", "M1 1AE"),
        ("XYZ", "GB", None),
        ("k1a0b1", "CA", "K1A 0B1"),
        ("K1A-0B1", "CA", "K1A 0B1"),
        ("1234ab", "NL", "1234 AB"),
        ("1234 AB", "Netherlands", "1234 AB"),
        ("D-10115", "DE", "10115"),
        ("1067", "DE", "01067"),
        ("75008", "France", "75008"),
        ("F-75008", "FR", "75008"),
        ("00184", "IT", "00184"),
        ("28013", "ES", "28013"),
        ("8001", "CH", "8001"),
        ("1010", "AT", "1010"),
        ("0150", "NO", "0150"),
        ("800", "AU", "0800"),
        ("11455", "SE", "114 55"),
        ("114 55", "SE", "114 55"),
        ("00950", "PL", "00-950"),
        ("1000001", "JP", "100-0001"),
        ("01310100", "BR", "01310-100"),
        ("1000-001", "PT", "1000-001"),
        ("a65f4e2", "IE", "A65 F4E2"),
        ("110 001", "IN", "110001"),
        ("100000", "CN", "100000"),
        ("10115", None, "10115"),
        ("sw1a 1aa", None, "SW1A 1AA"),
        ("n/a", None, None),
        ("", "DE", None),
    ],
)
def test_standardize_postcode(raw: str, country: str | None, expected: str | None) -> None:
    assert standardize_postcode(raw, country) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("San Francisco", "san francisco"),
        ("SAN FRANCISCO", "san francisco"),
        ("St. Louis", "saint louis"),
        ("Saint Louis", "saint louis"),
        ("Saint-Étienne", "saint etienne"),
        ("St Etienne", "saint etienne"),
        ("Mt. Vernon", "mount vernon"),
        ("Ft. Worth", "fort worth"),
        ("Paris Cedex 08", "paris"),
        ("75008 Paris", "paris"),
        ("Springfield, IL", "springfield"),
        ("München", "munchen"),
        ("Frankfurt am Main", "frankfurt am main"),
        ("Москва", "moskva"),
        ("北京", "beijing"),
        ("", ""),
    ],
)
def test_standardize_city(raw: str, expected: str) -> None:
    assert standardize_city(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("DE", "DE"),
        ("de", "DE"),
        ("DEU", "DE"),
        ("Germany", "DE"),
        ("Deutschland", "DE"),
        ("Allemagne", "DE"),
        ("Alemania", "DE"),
        ("Германия", "DE"),
        ("德国", "DE"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("United States of America", "US"),
        ("United States", "US"),
        ("UK", "GB"),
        ("Great Britain", "GB"),
        ("England", "GB"),
        ("Holland", "NL"),
        ("The Netherlands", "NL"),
        ("Nederland", "NL"),
        ("Schweiz", "CH"),
        ("Suisse", "CH"),
        ("España", "ES"),
        ("Espana", "ES"),
        ("Österreich", "AT"),
        ("Côte d'Ivoire", "CI"),
        ("Ivory Coast", "CI"),
        ("Korea", "KR"),
        ("Czech Republic", "CZ"),
        ("Türkiye", "TR"),
        ("Turkey", "TR"),
        ("Russian Federation", "RU"),
        ("日本", "JP"),
        ("Brasil", "BR"),
        ("EL", "GR"),
        ("Narnia", None),
        ("XX", None),
        ("", None),
    ],
)
def test_standardize_country(raw: str, expected: str | None) -> None:
    assert standardize_country(raw) == expected


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("California", "US", "CA"),
        ("Calif.", "US", "CA"),
        ("ca", "US", "CA"),
        ("New York", "USA", "NY"),
        ("District of Columbia", "US", "DC"),
        ("Ontario", "CA", "ON"),
        ("Québec", "Canada", "QC"),
        ("Quebec", "CA", "QC"),
        ("New South Wales", "AU", "NSW"),
        ("Bayern", "DE", "BY"),
        ("Bavaria", "DE", "BY"),
        ("Nordrhein-Westfalen", "DE", "NW"),
        ("Ontario", None, "ON"),
        ("NT", None, "NT"),
        ("Île-de-France", "FR", "ile de france"),
        ("Greater London", "GB", "greater london"),
        ("", "US", None),
    ],
)
def test_standardize_region(raw: str, country: str | None, expected: str | None) -> None:
    assert standardize_region(raw, country) == expected


def test_a_postcode_never_reads_as_a_country_prefix_the_second_time() -> None:
    once = standardize_postcode(":A-0", None)
    assert once is None or standardize_postcode(once, None) == once
