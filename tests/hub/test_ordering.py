"""The per-row order of source positions (``SourcePosition.supersedes``), pure.

The story behind the numbers: a snapshot's consistent point is LSN 1000 and it started at
10:00:00. Kafka workers date the snapshot reads they see to the first one they saw, which
for a worker consuming a table read late is 10:00:05. Changes streamed after the snapshot
have LSNs above 1000 unless their transaction wrote before the consistent point and
committed after it (in flight).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hub.model import SourcePosition

T = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SNAPSHOT_LSN = 1000


def at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def read(seconds: float = 5, lsn: int = SNAPSHOT_LSN, tx_id: int = 700) -> SourcePosition:
    """A snapshot read, dated ``seconds`` after the snapshot started."""
    return SourcePosition(lsn=lsn, tx_id=tx_id, committed_at=at(seconds), snapshot=True)


def streamed(
    seconds: float, lsn: int | None, tx_id: int | None = 800, last_commit_lsn: int | None = None
) -> SourcePosition:
    return SourcePosition(lsn, tx_id, at(seconds), last_commit_lsn=last_commit_lsn)


def test_a_change_streamed_after_the_snapshot_beats_a_read_dated_after_its_commit() -> None:
    # The Kafka case: committed at 10:00:02, after the consistent point (LSN 1200 > 1000),
    # before the worker's first snapshot read (10:00:05). Commit time alone calls it older.
    stored, change = read(seconds=5), streamed(2, lsn=1200)
    assert change.sort_key() < stored.sort_key()
    assert change.supersedes(stored)
    assert not stored.supersedes(change)


def test_a_transaction_in_flight_at_the_consistent_point_wins_when_anything_says_so() -> None:
    stored = read(seconds=5)
    # It wrote before the consistent point (LSN 900) and committed after the read's date.
    assert streamed(7, lsn=900).supersedes(stored)
    # Committed before the read's date, but after another transaction that committed after
    # the consistent point (the commit streamed before it is at 1100).
    assert streamed(3, lsn=900, last_commit_lsn=1100).supersedes(stored)
    assert streamed(3, lsn=900, last_commit_lsn=SNAPSHOT_LSN).supersedes(stored)


def test_what_the_positions_cannot_tell_is_taken_to_be_in_the_snapshot() -> None:
    stored = read(seconds=5)
    # Written before the consistent point, committed before the read's date, the first
    # commit streamed: either in the snapshot or in flight; indistinguishable (documented).
    assert not streamed(3, lsn=900, last_commit_lsn=None).supersedes(stored)
    # Committed before the snapshot (re-streamed from an older slot, or replayed): the
    # snapshot already has it, and a re-read snapshot row beats it.
    before = streamed(-1, lsn=900, last_commit_lsn=850)
    assert not before.supersedes(stored)
    assert stored.supersedes(streamed(-1, lsn=900))


@pytest.mark.parametrize(
    "position",
    [
        streamed(2, lsn=1200),
        streamed(2, lsn=1200, last_commit_lsn=1100),
        streamed(2, lsn=None),
        read(seconds=5),
        SourcePosition(lsn=None, tx_id=None, committed_at=at(1), snapshot=True),
    ],
    ids=["streamed", "streamed-with-sequence", "no-lsn", "snapshot-read", "snapshot-no-lsn"],
)
def test_the_same_change_delivered_again_is_not_newer(position: SourcePosition) -> None:
    again = SourcePosition(
        position.lsn,
        position.tx_id,
        position.committed_at,
        position.snapshot,
        position.last_commit_lsn,
    )
    assert not again.supersedes(position)


def test_reads_of_one_snapshot_do_not_supersede_each_other_however_they_were_dated() -> None:
    # Two workers (or a worker before and after a restart) date the same read differently.
    early, late = read(seconds=0), read(seconds=9)
    assert not late.supersedes(early)
    assert not early.supersedes(late)


def test_a_re_snapshot_beats_everything_streamed_before_it() -> None:
    # After ``mdh cdc reset``: a new slot, a consistent point past everything streamed.
    again = read(seconds=3600, lsn=50_000, tx_id=900)
    last_streamed = streamed(3000, lsn=40_000, last_commit_lsn=39_000)
    assert again.supersedes(last_streamed)
    assert again.supersedes(read(seconds=5))
    # ... and an old change delivered again afterwards does not undo it.
    assert not last_streamed.supersedes(again)
    assert not streamed(2, lsn=1200).supersedes(again)
    # A change streamed after the re-snapshot beats it.
    assert streamed(3601, lsn=50_100).supersedes(again)


def test_streamed_changes_of_one_row_are_ordered_by_lsn_first() -> None:
    first = streamed(2, lsn=1200, tx_id=801)
    # The source's clock stepped back: a later transaction with an earlier commit time.
    later = streamed(1, lsn=1300, tx_id=802)
    assert later.supersedes(first)
    assert not first.supersedes(later)
    # Two changes of one row in one transaction: same commit time and txId, LSN decides.
    assert streamed(2, lsn=1250, tx_id=801).supersedes(first)


def test_positions_without_an_lsn_are_ordered_by_commit_time() -> None:
    assert streamed(3, lsn=None).supersedes(streamed(2, lsn=None))
    assert not streamed(2, lsn=None).supersedes(streamed(3, lsn=None))
    # Mixed: commit time, then LSN, then txId, as before.
    assert streamed(3, lsn=None).supersedes(streamed(2, lsn=5000))
    assert streamed(2, lsn=1).supersedes(streamed(2, lsn=None))
    assert streamed(6, lsn=None).supersedes(read(seconds=5))
    assert not streamed(4, lsn=None).supersedes(read(seconds=5))


@st.composite
def row_histories(draw: st.DrawFn) -> tuple[list[SourcePosition], SourcePosition]:
    """One source row through a snapshot and the stream after it, as delivered at least once:
    (every delivery in order, the position the row must end at).

    Transactions on the row commit in order; each writes after the previous one committed
    (row lock) and commits later in time. The snapshot's consistent point falls somewhere
    among them (possibly while one is in flight: written before it, committed after), and the
    snapshot is dated at or after that point. Deliveries restart from earlier points after
    crashes, never skipping one.
    """
    count = draw(st.integers(0, 5))
    lsn, seconds, commits = 100, 0.0, []
    for _ in range(count):
        write = lsn + draw(st.integers(1, 50))
        commit = write + draw(st.integers(1, 50))
        seconds += draw(st.floats(0.001, 5))
        commits.append((write, commit, seconds))
        lsn = commit
    # The consistent point: after the first ``before`` commits, possibly after the next write.
    before = draw(st.integers(0, count))
    floor = commits[before - 1][1] if before else 50
    if before < count and draw(st.booleans()):
        floor = commits[before][0]  # the next transaction is in flight at the point
    ceiling = commits[before][1] - 1 if before < count else floor + 50
    point = draw(st.integers(floor + 1, max(floor + 1, ceiling)))
    point_time = (commits[before - 1][2] if before else 0.0) + 0.0005
    dated = point_time + draw(st.floats(0, 10))
    snapshot = SourcePosition(point, 700, at(dated), snapshot=True)
    stream: list[SourcePosition] = [snapshot]
    previous: int | None = None
    first_after_point = draw(st.booleans())  # no other commit between the point and ours
    for write, commit, when in commits[before:]:
        if previous is None and first_after_point:
            last_commit = None
        else:
            low = max(point, previous or point)
            last_commit = draw(st.integers(low, commit - 1)) if low < commit else None
        stream.append(SourcePosition(write, write, at(when), last_commit_lsn=last_commit))
        previous = commit
    # What the positions cannot tell apart from a change in the snapshot (documented).
    first = stream[1] if len(stream) > 1 else None
    assume(
        first is None
        or first.lsn is None
        or first.lsn >= point
        or first.last_commit_lsn is not None
        or first.committed_at > snapshot.committed_at
    )
    deliveries: list[SourcePosition] = []
    start = 0
    for _ in range(draw(st.integers(0, 3))):
        end = draw(st.integers(start, len(stream)))
        deliveries.extend(stream[start:end])
        start = draw(st.integers(0, end))
    deliveries.extend(stream[start:])
    return deliveries, stream[-1]


@settings(max_examples=400, deadline=None)
@given(history=row_histories())
def test_a_row_ends_at_its_last_change_however_often_it_is_delivered(
    history: tuple[list[SourcePosition], SourcePosition],
) -> None:
    deliveries, last = history
    stored: SourcePosition | None = None
    for position in deliveries:
        if stored is None or position.supersedes(stored):
            stored = position
    assert stored == last
