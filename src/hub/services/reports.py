"""The duplicate-rate report: how duplicated the sources are, and how the hub and its stewards
keep up. Every section is a pandas frame validated against a pandera schema before it leaves.

Definitions (a *live* source record is linked to a golden record: not deleted, not invalid):

- duplicate rate: ``1 - golden records / live source records``, the share of source records
  that are redundant copies of a customer another record already stands for. Per source
  system it counts duplicates within that system only (records of the system / distinct
  golden records they belong to).
- coverage: active golden records by the set of systems their live records come from.
- trend: per time bucket from the golden history alone (creations, merges, records joining),
  with the running totals and duplicate rate at the end of each bucket.
- duplicate-creation rate: of the source records that arrived in a bucket, the share that did
  not found a golden record of their own (a duplicate of a customer known already, or of one
  that arrived with them).
- links: the records of multi-source golden records by who decided their link: the matcher
  alone (``automatic``), a steward deciding a review task (``reviewed``), or a steward acting
  directly (``steward``: merge, link, unmerge).
- unmerge rate (the false-merge signal): steward unmerges and unlinks in the window over the
  joins made in it (merges plus records that joined an existing golden record).
- sync latency: per target, the outbox rows it acknowledged in the window, with p50/p95/p99
  (and max) in ms of source commit to acknowledgement (changes from sources), golden commit
  to acknowledgement (steward actions included) and source commit to golden commit: the
  definition of ``hub.services.sync.measure_sync_latency``, shared with ``mdh publish
  status``. Skipped and dead rows are not deliveries; ``pending`` counts what is still to be
  delivered (dead rows apart), ``oldest_pending_seconds`` the wait of the oldest. Rows an
  initial load made carry the snapshot's start as their source commit time (they measure
  the load), and rows pruned after the outbox retention are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import pandas as pd
import pandera.pandas as pa
import sqlalchemy as sa
from sqlmodel import Session

from hub.services.sync import measure_sync_latency, target_statuses


class TrendBucket(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True)
class ReportQuery:
    since: datetime
    """Start of the window of the trend, the decisions, unmerges and sync latency."""
    bucket: TrendBucket = TrendBucket.DAY
    sla: timedelta = timedelta(hours=48)
    """How long a review task may wait before it is late."""


_RATE = pa.Check.in_range(0.0, 1.0)
_COUNT = pa.Check.ge(0)


def _count(nullable: bool = False) -> pa.Column:
    return pa.Column("int64", _COUNT, nullable=nullable)


def _rate() -> pa.Column:
    return pa.Column("float64", _RATE, nullable=True)


def _number() -> pa.Column:
    return pa.Column("float64", pa.Check.ge(0), nullable=True)


OVERALL_SCHEMA = pa.DataFrameSchema(
    {
        "source_records": _count(),
        "golden_records": _count(),
        "duplicates": _count(),
        "duplicate_rate": _rate(),
        "multi_source_golden_records": _count(),
        "invalid_source_records": _count(),
        "deleted_source_records": _count(),
    },
    checks=pa.Check(lambda df: (df["duplicates"] <= df["source_records"]).all()),
    strict=True,
)
PER_SYSTEM_SCHEMA = pa.DataFrameSchema(
    {
        "system": pa.Column(str, unique=True),
        "source_records": _count(),
        "golden_records": _count(),
        "duplicates": _count(),
        "duplicate_rate": _rate(),
    },
    strict=True,
)
COVERAGE_SCHEMA = pa.DataFrameSchema(
    {
        "systems": pa.Column(str, unique=True),
        "system_count": _count(),
        "golden_records": _count(),
        "share": _rate(),
    },
    strict=True,
)
TREND_SCHEMA = pa.DataFrameSchema(
    {
        "bucket_start": pa.Column("datetime64[ns, UTC]"),
        "golden_created": _count(),
        "golden_merged": _count(),
        "unmerges": _count(),
        "arrived_source_records": _count(),
        "joined_existing": _count(),
        "duplicate_creation_rate": _rate(),
        "source_records_total": pa.Column("int64"),
        "golden_records_total": pa.Column("int64"),
        "duplicate_rate": _rate(),
    },
    strict=True,
)
LINKS_SCHEMA = pa.DataFrameSchema(
    {
        "decided": pa.Column(str, pa.Check.isin(["automatic", "reviewed", "steward"])),
        "source_records": _count(),
        "share": _rate(),
    },
    strict=True,
)
QUEUE_SCHEMA = pa.DataFrameSchema(
    {
        "open": _count(),
        "deferred": _count(),
        "sla_hours": _number(),
        "over_sla": _count(),
        "within_sla_share": _rate(),
        "oldest_age_hours": _number(),
        "p50_age_hours": _number(),
        "p90_age_hours": _number(),
        "decided_in_window": _count(),
        "median_hours_to_decision": _number(),
    },
    strict=True,
)
UNMERGE_SCHEMA = pa.DataFrameSchema(
    {
        "merges": _count(),
        "automatic_joins": _count(),
        "unmerges": _count(),
        "unlinks": _count(),
        "unmerge_rate": _rate(),
    },
    strict=True,
)
SYNC_SPANS = ("source_to_target", "golden_to_target", "source_to_golden")
"""The sync-latency spans of the report, each as ``<span>_p50_ms`` ... ``<span>_max_ms``."""
SYNC_SCHEMA = pa.DataFrameSchema(
    {
        "target": pa.Column(str, unique=True),
        "delivered": _count(),
        "from_sources": _count(),
        "pending": _count(),
        "dead": _count(),
        "skipped": _count(),
        **{
            f"{span}_{stat}_ms": _number()
            for span in SYNC_SPANS
            for stat in ("p50", "p95", "p99", "max")
        },
        "oldest_pending_seconds": _number(),
    },
    checks=pa.Check(
        lambda df: (
            df["source_to_target_p50_ms"].isna()
            | (df["source_to_target_p50_ms"] <= df["source_to_target_p95_ms"])
        ).all()
    ),
    strict=True,
)

SECTIONS: dict[str, pa.DataFrameSchema] = {
    "overall": OVERALL_SCHEMA,
    "per_system": PER_SYSTEM_SCHEMA,
    "coverage": COVERAGE_SCHEMA,
    "trend": TREND_SCHEMA,
    "links": LINKS_SCHEMA,
    "queue": QUEUE_SCHEMA,
    "unmerge": UNMERGE_SCHEMA,
    "sync_latency": SYNC_SCHEMA,
}


@dataclass(frozen=True)
class DuplicateReport:
    generated_at: datetime
    query: ReportQuery
    frames: Mapping[str, pd.DataFrame]
    """Section name -> validated frame (see ``SECTIONS``)."""

    def records(self) -> dict[str, list[dict[str, Any]]]:
        """Every section as JSON-ready rows (NaN as None, times as ISO 8601)."""
        return {name: frame_records(frame) for name, frame in self.frames.items()}

    def long(self) -> pd.DataFrame:
        """All sections in one long frame: section, row, column, value (for CSV)."""
        rows: list[dict[str, Any]] = []
        for name, records in self.records().items():
            for index, record in enumerate(records):
                for column, value in record.items():
                    rows.append({"section": name, "row": index, "column": column, "value": value})
        return pd.DataFrame(rows, columns=["section", "row", "column", "value"])


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for record in frame.to_dict(orient="records"):
        clean: dict[str, Any] = {}
        for key, value in record.items():
            if isinstance(value, pd.Timestamp):
                clean[str(key)] = value.isoformat()
            elif isinstance(value, float) and math.isnan(value):
                clean[str(key)] = None
            elif hasattr(value, "item"):
                clean[str(key)] = value.item()
            else:
                clean[str(key)] = value
        out.append(clean)
    return out


def _rows(session: Session, sql: str, **params: Any) -> list[sa.Row[Any]]:
    return list(session.execute(sa.text(sql), params))


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else math.nan


def _overall(session: Session) -> pd.DataFrame:
    [row] = _rows(
        session,
        """
        SELECT
          (SELECT count(*) FROM source_records WHERE golden_id IS NOT NULL) AS sources,
          (SELECT count(*) FROM golden_records WHERE status = 'active') AS goldens,
          (SELECT count(*) FROM (SELECT golden_id FROM source_records
             WHERE golden_id IS NOT NULL GROUP BY golden_id HAVING count(*) > 1) m) AS multi,
          (SELECT count(*) FROM source_records WHERE validation_errors IS NOT NULL) AS invalid,
          (SELECT count(*) FROM source_records WHERE deleted) AS deleted
        """,
    )
    sources, goldens = int(row.sources), int(row.goldens)
    duplicates = max(sources - goldens, 0)
    return pd.DataFrame(
        [
            {
                "source_records": sources,
                "golden_records": goldens,
                "duplicates": duplicates,
                "duplicate_rate": _ratio(duplicates, sources),
                "multi_source_golden_records": int(row.multi),
                "invalid_source_records": int(row.invalid),
                "deleted_source_records": int(row.deleted),
            }
        ]
    )


def _per_system(session: Session) -> pd.DataFrame:
    rows = _rows(
        session,
        """
        SELECT system, count(*) AS sources, count(DISTINCT golden_id) AS goldens
        FROM source_records WHERE golden_id IS NOT NULL GROUP BY system ORDER BY system
        """,
    )
    return pd.DataFrame(
        [
            {
                "system": r.system,
                "source_records": int(r.sources),
                "golden_records": int(r.goldens),
                "duplicates": int(r.sources) - int(r.goldens),
                "duplicate_rate": _ratio(int(r.sources) - int(r.goldens), int(r.sources)),
            }
            for r in rows
        ],
        columns=list(PER_SYSTEM_SCHEMA.columns),
    )


def _coverage(session: Session) -> pd.DataFrame:
    rows = _rows(
        session,
        """
        SELECT systems, cardinality(systems) AS n, count(*) AS goldens FROM (
          SELECT golden_id, array_agg(DISTINCT system ORDER BY system) AS systems
          FROM source_records WHERE golden_id IS NOT NULL GROUP BY golden_id
        ) g GROUP BY systems ORDER BY cardinality(systems) DESC, systems
        """,
    )
    total = sum(int(r.goldens) for r in rows)
    return pd.DataFrame(
        [
            {
                "systems": "+".join(r.systems),
                "system_count": int(r.n),
                "golden_records": int(r.goldens),
                "share": _ratio(int(r.goldens), total),
            }
            for r in rows
        ],
        columns=list(COVERAGE_SCHEMA.columns),
    )


def _trend(session: Session, query: ReportQuery) -> pd.DataFrame:
    rows = _rows(
        session,
        """
        SELECT date_trunc(:bucket, occurred_at AT TIME ZONE 'UTC') AS bucket,
          count(*) FILTER (WHERE kind = 'created') AS created,
          count(*) FILTER (WHERE data->>'status' = 'merged') AS merged,
          count(*) FILTER (WHERE data->>'status' IN ('merged', 'retired')) AS ended,
          count(*) FILTER (WHERE kind = 'unmerged') AS unmerges,
          coalesce(sum(jsonb_array_length(data->'sources_added')), 0) AS added,
          coalesce(sum(jsonb_array_length(data->'sources_removed')), 0) AS removed,
          coalesce(sum(jsonb_array_length(data->'sources_added'))
            FILTER (WHERE cause = 'source_change'), 0) AS arrived,
          count(*) FILTER (WHERE cause = 'source_change' AND kind = 'created') AS originals
        FROM golden_history GROUP BY 1 ORDER BY 1
        """,
        bucket=query.bucket.value,
    )
    records: list[dict[str, Any]] = []
    sources_total = 0
    goldens_total = 0
    since = pd.Timestamp(query.since).tz_convert("UTC").floor("s")
    for r in rows:
        sources_total += int(r.added) - int(r.removed)
        goldens_total += int(r.created) - int(r.ended)
        bucket = pd.Timestamp(r.bucket).tz_localize("UTC")
        # Records that arrived, less the golden records they founded: the rest joined a
        # customer already known (in this batch or before), i.e. arrived as duplicates.
        arrived = int(r.arrived)
        joined = max(arrived - int(r.originals), 0)
        records.append(
            {
                "bucket_start": bucket,
                "golden_created": int(r.created),
                "golden_merged": int(r.merged),
                "unmerges": int(r.unmerges),
                "arrived_source_records": arrived,
                "joined_existing": joined,
                "duplicate_creation_rate": _ratio(joined, arrived),
                "source_records_total": sources_total,
                "golden_records_total": goldens_total,
                "duplicate_rate": (
                    _ratio(max(sources_total - goldens_total, 0), sources_total)
                    if sources_total > 0
                    else math.nan
                ),
            }
        )
    frame = pd.DataFrame(records, columns=list(TREND_SCHEMA.columns))
    frame["bucket_start"] = pd.to_datetime(frame["bucket_start"], utc=True).astype(
        pd.DatetimeTZDtype("ns", "UTC")
    )
    frame = frame[frame["bucket_start"] >= truncate(since, query.bucket)]
    return frame.reset_index(drop=True)


def truncate(at: pd.Timestamp, bucket: TrendBucket) -> pd.Timestamp:
    """The start of the bucket holding ``at`` (weeks start on Monday, like date_trunc)."""
    if bucket is TrendBucket.HOUR:
        return at.floor("h")
    day = at.floor("D")
    if bucket is TrendBucket.WEEK:
        return day - pd.Timedelta(days=day.weekday())
    if bucket is TrendBucket.MONTH:
        return day.replace(day=1)
    return day


def _links(session: Session) -> pd.DataFrame:
    rows = _rows(
        session,
        """
        SELECT CASE
                 WHEN s.link_decided_by = 'rule' THEN 'automatic'
                 WHEN EXISTS (SELECT 1 FROM review_tasks t WHERE t.decision = 'match'
                   AND (t.source_record_id = s.id OR t.candidate_source_record_id = s.id))
                   THEN 'reviewed'
                 ELSE 'steward'
               END AS decided,
               count(*) AS n
        FROM source_records s
        WHERE s.golden_id IN (SELECT golden_id FROM source_records WHERE golden_id IS NOT NULL
                              GROUP BY golden_id HAVING count(*) > 1)
        GROUP BY 1
        """,
    )
    counts = {r.decided: int(r.n) for r in rows}
    total = sum(counts.values())
    return pd.DataFrame(
        [
            {
                "decided": name,
                "source_records": counts.get(name, 0),
                "share": _ratio(counts.get(name, 0), total),
            }
            for name in ("automatic", "reviewed", "steward")
        ]
    )


def _queue(session: Session, query: ReportQuery, now: datetime) -> pd.DataFrame:
    [row] = _rows(
        session,
        """
        WITH waiting AS (
          SELECT status, extract(epoch FROM (:now - created_at)) / 3600.0 AS age
          FROM review_tasks WHERE status IN ('open', 'deferred')
        )
        SELECT
          count(*) FILTER (WHERE status = 'open') AS open,
          count(*) FILTER (WHERE status = 'deferred') AS deferred,
          count(*) FILTER (WHERE age > :sla) AS over_sla,
          max(age) AS oldest,
          percentile_cont(0.5) WITHIN GROUP (ORDER BY age) AS p50,
          percentile_cont(0.9) WITHIN GROUP (ORDER BY age) AS p90,
          (SELECT count(*) FROM review_tasks WHERE decided_at >= :since) AS decided,
          (SELECT percentile_cont(0.5) WITHIN GROUP (
             ORDER BY extract(epoch FROM (decided_at - created_at)) / 3600.0)
           FROM review_tasks WHERE decided_at >= :since) AS to_decision
        FROM waiting
        """,
        now=now,
        sla=query.sla.total_seconds() / 3600.0,
        since=query.since,
    )
    waiting = int(row.open) + int(row.deferred)
    return pd.DataFrame(
        [
            {
                "open": int(row.open),
                "deferred": int(row.deferred),
                "sla_hours": query.sla.total_seconds() / 3600.0,
                "over_sla": int(row.over_sla),
                "within_sla_share": _ratio(waiting - int(row.over_sla), waiting),
                "oldest_age_hours": _float(row.oldest),
                "p50_age_hours": _float(row.p50),
                "p90_age_hours": _float(row.p90),
                "decided_in_window": int(row.decided),
                "median_hours_to_decision": _float(row.to_decision),
            }
        ]
    )


def _float(value: Any) -> float:
    return math.nan if value is None else max(float(value), 0.0)


def _unmerge(session: Session, query: ReportQuery) -> pd.DataFrame:
    [row] = _rows(
        session,
        """
        SELECT
          count(*) FILTER (WHERE data->>'status' = 'merged') AS merges,
          coalesce(sum(jsonb_array_length(data->'sources_added'))
            FILTER (WHERE cause = 'source_change'), 0)
            - count(*) FILTER (WHERE cause = 'source_change' AND kind = 'created') AS joins,
          count(*) FILTER (WHERE kind = 'unmerged') AS unmerges,
          count(*) FILTER (WHERE kind = 'unlinked' AND cause = 'steward_action') AS unlinks
        FROM golden_history WHERE occurred_at >= :since
        """,
        since=query.since,
    )
    merges, joins = int(row.merges), max(int(row.joins), 0)
    undone = int(row.unmerges) + int(row.unlinks)
    return pd.DataFrame(
        [
            {
                "merges": merges,
                "automatic_joins": joins,
                "unmerges": int(row.unmerges),
                "unlinks": int(row.unlinks),
                "unmerge_rate": min(_ratio(undone, merges + joins), 1.0)
                if merges + joins
                else math.nan,
            }
        ]
    )


def _sync(session: Session, now: datetime, query: ReportQuery) -> pd.DataFrame:
    statuses = {s.target: s for s in target_statuses(session, now)}
    latencies = {k.target: k for k in measure_sync_latency(session, since=query.since)}
    records: list[dict[str, Any]] = []
    for target in sorted({*statuses, *latencies}):
        status = statuses.get(target)
        latency = latencies.get(target)
        record: dict[str, Any] = {
            "target": target,
            "delivered": latency.delivered if latency else 0,
            "from_sources": latency.source_to_target.count if latency else 0,
            "pending": status.pending if status else 0,
            "dead": status.dead if status else 0,
            "skipped": status.skipped if status else 0,
        }
        for span in SYNC_SPANS:
            figures = getattr(latency, span) if latency else None
            for stat in ("p50", "p95", "p99", "max"):
                value = getattr(figures, stat) if figures else None
                record[f"{span}_{stat}_ms"] = math.nan if value is None else float(value)
        oldest = status.oldest_pending_at if status else None
        record["oldest_pending_seconds"] = (
            math.nan if oldest is None else max((now - oldest).total_seconds(), 0.0)
        )
        records.append(record)
    return pd.DataFrame(records, columns=list(SYNC_SCHEMA.columns))


def _typed(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> pd.DataFrame:
    """Give an empty or all-NaN frame the dtypes its schema expects, then validate it."""
    for name, column in schema.columns.items():
        dtype = str(column.dtype)
        if name not in frame.columns:
            continue
        if dtype == "int64":
            frame[name] = frame[name].astype("int64")
        elif dtype == "float64":
            frame[name] = frame[name].astype("float64")
        elif dtype in ("str", "object") or dtype.startswith("string"):
            # pandas 3 (pyarrow strings) and pandas 2 (object) spell "text" differently:
            # cast to exactly what this pandas/pandera pair expects.
            frame[name] = frame[name].astype(str).astype(column.dtype.type)
    validated: pd.DataFrame = schema.validate(frame, lazy=True)
    return validated


def duplicate_report(session: Session, query: ReportQuery, now: datetime) -> DuplicateReport:
    """Build every section from the store and validate it (one read-only snapshot)."""
    frames = {
        "overall": _overall(session),
        "per_system": _per_system(session),
        "coverage": _coverage(session),
        "trend": _trend(session, query),
        "links": _links(session),
        "queue": _queue(session, query, now),
        "unmerge": _unmerge(session, query),
        "sync_latency": _sync(session, now, query),
    }
    return DuplicateReport(
        generated_at=now,
        query=query,
        frames={name: _typed(frame, SECTIONS[name]) for name, frame in frames.items()},
    )


@dataclass(frozen=True)
class StoreStatus:
    """What readiness and the metrics endpoint report about the store."""

    golden_active: int
    review_open: int
    dead_letters_open: int
    history_head: int
    outbox_pending: Mapping[str, int]
    """Per target: rows not yet delivered (dead ones apart)."""
    applied: tuple[tuple[str, str, int, datetime], ...]
    """(source, partition, offset, applied at) of every capture stream."""
    last_source_commit: Mapping[str, datetime]
    """Per source system: the newest source commit time stored."""


def store_status(session: Session) -> StoreStatus:
    [counts] = _rows(
        session,
        """
        SELECT
          (SELECT count(*) FROM golden_records WHERE status = 'active') AS golden,
          (SELECT count(*) FROM review_tasks WHERE status = 'open') AS review,
          (SELECT count(*) FROM dead_letters WHERE status = 'open') AS dead,
          (SELECT coalesce(max(sequence), 0) FROM golden_history) AS head
        """,
    )
    pending = _rows(
        session,
        "SELECT target, count(*) AS n FROM outbox"
        " WHERE delivered_at IS NULL AND dead_at IS NULL GROUP BY target",
    )
    applied = _rows(
        session,
        'SELECT source, partition, "offset", applied_at FROM applied_positions ORDER BY 1, 2',
    )
    commits = _rows(
        session, "SELECT system, max(committed_at) AS at FROM source_records GROUP BY system"
    )
    return StoreStatus(
        golden_active=int(counts.golden),
        review_open=int(counts.review),
        dead_letters_open=int(counts.dead),
        history_head=int(counts.head),
        outbox_pending={r.target: int(r.n) for r in pending},
        applied=tuple((r.source, r.partition, int(r.offset), r.applied_at) for r in applied),
        last_source_commit={r.system: r.at for r in commits},
    )
