"""The property lists kept in infra/reference/, and checks of config keys against them.

Each list names its source at the top. A line is a property name; ``<segment>`` stands for
one dotted segment chosen by the user; a trailing ``.*`` allows anything below the prefix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[2] / "infra" / "reference"
POSTGRES_CONNECTOR = "debezium-postgres-connector.txt"
CONNECT_CONNECTOR = "kafka-connect-connector.txt"
CONNECT_WORKER = "kafka-connect-worker.txt"
CONNECT_IMAGE_ENV = "debezium-connect-image-env.txt"
KAFKA_BROKER = "kafka-broker.txt"


def reference_lines(name: str) -> list[str]:
    lines = (REFERENCE / name).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def source_of(name: str) -> str:
    """The header comment of a list (where its names come from)."""
    lines = (REFERENCE / name).read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if line.startswith("#"))


@cache
def _patterns(names: tuple[str, ...]) -> tuple[frozenset[str], tuple[re.Pattern[str], ...]]:
    exact = frozenset(n for n in names if "<" not in n and not n.endswith(".*"))
    patterns = []
    for name in names:
        if name in exact:
            continue
        family = name.endswith(".*")
        body = name[:-2] if family else name
        regex = "".join(
            "[0-9]+"
            if segment == "<length>"
            else "[^.]+"
            if segment.startswith("<")
            else re.escape(segment)
            for segment in re.split(r"(<[^>]+>)", body)
        )
        patterns.append(re.compile(f"^{regex}" + (r"\..+$" if family else "$")))
    return exact, tuple(patterns)


def is_known(key: str, *lists: str) -> bool:
    names = tuple(line for name in lists for line in reference_lines(name))
    exact, patterns = _patterns(names)
    return key in exact or any(p.match(key) for p in patterns)


def unknown_keys(keys: Iterable[str], *lists: str) -> list[str]:
    """The keys that none of the named lists allows."""
    return [key for key in keys if not is_known(key, *lists)]


def unknown_connector_keys(config: Iterable[str]) -> list[str]:
    """Keys of a Debezium PostgreSQL connector config that neither Debezium nor Kafka Connect
    defines."""
    return unknown_keys(config, POSTGRES_CONNECTOR, CONNECT_CONNECTOR)
