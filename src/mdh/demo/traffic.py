"""Live traffic on the demo sources: what the CRM, billing and ERP users do all day.

``run_traffic`` drives a paced loop of business transactions against a seeded world, each a
real transaction on one source database:

- **insert**: a new customer appears in one system (most often the CRM);
- **update**: a customer moves, or a customer or contact person changes phone or e-mail, in
  one system (the others keep the old value, as they do in real life);
- **amendment**: a mid-cycle upgrade in billing changes PaymentTerm, CreditLimit, sometimes
  the Currency, and the balance;
- **delete**: a customer record (with its contacts) or a contact row is deleted;
- **duplicate**: an existing customer arrives again, as a further record in a system that
  already has one (a *duplicate*) or as its first record in another system (an *arrival*).

Every row written is recorded in the truth store, so precision and recall stay computable
while traffic runs. Ordering, per transaction:

1. for rows that appear (insert, duplicate), the truth store commits first, then the source
   transaction; if the source transaction fails, the truth rows are removed again;
2. for rows that change or disappear (update, amendment, delete), the source transaction
   commits first, then the truth store records the new attributes or the deletion.

So a reader never finds a source row the truth does not know; a process killed between the
two commits can leave a truth row for a source row that never arrived, or a deleted row the
truth still calls live: reports should join from source records to the truth.

Reproducible: the same seed, starting state and clock give the same transactions. A customer
is rebuilt from its seed in the truth store when traffic needs it (to write a duplicate); the
rebuilt customer has the e-mail addresses the truth records and the addresses and phones of
moves made by this run, otherwise its original values (a duplicate keyed in from old
paperwork shows the old address, as happens).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import errors, sql

from mdh.demo.entities import (
    PAYMENT_TERMS,
    Address,
    Customer,
    Person,
    address_attributes,
    build_customer,
    company_mail_address,
    free_mail_address,
    make_address,
)
from mdh.demo.formats import Phone, make_phone
from mdh.demo.generator import Batch, GeneratorConfig, WorldBuilder, find_dataset
from mdh.demo.schemas import (
    CONTACT_TABLES,
    CUSTOMER_TABLES,
    PRIMARY_KEYS,
    SYSTEMS,
    TABLES_BY_KEY,
    TRUTH_ENTITY_COLUMNS,
    TRUTH_SCHEMA,
    DemoDatabases,
    DemoError,
)
from mdh.demo.systems import Emitted, IdAllocator, RecordWriter, pacific, salesforce_number
from mdh.demo.vocabulary import Vocabulary

TableKey = tuple[str, str]
RowKey = tuple[str, str, str]

_NEW_CUSTOMER_SYSTEMS = (("crm", 0.6), ("billing", 0.25), ("erp", 0.15))
_CHANGED_STAMP = {"crm": "lastmodifieddate", "billing": "updateddate"}
"""The column each system stamps on change (SAP keeps change documents elsewhere)."""
_EMAIL_COLUMNS: dict[TableKey, str] = {
    ("crm", "account"): "personemail",
    ("crm", "contact"): "email",
    ("billing", "contact"): "workemail",
    ("erp", "knvk"): "smtp_addr",
}
_RETRYABLE = (errors.SerializationFailure, errors.DeadlockDetected, errors.LockNotAvailable)


@dataclass(frozen=True)
class TrafficMix:
    """Relative weights of the kinds of transaction."""

    insert: float = 0.15
    update: float = 0.35
    amendment: float = 0.15
    delete: float = 0.05
    duplicate: float = 0.30

    def choices(self) -> tuple[tuple[str, float], ...]:
        pairs = (
            ("insert", self.insert),
            ("update", self.update),
            ("amendment", self.amendment),
            ("delete", self.delete),
            ("duplicate", self.duplicate),
        )
        if any(weight < 0 for _, weight in pairs) or sum(w for _, w in pairs) <= 0:
            raise DemoError(f"traffic mix weights must be non-negative, not all zero: {self}")
        return pairs


@dataclass(frozen=True)
class TrafficConfig:
    rate: float | None = 5.0
    """Transactions per second; None: as fast as the databases go."""
    seed: int = 1
    mix: TrafficMix = field(default_factory=TrafficMix)
    max_transactions: int | None = None
    """Stop after this many transactions (None: until stopped)."""
    same_system_share: float = 0.6
    """Of arriving records of existing customers: the share written into a system that
    already holds the customer (a duplicate) rather than a new one (an arrival)."""

    def __post_init__(self) -> None:
        if self.rate is not None and self.rate <= 0:
            raise DemoError(f"traffic rate must be positive (or None for unpaced), got {self.rate}")
        if self.max_transactions is not None and self.max_transactions < 0:
            raise DemoError(f"max_transactions must not be negative, got {self.max_transactions}")
        if not 0.0 <= self.same_system_share <= 1.0:
            raise DemoError(f"same_system_share must be in [0, 1], got {self.same_system_share}")
        self.mix.choices()


@dataclass
class TrafficCounts:
    """What the traffic did; updated in place while it runs (read it from another thread)."""

    inserts: int = 0
    updates: int = 0
    amendments: int = 0
    deletes: int = 0
    duplicates: int = 0
    arrivals: int = 0
    rows_inserted: int = 0
    retries: int = 0
    skipped: int = 0
    """Transactions that found nothing to act on (an empty world, a row gone meanwhile)."""

    @property
    def transactions(self) -> int:
        return (
            self.inserts
            + self.updates
            + self.amendments
            + self.deletes
            + self.duplicates
            + self.arrivals
        )


class _Pool:
    """A list that picks and removes in O(1) and stays deterministic."""

    def __init__(self, items: Iterable[str] = ()) -> None:
        self.items: list[str] = list(items)
        self.where = {item: position for position, item in enumerate(self.items)}

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item: str) -> None:
        if item not in self.where:
            self.where[item] = len(self.items)
            self.items.append(item)

    def remove(self, item: str) -> None:
        position = self.where.pop(item, None)
        if position is None:
            return
        last = self.items.pop()
        if position < len(self.items):
            self.items[position] = last
            self.where[last] = position

    def pick(self, rng: random.Random) -> str:
        return self.items[int(rng.random() * len(self.items))]


def _customer_index(entity_id: str) -> int:
    return int(entity_id[1:].split("-", 1)[0])


def _customer_of(entity_id: str) -> str:
    return entity_id.split("-", 1)[0]


class _Traffic:
    def __init__(
        self,
        databases: DemoDatabases,
        config: TrafficConfig,
        clock: Callable[[], datetime],
        counts: TrafficCounts,
    ) -> None:
        dataset = find_dataset(databases)
        if dataset is None:
            raise DemoError("the demo sources are not seeded yet: seed them before traffic")
        self.generator = GeneratorConfig.from_json(dataset)
        self.config = config
        self.clock = clock
        self.counts = counts
        self.rng = random.Random(config.seed)
        self.builder = WorldBuilder(self.generator)
        self.vocab = self.builder.vocab
        self.conns = {
            name: psycopg.connect(databases.url(name), autocommit=True)
            for name in (*SYSTEMS, "truth")
        }
        self.ids = self._resume_ids()
        self.builder.ids = self.ids
        self.writer = RecordWriter(self.vocab, self.ids)
        self.builder.writer = self.writer
        self.rows: dict[TableKey, _Pool] = {key: _Pool() for key in TABLES_BY_KEY}
        self.row_entity: dict[RowKey, str] = {}
        self.entity_rows: dict[str, set[RowKey]] = {}
        self.customers = _Pool()
        self.moved: dict[str, Address] = {}
        self.phones: dict[str, Phone] = {}
        self._load_truth()

    # ---- start-up --------------------------------------------------------------------------

    def _max(self, system: str, query: str) -> str | None:
        row = self.conns[system].execute(query).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def _resume_ids(self) -> IdAllocator:
        """Number ranges go on after the highest id ever issued: a deleted row's id is in
        the truth store and never comes back (as in the real systems)."""
        ids = IdAllocator(random.Random(self.config.seed ^ 0x2C92C0F8))

        def highest(system: str, table: str) -> str | None:
            query = (
                f'SELECT max(pk COLLATE "C") FROM {TRUTH_SCHEMA}.source_entity'
                f" WHERE system = '{system}' AND table_name = '{table}'"
            )
            column = PRIMARY_KEYS[(system, table)]
            candidates = [
                self._max("truth", query),
                self._max(system, f'SELECT max({column} COLLATE "C") FROM {table}'),
            ]
            return max((c for c in candidates if c is not None), default=None)

        crm_account = highest("crm", "account")
        crm_contact = highest("crm", "contact")
        number = self._max("billing", "SELECT max(accountnumber) FROM account")
        kunnr = highest("erp", "kna1")
        parnr = highest("erp", "knvk")
        if crm_account:
            ids.crm_account = max(ids.crm_account, salesforce_number(crm_account))
        if crm_contact:
            ids.crm_contact = max(ids.crm_contact, salesforce_number(crm_contact))
        if number:
            ids.account_number = max(ids.account_number, int(number[1:]))
        if kunnr:
            ids.kunnr = max(ids.kunnr, int(kunnr))
        if parnr:
            ids.parnr = max(ids.parnr, int(parnr))
        return ids

    def _load_truth(self) -> None:
        truth = self.conns["truth"]
        rows = truth.execute(
            f"SELECT system, table_name, pk, entity_id FROM {TRUTH_SCHEMA}.source_entity"
            " WHERE deleted_at IS NULL ORDER BY system, table_name, pk"
        )
        for system, table, pk, entity_id in rows:
            self._remember((system, table, pk), entity_id)
        for (entity_id,) in truth.execute(
            f"SELECT entity_id FROM {TRUTH_SCHEMA}.entity WHERE role = 'customer'"
            " ORDER BY entity_id"
        ):
            self.customers.add(entity_id)
        emails = truth.execute(
            f"SELECT jsonb_array_elements_text(attributes -> 'emails') FROM {TRUTH_SCHEMA}.entity"
            " WHERE attributes ? 'emails'"
        )
        self.builder.used_emails.update(email for (email,) in emails)
        self.next_index = 1 + max(
            (_customer_index(entity_id) for entity_id in self.customers.items), default=-1
        )

    def _remember(self, key: RowKey, entity_id: str) -> None:
        self.rows[(key[0], key[1])].add(key[2])
        self.row_entity[key] = entity_id
        self.entity_rows.setdefault(entity_id, set()).add(key)

    def _forget(self, key: RowKey) -> None:
        self.rows[(key[0], key[1])].remove(key[2])
        entity_id = self.row_entity.pop(key, None)
        if entity_id is not None:
            self.entity_rows.get(entity_id, set()).discard(key)

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()

    # ---- rebuilding customers -------------------------------------------------------------

    def _customer(self, customer_id: str) -> Customer:
        """The customer as traffic knows it now (see the module docstring)."""
        rows = (
            self.conns["truth"]
            .execute(
                f"SELECT entity_id, seed, attributes -> 'emails' FROM {TRUTH_SCHEMA}.entity"
                " WHERE customer_id = %s",
                (customer_id,),
            )
            .fetchall()
        )
        if not rows:
            raise DemoError(f"the truth store does not know customer {customer_id}")
        emails = {entity_id: (list(value) if value else []) for entity_id, _, value in rows}
        seed = next(seed for entity_id, seed, _ in rows if entity_id == customer_id)
        customer = build_customer(
            _customer_index(customer_id), int(seed), self.vocab, self.generator.shape
        )

        def current(person: Person) -> Person:
            known = emails.get(person.entity_id, [])
            email = known[0] if known else None
            phone = self.phones.get(person.entity_id, person.phone)
            if email == person.email and phone is person.phone:
                return person
            return replace(person, email=email, phone=phone)

        if customer.person is not None:
            person = current(customer.person)
            customer = replace(customer, person=person, email=person.email)
        else:
            known = emails.get(customer_id, [])
            customer = replace(
                customer,
                contacts=tuple(current(contact) for contact in customer.contacts),
                email=known[0] if known else customer.email,
            )
        phone = self.phones.get(customer_id)
        if phone is not None:
            customer = replace(customer, phone=phone)
        address = self.moved.get(customer_id)
        if address is not None:
            customer = replace(customer, address=address, previous_address=customer.address)
        return customer

    def _person(self, customer: Customer, entity_id: str) -> Person | None:
        if customer.person is not None and customer.person.entity_id == entity_id:
            return customer.person
        return next((c for c in customer.contacts if c.entity_id == entity_id), None)

    # ---- writing ------------------------------------------------------------------------------

    def _insert_rows(self, emitted: list[Emitted], now: datetime, new: list[Customer]) -> None:
        """Truth first, then the source rows (ordering step 1 of the module docstring)."""
        truth = self.conns["truth"]
        truth_rows = []
        seen = {
            (system, table, entity_id)
            for entity_id in {item.entity_id for item in emitted}
            for system, table, _ in self.entity_rows.get(entity_id, set())
        }
        for item in emitted:
            key = (item.system, item.table, item.pk)
            duplicate = (item.system, item.table, item.entity_id) in seen
            seen.add((item.system, item.table, item.entity_id))
            truth_rows.append((*key, item.entity_id, duplicate, "traffic", now))
        with truth.transaction():
            for customer in new:
                for row in self.builder_entity_rows(customer):
                    truth.execute(
                        sql.SQL("INSERT INTO {}.entity ({}) VALUES ({})").format(
                            sql.Identifier(TRUTH_SCHEMA),
                            sql.SQL(", ").join(map(sql.Identifier, TRUTH_ENTITY_COLUMNS)),
                            sql.SQL(", ").join(sql.Placeholder() * len(TRUTH_ENTITY_COLUMNS)),
                        ),
                        row,
                    )
            with truth.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {TRUTH_SCHEMA}.source_entity"
                    " (system, table_name, pk, entity_id, duplicate, origin, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    truth_rows,
                )
        try:
            by_system: dict[str, list[Emitted]] = {}
            for item in emitted:
                by_system.setdefault(item.system, []).append(item)
            for system, items in by_system.items():
                conn = self.conns[system]
                with conn.transaction(), conn.cursor() as cur:
                    for item in items:
                        table = TABLES_BY_KEY[(item.system, item.table)]
                        cur.execute(
                            sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                                sql.Identifier(table.name),
                                sql.SQL(", ").join(map(sql.Identifier, table.columns)),
                                sql.SQL(", ").join(sql.Placeholder() * len(table.columns)),
                            ),
                            item.row,
                        )
        except BaseException:
            with truth.transaction():
                truth.execute(
                    f"DELETE FROM {TRUTH_SCHEMA}.source_entity"
                    " WHERE (system, table_name, pk) IN (SELECT * FROM unnest(%s::text[],"
                    " %s::text[], %s::text[]))",
                    (
                        [row[0] for row in truth_rows],
                        [row[1] for row in truth_rows],
                        [row[2] for row in truth_rows],
                    ),
                )
                for customer in new:
                    truth.execute(
                        f"DELETE FROM {TRUTH_SCHEMA}.entity WHERE customer_id = %s",
                        (customer.entity_id,),
                    )
            raise
        for item in emitted:
            self._remember((item.system, item.table, item.pk), item.entity_id)
        for customer in new:
            self.customers.add(customer.entity_id)
        self.counts.rows_inserted += len(emitted)

    def builder_entity_rows(self, customer: Customer) -> list[tuple[Any, ...]]:
        batch = Batch()
        self.builder.entities(customer, batch)
        return batch.truth_entities

    def _update_truth(self, entity_id: str, attributes: dict[str, Any], now: datetime) -> None:
        with self.conns["truth"].transaction():
            self.conns["truth"].execute(
                f"UPDATE {TRUTH_SCHEMA}.entity SET attributes = attributes || %s::jsonb,"
                " updated_at = %s WHERE entity_id = %s",
                (json.dumps(attributes, ensure_ascii=False), now, entity_id),
            )

    def _update_row(self, key: RowKey, values: dict[str, Any], now: datetime) -> bool:
        """Update one source row (and its last-changed stamp, where the system keeps one)."""
        system, table, pk = key
        stamp = _CHANGED_STAMP.get(system)
        if stamp is not None:
            values = {**values, stamp: pacific(now) if system == "billing" else now}
        statement = sql.SQL("UPDATE {} SET {} WHERE {} = %s").format(
            sql.Identifier(table),
            sql.SQL(", ").join(
                sql.SQL("{} = %s").format(sql.Identifier(column)) for column in values
            ),
            sql.Identifier(PRIMARY_KEYS[(system, table)]),
        )
        conn = self.conns[system]
        with conn.transaction():
            cursor = conn.execute(statement, (*values.values(), pk))
        return cursor.rowcount == 1

    # ---- the transactions ----------------------------------------------------------------------

    def insert(self, now: datetime) -> bool:
        index = self.next_index
        self.next_index += 1
        customer = build_customer(index, self.rng.getrandbits(62), self.vocab, self.generator.shape)
        customer = self.builder.unique_emails(customer)
        system = _weighted(self.rng, _NEW_CUSTOMER_SYSTEMS)
        emitted = self.builder.system_records(customer, system, self.rng, False, now, now)
        self._insert_rows(emitted, now, [customer])
        self.counts.inserts += 1
        return True

    def duplicate(self, now: datetime) -> bool:
        if not len(self.customers):
            return False
        customer_id = self.customers.pick(self.rng)
        present = sorted(
            {
                system
                for system, table, _ in self.entity_rows.get(customer_id, set())
                if CUSTOMER_TABLES[system] == table
            }
        )
        absent = [system for system in SYSTEMS if system not in present]
        if present and (not absent or self.rng.random() < self.config.same_system_share):
            system, duplicate = present[int(self.rng.random() * len(present))], True
        else:
            system, duplicate = absent[int(self.rng.random() * len(absent))], False
        crm_ids = sorted(
            pk
            for system_, table, pk in self.entity_rows.get(customer_id, set())
            if (system_, table) == ("crm", "account")
        )
        crm_id = crm_ids[0] if crm_ids and self.rng.random() < 0.5 else None
        customer = self._customer(customer_id)
        emitted = self.builder.system_records(
            customer, system, self.rng, duplicate, now, now, crm_id
        )
        self._insert_rows(emitted, now, [])
        if duplicate:
            self.counts.duplicates += 1
        else:
            self.counts.arrivals += 1
        return True

    def _pick_row(self, tables: Iterable[TableKey]) -> RowKey | None:
        pools = [(key, self.rows[key]) for key in tables if len(self.rows[key])]
        total = sum(len(pool) for _, pool in pools)
        if total == 0:
            return None
        point = int(self.rng.random() * total)
        for (system, table), pool in pools:
            if point < len(pool):
                return (system, table, pool.items[point])
            point -= len(pool)
        return None

    def update(self, now: datetime) -> bool:
        contact_tables = [(system, table) for system, (table, _) in CONTACT_TABLES.items()]
        on_contact = self.rng.random() < 0.3
        key = self._pick_row(contact_tables if on_contact else list(CUSTOMER_TABLES.items()))
        if key is None:
            return False
        entity_id = self.row_entity[key]
        customer = self._customer(_customer_of(entity_id))
        roll = self.rng.random()
        if on_contact:
            changed = (
                self._change_phone(key, entity_id, customer, now)
                if roll < 0.5
                else self._change_email(key, entity_id, customer, now)
            )
        elif roll < 0.35:
            changed = self._change_phone(key, entity_id, customer, now)
        elif roll < 0.7 and key[0] != "erp":
            changed = self._change_email(key, entity_id, customer, now)
        else:
            changed = self._move(key, customer, now)
        if not changed:
            self._gone(key, now=now)
            return False
        self.counts.updates += 1
        return True

    def _bill_to(self, pk: str) -> str | None:
        row = (
            self.conns["billing"]
            .execute("SELECT billtoid FROM account WHERE id = %s", (pk,))
            .fetchone()
        )
        return None if row is None else row[0]

    def _move(self, key: RowKey, customer: Customer, now: datetime) -> bool:
        system, _, pk = key
        address = _new_address(self.rng, self.vocab, customer)
        moved = replace(customer, address=address, previous_address=None)
        rates = self.generator.corruption
        if system == "crm":
            row = self.writer.crm_account(moved, self.rng, rates, now, now, record_id=pk).row
            values = dict(
                zip(
                    (
                        "billingstreet",
                        "billingcity",
                        "billingstate",
                        "billingpostalcode",
                        "billingcountry",
                    ),
                    row[8:13],
                    strict=True,
                )
            )
            done = self._update_row(key, values, now)
        elif system == "billing":
            bill_to = self._bill_to(pk)
            if bill_to is None:
                return False
            _, contact = self.writer.billing_account(
                moved,
                self.rng,
                rates,
                now,
                now,
                crm_id=None,
                record_id=pk,
                contact_id=bill_to,
                account_number="unchanged",
            )
            values = dict(
                zip(
                    ("address1", "address2", "city", "state", "postalcode", "country"),
                    contact.row[6:12],
                    strict=True,
                )
            )
            done = self._update_row(("billing", "contact", bill_to), values, now)
        else:
            row = self.writer.erp_customer(moved, self.rng, rates, now, record_id=pk).row
            values = dict(zip(("stras", "ort01", "pstlz", "regio", "land1"), row[4:9], strict=True))
            done = self._update_row(key, values, now)
        if done:
            self.moved[customer.entity_id] = address
            self._update_truth(
                customer.entity_id, {"addresses": [address_attributes(address)]}, now
            )
        return done

    def _change_phone(self, key: RowKey, entity_id: str, customer: Customer, now: datetime) -> bool:
        if key[:2] == ("billing", "account"):
            bill_to = self._bill_to(key[2])
            if bill_to is None:
                return False
            key = ("billing", "contact", bill_to)
            entity_id = self.row_entity.get(key, entity_id)
        system, table, _ = key
        person = self._person(customer, entity_id)
        mobile = person is not None and self.rng.random() < 0.7
        phone = make_phone(customer.country, customer.address.city.area_code, self.rng, mobile)
        if system == "crm":
            text = self.writer.crm_phone(phone, self.rng)
            if table == "contact":
                column = "mobilephone" if phone.mobile else "phone"
            else:
                column = "personmobilephone" if person is not None and phone.mobile else "phone"
        elif system == "billing":
            text, column = self.writer.billing_phone(phone, self.rng), "workphone"
        else:
            text, column = self.writer.erp_phone(phone, self.rng, native=False), "telf1"
        done = self._update_row(key, {column: text}, now)
        if done:
            self.phones[entity_id] = phone
            self._update_truth(entity_id, {"phones": [phone.e164()]}, now)
        return done

    def _change_email(self, key: RowKey, entity_id: str, customer: Customer, now: datetime) -> bool:
        if key[:2] == ("billing", "account"):
            bill_to = self._bill_to(key[2])
            if bill_to is None:
                return False
            key = ("billing", "contact", bill_to)
            entity_id = self.row_entity.get(key, entity_id)
        person = self._person(customer, entity_id)
        column = _EMAIL_COLUMNS.get((key[0], key[1]))
        if person is None or column is None:
            # An organisation's account row has no e-mail field: its phone changes instead.
            return self._change_phone(key, entity_id, customer, now)
        if customer.domain is not None and self.rng.random() < 0.6:
            pattern = int(self.rng.random() * 6)
            email = company_mail_address(pattern, person.name, customer.domain)
        else:
            email = free_mail_address(self.rng, self.vocab, customer.country, person.name)
        while email in self.builder.used_emails:
            local, _, domain = email.partition("@")
            email = f"{local}{int(self.rng.random() * 1000)}@{domain}"
        self.builder.used_emails.add(email)
        done = self._update_row(key, {column: email}, now)
        if done:
            self._update_truth(entity_id, {"emails": [email]}, now)
        return done

    def amendment(self, now: datetime) -> bool:
        key = self._pick_row([("billing", "account")])
        if key is None:
            return False
        row = (
            self.conns["billing"]
            .execute(
                "SELECT currency, paymentterm, creditlimit FROM account WHERE id = %s", (key[2],)
            )
            .fetchone()
        )
        if row is None:
            self._gone(key, now=now)
            return False
        currency, term, limit = row
        terms = [t for t in PAYMENT_TERMS if t != term]
        new_term = terms[int(self.rng.random() * len(terms))]
        base = Decimal(limit) if limit is not None else Decimal(5000)
        new_limit = (base * Decimal(("1.5", "2", "3")[int(self.rng.random() * 3)])).quantize(
            Decimal("1")
        )
        values: dict[str, Any] = {"paymentterm": new_term, "creditlimit": new_limit}
        attributes: dict[str, Any] = {
            "payment_terms": new_term,
            "credit_limit": str(new_limit),
        }
        if self.rng.random() < 0.1:
            new_currency = "EUR" if currency == "USD" else "USD"
            values["currency"] = new_currency
            attributes["currency"] = new_currency
        charge = Decimal(int(self.rng.random() * 500_000)) / 100
        conn = self.conns["billing"]
        with conn.transaction():
            cursor = conn.execute(
                sql.SQL(
                    "UPDATE account SET {}, balance = balance + %s, updateddate = %s WHERE id = %s"
                ).format(
                    sql.SQL(", ").join(
                        sql.SQL("{} = %s").format(sql.Identifier(column)) for column in values
                    )
                ),
                (*values.values(), charge, pacific(now), key[2]),
            )
        if cursor.rowcount != 1:
            self._gone(key, now=now)
            return False
        self._update_truth(self.row_entity[key], attributes, now)
        self.counts.amendments += 1
        return True

    def delete(self, now: datetime) -> bool:
        # Zuora keeps an account's bill-to contact as long as the account: contact rows that
        # can go on their own are the CRM's and the ERP's.
        if self.rng.random() < 0.2:
            key = self._pick_row([("crm", "contact"), ("erp", "knvk")])
        else:
            key = self._pick_row(list(CUSTOMER_TABLES.items()))
        if key is None:
            return False
        system, table, pk = key
        conn = self.conns[system]
        gone = [key]
        with conn.transaction():
            if CUSTOMER_TABLES[system] == table:
                contact_table, column = CONTACT_TABLES[system]
                children = conn.execute(
                    sql.SQL("DELETE FROM {} WHERE {} = %s RETURNING {}").format(
                        sql.Identifier(contact_table),
                        sql.Identifier(column),
                        sql.Identifier(PRIMARY_KEYS[(system, contact_table)]),
                    ),
                    (pk,),
                ).fetchall()
                gone += [(system, contact_table, child) for (child,) in children]
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE {} = %s").format(
                    sql.Identifier(table), sql.Identifier(PRIMARY_KEYS[(system, table)])
                ),
                (pk,),
            )
        self._gone(*gone, now=now)
        self.counts.deletes += 1
        return True

    def _gone(self, *keys: RowKey, now: datetime) -> None:
        """Record rows as deleted in the truth store (ordering step 2)."""
        with self.conns["truth"].transaction(), self.conns["truth"].cursor() as cur:
            cur.executemany(
                f"UPDATE {TRUTH_SCHEMA}.source_entity SET deleted_at = %s"
                " WHERE system = %s AND table_name = %s AND pk = %s AND deleted_at IS NULL",
                [(now, *key) for key in keys],
            )
        for key in keys:
            self._forget(key)

    # ---- the loop --------------------------------------------------------------------------------

    def step(self) -> None:
        kind = _weighted(self.rng, self.config.mix.choices())
        action = getattr(self, kind)
        for attempt in range(4):
            try:
                if not action(self.clock()):
                    self.counts.skipped += 1
                return
            except _RETRYABLE:
                if attempt == 3:
                    raise
                self.counts.retries += 1
                time.sleep(0.05 * (attempt + 1))


def _weighted(rng: random.Random, choices: tuple[tuple[str, float], ...]) -> str:
    point = rng.random() * sum(weight for _, weight in choices)
    for item, weight in choices:
        point -= weight
        if point < 0:
            return item
    return choices[-1][0]


def _new_address(rng: random.Random, vocab: Vocabulary, customer: Customer) -> Address:
    same_city = customer.address.city if rng.random() < 0.5 else None
    return make_address(rng, vocab, customer.country, customer.kind, same_city)


def run_traffic(
    databases: DemoDatabases,
    config: TrafficConfig,
    stop: threading.Event,
    clock: Callable[[], datetime] | None = None,
    counts: TrafficCounts | None = None,
) -> TrafficCounts:
    """Run business transactions against the seeded sources until ``stop`` is set or
    ``config.max_transactions`` are done; returns what was done.

    Args:
        databases: the seeded demo databases.
        config: rate, seed, mix and limits.
        stop: set it (from any thread) to end the loop after the current transaction.
        clock: the time written into rows (timezone-aware UTC); the wall clock by default.
        counts: a ``TrafficCounts`` to update in place, for a caller that shows progress.

    Raises:
        DemoError: the world is not seeded, or a database failed (other than a retried
            serialization failure or deadlock).
    """
    counts = counts if counts is not None else TrafficCounts()
    clock = clock or (lambda: datetime.now(UTC))
    try:
        traffic = _Traffic(databases, config, clock, counts)
    except psycopg.Error as exc:
        raise DemoError(f"could not start the demo traffic: {exc}") from exc
    interval = None if not config.rate else 1.0 / config.rate
    next_at = time.monotonic()
    try:
        while not stop.is_set():
            if config.max_transactions is not None and (
                counts.transactions + counts.skipped >= config.max_transactions
            ):
                break
            traffic.step()
            if interval is None:
                continue
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                if stop.wait(delay):
                    break
            elif delay < -1.0:
                next_at = time.monotonic()  # fell behind: carry on, do not burst
    except psycopg.Error as exc:
        raise DemoError(f"demo traffic stopped: {exc}") from exc
    finally:
        traffic.close()
    return counts


__all__ = ["TrafficConfig", "TrafficCounts", "TrafficMix", "run_traffic"]
