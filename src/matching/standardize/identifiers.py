"""Tax identifiers (EU VAT numbers, US EIN, others) and national identity numbers."""

from __future__ import annotations

import re
from functools import lru_cache

from matching.standardize._text import CACHE_SIZE, to_text, transliterate
from matching.standardize.countries import standardize_country

# Labels written in front of a number ("VAT No.: DE123456789", "USt-IdNr. ..."); only removed
# when a separator or blank follows, so a standardized value (none) is never shortened.
_LABELS = (
    *("vat", "tva", "iva", "btw", "mwst", "moms", "alv", "dph", "afm", "nip", "uid", "nif"),
    *("cif", "nie", "nipc", "ein", "fein", "tin", "ssn", "itin", "abn", "gst", "gstin", "hst"),
    *("bn", "rfc", "cnpj", "cpf", "siren", "siret", "kvk", "pan", "tax", "utr", "kbo", "orgnr"),
    r"vat\s*reg(?:istration)?",
    r"ust",
    r"ust-?id",
    r"ust-?idnr",
    r"tax\s*id",
    r"steuer-?nr",
    r"st-?nr",
    r"org\.?\s*nr",
    r"p\.?\s*iva",
    r"partita\s+iva",
    r"codice\s+fiscale",
)
# Longest first, so that "USt-IdNr." is one label and not "USt" followed by a dash.
_LABEL = re.compile(
    r"^\s*(?:"
    + "|".join(sorted(_LABELS, key=len, reverse=True))
    + r")(?:\.?\s*(?:no|nr|number|id|num|#|reg))?\.?(?:\s*[:#.\-]\s*|\s+)",
    re.IGNORECASE,
)
_SEPARATORS = re.compile(r"[\s.\-/,_:]+")
_ALNUM = re.compile(r"^[A-Z0-9]+$")
_PLACEHOLDERS = frozenset({"NA", "NONE", "NULL", "UNKNOWN", "TBD", "TBA", "NIL", "XXX", "N"})

# VAT number bodies by prefix (EU member states, Northern Ireland, and the UK, Swiss and
# Norwegian numbers written the same way).
_VAT_BODY: dict[str, re.Pattern[str]] = {
    code: re.compile(rf"^(?:{pattern})$")
    for code, pattern in {
        "AT": r"U\d{8}",
        "BE": r"[01]\d{9}",
        "BG": r"\d{9,10}",
        "CY": r"\d{8}[A-Z]",
        "CZ": r"\d{8,10}",
        "DE": r"\d{9}",
        "DK": r"\d{8}",
        "EE": r"\d{9}",
        "EL": r"\d{9}",
        "ES": r"[A-Z0-9]\d{7}[A-Z0-9]",
        "FI": r"\d{8}",
        "FR": r"[A-HJ-NP-Z0-9]{2}\d{9}",
        "HR": r"\d{11}",
        "HU": r"\d{8}",
        "IE": r"\d{7}[A-W][A-I]?|\d[A-Z+*]\d{5}[A-W]",
        "IT": r"\d{11}",
        "LT": r"\d{9}|\d{12}",
        "LU": r"\d{8}",
        "LV": r"\d{11}",
        "MT": r"\d{8}",
        "NL": r"\d{9}B\d{2}",
        "PL": r"\d{10}",
        "PT": r"\d{9}",
        "RO": r"\d{2,10}",
        "SE": r"\d{10}01",
        "SI": r"\d{8}",
        "SK": r"\d{10}",
        "XI": r"\d{9}|\d{12}|GD\d{3}|HA\d{3}",
        "GB": r"\d{9}|\d{12}|GD\d{3}|HA\d{3}",
        "CHE": r"\d{9}",
        "NO": r"\d{9}",
    }.items()
}
# Country (ISO alpha-2) -> VAT prefix where they differ or the number is written another way.
_VAT_PREFIX_OF_COUNTRY = {"GR": "EL", "CH": "CHE", "LI": "CHE"}
# Words written after a number: Swiss MWST/TVA/IVA, Norwegian MVA.
_VAT_TRAILER = re.compile(r"(?:MWST|TVA|IVA|MVA)$")


