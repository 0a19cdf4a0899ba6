"""The demo's databases: the CRM, billing and ERP source schemas and the ground-truth store.

Three source databases on one server, each as its vendor would have it replicated into
PostgreSQL, plus a fourth database for the truth the generator knows and no system does:

- ``crm`` (Salesforce): ``account`` (business and person accounts) and ``contact``.
- ``billing`` (Zuora): ``account`` and its bill-to ``contact``.
- ``erp`` (SAP customer master): ``kna1`` (customers) and ``knvk`` (contact persons).
- ``demo_truth``: schema ``truth`` with ``entity`` (every real customer and contact person,
  with its true current attributes), ``source_entity`` (which real entity each source row
  describes) and ``dataset`` (how the world was generated).

Conventions, chosen for Debezium and psql:

- Identifiers are lower case and unquoted. Column names are the vendor's documented field
  names lower-cased without added underscores (Salesforce ``BillingPostalCode`` ->
  ``billingpostalcode``, Zuora ``PaymentTerm`` -> ``paymentterm``, SAP ``SMTP_ADDR`` ->
  ``smtp_addr``), so each column maps one-to-one to the vendor documentation. Zuora custom
  fields keep their ``__c`` suffix (``customertype__c``). mdh's own column is
  ``mdh_golden_id`` (nullable; the hub writes the golden id back into it).
- Every table has a primary key, the vendor's record id as text (Salesforce 18-character
  ids, Zuora 32-hex ids, SAP zero-padded KUNNR/PARNR).
- ``REPLICA IDENTITY FULL`` on every table: a delete event then carries the whole deleted
  row, so the hub can show stewards what disappeared and the dead-letter store keeps a
  complete image; update events carry the before-image, which echo detection of the hub's
  own write-backs can compare against. The cost (larger WAL for updates) is small at demo
  volumes.
- No foreign keys, as in SAP (which keeps its relations in the application) and in
  replicated copies of Salesforce and Zuora: the application deletes a customer's contacts
  in the same transaction as the customer (as ``traffic`` does). Reference columns are
  indexed.
- Timestamps differ by system, as they do in real life: the CRM writes ``timestamptz``,
  billing writes its tenant's local time (Pacific Standard Time, UTC-8) in a ``timestamp``
  without zone, the ERP writes ``erdat`` as SAP's DATS text ``YYYYMMDD``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import psycopg
from psycopg import sql

from mdh.embedded_pg import EmbeddedPostgres

SYSTEMS: tuple[str, ...] = ("crm", "billing", "erp")
TRUTH_DATABASE = "demo_truth"
TRUTH_SCHEMA = "truth"


@dataclass(frozen=True)
class TableSpec:
    system: str
    name: str
    columns: tuple[str, ...]
    """The columns the generator writes, in COPY order."""
    ddl: str
    indexes: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.system, self.name)


CRM_ACCOUNT = TableSpec(
    "crm",
    "account",
    (
        "id",
        "name",
        "ispersonaccount",
        "firstname",
        "lastname",
        "personemail",
        "personmobilephone",
        "personbirthdate",
        "billingstreet",
        "billingcity",
        "billingstate",
        "billingpostalcode",
        "billingcountry",
        "phone",
        "website",
        "industry",
        "type",
        "numberofemployees",
        "createddate",
        "lastmodifieddate",
    ),
    """
    CREATE TABLE IF NOT EXISTS account (
        id                 varchar(18)  PRIMARY KEY,
        name               varchar(255) NOT NULL,
        ispersonaccount    boolean      NOT NULL DEFAULT false,
        firstname          varchar(40),
        lastname           varchar(80),
        personemail        varchar(80),
        personmobilephone  varchar(40),
        personbirthdate    date,
        billingstreet      varchar(255),
        billingcity        varchar(40),
        billingstate       varchar(80),
        billingpostalcode  varchar(20),
        billingcountry     varchar(80),
        phone              varchar(40),
        website            varchar(255),
        industry           varchar(255),
        type               varchar(255),
        numberofemployees  integer,
        createddate        timestamptz  NOT NULL,
        lastmodifieddate   timestamptz  NOT NULL,
        mdh_golden_id      varchar(64)
    )""",
)

CRM_CONTACT = TableSpec(
    "crm",
    "contact",
    (
        "id",
        "accountid",
        "firstname",
        "lastname",
        "email",
        "phone",
        "mobilephone",
        "title",
        "createddate",
        "lastmodifieddate",
    ),
    """
    CREATE TABLE IF NOT EXISTS contact (
        id                 varchar(18)  PRIMARY KEY,
        accountid          varchar(18),
        firstname          varchar(40),
        lastname           varchar(80)  NOT NULL,
        email              varchar(80),
        phone              varchar(40),
        mobilephone        varchar(40),
        title              varchar(128),
        createddate        timestamptz  NOT NULL,
        lastmodifieddate   timestamptz  NOT NULL,
        mdh_golden_id      varchar(64)
    )""",
    ("CREATE INDEX IF NOT EXISTS contact_accountid_idx ON contact (accountid)",),
)

BILLING_ACCOUNT = TableSpec(
    "billing",
    "account",
    (
        "id",
        "accountnumber",
        "name",
        "customertype__c",
        "currency",
        "paymentterm",
        "billcycleday",
        "status",
        "balance",
        "creditlimit",
        "vatid",
        "crmid",
        "billtoid",
        "createddate",
        "updateddate",
    ),
    """
    CREATE TABLE IF NOT EXISTS account (
        id                 varchar(32)  PRIMARY KEY,
        accountnumber      varchar(70)  NOT NULL UNIQUE,
        name               varchar(255) NOT NULL,
        customertype__c    varchar(20),
        currency           varchar(3)   NOT NULL,
        paymentterm        varchar(100),
        billcycleday       smallint     NOT NULL,
        status             varchar(20)  NOT NULL,
        balance            numeric(18,2) NOT NULL DEFAULT 0,
        creditlimit        numeric(18,2),
        vatid              varchar(25),
        crmid              varchar(100),
        billtoid           varchar(32),
        createddate        timestamp    NOT NULL,
        updateddate        timestamp    NOT NULL,
        mdh_golden_id      varchar(64)
    )""",
)

BILLING_CONTACT = TableSpec(
    "billing",
    "contact",
    (
        "id",
        "accountid",
        "firstname",
        "lastname",
        "workemail",
        "workphone",
        "address1",
        "address2",
        "city",
        "state",
        "postalcode",
        "country",
        "createddate",
        "updateddate",
    ),
    """
    CREATE TABLE IF NOT EXISTS contact (
        id                 varchar(32)  PRIMARY KEY,
        accountid          varchar(32)  NOT NULL,
        firstname          varchar(100),
        lastname           varchar(100) NOT NULL,
        workemail          varchar(80),
        workphone          varchar(40),
        address1           varchar(255),
        address2           varchar(255),
        city               varchar(40),
        state              varchar(50),
        postalcode         varchar(20),
        country            varchar(64),
        createddate        timestamp    NOT NULL,
        updateddate        timestamp    NOT NULL,
        mdh_golden_id      varchar(64)
    )""",
    ("CREATE INDEX IF NOT EXISTS contact_accountid_idx ON contact (accountid)",),
)

ERP_KNA1 = TableSpec(
    "erp",
    "kna1",
    (
        "kunnr",
        "anred",
        "name1",
        "name2",
        "stras",
        "ort01",
        "pstlz",
        "regio",
        "land1",
        "telf1",
        "stceg",
        "stcd1",
        "stkzn",
        "spras",
        "ktokd",
        "erdat",
    ),
    """
    CREATE TABLE IF NOT EXISTS kna1 (
        kunnr              varchar(10)  PRIMARY KEY,
        anred              varchar(15),
        name1              varchar(35)  NOT NULL,
        name2              varchar(35),
        stras              varchar(60),
        ort01              varchar(35),
        pstlz              varchar(10),
        regio              varchar(3),
        land1              varchar(3)   NOT NULL,
        telf1              varchar(30),
        stceg              varchar(20),
        stcd1              varchar(16),
        stkzn              varchar(1),
        spras              varchar(1),
        ktokd              varchar(4)   NOT NULL,
        erdat              varchar(8)   NOT NULL,
        mdh_golden_id      varchar(64)
    )""",
)

ERP_KNVK = TableSpec(
    "erp",
    "knvk",
    ("parnr", "kunnr", "namev", "name1", "telf1", "smtp_addr", "pafkt"),
    """
    CREATE TABLE IF NOT EXISTS knvk (
        parnr              varchar(10)  PRIMARY KEY,
        kunnr              varchar(10)  NOT NULL,
        namev              varchar(35),
        name1              varchar(35)  NOT NULL,
        telf1              varchar(30),
        smtp_addr          varchar(241),
        pafkt              varchar(2),
        mdh_golden_id      varchar(64)
    )""",
    ("CREATE INDEX IF NOT EXISTS knvk_kunnr_idx ON knvk (kunnr)",),
)

SOURCE_TABLES: tuple[TableSpec, ...] = (
    CRM_ACCOUNT,
    CRM_CONTACT,
    BILLING_ACCOUNT,
    BILLING_CONTACT,
    ERP_KNA1,
    ERP_KNVK,
)
TABLES_BY_KEY: dict[tuple[str, str], TableSpec] = {table.key: table for table in SOURCE_TABLES}
PRIMARY_KEYS: dict[tuple[str, str], str] = {table.key: table.columns[0] for table in SOURCE_TABLES}
CUSTOMER_TABLES: dict[str, str] = {"crm": "account", "billing": "account", "erp": "kna1"}
CONTACT_TABLES: dict[str, tuple[str, str]] = {
    "crm": ("contact", "accountid"),
    "billing": ("contact", "accountid"),
    "erp": ("knvk", "kunnr"),
}
"""Per system: the contact table and its column referring to the customer table."""

TRUTH_ENTITY_COLUMNS = (
    "entity_id",
    "kind",
    "role",
    "customer_id",
    "country",
    "seed",
    "attributes",
    "created_at",
)
TRUTH_SOURCE_COLUMNS = (
    "system",
    "table_name",
    "pk",
    "entity_id",
    "duplicate",
    "origin",
    "created_at",
)

TRUTH_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {TRUTH_SCHEMA}",
    f"""
    CREATE TABLE IF NOT EXISTS {TRUTH_SCHEMA}.entity (
        entity_id    text        CONSTRAINT entity_pkey PRIMARY KEY,
        kind         text        NOT NULL CHECK (kind IN ('organization', 'person')),
        role         text        NOT NULL CHECK (role IN ('customer', 'contact')),
        customer_id  text        NOT NULL,
        country      varchar(2)  NOT NULL,
        seed         bigint      NOT NULL,
        attributes   jsonb       NOT NULL,
        created_at   timestamptz NOT NULL,
        updated_at   timestamptz
    )""",
    f"""
    CREATE TABLE IF NOT EXISTS {TRUTH_SCHEMA}.source_entity (
        system       text        NOT NULL,
        table_name   text        NOT NULL,
        pk           text        NOT NULL,
        entity_id    text        NOT NULL,
        duplicate    boolean     NOT NULL,
        origin       text        NOT NULL CHECK (origin IN ('seed', 'traffic')),
        created_at   timestamptz NOT NULL,
        deleted_at   timestamptz,
        CONSTRAINT source_entity_pkey PRIMARY KEY (system, table_name, pk)
    )""",
    f"CREATE INDEX IF NOT EXISTS source_entity_entity_idx ON {TRUTH_SCHEMA}.source_entity (entity_id)",
    f"CREATE INDEX IF NOT EXISTS entity_customer_idx ON {TRUTH_SCHEMA}.entity (customer_id)",
    f"""
    CREATE TABLE IF NOT EXISTS {TRUTH_SCHEMA}.dataset (
        id            integer     PRIMARY KEY CHECK (id = 1),
        seed          bigint      NOT NULL,
        customers     integer     NOT NULL,
        config        jsonb       NOT NULL,
        generated_at  timestamptz NOT NULL
    )""",
)

TRUTH_INDEXES: tuple[tuple[str, str], ...] = (
    (
        f"ALTER TABLE {TRUTH_SCHEMA}.source_entity DROP CONSTRAINT source_entity_pkey",
        f"ALTER TABLE {TRUTH_SCHEMA}.source_entity"
        " ADD CONSTRAINT source_entity_pkey PRIMARY KEY (system, table_name, pk)",
    ),
    (
        f"DROP INDEX {TRUTH_SCHEMA}.source_entity_entity_idx",
        f"CREATE INDEX source_entity_entity_idx ON {TRUTH_SCHEMA}.source_entity (entity_id)",
    ),
    (
        f"ALTER TABLE {TRUTH_SCHEMA}.entity DROP CONSTRAINT entity_pkey",
        f"ALTER TABLE {TRUTH_SCHEMA}.entity ADD CONSTRAINT entity_pkey PRIMARY KEY (entity_id)",
    ),
    (
        f"DROP INDEX {TRUTH_SCHEMA}.entity_customer_idx",
        f"CREATE INDEX entity_customer_idx ON {TRUTH_SCHEMA}.entity (customer_id)",
    ),
)
"""(drop, create) of the truth store's indexes: a bulk load into the empty store drops them and
builds them once at the end, which is several times faster than maintaining them row by row."""


class DemoError(RuntimeError):
    """The demo world could not be created, seeded or driven."""


@dataclass(frozen=True)
class DemoDatabases:
    """Where the demo's four databases are: libpq URLs (``postgresql://...``).

    ``admin`` is a URL of a maintenance database on the same server from which missing
    databases are created; without it the databases must exist already.
    """

    crm: str
    billing: str
    erp: str
    truth: str
    admin: str | None = None

    @classmethod
    def on_server(cls, server: EmbeddedPostgres, prefix: str = "") -> DemoDatabases:
        """The demo databases on the embedded server, named ``<prefix>crm`` and so on."""

        def url(name: str) -> str:
            return server.url(name, driver="postgresql")

        return cls(
            crm=url(f"{prefix}crm"),
            billing=url(f"{prefix}billing"),
            erp=url(f"{prefix}erp"),
            truth=url(f"{prefix}{TRUTH_DATABASE}"),
            admin=url("postgres"),
        )

    def url(self, system: str) -> str:
        """The URL of a source system's database, or of the truth store for "truth"."""
        urls = {"crm": self.crm, "billing": self.billing, "erp": self.erp, "truth": self.truth}
        try:
            return urls[system]
        except KeyError:
            raise DemoError(f"unknown demo database {system!r}") from None

    def __repr__(self) -> str:
        # URLs carry the password; never print them.
        names = ", ".join(
            f"{system}={_database_name(self.url(system))}" for system in (*SYSTEMS, "truth")
        )
        return f"DemoDatabases({names})"


