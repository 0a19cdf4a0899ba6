"""What every target adapter is, and the three ways a delivery can fail.

The relay (``cdc.relay``) sorts failures the way the apply loop does:

- ``TargetUnavailableError``: the target cannot be reached or is overloaded (connection
  refused, timeout, HTTP 5xx/429, broker down). The row is retried with backoff and the
  relay pauses the whole target (the next rows would fail the same way).
- ``DeliveryDeferredError``: this row cannot go *now* (a lock held too long by someone else,
  a deadlock). Retried with backoff; the target goes on with other rows.
- ``DeliveryRejectedError``: the target refuses this payload for good (HTTP 4xx, a value its
  schema cannot take). Dead-lettered at once for this target only; other targets, and later
  versions of the same golden record, go on.

Anything else an adapter raises is a bug: the relay stops (delivery is at-least-once, so a
restart delivers what was not acknowledged).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from cdc.errors import CdcError
from cdc.targets.config import DeliverySettings
from hub.services.sync import Delivery


class TargetError(CdcError):
    """A delivery to ``target`` failed; ``detail`` says why (it becomes the row's last error)."""

    kind: ClassVar[str] = "failed"

    def __init__(self, target: str, detail: str) -> None:
        self.target = target
        self.detail = detail
        super().__init__(f"{target}: {self.kind}: {detail}")


class TargetUnavailableError(TargetError):
    kind = "unavailable"


class DeliveryDeferredError(TargetError):
    kind = "deferred"


class DeliveryRejectedError(TargetError):
    kind = "rejected"


class TargetSetupError(CdcError):
    """A target does not fit its configuration (a missing table or column): not retried."""

    def __init__(self, target: str, detail: str) -> None:
        self.target = target
        self.detail = detail
        super().__init__(f"{target}: {detail}")


class DeliveryTarget(ABC):
    """One configured target. ``deliver`` is called from one thread at a time.

    Args:
        name: the target's name (outbox rows carry it).
        events: the golden history kinds it takes; the relay skips the others.
        delivery: retry and timeout settings.
    """

    delivers_batches: ClassVar[bool] = False
    """Whether ``deliver_batch`` delivers several rows in one go (else the relay calls
    ``deliver`` row by row)."""

    def __init__(self, name: str, events: tuple[str, ...], delivery: DeliverySettings) -> None:
        self.name = name
        self.events = frozenset(events)
        self.delivery = delivery

    def open(self) -> None:  # noqa: B027 - optional hook
        """Connect and check the target against its configuration.

        Raises:
            TargetSetupError: the target does not fit its configuration.
            TargetUnavailableError: it cannot be reached now (the relay tries again).
        """

    @abstractmethod
    def deliver(self, delivery: Delivery) -> None:
        """Deliver one golden change; return only once the target has acknowledged it.

        Must be idempotent: the same delivery may come again (after a crash, or a lease that
        ran out), and repeating it changes nothing at the target.
        """

    def deliver_batch(self, deliveries: Sequence[Delivery]) -> None:
        """Deliver several golden changes (at most one version per golden record) all or
        nothing; return once the target has acknowledged every one.

        A failure fails the whole batch: the relay then delivers the rows one by one, so a
        row the target refuses is dead-lettered alone. The default delivers row by row.
        """
        for delivery in deliveries:
            self.deliver(delivery)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; safe to call twice."""


__all__ = [
    "DeliveryDeferredError",
    "DeliveryRejectedError",
    "DeliveryTarget",
    "TargetError",
    "TargetSetupError",
    "TargetUnavailableError",
]
