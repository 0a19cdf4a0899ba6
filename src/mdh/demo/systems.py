"""How each source system writes a customer down: record ids, formats and table rows.

The CRM (sales reps typing into Salesforce), billing (a Zuora checkout and finance team) and
the ERP (SAP back-office data entry) each have their habits: the CRM keeps mixed case, free-
text countries and multi-line streets; billing keeps E.164 phones, full country and state
names and timestamps in the tenant's time zone; the ERP upper-cases names and splits them
over NAME1/NAME2, writes national phone numbers with the country implied by LAND1, and may
hold Japanese customers in Japanese script. A ``RecordWriter`` renders one record of a
customer (its deviations drawn from the caller's random stream) as rows in column order of
``schemas``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from mdh.demo.corruption import (
    Corruption,
    WrittenAddress,
    fold_german,
    pick,
    write_address,
    write_email,
    write_org_name,
    write_person_name,
    write_phone,
)
from mdh.demo.countries import VAT_COUNTRIES
from mdh.demo.entities import Customer, Person
from mdh.demo.formats import Phone, format_phone, format_postcode, format_tax_id, to_full_width
from mdh.demo.vocabulary import Vocabulary

Row = tuple[Any, ...]

_BILLING_OFFSET = timedelta(hours=-8)
BILLING_TIMEZONE = timezone(_BILLING_OFFSET, "PST")
"""The billing tenant's time zone: its timestamps are local times in it, without zone."""

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_CASE_BITS = str.maketrans({char: ("1" if char.isupper() else "0") for char in _BASE62})
SALESFORCE_POD = "Dn"
"""The instance part of this org's Salesforce ids (characters 4-5)."""


def salesforce_id(key_prefix: str, number: int) -> str:
    """An 18-character Salesforce id: key prefix, pod, reserved "0", a 9-character base-62
    number and the 3-character case-safety checksum."""
    digits = []
    for _ in range(9):
        number, remainder = divmod(number, 62)
        digits.append(_BASE62[remainder])
    id15 = key_prefix + SALESFORCE_POD + "0" + "".join(reversed(digits))
    return id15 + salesforce_checksum(id15)


def salesforce_checksum(id15: str) -> str:
    """The suffix that makes a 15-character Salesforce id case-insensitively unique: per
    5-character chunk, the letter indexed by the bits of its upper-case positions."""
    bits = id15.translate(_CASE_BITS)
    return (
        _SUFFIX[int(bits[4::-1], 2)]
        + _SUFFIX[int(bits[9:4:-1], 2)]
        + _SUFFIX[int(bits[14:9:-1], 2)]
    )


def salesforce_number(record_id: str) -> int:
    """The sequence number inside a Salesforce id (inverse of ``salesforce_id``)."""
    number = 0
    for char in record_id[6:15]:
        number = number * 62 + _BASE62.index(char)
    return number


@dataclass
class IdAllocator:
    """Issues record ids the way each system does: Salesforce sequences, random Zuora ids,
    Zuora account numbers and SAP number ranges."""

    rng: random.Random
    crm_account: int = 7_300_000
    crm_contact: int = 9_100_000
    account_number: int = 1
    kunnr: int = 100_000
    parnr: int = 1

    def crm_account_id(self) -> str:
        self.crm_account += 1
        return salesforce_id("001", self.crm_account)

    def crm_contact_id(self) -> str:
        self.crm_contact += 1
        return salesforce_id("003", self.crm_contact)

    def zuora_id(self) -> str:
        return f"2c92c0f8{self.rng.getrandbits(96):024x}"

    def zuora_account_number(self) -> str:
        self.account_number += 1
        return f"A{self.account_number:08d}"

    def sap_kunnr(self) -> str:
        self.kunnr += 1
        return f"{self.kunnr:010d}"

    def sap_parnr(self) -> str:
        self.parnr += 1
        return f"{self.parnr:010d}"


@dataclass(frozen=True, slots=True)
class Emitted:
    """One source row and the real entity it describes."""

    system: str
    table: str
    row: Row
    entity_id: str

    @property
    def pk(self) -> str:
        return str(self.row[0])


