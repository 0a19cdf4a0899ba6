"""Prometheus metrics in the text exposition format, generated here (no client library):
request counts and latency histograms per route template, and store gauges read at scrape."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.services.reports import StoreStatus

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Mapping[str, str]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in pairs.items()) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class RequestMetrics:
    """Counters and histograms of the requests this process served (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], int] = {}
        self._histograms: dict[tuple[str, str], list[float]] = {}
        self._sums: dict[tuple[str, str], float] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (method, route, str(status))
            self._counts[key] = self._counts.get(key, 0) + 1
            hist = self._histograms.setdefault((method, route), [0.0] * (len(BUCKETS) + 1))
            for index, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    hist[index] += 1
            hist[-1] += 1
            self._sums[(method, route)] = self._sums.get((method, route), 0.0) + seconds

    def lines(self) -> list[str]:
        with self._lock:
            counts = dict(self._counts)
            histograms = {k: list(v) for k, v in self._histograms.items()}
            sums = dict(self._sums)
        out = [
            "# HELP mdh_http_requests_total HTTP requests served, by route template and status.",
            "# TYPE mdh_http_requests_total counter",
        ]
        for (method, route, status), n in sorted(counts.items()):
            labels = _labels({"method": method, "route": route, "status": status})
            out.append(f"mdh_http_requests_total{labels} {n}")
        out += [
            "# HELP mdh_http_request_duration_seconds Time to serve a request.",
            "# TYPE mdh_http_request_duration_seconds histogram",
        ]
        for (method, route), hist in sorted(histograms.items()):
            base = {"method": method, "route": route}
            for bound, count in zip((*BUCKETS, math.inf), hist, strict=True):
                labels = _labels({**base, "le": _number(bound)})
                out.append(f"mdh_http_request_duration_seconds_bucket{labels} {_number(count)}")
            out.append(
                f"mdh_http_request_duration_seconds_sum{_labels(base)} {sums[(method, route)]!r}"
            )
            out.append(
                f"mdh_http_request_duration_seconds_count{_labels(base)} {_number(hist[-1])}"
            )
        return out


class MetricsMiddleware:
    """Times every HTTP request and records it under its route template (``/v1/golden/{id}``,
    not the concrete path, so the label set stays bounded)."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(
                scope.get("method", "?"), template, status, time.perf_counter() - started
            )


def gauge(
    name: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float]]
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    lines += [f"{name}{_labels(labels)} {_number(value)}" for labels, value in samples]
    return lines


def store_lines(status: StoreStatus, now: datetime) -> list[str]:
    lines: list[str] = []
    lines += gauge(
        "mdh_golden_records_active", "Active golden records.", [({}, status.golden_active)]
    )
    lines += gauge("mdh_review_tasks_open", "Open review tasks.", [({}, status.review_open)])
    lines += gauge(
        "mdh_dead_letters_open",
        "Dead letters not replayed or discarded.",
        [({}, status.dead_letters_open)],
    )
    lines += gauge(
        "mdh_changes_head_sequence",
        "The newest golden history sequence (the changes feed's head).",
        [({}, status.history_head)],
    )
    lines += gauge(
        "mdh_outbox_pending",
        "Outbox messages not delivered yet, per target.",
        [({"target": t}, n) for t, n in sorted(status.outbox_pending.items())],
    )
    lines += gauge(
        "mdh_capture_applied_offset",
        "The last applied offset of each capture stream.",
        [({"source": s, "partition": p}, o) for s, p, o, _ in status.applied],
    )
    lines += gauge(
        "mdh_capture_seconds_since_applied",
        "Seconds since each capture stream last applied a batch.",
        [
            ({"source": s, "partition": p}, max((now - at).total_seconds(), 0.0))
            for s, p, _, at in status.applied
        ],
    )
    lines += gauge(
        "mdh_source_last_commit_timestamp_seconds",
        "Source commit time of the newest change stored, per source system.",
        [({"system": k}, v.timestamp()) for k, v in sorted(status.last_source_commit.items())],
    )
    return lines


def capture_lines(capture: Mapping[str, Any] | None) -> list[str]:
    """Lag metrics of a running capture (``mdh cdc run`` writes them), when available."""
    if not capture:
        return []
    sources = capture.get("sources")
    if not isinstance(sources, Mapping):
        return []
    now = datetime.now(UTC)
    lag: list[tuple[Mapping[str, str], float]] = []
    p99: list[tuple[Mapping[str, str], float]] = []
    for name, data in sorted(sources.items()):
        if not isinstance(data, Mapping):
            continue
        last = data.get("last_commit_at")
        if isinstance(last, str):
            with contextlib.suppress(ValueError, TypeError):
                lag.append(
                    ({"source": str(name)}, (now - datetime.fromisoformat(last)).total_seconds())
                )
        latency = data.get("commit_to_golden_ms")
        if isinstance(latency, Mapping) and isinstance(latency.get("p99"), int | float):
            p99.append(({"source": str(name)}, float(latency["p99"]) / 1000.0))
    return gauge(
        "mdh_capture_lag_seconds", "Seconds since the newest source commit applied.", lag
    ) + gauge("mdh_capture_commit_to_golden_p99_seconds", "Commit-to-golden latency, p99.", p99)
