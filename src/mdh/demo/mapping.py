"""The demo's source mapping beyond the declarative config: joins and conditional fields.

``demo.yaml`` maps each demo table column by column (``cdc.mapping``). Three things the
sources need cannot be said that way, so ``DemoChangeMapper`` does them on the mapped change
before it reaches the hub:

1. **billing.account joins its bill-to contact.** Zuora keeps a customer's address, e-mail and
   phone on the account's bill-to contact. Every account gets the bill-to contact's address;
   an Individual account (the bill-to contact *is* the customer) also its given and family
   name, e-mail and phone. A Business account does not take the e-mail and phone, which are
   the accounts-payable person's, who is a party of their own. An empty ``customertype__c``
   is inferred: a VAT id, or a name that is not the bill-to person's, means a business.
2. **Contact persons get E.164 phones.** ``crm.contact`` and ``erp.knvk`` hold national phone
   numbers without a country; the country of their account (``crm.account.billingcountry``,
   ``erp.kna1.land1``) turns them into E.164, so they compare with the other systems'.
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
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from cdc.envelope import ChangeEnvelope, Operation, SourceInfo
from cdc.errors import PoisonMessageError
from cdc.mapping import ChangeMapper, SourceMappings
from hub.model import ChangeOp, SourceChange
from matching.standardize import split_name_parts, standardize_person_name, standardize_phone

logger = logging.getLogger(__name__)

Attributes = dict[str, Any]
_PERSON_NAME_FIELDS = ("given_name", "middle_name", "family_name")


@dataclasses.dataclass(frozen=True)
class _Reference:
    """One referenced table of one system: how to load it and what to keep of a row."""

    system: str
    table: str
    key: str
    columns: tuple[str, ...] | None
    """Columns to load (None: every column, the row is mapped whole)."""


_BILL_TO = _Reference("billing", "contact", "id", None)
_CRM_ACCOUNT = _Reference("crm", "account", "id", ("id", "billingcountry"))
_ERP_CUSTOMER = _Reference("erp", "kna1", "kunnr", ("kunnr", "land1"))


class ReferenceData:
    """The referenced rows the demo mapping joins with, per system (see the module docstring).

    Each system's apply loop maps its own changes in its own thread, and each system's data
    is only touched from there, so no lock is needed beyond the one guarding connections.

    Args:
        urls: libpq URLs of the source databases, by system.
    """

    def __init__(self, urls: Mapping[str, str]) -> None:
        self._urls = dict(urls)
        self._values: dict[tuple[str, str], dict[str, Any]] = {}
        self._loaded: set[tuple[str, str]] = set()
        self._connections: dict[str, psycopg.Connection[Any]] = {}
        self._lock = threading.Lock()

    def remember(self, reference: _Reference, key: str, value: Any) -> None:
        self._values.setdefault((reference.system, reference.table), {})[key] = value

    def forget(self, reference: _Reference, key: str) -> None:
        self._values.get((reference.system, reference.table), {}).pop(key, None)

    def find(
        self, reference: _Reference, key: str, convert: Callable[[dict[str, Any]], Any]
    ) -> Any:
        """The value of referenced row ``key``: remembered, else loaded (see the module
        docstring); None when the row does not exist."""
        slot = (reference.system, reference.table)
        values = self._values.setdefault(slot, {})
        if key in values:
            return values[key]
        if slot not in self._loaded:
            self._loaded.add(slot)
            for row in self._select(reference, None):
                # A remembered value came from a change and is at least as new.
                values.setdefault(str(row[reference.key]), convert(row))
            if key in values:
                return values[key]
        rows = self._select(reference, key)
        value = convert(rows[0]) if rows else None
        if rows:
            values[key] = value
        return value

    def _select(self, reference: _Reference, key: str | None) -> list[dict[str, Any]]:
        columns = (
            sql.SQL("*")
            if reference.columns is None
            else sql.SQL(", ").join(sql.Identifier(c) for c in reference.columns)
        )
        query = sql.SQL("SELECT {} FROM {}").format(columns, sql.Identifier(reference.table))
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
        self._crm_countries = _lookup(mappings, "crm", "account", "addresses[0].country")

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
                self._references.remember(_BILL_TO, key.pk, dict(change.attributes))
            return change
        if table == ("crm", "account") and not deleted:
            self._references.remember(_CRM_ACCOUNT, key.pk, _iso(change.attributes))
        if table == ("erp", "kna1") and not deleted:
            self._references.remember(_ERP_CUSTOMER, key.pk, _iso(change.attributes))
        if deleted:
            return change
        attributes = dict(change.attributes)
        if table == ("billing", "account"):
            attributes = self._billing_account(attributes)
        elif table == ("crm", "contact"):
            country = self._country(_CRM_ACCOUNT, attributes, "accountid", self._crm_country)
            attributes = _with_e164_phones(attributes, country)
        elif table == ("erp", "knvk"):
            country = self._country(_ERP_CUSTOMER, attributes, "kunnr", _land1)
            attributes = _with_e164_phones(attributes, country)
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
            bill_to = self._references.find(_BILL_TO, bill_to_id, self._map_bill_to) or {}
        if bill_to.get("addresses"):
            attributes["addresses"] = bill_to["addresses"]
        kind = attributes.get("kind") or _infer_billing_kind(attributes, bill_to)
        attributes["kind"] = kind
        if kind == "person":
            for name in (*_PERSON_NAME_FIELDS, "emails", "phones"):
                if bill_to.get(name):
                    attributes[name] = bill_to[name]
        return _names_by_kind(attributes)

    def _map_bill_to(self, row: dict[str, Any]) -> Attributes:
        envelope = ChangeEnvelope(
            Operation.READ,
            key={"id": row["id"]},
            before=None,
            after=row,
            source=SourceInfo("postgresql", "billing", "billing", "public", "contact", 0),
        )
        try:
            change = super().map_change(envelope)
        except PoisonMessageError as exc:
            # The contact's own change is dead-lettered for the same reason; the account
            # goes on without what the contact would have added.
            logger.warning("bill-to contact %s cannot be mapped: %s", row.get("id"), exc)
            return {}
        return {} if change is None else dict(change.attributes)

    def _country(
        self,
        reference: _Reference,
        attributes: Attributes,
        column: str,
        convert: Callable[[dict[str, Any]], str | None],
    ) -> str | None:
        parent = attributes.get("extra", {}).get(column)
        if not parent:
            return None
        country = self._references.find(reference, parent, convert)
        return country if isinstance(country, str) else None

    def _crm_country(self, row: dict[str, Any]) -> str | None:
        value = row.get("billingcountry")
        if value is None:
            return None
        found = self._crm_countries.get(str(value).strip())
        return found if isinstance(found, str) else None


def _lookup(mappings: SourceMappings, system: str, table: str, target: str) -> dict[str, Any]:
    spec = mappings.sources[system].tables[table].fields.get(target)
    return dict(spec.lookup or {}) if spec is not None else {}


def _land1(row: dict[str, Any]) -> str | None:
    value = row.get("land1")
    return str(value).strip().upper() or None if value else None


def _iso(attributes: Mapping[str, Any]) -> str | None:
    addresses = attributes.get("addresses") or []
    country = addresses[0].get("country") if addresses else None
    return country if isinstance(country, str) else None


def _with_e164_phones(attributes: Attributes, country: str | None) -> Attributes:
    phones = attributes.get("phones")
    if phones and country:
        attributes["phones"] = [standardize_phone(p, country) or p for p in phones]
    return attributes


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


__all__ = ["DemoChangeMapper", "ReferenceData"]
