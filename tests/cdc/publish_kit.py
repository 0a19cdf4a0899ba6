"""Test kit of the publishing tests: a real webhook receiver, a Tansu broker, a hub with
targets, golden changes to publish, and the demo sources captured by hand.

The receiver is a real HTTP server on a loopback port (``http.server``) that records every
request, checks its signature, answers with whatever status the test chooses and can go down
(its socket closed: connection refused) and come back on the same port.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.rows import dict_row
from sqlalchemy.engine import Engine

from cdc.envelope import ChangeEnvelope, Operation, SourceInfo
from cdc.mapping import ChangeMapper
from cdc.relay import OutboxRelay, RelaySettings
from cdc.targets import DeliveryTarget
from cdc.targets.webhook import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from hub.model import ChangeOp, SourceChange, SourceKey, SourcePosition
from hub.rules import default_rules
from hub.services import HubServices
from hub.tables import HUB_TABLES
from matching import MatchModel, default_spec
from mdh.demo import DemoDatabases
from mdh.demo.schemas import SOURCE_TABLES

SECRET = "test-secret-0123456789"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


# --- the webhook receiver -----------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One request the receiver got, and what it answered."""

    key: str
    golden_id: int
    version: int
    document: dict[str, Any]
    body: bytes
    headers: dict[str, str]
    signature_ok: bool
    status: int


Responder = Callable[[dict[str, Any]], int]


class WebhookReceiver:
    """A real HTTP server that records requests and answers as the test says.

    ``respond(document) -> status`` decides each answer (200 by default); ``delay`` slows
    every answer; ``down()`` closes the socket (connection refused) until ``up()``.
    """

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret.encode()
        self.received: list[Received] = []
        self.respond: Responder = lambda document: 200
        self.delay = 0.0
        self.overlaps: list[str] = []
        """Idempotency keys that were being handled twice at the same moment."""
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/golden"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver._handle(self, body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        headers = dict(handler.headers.items())
        key = headers.get(IDEMPOTENCY_HEADER, "")
        with self._lock:
            self._in_flight[key] += 1
            if self._in_flight[key] > 1:
                self.overlaps.append(key)
        try:
            if self.delay:
                time.sleep(self.delay)
            document = json.loads(body)
            expected = sign(self.secret, headers.get(TIMESTAMP_HEADER, ""), body)
            status = self.respond(document)
            with self._lock:
                self.received.append(
                    Received(
                        key=key,
                        golden_id=int(document["golden_id"]),
                        version=int(document["version"]),
                        document=document,
                        body=body,
                        headers=headers,
                        signature_ok=headers.get(SIGNATURE_HEADER) == expected,
                        status=status,
                    )
                )
        finally:
            with self._lock:
                self._in_flight[key] -= 1
        reply = b'{"ok": true}' if status < 300 else b'{"error": "refused by the test"}'
        # A client that gave up waiting (a timeout test) has closed the connection.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(reply)))
            handler.end_headers()
            handler.wfile.write(reply)

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def versions_by_golden(self) -> dict[int, list[int]]:
        """The versions each golden record was acknowledged with, in arrival order."""
        out: dict[int, list[int]] = {}
        for received in self.accepted():
            out.setdefault(received.golden_id, []).append(received.version)
        return out


@contextlib.contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.up()
    try:
        yield receiver
    finally:
        receiver.down()


def webhook_spec(url: str, **extra: Any) -> dict[str, Any]:
    """A webhook target's settings with fast retries (tests wait seconds, not minutes)."""
    return {
        "kind": "webhook",
        "url": url,
        "secret": SECRET,
        "delivery": {
            "max_attempts": 50,
            "initial_backoff_seconds": 0.05,
            "max_backoff_seconds": 0.3,
            "timeout_seconds": 5,
        },
        **extra,
    }


# --- a hub and golden changes ------------------------------------------------------------


def publish_hub(engine: Engine, targets: tuple[str, ...]) -> HubServices:
    """Hub services writing outbox rows for ``targets``, on empty tables."""
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(HUB_TABLES)} RESTART IDENTITY CASCADE"))
    return HubServices(
        engine, matcher=MatchModel.untrained(default_spec()), rules=default_rules(), targets=targets
    )


