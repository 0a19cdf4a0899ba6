"""E-mail addresses, telephone numbers and domains."""

from __future__ import annotations

import socket

import pytest

from matching.standardize import (
    domains,
    email_local_part,
    is_free_mail_domain,
    is_role_email,
    standardize_domain,
    standardize_email,
    standardize_phone,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("jane.doe@example.com", "jane.doe@example.com"),
        ("  Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("jane.doe+newsletter@example.com", "jane.doe@example.com"),
        ("John.Doe+crm@gmail.com", "johndoe@gmail.com"),
        ("j.o.h.n.doe@googlemail.com", "johndoe@gmail.com"),
        ("JOHNDOE@GOOGLEMAIL.COM", "johndoe@gmail.com"),
        ("first.last@outlook.com", "first.last@outlook.com"),
        ("Jane Doe <jane@example.org>", "jane@example.org"),
        ("mailto:info@acme.de", "info@acme.de"),
        ("mailto:info@acme.de?subject=Hi", "info@acme.de"),
        ("info@mail.acme.co.uk", "info@mail.acme.co.uk"),
        ("o'connor@example.ie", "o'connor@example.ie"),
        ("user_name-1@sub-domain.example.com", "user_name-1@sub-domain.example.com"),
        ("info@müller.de", "info@xn--mller-kva.de"),
        ("jürgen@example.de", "jürgen@example.de"),
        ("jane@example.com.", "jane@example.com"),
        ("not an email", None),
        ("jane@", None),
        ("@example.com", None),
        ("jane@example", None),
        ("jane@@example.com", None),
        ("jane@localhost", None),
        ("jane@127.0.0.1", None),
        ("jane..doe@example.com", None),
        (".jane@example.com", None),
        ("jane doe@example.com", None),
        ("+tag@example.com", None),
        ("jane@exa mple.com", None),
        ("jane@example.c0m", None),
        ("", None),
        ("n/a", None),
    ],
)
def test_standardize_email(raw: str, expected: str | None) -> None:
    assert standardize_email(raw) == expected


def test_email_local_part() -> None:
    assert email_local_part("J.Doe+x@googlemail.com") == "jdoe"
    assert email_local_part("nonsense") is None


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1 (415) 555-2671", None, "+14155552671"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671 ext. 123", "US", "+14155552671"),
        ("1-415-555-2671", "US", "+14155552671"),
        ("+1 202 555 0123", "CA", "+12025550123"),
        ("030 1234567", "DE", "+49301234567"),
        ("+49 (0)30 1234567", None, "+49301234567"),
        ("0049 30 1234567", None, "+49301234567"),
        ("0049 30 1234567", "DE", "+49301234567"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("07700 900123", "GB", "+447700900123"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+33 6 12 34 56 78", "DE", "+33612345678"),
        ("02 9876 5432", "AU", "+61298765432"),
        ("090-1234-5678", "JP", "+819012345678"),
        ("+7 495 123-45-67", "ru", "+74951234567"),
        ("+86 138 0013 8000", None, "+8613800138000"),
        ("(11) 98765-4321", "BR", "+5511987654321"),
        ("030 1234567", None, None),  # no country code and no region
        ("555-1234", "US", None),  # local number without area code
        ("000-000-0000", "US", None),
        ("1234567890", "US", None),
        ("123", "US", None),
        ("n/a", "US", None),
        ("", "US", None),
        ("+999 123 456 789", None, None),
        ("call me maybe", "GB", None),
    ],
)
def test_standardize_phone(raw: str, region: str | None, expected: str | None) -> None:
    assert standardize_phone(raw, region) == expected


def test_standardize_phone_ignores_a_malformed_region() -> None:
    assert standardize_phone("+49 30 1234567", "Germany") == "+49301234567"
    assert standardize_phone("030 1234567", "Germany") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://www.acme.com/about?x=1#team", "acme.com"),
        ("http://ACME.com", "acme.com"),
        ("www.acme.com", "acme.com"),
        ("acme.com", "acme.com"),
        ("shop.eu.acme.com:8443/cart", "acme.com"),
        ("https://www.bbc.co.uk/news", "bbc.co.uk"),
        ("http://user:secret@intranet.acme.com.au/", "acme.com.au"),
        ("ftp://files.example.org", "example.org"),
        ("https://amazon.co.jp", "amazon.co.jp"),
        ("jane@mail.acme.de", "acme.de"),
        ("Jane <jane@acme.fr>", "acme.fr"),
        ("müller.de", "xn--mller-kva.de"),
        ("https://acme.blogspot.com", "acme.blogspot.com"),
        ("example.com.", "example.com"),
        ("acme", None),
        ("localhost", None),
        ("http://192.168.0.1/admin", None),
        ("http://[::1]/", None),
        ("co.uk", None),
        ("", None),
        ("not a url", None),
    ],
)
def test_standardize_domain(raw: str, expected: str | None) -> None:
    assert standardize_domain(raw) == expected


@pytest.mark.parametrize(
    ("domain", "free"),
    [
        ("gmail.com", True),
        ("googlemail.com", True),
        ("yahoo.com", True),
        ("yahoo.co.uk", True),
        ("hotmail.fr", True),
        ("outlook.com", True),
        ("live.de", True),
        ("gmx.de", True),
        ("gmx.at", True),
        ("web.de", True),
        ("t-online.de", True),
        ("mail.ru", True),
        ("qq.com", True),
        ("orange.fr", True),
        ("icloud.com", True),
        ("jane@gmail.com", True),
        ("https://mail.yahoo.co.jp", True),
        ("acme.com", False),
        ("mueller-soehne.de", False),
        ("mail.acme.de", False),
        ("", False),
        ("garbage", False),
    ],
)
def test_is_free_mail_domain(domain: str, free: bool) -> None:
    assert is_free_mail_domain(domain) is free


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the public-suffix lookup tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.usefixtures("no_network")
def test_domain_lookup_works_offline_from_the_bundled_suffix_list() -> None:
    domains._extractor.cache_clear()
    domains._registrable_domain.cache_clear()
    try:
        assert standardize_domain("https://shop.example.co.uk") == "example.co.uk"
        assert standardize_domain("a.b.example.com.au") == "example.com.au"
    finally:
        domains._extractor.cache_clear()
        domains._registrable_domain.cache_clear()


@pytest.mark.parametrize(
    ("email", "role"),
    [
        ("invoices@acme.com", True),
        ("accounts.payable@acme.com", True),
        ("buchhaltung@firma.de", True),
        ("jane.doe@acme.com", False),
        ("ap.smith@acme.com", False),
    ],
)
def test_is_role_email(email: str, role: bool) -> None:
    assert is_role_email(email) is role
