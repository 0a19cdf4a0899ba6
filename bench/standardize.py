"""Standardization speed: CPU microseconds per ``standardize_record`` and per standardizer.

Records are the seeded synthetic US customers of ``bench/synthetic.py`` (flat CSV-style
fields) plus canonical international records (nested addresses, lists), each standardized
twice: the first pass has distinct values (cache misses, the cost of a new record), the
second pass hits the memo caches (the cost of a CDC update that changes one attribute) as
long as each half of ``--records`` fits in them (``CACHE_SIZE`` entries per standardizer).
Times are process CPU time, so a busy machine does not inflate them.

    .venv/bin/python bench/standardize.py --records 100000
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from matching.features import standardize_record
from matching.standardize import (
    canonical_given_name,
    split_org_name,
    split_street,
    standardize_city,
    standardize_date,
    standardize_domain,
    standardize_email,
    standardize_phone,
    standardize_postcode,
    standardize_tax_id,
)
from synthetic import generate_customers

_INTERNATIONAL = [
    ("Jürgen", "Müller", "Hauptstraße {n}a", "Berlin", "10115", "DE", "030 {p}", "GmbH"),
    ("Hélène", "Lefèvre", "{n}, rue de la Paix", "Paris", "75002", "FR", "01 42 {p}", "SAS"),
    ("María José", "García-López", "Calle Mayor, {n}", "Madrid", "28013", "ES", "91 {p}", "S.L."),
    ("Liz", "O'Neil", "Flat 3, {n} High Street", "London", "SW1A 1AA", "GB", "020 7{p}", "Ltd"),
    ("Jan", "de Vries", "Kerkstraat {n}", "Amsterdam", "1017 GA", "NL", "020 {p}", "B.V."),
]


def _international(n: int, rng: random.Random) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for i in range(n):
        given, family, street, city, postcode, country, phone, form = rng.choice(_INTERNATIONAL)
        address = {
            "lines": [street.format(n=i % 400 + 1)],
            "city": city,
            "postal_code": postcode,
            "country": country,
        }
        if i % 4 == 0:
            records.append(
                {
                    "kind": "organization",
                    "legal_name": f"{family} {i} {form}",
                    "emails": [f"info@{family.lower().replace(' ', '')}{i}.example"],
                    "phones": [phone.format(p=f"{1000000 + i}")],
                    "addresses": [address],
                    "tax_id": f"{100000000 + i}",
                    "website": f"https://www.{family.lower().replace(' ', '')}{i}.example/",
                }
            )
        else:
            records.append(
                {
                    "kind": "person",
                    "given_name": given,
                    "family_name": f"{family}{i}",
                    "emails": [f"{given.split()[0].lower()}.{i}+crm@gmail.com"],
                    "phones": [phone.format(p=f"{1000000 + i}")],
                    "addresses": [address],
                    "date_of_birth": f"{1940 + i % 60}-{1 + i % 12:02d}-{1 + i % 28:02d}",
                }
            )
    return records


def _per_call(function: Callable[[Any], object], values: Sequence[Any]) -> tuple[float, float]:
    """CPU microseconds per call: (first pass, second pass over the same values)."""
    timings = []
    for _ in range(2):
        start = time.process_time()
        for value in values:
            function(value)
        timings.append((time.process_time() - start) / max(len(values), 1) * 1e6)
    return timings[0], timings[1]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    half = args.records // 2
    synthetic = [
        {k: v for k, v in record.items() if k not in ("record_id", "entity")}
        for record in generate_customers(half, seed=args.seed)
    ]
    international = _international(args.records - half, rng)
    standardize_record(international[0])  # build the lazily loaded tables outside the timing

    print(f"standardize_record, CPU us per record ({args.records:,} records)")
    for label, records in (("synthetic US (flat)", synthetic), ("international", international)):
        first, second = _per_call(standardize_record, records)
        print(f"  {label:24s} new values {first:7.1f}   repeated {second:6.1f}")

    print("standardizers, CPU us per call (new values / repeated)")
    n = min(args.records, 10_000)  # within CACHE_SIZE, so the second pass hits
    cases: list[tuple[str, Callable[[Any], object], list[Any]]] = [
        ("canonical_given_name", canonical_given_name, [f"Bobby{i}" for i in range(n)]),
        ("split_org_name", split_org_name, [f"Acme {i} GmbH & Co. KG" for i in range(n)]),
        ("standardize_email", standardize_email, [f"J.Doe{i}+x@GoogleMail.com" for i in range(n)]),
        (
            "standardize_phone (US)",
            lambda v: standardize_phone(v, "US"),
            [
                f"(415) 555-{i % 10_000:04d}" if i < 10_000 else f"+1 212 555 {i:04d}"
                for i in range(n)
            ],
        ),
        (
            "standardize_domain",
            standardize_domain,
            [f"https://www.acme{i}.co.uk/x" for i in range(n)],
        ),
        ("split_street", split_street, [f"{i} Main Street Apt 4B" for i in range(n)]),
        (
            "standardize_postcode (US)",
            lambda v: standardize_postcode(v, "US"),
            [f"{i:05d}-1234" for i in range(n)],
        ),
        ("standardize_city", standardize_city, [f"St. Town{i}" for i in range(n)]),
        (
            "standardize_date",
            standardize_date,
            [f"{1 + i % 28}/0{1 + i % 9}/{1000 + i}" for i in range(n)],
        ),
        (
            "standardize_tax_id (DE)",
            lambda v: standardize_tax_id(v, "DE"),
            [f"{100000000 + i}" for i in range(n)],
        ),
    ]
    for label, function, values in cases:
        first, second = _per_call(function, values)
        print(f"  {label:28s} {first:6.1f} / {second:4.2f}")


if __name__ == "__main__":
    main()
