"""One service call, one transaction: the runner every public service goes through.

Deadlocks and serialization failures are retried here (the whole transaction is re-run, which
is safe because nothing was committed); other driver errors are translated into hub errors.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub.errors import (
    ConcurrentUpdateError,
    SchemaNotReadyError,
    StoreUnavailableError,
    TransactionTooLargeError,
)

T = TypeVar("T")

_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock detected
_SCHEMA_SQLSTATES = frozenset({"42P01", "42703"})  # undefined table, undefined column
_OUT_OF_MEMORY = "53200"  # "out of shared memory": the lock table is full


def _sqlstate(exc: sa_exc.DBAPIError) -> str | None:
    state = getattr(exc.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def run_in_transaction(
    engine: Engine,
    operation: str,
    work: Callable[[Session], T],
    *,
    attempts: int = 5,
    read_only: bool = False,
) -> T:
    """Run ``work`` in one transaction and commit; retry it on deadlock/serialization failure.

    Raises:
        ConcurrentUpdateError: still deadlocking after ``attempts`` tries.
        StoreUnavailableError: the database could not be reached.
        SchemaNotReadyError: the hub tables are missing (migrations not run).
        TransactionTooLargeError: the transaction's locks overflowed the server's lock table.

    The session does not autoflush: services keep their working state in memory and flush
    where the order of writes matters (a flush per query would write row by row).

    A read-only call runs in a REPEATABLE READ, read-only transaction: its several queries
    see one snapshot.
    """
    bind = (
        engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        if read_only
        else engine
    )
    for attempt in range(1, attempts + 1):
        try:
            with (
                Session(bind, expire_on_commit=False, autoflush=False) as session,
                session.begin(),
            ):
                return work(session)
        except sa_exc.DBAPIError as exc:
            state = _sqlstate(exc)
            if state in _RETRYABLE_SQLSTATES:
                if attempt == attempts:
                    raise ConcurrentUpdateError(operation, attempt, str(exc.orig)) from exc
                time.sleep(random.uniform(0, 0.02 * 2**attempt))
                continue
            if state in _SCHEMA_SQLSTATES:
                raise SchemaNotReadyError(str(exc.orig).splitlines()[0]) from exc
            if state == _OUT_OF_MEMORY:
                hint = getattr(getattr(exc.orig, "diag", None), "message_hint", None)
                detail = str(exc.orig).splitlines()[0] + (f" ({hint})" if hint else "")
                raise TransactionTooLargeError(operation, detail) from exc
            if exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError):
                raise StoreUnavailableError(str(exc.orig).splitlines()[0]) from exc
            raise
    raise AssertionError("unreachable")  # pragma: no cover
