"""Capture the demo's three source databases into a hub, as `mdh demo` wires it: one embedded
Debezium engine per system, the demo mapping (joins included), one apply loop each. Runs in
its own process (JPype starts one JVM per process); a test helper.

Prints JSON lines: {"event": "started"} once every engine runs, {"event": "stopped"} after
SIGTERM, {"event": "failed", "error": ...} when an engine dies. Every 0.2 s it rewrites
``<state>/mapped.json``: per system, the mapper's ``ignored`` counts (``echo``: write-back
changes recognised and not applied).

    python tests/cdc/demo_capture_worker.py --hub URL --crm URL --billing URL --erp URL \
        --server-prefix wbd --state DIR
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from publish_kit import demo_config

from cdc.apply import ApplyLoop
from cdc.debezium import DebeziumSource, PostgresSource
from hub.db import create_engine
from hub.services import HubServices
from mdh.demo import DemoDatabases
from mdh.demo.mapping import DemoChangeMapper, ReferenceData

SYSTEMS = ("crm", "billing", "erp")


def _emit(event: str, **data: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **data}) + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hub", required=True)
    for system in SYSTEMS:
        parser.add_argument(f"--{system}", required=True)
    parser.add_argument("--server-prefix", required=True)
    parser.add_argument("--state", type=Path, required=True)
    args = parser.parse_args()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    databases = DemoDatabases(crm=args.crm, billing=args.billing, erp=args.erp, truth=args.crm)
    config = demo_config(databases, server_prefix=args.server_prefix)
    hub = HubServices(
        create_engine(args.hub, pool_size=3),
        matcher=config.build_matcher(),
        rules=config.survivorship,
        targets=config.targets,
    )
    references = ReferenceData({s: databases.url(s) for s in SYSTEMS})
    engines = []
    mappers: dict[str, DemoChangeMapper] = {}
    for system in SYSTEMS:
        connection = config.connections[system]
        source = PostgresSource.from_url(
            f"{args.server_prefix}{system}",
            databases.url(system),
            connection.tables,
            **{**connection.options.model_dump(), "heartbeat_interval_ms": 1000},
        )
        mapper = DemoChangeMapper(config.mappings, references)
        mappers[system] = mapper
        loop = ApplyLoop(hub, mapper, label=system, stop=stop)
        engine = DebeziumSource(source, args.state / system, loop, log_dir=args.state / "logs")
        engine.start()
        engines.append(engine)
    for engine in engines:
        while not engine.wait_started(0.1):
            if not engine.running or stop.is_set():
                _emit("failed", error=f"{engine.source.name} did not start")
                return 1
    _emit("started")
    code = 0
    while not stop.wait(0.2):
        counts = {name: dict(mapper.ignored) for name, mapper in mappers.items()}
        (args.state / "mapped.tmp").write_text(json.dumps(counts))
        (args.state / "mapped.tmp").replace(args.state / "mapped.json")
        if any(not engine.running for engine in engines):
            _emit("failed", error="an engine stopped by itself")
            code = 1
            break
    for engine in engines:
        engine.stop()
    references.close()
    hub.engine.dispose()
    if code == 0:
        _emit("stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
