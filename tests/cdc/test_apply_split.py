"""A batch whose locks overflow the hub server's lock table is applied in parts instead of
being retried forever as if the database were away (a Kafka worker with a large
``capture.batch_size`` against a server with PostgreSQL's default lock table)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from cdc_testkit import SOURCES_YAML

from cdc.apply import ApplyLoop, ParsedBatch, RetryPolicy
from cdc.mapping import ChangeMapper, load_source_mappings
from hub.db import create_engine, migrate
from hub.errors import TransactionTooLargeError
from hub.model import BatchPosition, ChangeOp, SourceChange, SourceKey, SourcePosition
from hub.rules import default_rules
from hub.services import HubServices
from matching import MatchModel, default_spec
from mdh.embedded_pg import EmbeddedPostgres

pytestmark = pytest.mark.slow

T0 = datetime(2026, 3, 1, tzinfo=UTC)
CHANGES = 2000


def _change(i: int) -> SourceChange:
    return SourceChange(
        key=SourceKey("crm", "customers", str(i)),
        op=ChangeOp.UPSERT,
        attributes={
            "kind": "organization",
            "legal_name": f"Company {i:04d} Holdings",
            "emails": [f"office{i}@company{i}.example"],
            "phones": [f"+1 415 555 {i:04d}"],
            "addresses": [
                {"lines": [f"{i} Main St"], "city": "Springfield", "postal_code": f"{i:05d}"}
            ],
        },
        raw={"id": i},
        position=SourcePosition(lsn=1000 + i, tx_id=7, committed_at=T0 + timedelta(seconds=i)),
    )


@pytest.fixture(scope="module")
def small_lock_table(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A hub database on a server whose lock table holds a few hundred locks."""
    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("locks")) / "pg")
    server.start()
    try:
        engine = sa.create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("ALTER SYSTEM SET max_locks_per_transaction = 10"))
            conn.execute(sa.text("ALTER SYSTEM SET max_connections = 20"))
            conn.execute(sa.text("CREATE DATABASE hub"))
        engine.dispose()
        server.stop()
        server.start()
        url = server.url("hub")
        migrate(url)
        yield url
    finally:
        server.stop()


def test_a_batch_too_large_for_the_lock_table_is_applied_in_parts(small_lock_table: str) -> None:
    engine = create_engine(small_lock_table, pool_size=2)
    hub = HubServices(
        engine,
        matcher=MatchModel.untrained(default_spec()),
        rules=default_rules(),
        targets=("crm",),
    )
    changes = [_change(i) for i in range(CHANGES)]
    # the premise: as one transaction, this batch does not fit
    with pytest.raises(TransactionTooLargeError):
        hub.apply_changes(changes)

    loop = ApplyLoop(
        hub,
        ChangeMapper(load_source_mappings(SOURCES_YAML)),
        label="crm",
        retry=RetryPolicy(initial_seconds=0.05, max_seconds=0.1, max_attempts=3),
        stop=threading.Event(),
    )
    position = BatchPosition(source="kafka:test", partition="crm.customers:0", offset=CHANGES)
    batch = ParsedBatch(messages=CHANGES, changes=changes, streamed=[], dead_letters=[], ignored=0)
    outcome = loop.apply_prepared(batch, position)
    assert outcome.result is not None
    assert outcome.result.applied == CHANGES
    assert len(outcome.result.goldens_created) == CHANGES
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM source_records")).scalar_one() == CHANGES
        stored = conn.execute(sa.text('SELECT "offset" FROM applied_positions')).scalar_one()
    assert stored == CHANGES, "the batch position is stored with the last part"

    # redelivered whole: skipped by its position, nothing applied twice
    again = loop.apply_prepared(batch, position)
    assert again.result is not None
    assert again.result.applied == 0
    engine.dispose()
