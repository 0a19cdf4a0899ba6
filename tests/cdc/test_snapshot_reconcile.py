"""A completed snapshot retires the rows it no longer has (``reconcile_snapshots``).

When a capture starts over with a new snapshot (offsets lost in a crash before the first
snapshot completed, or ``mdh cdc reset``), rows deleted in the source meanwhile send no delete
event: the snapshot simply does not read them. The apply loop tells the hub when each table's
snapshot ends, and the hub marks the rows it holds from before that snapshot deleted, in the
same transaction, retiring their golden records. Real hub database; Debezium's messages are
built here in its plain JSON form, snapshot markers as Debezium 3.6 sets them.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import sqlalchemy as sa
from cdc_testkit import SOURCES_YAML
from sqlalchemy.engine import Engine

from cdc.apply import ApplyLoop
from cdc.mapping import ChangeMapper, load_source_mappings
from cdc.raw import RawMessage
from hub.services import HubServices

T0 = 1_790_000_000_000


NAMES = ["Acme", "Borealis", "Cygnet", "Dunmore", "Everest", "Fjordline", "Gastown", "Halcyon",
         "Ironwood", "Juniper"]  # fmt: skip
CITIES = ["Berlin", "Lyon", "Porto", "Oslo", "Graz", "Turku", "Cork", "Brno", "Pisa", "Ghent"]


def _row(pk: int, company: str) -> dict[str, Any]:
    columns = ["given_name", "family_name", "phone", "mobile", "street", "postal_code"]
    return {
        **dict.fromkeys(columns),
        "id": pk,
        "kind": "O",
        "company_name": company,
        "email": f"office@{company.split()[0].lower()}{pk}.example",
        "city": CITIES[pk % len(CITIES)],
        "country": "DE",
        "date_of_birth": None,
        "credit_limit": None,
        "notes": None,
    }


def _message(
    op: str,
    pk: int,
    *,
    lsn: int,
    marker: str = "false",
    ts_ms: int = T0,
    table: str = "customer",
    company: str | None = None,
) -> RawMessage:
    row = _row(pk, company or f"{NAMES[pk % len(NAMES)]} Trading GmbH")
    payload = {
        "before": {"id": pk} if op == "d" else None,
        "after": None if op == "d" else row,
        "source": {
            "connector": "postgresql",
            "name": "crm",
            "db": "crm",
            "schema": "public",
            "table": table,
            "ts_ms": ts_ms,
            "lsn": lsn,
            "txId": lsn,
            "snapshot": marker,
            "sequence": json.dumps([None, str(lsn)] if marker != "false" else [str(lsn), str(lsn)]),
        },
        "op": op,
        "ts_ms": ts_ms,
    }
    return RawMessage(
        key=json.dumps({"id": pk}).encode(),
        value=json.dumps(payload).encode(),
        topic=f"crm.public.{table}",
    )


def _snapshot(pks: list[int], lsn: int, ts_ms: int) -> list[RawMessage]:
    """One table's snapshot as Debezium marks it: first, true..., last."""
    markers = ["first", *["true"] * (len(pks) - 2), "last"] if len(pks) > 1 else ["last"]
    return [
        _message("r", pk, lsn=lsn, marker=m, ts_ms=ts_ms)
        for pk, m in zip(pks, markers, strict=True)
    ]


def _loop(hub: HubServices, *, reconcile: bool = True, limit: float = 0.5) -> ApplyLoop:
    mapper = ChangeMapper(load_source_mappings(SOURCES_YAML))
    return ApplyLoop(
        hub, mapper, label="crm", reconcile_snapshots=reconcile, snapshot_delete_limit=limit
    )


def _sources(engine: Engine) -> dict[str, bool]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT pk, deleted FROM source_records ORDER BY pk::int"))
        return {str(pk): bool(deleted) for pk, deleted in rows}


