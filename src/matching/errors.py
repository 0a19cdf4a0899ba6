"""The error root of the matching package and the errors its public functions raise."""

from __future__ import annotations


class MatchingError(Exception):
    """Root of every error the matching package raises on purpose."""


class SpecError(MatchingError):
    """A match spec is invalid: ``path`` names the key, ``expected`` what should be there."""

    def __init__(self, path: str, expected: str, *, source: str | None = None) -> None:
        self.path = path
        self.expected = expected
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path}: {expected}")


class ModelFormatError(MatchingError):
    """A saved model file cannot be read: ``path`` is the file, ``reason`` what is wrong."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")
