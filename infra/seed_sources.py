"""Seed the demo's CRM, billing and ERP databases of the compose deployment, then (optionally)
run live traffic against them until SIGTERM.

The same world and traffic as `mdh demo` (``mdh.demo``), written into the three source
PostgreSQL servers of infra/compose.yaml instead of the embedded one, with the ground truth
in a ``demo_truth`` database on the hub's server. Idempotent: a world already seeded with the
same settings is kept (traffic resumes); other settings stop with an error asking for a reset.

    python infra/seed_sources.py --customers 10000 --seed 42 --rate 5

Database URLs come from MDH_DEMO_CRM_URL, MDH_DEMO_BILLING_URL, MDH_DEMO_ERP_URL and
MDH_DEMO_TRUTH_URL (libpq URLs; the databases must exist).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from types import FrameType

from mdh.demo import DemoDatabases, DemoError, GeneratorConfig, TrafficConfig, run_traffic
from mdh.demo.generator import seed_sources

URL_VARIABLES = {
    "crm": "MDH_DEMO_CRM_URL",
    "billing": "MDH_DEMO_BILLING_URL",
    "erp": "MDH_DEMO_ERP_URL",
    "truth": "MDH_DEMO_TRUTH_URL",
}


def databases_from(environ: Mapping[str, str]) -> DemoDatabases:
    missing = [name for name in URL_VARIABLES.values() if not environ.get(name)]
    if missing:
        raise DemoError(f"set {', '.join(missing)} (libpq URLs of existing databases)")
    return DemoDatabases(**{system: environ[name] for system, name in URL_VARIABLES.items()})


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="traffic transactions per second (0: seed only)"
    )
    parser.add_argument(
        "--max-transactions", type=int, default=None, help="stop the traffic after this many"
    )
    options = parser.parse_args(argv)
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        databases = databases_from(os.environ if environ is None else environ)
        seeded = seed_sources(
            databases, GeneratorConfig(customers=options.customers, seed=options.seed)
        )
        state = "kept (seeded before)" if seeded.resumed else "seeded"
        print(f"demo sources {state}: {dict(seeded.rows)}", flush=True)
        if options.rate > 0:
            print(f"traffic at {options.rate} transactions/s until SIGTERM", flush=True)
            traffic = TrafficConfig(
                rate=options.rate, seed=options.seed, max_transactions=options.max_transactions
            )
            counts = run_traffic(databases, traffic, stop)
            print(f"traffic stopped: {counts}", flush=True)
    except DemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
    return 0


if __name__ == "__main__":
    sys.exit(main())