def _compact(text: str) -> str:
    return _SEPARATORS.sub("", transliterate(text).upper())


def _vat(compact: str, country: str | None) -> str | None:
    """``compact`` as a VAT number with its prefix, when it is one; else None."""
    for prefix in ("CHE", compact[:2]):
        body_pattern = _VAT_BODY.get(prefix)
        if body_pattern is None or not compact.startswith(prefix):
            continue
        body = compact[len(prefix) :]
        if prefix in ("CHE", "NO"):
            body = _VAT_TRAILER.sub("", body)
        if body_pattern.match(body):
            return prefix + body
    if compact[:2] == "GR" and _VAT_BODY["EL"].match(compact[2:]):
        return "EL" + compact[2:]
    if country is None:
        return None
    prefix = _VAT_PREFIX_OF_COUNTRY.get(country, country)
    body_pattern = _VAT_BODY.get(prefix)
    if body_pattern is None:
        return None
    body = _VAT_TRAILER.sub("", compact) if prefix in ("CHE", "NO") else compact
    if prefix == "BE" and re.fullmatch(r"\d{9}", body):
        body = "0" + body  # Belgian numbers before 2007 had nine digits
    return prefix + body if body_pattern.match(body) else None


def _is_placeholder(compact: str) -> bool:
    if compact in _PLACEHOLDERS or len(compact) < 4:
        return True
    digits = "".join(char for char in compact if char.isdigit())
    return bool(digits) and len(set(digits)) == 1 and len(digits) == len(compact)


@lru_cache(maxsize=CACHE_SIZE)
def _standardize_tax_id(raw: str, country: str | None) -> str | None:
    compact = _compact(_LABEL.sub("", raw, count=1))
    if not compact or not _ALNUM.match(compact) or _is_placeholder(compact):
        return None
    vat = _vat(compact, country)
    if vat is not None:
        return vat
    if country == "US" and compact.isdigit() and len(compact) == 9:
        return compact  # EIN 12-3456789 (or an SSN/ITIN used as a tax id)
    return compact


def standardize_tax_id(text: object, country: str | None = None) -> str | None:
    """A tax identifier as a comparison key, or None when there is none.

    Labels ("VAT No.:", "USt-IdNr.", "EIN") and spaces, dots, dashes and slashes are removed
    and letters upper-cased. A VAT number keeps or gains its country prefix when its body has
    that country's format ("DE 123 456 789" and, for a German record, "123456789" ->
    "DE123456789"; Greek GR -> EL; Swiss "CHE-123.456.789 MWST" -> "CHE123456789"). A US EIN
    "12-3456789" -> "123456789". Placeholders (N/A, 000000000) give None. ``country`` is
    anything standardize_country accepts.
    """
    raw = to_text(text)
    if len(raw) > 64:
        return None
    return _standardize_tax_id(raw, standardize_country(country))


@lru_cache(maxsize=CACHE_SIZE)
def _standardize_national_id(raw: str) -> str | None:
    compact = _compact(_LABEL.sub("", raw, count=1))
    if not compact or not _ALNUM.match(compact) or _is_placeholder(compact):
        return None
    if compact.isdigit() and compact in ("123456789", "987654321", "1234567890"):
        return None
    return compact


def standardize_national_id(text: object) -> str | None:
    """A national identity number (SSN, NINO, DNI, ...) as a comparison key, or None.

    Separators removed and letters upper-cased, so an SSN "123-45-6789" becomes its nine
    digits; letters that belong to a number (Spanish DNI "12345678Z", UK NINO) are kept.
    Placeholders (000-00-0000, 123456789, N/A) give None.
    """
    raw = to_text(text)
    if len(raw) > 64:
        return None
    return _standardize_national_id(raw)
