"""The demo's source mapping beyond the declarative config: joins and conditional fields.

``demo.yaml`` maps each demo table column by column (``cdc.mapping``). Three things the
sources need cannot be said that way, so ``DemoChangeMapper`` does them on the mapped change
before it reaches the hub:

1. **billing.account joins its bill-to contact.** Zuora keeps a customer's address, e-mail and
   phone on the account's bill-to contact. Every account gets the bill-to contact's address;
   an Individual account (the bill-to contact *is* the customer) also its given and family
   name, e-mail and phone. A Business account does not take the e-mail and phone, which are
   the accounts-payable person's, who is a party of their own; it takes the company's web
   domain from that e-mail address instead (as ``website``, unless it is a free-mail
   provider's). An empty ``customertype__c`` is inferred: a VAT id, or a name that is not the
   bill-to person's, means a business.
2. **Contact persons get E.164 phones and their employer's web domain.** ``crm.contact`` and
   ``erp.knvk`` hold national phone numbers without a country; the country of their
   customer's address (``crm.account``, ``erp.kna1``) turns them into E.164, so they compare
   with the other systems'. A contact without a website of its own takes its customer's (the
   employer's domain, which the other systems know from the person's work e-mail): a contact
   known by name only in one system has nothing else to be recognised by. Not the customer's
   whole address: colleagues (same street, postcode, city) looked more alike than their
   different names could outweigh; the match spec counts a shared phone and domain once.
3. **Conditional fields.** A person keeps its name in given/family name (``legal_name`` is
   dropped), an organisation has no given/family name. An SAP person whose NAME2 is empty has
   "GIVEN FAMILY" or "FAMILY, GIVEN" in NAME1: it stays whole in ``legal_name`` for the
   matcher to split instead of becoming a family name.

The joins read ``ReferenceData``: per system, the values of the referenced rows. It is a
stream-table join: every mapped change of a referenced table updates it, and a miss loads the
whole referenced table from the source database once (the snapshot may deliver accounts before
their contacts), later misses the one row. Enrichment therefore reflects the referenced row as
last seen, which may be newer than the change being mapped; a change to a bill-to contact
alone does not re-map its account (the account record keeps the address it was mapped with
until the account itself changes; the contact's own record carries the new address at once).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from cdc.envelope import ChangeEnvelope, Operation, SourceInfo
from cdc.errors import PoisonMessageError
from cdc.mapping import ChangeMapper, SourceMappings
from hub.model import ChangeOp, SourceChange
from matching.standardize import (
    is_free_mail_domain,
    split_name_parts,
    standardize_domain,
    standardize_person_name,
    standardize_phone,
)

logger = logging.getLogger(__name__)

Attributes = dict[str, Any]
_PERSON_NAME_FIELDS = ("given_name", "middle_name", "family_name")


@dataclasses.dataclass(frozen=True)
class _Reference:
    """A referenced table: its system, name and key column (rows are mapped whole)."""

    system: str
    table: str
    key: str


_BILL_TO = _Reference("billing", "contact", "id")
_CRM_ACCOUNT = _Reference("crm", "account", "id")
_ERP_CUSTOMER = _Reference("erp", "kna1", "kunnr")
_PARENTS: dict[tuple[str, str], tuple[_Reference, str]] = {
    ("crm", "contact"): (_CRM_ACCOUNT, "accountid"),
    ("erp", "knvk"): (_ERP_CUSTOMER, "kunnr"),
}
"""Contact tables: the customer table they refer to and the (``extra``) referring column."""


class ReferenceData:
    """The referenced rows the demo mapping joins with, per system (see the module docstring).

    Each system's apply loop maps its own changes in its own thread, and each system's data
    is only touched from there, so no lock is needed beyond the one guarding connections.

    Args:
        urls: libpq URLs of the source databases, by system; a system without one has only
            the values remembered from its changes (offline mapping of a generated world).
        max_age_seconds: how long a remembered or loaded value is trusted before the row is
            read again; None trusts it until a change of the row replaces it, which is right
            when this process maps every change of the referenced tables (``mdh demo``), not
            for a scale-out worker that sees only some partitions.
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        urls: Mapping[str, str],
        max_age_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._urls = dict(urls)
        self._max_age = max_age_seconds
        self._clock = clock
        self._values: dict[tuple[str, str], dict[str, Any]] = {}
        self._seen: dict[tuple[str, str], dict[str, float]] = {}
        self._loaded: set[tuple[str, str]] = set()
        self._connections: dict[str, psycopg.Connection[Any]] = {}
        self._lock = threading.Lock()

    def remember(self, reference: _Reference, key: str, value: Any) -> None:
        slot = (reference.system, reference.table)
        self._values.setdefault(slot, {})[key] = value
        self._seen.setdefault(slot, {})[key] = self._clock()

    def forget(self, reference: _Reference, key: str) -> None:
        slot = (reference.system, reference.table)
        self._values.get(slot, {}).pop(key, None)
        self._seen.get(slot, {}).pop(key, None)

    def _fresh(self, slot: tuple[str, str], key: str) -> bool:
        if self._max_age is None:
            return True
        seen = self._seen.get(slot, {}).get(key)
        return seen is not None and self._clock() - seen <= self._max_age

    def find(
        self, reference: _Reference, key: str, convert: Callable[[dict[str, Any]], Any]
    ) -> Any:
        """The value of referenced row ``key``: remembered, else loaded (see the module
        docstring); None when the row does not exist."""
        slot = (reference.system, reference.table)
        values = self._values.setdefault(slot, {})
        if key in values and (reference.system not in self._urls or self._fresh(slot, key)):
            return values[key]
        if reference.system not in self._urls:  # offline: only what was remembered
            return None
        if slot not in self._loaded:
            self._loaded.add(slot)
            loaded_at = self._clock()
            seen = self._seen.setdefault(slot, {})
            for row in self._select(reference, None):
                # A remembered value came from a change and is at least as new.
                row_key = str(row[reference.key])
                if row_key not in values:
                    values[row_key] = convert(row)
                    seen[row_key] = loaded_at
            if key in values and self._fresh(slot, key):
                return values[key]
        rows = self._select(reference, key)
        value = convert(rows[0]) if rows else None
        if rows:
            values[key] = value
            self._seen.setdefault(slot, {})[key] = self._clock()
        else:
            self.forget(reference, key)
        return value

    def _select(self, reference: _Reference, key: str | None) -> list[dict[str, Any]]:
        query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(reference.table))
        params: tuple[Any, ...] = ()
        if key is not None:
            query = sql.SQL("{} WHERE {} = %s").format(query, sql.Identifier(reference.key))
            params = (key,)
        conn = self._connection(reference.system)
        try:
            with conn.cursor(row_factory=dict_row) as cur:
                return list(cur.execute(query, params))
        except psycopg.OperationalError:
            # The connection died (a server restart): the next look-up opens a new one.
            with self._lock:
                self._connections.pop(reference.system, None)
            raise

    def _connection(self, system: str) -> psycopg.Connection[Any]:
        with self._lock:
            conn = self._connections.get(system)
            if conn is None or conn.closed:
                conn = psycopg.connect(self._urls[system], autocommit=True)
                self._connections[system] = conn
            return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._connections.values():
                conn.close()
            self._connections.clear()


