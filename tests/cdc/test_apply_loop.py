"""The apply loop against a real hub database: recorded Debezium runs become golden records,
redelivery changes nothing, poison is dead-lettered while the stream goes on, transient
faults are retried until the database is back, bugs crash."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from cdc_testkit import SOURCES_YAML, empty_hub, fresh_hub_database, recorded_messages
from sqlalchemy.engine import Engine
from test_poison_corpus import CORPUS, LIMIT
from test_poison_corpus import _mapper as dead_lettering_mapper

from cdc.apply import ApplyInterruptedError, ApplyLoop, RetryPolicy
from cdc.envelope import parse_message
from cdc.mapping import ChangeMapper, load_source_mappings
from cdc.metrics import CaptureMetrics
from cdc.raw import RawMessage
from hub.db import create_engine
from hub.errors import SchemaNotReadyError
from hub.model import SourceKey
from hub.rules import default_rules
from hub.services import HubServices
from matching import MatchModel, default_spec
from mdh.embedded_pg import EmbeddedPostgres

FAST_RETRY = RetryPolicy(initial_seconds=0.05, max_seconds=0.3)


def _loop(hub: HubServices, **options: Any) -> ApplyLoop:
    mapper = options.pop("mapper", None) or ChangeMapper(load_source_mappings(SOURCES_YAML))
    options.setdefault("retry", FAST_RETRY)
    return ApplyLoop(hub, mapper, label="crm", **options)


def _rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(sql))]


def _state(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """What a reader sees: source rows with their golden record's attributes, plus counts."""
    return {
        "sources": _rows(
            engine,
            "SELECT s.pk, s.deleted, s.attributes::text, g.attributes::text, g.version"
            " FROM source_records s LEFT JOIN golden_records g ON g.id = s.golden_id"
            " ORDER BY s.pk",
        ),
        "history": _rows(
            engine, "SELECT golden_id, version, kind FROM golden_history ORDER BY 1, 2"
        ),
        "outbox": _rows(engine, "SELECT golden_id, version, target FROM outbox ORDER BY 1, 2, 3"),
    }


def _final(engine: Engine) -> list[tuple[Any, ...]]:
    """Source rows and their golden record's attributes (a deleted row's last image aside)."""
    return [
        (pk, True) if deleted else (pk, deleted, a, g)
        for pk, deleted, a, g, _ in _state(engine)["sources"]
    ]


def _batches(messages: list[RawMessage], size: int) -> list[list[RawMessage]]:
    return [messages[i : i + size] for i in range(0, len(messages), size)]


def test_a_recorded_run_becomes_golden_records(hub: HubServices, recording: str) -> None:
    messages = recorded_messages(recording)
    loop = _loop(hub, metrics=CaptureMetrics())

    outcomes = [loop.apply(batch) for batch in _batches(messages, 4)]

    assert (
        sum(o.changes for o in outcomes) == 11
    )  # 3 snapshot reads, 2 inserts, 4 updates, 2 deletes
    assert sum(o.dead_letters for o in outcomes) == 1  # the truncate: never a silent wipe
    engine = hub.engine
    letters = _rows(
        engine, "SELECT source, reason, error_class, raw_value IS NOT NULL FROM dead_letters"
    )
    assert len(letters) == 1
    assert letters[0][0] == "crm"
    assert letters[0][1].startswith("truncate")
    assert letters[0][2] == "TruncateNotAppliedError"
    assert letters[0][3]

    live = {pk: deleted for pk, deleted, *_ in _state(engine)["sources"]}
    assert live == {"1": False, "2": True, "20": False, "3": True, "4": False}
    acme = hub.get_golden_by_source(SourceKey("crm", "public.customer", "1"))
    last_image = [
        e.after for e in map(parse_message, messages) if e.after and e.after.get("id") == 1
    ][-1]
    assert acme.attributes["addresses"][0]["city"] == last_image["city"]
    with pytest.raises(Exception, match="deleted"):
        hub.get_golden_by_source(SourceKey("crm", "public.customer", "3"))

    snapshot = loop.metrics.snapshot()["crm"] if loop.metrics else {}
    assert snapshot["changes"] == 11
    assert snapshot["last_commit_at"] is not None


def test_unchanged_toasted_notes_keep_their_stored_value(hub: HubServices) -> None:
    messages = recorded_messages("pg_schemas_default.jsonl")
    envelopes = [parse_message(m) for m in messages]
    toast_update = next(
        i for i, e in enumerate(envelopes) if e.op.value == "u" and "notes" in e.unavailable
    )
    loop = _loop(hub)
    loop.apply(messages[:toast_update])
    key = SourceKey("crm", "public.customer", "1")
    notes_before = hub.get_source_record(key).attributes["extra"]["notes"]
    assert len(notes_before) > 2000  # long enough to be TOASTed

    loop.apply([messages[toast_update]])

    record = hub.get_source_record(key)
    assert record.attributes["extra"]["notes"] == notes_before
    assert record.raw is not None
    assert record.raw["notes"] == notes_before
    assert "__debezium_unavailable_value" not in str(hub.get_golden_by_source(key).attributes)