_ANRED = {
    "en": ("Company", "Mr.", "Ms."),
    "de": ("Firma", "Herr", "Frau"),
    "fr": ("Société", "Monsieur", "Madame"),
    "nl": ("Firma", "De heer", "Mevrouw"),
    "es": ("Empresa", "Sr.", "Sra."),
    "it": ("Ditta", "Sig.", "Sig.ra"),
    "ja": ("Company", "Mr.", "Ms."),
}
_PAFKT = ("01", "02", "03", "06", "10", "11")
_REGION_COUNTRIES = frozenset({"US", "CA", "AU", "IT", "JP"})


def _styled(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    point = rng.random()
    for style, cumulative in table:
        if point < cumulative:
            return style
    return table[-1][0]


_CRM_PHONE_NANP = (
    ("national_paren", 0.5),
    ("national", 0.7),
    ("international", 0.9),
    ("national_slash", 1.0),
)
_CRM_PHONE = (
    ("national", 0.45),
    ("international", 0.85),
    ("international_trunk", 0.95),
    ("national_compact", 1.0),
)
_BILLING_PHONE = (("e164", 0.5), ("international", 0.85), ("national", 1.0))
_ERP_PHONE = (("national_compact", 0.4), ("national", 0.65), ("national_dash", 0.85), ("idd", 1.0))
_ERP_PHONE_DE = (
    ("national_compact", 0.3),
    ("national_slash", 0.55),
    ("national", 0.8),
    ("idd", 1.0),
)
_POSTCODE = (("canonical", 0.82), ("compact", 0.9), ("extended", 0.95), ("lower", 1.0))
_TAX = (("canonical", 0.72), ("spaced", 0.85), ("bare", 0.95), ("lower", 1.0))


def _cross_script(customer: Customer) -> bool:
    """Whether some system may write the customer in another script than the others: then
    its phone number is what links the records, and no record leaves it out."""
    if customer.country.code == "JP":
        return True
    return customer.person is not None and customer.person.name.script != "latin"


def pacific(moment: datetime) -> datetime:
    """A UTC moment as the billing tenant writes it: local time without zone."""
    return (moment + _BILLING_OFFSET).replace(tzinfo=None)


def sap_date(moment: datetime) -> str:
    return f"{moment.year:04d}{moment.month:02d}{moment.day:02d}"


def _join_name(core: str, legal: str, first: bool, native: bool) -> str:
    if not legal:
        return core
    if native:
        return f"{legal}{core}" if first else f"{core}{legal}"
    return f"{core} {legal}"


def _split35(text: str) -> tuple[str, str]:
    """Text over SAP's two 35-character name fields, split at a word boundary."""
    if len(text) <= 35:
        return text, ""
    cut = text.rfind(" ", 0, 36)
    if cut <= 0:
        cut = 35
    return text[:cut].rstrip(), text[cut:].strip()[:35]


@dataclass
class RecordWriter:
    """Renders records of customers into the rows of the three systems."""

    vocab: Vocabulary
    ids: IdAllocator

    # ---- CRM (Salesforce) ----------------------------------------------------------------

    def crm_phone(self, phone: Phone | None, rng: random.Random) -> str | None:
        if phone is None:
            return None
        styles = _CRM_PHONE_NANP if phone.country in ("US", "CA") else _CRM_PHONE
        return format_phone(phone, _styled(rng, styles))

    def crm_address(
        self, written: WrittenAddress, customer: Customer, rng: random.Random, rates: Corruption
    ) -> tuple[str, str, str | None, str | None, str | None]:
        street = written.street
        if written.unit:
            street = (
                f"{street}\n{written.unit}" if rng.random() < 0.7 else f"{written.unit}, {street}"
            )
        region: str | None = None
        if written.country == "JP":
            region = written.region_name  # the prefecture by name (native in native records)
        elif written.country in _REGION_COUNTRIES:
            region = written.region if rng.random() < 0.7 else written.region_name
        postcode = (
            format_postcode(written.postcode, written.country, _styled(rng, _POSTCODE), rng)
            if written.postcode
            else None
        )
        aliases = customer.country.aliases
        country: str | None = aliases[0] if rng.random() < 0.6 else pick(rng, aliases)
        if rng.random() < rates.missing * 0.5:
            country = None
        return street, written.city, region, postcode, country

    def crm_account(
        self,
        customer: Customer,
        rng: random.Random,
        rates: Corruption,
        created: datetime,
        modified: datetime,
        record_id: str | None = None,
    ) -> Emitted:
        native = customer.country.code == "JP" and rng.random() < 0.4
        written = write_address(
            customer.address, customer.previous_address, self.vocab, rng, rates, native
        )
        street, city, region, postcode, country = self.crm_address(written, customer, rng, rates)
        record_id = record_id or self.ids.crm_account_id()
        if customer.person is not None:
            person = customer.person
            native = native or (person.name.script in ("ru", "el") and rng.random() < 0.4)
            given, family = write_person_name(
                person.name, rng, rates, native, customer.country.code
            )
            email, stale_email = write_email(person.email, person.previous_email, rng, rates)
            phone = write_phone(person.phone, rng, rates)
            if phone is None and (
                _cross_script(customer) or ((email is None or stale_email) and written.stale)
            ):
                phone = person.phone
            full = (
                f"{family} {given}"
                if native and person.name.script == "ja"
                else f"{given} {family}"
            )
            mobile = phone if phone is not None and phone.mobile else None
            landline = phone if phone is not None and not phone.mobile else None
            birthdate = person.birthdate if rng.random() >= rates.missing else None
            row: Row = (
                record_id,
                full,
                True,
                given,
                family,
                email,
                self.crm_phone(mobile, rng),
                birthdate,
                street,
                city,
                region,
                postcode,
                country,
                self.crm_phone(landline, rng),
                None,
                None,
                None,
                None,
                created,
                modified,
            )
            return Emitted("crm", "account", row, customer.entity_id)
        assert customer.org is not None
        core, legal, first = write_org_name(
            customer.org, self.vocab, rng, rates, native, customer.country.code
        )
        name = _join_name(core, legal, first, native)
        if rng.random() < 0.03:
            name = name.upper()
        phone = write_phone(customer.phone, rng, rates)
        if phone is None and (written.stale or _cross_script(customer)):
            phone = customer.phone
        website = customer.website
        if website is not None:
            roll = rng.random()
            if roll < rates.missing:
                website = None
            elif roll < 0.25:
                website = f"http://{website}"
            elif roll < 0.35:
                website = f"https://{website.removeprefix('www.')}/"
        row = (
            record_id,
            name,
            False,
            None,
            None,
            None,
            None,
            None,
            street,
            city,
            region,
            postcode,
            country,
            self.crm_phone(phone, rng),
            website,
            customer.industry if rng.random() >= rates.missing else None,
            customer.account_type,
            customer.employees if rng.random() >= rates.missing * 2 else None,
            created,
            modified,
        )
        return Emitted("crm", "account", row, customer.entity_id)

    def crm_contact(
        self,
        contact: Person,
        customer: Customer,
        account_id: str,
        rng: random.Random,
        rates: Corruption,
        created: datetime,
        modified: datetime,
        record_id: str | None = None,
    ) -> Emitted:
        code = customer.country.code
        native = contact.name.script != "latin" and rng.random() < 0.35
        given, family = write_person_name(contact.name, rng, rates, native, code)
        email, _ = write_email(contact.email, contact.previous_email, rng, rates)
        phone = write_phone(contact.phone, rng, rates)
        if phone is None and email is None:
            phone = contact.phone or customer.phone
        desk = phone if phone is not None and not phone.mobile else None
        if desk is None and rng.random() < 0.3:
            desk = customer.phone
        mobile = phone if phone is not None and phone.mobile else None
        row: Row = (
            record_id or self.ids.crm_contact_id(),
            account_id,
            given,
            family,
            email,
            self.crm_phone(desk, rng),
            self.crm_phone(mobile, rng),
            contact.title if rng.random() >= rates.missing else None,
            created,
            modified,
        )
        return Emitted("crm", "contact", row, contact.entity_id)

    # ---- billing (Zuora) -------------------------------------------------------------------

    def billing_phone(self, phone: Phone | None, rng: random.Random) -> str | None:
        return None if phone is None else format_phone(phone, _styled(rng, _BILLING_PHONE))

    def billing_account(
        self,
        customer: Customer,
        rng: random.Random,
        rates: Corruption,
        created: datetime,
        modified: datetime,
        crm_id: str | None,
        record_id: str | None = None,
        contact_id: str | None = None,
        account_number: str | None = None,
    ) -> tuple[Emitted, Emitted]:
        """The account and its bill-to contact."""
        code = customer.country.code
        account_id = record_id or self.ids.zuora_id()
        contact_id = contact_id or self.ids.zuora_id()
        bill_to = customer.bill_to
        given, family = write_person_name(bill_to.name, rng, rates, False, code)
        if customer.org is not None:
            core, legal, _ = write_org_name(customer.org, self.vocab, rng, rates, False, code)
            name = _join_name(core, legal, False, False)
            kind = "Business"
            # Invoices must show the tax registration: VAT ids in Europe, the ABN, the GST/HST
            # number and the Japanese invoice registration number elsewhere; none in the US.
            vat = customer.tax_id if code != "US" else None
            if vat is not None and rng.random() >= rates.missing:
                vatid: str | None = format_tax_id(vat, code, _styled(rng, _TAX))
            else:
                vatid = None
        else:
            name = f"{given} {family}" if rng.random() < 0.85 else f"{family}, {given}"
            kind = "Individual"
            vatid = None
        status = "Active" if rng.random() < 0.9 else pick(rng, ("Draft", "Canceled"))
        credit = customer.credit_limit if rng.random() >= rates.missing else None
        balance = Decimal(int(rng.random() * float(customer.credit_limit or 1000) * 50)) / 100
        account_row: Row = (
            account_id,
            account_number or self.ids.zuora_account_number(),
            name,
            kind if rng.random() >= rates.missing * 0.5 else None,
            customer.currency,
            customer.payment_term,
            1 + int(rng.random() * 28),
            status,
            balance,
            credit,
            vatid,
            crm_id,
            contact_id,
            pacific(created),
            pacific(modified),
        )

        written = write_address(
            customer.address, customer.previous_address, self.vocab, rng, rates, False
        )
        if customer.person is None and rng.random() < 0.3:
            email: str | None = customer.email
            stale_email = False
        else:
            email, stale_email = write_email(bill_to.email, bill_to.previous_email, rng, rates)
        # Accounts payable often gives the switchboard rather than a direct line.
        true_phone = customer.phone if rng.random() < 0.5 else (bill_to.phone or customer.phone)
        phone = write_phone(true_phone, rng, rates)
        if phone is None and (
            _cross_script(customer) or ((email is None or stale_email) and written.stale)
        ):
            phone = true_phone
        state: str | None = None
        if written.country in _REGION_COUNTRIES:
            state = written.region_name if written.country != "IT" else written.region
        postcode = (
            format_postcode(written.postcode, written.country, _styled(rng, _POSTCODE), rng)
            if written.postcode
            else None
        )
        contact_row: Row = (
            contact_id,
            account_id,
            given,
            family,
            email,
            self.billing_phone(phone, rng),
            written.street,
            written.unit or None,
            written.city,
            state,
            postcode,
            customer.country.name,
            pacific(created),
            pacific(modified),
        )
        return (
            Emitted("billing", "account", account_row, customer.entity_id),
            Emitted("billing", "contact", contact_row, bill_to.entity_id),
        )

    # ---- ERP (SAP) ---------------------------------------------------------------------------

    def erp_phone(self, phone: Phone | None, rng: random.Random, native: bool) -> str | None:
        if phone is None:
            return None
        text = format_phone(
            phone, _styled(rng, _ERP_PHONE_DE if phone.country == "DE" else _ERP_PHONE)
        )
        return to_full_width(text) if native and rng.random() < 0.3 else text

    def erp_customer(
        self,
        customer: Customer,
        rng: random.Random,
        rates: Corruption,
        created: datetime,
        record_id: str | None = None,
    ) -> Emitted:
        code = customer.country.code
        native = code == "JP" and rng.random() < 0.7
        legacy = code == "DE" and rng.random() < 0.3

        def upper(text: str) -> str:
            if native:
                return text
            return (fold_german(text) if legacy else text).upper()

        written = write_address(
            customer.address, customer.previous_address, self.vocab, rng, rates, native
        )
        anred = _ANRED.get(customer.lang, _ANRED["en"])
        tax = customer.tax_id
        if customer.person is not None:
            person = customer.person
            given, family = write_person_name(person.name, rng, rates, native, code)
            roll = rng.random()
            if native or roll < 0.7:
                name1, name2 = upper(family), upper(given)
            elif roll < 0.9:
                name1, name2 = _split35(upper(f"{given} {family}"))
            else:
                name1, name2 = _split35(upper(f"{family}, {given}"))
            salutation = anred[1] if person.gender == "m" else anred[2]
            # The ERP keeps no e-mail for a customer: a person's phone is never left out.
            phone = person.phone
            natural = "X"
        else:
            assert customer.org is not None
            core, legal, first = write_org_name(customer.org, self.vocab, rng, rates, native, code)
            if native:
                name1, name2 = _split35(_join_name(core, legal, first, True))
            elif legal and rng.random() < 0.3:
                name1, name2 = _split35(upper(core))
                name2 = (f"{name2} {upper(legal)}" if name2 else upper(legal))[:35]
            else:
                name1, name2 = _split35(upper(_join_name(core, legal, False, False)))
            salutation = anred[0]
            phone = write_phone(customer.phone, rng, rates)
            if phone is None and (tax is None or written.stale or _cross_script(customer)):
                phone = customer.phone
            natural = ""
        street = written.street
        if written.unit and rng.random() < 0.5:
            street = f"{street}, {written.unit}"
        postcode = written.postcode
        if postcode:
            style = (
                "short"
                if rng.random() < 0.1
                else ("compact" if rng.random() < 0.1 else "canonical")
            )
            postcode = format_postcode(postcode, code, style, rng)
        stceg = stcd1 = None
        if tax is not None and rng.random() >= rates.missing:
            if code in VAT_COUNTRIES:
                stceg = format_tax_id(tax, code, "canonical" if rng.random() < 0.85 else "spaced")
            else:
                stcd1 = tax.replace("-", "") if rng.random() < 0.5 else tax
        row: Row = (
            record_id or self.ids.sap_kunnr(),
            salutation,
            name1,
            name2 or None,
            upper(street)[:60],
            upper(written.city)[:35],
            postcode or None,
            written.region if code in _REGION_COUNTRIES else None,
            code,
            self.erp_phone(phone, rng, native),
            stceg,
            stcd1,
            natural or None,
            customer.country.sap_language,
            "0001" if customer.org is not None or rng.random() < 0.8 else "CPD",
            sap_date(created),
        )
        return Emitted("erp", "kna1", row, customer.entity_id)

    def erp_contact(
        self,
        contact: Person,
        customer: Customer,
        kunnr: str,
        rng: random.Random,
        rates: Corruption,
        record_id: str | None = None,
    ) -> Emitted:
        code = customer.country.code
        native = code == "JP" and rng.random() < 0.7
        given, family = write_person_name(contact.name, rng, rates, native, code)
        if not native and rng.random() < 0.4:
            given, family = given.upper(), family.upper()
        email, _ = write_email(contact.email, contact.previous_email, rng, rates)
        phone = write_phone(contact.phone, rng, rates)
        if phone is None and email is None:
            phone = contact.phone or customer.phone
        row: Row = (
            record_id or self.ids.sap_parnr(),
            kunnr,
            given[:35],
            family[:35],
            self.erp_phone(phone, rng, native),
            email.lower() if email else None,
            pick(rng, _PAFKT),
        )
        return Emitted("erp", "knvk", row, contact.entity_id)
