"""History in the store: append-only events that reconstruct a golden record as of a time."""

from __future__ import annotations

from datetime import datetime, timedelta

from hub_testkit import T0, ExactMatcher, key, upsert
from sqlalchemy.engine import Engine

from hub.history import HistoryCause, HistoryEventKind
from hub.model import GoldenStatus
from hub.rules import default_rules
from hub.services import HubServices


class SteppingClock:
    """Hub time that moves one minute per transaction, so tests can name instants."""

    def __init__(self) -> None:
        self.now = T0 + timedelta(days=30)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def test_golden_record_reconstructed_as_of_any_time(engine: Engine) -> None:
    clock = SteppingClock()
    hub = HubServices(engine, matcher=ExactMatcher(), rules=default_rules(), clock=clock)
    hub.apply_changes([upsert("crm", "1", 1, legal_name="Acme", emails=["a@acme.example"])])
    t1 = clock.now
    golden_id = hub.get_golden_by_source(key("crm", "1")).id
    hub.apply_changes([upsert("erp", "E1", 2, legal_name="Acme GmbH", emails=["a@acme.example"])])
    t2 = clock.now
    hub.pin_attribute(golden_id, "website", "acme.example", actor="steward:kim", reason="site")
    t3 = clock.now
    hub.apply_changes([upsert("crm", "2", 3, legal_name="Other", emails=["o@other.example"])])
    other = hub.get_golden_by_source(key("crm", "2")).id
    hub.merge_golden(golden_id, other, actor="steward:kim", reason="test")
    t4 = clock.now

    assert hub.golden_as_of(golden_id, t1 - timedelta(seconds=1)) is None
    at_t1 = hub.golden_as_of(golden_id, t1)
    assert at_t1 is not None
    assert at_t1.attributes["legal_name"] == "Acme"
    assert len(at_t1.source_record_ids) == 1
    at_t2 = hub.golden_as_of(golden_id, t2 + timedelta(seconds=30))
    assert at_t2 is not None
    assert at_t2.attributes["legal_name"] == "Acme GmbH"
    assert len(at_t2.source_record_ids) == 2
    assert "website" not in at_t2.attributes
    at_t3 = hub.golden_as_of(golden_id, t3)
    assert at_t3 is not None
    assert at_t3.attributes["website"] == "acme.example"
    assert set(at_t3.pins) == {"website"}

    # Now, reconstructed equals stored, and the merged record reads as merged from t4 on.
    current = hub.get_golden(golden_id)
    now = hub.golden_as_of(golden_id, t4)
    assert now is not None
    assert dict(now.attributes) == dict(current.attributes)
    assert now.version == current.version
    assert now.source_record_ids == {s.source_record_id for s in current.sources}
    merged = hub.golden_as_of(other, t4)
    assert merged is not None
    assert merged.status is GoldenStatus.MERGED
    assert merged.merged_into == golden_id

    events = hub.golden_history(golden_id)
    assert [e.kind for e in events] == [
        HistoryEventKind.CREATED,
        HistoryEventKind.LINKED,
        HistoryEventKind.PINNED,
        HistoryEventKind.MERGED,
    ]
    assert [e.version for e in events] == [1, 2, 3, 4]
    assert events[0].cause is HistoryCause.SOURCE_CHANGE
    assert events[2].cause is HistoryCause.STEWARD_ACTION
    assert events[2].actor == "steward:kim"
    assert events[1].diff["legal_name"] == {"old": "Acme", "new": "Acme GmbH"}
    sequences = [e.sequence for e in events]
    assert sequences == sorted(sequences)
