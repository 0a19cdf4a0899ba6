"""Organisation names and legal forms across countries and scripts."""

from __future__ import annotations

import pytest

from matching.standardize import (
    legal_form,
    split_org_name,
    standardize_legal_form,
    standardize_org_name,
)
from matching.standardize.organizations import LEGAL_FORM_CODES


@pytest.mark.parametrize(
    ("raw", "core", "code"),
    [
        ("Acme, Inc.", "acme", "INC"),
        ("ACME INCORPORATED", "acme", "INC"),
        ("Acme Corp.", "acme", "CORP"),
        ("Acme Corporation", "acme", "CORP"),
        ("Acme LLC", "acme", "LLC"),
        ("Acme L.L.C.", "acme", "LLC"),
        ("Acme Limited Liability Company", "acme", "LLC"),
        ("The Coca-Cola Company", "coca cola", "CO"),
        ("Beatles, The", "beatles", None),
        ("Smith & Co.", "smith", "CO"),
        ("Johnson & Johnson", "johnson and johnson", None),
        ("Procter and Gamble", "procter and gamble", None),
        ("Acme Ltd", "acme", "LTD"),
        ("ACME LIMITED", "acme", "LTD"),
        ("Tesco PLC", "tesco", "PLC"),
        ("Ernst & Young LLP", "ernst and young", "LLP"),
        ("Blackstone L.P.", "blackstone", "LP"),
        ("Siemens AG", "siemens", "AG"),
        ("Volkswagen Aktiengesellschaft", "volkswagen", "AG"),
        ("Müller & Söhne GmbH & Co. KG", "muller and sohne", "GMBH_CO_KG"),
        ("Bosch GmbH", "bosch", "GMBH"),
        ("Schmidt Gesellschaft mit beschränkter Haftung", "schmidt", "GMBH"),
        ("Start-up UG (haftungsbeschränkt)", "start up", "UG"),
        ("Allianz SE", "allianz", "SE"),
        ("Société Générale S.A.", "societe generale", "SA"),
        ("Banco Santander, S.A.", "banco santander", "SA"),
        ("Dupont SAS", "dupont", "SAS"),
        ("Boulangerie Martin SARL", "boulangerie martin", "SARL"),
        ("Foo S.à r.l.", "foo", "SARL"),
        ("Fiat S.p.A.", "fiat", "SPA"),
        ("Rossi S.r.l.", "rossi", "SRL"),
        ("Cemex, S.A.B. de C.V.", "cemex", "SA_DE_CV"),
        ("Telefónica S.A. de C.V.", "telefonica", "SA_DE_CV"),
        ("Inditex S.L.", "inditex", "SL"),
        ("Philips B.V.", "philips", "BV"),
        ("ING Groep N.V.", "ing groep", "NV"),
        ("Qantas Pty Ltd", "qantas", "PTY_LTD"),
        ("Tata Consultancy Services Pvt. Ltd.", "tata consultancy svcs", "PVT_LTD"),
        ("Nokia Oyj", "nokia", "OYJ"),
        ("Rovio Oy", "rovio", "OY"),
        ("AB Volvo", "volvo", "AB"),
        ("Volvo AB (publ)", "volvo", "AB_PUBL"),
        ("Maersk A/S", "maersk", "AS"),
        ("Lego ApS", "lego", "APS"),
        ("Equinor ASA", "equinor", "ASA"),
        ("Kowalski Sp. z o.o.", "kowalski", "SP_ZOO"),
        ("Škoda s.r.o.", "skoda", "SRO"),
        ("Richter Kft.", "richter", "KFT"),
        ("OOO Romashka", "romashka", "OOO"),
        ("ООО «Ромашка»", "romashka", "OOO"),
        ("Toyota Motor Co., Ltd.", "toyota motor", "LTD"),
        ("Sony Kabushiki Kaisha", "sony", "KK"),
        ("トヨタ自動車株式会社", "toyota zidongche", "KK"),
        ("株式会社ソニー", "soni", "KK"),
        ("阿里巴巴集团控股有限公司", "alibabajituankonggu", "LTD"),
        ("Petrobras Ltda.", "petrobras", "LTDA"),
        ("Acme International Holdings LLC", "acme intl hldgs", "LLC"),
        ("I.B.M. Corporation", "ibm", "CORP"),
        ("IBM Corp", "ibm", "CORP"),
        ("3M Company", "3m", "CO"),
        ("AT&T Inc.", "at and t", "INC"),
        ("Inc.", "inc", None),
        ("Limited", "limited", None),
        ("", "", None),
    ],
)
def test_split_org_name(raw: str, core: str, code: str | None) -> None:
    assert split_org_name(raw) == (core, code)
    assert standardize_org_name(raw) == core
    assert legal_form(raw) == code


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("Acme, Inc.", "ACME INCORPORATED"),
        ("The Acme Company", "Acme Co"),
        ("Müller GmbH", "Mueller GmbH".replace("Mueller", "Müller")),
        ("Société Générale SA", "Societe Generale S.A."),
        ("Johnson & Johnson", "Johnson and Johnson"),
        ("Acme International Ltd", "ACME INTL LIMITED"),
        ("Acme Manufacturing Corp", "Acme Mfg. Corporation"),
        ("Smith Bros.", "Smith Brothers"),
    ],
)
def test_spellings_of_one_company_agree(left: str, right: str) -> None:
    assert standardize_org_name(left) == standardize_org_name(right)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("GmbH", "GMBH"),
        ("gmbh", "GMBH"),
        ("S.A.", "SA"),
        ("Incorporated", "INC"),
        ("GMBH_CO_KG", "GMBH_CO_KG"),
        ("株式会社", "KK"),
        ("Sp. z o.o.", "SP_ZOO"),
        ("Holding", None),
        ("", None),
    ],
)
def test_standardize_legal_form(raw: str, code: str | None) -> None:
    assert standardize_legal_form(raw) == code


def test_legal_form_codes_are_stable_identifiers() -> None:
    assert {"INC", "LLC", "LTD", "GMBH", "AG", "SA", "BV", "KK", "SP_ZOO"} <= LEGAL_FORM_CODES
    for code in LEGAL_FORM_CODES:
        assert code == code.upper()
        assert standardize_legal_form(code) == code