class Changes:
    """Source changes with growing positions: each ``put`` is newer than the last."""

    def __init__(self, hub: HubServices) -> None:
        self.hub = hub
        self.lsn = 0

    def put(self, pk: str, name: str, **attributes: Any) -> None:
        self.lsn += 1
        self.hub.apply_changes(
            [
                SourceChange(
                    key=SourceKey("crm", "customers", pk),
                    op=ChangeOp.UPSERT,
                    attributes={"legal_name": name, **attributes},
                    raw={"id": pk, "name": name},
                    position=SourcePosition(
                        lsn=self.lsn,
                        tx_id=self.lsn,
                        committed_at=datetime.now(UTC) - timedelta(milliseconds=5),
                    ),
                )
            ]
        )

    def delete(self, pk: str) -> None:
        self.lsn += 1
        self.hub.apply_changes(
            [
                SourceChange(
                    key=SourceKey("crm", "customers", pk),
                    op=ChangeOp.DELETE,
                    attributes={},
                    raw={"id": pk},
                    position=SourcePosition(self.lsn, self.lsn, datetime.now(UTC)),
                )
            ]
        )


COMPANY_NAMES = [
    "Aldergrove Timber",
    "Brightwater Optics",
    "Cobalt Harbor Freight",
    "Dunmore Quarry Works",
    "Elmstead Bakeries",
    "Foxglove Pharmacy",
    "Granite Peak Roofing",
    "Hollowell Dairy",
]


def outbox_rows(engine: Engine, target: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(
                sa.text("SELECT * FROM outbox WHERE target = :t ORDER BY id"), {"t": target}
            )
        ]


def relay_until_settled(
    hub: HubServices,
    targets: list[DeliveryTarget],
    *,
    timeout: float = 30.0,
    settings: RelaySettings | None = None,
    until: Callable[[], bool] | None = None,
) -> OutboxRelay:
    """Run a relay in threads until nothing is pending (or ``until`` holds), then stop it."""
    relay = OutboxRelay(hub, targets, settings=settings or RelaySettings(idle_wait=0.02), seed=7)
    relay.start()
    publishing = hub.publishing()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            done = (
                until() if until is not None else all(s.pending == 0 for s in publishing.status())
            )
            if done:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"not settled within {timeout}s: {publishing.status()}")
    finally:
        relay.stop.set()
        relay.join(30)
    return relay


# --- demo sources, captured by hand ------------------------------------------------------


