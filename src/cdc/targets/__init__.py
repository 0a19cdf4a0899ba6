"""Target adapters of the outbox relay: PostgreSQL write-back, HTTP webhook, Kafka topic.

``parse_targets`` validates the ``targets:`` section of the config file; ``build_targets``
turns its settings into adapters the relay (``cdc.relay``) drives.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from cdc.targets.base import (
    DeliveryDeferredError,
    DeliveryRejectedError,
    DeliveryTarget,
    TargetError,
    TargetSetupError,
    TargetUnavailableError,
)
from cdc.targets.config import (
    KafkaTargetSpec,
    PostgresTargetSpec,
    TargetConfigError,
    TargetsConfig,
    WebhookTargetSpec,
    parse_targets,
)
from cdc.targets.kafka import KafkaTarget
from cdc.targets.postgres import PostgresTarget, StateReader, StatesReader
from cdc.targets.webhook import WebhookTarget

AnyTargetSpec = PostgresTargetSpec | WebhookTargetSpec | KafkaTargetSpec


def build_target(
    name: str,
    spec: AnyTargetSpec,
    *,
    writeback_state: StateReader,
    writeback_states: StatesReader | None = None,
) -> DeliveryTarget:
    """The adapter for one target's settings (not connected yet: the relay opens it)."""
    if isinstance(spec, PostgresTargetSpec):
        return PostgresTarget(name, spec, writeback_state, writeback_states)
    if isinstance(spec, WebhookTargetSpec):
        return WebhookTarget(name, spec)
    return KafkaTarget(name, spec)


def build_targets(
    specs: Mapping[str, AnyTargetSpec],
    *,
    writeback_state: StateReader,
    writeback_states: StatesReader | None = None,
    only: Collection[str] | None = None,
) -> list[DeliveryTarget]:
    """Adapters for the configured targets (``only``: just these names), in config order."""
    return [
        build_target(name, spec, writeback_state=writeback_state, writeback_states=writeback_states)
        for name, spec in specs.items()
        if only is None or name in only
    ]


__all__ = [
    "AnyTargetSpec",
    "DeliveryDeferredError",
    "DeliveryRejectedError",
    "DeliveryTarget",
    "KafkaTarget",
    "KafkaTargetSpec",
    "PostgresTarget",
    "PostgresTargetSpec",
    "TargetConfigError",
    "TargetError",
    "TargetSetupError",
    "TargetUnavailableError",
    "TargetsConfig",
    "WebhookTarget",
    "WebhookTargetSpec",
    "build_target",
    "build_targets",
    "parse_targets",
]
