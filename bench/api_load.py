"""API load from a second process on loopback: golden read by id under a steady request rate,
and the changes feed drained by one consumer.

The server is this script started again with ``--serve`` (uvicorn, one process, the real
matcher, auth on); the client is this process. Reads are open-loop: request ``i`` is sent at
``start + i / rate`` whether or not earlier ones have answered, so a slow server shows up as
latency instead of a lower rate. Latency is from send to the last byte of the answer.

    .venv/bin/python bench/api_load.py [--customers 8000] [--rate 200] [--seconds 20]

Starts a throwaway embedded PostgreSQL unless ``--url`` names a database.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from hub.db import create_engine, migrate
from hub.model import ChangeOp, SourceChange, SourceKey, SourcePosition
from hub.rules import default_rules
from hub.services import HubServices
from hub.services.keys import ApiRole, AuditContext
from matching import MatchModel, default_spec

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SYSTEMS = ("crm", "billing", "erp")
WORDS = [
    "North",
    "Blue",
    "Alpine",
    "Cedar",
    "Delta",
    "Ember",
    "Falcon",
    "Granite",
    "Harbor",
    "Iris",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Maple",
    "Nimbus",
    "Orchid",
    "Pioneer",
    "Quartz",
    "Raven",
    "Summit",
    "Tidal",
    "Umber",
    "Vertex",
    "Willow",
    "Xenon",
    "Yarrow",
    "Zephyr",
    "Atlas",
    "Beacon",
    "Cobalt",
]
KINDS = ("Logistics", "Foods", "Systems", "Partners", "Labs", "Retail", "Energy", "Media")


def hub_services(url: str, pool_size: int = 10) -> HubServices:
    return HubServices(
        create_engine(url, pool_size=pool_size),
        matcher=MatchModel.untrained(default_spec()),
        rules=default_rules(),
        targets=("crm", "billing"),
    )


def customers(n: int, seed: int = 7) -> list[SourceChange]:
    rng = random.Random(seed)
    changes = []
    for i in range(n):
        name = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(KINDS)} {i}"
        system = SYSTEMS[i % 3]
        attributes: dict[str, Any] = {
            "kind": "organization",
            "legal_name": name,
            "emails": [f"billing{i}@example{i % 97}.test"],
            "phones": [f"+1 415 {rng.randrange(200, 999)} {i % 10000:04d}"],
            "addresses": [
                {"city": "Springfield", "postal_code": f"{10000 + i % 9000}", "country": "US"}
            ],
        }
        changes.append(
            SourceChange(
                key=SourceKey(system, "customers", str(i)),
                op=ChangeOp.UPSERT,
                attributes=attributes,
                raw={"id": i, "name": name},
                position=SourcePosition(
                    lsn=i + 1, tx_id=None, committed_at=T0 + timedelta(milliseconds=i)
                ),
            )
        )
    return changes


def load(url: str, n: int) -> tuple[str, list[int]]:
    """Fill the store with ``n`` customers; returns a reader token and the golden ids."""
    hub = hub_services(url, pool_size=2)
    changes = customers(n)
    started = time.perf_counter()
    for offset in range(0, n, 1000):
        hub.apply_changes(changes[offset : offset + 1000])
    print(f"loaded {n} source records in {time.perf_counter() - started:.1f} s", flush=True)
    token = (
        hub.desk(AuditContext("bench", ApiRole.ADMIN))
        .create_api_key("bench-reader", ApiRole.READER)
        .token
    )
    ids = sorted({e.golden_id for e in hub.changes_after(0, 10 * n)})
    hub.engine.dispose()
    return token, ids


def serve(url: str, port: int) -> None:
    import uvicorn

    from api.app import create_app
    from api.context import ApiSettings

    app = create_app(hub_services(url), ApiSettings())
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(max(math.ceil(fraction * len(ordered)), 1), len(ordered)) - 1]


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol for GETs: the
    load generator must cost far less than the server it measures (a general client spends
    about a millisecond of CPU per request, which on two shared cores is the whole budget)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def get(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length)
        return status, body

    def close(self) -> None:
        self.writer.close()


def get_request(path: str, token: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()


async def golden_reads(
    port: int, token: str, ids: list[int], rate: float, seconds: float, connections: int = 64
) -> dict[str, float]:
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await Connection.open(port))
    requests = {i: get_request(f"/v1/golden/{i}", token) for i in ids}
    latencies: list[float] = []
    errors = 0

    async def one(golden_id: int, scheduled: float) -> None:
        nonlocal errors
        connection = await idle.get()
        try:
            status, _ = await connection.get(requests[golden_id])
        finally:
            idle.put_nowait(connection)
        # From the moment it was due: waiting for a free connection counts as latency.
        latencies.append((time.perf_counter() - scheduled) * 1000)
        if status != 200:
            errors += 1

    for golden_id in ids[:200]:  # warm-up: caches, the key, the pool
        await one(golden_id, time.perf_counter())
    latencies.clear()
    total = int(rate * seconds)
    rng = random.Random(11)
    tasks = []
    start = time.perf_counter()
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(rng.choice(ids), due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait().close()
    return {
        "requests": total,
        "achieved_rate": total / elapsed,
        "errors": errors,
        "p50_ms": percentile(latencies, 0.50),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
    }


def drain_feed(base: str, token: str, limit: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}"}
    events = 0
    cursor = 0
    pages = 0
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        started = time.perf_counter()
        while True:
            page = client.get("/v1/changes", params={"after": cursor, "limit": limit}).json()
            events += len(page["events"])
            pages += 1
            cursor = page["next_cursor"]
            if not page["has_more"]:
                break
        elapsed = time.perf_counter() - started
    return {"events": events, "pages": pages, "seconds": elapsed, "events_per_s": events / elapsed}


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=8000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--page", type=int, default=1000, help="changes feed page size")
    parser.add_argument("--url", help="hub database (SQLAlchemy URL); default: throwaway")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.url, args.port)
        return

    server_pg = None
    url = args.url
    if url is None:
        from mdh.embedded_pg import EmbeddedPostgres

        server_pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="mdh-api-bench-")) / "pg")
        server_pg.start()
        server_pg.ensure_database("api_bench")
        url = server_pg.url("api_bench")
    try:
        migrate(url)
        token, ids = load(url, args.customers)
        port = free_port()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        api = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--url", url, "--port", str(port)], env=env
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the API server did not start")
                time.sleep(0.2)
            cpu_before = process_cpu_seconds(api.pid)
            reads = asyncio.run(golden_reads(port, token, ids, args.rate, args.seconds))
            cpu_reads = process_cpu_seconds(api.pid) - cpu_before
            cpu_before = process_cpu_seconds(api.pid)
            feed = drain_feed(base, token, args.page)
            cpu_feed = process_cpu_seconds(api.pid) - cpu_before
        finally:
            api.terminate()
            api.wait(timeout=30)
        print(
            f"golden read by id at {args.rate:.0f} req/s for {args.seconds:.0f} s "
            f"({reads['requests']:.0f} requests, achieved {reads['achieved_rate']:.1f}/s, "
            f"{reads['errors']:.0f} errors): p50 {reads['p50_ms']:.2f} ms, "
            f"p95 {reads['p95_ms']:.2f} ms, p99 {reads['p99_ms']:.2f} ms "
            f"(target <= 10 ms), max {reads['max_ms']:.1f} ms; server CPU "
            f"{cpu_reads / reads['requests'] * 1000:.2f} ms per request"
        )
        print(
            f"changes feed, one consumer, pages of {args.page}: {feed['events']:.0f} events in "
            f"{feed['seconds']:.2f} s = {feed['events_per_s']:,.0f} events/s (target >= 5,000); "
            f"server CPU {cpu_feed / max(feed['events'], 1) * 1e6:.0f} us per event"
        )
        print(f"load average during the run: {os.getloadavg()[0]:.1f} (2 cores, shared)")
    finally:
        if server_pg is not None:
            server_pg.stop()


if __name__ == "__main__":
    main()
