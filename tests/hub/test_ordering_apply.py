"""Per-row order through ``apply_changes`` on the real store: snapshot reads against streamed
changes, the stored snapshot marker, redelivery and re-snapshots.

Positions as Debezium 3 gives them (tests/cdc/test_ordering_capture.py pins them down on a
real capture): every read of a snapshot has the snapshot's LSN (1000 here) and one time for
the snapshot, taken when its transaction starts (10 s after T0 here), after the consistent
point; a change committed in between is streamed with an LSN at or past 1000 but a commit
time before the reads'.
"""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa
from hub_testkit import at, key, make_hub
from sqlalchemy.engine import Engine

from hub.model import BatchPosition, ChangeOp, SourceChange, SourceKey, SourcePosition
from hub.services import HubServices

SNAPSHOT_LSN = 1000
SNAPSHOT_AT = 10


def change(
    pk: str,
    name: str,
    position: SourcePosition,
    *,
    op: ChangeOp = ChangeOp.UPSERT,
) -> SourceChange:
    attributes = {"legal_name": name, "emails": [f"ap{pk}@example.com"]}
    return SourceChange(
        key=SourceKey("crm", "customers", pk),
        op=op,
        attributes=attributes if op is ChangeOp.UPSERT else {},
        raw={"id": pk, "name": name},
        position=position,
    )


def read(
    pk: str, name: str, *, lsn: int = SNAPSHOT_LSN, seconds: float = SNAPSHOT_AT
) -> SourceChange:
    return change(pk, name, SourcePosition(lsn, 700, at(seconds), snapshot=True))


def streamed(
    pk: str,
    name: str,
    lsn: int,
    seconds: float,
    *,
    last_commit_lsn: int | None = None,
    op: ChangeOp = ChangeOp.UPSERT,
) -> SourceChange:
    position = SourcePosition(lsn, lsn, at(seconds), last_commit_lsn=last_commit_lsn)
    return change(pk, name, position, op=op)


def name_of(hub: HubServices, pk: str) -> str:
    return str(hub.get_golden_by_source(key("crm", pk)).attributes["legal_name"])


def stored(engine: Engine, pk: str) -> tuple[int, bool]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT lsn, snapshot FROM source_records WHERE pk = :pk"), {"pk": pk}
        ).one()
    return int(row.lsn), bool(row.snapshot)


def test_an_update_committed_before_the_reads_time_but_after_the_snapshot_is_applied(
    engine: Engine,
) -> None:
    """The lost update: a Kafka worker applies the snapshot read of its partition, then the
    change streamed after the snapshot (LSN past it, commit time before the reads')."""
    hub = make_hub(engine)
    hub.apply_changes([read("1", "Acme")], BatchPosition("kafka:mdh", "crm.customers:0", 0))
    assert stored(engine, "1") == (SNAPSHOT_LSN, True)
    result = hub.apply_changes(
        [streamed("1", "Acme Europe", lsn=1200, seconds=SNAPSHOT_AT - 2)],
        BatchPosition("kafka:mdh", "crm.customers:0", 1),
    )
    assert (result.applied, result.stale) == (1, 0)
    assert name_of(hub, "1") == "Acme Europe"
    assert stored(engine, "1") == (1200, False)


def test_in_one_batch_the_streamed_change_beats_the_snapshot_read(engine: Engine) -> None:
    hub = make_hub(engine)
    result = hub.apply_changes(
        [read("1", "Acme"), streamed("1", "Acme Europe", lsn=SNAPSHOT_LSN, seconds=8)]
    )
    assert result.applied == 1
    assert name_of(hub, "1") == "Acme Europe"


def test_transactions_in_flight_at_the_consistent_point_are_applied(engine: Engine) -> None:
    """Written before the snapshot's LSN, committed after it: the commit time, or the commit
    streamed before them, says they are not in the snapshot."""
    hub = make_hub(engine)
    hub.apply_changes([read("1", "Acme"), read("2", "Globex")])
    hub.apply_changes([streamed("1", "Acme Europe", lsn=900, seconds=SNAPSHOT_AT + 1)])
    hub.apply_changes(
        [streamed("2", "Globex Corp", lsn=950, seconds=SNAPSHOT_AT - 1, last_commit_lsn=1100)]
    )
    assert name_of(hub, "1") == "Acme Europe"
    assert name_of(hub, "2") == "Globex Corp"


def test_redelivered_changes_and_reads_change_nothing(engine: Engine) -> None:
    hub = make_hub(engine)
    first = [read("1", "Acme"), read("2", "Globex")]
    update = streamed("1", "Acme Europe", lsn=1200, seconds=SNAPSHOT_AT - 2)
    hub.apply_changes(first)
    hub.apply_changes([update])
    # The whole log again (a replay, or an engine restarted before its offsets were
    # flushed), with the reads dated differently (another worker saw its first one later).
    again = [replace(c, position=replace(c.position, committed_at=at(12))) for c in first]
    result = hub.apply_changes([*again, update])
    assert (result.applied, result.stale) == (0, 2)  # one per row: the batch keeps the newest
    assert name_of(hub, "1") == "Acme Europe"
    assert name_of(hub, "2") == "Globex"
    assert stored(engine, "2") == (SNAPSHOT_LSN, True)


def test_a_re_snapshot_wins_and_older_changes_do_not_undo_it(engine: Engine) -> None:
    hub = make_hub(engine)
    hub.apply_changes([read("1", "Acme"), read("2", "Globex")])
    hub.apply_changes([streamed("1", "Acme Europe", lsn=1200, seconds=20)])
    hub.apply_changes([streamed("2", "Globex", lsn=1300, seconds=21, op=ChangeOp.DELETE)])
    # After ``mdh cdc reset``: a new slot and snapshot, past everything streamed so far.
    result = hub.apply_changes(
        [
            read("1", "Acme Europe AG", lsn=5000, seconds=3600),
            read("2", "Globex Corp", lsn=5000, seconds=3600),
        ]
    )
    assert result.applied == 2
    assert name_of(hub, "1") == "Acme Europe AG"
    assert name_of(hub, "2") == "Globex Corp"  # re-created: it exists again in the source
    assert stored(engine, "2") == (5000, True)
    # The old stream delivered again changes nothing.
    late = hub.apply_changes(
        [
            streamed("1", "Acme Europe", lsn=1200, seconds=20),
            streamed("2", "Globex", lsn=1300, seconds=21, op=ChangeOp.DELETE),
        ]
    )
    assert (late.applied, late.stale) == (0, 2)
    assert name_of(hub, "1") == "Acme Europe AG"