def demo_rows(databases: DemoDatabases) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every row of the six demo tables, by (system, table)."""
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for table in SOURCE_TABLES:
        with psycopg.connect(databases.url(table.system), row_factory=dict_row) as conn:
            rows[table.key] = list(
                conn.execute(f"SELECT * FROM {table.name} ORDER BY {table.columns[0]}")
            )
    return rows


def capture_by_hand(
    hub: HubServices, databases: DemoDatabases, mapper: ChangeMapper, *, lsn: int
) -> int:
    """Read every demo row and apply it as a snapshot read would arrive from Debezium (the
    real mapping, without the engine); returns the next free LSN."""
    changes: list[SourceChange] = []
    committed = datetime.now(UTC)
    for (system, table), rows in demo_rows(databases).items():
        for found in rows:
            # As Debezium sends it with decimal.handling.mode=string (the demo's setting).
            row = {k: str(v) if isinstance(v, Decimal) else v for k, v in found.items()}
            key_column = next(t for t in SOURCE_TABLES if t.key == (system, table)).columns[0]
            envelope = ChangeEnvelope(
                Operation.READ,
                key={key_column: row[key_column]},
                before=None,
                after=row,
                source=SourceInfo("postgresql", system, system, "public", table, lsn),
            )
            change = mapper.map_change(envelope)
            assert change is not None
            position = SourcePosition(lsn=lsn, tx_id=lsn, committed_at=committed)
            changes.append(
                SourceChange(change.key, change.op, change.attributes, change.raw, position)
            )
            lsn += 1
    hub.apply_changes(changes)
    return lsn


# --- a small demo world ------------------------------------------------------------------

DEMO_TARGETS_YAML = Path(__file__).parent / "fixtures" / "demo_targets.yaml"

_WORLD = {
    "crm": [
        "INSERT INTO account (id, name, ispersonaccount, billingstreet, billingcity,"
        " billingpostalcode, billingcountry, phone, website, createddate, lastmodifieddate)"
        " VALUES ('001A0000000000001A', 'Acme Robotics GmbH', false, 'Hauptstr. 5', 'Berlin',"
        " '10115', 'Germany', '030 1234567', 'acme-robotics.example', now(), now())",
        "INSERT INTO contact (id, accountid, firstname, lastname, email, phone, createddate,"
        " lastmodifieddate) VALUES ('003A0000000000001A', '001A0000000000001A', 'Maria',"
        " 'Lopez', 'maria.lopez@acme-robotics.example', '030 1234568', now(), now())",
    ],
    "billing": [
        "INSERT INTO account (id, accountnumber, name, customertype__c, currency, paymentterm,"
        " billcycleday, status, vatid, billtoid, createddate, updateddate) VALUES"
        " ('2c92a0fd0000000000000000000000a1', 'A00000001', 'ACME Robotics', 'Business', 'EUR',"
        " 'Net 30', 1, 'Active', 'DE811907980', '2c92a0fd0000000000000000000000c1',"
        " now(), now())",
        "INSERT INTO contact (id, accountid, firstname, lastname, workemail, workphone,"
        " address1, city, postalcode, country, createddate, updateddate) VALUES"
        " ('2c92a0fd0000000000000000000000c1', '2c92a0fd0000000000000000000000a1', 'Jonas',"
        " 'Weber', 'ap@acme-robotics.example', '+49 30 1234500', 'Hauptstr. 5', 'Berlin',"
        " '10115', 'Germany', now(), now())",
    ],
    "erp": [
        "INSERT INTO kna1 (kunnr, name1, name2, stras, ort01, pstlz, land1, telf1, stceg,"
        " ktokd, erdat) VALUES ('0000100001', 'ACME ROBOTICS', 'GMBH', 'HAUPTSTR. 5',"
        " 'BERLIN', '10115', 'DE', '030 1234567', 'DE811907980', 'KUNA', '20240105')",
        "INSERT INTO knvk (parnr, kunnr, namev, name1, telf1, smtp_addr, pafkt) VALUES"
        " ('0000200001', '0000100001', 'MARIA', 'LOPEZ', '030 1234568',"
        " 'maria.lopez@acme-robotics.example', '01')",
    ],
}

ACME_CRM = SourceKey("crm", "account", "001A0000000000001A")
ACME_BILLING = SourceKey("billing", "account", "2c92a0fd0000000000000000000000a1")
ACME_ERP = SourceKey("erp", "kna1", "0000100001")
MARIA_CRM = SourceKey("crm", "contact", "003A0000000000001A")
MARIA_ERP = SourceKey("erp", "knvk", "0000200001")


def seed_world(databases: DemoDatabases) -> None:
    """Empty the demo tables and write Acme Robotics (a company in all three systems) and
    Maria Lopez (its contact person in the CRM and the ERP)."""
    for system, statements in _WORLD.items():
        with psycopg.connect(databases.url(system), autocommit=True) as conn:
            for table in SOURCE_TABLES:
                if table.system == system:
                    conn.execute(f"DELETE FROM {table.name}")
            for statement in statements:
                conn.execute(statement)


def source_row(databases: DemoDatabases, key: SourceKey) -> dict[str, Any]:
    table = next(t for t in SOURCE_TABLES if t.key == (key.system, key.table))
    with psycopg.connect(databases.url(key.system), row_factory=dict_row) as conn:
        row = conn.execute(
            f"SELECT *, xmin::text AS xmin FROM {table.name} WHERE {table.columns[0]} = %s",
            (key.pk,),
        ).fetchone()
    assert row is not None, key
    return row


def demo_config(databases: DemoDatabases, server_prefix: str = "") -> Any:
    """The shipped demo config with the demo write-back targets (the fixture file).

    ``server_prefix`` renames each source's Debezium server (``<prefix>crm``...), and so its
    replication slot, which is per server, not per database: tests stay off the demo's slots.
    """
    import yaml

    from mdh.config import parse_config
    from mdh.demo.runner import demo_config_path

    document = yaml.safe_load(demo_config_path().read_text(encoding="utf-8"))
    if server_prefix:
        for system, source in document["sources"].items():
            source["server_name"] = f"{server_prefix}{system}"
    document["targets"] = yaml.safe_load(DEMO_TARGETS_YAML.read_text(encoding="utf-8"))["targets"]
    environ = {
        "MDH_DEMO_CRM_URL": databases.crm,
        "MDH_DEMO_BILLING_URL": databases.billing,
        "MDH_DEMO_ERP_URL": databases.erp,
    }
    return parse_config(document, str(demo_config_path()), environ)
