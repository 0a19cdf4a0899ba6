"""Kafka topic target: golden records keyed by golden id, a tombstone on retirement.

Every golden change is one record: key = the golden id (text), value = the golden document
(``document.golden_document``, canonical JSON), headers ``idempotency-key``, ``event`` and
``version``. A retired record gets a tombstone (a null value), so a compacted topic keeps
exactly the live golden records and the redirect of each merged-away id (its last record says
``status: merged`` and ``merged_into``).

Keying by golden id keeps one record's versions in one partition, in order; the relay sends a
version only after the previous one was acknowledged. The producer is idempotent (acks=all),
so its own retries do not duplicate; a redelivery after a relay crash does, harmlessly: the
same key and value again, which consumers recognise by the idempotency key and compaction
folds away.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from cdc.targets.base import DeliveryRejectedError, DeliveryTarget, TargetUnavailableError
from cdc.targets.config import KafkaTargetSpec, document_fields
from cdc.targets.document import encode_document, golden_document
from hub.services.sync import Delivery

_REJECTED_CODES = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
    }
)


class KafkaTarget(DeliveryTarget):
    """Produces golden records to one topic (module docstring)."""

    delivers_batches = True

    def __init__(self, name: str, spec: KafkaTargetSpec) -> None:
        super().__init__(name, spec.events, spec.delivery)
        self.spec = spec
        self._fields = document_fields(spec)
        self._producer: Producer | None = None

    def producer_config(self) -> dict[str, Any]:
        timeout_ms = int(self.delivery.timeout_seconds * 1000)
        return {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 0,
            **self.spec.options,
            "bootstrap.servers": self.spec.bootstrap_servers,
            "message.timeout.ms": timeout_ms,
            "client.id": f"mdh-relay-{self.name}",
        }

    def open(self) -> None:
        if self._producer is None:
            try:
                self._producer = Producer(self.producer_config())
            except KafkaException as exc:
                raise TargetUnavailableError(self.name, str(exc)) from exc

    def deliver(self, delivery: Delivery) -> None:
        self.deliver_batch([delivery])

    def deliver_batch(self, deliveries: Sequence[Delivery]) -> None:
        """Produce every record, then wait once for the broker's acknowledgements (the claim
        holds at most one version per golden record, so per-key order is kept). A record
        refused fails the batch: the relay then sends the rows one by one, and the records
        already written come again, which is harmless (module docstring)."""
        self.open()
        assert self._producer is not None
        outcomes: list[KafkaError | None] = []

        def acknowledged(error: KafkaError | None, message: Message) -> None:
            outcomes.append(error)

        for delivery in deliveries:
            retired = delivery.payload.get("status") == "retired"
            value = None if retired else encode_document(golden_document(delivery, self._fields))
            record: dict[str, Any] = {
                "key": str(delivery.golden_id).encode(),
                "value": value,
                "headers": [
                    ("idempotency-key", delivery.idempotency_key.encode()),
                    ("event", (delivery.event or "").encode()),
                    ("version", str(delivery.version).encode()),
                ],
                "on_delivery": acknowledged,
            }
            try:
                try:
                    self._producer.produce(self.spec.topic, **record)
                except BufferError:
                    # The producer's queue is full: let it drain, then try once more.
                    self._producer.flush(self.delivery.timeout_seconds)
                    self._producer.produce(self.spec.topic, **record)
            except BufferError as exc:
                raise TargetUnavailableError(self.name, f"producer queue full: {exc}") from exc
            except KafkaException as exc:
                raise self._classify(exc.args[0] if exc.args else None, str(exc)) from exc
        # message.timeout.ms bounds the wait: every callback comes by then.
        self._producer.flush(self.delivery.timeout_seconds + 1)
        if len(outcomes) < len(deliveries):
            raise TargetUnavailableError(self.name, "no acknowledgement from the broker in time")
        failures = [error for error in outcomes if error is not None]
        if failures:
            errors = [self._classify(error, error.str()) for error in failures]
            rejected = [e for e in errors if isinstance(e, DeliveryRejectedError)]
            raise (rejected or errors)[0]

    def _classify(
        self, error: KafkaError | None, detail: str
    ) -> TargetUnavailableError | DeliveryRejectedError:
        if isinstance(error, KafkaError):
            if error.code() in _REJECTED_CODES:
                return DeliveryRejectedError(self.name, detail)
            if error.fatal():
                self._producer = None  # a fatal error ends this producer: the next try makes one
        return TargetUnavailableError(self.name, detail)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(5)
            self._producer = None


__all__ = ["KafkaTarget"]
