"""Capture lag metrics per source: last applied commit time, events per second, commit-to-golden.

The apply loop records every committed batch here; ``CaptureMetrics.snapshot()`` returns plain
JSON-ready values, which ``mdh cdc status`` prints (and the API can serve later). Thread-safe:
one embedded engine thread per source records into the same object.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

RATE_WINDOW_SECONDS = 60.0
"""Events per second are averaged over the batches committed in this last window."""
LATENCY_SAMPLES = 10_000
"""The latency percentiles are over this many most recent streamed changes."""


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values (``fraction`` in 0..1)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class _SourceMetrics:
    events: int = 0
    changes: int = 0
    dead_letters: int = 0
    ignored: int = 0
    batches: int = 0
    last_commit_at: datetime | None = None
    last_applied_at: datetime | None = None
    recent: deque[tuple[float, int]] = field(default_factory=deque)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))


class CaptureMetrics:
    """Counters, rate and latency samples per source (``crm``, ``kafka:hub``...)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._sources: dict[str, _SourceMetrics] = {}
        self._monotonic = monotonic

    def record_batch(
        self,
        source: str,
        *,
        events: int,
        changes: int,
        dead_letters: int,
        ignored: int,
        applied_at: datetime,
        commit_times: Iterable[datetime],
        streamed_commit_times: Iterable[datetime] = (),
    ) -> None:
        """Account for one committed batch.

        Args:
            events: messages in the batch (all kinds).
            commit_times: source commit times of the batch's changes.
            streamed_commit_times: those of changes captured while streaming (snapshot reads
                have no meaningful commit time); their distance to ``applied_at`` is the
                commit-to-golden latency.
        """
        now = self._monotonic()
        latest = max(commit_times, default=None)
        latencies = [(applied_at - at).total_seconds() * 1000 for at in streamed_commit_times]
        with self._lock:
            metrics = self._sources.setdefault(source, _SourceMetrics())
            metrics.events += events
            metrics.changes += changes
            metrics.dead_letters += dead_letters
            metrics.ignored += ignored
            metrics.batches += 1
            metrics.last_applied_at = applied_at
            if latest is not None and (
                metrics.last_commit_at is None or latest > metrics.last_commit_at
            ):
                metrics.last_commit_at = latest
            metrics.recent.append((now, events))
            while metrics.recent and metrics.recent[0][0] < now - RATE_WINDOW_SECONDS:
                metrics.recent.popleft()
            metrics.latencies_ms.extend(latencies)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per source: totals, last applied source commit time, events/s, latency percentiles."""
        now = self._monotonic()
        out: dict[str, dict[str, Any]] = {}
        with self._lock:
            for source, m in sorted(self._sources.items()):
                recent = [(t, n) for t, n in m.recent if t >= now - RATE_WINDOW_SECONDS]
                span = max(now - recent[0][0], 1.0) if recent else RATE_WINDOW_SECONDS
                latencies = sorted(m.latencies_ms)
                out[source] = {
                    "events": m.events,
                    "changes": m.changes,
                    "dead_letters": m.dead_letters,
                    "ignored": m.ignored,
                    "batches": m.batches,
                    "last_commit_at": _iso(m.last_commit_at),
                    "last_applied_at": _iso(m.last_applied_at),
                    "events_per_second": round(sum(n for _, n in recent) / span, 1),
                    "commit_to_golden_ms": {
                        "samples": len(latencies),
                        "p50": _round(percentile(latencies, 0.50)),
                        "p95": _round(percentile(latencies, 0.95)),
                        "p99": _round(percentile(latencies, 0.99)),
                        "max": _round(latencies[-1]) if latencies else None,
                    },
                }
        return out


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 1)
