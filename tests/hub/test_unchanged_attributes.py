"""Unchanged (TOASTed) attributes: a change that did not carry them keeps the stored values."""

from __future__ import annotations

import dataclasses

from hub_testkit import key, make_hub, upsert
from sqlalchemy.engine import Engine


def test_unchanged_attributes_keep_their_stored_values(engine: Engine) -> None:
    hub = make_hub(engine)
    hub.apply_changes(
        [
            upsert(
                "crm",
                "1",
                1,
                legal_name="Acme GmbH",
                emails=["ap@acme.example"],
                extra={"notes": "long text"},
            )
        ]
    )
    update = upsert("crm", "1", 2, legal_name="Acme AG", emails=["ap@acme.example"])
    update = dataclasses.replace(
        update, unchanged=frozenset({"extra"}), raw={"id": "1", "legal_name": "Acme AG"}
    )

    result = hub.apply_changes([update])

    assert result.applied == 1
    record = hub.get_source_record(key("crm", "1"))
    assert record.attributes["extra"] == {"notes": "long text"}
    assert record.attributes["legal_name"] == "Acme AG"
    # raw columns the change did not send are kept too; the ones it sent win
    assert record.raw is not None
    assert record.raw["legal_name"] == "Acme AG"
    assert record.raw["extra"] == str({"notes": "long text"})
    golden = hub.get_golden_by_source(key("crm", "1"))
    assert golden.attributes["legal_name"] == "Acme AG"


def test_without_unchanged_a_missing_attribute_is_cleared(engine: Engine) -> None:
    hub = make_hub(engine)
    hub.apply_changes([upsert("crm", "1", 1, legal_name="Acme GmbH", extra={"notes": "text"})])

    hub.apply_changes([upsert("crm", "1", 2, legal_name="Acme GmbH")])

    assert "extra" not in hub.get_source_record(key("crm", "1")).attributes


def test_unchanged_on_a_row_never_stored_applies_what_came(engine: Engine) -> None:
    hub = make_hub(engine)
    change = dataclasses.replace(
        upsert("crm", "7", 1, legal_name="Initech"), unchanged=frozenset({"extra"})
    )

    hub.apply_changes([change])

    record = hub.get_source_record(key("crm", "7"))
    assert record.attributes == {"kind": "organization", "legal_name": "Initech"}


def test_unchanged_after_an_insert_in_the_same_batch_keeps_the_inserted_value(
    engine: Engine,
) -> None:
    hub = make_hub(engine)
    insert = upsert("crm", "1", 1, legal_name="Acme GmbH", extra={"notes": "long text"})
    update = dataclasses.replace(
        upsert("crm", "1", 2, legal_name="Acme AG"),
        unchanged=frozenset({"extra"}),
        raw={"id": "1", "legal_name": "Acme AG"},
    )

    hub.apply_changes([insert, update])

    record = hub.get_source_record(key("crm", "1"))
    assert record.attributes["extra"] == {"notes": "long text"}
    assert record.attributes["legal_name"] == "Acme AG"
    assert record.raw is not None
    assert record.raw["extra"] == str({"notes": "long text"})
