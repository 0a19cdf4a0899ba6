"""Applying source changes: crosswalk, matching, golden records, positions, bad input."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hub_testkit import at, count, delete, key, make_hub, store_state, upsert
from sqlalchemy.engine import Engine

from hub.errors import SourceRecordNotLinkedError
from hub.model import BatchPosition, GoldenStatus
from hub.records import DeadLetter


def test_matching_records_share_one_golden_record_with_lineage(engine: Engine) -> None:
    hub = make_hub(engine)
    result = hub.apply_changes(
        [
            upsert("crm", "1", 1, legal_name="Acme Inc", emails=["info@acme.example"]),
            upsert("erp", "A-9", 2, legal_name="ACME Incorporated", emails=["INFO@acme.example"]),
            upsert("billing", "77", 3, legal_name="Globex", emails=["ap@globex.example"]),
        ]
    )
    assert result.applied == 3
    acme = hub.get_golden_by_source(key("crm", "1"))
    assert hub.get_golden_by_source(key("erp", "A-9")).id == acme.id
    assert hub.get_golden_by_source(key("billing", "77")).id != acme.id
    assert {str(s.key) for s in acme.sources} == {"crm/customers/1", "erp/customers/A-9"}
    # ERP is the system of record for the legal name (default rules), with its lineage.
    assert acme.attributes["legal_name"] == "ACME Incorporated"
    lineage = acme.lineage["legal_name"]
    assert str(lineage.source_key) == "erp/customers/A-9"
    assert lineage.position is not None
    assert lineage.position.committed_at == at(2)
    assert lineage.rule.startswith("source_priority")
    erp_link = next(s for s in acme.sources if s.key.system == "erp")
    assert erp_link.decided_by.value == "rule"
    assert erp_link.score == pytest.approx(0.99)
    assert erp_link.explanation is not None
    assert "email" in erp_link.explanation["agreements"]


def test_outbox_rows_per_target_with_unique_idempotency_keys(engine: Engine) -> None:
    hub = make_hub(engine, targets=("crm", "billing", "erp"))
    hub.apply_changes([upsert("crm", "1", 1, legal_name="Acme", emails=["a@acme.example"])])
    hub.apply_changes([upsert("crm", "1", 2, legal_name="Acme Two", emails=["a@acme.example"])])
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT golden_id, version, target, idempotency_key FROM outbox ORDER BY id")
        ).all()
    assert [(r.version, r.target) for r in rows] == [
        (1, "crm"),
        (1, "billing"),
        (1, "erp"),
        (2, "crm"),
        (2, "billing"),
        (2, "erp"),
    ]
    assert len({r.idempotency_key for r in rows}) == len(rows)
    assert rows[0].idempotency_key == f"{rows[0].golden_id}:1:crm"


def test_outbox_and_history_commit_with_the_golden_change_or_not_at_all(engine: Engine) -> None:
    hub = make_hub(engine)
    batch = [upsert("crm", "1", 1, legal_name="Acme", emails=["a@acme.example"])]
    # Make the last step of the transaction (recording the batch position) fail.
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE FUNCTION refuse_position() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE EXCEPTION 'position refused'; END; $$"
            )
        )
        conn.execute(
            sa.text(
                "CREATE TRIGGER refuse_position BEFORE INSERT ON applied_positions"
                " FOR EACH ROW EXECUTE FUNCTION refuse_position()"
            )
        )
    try:
        with pytest.raises(sa.exc.DBAPIError, match="position refused"):
            hub.apply_changes(batch, BatchPosition("crm", "", 1))
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TRIGGER refuse_position ON applied_positions"))
            conn.execute(sa.text("DROP FUNCTION refuse_position()"))
    for table in ("golden_records", "source_records", "golden_history", "outbox"):
        assert count(engine, f"SELECT count(*) FROM {table}") == 0, table

    hub.apply_changes(batch, BatchPosition("crm", "", 1))
    assert count(engine, "SELECT count(*) FROM golden_history") == 1
    assert count(engine, "SELECT count(*) FROM outbox") == 2


def test_nul_characters_from_a_source_never_fail_the_batch(engine: Engine) -> None:
    hub = make_hub(engine)
    result = hub.apply_changes(
        [
            upsert("crm", "1", 1, legal_name="Bad\u0000Name", emails=["a@acme.example"]),
            upsert("crm", "2\u00003", 2, legal_name="NUL in the key"),
            upsert("crm", "4", 3, legal_name="Fine"),
        ]
    )
    assert result.applied == 2
    assert result.invalid == 1
    assert hub.get_golden_by_source(key("crm", "1")).attributes["legal_name"] == "Bad\ufffdName"
    assert hub.get_golden_by_source(key("crm", "4")).attributes["legal_name"] == "Fine"


def test_batch_position_already_applied_is_skipped(engine: Engine) -> None:
    hub = make_hub(engine)
    batch = [upsert("crm", "1", 1, legal_name="Acme")]
    first = hub.apply_changes(batch, BatchPosition("crm-connector", "", 100))
    again = hub.apply_changes(batch, BatchPosition("crm-connector", "", 100))
    older = hub.apply_changes(
        [upsert("crm", "1", 5, legal_name="Changed")], BatchPosition("crm-connector", "", 99)
    )
    assert first.applied == 1
    assert again.batch_skipped
    assert older.batch_skipped
    assert hub.get_golden_by_source(key("crm", "1")).attributes["legal_name"] == "Acme"
    assert count(engine, 'SELECT "offset" FROM applied_positions') == 100


def test_per_key_order_older_change_ignored_and_delete_final_until_newer_create(
    engine: Engine,
) -> None:
    hub = make_hub(engine)
    hub.apply_changes([upsert("crm", "1", 10, legal_name="Newest")])
    stale = hub.apply_changes([upsert("crm", "1", 5, legal_name="Older")])
    assert stale.stale == 1
    golden = hub.get_golden_by_source(key("crm", "1"))
    assert golden.attributes["legal_name"] == "Newest"

    hub.apply_changes([delete("crm", "1", 20)])
    assert hub.get_golden(golden.id).status is GoldenStatus.RETIRED
    late = hub.apply_changes([upsert("crm", "1", 15, legal_name="Before the delete")])
    assert late.stale == 1
    with pytest.raises(SourceRecordNotLinkedError):
        hub.get_golden_by_source(key("crm", "1"))

    hub.apply_changes([upsert("crm", "1", 30, legal_name="Back again")])
    assert hub.get_golden_by_source(key("crm", "1")).attributes["legal_name"] == "Back again"


def test_invalid_changes_are_kept_with_errors_and_the_rest_applies(engine: Engine) -> None:
    hub = make_hub(engine)
    result = hub.apply_changes(
        [
            upsert("crm", "1", 1, legal_name="Good Co", emails=["ok@good.example"]),
            upsert("crm", "2", 2, legal_name="Bad Date", date_of_birth="2023-02-30"),
            upsert("crm", "3", 3, legal_name="Bad Mail", emails=["not-an-address"]),
            upsert("crm", "", 4, legal_name="No Key"),
            upsert("crm", "  ", 5, legal_name="Blank Key"),
        ],
        dead_letters=[
            DeadLetter("crm", b"k", b"{not json", reason="unparseable", error_class="ParseError")
        ],
    )
    assert result.applied == 1
    assert result.invalid == 4
    assert result.dead_letters == 1
    assert hub.get_golden_by_source(key("crm", "1")).attributes["legal_name"] == "Good Co"
    bad_date = hub.get_source_record(key("crm", "2"))
    assert bad_date.golden_id is None
    assert bad_date.validation_errors is not None
    assert bad_date.validation_errors[0]["loc"] == "date_of_birth"
    assert bad_date.attributes["legal_name"] == "Bad Date"
    bad_mail = hub.get_source_record(key("crm", "3"))
    assert bad_mail.validation_errors is not None
    assert bad_mail.validation_errors[0]["loc"].startswith("emails")
    with engine.connect() as conn:
        keyless = (
            conn.execute(
                sa.text("SELECT validation_errors FROM source_records WHERE pk IS NULL ORDER BY id")
            )
            .scalars()
            .all()
        )
    assert len(keyless) == 2
    assert all(errors[0]["loc"] == "pk" for errors in keyless)
    for_stewards = hub.invalid_source_records()
    assert [(r.system, r.key is None) for r in for_stewards] == [
        ("crm", False),
        ("crm", False),
        ("crm", True),
        ("crm", True),
    ]
    # Re-delivering the keyless changes does not store them twice.
    hub.apply_changes([upsert("crm", "", 4, legal_name="No Key")])
    assert count(engine, "SELECT count(*) FROM source_records WHERE pk IS NULL") == 2
    assert count(engine, "SELECT count(*) FROM dead_letters") == 1

    # Fixed at the source, the record gets linked.
    hub.apply_changes([upsert("crm", "2", 9, legal_name="Bad Date", date_of_birth="2023-02-28")])
    assert hub.get_golden_by_source(key("crm", "2")).attributes["date_of_birth"] == "2023-02-28"


def test_an_update_invisible_to_survivorship_makes_no_new_version(engine: Engine) -> None:
    hub = make_hub(engine)
    hub.apply_changes(
        [
            upsert("crm", "1", 1, legal_name="Acme", emails=["a@acme.example"]),
            upsert("erp", "E1", 2, legal_name="Acme", emails=["a@acme.example"]),
        ]
    )
    golden = hub.get_golden_by_source(key("crm", "1"))
    outbox_before = count(engine, "SELECT count(*) FROM outbox")
    # The hub's own write-back comes back through CDC: same values, newer commit.
    echo = hub.apply_changes([upsert("crm", "1", 50, legal_name="Acme", emails=["a@acme.example"])])
    assert echo.goldens_changed == ()
    assert hub.get_golden(golden.id).version == golden.version
    assert count(engine, "SELECT count(*) FROM outbox") == outbox_before
    # Lineage still names the newest source of each value.
    assert store_state(engine)["lineage"]
