"""E-mail addresses: case, display names, plus-addressing and provider-specific dots; role
accounts."""

from __future__ import annotations

import re
from functools import lru_cache

from matching.standardize._text import CACHE_SIZE, clip, to_text
from matching.standardize.domains import host_of

_ANGLE = re.compile(r"<([^<>]*)>")
_MAILTO = re.compile(r"^mailto:", re.IGNORECASE)
# Dot-separated atoms of RFC 5322, letters of any script allowed (RFC 6531); no quoted forms.
_ATOM = r"[\w!#$%&'*+/=?^`{|}~-]+"
_LOCAL = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")

# Providers that ignore dots in the local part, and the domain they are known by.
_DOTLESS_PROVIDERS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}
_MAX_LOCAL = 64


@lru_cache(maxsize=CACHE_SIZE)
def _standardize_email(raw: str) -> str | None:
    text = raw.strip()
    angle = _ANGLE.search(text)
    if angle is not None:  # "Jane Doe <jane@example.com>"
        text = angle.group(1)
    text = _MAILTO.sub("", text.strip()).split("?", 1)[0].strip().rstrip(".,;")
    if text.count("@") != 1:
        return None
    local, domain_part = text.split("@")
    local = local.lower()
    if not local or any(char.isspace() for char in domain_part):
        return None
    host = host_of("@" + domain_part)
    if host is None or not _TLD.match(host.rsplit(".", 1)[1]):
        return None
    local = local.split("+", 1)[0]
    host = _DOTLESS_PROVIDERS.get(host, host)
    if host == "gmail.com":
        local = local.replace(".", "")
    if not local or len(local) > _MAX_LOCAL or not _LOCAL.match(local):
        return None
    return f"{local}@{host}"


def standardize_email(text: object) -> str | None:
    """An e-mail address as a comparison key, or None when it is not an address.

    Lower case, surrounding blanks, display name and "mailto:" removed, plus-addressing
    removed (jane+news@x.com -> jane@x.com), dots removed where the provider ignores them and
    googlemail.com written gmail.com (J.Doe@googlemail.com -> jdoe@gmail.com), an
    internationalised domain in IDNA.
    """
    return _standardize_email(clip(to_text(text)))


def email_local_part(email: object) -> str | None:
    """The local part of a standardized e-mail address (before "@"), or None."""
    standardized = standardize_email(email)
    return standardized.split("@", 1)[0] if standardized is not None else None


# Local parts of shared mailboxes that stand for a function, not a person (role accounts), in
# the languages of the countries mdh knows best.
_ROLE_LOCALS = frozenset(
    {
        # English
        "accounting", "accounts", "accountspayable", "admin", "administration", "ap", "ar",
        "billing", "contact", "enquiries", "finance", "hello", "help", "hr", "info",
        "inquiries", "invoice", "invoices", "mail", "office", "orders", "payables", "payments",
        "procurement", "purchasing", "receivables", "sales", "service", "support", "team",
        # German
        "buchhaltung", "einkauf", "finanzen", "kontakt", "rechnung", "rechnungen",
        "rechnungswesen", "verwaltung", "vertrieb", "zentrale",
        # French
        "achats", "compta", "comptabilite", "facturation", "factures",
        # Dutch
        "administratie", "boekhouding", "crediteuren", "facturen", "inkoop",
        # Spanish
        "administracion", "compras", "contabilidad", "facturacion", "facturas",
        # Italian
        "acquisti", "amministrazione", "contabilita", "fatturazione", "fatture",
        # Japanese (romanised)
        "keiri", "soumu",
    }
)  # fmt: skip
_ROLE_SEPARATORS = re.compile(r"[._-]+")


def is_role_email(email: str) -> bool:
    """True when a standardized address is a role account (``invoices@``, ``buchhaltung@``):
    a shared mailbox that says which organisation, not which person."""
    local = email.split("@", 1)[0]
    return _ROLE_SEPARATORS.sub("", local) in _ROLE_LOCALS
