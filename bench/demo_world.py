"""How long the demo world takes to generate and load, and how fast traffic runs.

Starts a throwaway embedded PostgreSQL, then for each N prints: generation alone (CPU
seconds), generate + COPY into the three sources and the truth store (wall and client CPU
seconds, rows), and the machine's load average (the box is shared: read wall times with it).
Finally runs 500 unpaced traffic transactions on the last world::

    .venv/bin/python bench/demo_world.py            # N = 10,000 and 100,000
    .venv/bin/python bench/demo_world.py 20000
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from mdh.demo import GeneratorConfig, TrafficConfig, run_traffic, seed_sources
from mdh.demo.generator import iter_batches
from mdh.demo.schemas import DemoDatabases
from mdh.demo.vocabulary import load_vocabulary
from mdh.embedded_pg import EmbeddedPostgres


def main(sizes: list[int]) -> None:
    load_vocabulary()
    with tempfile.TemporaryDirectory(prefix="mdh-bench-demo-") as home:
        server = EmbeddedPostgres(Path(home) / "pg")
        server.start()
        try:
            for customers in sizes:
                config = GeneratorConfig(customers=customers, seed=42)
                cpu = time.process_time()
                for _ in iter_batches(config):
                    pass
                generation = time.process_time() - cpu

                cpu, wall = time.process_time(), time.perf_counter()
                result = seed_sources(server, config, reset=True)
                wall = time.perf_counter() - wall
                cpu = time.process_time() - cpu
                rows = sum(result.rows.values())
                print(
                    f"{customers:>8,} customers: generation {generation:5.1f} s CPU;"
                    f" generate+load {wall:5.1f} s wall, {cpu:5.1f} s client CPU;"
                    f" {rows:,} source rows, {result.truth_rows:,} truth rows;"
                    f" load average {os.getloadavg()[0]:.1f}"
                )
            databases = DemoDatabases.on_server(server)
            wall = time.perf_counter()
            counts = run_traffic(
                databases, TrafficConfig(rate=None, max_transactions=500), threading.Event()
            )
            wall = time.perf_counter() - wall
            print(
                f"traffic: {counts.transactions} transactions in {wall:.1f} s"
                f" ({counts.transactions / wall:.0f}/s unpaced): {counts}"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [10_000, 100_000])
