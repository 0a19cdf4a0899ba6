"""Hand-built feature records and a small synthetic population with noisy duplicates."""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Any

from matching import MatchModel, febrl_spec, train

GIVEN = [
    "james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "william",
    "elizabeth", "david", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah",
    "charles", "karen", "olivia", "liam", "noah", "emma", "amelia", "oliver", "isla", "jack",
    "harper", "lucas", "mia", "henry", "zoe", "archie", "ruby", "leo", "chloe", "oscar",
]  # fmt: skip
FAMILY = [
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
    "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson", "taylor", "thomas",
    "moore", "jackson", "martin", "lee", "thompson", "white", "harris", "clark", "lewis",
    "robinson", "walker", "young", "allen", "king", "wright", "scott", "torres", "nguyen",
    "hill", "flores", "green", "adams", "nelson", "baker", "hall", "rivera", "campbell",
    "mitchell", "carter", "roberts", "kowalczyk", "abernethy", "vanderbilt", "oyelaran",
]  # fmt: skip
STREETS = [
    "wallaby place", "hoseason street", "pridham street", "gundulu place", "yuranigh court",
    "stanley street", "pinkerton circuit", "salkauskas crescent", "light street", "edkins street",
    "lambrigg street", "solomon crescent", "wyncliffe road", "goodwin street", "studley street",
]  # fmt: skip
CITIES = ["cleveland", "marsden", "granville", "utakarra", "richlands", "dapto", "windermere"]


def person(**overrides: Any) -> dict[str, Any]:
    """A complete person feature record (the ``standardize_record`` shape)."""
    base: dict[str, Any] = {
        "kind": "person",
        "name": "mitchell green",
        "given_name": "mitchell",
        "given_name_raw": "mitchell",
        "middle_initial": None,
        "family_name": "green",
        "legal_form": None,
        "emails": [],
        "email_locals": [],
        "phones": [],
        "tax_id": None,
        "national_id": "1804974",
        "dob": "1956-04-09",
        "house_number": "7",
        "street": "wallaby place",
        "unit": None,
        "postcode": "2119",
        "city": "cleveland",
        "region": "sa",
        "country": "AU",
        "domain": None,
    }
    base.update(overrides)
    return base


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 3:
        return text
    k = rng.randrange(1, len(text) - 1)
    action = rng.randrange(3)
    if action == 0:  # transpose
        return text[: k - 1] + text[k] + text[k - 1] + text[k + 1 :]
    if action == 1:  # substitute
        return text[:k] + rng.choice("aeiourstn") + text[k + 1 :]
    return text[:k] + text[k + 1 :]  # delete


def population(
    entities: int = 400, duplicates: int = 400, seed: int = 7
) -> tuple[list[dict[str, Any]], list[int]]:
    """Records and their true entity numbers: ``entities`` originals plus noisy duplicates.

    A duplicate gets one or two modifications: a typo in a name or street, a missing field,
    a transposed birth day and month, or a typo in the national id.
    """
    rng = random.Random(seed)
    originals: list[dict[str, Any]] = []
    for k in range(entities):
        given = rng.choice(GIVEN)
        family = rng.choice(FAMILY)
        year, month, day = rng.randrange(1930, 2005), rng.randrange(1, 13), rng.randrange(1, 29)
        originals.append(
            person(
                name=f"{given} {family}",
                given_name=given,
                given_name_raw=given,
                family_name=family,
                national_id=str(1_000_000 + k * 7919 % 8_999_999),
                dob=f"{year:04d}-{month:02d}-{day:02d}",
                house_number=str(rng.randrange(1, 200)),
                street=rng.choice(STREETS),
                postcode=str(rng.randrange(2000, 2100)),
                city=rng.choice(CITIES),
                region=rng.choice(["nsw", "vic", "qld", "sa"]),
            )
        )
    records = [dict(r) for r in originals]
    truth = list(range(entities))
    for _ in range(duplicates):
        entity = rng.randrange(entities)
        dup = dict(originals[entity])
        for _ in range(rng.randrange(1, 3)):
            change = rng.randrange(6)
            if change == 0:
                dup["given_name"] = dup["given_name_raw"] = _typo(rng, dup["given_name"])
            elif change == 1:
                dup["family_name"] = _typo(rng, dup["family_name"])
            elif change == 2:
                dup["street"] = _typo(rng, dup["street"])
            elif change == 3:
                dup[rng.choice(["dob", "postcode", "house_number", "city"])] = None
            elif change == 4 and dup["dob"] is not None:
                y, m, d = dup["dob"].split("-")
                if int(d) <= 12:
                    dup["dob"] = f"{y}-{d}-{m}"
            else:
                dup["national_id"] = _typo(rng, dup["national_id"])
        dup["name"] = f"{dup['given_name']} {dup['family_name']}"
        records.append(dup)
        truth.append(entity)
    return records, truth


@lru_cache(maxsize=1)
def trained_model() -> MatchModel:
    """The FEBRL spec trained on the synthetic population (cached for the session)."""
    records, _ = population()
    return train(febrl_spec(), records, seed=0, u_pairs=100_000)