class DemoChangeMapper(ChangeMapper):
    """``ChangeMapper`` plus the demo's joins and conditional fields (module docstring).

    Args:
        mappings: the ``sources:`` section of the demo config.
        references: the shared reference data (one per run, for every system's mapper).
    """

    def __init__(self, mappings: SourceMappings, references: ReferenceData) -> None:
        super().__init__(mappings)
        self._references = references

    def map_change(self, envelope: ChangeEnvelope) -> SourceChange | None:
        change = super().map_change(envelope)
        if change is None:
            return None
        key = change.key
        table = (key.system, key.table)
        deleted = change.op is ChangeOp.DELETE
        if table == ("billing", "contact"):
            if deleted:
                self._references.forget(_BILL_TO, key.pk)
            else:
                self._references.remember(_BILL_TO, key.pk, _bill_to_part(change.attributes))
            return change
        if deleted:
            return change
        attributes = dict(change.attributes)
        if table == ("crm", "account"):
            self._references.remember(_CRM_ACCOUNT, key.pk, _customer_part(attributes))
        elif table == ("erp", "kna1"):
            self._references.remember(_ERP_CUSTOMER, key.pk, _customer_part(attributes))
        if table == ("billing", "account"):
            attributes = self._billing_account(attributes)
        elif table in _PARENTS:
            attributes = self._contact(attributes, *_PARENTS[table])
        elif table == ("erp", "kna1"):
            attributes = _sap_names(attributes)
        else:
            attributes = _names_by_kind(attributes)
        return dataclasses.replace(change, attributes=attributes)

    # --- joins ---------------------------------------------------------------------------

    def _billing_account(self, attributes: Attributes) -> Attributes:
        bill_to_id = attributes.get("extra", {}).get("billtoid")
        bill_to: Attributes = {}
        if bill_to_id:
            bill_to = self._find(_BILL_TO, bill_to_id, _bill_to_part)
        if bill_to.get("addresses"):
            attributes["addresses"] = bill_to["addresses"]
        kind = attributes.get("kind") or _infer_billing_kind(attributes, bill_to)
        attributes["kind"] = kind
        if kind == "person":
            for name in (*_PERSON_NAME_FIELDS, "emails", "phones"):
                if bill_to.get(name):
                    attributes[name] = bill_to[name]
        elif not attributes.get("website"):
            domain = _company_domain(bill_to.get("emails") or ())
            if domain is not None:
                attributes["website"] = domain
        return _names_by_kind(attributes)

    def _contact(self, attributes: Attributes, parent: _Reference, column: str) -> Attributes:
        """A contact person's phones in E.164, with the country of their customer, and the
        customer's website when the contact has none (see the module docstring).

        Not the customer's address: it would make colleagues look alike (same street,
        postcode, city) and outweigh their different names.
        """
        parent_id = attributes.get("extra", {}).get(column)
        if not parent_id:
            return attributes
        customer = self._find(parent, parent_id, _customer_part)
        phones = attributes.get("phones")
        addresses = customer.get("addresses") or [{}]
        country = addresses[0].get("country")
        if phones and isinstance(country, str):
            attributes["phones"] = [standardize_phone(p, country) or p for p in phones]
        if not attributes.get("website") and customer.get("website"):
            attributes["website"] = customer["website"]
        return attributes

    def _find(
        self, reference: _Reference, key: str, part: Callable[[Mapping[str, Any]], Attributes]
    ) -> Attributes:
        def convert(row: dict[str, Any]) -> Attributes:
            envelope = row_envelope(reference.system, reference.table, reference.key, row)
            try:
                change = super(DemoChangeMapper, self).map_change(envelope)
            except PoisonMessageError as exc:
                # The row's own change is dead-lettered for the same reason; the joining
                # row goes on without what it would have added.
                logger.warning("%s %s cannot be mapped: %s", reference.table, key, exc)
                return {}
            return {} if change is None else part(change.attributes)

        found = self._references.find(reference, key, convert)
        return found if isinstance(found, dict) else {}


