"""The changes feed never skips an event; outbox messages are claimed, delivered, retried."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from hub_testkit import key, make_hub, upsert
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub import repositories as repo
from hub.services import utc_now


def _event_row(golden_id: int, version: int) -> dict[str, object]:
    return {
        "golden_id": golden_id,
        "kind": "updated",
        "version": version,
        "cause": "steward_action",
        "actor": "test",
        "occurred_at": utc_now(),
        "data": {},
    }


def test_the_changes_feed_never_skips_an_event_committed_out_of_order(engine: Engine) -> None:
    hub = make_hub(engine)
    hub.apply_changes([upsert("crm", "1", 1, legal_name="Acme")])
    golden_id = hub.get_golden_by_source(key("crm", "1")).id
    [created] = hub.changes_after(0)
    cursor = created.sequence
    assert cursor is not None

    first = Session(engine)
    first.begin()
    repo.append_history(first, [_event_row(golden_id, 2)])  # drawn first, not committed yet
    second_done = threading.Event()

    def second_writer() -> None:
        with Session(engine) as second, second.begin():
            repo.append_history(second, [_event_row(golden_id, 3)])
        second_done.set()

    thread = threading.Thread(target=second_writer)
    thread.start()
    time.sleep(0.5)
    # The second writer cannot draw a sequence number while the first is in flight, so a
    # reader now sees nothing new, rather than the second event followed later by the first.
    assert not second_done.is_set()
    assert hub.changes_after(cursor) == []
    first.commit()
    first.close()
    thread.join(timeout=10)
    assert second_done.is_set()

    seen = []
    while batch := hub.changes_after(cursor, limit=1):
        seen.extend(batch)
        assert batch[-1].sequence is not None
        cursor = batch[-1].sequence
    assert [e.version for e in seen] == [2, 3]


def test_outbox_messages_are_claimed_delivered_and_retried(engine: Engine) -> None:
    hub = make_hub(engine, targets=("crm", "erp"))
    hub.apply_changes([upsert("crm", "1", 1, legal_name="Acme")])
    hub.apply_changes([upsert("crm", "1", 2, legal_name="Acme AG")])

    claimed = hub.claim_outbox("crm", limit=10)
    assert [(m.version, m.idempotency_key.endswith(":crm")) for m in claimed] == [
        (1, True),
        (2, True),
    ]
    assert claimed[1].payload["attributes"]["legal_name"] == "Acme AG"
    assert hub.claim_outbox("crm") == []  # leased
    assert len(hub.claim_outbox("erp")) == 2  # other targets are independent

    assert hub.mark_outbox_delivered([claimed[0].id]) == 1
    assert hub.mark_outbox_delivered([claimed[0].id]) == 0
    # a delivery marked so counts in the sync-latency KPI like a relay's acknowledgement
    [crm] = [t for t in hub.sync_latency() if t.target == "crm"]
    assert crm.delivered == 1
    assert crm.golden_to_target.count == 1
    hub.mark_outbox_failed(claimed[1].id, "HTTP 503", retry_at=utc_now() - timedelta(seconds=1))
    [retry] = hub.claim_outbox("crm")
    assert retry.id == claimed[1].id
    assert retry.attempts == 2
