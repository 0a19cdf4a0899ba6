"""How long ``survive()`` takes for one golden record, as the CDC path calls it.

Every touched golden record is survived on every change, inside the apply transaction, so the
budget is about 1 ms for a record with ~10 linked source records. Prints median and p99 per
call for a few source counts, with the default CRM/billing/ERP rules and with two pins::

    .venv/bin/python bench/survivorship.py
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hub.model import CanonicalParty, Pin, PostalAddress, SourceKey, SourcePosition, SourceSnapshot
from hub.rules import default_rules
from hub.survivorship import survive

SYSTEMS = ("crm", "billing", "erp")
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def sources(count: int) -> list[SourceSnapshot]:
    """``count`` realistic, partly disagreeing source records of one customer."""
    result = []
    for index in range(count):
        system = SYSTEMS[index % 3]
        party = CanonicalParty(
            legal_name=("Acme GmbH", "ACME GmbH", "Acme Holding GmbH")[index % 3],
            emails=(f"contact{index}@acme.example", "info@acme.example"),
            phones=("+49301234567", f"+4930123{index:04d}"),
            addresses=(
                PostalAddress(
                    lines=("Hauptstr. 1",), city="Berlin", postal_code="10115", country="DE"
                ),
            ),
            tax_id="DE123456789" if system != "crm" else None,
            website="acme.example",
            currency="EUR" if system == "billing" else None,
            payment_terms="NET30" if system == "billing" else None,
            credit_limit=Decimal("50000") if system == "billing" else None,
            legal_entity="DE01" if system == "erp" else None,
            lifecycle_status="active",
        )
        result.append(
            SourceSnapshot(
                source_record_id=index + 1,
                key=SourceKey(system, "customers", str(1000 + index)),
                attributes=party.to_attributes(),
                position=SourcePosition(
                    lsn=10_000 + index,
                    tx_id=500 + index,
                    committed_at=T0 + timedelta(seconds=index),
                ),
            )
        )
    return result


def measure(count: int, pinned: bool, repeat: int = 3000) -> tuple[float, float]:
    """Median and p99 microseconds per ``survive()`` call."""
    rules = default_rules()
    records = sources(count)
    pins = (
        {
            "legal_name": Pin("legal_name", "Acme AG", "ann", "contract", T0),
            "tax_id": Pin("tax_id", "DE999999999", "ann", "registry", T0),
        }
        if pinned
        else {}
    )
    for _ in range(200):
        survive(records, rules, pins)
    timings = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        survive(records, rules, pins)
        timings.append((time.perf_counter_ns() - start) / 1000)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.99)]


def main() -> None:
    print(f"{'sources':>8} {'pins':>5} {'median µs':>10} {'p99 µs':>8}")
    for count in (1, 3, 10, 30):
        for pinned in (False, True):
            median, p99 = measure(count, pinned)
            print(f"{count:>8} {2 if pinned else 0:>5} {median:>10.1f} {p99:>8.1f}")


if __name__ == "__main__":
    main()
