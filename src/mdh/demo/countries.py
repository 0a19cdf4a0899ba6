"""Country conventions of the demo world: names, currencies, telephone plans, postcodes, tax ids.

Tax ids carry valid check digits (German, French, Dutch, Spanish, Italian and British VAT
numbers, Canadian business numbers, Australian ABNs, Japanese corporate numbers), so a matcher
that validates them sees the same thing it would see in real data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Country:
    code: str
    """ISO 3166-1 alpha-2, as the ERP's LAND1 holds it."""
    name: str
    """The English short name, as the billing system stores it."""
    aliases: tuple[str, ...]
    """What people type into a free-text country field (the CRM's BillingCountry)."""
    languages: tuple[tuple[str, float], ...]
    """Languages of given names and company words, with their shares."""
    currency: str
    calling_code: str
    trunk: str
    """The national trunk prefix written before the area code ("" where there is none)."""
    landline_digits: tuple[int, ...]
    """Lengths of the national significant number (area code + subscriber) of landlines."""
    mobile_prefixes: tuple[str, ...]
    mobile_digits: int
    tld: str
    sap_language: str
    """SAP's one-letter language key (SPRAS)."""
    postcode_letters: str
    weight: float
    """Share of the demo's customers."""


_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

COUNTRIES: dict[str, Country] = {
    country.code: country
    for country in (
        Country(
            "US",
            "United States",
            ("United States", "USA", "US", "U.S.A.", "United States of America", "U.S."),
            (("en", 1.0),),
            "USD",
            "1",
            "",
            (10,),
            (),
            10,
            "com",
            "E",
            _UPPER,
            0.22,
        ),
        Country(
            "GB",
            "United Kingdom",
            ("United Kingdom", "UK", "GB", "Great Britain", "England", "U.K."),
            (("en", 1.0),),
            "GBP",
            "44",
            "0",
            (10,),
            ("74", "75", "77", "78", "79"),
            10,
            "co.uk",
            "E",
            "ABDEFGHJLNPQRSTUWXYZ",
            0.12,
        ),
        Country(
            "DE",
            "Germany",
            ("Germany", "Deutschland", "DE", "GER", "Federal Republic of Germany"),
            (("de", 1.0),),
            "EUR",
            "49",
            "0",
            (10, 11),
            ("151", "152", "157", "160", "162", "170", "171", "172", "175", "176", "177", "179"),
            11,
            "de",
            "D",
            _UPPER,
            0.14,
        ),
        Country(
            "FR",
            "France",
            ("France", "FR", "FRA", "République française"),
            (("fr", 1.0),),
            "EUR",
            "33",
            "0",
            (9,),
            ("6", "7"),
            9,
            "fr",
            "F",
            _UPPER,
            0.10,
        ),
        Country(
            "NL",
            "Netherlands",
            ("Netherlands", "The Netherlands", "Nederland", "Holland", "NL"),
            (("nl", 1.0),),
            "EUR",
            "31",
            "0",
            (9,),
            ("6",),
            9,
            "nl",
            "N",
            "ABCDEGHJKLMNPRSTVWXZ",
            0.07,
        ),
        Country(
            "ES",
            "Spain",
            ("Spain", "España", "Espana", "ES", "ESP"),
            (("es", 1.0),),
            "EUR",
            "34",
            "",
            (9,),
            ("6", "7"),
            9,
            "es",
            "S",
            _UPPER,
            0.07,
        ),
        Country(
            "IT",
            "Italy",
            ("Italy", "Italia", "IT", "ITA"),
            (("it", 1.0),),
            "EUR",
            "39",
            "",
            (10,),
            ("320", "328", "333", "338", "340", "347", "348", "349", "366", "380", "388", "392"),
            10,
            "it",
            "I",
            _UPPER,
            0.07,
        ),
        Country(
            "CA",
            "Canada",
            ("Canada", "CA", "CAN", "Canada (CA)"),
            (("en", 0.75), ("fr", 0.25)),
            "CAD",
            "1",
            "",
            (10,),
            (),
            10,
            "ca",
            "E",
            "ABCEGHJKLMNPRSTVWXYZ",
            0.06,
        ),
        Country(
            "AU",
            "Australia",
            ("Australia", "AU", "AUS", "Commonwealth of Australia"),
            (("en", 1.0),),
            "AUD",
            "61",
            "0",
            (9,),
            ("4",),
            9,
            "com.au",
            "E",
            _UPPER,
            0.06,
        ),
        Country(
            "JP",
            "Japan",
            ("Japan", "JP", "JPN", "日本", "Nippon"),
            (("ja", 1.0),),
            "JPY",
            "81",
            "0",
            (9,),
            ("90", "80", "70"),
            10,
            "co.jp",
            "J",
            _UPPER,
            0.09,
        ),
    )
}

