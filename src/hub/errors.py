"""The hub's errors: one root, subclasses that carry data; driver errors are translated here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.model import SourceKey


class HubError(Exception):
    """Root of every error the hub raises on purpose."""


class GoldenRecordNotFoundError(HubError):
    """No golden record has this id (merged-away ids resolve, so this is a truly unknown id)."""

    def __init__(self, golden_id: int) -> None:
        self.golden_id = golden_id
        super().__init__(f"golden record {golden_id} does not exist")


class SourceRecordNotFoundError(HubError):
    """No source record is stored under this key (or id)."""

    def __init__(self, key: SourceKey | int) -> None:
        self.key = key
        super().__init__(f"source record {key} does not exist")


class SourceRecordNotLinkedError(HubError):
    """The source record exists but belongs to no golden record (deleted or invalid)."""

    def __init__(self, key: SourceKey, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"source record {key} is not linked to a golden record: {reason}")


class ReviewTaskNotFoundError(HubError):
    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        super().__init__(f"review task {task_id} does not exist")


class InvalidChangeError(HubError):
    """A change breaks the contract between cdc and the hub (a bug upstream, not bad data)."""

    def __init__(self, key: SourceKey, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"change of {key} is not acceptable: {reason}")


class StaleVersionError(HubError):
    """An optimistic check failed: the golden record changed since the caller read it."""

    def __init__(self, golden_id: int, expected_version: int, actual_version: int) -> None:
        self.golden_id = golden_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            f"golden record {golden_id} is at version {actual_version}, "
            f"not {expected_version} as expected"
        )


class GoldenRecordNotActiveError(HubError):
    """A steward action needs an active golden record, and this one is merged or retired."""

    def __init__(self, golden_id: int, status: str) -> None:
        self.golden_id = golden_id
        self.status = status
        super().__init__(f"golden record {golden_id} is {status}, not active")


class InvalidStewardActionError(HubError):
    """A steward action that cannot be carried out as asked (the reason says why)."""

    def __init__(self, action: str, reason: str) -> None:
        self.action = action
        self.reason = reason
        super().__init__(f"cannot {action}: {reason}")


class InvalidPinError(HubError):
    """A pinned value that is not a valid value of that golden attribute."""

    def __init__(self, attribute: str, errors: Sequence[str]) -> None:
        self.attribute = attribute
        self.errors = tuple(errors)
        super().__init__(f"cannot pin {attribute!r}: {'; '.join(self.errors)}")


class StoreUnavailableError(HubError):
    """The database could not be reached; transient, the caller retries with backoff."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"hub database unavailable: {detail}")


class TransactionTooLargeError(HubError):
    """The transaction needed more locks than the server's lock table holds (PostgreSQL's
    ``max_locks_per_transaction`` times its connections); not transient: the same batch fails
    again, a smaller one succeeds."""

    def __init__(self, operation: str, detail: str) -> None:
        self.operation = operation
        self.detail = detail
        super().__init__(f"{operation}: transaction too large for the lock table: {detail}")


class ConcurrentUpdateError(HubError):
    """A deadlock or serialization failure outlived the service's own retries; transient."""

    def __init__(self, operation: str, attempts: int, detail: str) -> None:
        self.operation = operation
        self.attempts = attempts
        self.detail = detail
        super().__init__(f"{operation} failed after {attempts} attempts: {detail}")


class SchemaNotReadyError(HubError):
    """The hub's tables are missing or outdated: run the migrations (`mdh db migrate`)."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"hub schema not ready ({detail}); run `mdh db migrate`")


class ConfigError(HubError):
    """A section of the declarative config file is not what was expected.

    Names the file, the dotted key inside it and what was expected there (and what was found),
    so a user can fix the file without reading code.
    """

    def __init__(self, file: str, key: str, expected: str, found: object = None) -> None:
        self.file = file
        self.key = key
        self.expected = expected
        self.found = found
        shown = "" if found is None else f", found {found!r}"
        super().__init__(f"{file}: {key}: expected {expected}{shown}")


class InconsistentHistoryError(HubError):
    """A golden record's history cannot be folded (another record's event, or no creation first)."""

    def __init__(self, golden_id: int, sequence: int, reason: str) -> None:
        self.golden_id = golden_id
        self.sequence = sequence
        self.reason = reason
        super().__init__(f"history of golden record {golden_id} at sequence {sequence}: {reason}")
