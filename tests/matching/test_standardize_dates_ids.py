"""Dates, tax identifiers and national identity numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from matching.standardize import standardize_date, standardize_national_id, standardize_tax_id


@pytest.mark.parametrize(
    ("value", "order", "expected"),
    [
        ("1980-02-03", "DMY", "1980-02-03"),
        ("1980-2-3", "DMY", "1980-02-03"),
        ("1980/02/03", "MDY", "1980-02-03"),
        ("1980-02-03T10:22:00+02:00", "DMY", "1980-02-03"),
        ("1980-02-03 00:00:00", "DMY", "1980-02-03"),
        ("19800203", "DMY", "1980-02-03"),
        ("03/02/1980", "DMY", "1980-02-03"),
        ("03.02.1980", "DMY", "1980-02-03"),
        ("3-2-1980", "DMY", "1980-02-03"),
        ("03/02/1980", "MDY", "1980-03-02"),
        ("12/31/1999", "MDY", "1999-12-31"),
        ("12/31/1999", "mdy", "1999-12-31"),
        ("31/12/1999", "MDY", "1999-12-31"),  # MDY cannot be meant: month 31
        ("03.02.80", "DMY", "1980-02-03"),
        ("03/02/25", "DMY", "2025-02-03"),
        ("80/02/03", "YMD", "1980-02-03"),
        ("03021980", "DMY", "1980-02-03"),
        ("3 Feb 1980", "DMY", "1980-02-03"),
        ("3 February 1980", "MDY", "1980-02-03"),
        ("February 3, 1980", "DMY", "1980-02-03"),
        ("Feb 3rd 1980", "DMY", "1980-02-03"),
        ("Sunday, 3 February 1980", "DMY", "1980-02-03"),
        ("03-FEB-1980", "DMY", "1980-02-03"),
        ("03-FEB-80", "DMY", "1980-02-03"),
        ("1980 Feb 3", "DMY", "1980-02-03"),
        ("3. März 1980", "DMY", "1980-03-03"),
        ("3. Maerz 1980", "DMY", "1980-03-03"),
        ("1er février 1980", "DMY", "1980-02-01"),
        ("3 de febrero de 1980", "DMY", "1980-02-03"),
        ("3 febbraio 1980", "DMY", "1980-02-03"),
        ("3 mei 1980", "DMY", "1980-05-03"),
        ("2024-02-29", "DMY", "2024-02-29"),
        ("2023-02-29", "DMY", None),
        ("31/02/1980", "DMY", None),
        ("1980-13-01", "DMY", None),
        ("0000-00-00", "DMY", None),
        ("00/00/0000", "DMY", None),
        ("32 Jan 1980", "DMY", None),
        ("tomorrow", "DMY", None),
        ("", "DMY", None),
        ("unknown", "DMY", None),
        ("1980-02-03", "nonsense", "1980-02-03"),
    ],
)
def test_standardize_date_text(value: str, order: str, expected: str | None) -> None:
    assert standardize_date(value, order) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (date(1980, 2, 3), "1980-02-03"),
        (datetime(1980, 2, 3, 23, 59), "1980-02-03"),
        (datetime(1980, 2, 3, 23, 59, tzinfo=UTC), "1980-02-03"),
        (19800203, "1980-02-03"),
        (29254, "1980-02-03"),  # Excel serial day
        (29254.75, "1980-02-03"),
        (Decimal(29254), "1980-02-03"),
        (0, None),
        (-5, None),
        (float("nan"), None),
        (float("inf"), None),
        (True, None),
        (None, None),
        (b"1980-02-03", "1980-02-03"),
    ],
)
def test_standardize_date_objects(value: object, expected: str | None) -> None:
    assert standardize_date(value) == expected


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("DE 123 456 789", None, "DE123456789"),
        ("DE123456789", "FR", "DE123456789"),
        ("123456789", "DE", "DE123456789"),
        ("123 456 789", "Germany", "DE123456789"),
        ("USt-IdNr.: DE123456789", None, "DE123456789"),
        ("VAT: 123456789", "DE", "DE123456789"),
        ("VAT Reg. No. GB 123 4567 89", None, "GB123456789"),
        ("FR 40 303 265 045", None, "FR40303265045"),
        ("40303265045", "FR", "FR40303265045"),
        ("ATU12345678", None, "ATU12345678"),
        ("U12345678", "AT", "ATU12345678"),
        ("NL123456789B01", None, "NL123456789B01"),
        ("123456789B01", "NL", "NL123456789B01"),
        ("B12345678", "ES", "ESB12345678"),
        ("P.IVA 01234567890", "IT", "IT01234567890"),
        ("0123.456.789", "BE", "BE0123456789"),
        ("123456789", "BE", "BE0123456789"),
        ("GR123456789", None, "EL123456789"),
        ("123456789", "GR", "EL123456789"),
        ("CHE-123.456.789 MWST", None, "CHE123456789"),
        ("123.456.789", "CH", "CHE123456789"),
        ("NO 123 456 789 MVA", None, "NO123456789"),
        ("556677889901", "SE", "SE556677889901"),
        ("12-3456789", "US", "123456789"),
        ("EIN: 12-3456789", "US", "123456789"),
        ("Tax ID 12-3456789", "USA", "123456789"),
        ("12/345/67890", "DE", "1234567890"),  # a German Steuernummer is not a VAT number
        ("ABCDE1234F", "IN", "ABCDE1234F"),
        ("N/A", None, None),
        ("none", "US", None),
        ("000000000", "US", None),
        ("-", None, None),
        ("", None, None),
    ],
)
def test_standardize_tax_id(raw: str, country: str | None, expected: str | None) -> None:
    assert standardize_tax_id(raw, country) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("123-45-6788", "123456788"),
        ("123 45 6788", "123456788"),
        ("SSN: 123-45-6788", "123456788"),
        ("AB 12 34 56 C", "AB123456C"),
        ("12345678-z", "12345678Z"),
        ("000-00-0000", None),
        ("123-45-6789", None),
        ("999999999", None),
        ("n/a", None),
        ("", None),
    ],
)
def test_standardize_national_id(raw: str, expected: str | None) -> None:
    assert standardize_national_id(raw) == expected


def test_missing_value_markers_are_not_dates() -> None:
    pd = pytest.importorskip("pandas")
    assert standardize_date(pd.NaT) is None
    assert standardize_date(pd.NA) is None
    assert standardize_date(pd.Timestamp("1980-02-03 10:00")) == "1980-02-03"