VAT_COUNTRIES = frozenset({"DE", "FR", "NL", "ES", "IT", "GB"})
"""Countries whose companies carry a VAT number (the ERP's STCEG); others a national tax number."""


def fill_pattern(pattern: str, letters: str, rng: random.Random) -> str:
    """A postcode from a pattern: "#" becomes a digit, "@" a letter from ``letters``."""
    out = []
    for char in pattern:
        if char == "#":
            out.append("0123456789"[int(rng.random() * 10)])
        elif char == "@":
            out.append(letters[int(rng.random() * len(letters))])
        else:
            out.append(char)
    return "".join(out)


# ---- tax ids -----------------------------------------------------------------------------


def _digits(rng: random.Random, count: int, first_nonzero: bool = True) -> str:
    low = 10 ** (count - 1) if first_nonzero else 0
    return f"{low + int(rng.random() * (10**count - low)):0{count}d}"


def _luhn_check_digit(payload: str) -> str:
    total = 0
    for position, char in enumerate(reversed(payload)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def _de_vat(rng: random.Random) -> str:
    body = _digits(rng, 8)
    product = 10
    for char in body:
        total = (int(char) + product) % 10 or 10
        product = (2 * total) % 11
    check = (11 - product) % 10
    return f"DE{body}{check}"


def _fr_vat(rng: random.Random) -> str:
    payload = _digits(rng, 8)
    siren = payload + _luhn_check_digit(payload)
    key = (12 + 3 * (int(siren) % 97)) % 97
    return f"FR{key:02d}{siren}"


def _nl_vat(rng: random.Random) -> str:
    while True:
        body = _digits(rng, 8)
        total = sum(int(char) * weight for char, weight in zip(body, range(9, 1, -1), strict=True))
        check = total % 11
        if check < 10:
            return f"NL{body}{check}B01"


def _es_vat(rng: random.Random) -> str:
    letter = rng.choice("AB")
    body = _digits(rng, 7, first_nonzero=False)
    total = 0
    for position, char in enumerate(body):
        digit = int(char)
        if position % 2 == 0:
            doubled = digit * 2
            total += doubled // 10 + doubled % 10
        else:
            total += digit
    return f"ES{letter}{body}{(10 - total % 10) % 10}"


def _it_vat(rng: random.Random) -> str:
    payload = _digits(rng, 7, first_nonzero=False) + f"{1 + int(rng.random() * 100):03d}"
    total = 0
    for position, char in enumerate(payload):
        digit = int(char)
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return f"IT{payload}{(10 - total % 10) % 10}"


def _gb_vat(rng: random.Random) -> str:
    body = _digits(rng, 7)
    total = sum(int(char) * weight for char, weight in zip(body, range(8, 1, -1), strict=True))
    return f"GB{body}{(-total) % 97:02d}"


def _us_ein(rng: random.Random) -> str:
    prefix = rng.choice(("10", "12", "20", "26", "27", "33", "35", "45", "46", "47", "52", "81"))
    return f"{prefix}-{_digits(rng, 7, first_nonzero=False)}"


def _ca_bn(rng: random.Random) -> str:
    payload = _digits(rng, 8)
    return f"{payload}{_luhn_check_digit(payload)}RT0001"


def _au_abn(rng: random.Random) -> str:
    # Weighted sum of the (first digit - 1) and all digits must divide by 89; solve for the
    # two leading digits given a random tail.
    weights = (3, 5, 7, 9, 11, 13, 15, 17, 19)
    while True:
        tail = _digits(rng, 9, first_nonzero=False)
        rest = sum(int(char) * weight for char, weight in zip(tail, weights, strict=True))
        for first in range(1, 10):
            second = -(rest + (first - 1) * 10) % 89
            if second < 10:
                return f"{first}{second}{tail}"


def _jp_corporate_number(rng: random.Random) -> str:
    base = _digits(rng, 12)
    total = sum(
        int(char) * (1 if position % 2 == 0 else 2) for position, char in enumerate(reversed(base))
    )
    return f"T{9 - total % 9}{base}"


_TAX_IDS = {
    "DE": _de_vat,
    "FR": _fr_vat,
    "NL": _nl_vat,
    "ES": _es_vat,
    "IT": _it_vat,
    "GB": _gb_vat,
    "US": _us_ein,
    "CA": _ca_bn,
    "AU": _au_abn,
    "JP": _jp_corporate_number,
}


def make_tax_id(country: str, rng: random.Random) -> str:
    """A company's tax id in its registered spelling (VAT number with the country prefix in the
    EU and GB; EIN, business number, ABN or invoice registration number elsewhere)."""
    return _TAX_IDS[country](rng)