def _history_reasons(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [str(r[0]) for r in conn.execute(sa.text("SELECT data::text FROM golden_history"))]


def test_a_new_snapshot_retires_the_rows_it_no_longer_reads(
    hub: HubServices, cdc_hub_engine: Engine
) -> None:
    loop = _loop(hub)
    loop.apply(_snapshot([1, 2, 3, 4, 5], lsn=1_000, ts_ms=T0))
    loop.apply([_message("c", 6, lsn=1_100, ts_ms=T0 + 1_000)])
    assert _sources(cdc_hub_engine) == dict.fromkeys(["1", "2", "3", "4", "5", "6"], False)
    with cdc_hub_engine.connect() as conn:
        versions_before = dict(
            conn.execute(
                sa.text(
                    "SELECT s.pk, g.version FROM source_records s"
                    " JOIN golden_records g ON g.id = s.golden_id"
                )
            ).all()
        )

    # The capture starts over (offsets lost): rows 2 and 6 were deleted meanwhile, row 7 is new.
    # The new snapshot comes in two batches; the end is in the second.
    again = _snapshot([1, 3, 4, 5, 7], lsn=5_000, ts_ms=T0 + 60_000)
    first = loop.apply(again[:3])
    assert first.result is not None
    assert first.result.absent_from_snapshot == 0
    last = loop.apply(again[3:])

    assert last.result is not None
    assert last.result.absent_from_snapshot == 2
    assert _sources(cdc_hub_engine) == {
        "1": False,
        "2": True,
        "3": False,
        "4": False,
        "5": False,
        "6": True,
        "7": False,
    }
    with cdc_hub_engine.connect() as conn:
        statuses = dict(
            conn.execute(
                sa.text("SELECT status, count(*) FROM golden_records GROUP BY status")
            ).all()
        )
        versions_after = dict(
            conn.execute(
                sa.text(
                    "SELECT s.pk, g.version FROM source_records s"
                    " JOIN golden_records g ON g.id = s.golden_id WHERE NOT s.deleted"
                )
            ).all()
        )
    # each row is its own customer: the two deleted ones' golden records are retired
    assert statuses == {"active": 5, "retired": 2}, statuses
    # rows read again unchanged do not get a new golden version (nothing to publish)
    for pk in ("1", "3", "4", "5"):
        assert versions_after[pk] == versions_before[pk], pk
    assert any("absent from a later snapshot" in r for r in _history_reasons(cdc_hub_engine))

    # Delivered again (a restart before the offsets were flushed): nothing more changes.
    again_outcome = loop.apply(again[3:])
    assert again_outcome.result is not None
    assert again_outcome.result.absent_from_snapshot == 0
    assert again_outcome.result.stale == 2

    # A row created after the snapshot is streamed and lives again.
    loop.apply([_message("c", 2, lsn=5_100, ts_ms=T0 + 61_000)])
    assert _sources(cdc_hub_engine)["2"] is False


def test_streamed_changes_after_the_end_in_the_same_batch_are_kept(
    hub: HubServices, cdc_hub_engine: Engine
) -> None:
    loop = _loop(hub)
    loop.apply(_snapshot([1, 2, 3], lsn=1_000, ts_ms=T0))
    # new snapshot without 2 and 3; in the same batch (polls merged), 3 is re-inserted and
    # 8 inserted after the snapshot's consistent point
    batch = [
        *_snapshot([1], lsn=5_000, ts_ms=T0 + 60_000),
        _message("c", 3, lsn=5_050, ts_ms=T0 + 60_500),
        _message("c", 8, lsn=5_060, ts_ms=T0 + 60_600),
    ]
    outcome = loop.apply(batch)
    assert outcome.result is not None
    assert outcome.result.absent_from_snapshot == 1
    assert _sources(cdc_hub_engine) == {"1": False, "2": True, "3": False, "8": False}


def test_a_dead_lettered_read_stops_the_reconciliation(
    hub: HubServices, cdc_hub_engine: Engine
) -> None:
    loop = _loop(hub)
    loop.apply(_snapshot([1, 2, 3], lsn=1_000, ts_ms=T0))
    poison = RawMessage(key=b'{"id": 2}', value=b"{not json", topic="crm.public.customer")
    snapshot = _snapshot([1, 3], lsn=5_000, ts_ms=T0 + 60_000)
    outcome = loop.apply([snapshot[0], poison, snapshot[1]])
    assert outcome.dead_letters == 1
    assert outcome.result is not None
    assert outcome.result.absent_from_snapshot == 0
    # row 2 may only have failed to parse: it is not taken for deleted
    assert _sources(cdc_hub_engine) == {"1": False, "2": False, "3": False}


def test_without_reconciliation_a_new_snapshot_deletes_nothing(
    hub: HubServices, cdc_hub_engine: Engine
) -> None:
    loop = _loop(hub, reconcile=False)
    loop.apply(_snapshot([1, 2, 3], lsn=1_000, ts_ms=T0))
    loop.apply(_snapshot([1, 3], lsn=5_000, ts_ms=T0 + 60_000))
    assert _sources(cdc_hub_engine) == {"1": False, "2": False, "3": False}


def test_rows_stored_past_the_snapshot_are_untouched(
    hub: HubServices, cdc_hub_engine: Engine
) -> None:
    loop = _loop(hub)
    loop.apply(_snapshot([1, 2], lsn=1_000, ts_ms=T0))
    # a row streamed at an LSN past the next snapshot's (a replayed future, say) is kept
    loop.apply([_message("c", 9, lsn=9_000, ts_ms=T0 + 30_000)])
    loop.apply(_snapshot([1], lsn=5_000, ts_ms=T0 + 60_000))
    assert _sources(cdc_hub_engine) == {"1": False, "2": True, "9": False}


def test_a_snapshot_missing_most_of_a_table_deletes_nothing_and_says_so(
    hub: HubServices, cdc_hub_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    loop = _loop(hub)
    loop.apply(_snapshot(list(range(1, 21)), lsn=1_000, ts_ms=T0))
    # the new snapshot reads 5 of the 20 rows (a select override, a half-restored source...)
    with caplog.at_level(logging.ERROR, logger="cdc.apply"):
        outcome = loop.apply(_snapshot([1, 2, 3, 4, 5], lsn=5_000, ts_ms=T0 + 60_000))
    assert outcome.result is not None
    assert outcome.result.absent_from_snapshot == 0
    assert outcome.result.absent_refused == ("crm/public.customer: 15 of 20 live rows",)
    assert not any(_sources(cdc_hub_engine).values()), "nothing deleted"
    assert "raise capture.snapshot_delete_limit" in caplog.text


def test_the_limit_can_be_raised(hub: HubServices, cdc_hub_engine: Engine) -> None:
    loop = _loop(hub, limit=1.0)
    loop.apply(_snapshot(list(range(1, 21)), lsn=1_000, ts_ms=T0))
    outcome = loop.apply(_snapshot([1, 2, 3, 4, 5], lsn=5_000, ts_ms=T0 + 60_000))
    assert outcome.result is not None
    assert outcome.result.absent_from_snapshot == 15
    assert sum(_sources(cdc_hub_engine).values()) == 15


def test_a_few_absent_rows_go_whatever_share_they_are(
    hub: HubServices, cdc_hub_engine: Engine
) -> None:
    loop = _loop(hub)
    loop.apply(_snapshot(list(range(1, 13)), lsn=1_000, ts_ms=T0))
    outcome = loop.apply(_snapshot([1, 2], lsn=5_000, ts_ms=T0 + 60_000))  # 10 of 12 absent
    assert outcome.result is not None
    assert outcome.result.absent_from_snapshot == 10
    assert outcome.result.absent_refused == ()
