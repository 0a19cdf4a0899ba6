"""Data access for the hub's tables. Repositories read, add and flush; they never commit.

Every function takes the caller's session: the service that called it owns the transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import Session, col, select

from hub.model import Pin, SourceKey, SourcePosition
from hub.records import DeadLetter
from hub.states import GoldenState, SourceRecordState, to_json
from hub.tables import (
    AttributeLineageRow,
    BlockingKeyRow,
    GoldenHistoryRow,
    GoldenRecordRow,
    MatchConstraintRow,
    OutboxRow,
    ReviewTaskRow,
    SourceRecordRow,
)

T = TypeVar("T")


def any_of(column: Any, values: Sequence[Any], element: Any = sa.BigInteger) -> Any:
    """``column = ANY(:array)``: one array parameter, however many values (an expanded IN
    list of thousands of parameters costs more to send and parse than the query itself)."""
    return column == sa.any_(sa.literal(list(values), type_=ARRAY(element)))


# --- statements sent together --------------------------------------------------------------

COPY_MIN_ROWS = 200
"""From this many rows an insert goes as ``COPY``; fewer go in the batch's pipeline."""


class Pending(Generic[T]):
    """The result of a statement queued in a ``SqlBatch``, read once the batch was sent."""

    def __init__(self, cursor: psycopg.Cursor[Any], convert: Callable[[list[Any]], T]) -> None:
        self._cursor = cursor
        self._convert = convert

    def result(self) -> T:
        return self._convert(self._cursor.fetchall())


class SqlBatch:
    """Statements sent to the database together, in order, in one round trip (psycopg's
    pipeline mode); results are read after ``send`` (leaving the ``with`` block sends).

    Each statement still runs on its own, in order, with its own snapshot: a read queued after
    a lock sees what the lock holder committed, as if sent alone. A statement failing aborts
    those after it, and the error comes out of ``send``.

    Large inserts go as ``COPY``, which a pipeline cannot carry: what was queued before is
    sent first, so the order holds. Nothing else may use the session's connection while
    statements are queued.
    """

    def __init__(self, session: Session) -> None:
        driver = session.connection().connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        self._connection: psycopg.Connection[Any] = driver
        self._pipeline: AbstractContextManager[psycopg.Pipeline] | None = None

    def __enter__(self) -> SqlBatch:
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            with _as_sqlalchemy_error("pipelined statements"):
                pipeline.__exit__(kind, error, traceback)

    def execute(self, query: str, params: Mapping[str, Any] | None = None) -> psycopg.Cursor[Any]:
        """Queue a statement (psycopg ``%(name)s`` parameters)."""
        if self._pipeline is None:
            self._pipeline = self._connection.pipeline()
            self._pipeline.__enter__()
        cursor = self._connection.cursor()
        if params:
            params = {name: _as_array_literal(value) for name, value in params.items()}
        # In a pipeline, the error of a statement queued earlier can come back here, when
        # psycopg reads the replies that have arrived so far.
        with _as_sqlalchemy_error("pipelined statements"):
            cursor.execute(query.encode(), params)
        return cursor

    def query(
        self, query: str, params: Mapping[str, Any], convert: Callable[[list[Any]], T]
    ) -> Pending[T]:
        """Queue a statement whose rows ``convert`` turns into its result."""
        return Pending(self.execute(query, params), convert)

    def send(self) -> None:
        """Send what is queued and wait for every reply."""
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            with _as_sqlalchemy_error("pipelined statements"):
                pipeline.__exit__(None, None, None)

    def insert(
        self,
        table: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        """Insert ``rows`` (values in ``columns`` order, (name, SQL type) each; a JSONB value
        as its JSON text). Many rows go as ``COPY`` (the cheapest way, for client and server),
        a few as one queued ``INSERT`` over a JSON array (no extra round trip)."""
        if not rows:
            return
        names = [name for name, _ in columns]
        if len(rows) >= COPY_MIN_ROWS:
            self.send()
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names))
            )
            with (
                _as_sqlalchemy_error(f"COPY {table}"),
                self._connection.cursor() as cursor,
                cursor.copy(statement) as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        # A JSONB value goes in wrapped in a one-element array, so that SQL NULL (a bare JSON
        # null) and a JSON null value (``[null]``) stay apart.
        json_columns = [kind == "jsonb" for _, kind in columns]
        encoded = []
        for row in rows:
            fields = [
                ("null" if value is None else f"[{value}]")
                if is_json
                else to_json(_json_field(value))
                for value, is_json in zip(row, json_columns, strict=True)
            ]
            encoded.append("[" + ",".join(fields) + "]")
        selected = ", ".join(
            # (jsonb's ``-> 0`` on a scalar returns the scalar: the bare null is caught first)
            f"NULLIF(e.r -> {i}, 'null') -> 0"
            if kind == "jsonb"
            else f"CAST(e.r ->> {i} AS {kind})"
            for i, (_, kind) in enumerate(columns)
        )
        self.execute(
            f"INSERT INTO {table} ({', '.join(names)}) SELECT {selected}"
            f" FROM {_ROWS_PARAMETER} WITH ORDINALITY AS e(r, n) ORDER BY e.n",
            {"rows": "[" + ",".join(encoded) + "]"},
        )


_ROWS_PARAMETER = "jsonb_array_elements(CAST(%(rows)s AS jsonb))"
"""The ``%(rows)s`` parameter (a JSON array of rows, each an array of values) as a set of rows.
As ``jsonb``, the text is parsed once; as ``json``, every ``->``/``->>`` on a row re-parsed the
row's text (ten fields of an outbox row with its payload: a third of the statement's time)."""

_ARRAY_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})


def _as_array_literal(value: Any) -> Any:
    """A list of ints or of strings as PostgreSQL array text (the statements cast it): built
    in a few C calls, where the driver adapts a list element by element in Python."""
    if type(value) is not list:
        return value
    if all(type(item) is int for item in value):
        return "{" + ",".join(map(str, value)) + "}"
    if all(type(item) is str for item in value):
        joined = '","'.join(value)
        # The separators hold all the quotes unless an item has one (or a backslash): only
        # then are the items escaped one by one.
        if "\\" in joined or joined.count('"') != 2 * (len(value) - 1):
            joined = '","'.join([item.translate(_ARRAY_ESCAPES) for item in value])
        return '{"' + joined + '"}'
    return value