def _database_name(url: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(url).get("dbname") or "?")


def _ensure_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            # Another process may create it at the same moment: that is as good.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _create_source_tables(url: str, system: str, reset: bool) -> None:
    tables = [table for table in SOURCE_TABLES if table.system == system]
    with psycopg.connect(url) as conn:
        if reset:
            for table in tables:
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table.name)))
        for table in tables:
            conn.execute(table.ddl)
            for index in table.indexes:
                conn.execute(index)
            conn.execute(
                sql.SQL("ALTER TABLE {} REPLICA IDENTITY FULL").format(sql.Identifier(table.name))
            )


def _create_truth(url: str, reset: bool) -> None:
    with psycopg.connect(url) as conn:
        if reset:
            conn.execute(f"DROP SCHEMA IF EXISTS {TRUTH_SCHEMA} CASCADE")
        for statement in TRUTH_DDL:
            conn.execute(statement)


def create_sources(
    target: EmbeddedPostgres | DemoDatabases, reset: bool = False, prefix: str = ""
) -> DemoDatabases:
    """Create the CRM, billing and ERP databases, their tables and the truth store.

    Idempotent: what exists is kept (``CREATE ... IF NOT EXISTS``). With ``reset`` the demo
    tables and the truth schema are dropped and created empty; the databases themselves are
    kept, because a database with a replication slot cannot be dropped (CDC slots and
    publications are the capture's to reset).

    Args:
        target: the embedded server (databases named ``<prefix>crm`` ...), or explicit URLs.
        reset: start over with empty tables.
        prefix: database name prefix on an embedded server (tests use it to stay apart).

    Returns:
        The URLs of the four databases.
    """
    databases = (
        DemoDatabases.on_server(target, prefix) if isinstance(target, EmbeddedPostgres) else target
    )
    try:
        if databases.admin is not None:
            for system in (*SYSTEMS, "truth"):
                _ensure_database(databases.admin, _database_name(databases.url(system)))
        for system in SYSTEMS:
            _create_source_tables(databases.url(system), system, reset)
        _create_truth(databases.truth, reset)
    except psycopg.Error as exc:
        raise DemoError(f"could not create the demo databases: {exc}") from exc
    return databases
