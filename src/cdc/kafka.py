"""Kafka as a source: a consumer group reading the Debezium topics Kafka Connect writes.

Scale-out runs several hub workers in one consumer group; Debezium keys each topic by the
row's primary key, so one row's changes stay in one partition and in order. The delivery
contract, in order:

1. poll up to ``batch_size`` messages (waiting at most ``max_wait``);
2. split them by topic-partition, keeping each partition's order;
3. apply each partition's slice through the apply loop, with the batch position
   (``kafka:<group>``, ``<topic>:<partition>``, last offset): one hub transaction each, which
   records the offset with the effects, so a slice that was already applied is skipped whole;
4. only after all slices are committed in the database, commit the next offsets to Kafka
   (synchronously); auto-commit and the automatic offset store are off, so nothing is ever
   committed that was not applied;
5. a failure before step 4 leaves the offsets where they were: the messages come again (to
   this worker or, after a rebalance, another) and are skipped or applied idempotently.

A broker that is gone is transient: librdkafka reconnects by itself, an offset commit that fails
is retried with backoff (and if it never succeeds, redelivery is harmless).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from cdc.apply import ApplyLoop, RetryPolicy
from cdc.errors import CdcError
from cdc.raw import RawMessage
from hub.model import BatchPosition

logger = logging.getLogger(__name__)


class KafkaSourceError(CdcError):
    """The consumer hit a fatal error (bad configuration, authorisation, a fatal broker error)."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"Kafka consumer failed: {detail}")


@dataclass(frozen=True)
class KafkaSourceSettings:
    """What to consume. ``topics`` (names) or ``topic_pattern`` (a regular expression)."""

    bootstrap_servers: str
    group_id: str
    topics: tuple[str, ...] = ()
    topic_pattern: str | None = None
    batch_size: int = 2048
    max_wait_seconds: float = 0.05
    options: Mapping[str, Any] = field(default_factory=dict)

    def consumer_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1_000,
            **self.options,
            # Never let the client commit on its own: offsets go to Kafka after the database.
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": self.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
        }
        return config

    @property
    def subscription(self) -> list[str]:
        if self.topic_pattern is not None:
            pattern = self.topic_pattern
            return [pattern if pattern.startswith("^") else f"^{pattern}"]
        return list(self.topics)

    @property
    def position_source(self) -> str:
        return f"kafka:{self.group_id}"


class KafkaSource:
    """Consume Debezium topics into the apply loop until ``stop`` is set.

    Args:
        settings: what to read.
        apply: the apply loop (its stop event also interrupts retries).
        stop: set to stop after the batch in flight (the loop's own stop event when None).
        after_apply: called after the database commit and before the Kafka commit; tests
            use it to die in the window where redelivery must be harmless.
    """

    def __init__(
        self,
        settings: KafkaSourceSettings,
        apply: ApplyLoop,
        *,
        stop: threading.Event | None = None,
        retry: RetryPolicy | None = None,
        after_apply: Callable[[Sequence[RawMessage]], None] | None = None,
    ) -> None:
        if not settings.topics and settings.topic_pattern is None:
            raise KafkaSourceError("no topics and no topic pattern to read")
        self.settings = settings
        self.apply_loop = apply
        self.stop = stop or apply.stop
        self.retry = retry or RetryPolicy(max_seconds=5.0)
        self.after_apply = after_apply
        self.messages = 0
        self.batches = 0
        self._rng = random.Random()

    def run(self) -> None:
        """Consume until ``stop`` is set; the consumer leaves the group on the way out.

        Raises:
            KafkaSourceError: a fatal consumer error.
            ApplyInterruptedError: stopped while a batch was being retried (not committed).
            Exception: whatever the apply loop raised (a bug); offsets stay uncommitted.
        """
        consumer = Consumer(self.settings.consumer_config(), logger=logger)
        try:
            consumer.subscribe(
                self.settings.subscription,
                on_assign=self._assigned,
                on_revoke=self._revoked,
            )
            while not self.stop.is_set():
                self.poll_once(consumer)
        finally:
            consumer.close()

    def poll_once(self, consumer: Consumer) -> int:
        """One batch: consume, apply per partition, commit offsets. Returns messages applied."""
        # 1. poll
        polled = consumer.consume(self.settings.batch_size, self.settings.max_wait_seconds)
        # 2. split by topic-partition
        slices: dict[tuple[str, int], list[RawMessage]] = {}
        for message in polled:
            error = message.error()
            if error is not None:
                self._check(error)
                continue
            raw = _raw(message)
            slices.setdefault((raw.topic, raw.partition or 0), []).append(raw)
        if not slices:
            return 0
        # 3. one hub transaction per partition slice, the last offset as its position
        applied: list[RawMessage] = []
        for (topic, partition), batch in slices.items():
            last = batch[-1].offset
            assert last is not None
            position = BatchPosition(self.settings.position_source, f"{topic}:{partition}", last)
            self.apply_loop.apply(batch, position)
            applied.extend(batch)
        if self.after_apply is not None:
            self.after_apply(applied)
        # 4. offsets to Kafka, only now
        self._commit(
            consumer,
            [
                TopicPartition(topic, partition, batch[-1].offset + 1)  # type: ignore[operator]
                for (topic, partition), batch in slices.items()
            ],
        )
        self.messages += len(applied)
        self.batches += 1
        return len(applied)

    def _commit(self, consumer: Consumer, offsets: list[TopicPartition]) -> None:
        failures = 0
        while True:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
                return
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                if isinstance(error, KafkaError) and error.code() in (
                    KafkaError.UNKNOWN_MEMBER_ID,
                    KafkaError.ILLEGAL_GENERATION,
                    KafkaError.REBALANCE_IN_PROGRESS,
                    KafkaError._ASSIGNMENT_LOST,
                ):
                    # The partitions moved to another worker, which resumes from the last
                    # committed offset; what was applied here is skipped there.
                    logger.info("offset commit dropped after a rebalance: %s", error)
                    return
                failures += 1
                if self.retry.max_attempts is not None and failures >= self.retry.max_attempts:
                    raise
                pause = self.retry.delay(failures, self._rng)
                logger.warning("offset commit failed (%s); retrying in %.1fs", exc, pause)
                if self.stop.wait(pause):
                    logger.warning("stopping with offsets uncommitted; they will be redelivered")
                    return

    @staticmethod
    def _check(error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal():
            raise KafkaSourceError(str(error))
        # Broker down, transport errors...: librdkafka retries on its own.
        logger.warning("Kafka consumer: %s", error)

    @staticmethod
    def _assigned(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        logger.info("assigned %s", ", ".join(f"{p.topic}:{p.partition}" for p in partitions))

    @staticmethod
    def _revoked(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Every applied batch was committed synchronously before the next poll: nothing
        # is pending here.
        logger.info("revoked %s", ", ".join(f"{p.topic}:{p.partition}" for p in partitions))


def _raw(message: Message) -> RawMessage:
    key = message.key()
    value = message.value()
    return RawMessage(
        key=key if isinstance(key, bytes) or key is None else str(key).encode(),
        value=value if isinstance(value, bytes) or value is None else str(value).encode(),
        topic=message.topic() or "",
        partition=message.partition(),
        offset=message.offset(),
    )