@contextmanager
def _as_sqlalchemy_error(statement: str) -> Iterator[None]:
    """Driver errors of statements sent past SQLAlchemy, as SQLAlchemy raises them (what
    ``services._tx`` sorts into retries and hub errors)."""
    try:
        yield
    except psycopg.Error as exc:
        raise sa_exc.DBAPIError.instance(statement, None, exc, psycopg.Error) from exc


def _recordset(columns: str) -> str:
    """``json_to_recordset`` over the ``%(rows)s`` parameter (one JSON array of objects): how
    set-based updates get their rows in one parameter, encoded by the C JSON encoder instead
    of one array per column."""
    return f"json_to_recordset(CAST(%(rows)s AS json)) AS v({columns})"


def _json_field(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# --- locks -------------------------------------------------------------------------------


def lock_id(namespace: str, name: str) -> int:
    """A stable signed 64-bit advisory lock id for ``namespace:name`` (same in every process)."""
    digest = hashlib.blake2b(f"{namespace}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def advisory_lock(session: Session, lock_ids: Iterable[int]) -> None:
    """Take transaction-scoped advisory locks in ascending id order (so workers never deadlock).

    One statement: ``unnest`` yields the sorted array in order and the aggregate calls the lock
    function row by row, so the locks are granted in that order.
    """
    with SqlBatch(session) as batch:
        queue_advisory_lock(batch, lock_ids)


def queue_advisory_lock(batch: SqlBatch, lock_ids: Iterable[int]) -> None:
    """``advisory_lock`` queued in a batch: the statements queued after it run once the locks
    are granted."""
    ordered = sorted(set(lock_ids))
    if ordered:
        batch.execute(
            "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(%(ids)s AS bigint[])) AS k",
            {"ids": ordered},
        )


# --- source records ----------------------------------------------------------------------


def source_records_by_keys(
    session: Session, keys: Iterable[SourceKey]
) -> dict[SourceKey, SourceRecordRow]:
    wanted = sorted({(k.system, k.table, k.pk) for k in keys})
    if not wanted:
        return {}
    lookup = sa.text(
        "SELECT s.* FROM source_records s"
        " JOIN unnest(CAST(:systems AS text[]), CAST(:tables AS text[]), CAST(:pks AS text[]))"
        " AS k(system, source_table, pk)"
        " ON s.system = k.system AND s.source_table = k.source_table AND s.pk = k.pk"
    ).bindparams(
        systems=[w[0] for w in wanted], tables=[w[1] for w in wanted], pks=[w[2] for w in wanted]
    )
    found: dict[SourceKey, SourceRecordRow] = {}
    for row in session.execute(sa.select(SourceRecordRow).from_statement(lookup)).scalars():
        assert row.pk is not None
        found[SourceKey(row.system, row.source_table, row.pk)] = row
    return found


def find_keyless_duplicate(
    session: Session, system: str, table: str, position: SourcePosition, raw: Any
) -> SourceRecordRow | None:
    """A change without a primary key that was already stored (same place, time and image)."""
    same_raw = (
        col(SourceRecordRow.raw).is_(None)
        if raw is None
        else col(SourceRecordRow.raw) == sa.bindparam("raw_image", raw, type_=JSONB)
    )
    statement = select(SourceRecordRow).where(
        col(SourceRecordRow.system) == system,
        col(SourceRecordRow.source_table) == table,
        col(SourceRecordRow.pk).is_(None),
        col(SourceRecordRow.committed_at) == position.committed_at,
        sa.func.coalesce(col(SourceRecordRow.lsn), -1) == (position.lsn or -1),
        sa.func.coalesce(col(SourceRecordRow.tx_id), -1) == (position.tx_id or -1),
        same_raw,
    )
    return session.exec(statement).first()


def live_pks_before(session: Session, system: str, table: str, lsn: int) -> tuple[list[str], int]:
    """Primary keys of one table's live source rows stored at an LSN below ``lsn``, and how
    many live rows the table has."""
    with SqlBatch(session) as batch:
        pending = batch.query(
            "SELECT count(*), coalesce(array_agg(pk ORDER BY pk) FILTER (WHERE lsn < %(lsn)s),"
            " '{}') FROM source_records WHERE system = %(system)s"
            " AND source_table = %(table)s AND pk IS NOT NULL AND NOT deleted",
            {"system": system, "table": table, "lsn": lsn},
            lambda rows: ([str(pk) for pk in rows[0][1]], int(rows[0][0])),
        )
    return pending.result()


def source_record(session: Session, source_record_id: int) -> SourceRecordRow | None:
    return session.get(SourceRecordRow, source_record_id)


def source_record_by_key(session: Session, key: SourceKey) -> SourceRecordRow | None:
    return source_records_by_keys(session, [key]).get(key)


def source_records(session: Session, ids: Iterable[int]) -> dict[int, SourceRecordRow]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    statement = select(SourceRecordRow).where(any_of(col(SourceRecordRow.id), wanted))
    return {row.id: row for row in session.exec(statement)}


def linked_records_sharing_keys(session: Session, keys: Iterable[str]) -> list[SourceRecordRow]:
    """Linked, live source records with at least one of ``keys``: the match candidates."""
    wanted = sorted(set(keys))
    if not wanted:
        return []
    statement = (
        select(SourceRecordRow)
        .where(
            col(SourceRecordRow.id).in_(
                select(BlockingKeyRow.source_record_id).where(
                    any_of(col(BlockingKeyRow.key), wanted, sa.Text)
                )
            ),
            col(SourceRecordRow.golden_id).is_not(None),
            col(SourceRecordRow.deleted).is_(False),
        )
        .order_by(col(SourceRecordRow.id))
    )
    return list(session.exec(statement))


def members_of(session: Session, golden_ids: Iterable[int]) -> list[SourceRecordRow]:
    """The source records linked to these golden records (linked ones are always live)."""
    wanted = sorted(set(golden_ids))
    if not wanted:
        return []
    statement = (
        select(SourceRecordRow)
        .where(any_of(col(SourceRecordRow.golden_id), wanted))
        .order_by(col(SourceRecordRow.id))
    )
    return list(session.exec(statement))


def queue_allocate_ids(batch: SqlBatch, table: str, count: int) -> Pending[list[int]]:
    """``count`` new ids from ``table``'s id sequence, ascending."""
    return batch.query(
        f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, %(n)s)",
        {"n": max(count, 0)},
        lambda rows: sorted(int(r[0]) for r in rows),
    )


# The columns of a SourceRecordState, in its constructor's order; raw, features and the link
# explanation as JSON text (decoded on first use).
_STATE_COLUMNS = (
    "s.id, s.system, s.source_table, s.pk, s.attributes::text, s.validation_errors, s.lsn,"
    " s.tx_id, s.committed_at, s.deleted, s.golden_id, s.link_score, s.link_decided_by,"
    " s.link_decided_at, s.matcher_version, s.created_at, s.updated_at,"
    " s.raw::text, s.features::text, s.link_explanation::text, s.snapshot"
)


def _state(row: Sequence[Any]) -> SourceRecordState:
    return SourceRecordState(
        id=row[0],
        system=row[1],
        source_table=row[2],
        pk=row[3],
        attributes_text=row[4],
        validation_errors=row[5],
        lsn=row[6],
        tx_id=row[7],
        committed_at=row[8],
        deleted=row[9],
        golden_id=row[10],
        link_score=row[11],
        link_decided_by=row[12],
        link_decided_at=row[13],
        matcher_version=row[14],
        created_at=row[15],
        updated_at=row[16],
        raw_text=row[17],
        features_text=row[18],
        explanation_text=row[19],
        snapshot=row[20],
        read=True,
    )


def _key_arrays(keys: Iterable[SourceKey]) -> dict[str, list[str]] | None:
    wanted = sorted({(k.system, k.table, k.pk) for k in keys})
    if not wanted:
        return None
    return {
        "systems": [w[0] for w in wanted],
        "tables": [w[1] for w in wanted],
        "pks": [w[2] for w in wanted],
    }


_BY_KEYS = (
    " FROM source_records s"
    " JOIN unnest(CAST(%(systems)s AS text[]), CAST(%(tables)s AS text[]),"
    " CAST(%(pks)s AS text[])) AS k(system, source_table, pk)"
    " ON s.system = k.system AND s.source_table = k.source_table AND s.pk = k.pk"
)
_NO_KEYS: dict[str, list[str]] = {"systems": [], "tables": [], "pks": []}


def _states_by_key(rows: list[Any]) -> dict[SourceKey, SourceRecordState]:
    return {SourceKey(r[1], r[2], r[3]): _state(r) for r in rows}


def source_states_by_keys(
    session: Session, keys: Iterable[SourceKey]
) -> dict[SourceKey, SourceRecordState]:
    """The stored rows of these source keys, as states (see ``hub.states``)."""
    with SqlBatch(session) as batch:
        pending = queue_source_states_by_keys(batch, keys)
    return pending.result()


def queue_source_states_by_keys(
    batch: SqlBatch, keys: Iterable[SourceKey]
) -> Pending[dict[SourceKey, SourceRecordState]]:
    return batch.query(
        f"SELECT {_STATE_COLUMNS}{_BY_KEYS}", _key_arrays(keys) or _NO_KEYS, _states_by_key
    )


def source_state(session: Session, source_record_id: int) -> SourceRecordState | None:
    with SqlBatch(session) as batch:
        pending = batch.query(
            f"SELECT {_STATE_COLUMNS} FROM source_records s WHERE s.id = %(id)s",
            {"id": source_record_id},
            lambda rows: [_state(r) for r in rows],
        )
    found = pending.result()
    return found[0] if found else None


def source_state_by_key(session: Session, key: SourceKey) -> SourceRecordState | None:
    return source_states_by_keys(session, [key]).get(key)


@dataclass(frozen=True)
class GoldenQuery:
    """Golden records named by a query the database evaluates when the statement runs (so
    locking them and reading them needs no round trip to learn their ids first)."""

    sql: str
    """A ``SELECT`` of golden ids."""
    params: Mapping[str, Any]


GoldenIds = Iterable[int] | GoldenQuery


def _golden_condition(golden_ids: GoldenIds) -> tuple[str, Mapping[str, Any]]:
    """``<column> <condition>`` matching these golden records, and its parameters."""
    if isinstance(golden_ids, GoldenQuery):
        # An array built once (an init plan), so the planner probes the index with it.
        return f"= ANY(ARRAY({golden_ids.sql}))", golden_ids.params
    return "= ANY(CAST(%(golden_ids)s AS bigint[]))", {"golden_ids": sorted(set(golden_ids))}


# The blocking keys of ``%(keys)s`` and their source records. For a few keys, one index probe
# per key: the subquery is fenced (OFFSET 0) so that the planner, misled by missing or stale
# statistics, cannot scan the whole table instead. For many keys, the planner chooses.
PROBED_KEYS_MAX = 256
_PROBED_CANDIDATES = (
    " FROM unnest(CAST(%(keys)s AS text[])) AS k(key) CROSS JOIN LATERAL"
    " (SELECT key, source_record_id FROM blocking_keys WHERE key = k.key OFFSET 0) AS b"
)
_MATCHED_CANDIDATES = " FROM blocking_keys b WHERE b.key = ANY(CAST(%(keys)s AS text[]))"


def _candidates(keys: Sequence[str]) -> str:
    return _PROBED_CANDIDATES if len(keys) <= PROBED_KEYS_MAX else _MATCHED_CANDIDATES


_GOLDEN_OF_CANDIDATE = "(SELECT c.golden_id FROM source_records c WHERE c.id = b.source_record_id)"


def goldens_of_batch(keys: Iterable[SourceKey], blocking_keys: Sequence[str]) -> GoldenQuery:
    """The golden records of a batch: those of its stored rows, of the records sharing one of
    its blocking keys, and of the constraint partners of its rows."""
    return GoldenQuery(
        "WITH s AS (SELECT s.id, s.golden_id" + _BY_KEYS + ")"
        " SELECT golden_id FROM s"
        f" UNION SELECT {_GOLDEN_OF_CANDIDATE}{_candidates(blocking_keys)}"
        " UNION SELECT p.golden_id FROM match_constraints m"
        " JOIN source_records p"
        " ON p.id IN (m.left_source_record_id, m.right_source_record_id)"
        " WHERE m.left_source_record_id IN (SELECT id FROM s)"
        " OR m.right_source_record_id IN (SELECT id FROM s)",
        {**(_key_arrays(keys) or _NO_KEYS), "keys": list(blocking_keys)},
    )


def queue_member_states(batch: SqlBatch, golden_ids: GoldenIds) -> Pending[list[SourceRecordState]]:
    """The source records linked to these golden records, as states, in id order."""
    condition, params = _golden_condition(golden_ids)
    return batch.query(
        f"SELECT {_STATE_COLUMNS} FROM source_records s WHERE s.golden_id {condition}"
        " ORDER BY s.id",
        params,
        lambda rows: [_state(r) for r in rows],
    )


def queue_blocking_candidates(
    batch: SqlBatch, keys: Sequence[str]
) -> Pending[list[tuple[str, int, int | None]]]:
    """(key, source record id, its golden id) for every stored blocking key among ``keys``."""
    return batch.query(
        f"SELECT b.key, b.source_record_id, {_GOLDEN_OF_CANDIDATE}{_candidates(keys)}",
        {"keys": list(keys)},
        lambda rows: [(r[0], r[1], r[2]) for r in rows],
    )


# Column types of the rows the write path inserts (``SqlBatch.insert``), in insert order.
_SOURCE_TYPES = {
    "id": "bigint",
    "system": "text",
    "source_table": "text",
    "pk": "text",
    "raw": "jsonb",
    "attributes": "jsonb",
    "features": "jsonb",
    "validation_errors": "jsonb",
    "lsn": "bigint",
    "tx_id": "bigint",
    "committed_at": "timestamptz",
    "snapshot": "boolean",
    "deleted": "boolean",
    "golden_id": "bigint",
    "link_score": "double precision",
    "link_explanation": "jsonb",
    "link_decided_by": "text",
    "link_decided_at": "timestamptz",
    "matcher_version": "text",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
}
_SOURCE_COLUMNS = tuple(_SOURCE_TYPES.items())
_SOURCE_JSON_COLUMNS = frozenset(name for name, kind in _SOURCE_COLUMNS if kind == "jsonb")


def write_source_records(batch: SqlBatch, records: Iterable[SourceRecordState]) -> None:
    """Insert the new source records and update the changed columns of the others.

    Updates are grouped by the set of columns that changed, one statement per group; a column
    not changed in memory is not written, so a concurrent change to it is not overwritten.
    """
    states = list(records)
    new = sorted((r for r in states if r.is_new), key=lambda r: r.id)
    updates: dict[tuple[str, ...], list[tuple[int, str]]] = {}
    for record in states:
        if record.is_new:
            continue
        changed = tuple(record.changed_columns())
        if changed:
            # The row as a JSON object, each JSON column as the text it was encoded to once.
            fields = [f'"id":{record.id}']
            for name in changed:
                if name in _SOURCE_JSON_COLUMNS:
                    text = record.json_text(name)
                    fields.append(f'"{name}":{"null" if text is None else text}')
                else:
                    fields.append(f'"{name}":{to_json(_json_field(getattr(record, name)))}')
            updates.setdefault(changed, []).append((record.id, "{" + ",".join(fields) + "}"))
    batch.insert(
        "source_records",
        _SOURCE_COLUMNS,
        [
            tuple(
                r.json_text(name) if name in _SOURCE_JSON_COLUMNS else getattr(r, name)
                for name, _ in _SOURCE_COLUMNS
            )
            for r in new
        ],
    )
    for changed, rows in sorted(updates.items()):
        assignments = ", ".join(f"{name} = v.{name}" for name in changed)
        columns = ", ".join(["id bigint", *(f"{name} {_SOURCE_TYPES[name]}" for name in changed)])
        rows.sort()
        batch.execute(
            f"UPDATE source_records s SET {assignments}"
            f" FROM {_recordset(columns)} WHERE s.id = v.id",
            {"rows": "[" + ",".join(text for _, text in rows) + "]"},
        )
    for record in states:
        record.mark_written()


def replace_blocking_keys(batch: SqlBatch, keys_by_record: Mapping[int, Sequence[str]]) -> None:
    """Make the blocking keys of these records exactly the given ones (none: not a candidate)."""
    if not keys_by_record:
        return
    batch.execute(
        "DELETE FROM blocking_keys WHERE source_record_id = ANY(CAST(%(ids)s AS bigint[]))",
        {"ids": sorted(keys_by_record)},
    )
    batch.insert(
        "blocking_keys",
        (("key", "text"), ("source_record_id", "bigint")),
        [
            (key, record_id)
            for record_id, keys in sorted(keys_by_record.items())
            for key in sorted(set(keys))
        ],
    )


def blocking_pairs(session: Session, keys: Sequence[str]) -> list[tuple[str, int]]:
    """(key, source record id) for every stored blocking key among ``keys``."""
    if not keys:
        return []
    statement = select(BlockingKeyRow.key, BlockingKeyRow.source_record_id).where(
        any_of(col(BlockingKeyRow.key), keys, sa.Text)
    )
    return [(key, record_id) for key, record_id in session.exec(statement)]


def blocking_keys_of(session: Session, source_record_ids: Iterable[int]) -> dict[int, list[str]]:
    wanted = sorted(set(source_record_ids))
    result: dict[int, list[str]] = {i: [] for i in wanted}
    if not wanted:
        return result
    statement = (
        select(BlockingKeyRow)
        .where(any_of(col(BlockingKeyRow.source_record_id), wanted))
        .order_by(col(BlockingKeyRow.source_record_id), col(BlockingKeyRow.key))
    )
    for row in session.exec(statement):
        result[row.source_record_id].append(row.key)
    return result


# --- golden records ----------------------------------------------------------------------


def golden_record(session: Session, golden_id: int) -> GoldenRecordRow | None:
    return session.get(GoldenRecordRow, golden_id)


def queue_lock_golden_states(
    batch: SqlBatch, golden_ids: GoldenIds
) -> Pending[dict[int, GoldenState]]:
    """``SELECT ... FOR UPDATE`` in id order; the rows as states (see ``hub.states``)."""
    condition, params = _golden_condition(golden_ids)
    return batch.query(
        "SELECT id, attributes, version, status, merged_into, created_at, updated_at"
        f" FROM golden_records WHERE id {condition} ORDER BY id FOR UPDATE",
        params,
        lambda rows: {
            r[0]: GoldenState(
                id=r[0],
                attributes=r[1],
                version=r[2],
                status=r[3],
                merged_into=r[4],
                created_at=r[5],
                updated_at=r[6],
                read=True,
            )
            for r in rows
        },
    )


def write_golden_records(batch: SqlBatch, states: Iterable[GoldenState]) -> None:
    """Insert the new golden records and update the changed ones (one statement)."""
    new: list[GoldenState] = []
    changed: list[GoldenState] = []
    for state in states:
        if state.is_new:
            new.append(state)
        elif state.changed():
            changed.append(state)
    batch.insert(
        "golden_records",
        (
            ("id", "bigint"),
            ("attributes", "jsonb"),
            ("version", "integer"),
            ("status", "text"),
            ("merged_into", "bigint"),
            ("created_at", "timestamptz"),
            ("updated_at", "timestamptz"),
        ),
        [
            (
                g.id,
                to_json(g.attributes),
                g.version,
                g.status,
                g.merged_into,
                g.created_at,
                g.updated_at,
            )
            for g in sorted(new, key=lambda g: g.id)
        ],
    )
    if changed:
        rows = [
            {
                "id": g.id,
                "attributes": g.attributes,
                "version": g.version,
                "status": g.status,
                "merged_into": g.merged_into,
                "updated_at": g.updated_at.isoformat(),
            }
            for g in sorted(changed, key=lambda g: g.id)
        ]
        columns = (
            "id bigint, attributes jsonb, version integer, status text, merged_into bigint,"
            " updated_at timestamptz"
        )
        batch.execute(
            "UPDATE golden_records g SET attributes = v.attributes, version = v.version,"
            " status = v.status, merged_into = v.merged_into, updated_at = v.updated_at"
            f" FROM {_recordset(columns)} WHERE g.id = v.id",
            {"rows": to_json(rows)},
        )
    for state in (*new, *changed):
        state.mark_written()


def all_golden_ids(session: Session) -> list[int]:
    return list(session.exec(select(GoldenRecordRow.id).order_by(col(GoldenRecordRow.id))))


def allocate_golden_id(session: Session) -> int:
    value = session.execute(
        sa.text("SELECT nextval(pg_get_serial_sequence('golden_records', 'id'))")
    ).scalar_one()
    return int(value)


def allocate_golden_ids(session: Session, count: int) -> list[int]:
    """``count`` new golden ids from the sequence, ascending."""
    with SqlBatch(session) as batch:
        pending = queue_allocate_ids(batch, "golden_records", count)
    return pending.result()


def pins_of(session: Session, golden_ids: Iterable[int]) -> dict[int, dict[str, Pin]]:
    wanted = sorted(set(golden_ids))
    with SqlBatch(session) as batch:
        pending = queue_pins_of(batch, wanted)
    found = pending.result()
    return {golden_id: found.get(golden_id, {}) for golden_id in wanted}


def queue_pins_of(batch: SqlBatch, golden_ids: GoldenIds) -> Pending[dict[int, dict[str, Pin]]]:
    """The pins of these golden records (those without any get none in the result)."""

    def convert(rows: list[Any]) -> dict[int, dict[str, Pin]]:
        result: dict[int, dict[str, Pin]] = {}
        for golden_id, attribute, value, pinned_by, reason, pinned_at in rows:
            result.setdefault(golden_id, {})[attribute] = Pin(
                attribute=attribute,
                value=value,
                pinned_by=pinned_by,
                reason=reason,
                pinned_at=pinned_at,
            )
        return result

    condition, params = _golden_condition(golden_ids)
    return batch.query(
        "SELECT golden_id, attribute, value, pinned_by, reason, pinned_at FROM golden_pins"
        f" WHERE golden_id {condition} ORDER BY golden_id, attribute",
        params,
        convert,
    )


def replace_pins(batch: SqlBatch, golden_id: int, pins: Mapping[str, Pin]) -> None:
    batch.execute("DELETE FROM golden_pins WHERE golden_id = %(id)s", {"id": golden_id})
    batch.insert(
        "golden_pins",
        (
            ("golden_id", "bigint"),
            ("attribute", "text"),
            ("value", "jsonb"),
            ("pinned_by", "text"),
            ("reason", "text"),
            ("pinned_at", "timestamptz"),
        ),
        [
            (golden_id, pin.attribute, to_json(pin.value), pin.pinned_by, pin.reason, pin.pinned_at)
            for pin in sorted(pins.values(), key=lambda p: p.attribute)
        ],
    )


def lineage_of(session: Session, golden_id: int) -> list[AttributeLineageRow]:
    statement = (
        select(AttributeLineageRow)
        .where(col(AttributeLineageRow.golden_id) == golden_id)
        .order_by(col(AttributeLineageRow.attribute))
    )
    return list(session.exec(statement))


_LINEAGE_COLUMNS = (
    ("golden_id", "bigint"),
    ("attribute", "text"),
    ("value", "jsonb"),
    ("source_record_id", "bigint"),
    ("lsn", "bigint"),
    ("tx_id", "bigint"),
    ("committed_at", "timestamptz"),
    ("rule", "text"),
    ("rule_set_version", "text"),
    ("pinned", "boolean"),
    ("pin_reason", "text"),
    ("pinned_by", "text"),
)


def replace_lineage(
    batch: SqlBatch, golden_ids: Iterable[int], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Make the lineage of these golden records exactly ``rows``."""
    wanted = sorted(set(golden_ids))
    if wanted:
        batch.execute(
            "DELETE FROM attribute_lineage WHERE golden_id = ANY(CAST(%(ids)s AS bigint[]))",
            {"ids": wanted},
        )
    batch.insert(
        "attribute_lineage",
        _LINEAGE_COLUMNS,
        [
            tuple(to_json(row[c]) if c == "value" else row[c] for c, _ in _LINEAGE_COLUMNS)
            for row in rows
        ],
    )


# --- history and outbox ------------------------------------------------------------------


HISTORY_LOCK = lock_id("history", "append")


def append_history(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append history events, numbering them in commit order.

    The events' ``sequence`` comes from an identity column, and a sequence value is drawn when
    a row is inserted, not when it commits. To make sequence order commit order, appending
    takes a transaction-scoped advisory lock that is released only at commit or rollback:
    while one transaction holds it no other can draw a sequence number, so every number a
    reader can see is lower than any a transaction in flight will commit. A changes feed that
    reads "sequence > cursor" therefore never skips an event (a rollback only leaves a gap).
    Callers append as late as they can: only short inserts may follow.
    """
    with SqlBatch(session) as batch:
        queue_history(batch, rows)


_HISTORY_COLUMNS = (
    ("golden_id", "bigint"),
    ("kind", "text"),
    ("version", "integer"),
    ("cause", "text"),
    ("actor", "text"),
    ("occurred_at", "timestamptz"),
    ("data", "jsonb"),
)


def queue_history(batch: SqlBatch, rows: Sequence[Mapping[str, Any]]) -> None:
    """``append_history`` queued in a batch (the lock is taken when the batch runs)."""
    if not rows:
        return
    batch.execute("SELECT pg_advisory_xact_lock(%(id)s)", {"id": HISTORY_LOCK})
    batch.insert(
        "golden_history",
        _HISTORY_COLUMNS,
        [
            tuple(to_json(row[c]) if c == "data" else row[c] for c, _ in _HISTORY_COLUMNS)
            for row in rows
        ],
    )


def history_after(session: Session, cursor: int, limit: int) -> list[GoldenHistoryRow]:
    """History events with ``sequence > cursor`` in sequence (= commit) order."""
    statement = (
        select(GoldenHistoryRow)
        .where(col(GoldenHistoryRow.sequence) > cursor)
        .order_by(col(GoldenHistoryRow.sequence))
        .limit(limit)
    )
    return list(session.exec(statement))


def history_of(session: Session, golden_id: int) -> list[GoldenHistoryRow]:
    statement = (
        select(GoldenHistoryRow)
        .where(col(GoldenHistoryRow.golden_id) == golden_id)
        .order_by(col(GoldenHistoryRow.sequence))
    )
    return list(session.exec(statement))


_OUTBOX_SCALARS = (
    ("golden_id", "bigint"),
    ("version", "integer"),
    ("target", "text"),
    ("idempotency_key", "text"),
    ("created_at", "timestamptz"),
    ("attempts", "integer"),
    ("next_attempt_at", "timestamptz"),
    ("source_committed_at", "timestamptz"),
)
_OUTBOX_INSERT = (
    f"INSERT INTO outbox ({', '.join(name for name, _ in _OUTBOX_SCALARS)}, payload)"
    f" SELECT {', '.join(f'CAST(e.r ->> {i} AS {t})' for i, (_, t) in enumerate(_OUTBOX_SCALARS))},"
    f" CAST(e.r -> {len(_OUTBOX_SCALARS)} AS jsonb)"
    f" FROM {_ROWS_PARAMETER} WITH ORDINALITY AS e(r, n)"
    " ORDER BY e.n ON CONFLICT (idempotency_key) DO NOTHING"
)


def add_outbox(batch: SqlBatch, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert outbox rows, in order; a row whose idempotency key exists is left as it is.

    A row may carry ``payload_json``, its payload already encoded (the targets of one golden
    change share one payload, encoded once).
    """
    if not rows:
        return
    encoded = []
    times: dict[Any, str] = {}  # the rows of one call share a few instants: encoded once

    def instant(value: Any) -> str:
        text = times.get(value)
        if text is None:
            text = times[value] = to_json(_json_field(value))
        return text

    for row in rows:
        payload = row.get("payload_json") or to_json(row["payload"])
        fields = [
            instant(row.get(name)) if kind == "timestamptz" else to_json(row.get(name))
            for name, kind in _OUTBOX_SCALARS
        ]
        encoded.append(f"[{','.join(fields)},{payload}]")
    batch.execute(_OUTBOX_INSERT, {"rows": "[" + ",".join(encoded) + "]"})


def claim_outbox(
    session: Session, target: str, limit: int, now: datetime, lease_until: datetime
) -> list[OutboxRow]:
    """Due, undelivered outbox rows of ``target`` in id order, leased until ``lease_until``.

    ``SKIP LOCKED`` lets several relays share a target without blocking each other; the lease
    (``next_attempt_at``) keeps a claimed row from being claimed again before it expires.
    """
    statement = (
        select(OutboxRow)
        .where(
            col(OutboxRow.target) == target,
            col(OutboxRow.delivered_at).is_(None),
            col(OutboxRow.next_attempt_at) <= now,
        )
        .order_by(col(OutboxRow.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list(session.exec(statement))
    for row in rows:
        row.attempts += 1
        row.next_attempt_at = lease_until
    return rows


def mark_outbox_delivered(session: Session, outbox_ids: Sequence[int], at: datetime) -> int:
    result = session.execute(
        sa.update(OutboxRow)
        .where(any_of(col(OutboxRow.id), outbox_ids), col(OutboxRow.delivered_at).is_(None))
        .values(
            delivered_at=at,
            acknowledged_at=sa.func.coalesce(col(OutboxRow.acknowledged_at), at),
            last_error=None,
        )
        .returning(col(OutboxRow.id))
    )
    return len(result.all())


def mark_outbox_failed(session: Session, outbox_id: int, error: str, retry_at: datetime) -> bool:
    result = session.execute(
        sa.update(OutboxRow)
        .where(col(OutboxRow.id) == outbox_id, col(OutboxRow.delivered_at).is_(None))
        .values(last_error=error, next_attempt_at=retry_at)
        .returning(col(OutboxRow.id))
    )
    return result.first() is not None


def invalid_source_records(session: Session, after_id: int, limit: int) -> list[SourceRecordRow]:
    """Source records kept with validation errors, for stewards (oldest first)."""
    statement = (
        select(SourceRecordRow)
        .where(
            col(SourceRecordRow.validation_errors).is_not(None),
            col(SourceRecordRow.id) > after_id,
        )
        .order_by(col(SourceRecordRow.id))
        .limit(limit)
    )
    return list(session.exec(statement))


def resolve_golden_id(session: Session, golden_id: int) -> int | None:
    """Follow ``merged_into`` from ``golden_id`` to the record it resolves to."""
    row = session.get(GoldenRecordRow, golden_id)
    seen: set[int] = set()
    while row is not None and row.merged_into is not None and row.id not in seen:
        seen.add(row.id)
        row = session.get(GoldenRecordRow, row.merged_into)
    return None if row is None else row.id


# --- steward state -----------------------------------------------------------------------


def constraints_involving(
    session: Session, source_record_ids: Iterable[int]
) -> list[MatchConstraintRow]:
    wanted = sorted(set(source_record_ids))
    if not wanted:
        return []
    statement = (
        select(MatchConstraintRow)
        .where(
            sa.or_(
                any_of(col(MatchConstraintRow.left_source_record_id), wanted),
                any_of(col(MatchConstraintRow.right_source_record_id), wanted),
            )
        )
        .order_by(col(MatchConstraintRow.id))
    )
    return list(session.exec(statement))


class ConstraintPair(NamedTuple):
    kind: str
    left_source_record_id: int
    right_source_record_id: int


def queue_constraints_of_keys(
    batch: SqlBatch, keys: Iterable[SourceKey]
) -> Pending[list[tuple[ConstraintPair, int | None, int | None]]]:
    """The constraints involving the stored rows of these source keys, in id order, each with
    the golden ids of its two source records."""
    return batch.query(
        "WITH s AS (SELECT s.id" + _BY_KEYS + ")"
        " SELECT c.kind, c.left_source_record_id, c.right_source_record_id,"
        " l.golden_id, r.golden_id FROM match_constraints c"
        " JOIN source_records l ON l.id = c.left_source_record_id"
        " JOIN source_records r ON r.id = c.right_source_record_id"
        " WHERE c.left_source_record_id IN (SELECT id FROM s)"
        " OR c.right_source_record_id IN (SELECT id FROM s) ORDER BY c.id",
        _key_arrays(keys) or _NO_KEYS,
        lambda rows: [(ConstraintPair(r[0], r[1], r[2]), r[3], r[4]) for r in rows],
    )


def all_constraints(session: Session) -> list[MatchConstraintRow]:
    return list(session.exec(select(MatchConstraintRow).order_by(col(MatchConstraintRow.id))))


def add_constraints(
    session: Session,
    kind: str,
    pairs: Iterable[tuple[int, int]],
    created_by: str,
    reason: str,
    at: datetime,
) -> int:
    """Record must-link / cannot-link pairs (an existing pair is kept); returns how many new."""
    rows = [
        {
            "kind": kind,
            "left_source_record_id": min(a, b),
            "right_source_record_id": max(a, b),
            "created_by": created_by,
            "reason": reason,
            "created_at": at,
        }
        for a, b in sorted({(min(a, b), max(a, b)) for a, b in pairs if a != b})
    ]
    if not rows:
        return 0
    statement = (
        pg_insert(MatchConstraintRow)
        .on_conflict_do_nothing(constraint="uq_match_constraints_pair")
        .returning(col(MatchConstraintRow.id))
    )
    return len(session.execute(statement, rows).all())


def remove_constraints(
    session: Session, kind: str, pairs: Iterable[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Delete constraints of ``kind`` between these pairs; returns the pairs that had one."""
    ordered = sorted({(min(a, b), max(a, b)) for a, b in pairs if a != b})
    if not ordered:
        return []
    result = session.execute(
        sa.delete(MatchConstraintRow)
        .where(
            col(MatchConstraintRow.kind) == kind,
            sa.tuple_(
                col(MatchConstraintRow.left_source_record_id),
                col(MatchConstraintRow.right_source_record_id),
            ).in_(ordered),
        )
        .returning(
            col(MatchConstraintRow.left_source_record_id),
            col(MatchConstraintRow.right_source_record_id),
        )
    )
    return sorted((int(left), int(right)) for left, right in result)


def open_review_tasks_for(
    session: Session,
    *,
    source_record_ids: Iterable[int] = (),
    golden_ids: Iterable[int] = (),
) -> list[ReviewTaskRow]:
    """Open or deferred tasks that involve these source records or golden records."""
    sources = sorted(set(source_record_ids))
    goldens = sorted(set(golden_ids))
    conditions: list[sa.ColumnElement[bool]] = []
    if sources:
        conditions.append(any_of(col(ReviewTaskRow.source_record_id), sources))
        conditions.append(any_of(col(ReviewTaskRow.candidate_source_record_id), sources))
    if goldens:
        conditions.append(any_of(col(ReviewTaskRow.golden_id), goldens))
        conditions.append(any_of(col(ReviewTaskRow.candidate_golden_id), goldens))
    if not conditions:
        return []
    statement = (
        select(ReviewTaskRow)
        .where(col(ReviewTaskRow.status).in_(("open", "deferred")), sa.or_(*conditions))
        .order_by(col(ReviewTaskRow.id))
        .with_for_update()
    )
    return list(session.exec(statement))


def queue_open_review_pairs(
    batch: SqlBatch, source_record_ids: Iterable[int]
) -> Pending[list[tuple[int | None, int]]]:
    """(source record, candidate golden) of the open or deferred tasks that involve these
    source records, locked (``FOR UPDATE``) like ``open_review_tasks_for``."""
    return batch.query(
        "SELECT source_record_id, candidate_golden_id FROM review_tasks"
        " WHERE status IN ('open', 'deferred')"
        " AND (source_record_id = ANY(CAST(%(ids)s AS bigint[]))"
        " OR candidate_source_record_id = ANY(CAST(%(ids)s AS bigint[])))"
        " ORDER BY id FOR UPDATE",
        {"ids": sorted(set(source_record_ids))},
        lambda rows: [(r[0], r[1]) for r in rows],
    )


def supersede_open_tasks(batch: SqlBatch, source_record_ids: Iterable[int]) -> None:
    """Open or deferred tasks about these source records become superseded."""
    wanted = sorted(set(source_record_ids))
    if wanted:
        batch.execute(
            "UPDATE review_tasks SET status = 'superseded'"
            " WHERE source_record_id = ANY(CAST(%(ids)s AS bigint[]))"
            " AND status IN ('open', 'deferred')",
            {"ids": wanted},
        )


_REVIEW_COLUMNS = {
    "kind": "text",
    "source_record_id": "bigint",
    "golden_id": "bigint",
    "candidate_golden_id": "bigint",
    "candidate_source_record_id": "bigint",
    "score": "double precision",
    "explanation": "jsonb",
    "matcher_version": "text",
    "priority": "integer",
    "status": "text",
    "created_at": "timestamptz",
}


def supersede_merged_pairs(batch: SqlBatch, merges: Mapping[int, int]) -> None:
    """Open or deferred source-vs-golden tasks that a bridging merge answered (the source
    record and the candidate are now the same golden record) become superseded. Queued after
    the source records are written."""
    if not merges:
        return
    losers = sorted(merges)
    batch.execute(
        "UPDATE review_tasks t SET status = 'superseded' FROM source_records s"
        " WHERE s.id = t.source_record_id AND t.status IN ('open', 'deferred')"
        " AND s.golden_id = ANY(CAST(%(survivors)s AS bigint[]))"
        " AND (t.candidate_golden_id = s.golden_id OR EXISTS (SELECT 1 FROM"
        " unnest(CAST(%(losers)s AS bigint[]), CAST(%(into)s AS bigint[])) AS m(loser, into_id)"
        " WHERE m.loser = t.candidate_golden_id AND m.into_id = s.golden_id))",
        {
            "survivors": sorted(set(merges.values())),
            "losers": losers,
            "into": [merges[loser] for loser in losers],
        },
    )


def queue_review_tasks(batch: SqlBatch, rows: Sequence[Mapping[str, Any]]) -> Pending[list[int]]:
    """Insert review tasks in order; the result is their ids. A row may carry
    ``explanation_json``, its explanation already encoded."""
    names = ", ".join(_REVIEW_COLUMNS)
    columns = ", ".join(f"{name} {kind}" for name, kind in _REVIEW_COLUMNS.items())
    encoded = []
    for row in rows:
        fields = []
        for name in _REVIEW_COLUMNS:
            text = row.get("explanation_json") if name == "explanation" else None
            fields.append(f'"{name}":{text or to_json(_json_field(row.get(name)))}')
        encoded.append("{" + ",".join(fields) + "}")
    return batch.query(
        f"INSERT INTO review_tasks ({names})"
        f" SELECT {names} FROM {_recordset(columns)} RETURNING id",
        {"rows": "[" + ",".join(encoded) + "]"},
        lambda result: sorted(int(r[0]) for r in result),
    )


def review_task(session: Session, task_id: int, *, lock: bool = False) -> ReviewTaskRow | None:
    statement = select(ReviewTaskRow).where(col(ReviewTaskRow.id) == task_id)
    if lock:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def open_review_tasks(session: Session, limit: int) -> list[ReviewTaskRow]:
    statement = (
        select(ReviewTaskRow)
        .where(col(ReviewTaskRow.status) == "open")
        .order_by(col(ReviewTaskRow.priority).desc(), col(ReviewTaskRow.id))
        .limit(limit)
    )
    return list(session.exec(statement))


# --- positions and dead letters ----------------------------------------------------------


def queue_applied_offset(batch: SqlBatch, source: str, partition: str) -> Pending[int | None]:
    return batch.query(
        'SELECT "offset" FROM applied_positions'
        ' WHERE source = %(source)s AND "partition" = %(partition)s',
        {"source": source, "partition": partition},
        lambda rows: int(rows[0][0]) if rows else None,
    )


def record_applied_position(
    batch: SqlBatch, source: str, partition: str, offset: int, at: datetime
) -> None:
    batch.execute(
        'INSERT INTO applied_positions (source, "partition", "offset", applied_at)'
        " VALUES (%(source)s, %(partition)s, %(offset)s, %(at)s)"
        ' ON CONFLICT (source, "partition") DO UPDATE'
        ' SET "offset" = excluded."offset", applied_at = excluded.applied_at'
        ' WHERE applied_positions."offset" < excluded."offset"',
        {"source": source, "partition": partition, "offset": offset, "at": at},
    )


def dead_letter_fingerprint(letter: DeadLetter) -> str:
    digest = hashlib.sha256()
    for part in (
        letter.source.encode(),
        letter.raw_key or b"",
        letter.raw_value or b"",
        json.dumps(letter.position, sort_keys=True, default=str).encode(),
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def record_dead_letters(session: Session, letters: Sequence[DeadLetter], at: datetime) -> None:
    """Store poison messages; one seen before gets ``attempts + 1`` and a new ``last_seen_at``."""
    with SqlBatch(session) as batch:
        queue_dead_letters(batch, letters, at)


def queue_dead_letters(batch: SqlBatch, letters: Sequence[DeadLetter], at: datetime) -> None:
    """``record_dead_letters`` queued in a batch."""
    for letter in letters:
        batch.execute(
            "INSERT INTO dead_letters (fingerprint, source, raw_key, raw_value, position,"
            " reason, error_class, first_seen_at, last_seen_at, attempts, status)"
            " VALUES (%(fingerprint)s, %(source)s, %(raw_key)s, %(raw_value)s,"
            " CAST(%(position)s AS jsonb), %(reason)s, %(error_class)s, %(at)s, %(at)s, 1, 'open')"
            " ON CONFLICT (fingerprint) DO UPDATE SET attempts = dead_letters.attempts + 1,"
            " last_seen_at = excluded.last_seen_at, reason = excluded.reason,"
            " error_class = excluded.error_class",
            {
                "fingerprint": dead_letter_fingerprint(letter),
                "source": letter.source,
                "raw_key": letter.raw_key,
                "raw_value": letter.raw_value,
                "position": None if letter.position is None else to_json(dict(letter.position)),
                "reason": letter.reason,
                "error_class": letter.error_class,
                "at": at,
            },
        )
