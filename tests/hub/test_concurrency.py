"""Two workers at once, each on its own connection: locks keep the store consistent."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from hub_testkit import count, key, make_hub, truncate_hub, upsert
from sqlalchemy.engine import Engine

from hub.model import SourceChange
from hub.services import HubServices

ROUNDS = 8


def _race(hub: HubServices, batches: Sequence[Sequence[SourceChange]]) -> None:
    """Apply each batch on its own thread, released at the same instant."""
    barrier = threading.Barrier(len(batches))
    errors: list[BaseException] = []

    def worker(batch: Sequence[SourceChange]) -> Callable[[], None]:
        def run() -> None:
            try:
                barrier.wait(timeout=10)
                hub.apply_changes(batch)
            except BaseException as exc:  # surfaced in the test thread below
                errors.append(exc)

        return run

    threads = [threading.Thread(target=worker(batch)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def test_two_workers_applying_a_matching_pair_create_one_golden_record(
    hub_engine: Engine,
) -> None:
    for round_number in range(ROUNDS):
        truncate_hub(hub_engine)
        hub = make_hub(hub_engine)
        email = f"r{round_number}@acme.example"
        _race(
            hub,
            [
                [upsert("crm", "1", 1, legal_name="Acme", emails=[email])],
                [upsert("billing", "B1", 1, legal_name="ACME", emails=[email])],
            ],
        )
        assert count(hub_engine, "SELECT count(*) FROM golden_records") == 1
        crm = hub.get_golden_by_source(key("crm", "1"))
        assert hub.get_golden_by_source(key("billing", "B1")).id == crm.id
        assert len(crm.sources) == 2


def test_two_workers_updating_one_golden_record_lose_no_update(hub_engine: Engine) -> None:
    # The two records share no blocking key (a steward linked them), so only the golden
    # record's row lock orders the two transactions.
    for _ in range(ROUNDS):
        truncate_hub(hub_engine)
        hub = make_hub(hub_engine)
        hub.apply_changes(
            [
                upsert("crm", "1", 1, legal_name="Acme", emails=["a@acme.example"]),
                upsert("billing", "B1", 2, legal_name="Acme Billing", emails=["b@acme.example"]),
            ]
        )
        golden = hub.link(
            key("billing", "B1"),
            hub.get_golden_by_source(key("crm", "1")).id,
            actor="steward",
            reason="same customer",
        )
        _race(
            hub,
            [
                [
                    upsert(
                        "crm",
                        "1",
                        10,
                        legal_name="Acme",
                        emails=["a@acme.example"],
                        website="acme.example",
                    )
                ],
                [
                    upsert(
                        "billing",
                        "B1",
                        11,
                        legal_name="Acme Billing",
                        emails=["b@acme.example"],
                        payment_terms="NET30",
                    )
                ],
            ],
        )
        after = hub.get_golden(golden.id)
        assert after.attributes["website"] == "acme.example"
        assert after.attributes["payment_terms"] == "NET30"
        assert after.version == golden.version + 2
