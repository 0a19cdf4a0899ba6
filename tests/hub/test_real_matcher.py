"""The store with the real matching engine (``matching.MatchModel``) instead of the test one."""

from __future__ import annotations

from hub_testkit import key, store_state, upsert
from sqlalchemy.engine import Engine

from hub.rules import default_rules
from hub.services import HubServices
from matching import MatchModel, default_spec


def test_apply_with_the_fellegi_sunter_model(engine: Engine) -> None:
    model = MatchModel.untrained(default_spec())
    hub = HubServices(engine, matcher=model, rules=default_rules(), targets=("crm",))
    changes = [
        upsert(
            "crm",
            "1",
            1,
            legal_name="Acme Corporation",
            emails=["info@acme.example"],
            phones=["+49 30 1234567"],
            tax_id="DE123456789",
        ),
        upsert(
            "billing",
            "B1",
            2,
            legal_name="ACME Corp.",
            emails=["INFO@acme.example"],
            tax_id="DE 123 456 789",
        ),
        upsert("erp", "E1", 3, legal_name="Globex GmbH", emails=["ap@globex.example"]),
    ]
    result = hub.apply_changes(changes)
    assert result.applied == 3
    acme = hub.get_golden_by_source(key("crm", "1"))
    assert {s.key.system for s in acme.sources} == {"crm", "billing"}
    assert hub.get_golden_by_source(key("erp", "E1")).id != acme.id
    billing = next(s for s in acme.sources if s.key.system == "billing")
    assert billing.matcher_version == model.version
    assert billing.score is not None
    assert billing.score > 0.9
    assert billing.explanation is not None
    assert billing.explanation["decision"] == "match"
    assert billing.explanation["comparisons"]

    # Idempotent with the real model too.
    state = store_state(engine)
    again = hub.apply_changes(changes)
    assert again.stale == 3
    assert store_state(engine) == state
