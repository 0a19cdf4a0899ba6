"""Registrable domains of websites and e-mail addresses, and free-mail providers.

The public-suffix lookup uses the snapshot bundled with tldextract and never the network:
the extractor is built with no suffix-list URLs and no cache directory, lazily, once.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import TYPE_CHECKING

from matching.standardize._data import read_table
from matching.standardize._text import CACHE_SIZE, clip, to_text

if TYPE_CHECKING:
    import tldextract

_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*://", re.IGNORECASE)
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_HOST_END = re.compile(r"[/?#\\\s<>]")


@cache
def _extractor() -> tldextract.TLDExtract:
    # Imported here: tldextract pulls in requests, which the rest of matching never needs.
    import tldextract

    # Private suffixes (blogspot.com, github.io) count: two companies hosted there are two
    # domains, not one.
    return tldextract.TLDExtract(
        cache_dir=None,
        suffix_list_urls=(),
        fallback_to_snapshot=True,
        include_psl_private_domains=True,
    )


def _to_ascii_host(host: str) -> str | None:
    """``host`` lower-cased and, when it is an internationalised name, in IDNA (punycode)."""
    host = host.strip().strip(".").lower()
    if not host:
        return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except (UnicodeError, ValueError):
            return None
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return None
    return host


def host_of(text: str) -> str | None:
    """The host name of a URL, bare host or e-mail address, normalised; None when there is none."""
    text = text.strip()
    if not text:
        return None
    if "@" in text and not _SCHEME.match(text):
        text = text.rsplit("@", 1)[1]
    else:
        text = _SCHEME.sub("", text, count=1)
        text = _HOST_END.split(text, maxsplit=1)[0]
        text = text.rsplit("@", 1)[-1]  # user:password@host
    text = _HOST_END.split(text, maxsplit=1)[0]
    if text.startswith("["):  # IPv6 literal
        return None
    text = text.split(":", 1)[0]  # port
    if _IPV4.match(text):
        return None
    return _to_ascii_host(text)


def registrable_domain(host: str) -> str | None:
    """The registrable domain of a normalised host name (as ``host_of`` returns), or None."""
    return _registrable_domain(host)


@lru_cache(maxsize=CACHE_SIZE)
def _registrable_domain(host: str) -> str | None:
    parts = _extractor().extract_str(host)
    if not parts.domain or not parts.suffix:
        return None
    return f"{parts.domain}.{parts.suffix}"


@lru_cache(maxsize=CACHE_SIZE)
def _standardize_domain(raw: str) -> str | None:
    host = host_of(raw)
    return _registrable_domain(host) if host is not None else None


def standardize_domain(text: object) -> str | None:
    """The registrable domain of a website or e-mail address, or None.

    Scheme, credentials, "www." and other subdomains, port, path, query and fragment are
    removed; internationalised names are written in IDNA: "https://www.Shop.Example.co.uk:8443/x"
    -> "example.co.uk", "jane@mail.acme.de" -> "acme.de", "müller.de" -> "xn--mller-kva.de".
    IP addresses and names without a public suffix give None.
    """
    return _standardize_domain(clip(to_text(text)))


def _load_free_mail() -> tuple[frozenset[str], frozenset[str]]:
    domains: set[str] = set()
    brands: set[str] = set()
    for row in read_table("free_mail_domains.csv"):
        (brands if row["kind"] == "brand" else domains).add(row["domain"].lower())
    return frozenset(domains), frozenset(brands)


_FREE_MAIL_DOMAINS, _FREE_MAIL_BRANDS = _load_free_mail()


def is_free_mail_domain(domain: object) -> bool:
    """Whether a domain (or an address at it) belongs to a free or consumer mail provider.

    gmail.com, yahoo.co.uk, hotmail.fr, gmx.at, web.de, mail.ru, qq.com, ... are; a company's
    own domain is not. Accepts anything standardize_domain accepts.
    """
    registrable = standardize_domain(domain)
    return registrable is not None and is_free_mail_registrable(registrable)


def is_free_mail_registrable(registrable: str) -> bool:
    """is_free_mail_domain for a domain that is already registrable (as standardize_domain gives)."""
    if registrable in _FREE_MAIL_DOMAINS:
        return True
    return registrable.split(".", 1)[0] in _FREE_MAIL_BRANDS
