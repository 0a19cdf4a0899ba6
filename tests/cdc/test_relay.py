"""The outbox relay against a real HTTP receiver: a target that was down gets every update in
order per golden record, a repeated delivery is harmless, a payload one target rejects is
dead-lettered for that target only, several relays share a target without delivering a row
twice at once, and the sync latency of what was delivered is measured."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from cdc_testkit import fresh_hub_database
from publish_kit import (
    COMPANY_NAMES,
    Changes,
    WebhookReceiver,
    outbox_rows,
    publish_hub,
    relay_until_settled,
    webhook_receiver,
    webhook_spec,
)
from sqlalchemy.engine import Engine

from cdc.relay import OutboxRelay, RelaySettings
from cdc.targets import WebhookTarget, parse_targets
from hub.db import create_engine
from mdh.embedded_pg import EmbeddedPostgres

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(pg_server: EmbeddedPostgres) -> Iterator[Engine]:
    engine = create_engine(fresh_hub_database(pg_server, "relay_tests"), pool_size=8)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as receiver:
        yield receiver


def _webhook(name: str, url: str, **extra: object) -> WebhookTarget:
    spec = parse_targets({name: webhook_spec(url, **extra)}).specs[name]
    assert spec.kind == "webhook"
    return WebhookTarget(name, spec)


def _history(changes: Changes, goldens: int, versions: int) -> None:
    """``goldens`` customers, each renamed until it has ``versions`` versions."""
    for version in range(versions):
        for index in range(goldens):
            changes.put(f"C{index}", f"{COMPANY_NAMES[index]} v{version + 1}")


def test_a_target_that_was_down_gets_every_update_in_order_after_it_recovers(
    engine: Engine, receiver: WebhookReceiver
) -> None:
    hub = publish_hub(engine, ("hooks",))
    changes = Changes(hub)
    _history(changes, goldens=3, versions=2)
    receiver.down()
    relay = OutboxRelay(
        hub, [_webhook("hooks", receiver.url)], settings=RelaySettings(idle_wait=0.02), seed=1
    )
    relay.start()
    try:
        time.sleep(0.5)
        _history(changes, goldens=3, versions=2)  # more changes while it is down
        time.sleep(0.5)
        [status] = hub.publishing().status()
        assert status.delivered == 0
        assert status.pending == 12
        assert status.retrying >= 1
        assert "unavailable" in (status.last_error or "")
        receiver.up()
        deadline = time.monotonic() + 30
        while hub.publishing().status()[0].pending and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        relay.stop.set()
        relay.join(30)
    versions = receiver.versions_by_golden()
    assert sorted(versions) == [1, 2, 3]
    for golden_versions in versions.values():
        assert golden_versions == [1, 2, 3, 4]  # every update, in order
    assert all(r.signature_ok for r in receiver.accepted())
    [status] = hub.publishing().status()
    assert (status.delivered, status.dead, status.pending) == (12, 0, 0)


def test_a_repeated_delivery_is_the_same_request_and_is_settled_once(
    engine: Engine, receiver: WebhookReceiver
) -> None:
    hub = publish_hub(engine, ("hooks",))
    Changes(hub).put("C0", COMPANY_NAMES[0])
    publishing = hub.publishing()
    target = _webhook("hooks", receiver.url)
    # A relay delivers, then dies before it can record the delivery: its lease runs out.
    [first] = publishing.claim("hooks", limit=10, lease=timedelta(milliseconds=300))
    target.deliver(first)
    time.sleep(0.4)
    # Another relay claims the row again and delivers it again.
    relay_until_settled(hub, [_webhook("hooks", receiver.url)])
    # The dead relay's late settle is refused: the row belongs to the new lease's holder.
    assert not publishing.mark_delivered(first, first.lease_until)
    one, two = receiver.accepted()
    assert one.key == two.key == "1:1:hooks"
    assert one.body == two.body  # byte for byte: a receiver can drop the repeat
    [row] = outbox_rows(engine, "hooks")
    assert row["attempts"] == 2
    assert row["delivered_at"] is not None
    assert row["acknowledged_at"] == row["delivered_at"]


def test_a_payload_one_target_rejects_is_dead_lettered_there_and_blocks_nothing(
    engine: Engine, receiver: WebhookReceiver
) -> None:
    hub = publish_hub(engine, ("picky", "easy"))
    changes = Changes(hub)
    changes.put("C0", "Aldergrove Timber")
    changes.put("C1", "Brightwater Optics")
    changes.put("C1", "Brightwater Optics Ltd")
    changes.put("C0", "Aldergrove Timber & Sons")
    # The picky receiver refuses Brightwater's first version for good (422).
    receiver.respond = lambda d: (
        422 if d["attributes"].get("legal_name") == "Brightwater Optics" else 200
    )
    with webhook_receiver() as easy:
        relay_until_settled(
            hub,
            [_webhook("picky", receiver.url + "?picky"), _webhook("easy", easy.url)],
        )
        assert easy.versions_by_golden() == {1: [1, 2], 2: [1, 2]}
    assert receiver.versions_by_golden() == {1: [1, 2], 2: [2]}  # v2 after the dead v1
    dead = [r for r in outbox_rows(engine, "picky") if r["dead_at"] is not None]
    assert [(r["golden_id"], r["version"], r["attempts"]) for r in dead] == [(2, 1, 1)]
    assert "HTTP 422" in dead[0]["last_error"]
    assert all(r["dead_at"] is None for r in outbox_rows(engine, "easy"))


def test_a_failing_target_dead_letters_after_the_last_attempt_and_retry_revives(
    engine: Engine, receiver: WebhookReceiver
) -> None:
    hub = publish_hub(engine, ("hooks",))
    Changes(hub).put("C0", COMPANY_NAMES[0])
    receiver.respond = lambda d: 503
    target = _webhook(
        "hooks",
        receiver.url,
        delivery={"max_attempts": 3, "initial_backoff_seconds": 0.05, "max_backoff_seconds": 0.1},
    )
    publishing = hub.publishing()
    relay_until_settled(hub, [target], until=lambda: publishing.status()[0].dead == 1)
    [row] = outbox_rows(engine, "hooks")
    assert row["attempts"] == 3
    assert "HTTP 503" in row["last_error"]
    assert len(receiver.received) == 3
    receiver.respond = lambda d: 200
    assert publishing.retry_dead(target="hooks").revived == 1
    relay_until_settled(hub, [target])
    assert receiver.versions_by_golden() == {1: [1]}
    # Replay: the receiver lost its copy; the latest version of each record comes again.
    assert publishing.replay("hooks") == 1
    relay_until_settled(hub, [target])
    assert receiver.versions_by_golden() == {1: [1, 1]}


def test_retry_leaves_a_dead_version_dead_once_a_later_one_was_delivered(
    engine: Engine, receiver: WebhookReceiver
) -> None:
    hub = publish_hub(engine, ("hooks",))
    changes = Changes(hub)
    changes.put("C0", "Aldergrove Timber")
    changes.put("C0", "Aldergrove Timber Ltd")
    receiver.respond = lambda d: 422 if d["version"] == 1 else 200
    relay_until_settled(hub, [_webhook("hooks", receiver.url)])
    receiver.respond = lambda d: 200
    result = hub.publishing().retry_dead(target="hooks")
    assert (result.revived, result.superseded) == (0, 1)
    assert receiver.versions_by_golden() == {1: [2]}


def test_events_a_target_does_not_take_are_skipped(
    engine: Engine, receiver: WebhookReceiver
) -> None:
    hub = publish_hub(engine, ("hooks",))
    changes = Changes(hub)
    changes.put("C0", "Aldergrove Timber")
    changes.put("C0", "Aldergrove Timber Ltd")  # updated
    relay_until_settled(hub, [_webhook("hooks", receiver.url, events=["created", "merged"])])
    assert receiver.versions_by_golden() == {1: [1]}
    [created, updated] = outbox_rows(engine, "hooks")
    assert (created["skipped"], updated["skipped"]) == (False, True)
    [status] = hub.publishing().status()
    assert (status.delivered, status.skipped, status.pending) == (1, 1, 0)


def test_several_relays_share_a_target_without_delivering_a_row_twice_at_once(
    engine: Engine, receiver: WebhookReceiver
) -> None:
    hub = publish_hub(engine, ("hooks",))
    changes = Changes(hub)
    _history(changes, goldens=8, versions=3)
    receiver.delay = 0.01
    stop = threading.Event()
    relays = [
        OutboxRelay(
            hub,
            [_webhook("hooks", receiver.url)],
            settings=RelaySettings(batch_size=3, idle_wait=0.01, owner=f"relay{i}"),
            stop=stop,
            seed=i,
        )
        for i in range(3)
    ]
    for relay in relays:
        relay.start()
    try:
        _history(changes, goldens=8, versions=2)  # while they run
        deadline = time.monotonic() + 60
        while hub.publishing().status()[0].pending and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for relay in relays:
            relay.join(30)
    assert receiver.overlaps == []
    keys = [r.key for r in receiver.accepted()]
    assert len(keys) == len(set(keys)) == 8 * 5  # each exactly once (nothing crashed)
    for versions in receiver.versions_by_golden().values():
        assert versions == [1, 2, 3, 4, 5]
    assert sum(r.counts()["hooks"].delivered for r in relays) == 40
    assert sum(1 for r in relays if r.counts()["hooks"].delivered) >= 2  # the work was shared


def test_sync_latency_per_target_from_source_commit_to_acknowledgement(
    engine: Engine, receiver: WebhookReceiver
) -> None:
    hub = publish_hub(engine, ("hooks",))
    changes = Changes(hub)
    _history(changes, goldens=5, versions=2)
    receiver.delay = 0.02
    relay_until_settled(hub, [_webhook("hooks", receiver.url)])
    [latency] = hub.sync_latency()
    assert latency.target == "hooks"
    assert latency.delivered == 10
    for span in (latency.source_to_golden, latency.golden_to_target, latency.source_to_target):
        assert span.count == 10
        assert span.p50 is not None
        assert span.p95 is not None
        assert span.p99 is not None
        assert 0 <= span.p50 <= span.p95 <= span.p99
    assert latency.golden_to_target.p50 >= 20  # every delivery waited for the receiver
    assert latency.source_to_target.p50 >= latency.golden_to_target.p50
