"""Throughput of ``HubServices.apply_changes`` on a real PostgreSQL, with the real matcher.

Synthetic customers (with noisy duplicates, see ``bench/synthetic.py``) arrive as CRM, billing
and ERP changes in batches of 1,000. Prints changes per second for:

- the initial load, batch by batch, as the store grows;
- 1,000 new arrivals (half of them duplicates of stored customers) into the loaded store;
- the same batch re-delivered without its position (every change is stale);
- 1,000 echoes: updates with a newer commit time and unchanged values (no new versions).

Starts a throwaway embedded PostgreSQL unless ``--url`` names a database::

    .venv/bin/python bench/hub_apply.py [--customers 5000] [--url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hub.db import create_engine, migrate
from hub.model import ChangeOp, SourceChange, SourceKey, SourcePosition
from hub.rules import default_rules
from hub.services import HubServices
from matching import MatchModel, default_spec
from synthetic import Record, generate_customers, new_arrivals, with_duplicates

SYSTEMS = ("crm", "billing", "erp")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
BATCH = 1000


def canonical(record: Record) -> dict[str, Any]:
    """The synthetic record in the canonical shape a source mapping would produce."""
    attributes: dict[str, Any] = {
        "kind": "organization" if record.get("legal_name") else "person",
    }
    for name in ("legal_name", "given_name", "family_name", "tax_id", "website"):
        if record.get(name):
            attributes[name] = record[name]
    if record.get("dob"):
        attributes["date_of_birth"] = record["dob"]
    if record.get("email"):
        attributes["emails"] = [record["email"]]
    if record.get("phone"):
        attributes["phones"] = [record["phone"]]
    if record.get("address"):
        lines = [record["address"]] + ([record["unit"]] if record.get("unit") else [])
        attributes["addresses"] = [
            {
                "lines": lines,
                "city": record.get("city"),
                "region": record.get("region"),
                "postal_code": record.get("postcode"),
                "country": record.get("country"),
            }
        ]
    return attributes


def to_changes(records: Sequence[Record], start: int) -> list[SourceChange]:
    changes = []
    for offset, record in enumerate(records):
        index = start + offset
        system = SYSTEMS[index % len(SYSTEMS)]
        changes.append(
            SourceChange(
                key=SourceKey(system, "customers", str(record["record_id"])),
                op=ChangeOp.UPSERT,
                attributes=canonical(record),
                raw={k: v for k, v in record.items() if v is not None},
                position=SourcePosition(
                    lsn=index + 1, tx_id=index + 1, committed_at=T0 + timedelta(seconds=index)
                ),
            )
        )
    return changes


def timed(hub: HubServices, batch: Sequence[SourceChange]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = hub.apply_changes(batch)
    return time.perf_counter() - started, result


def run(url: str, customers: int) -> None:
    migrate(url)
    engine = create_engine(url)
    hub = HubServices(
        engine,
        matcher=MatchModel.untrained(default_spec()),
        rules=default_rules(),
        targets=("crm", "billing", "erp"),
    )
    stored = generate_customers(customers, seed=7)
    load = to_changes(with_duplicates(stored, 0.3, seed=7), 0)
    print(f"initial load: {len(load)} changes in batches of {BATCH}")
    total = 0.0
    for start in range(0, len(load), BATCH):
        seconds, result = timed(hub, load[start : start + BATCH])
        total += seconds
        print(
            f"  batch {start // BATCH + 1:3d}: {len(result.goldens_created):4d} new golden,"
            f" {len(result.review_tasks_opened):3d} review tasks,"
            f" {BATCH / seconds:7.0f} changes/s"
        )
    print(f"  overall {len(load) / total:.0f} changes/s")

    arrivals = to_changes(new_arrivals(stored, BATCH, seed=7), len(load))
    seconds, result = timed(hub, arrivals)
    print(
        f"1,000 arrivals into the loaded store: {seconds:.2f} s ({BATCH / seconds:.0f} changes/s),"
        f" {len(result.goldens_created)} new golden, {len(result.goldens_changed)} changed"
    )
    seconds, result = timed(hub, arrivals)
    print(f"same batch re-delivered: {seconds:.2f} s, {result.stale} stale, nothing written")
    echoes = [
        replace(
            change,
            position=replace(
                change.position,
                lsn=(change.position.lsn or 0) + 10**6,
                committed_at=change.position.committed_at + timedelta(days=1),
            ),
        )
        for change in arrivals
    ]
    seconds, result = timed(hub, echoes)
    print(
        f"1,000 echoes (newer commit, same values): {seconds:.2f} s "
        f"({BATCH / seconds:.0f} changes/s), {len(result.goldens_changed)} new versions"
    )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--url", help="SQLAlchemy URL of an empty database to use")
    args = parser.parse_args()
    if args.url:
        run(args.url, args.customers)
        return
    from mdh.embedded_pg import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="mdh-bench-") as home:
        server = EmbeddedPostgres(Path(home) / "pg")
        server.start()
        try:
            server.ensure_database("bench")
            run(server.url("bench"), args.customers)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