def test_redelivery_in_other_batches_changes_nothing(hub: HubServices) -> None:
    messages = recorded_messages("pg_schemas_full.jsonl")
    loop = _loop(hub)
    for batch in _batches(messages, 5):
        loop.apply(batch)
    once = _state(hub.engine)
    letters_once = _rows(hub.engine, "SELECT id, attempts FROM dead_letters")

    # at-least-once: everything again, cut differently, then a tail again
    for batch in _batches(messages, 3):
        loop.apply(batch)
    for batch in _batches(messages[-6:], 2):
        loop.apply(batch)

    assert _state(hub.engine) == once
    # the same poison message seen again is counted, not stored twice
    again = _rows(hub.engine, "SELECT id, attempts FROM dead_letters")
    assert [i for i, _ in again] == [i for i, _ in letters_once]
    assert all(attempts == 3 for _, attempts in again)


def test_poison_interleaved_with_valid_messages(hub: HubServices, cdc_hub_engine: Engine) -> None:
    good = [
        m
        for m in recorded_messages("pg_schemas_default.jsonl")
        if b'"op":"t"' not in (m.value or b"")
    ]
    _loop(hub, mapper=dead_lettering_mapper(), max_message_bytes=LIMIT).apply(good)
    alone = _final(cdc_hub_engine)
    assert not _rows(cdc_hub_engine, "SELECT 1 FROM dead_letters")

    empty_hub(cdc_hub_engine)
    stream: list[RawMessage] = []
    for i, message in enumerate(good):
        stream.append(message)
        if i < len(CORPUS):
            stream.append(CORPUS[i][1])
    stream.extend(m for _, m, _ in CORPUS[len(good) :])
    loop = _loop(hub, mapper=dead_lettering_mapper(), max_message_bytes=LIMIT)
    outcomes = [loop.apply(batch) for batch in _batches(stream, 7)]

    assert sum(o.dead_letters for o in outcomes) == len(CORPUS)
    stored = _rows(
        cdc_hub_engine,
        "SELECT reason, error_class, raw_key, raw_value, position::text FROM dead_letters ORDER BY id",
    )
    assert sorted(reason.split(" ")[0].rstrip(":") for reason, *_ in stored) == sorted(
        r for _, _, r in CORPUS
    )
    by_bytes = {
        (_bytes(key), _bytes(value)): (reason, error_class)
        for reason, error_class, key, value, _ in stored
    }
    for label, message, reason in CORPUS:
        row = by_bytes.get((message.key, message.value))
        assert row is not None, f"{label}: raw key and value not stored byte for byte"
        assert row[0].startswith(reason), label
        assert row[1].endswith("Error"), label
    # (history may differ: two changes of a row in one batch make one version)
    assert _final(cdc_hub_engine) == alone, "poison in between changed nothing for the good ones"


def test_transient_outage_is_retried_until_the_database_is_back(
    pg_server: EmbeddedPostgres,
) -> None:
    url = fresh_hub_database(pg_server, "cdc_outage")
    engine = create_engine(url, pool_size=1)
    hub = HubServices(
        engine, matcher=MatchModel.untrained(default_spec()), rules=default_rules(), targets=()
    )
    admin = pg_server.url("postgres", driver="postgresql")
    messages = recorded_messages("pg_plain_full_double.jsonl")
    loop = _loop(hub, retry=RetryPolicy(initial_seconds=0.1, max_seconds=0.4))
    try:
        _allow_connections(admin, "cdc_outage", allow=False)
        outcome: list[Any] = []
        worker = threading.Thread(target=lambda: outcome.append(loop.apply(messages)))
        worker.start()
        time.sleep(1.5)
        assert worker.is_alive(), "the loop must keep retrying while the database is away"
        assert not outcome
        _allow_connections(admin, "cdc_outage", allow=True)
        worker.join(30)
        assert outcome, "the batch must be applied once the database is back"
        assert outcome[0].attempts > 1
        assert outcome[0].result.applied > 0
    finally:
        _allow_connections(admin, "cdc_outage", allow=True)
        engine.dispose()


def test_a_stop_during_retries_leaves_the_batch_unapplied(pg_server: EmbeddedPostgres) -> None:
    url = fresh_hub_database(pg_server, "cdc_outage_stop")
    engine = create_engine(url, pool_size=1)
    hub = HubServices(
        engine, matcher=MatchModel.untrained(default_spec()), rules=default_rules(), targets=()
    )
    admin = pg_server.url("postgres", driver="postgresql")
    stop = threading.Event()
    loop = _loop(hub, stop=stop, retry=RetryPolicy(initial_seconds=0.1, max_seconds=0.2))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            loop.apply(recorded_messages("pg_plain_full_double.jsonl"))
        except BaseException as exc:
            errors.append(exc)

    try:
        _allow_connections(admin, "cdc_outage_stop", allow=False)
        worker = threading.Thread(target=run)
        worker.start()
        time.sleep(0.5)
        stop.set()
        worker.join(10)
        assert len(errors) == 1
        assert isinstance(errors[0], ApplyInterruptedError)
    finally:
        _allow_connections(admin, "cdc_outage_stop", allow=True)
    assert _rows(engine, "SELECT count(*) FROM source_records") == [(0,)]
    engine.dispose()


def test_a_bug_is_raised_not_retried_or_dead_lettered(pg_server: EmbeddedPostgres) -> None:
    pg_server.ensure_database("cdc_unmigrated")
    engine = create_engine(pg_server.url("cdc_unmigrated"))
    hub = HubServices(
        engine, matcher=MatchModel.untrained(default_spec()), rules=default_rules(), targets=()
    )
    try:
        with pytest.raises(SchemaNotReadyError):
            _loop(hub).apply(recorded_messages("pg_plain_full_double.jsonl"))
    finally:
        engine.dispose()


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def _allow_connections(admin_url: str, database: str, *, allow: bool) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )
