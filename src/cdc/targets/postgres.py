"""PostgreSQL write-back: the golden id and the hub-owned fields into the source rows.

A delivery of golden record G to the target of source system S runs these steps, whose order
the correctness depends on:

1. Read from the hub, in one snapshot, G's current state and every row of S that is or once
   was linked to G, each with its current link, merges followed
   (``Publishing.writeback_state``).
2. Open a transaction in the source database and, before its first update, emit the
   transactional logical message ``mdh.writeback`` (``cdc.mapping.WRITEBACK_MESSAGE_PREFIX``): change capture
   delivers it ahead of this transaction's row changes, with the same transaction id, and
   the mapper recognises those changes as the hub's own and does not apply them. So the
   write-back neither makes a new golden version nor makes the source record look more
   recent to survivorship (no echo loop).
3. Lock the rows (``FOR UPDATE``, in table and key order, so relays writing overlapping rows
   take turns) and work out what each should hold: its current golden id in the
   cross-reference column, and, when it is linked to G, G's hub-owned fields (the mapped
   attributes; an absent value, or one longer than the column, leaves the column alone).
4. Update only the rows that differ and commit: a repeated delivery writes nothing, not even
   the message.

Each delivery writes the current state, not its payload, so deliveries of different golden
records may arrive in any order and every row still ends with its current link: a merged-away
id is replaced by the survivor's (the deliveries of both records write it), rows split off by
an unmerge get the new record's id, a row that left every golden record is cleared.

The hub owns the fields it writes: a user's edit of one is overwritten by the next write-back.
An edit made in the instant before a write-back is overwritten even so, but it is captured
(it is not the hub's transaction): if that system is where the attribute's golden value comes
from, the next golden version carries it and the write-back after it puts it back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from cdc.mapping import WRITEBACK_MESSAGE_PREFIX
from cdc.targets.base import (
    DeliveryDeferredError,
    DeliveryRejectedError,
    DeliveryTarget,
    TargetSetupError,
    TargetUnavailableError,
)
from cdc.targets.config import FieldSource, PostgresTable, PostgresTargetSpec
from cdc.targets.document import as_text, extract
from hub.model import GoldenStatus
from hub.services.sync import Delivery, LinkedSourceRow, WritebackState

logger = logging.getLogger(__name__)

PK_SEPARATOR = "|"
"""How the crosswalk joins a composite primary key (``cdc.mapping``)."""

StateReader = Callable[[int, str], WritebackState]

_DEFERRING = (
    psycopg.errors.LockNotAvailable,
    psycopg.errors.QueryCanceled,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
)
_REJECTING = (psycopg.errors.DataError, psycopg.errors.IntegrityError)


@dataclass(frozen=True)
class _Column:
    name: str
    type: str
    """As ``format_type`` spells it; values are cast to it."""
    max_length: int | None


@dataclass(frozen=True)
class _Field:
    column: _Column
    source: FieldSource


@dataclass(frozen=True)
class _Table:
    relation: sql.Composable
    label: str
    key: tuple[_Column, ...]
    golden_id: _Column
    fields: tuple[_Field, ...]

    @property
    def read_columns(self) -> tuple[_Column, ...]:
        return (self.golden_id, *(f.column for f in self.fields))


class PostgresTarget(DeliveryTarget):
    """Write-back into one source system's database (module docstring).

    Args:
        name: the target's name.
        spec: its settings (tables, key columns, fields, owned attributes).
        state: reads a golden record's write-back state from the hub
            (``Publishing.writeback_state``).
    """

    def __init__(self, name: str, spec: PostgresTargetSpec, state: StateReader) -> None:
        super().__init__(name, spec.events, spec.delivery)
        self.spec = spec
        self.system = spec.system or name
        self._state = state
        self._conn: psycopg.Connection[Any] | None = None
        self._tables: dict[str, _Table] = {}

    # --- set-up --------------------------------------------------------------------------

    def open(self) -> None:
        conn = self._connection()
        try:
            self._tables = {
                name: self._describe(conn, name, table) for name, table in self.spec.tables.items()
            }
        except psycopg.OperationalError as exc:
            self._drop_connection()
            raise TargetUnavailableError(self.name, _first_line(exc)) from exc

    def _describe(self, conn: psycopg.Connection[Any], name: str, spec: PostgresTable) -> _Table:
        schema, _, table = (spec.table or name).rpartition(".")
        schema = schema or "public"
        columns: dict[str, _Column] = {}
        for column_name, type_, length in conn.execute(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod),
                   CASE WHEN a.atttypid IN ('varchar'::regtype, 'bpchar'::regtype)
                             AND a.atttypmod > 4 THEN a.atttypmod - 4 END
            FROM pg_attribute a
            WHERE a.attrelid = to_regclass(format('%%I.%%I', %s::text, %s::text))
              AND a.attnum > 0 AND NOT a.attisdropped
            """,
            (schema, table),
        ):
            columns[column_name] = _Column(column_name, type_, length)
        label = f"{schema}.{table}"
        if not columns:
            raise TargetSetupError(self.name, f"table {label} (tables.{name}) does not exist")

        def column(column_name: str, key: str) -> _Column:
            found = columns.get(column_name)
            if found is None:
                raise TargetSetupError(
                    self.name, f"{label} has no column {column_name!r} (tables.{name}.{key})"
                )
            return found

        return _Table(
            relation=sql.Identifier(schema, table),
            label=label,
            key=tuple(column(c, "key") for c in spec.key),
            golden_id=column(spec.golden_id_column, "golden_id_column"),
            fields=tuple(
                _Field(column(c, f"fields.{c}"), source) for c, source in spec.fields.items()
            ),
        )

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            timeout_ms = int(self.delivery.timeout_seconds * 1000)
            try:
                self._conn = psycopg.connect(
                    self.spec.connection.get_secret_value(),
                    autocommit=True,
                    connect_timeout=max(1, int(self.delivery.timeout_seconds)),
                    application_name=f"mdh-relay:{self.name}",
                    options=f"-c lock_timeout={timeout_ms // 2} -c statement_timeout={timeout_ms}",
                )
            except psycopg.OperationalError as exc:
                raise TargetUnavailableError(self.name, _first_line(exc)) from exc
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        self._drop_connection()

    # --- delivery ------------------------------------------------------------------------

    def deliver(self, delivery: Delivery) -> None:
        if not self._tables:
            self.open()
        state = self._state(delivery.golden_id, self.system)
        rows = sorted(
            (r for r in state.rows if r.table in self._tables and not r.deleted),
            key=lambda r: (r.table, r.pk),
        )
        if not rows:
            return
        conn = self._connection()
        try:
            with conn.transaction():
                announced = False
                for row in rows:
                    announced = self._write_row(
                        conn, self._tables[row.table], row, state, delivery, announced
                    )
        except _DEFERRING as exc:
            raise DeliveryDeferredError(self.name, _first_line(exc)) from exc
        except _REJECTING as exc:
            raise DeliveryRejectedError(self.name, _first_line(exc)) from exc
        except psycopg.OperationalError as exc:
            self._drop_connection()
            raise TargetUnavailableError(self.name, _first_line(exc)) from exc
        except psycopg.Error as exc:
            # The schema changed under us (a dropped column...): retried, dead after N.
            raise TargetUnavailableError(self.name, _first_line(exc)) from exc

    def _write_row(
        self,
        conn: psycopg.Connection[Any],
        table: _Table,
        row: LinkedSourceRow,
        state: WritebackState,
        delivery: Delivery,
        announced: bool,
    ) -> bool:
        """Lock and update one row (steps 3 and 4, and step 2 before the transaction's first
        update); returns whether the transaction is announced now."""
        keys = row.pk.split(PK_SEPARATOR) if len(table.key) > 1 else [row.pk]
        if len(keys) != len(table.key):
            logger.warning(
                "%s: %s key %r does not fit %s", self.name, table.label, row.pk, table.key
            )
            return announced
        where = sql.SQL(" AND ").join(
            sql.SQL("{} = CAST({} AS {})").format(
                sql.Identifier(c.name), sql.Placeholder(), sql.SQL(c.type)
            )
            for c in table.key
        )
        read = sql.SQL("SELECT {} FROM {} WHERE {} FOR UPDATE").format(
            sql.SQL(", ").join(
                sql.SQL("CAST({} AS text)").format(sql.Identifier(c.name))
                for c in table.read_columns
            ),
            table.relation,
            where,
        )
        found = conn.execute(read, keys).fetchone()
        if found is None:
            return announced  # deleted in the source; the hub hears of it through CDC
        current = dict(zip((c.name for c in table.read_columns), found, strict=True))
        wanted = self._wanted(table, row, state)
        changes = {c: v for c, v in wanted.items() if current[c.name] != v}
        if not changes:
            return announced
        if not announced:
            conn.execute(
                "SELECT pg_logical_emit_message(true, %s, %s)",
                (WRITEBACK_MESSAGE_PREFIX, delivery.idempotency_key),
            )
        update = sql.SQL("UPDATE {} SET {} WHERE {}").format(
            table.relation,
            sql.SQL(", ").join(
                sql.SQL("{} = CAST({} AS {})").format(
                    sql.Identifier(c.name), sql.Placeholder(), sql.SQL(c.type)
                )
                for c in changes
            ),
            where,
        )
        conn.execute(update, [*changes.values(), *keys])
        return True

    def _wanted(
        self, table: _Table, row: LinkedSourceRow, state: WritebackState
    ) -> Mapping[_Column, str | None]:
        wanted: dict[_Column, str | None] = {
            table.golden_id: None if row.golden_id is None else str(row.golden_id)
        }
        if row.golden_id != state.golden_id or state.status is not GoldenStatus.ACTIVE:
            return wanted  # linked elsewhere: that record's deliveries write its fields
        for field in table.fields:
            if not field.source.applies_to(state.attributes):
                continue
            text = as_text(extract(state.attributes, field.source.path), field.source.join)
            if text is None:
                continue
            limit = field.column.max_length
            if limit is not None and len(text) > limit:
                logger.debug(
                    "%s: %s.%s holds %d characters, the value has %d: left alone",
                    self.name,
                    table.label,
                    field.column.name,
                    limit,
                    len(text),
                )
                continue
            wanted[field.column] = text
        return wanted


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["PK_SEPARATOR", "PostgresTarget", "StateReader"]
