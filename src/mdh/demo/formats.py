"""How values are written: telephone numbers, postcodes and tax ids in the styles systems use.

A value has one true form (``Phone``: country, area code, subscriber number); each system
writes it its own way (the CRM "(415) 555-0134", billing "+14155550134", the ERP "4155550134"
with the country implied by LAND1). Functions here are pure string formatting.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mdh.demo.countries import COUNTRIES, Country


@dataclass(frozen=True, slots=True)
class Phone:
    country: str
    area: str
    """The area code (or mobile prefix) without the trunk prefix; Italy keeps its leading 0."""
    subscriber: str
    mobile: bool

    @property
    def national_number(self) -> str:
        return self.area + self.subscriber

    def e164(self) -> str:
        return f"+{COUNTRIES[self.country].calling_code}{self.area}{self.subscriber}"


PHONE_STYLES = (
    "e164",
    "international",
    "international_trunk",
    "idd",
    "national",
    "national_compact",
    "national_dash",
    "national_slash",
    "national_paren",
)


def _group(digits: str, sep: str = " ") -> str:
    size = len(digits)
    if size == 8:
        return f"{digits[:4]}{sep}{digits[4:]}"
    if size == 7:
        return f"{digits[:3]}{sep}{digits[3:]}"
    if size == 6:
        return f"{digits[:3]}{sep}{digits[3:]}"
    if size == 9:
        return f"{digits[:3]}{sep}{digits[3:6]}{sep}{digits[6:]}"
    return digits


def _pairs(digits: str) -> str:
    return " ".join(digits[i : i + 2] for i in range(0, len(digits), 2))


def _display_split(phone: Phone) -> tuple[str, str]:
    """The (area, subscriber) split people write: mobiles group by the operator prefix."""
    if phone.mobile and phone.country == "GB":
        number = phone.national_number
        return number[:4], number[4:]
    if phone.mobile and phone.country == "AU":
        number = phone.national_number
        return number[:3], number[3:]
    return phone.area, phone.subscriber


def format_phone(phone: Phone, style: str) -> str:
    """``phone`` written in ``style`` (one of ``PHONE_STYLES``), in the country's conventions."""
    country = COUNTRIES[phone.country]
    code, trunk = country.calling_code, country.trunk
    area, sub = _display_split(phone)
    nanp = code == "1"
    if style == "e164":
        return phone.e164()
    if style in ("international", "international_trunk", "idd"):
        lead = f"00{code}" if style == "idd" else f"+{code}"
        if style == "international_trunk" and trunk:
            return f"{lead} ({trunk}){area} {_group(sub)}"
        if nanp:
            return f"{lead} {area} {sub[:3]} {sub[3:]}"
        if phone.country == "FR":
            return f"{lead} {area} {_pairs(sub)}"
        if phone.country == "ES":
            return f"{lead} {_group(area + sub)}"
        if phone.country == "JP":
            return f"{lead} {area}-{_group(sub, '-')}"
        return f"{lead} {area} {_group(sub)}"
    if nanp:
        if style == "national_compact":
            return area + sub
        if style == "national_paren":
            return f"({area}) {sub[:3]}-{sub[3:]}"
        if style == "national_slash":
            return f"{area}.{sub[:3]}.{sub[3:]}"
        return f"{area}-{sub[:3]}-{sub[3:]}"
    national = trunk + area
    if style == "national_compact":
        return national + sub
    if phone.country == "ES":
        # Spain writes the nine digits in groups, with no area code of its own.
        return _group(area + sub, "-" if style == "national_dash" else " ")
    if style == "national_dash":
        return f"{national}-{_group(sub, '-')}" if phone.country == "JP" else f"{national}-{sub}"
    if style == "national_slash":
        return f"{national}/{sub}"
    if style == "national_paren":
        return f"({national}) {_group(sub)}"
    if phone.country == "FR":
        return _pairs(national + sub)
    if phone.country == "ES":
        return _group(national + sub)
    if phone.country == "JP":
        return f"{national}-{_group(sub, '-')}"
    return f"{national} {_group(sub)}"


_FULL_WIDTH = str.maketrans("0123456789-+()", "０１２３４５６７８９－＋（）")


def to_full_width(text: str) -> str:
    """Digits and punctuation as Japanese input methods often leave them."""
    return text.translate(_FULL_WIDTH)


def make_phone(country: Country, area: str, rng: random.Random, mobile: bool) -> Phone:
    """A phone number: a mobile number, or a landline in the city with area code ``area``."""
    if mobile and country.mobile_prefixes:
        prefix = country.mobile_prefixes[int(rng.random() * len(country.mobile_prefixes))]
        length = country.mobile_digits - len(prefix)
        # The first digit after the prefix is not 0.
        low = 10 ** (length - 1)
        number = low + int(rng.random() * (9 * low))
        return Phone(country.code, prefix, str(number), True)
    total = country.landline_digits[int(rng.random() * len(country.landline_digits))]
    length = max(total - len(area), 4)
    # Subscriber numbers do not start with 0 or 1 in most plans (NANP forbids it).
    low = 2 * 10 ** (length - 1)
    number = low + int(rng.random() * (8 * 10 ** (length - 1)))
    return Phone(country.code, area, str(number), False)


# ---- postcodes ----------------------------------------------------------------------------


def compact_postcode(code: str) -> str:
    return code.replace(" ", "").replace("-", "")


def format_postcode(code: str, country: str, style: str, rng: random.Random) -> str:
    """A postcode written in ``style``: "canonical", "compact", "extended" (US ZIP+4, JP 〒),
    "lower" or "short" (a leading zero lost to a numeric column)."""
    if style == "compact" and country in ("GB", "NL", "CA", "JP"):
        return compact_postcode(code)
    if style == "extended":
        if country == "US":
            return f"{code}-{rng.randrange(1, 10000):04d}"
        if country == "JP":
            return f"〒{code}"
    if style == "lower" and country in ("GB", "NL", "CA"):
        return code.lower()
    if style == "short" and code.startswith("0") and code.isdigit():
        return code.lstrip("0")
    return code


# ---- tax ids ------------------------------------------------------------------------------


def format_tax_id(tax_id: str, country: str, style: str) -> str:
    """A tax id as written: "canonical", "spaced" (digits grouped), "bare" (no country prefix)
    or "lower"."""
    if style == "bare" and tax_id[:2].isalpha() and tax_id[:2] == country:
        return tax_id[2:]
    if style == "spaced":
        if country == "AU":
            return f"{tax_id[:2]} {tax_id[2:5]} {tax_id[5:8]} {tax_id[8:]}"
        if country in ("DE", "GB", "IT", "NL", "FR", "ES"):
            prefix, body = tax_id[:2], tax_id[2:]
            return f"{prefix} " + " ".join(body[i : i + 3] for i in range(0, len(body), 3))
        if country == "CA":
            return f"{tax_id[:9]} {tax_id[9:]}"
    if style == "lower":
        return tax_id.lower()
    return tax_id
