"""PostgreSQL write-back: the golden id and the hub-owned fields into the source rows.

A delivery of golden record G to the target of source system S runs these steps, whose order
the correctness depends on. The relay hands over a claimed batch of deliveries (at most one
version per golden record) and the steps run once for all of them:

1. Read from the hub, in one snapshot, each G's current state and every row of S that is or
   once was linked to G, each with its current link, merges followed
   (``Publishing.writeback_states``).
2. Open ONE transaction in the source database and, before its first update, emit the
   transactional logical message ``mdh.writeback`` (``cdc.mapping.WRITEBACK_MESSAGE_PREFIX``;
   content: the batch's idempotency keys, one a line): change capture delivers it ahead of
   this transaction's row changes, with the same transaction id, and the mapper recognises
   every row change of that transaction as the hub's own and does not apply it. So the
   write-back neither makes a new golden version nor makes the source record look more
   recent to survivorship (no echo loop).
3. Lock each table's rows with one statement (``FOR UPDATE``, tables by name, rows in key
   order, so relays writing overlapping rows take turns) and work out what each should hold:
   its current golden id in the cross-reference column, and, when it is linked to a G of
   the batch, that G's hub-owned fields (the mapped attributes; an absent value, or one
   longer than the column, leaves the column alone).
4. Update only the rows that differ and commit: a repeated delivery writes nothing, not even
   the message.

A batch is all or nothing: when the database refuses one row, or a lock is held too long,
the batch fails and the relay delivers its rows one by one (a batch of one), so a row that
fails alone is dead-lettered alone.

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
from collections.abc import Callable, Mapping, Sequence
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
StatesReader = Callable[[Sequence[int], str], Mapping[int, WritebackState]]
"""Several golden records' write-back states in one read (``Publishing.writeback_states``)."""

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
        states: reads several at once (``Publishing.writeback_states``); without it a batch
            reads them one by one.
    """

    delivers_batches = True

    def __init__(
        self,
        name: str,
        spec: PostgresTargetSpec,
        state: StateReader,
        states: StatesReader | None = None,
    ) -> None:
        super().__init__(name, spec.events, spec.delivery)
        self.spec = spec
        self.system = spec.system or name
        self._state = state
        self._states = states
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
        self.deliver_batch([delivery])

    def deliver_batch(self, deliveries: Sequence[Delivery]) -> None:
        """Write the current state of each delivery's golden record in ONE source transaction
        (module docstring, steps 1-4 for all of them at once): one write-back message, each
        table's rows locked by one statement in key order, only differing rows updated.

        All or nothing: one row the database refuses fails the whole batch (the relay then
        delivers the rows one by one, so that row fails alone).
        """
        if not deliveries:
            return
        if not self._tables:
            self.open()
        wanted = self._wanted_rows(deliveries)
        if not wanted:
            return
        conn = self._connection()
        try:
            with conn.transaction():
                announced = False
                for name in sorted(wanted):
                    announced = self._write_table(
                        conn, self._tables[name], wanted[name], deliveries, announced
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

    def _wanted_rows(
        self, deliveries: Sequence[Delivery]
    ) -> dict[str, dict[tuple[str, ...], dict[_Column, str | None]]]:
        """Step 1 for every delivery: per table and primary key, what the row should hold.

        A row linked to several golden records of the batch over time (a merge, an unmerge)
        gets its current golden id from each and the fields from the one it is linked to now.
        """
        states = self._read_states([d.golden_id for d in deliveries])
        wanted: dict[str, dict[tuple[str, ...], dict[_Column, str | None]]] = {}
        for state in states:
            for row in state.rows:
                table = self._tables.get(row.table)
                if table is None or row.deleted:
                    continue
                keys = tuple(row.pk.split(PK_SEPARATOR)) if len(table.key) > 1 else (row.pk,)
                if len(keys) != len(table.key):
                    logger.warning(
                        "%s: %s key %r does not fit %s", self.name, table.label, row.pk, table.key
                    )
                    continue
                wanted.setdefault(row.table, {}).setdefault(keys, {}).update(
                    self._wanted(table, row, state)
                )
        return wanted

    def _read_states(self, golden_ids: Sequence[int]) -> list[WritebackState]:
        ids = list(dict.fromkeys(golden_ids))
        if self._states is not None:
            found = self._states(ids, self.system)
            return [found[i] for i in ids if i in found]
        return [self._state(i, self.system) for i in ids]

    def _write_table(
        self,
        conn: psycopg.Connection[Any],
        table: _Table,
        wanted: Mapping[tuple[str, ...], Mapping[_Column, str | None]],
        deliveries: Sequence[Delivery],
        announced: bool,
    ) -> bool:
        """Lock and read the rows of one table in one statement (step 3), update the ones that
        differ (step 4), announcing the transaction before its first update (step 2);
        returns whether the transaction is announced now."""
        keys = list(wanted)
        aliases = [f"k{i}" for i in range(len(table.key))]
        read = sql.SQL(
            "SELECT k.ord, {columns} FROM {relation} AS t"
            " JOIN unnest({arrays}) WITH ORDINALITY AS k({aliases}, ord) ON {join}"
            " ORDER BY {order} FOR UPDATE OF t"
        ).format(
            columns=sql.SQL(", ").join(
                sql.SQL("CAST(t.{} AS text)").format(sql.Identifier(c.name))
                for c in table.read_columns
            ),
            relation=table.relation,
            arrays=sql.SQL(", ").join(
                sql.SQL("CAST({} AS text[])").format(sql.Placeholder()) for _ in table.key
            ),
            aliases=sql.SQL(", ").join(sql.Identifier(a) for a in aliases),
            join=sql.SQL(" AND ").join(
                sql.SQL("t.{} = CAST(k.{} AS {})").format(
                    sql.Identifier(c.name), sql.Identifier(a), sql.SQL(c.type)
                )
                for c, a in zip(table.key, aliases, strict=True)
            ),
            order=sql.SQL(", ").join(
                sql.SQL("t.{}").format(sql.Identifier(c.name)) for c in table.key
            ),
        )
        columns = [[k[i] for k in keys] for i in range(len(table.key))]
        updates: dict[tuple[_Column, ...], list[list[str | None]]] = {}
        for ordinal, *values in conn.execute(read, columns):
            key = keys[int(ordinal) - 1]
            current = dict(zip((c.name for c in table.read_columns), values, strict=True))
            changes = {c: v for c, v in wanted[key].items() if current[c.name] != v}
            if changes:
                ordered = tuple(sorted(changes, key=lambda c: c.name))
                updates.setdefault(ordered, []).append([*(changes[c] for c in ordered), *key])
        # Rows not found were deleted in the source; the hub hears of it through CDC.
        if not updates:
            return announced
        if not announced:
            conn.execute(
                "SELECT pg_logical_emit_message(true, %s, %s)",
                (WRITEBACK_MESSAGE_PREFIX, "\n".join(d.idempotency_key for d in deliveries)),
            )
        where = sql.SQL(" AND ").join(
            sql.SQL("{} = CAST({} AS {})").format(
                sql.Identifier(c.name), sql.Placeholder(), sql.SQL(c.type)
            )
            for c in table.key
        )
        with conn.cursor() as cursor:
            for changed, parameters in updates.items():
                update = sql.SQL("UPDATE {} SET {} WHERE {}").format(
                    table.relation,
                    sql.SQL(", ").join(
                        sql.SQL("{} = CAST({} AS {})").format(
                            sql.Identifier(c.name), sql.Placeholder(), sql.SQL(c.type)
                        )
                        for c in changed
                    ),
                    where,
                )
                cursor.executemany(update, parameters)
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


__all__ = ["PK_SEPARATOR", "PostgresTarget", "StateReader", "StatesReader"]