def row_envelope(system: str, table: str, key: str, row: Mapping[str, Any]) -> ChangeEnvelope:
    """A snapshot read of ``row`` as Debezium would deliver it (for rows read directly)."""
    return ChangeEnvelope(
        Operation.READ,
        key={key: row[key]},
        before=None,
        after=row,
        source=SourceInfo("postgresql", system, system, "public", table, 0),
    )


def _bill_to_part(attributes: Mapping[str, Any]) -> Attributes:
    """What a billing account takes from its bill-to contact."""
    wanted = (*_PERSON_NAME_FIELDS, "emails", "phones", "addresses")
    return {name: attributes[name] for name in wanted if name in attributes}


def _customer_part(attributes: Mapping[str, Any]) -> Attributes:
    """What a contact person takes from their customer: the address (for its country) and
    the website."""
    return {name: attributes[name] for name in ("addresses", "website") if attributes.get(name)}


def _company_domain(emails: Sequence[str]) -> str | None:
    """The registrable domain of the first address that is not at a free-mail provider."""
    for email in emails:
        domain = standardize_domain(email)
        if domain is not None and not is_free_mail_domain(domain):
            return domain
    return None


def _infer_billing_kind(attributes: Attributes, bill_to: Attributes) -> str:
    if attributes.get("tax_id"):
        return "organization"
    name = attributes.get("legal_name")
    given, family = bill_to.get("given_name"), bill_to.get("family_name")
    if name and given and family:
        parts = split_name_parts(name)
        if (parts.given, parts.family) == (
            standardize_person_name(given),
            standardize_person_name(family),
        ):
            return "person"
    return "organization"


def _sap_names(attributes: Attributes) -> Attributes:
    if attributes.get("kind") == "person" and not attributes.get("given_name"):
        # "GIVEN FAMILY" or "FAMILY, GIVEN" in NAME1: kept whole for the matcher to split.
        attributes.pop("family_name", None)
        return attributes
    return _names_by_kind(attributes)


def _names_by_kind(attributes: Attributes) -> Attributes:
    if attributes.get("kind") == "person":
        if any(attributes.get(name) for name in _PERSON_NAME_FIELDS):
            attributes.pop("legal_name", None)
    else:
        for name in _PERSON_NAME_FIELDS:
            attributes.pop(name, None)
    return attributes


__all__ = ["DemoChangeMapper", "ReferenceData", "row_envelope"]
