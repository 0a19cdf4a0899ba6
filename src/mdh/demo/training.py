"""The demo's match model: m and u learnt without labels from a generated world, and an
offline check of it against that world's truth.

The shipped customers spec starts from default m/u values that treat agreement on ``kind``,
``country`` or ``city`` as strong evidence; on the demo's data that merges neighbours. So the
demo ships a model trained the way a user would train one (``matching.train``: u from random
pairs, m by expectation maximisation over blocked pairs; no labels) on a world generated with
another seed than the demo's, mapped exactly as capture maps it (``mdh.demo.mapping``).

    python -m mdh.demo.training --customers 10000 --seed 7 --out src/mdh/demo/demo_model.json
    python -m mdh.demo.training --check --customers 5000 --seed 42   # offline precision/recall

``--check`` scores a world in batch (``matching.dedupe``, the model's prior scaled to the world as
the demo scales it, the thresholds of ``demo.yaml`` as the demo takes them) and counts pairs like
``mdh.demo.evaluation``; the hub links incrementally, so its numbers differ a little, but a
spec or threshold change shows here in seconds instead of a demo run.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hub.model import CanonicalParty
from matching import (
    ComparisonParameters,
    ComparisonSpec,
    MatchModel,
    MatchSpec,
    dedupe,
    load_spec,
    train,
)
from matching.spec import joint_part_labels
from mdh.config import MdhConfig
from mdh.demo.config import demo_config_path, load_demo_config
from mdh.demo.generator import DemoWorld, GeneratorConfig, generate
from mdh.demo.mapping import DemoChangeMapper, ReferenceData, row_envelope
from mdh.demo.schemas import SOURCE_TABLES, DemoDatabases

# Referenced tables first, so the joins find what they join with.
_ORDER = (
    ("crm", "account"),
    ("crm", "contact"),
    ("billing", "contact"),
    ("billing", "account"),
    ("erp", "kna1"),
    ("erp", "knvk"),
)


@dataclass(frozen=True)
class WorldRecords:
    """A generated world's source rows as match features, with who each one really is."""

    features: list[dict[str, Any]]
    entities: list[str]
    tables: list[str]


def demo_spec() -> MatchSpec:
    """The demo's match spec (``demo_spec.yaml`` next to the demo config)."""
    return load_spec(demo_config_path().parent / "demo_spec.yaml")


def world_records(config: GeneratorConfig, spec: MatchSpec | None = None) -> WorldRecords:
    """Generate a world and map every row as capture would (invalid rows are left out)."""
    world = generate(config)
    model = MatchModel.untrained(spec or demo_spec())
    features, entities, tables = [], [], []
    for (system, table), attributes, entity in _mapped_rows(world):
        try:
            party = CanonicalParty.model_validate(attributes)
        except ValidationError:
            continue
        features.append(model.standardize(party.to_attributes()))
        entities.append(entity)
        tables.append(f"{system}.{table}")
    return WorldRecords(features, entities, tables)


def _demo_config() -> MdhConfig:
    placeholder = "postgresql://unused/"
    return load_demo_config(DemoDatabases(placeholder, placeholder, placeholder, placeholder))


def _mapped_rows(world: DemoWorld) -> Iterator[tuple[tuple[str, str], dict[str, Any], str]]:
    config = _demo_config()
    assert config.mappings is not None
    mapper = DemoChangeMapper(config.mappings, ReferenceData({}))
    entity_of = {
        (system, table, pk): entity for system, table, pk, entity, *_ in world.truth_sources
    }
    specs = {(t.system, t.name): t for t in SOURCE_TABLES}
    for key in _ORDER:
        table = specs[key]
        for row in world.rows.get(key, []):
            values = dict(zip(table.columns, row, strict=True))
            envelope = row_envelope(table.system, table.name, table.columns[0], values)
            change = mapper.map_change(envelope)
            if change is None:
                continue
            pk = str(values[table.columns[0]])
            yield key, dict(change.attributes), entity_of[(table.system, table.name, pk)]


M_FLOOR = 0.02
"""The least share of true matches any comparison level keeps (see ``with_m_floor``)."""


def with_m_floor(model: MatchModel, floor: float = M_FLOOR) -> MatchModel:
    """The model with small m probabilities raised towards ``floor`` (then renormalised).

    EM over blocked pairs of one generated world learns that true matches (almost) never
    disagree on postcode, country or a middle initial, and gives such a disagreement -20
    bits: a customer who moved, or a contact whose two systems know different e-mail
    addresses, could then never be linked. A level's m is raised to ``floor``, but never above
    its u: the floor bounds how much a disagreement counts against a match (-5.6 bits where u
    is 0.99) and never turns a level into evidence for one (a joint comparison has dozens of
    rare combinations, "other surname but same street" among them, that must stay neutral).
    """
    parameters = []
    for params in model.parameters:
        raised = [max(m, min(floor, u)) for m, u in zip(params.m, params.u, strict=True)]
        total = sum(raised)
        parameters.append(
            dataclasses.replace(params, m=tuple(m / total for m in raised), u=params.u)
        )
    return dataclasses.replace(model, parameters=tuple(parameters))


IDENTIFIER_FIELDS = frozenset({"emails", "phones", "tax_id", "national_id"})
"""Fields whose values each belong to one party: two random records agree on one by a chance
that falls with the store's size, as the prior does (names, cities and web domains are shared
by namesakes, so theirs does not)."""


def with_prior_for(model: MatchModel, records: int) -> MatchModel:
    """The model with its prior scaled to a store of ``records`` records, and the chance of
    agreeing by accident on an identifier (``IDENTIFIER_FIELDS``) with it.

    The prior is the chance that a random pair is a match, which shrinks as the store grows
    (a record has about the same number of duplicates whatever the store's size): trained on
    ~38,000 records, it would be ten times too high for the 380,000 of a 100,000-customer
    world and merge namesakes. A shared e-mail address, phone number or tax id between two
    random records gets rarer in the same proportion, so the u of each level where such a
    field agrees (exactly or fuzzily) is scaled alike and the other levels take up the rest:
    scaling the prior alone made every identifier count ~3 bits less in a 10x larger store
    and sent its duplicates to the review queue.
    """
    trained = model.training.get("records") if model.training else None
    if not isinstance(trained, int) or trained <= 0 or records <= 0:
        return model
    factor = trained / records
    parameters = [
        _with_identifier_u(comparison, params, factor)
        for comparison, params in zip(model.spec.comparisons, model.parameters, strict=True)
    ]
    return dataclasses.replace(
        model,
        prior=min(0.5, model.prior * factor),
        parameters=tuple(parameters),
    )


def _with_identifier_u(
    comparison: ComparisonSpec, params: ComparisonParameters, factor: float
) -> ComparisonParameters:
    parts = comparison.parts or (comparison,)
    if not any(set(part.fields) & IDENTIFIER_FIELDS for part in parts):
        return params
    combos = [
        combo
        for combo in itertools.product(*(joint_part_labels(part) for part in parts))
        if any(label != "null" for label in combo)
    ]
    scaled = [
        any(
            set(part.fields) & IDENTIFIER_FIELDS and label not in ("else", "null")
            for part, label in zip(parts, combo, strict=True)
        )
        for combo in combos
    ]
    kept = 1.0 - sum(u for u, s in zip(params.u, scaled, strict=True) if s)
    if (1.0 - kept) * factor >= 0.5:  # not rare at all: no data to learn it from
        return params
    freed = (1.0 - factor) * (1.0 - kept)
    u = tuple(
        x * factor if s else x * (1.0 + freed / kept) for x, s in zip(params.u, scaled, strict=True)
    )
    return dataclasses.replace(params, u=u)


def with_demo_thresholds(model: MatchModel) -> MatchModel:
    """The model with the thresholds the demo uses: ``demo.yaml``'s ``matching:`` section
    overrides the spec's (``MatchingSettings.build_matcher``)."""
    return _demo_config().matching.with_thresholds(model)


def train_demo_model(config: GeneratorConfig, spec: MatchSpec | None = None) -> MatchModel:
    """A model trained without labels on the world of ``config`` (see the module docstring)."""
    records = world_records(config, spec)
    return with_m_floor(train(spec or demo_spec(), records.features, seed=config.seed))


@dataclass(frozen=True)
class OfflineCheck:
    records: int
    true_pairs: int
    matched_pairs: int
    correct_pairs: int
    review_pairs: int
    """True pairs not matched but scored in the review band."""
    review_candidates: int
    """Records with at least one pair in the review band and no match."""
    review_tasks: int
    """Pairs of clusters with a pair in the review band: about the review tasks the hub opens
    (one per record and candidate golden record)."""
    false_by_tables: Counter[str]
    missed_by_tables: Counter[str]

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.matched_pairs if self.matched_pairs else 1.0

    @property
    def recall(self) -> float:
        found = self.correct_pairs + self.review_pairs
        return found / self.true_pairs if self.true_pairs else 1.0


def check_model(model: MatchModel, records: WorldRecords) -> OfflineCheck:
    """Batch-dedupe the records and count pairs against their entities."""
    result = dedupe(model, records.features)
    clusters: dict[Any, list[int]] = defaultdict(list)
    for index, cluster in result.clusters.items():
        clusters[cluster].append(index)
    by_entity: dict[str, list[int]] = defaultdict(list)
    for index, entity in enumerate(records.entities):
        by_entity[entity].append(index)
    true_pairs = sum(len(m) * (len(m) - 1) // 2 for m in by_entity.values())
    matched = correct = 0
    false_by: Counter[str] = Counter()
    for members in clusters.values():
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                matched += 1
                if records.entities[a] == records.entities[b]:
                    correct += 1
                else:
                    false_by[_tables(records, a, b)] += 1
    pairs = result.pairs
    review_pairs: set[tuple[int, int]] = set()
    reviewed_records: set[int] = set()
    reviewed_clusters: set[tuple[Any, Any]] = set()
    decisions = pairs.decision.tolist()
    for a, b, decision in zip(pairs.left.tolist(), pairs.right.tolist(), decisions, strict=True):
        ca, cb = result.clusters[a], result.clusters[b]
        if decision == 1 and ca != cb:  # review band
            review_pairs.add((min(a, b), max(a, b)))
            reviewed_records.update((a, b))
            reviewed_clusters.add((min(ca, cb), max(ca, cb)))
    reviewed = missed = 0
    missed_by: Counter[str] = Counter()
    for members in by_entity.values():
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                if result.clusters[a] == result.clusters[b]:
                    continue
                if (min(a, b), max(a, b)) in review_pairs:
                    reviewed += 1
                else:
                    missed += 1
                    missed_by[_tables(records, a, b)] += 1
    return OfflineCheck(
        records=len(records.features),
        true_pairs=true_pairs,
        matched_pairs=matched,
        correct_pairs=correct,
        review_pairs=reviewed,
        review_candidates=len(reviewed_records),
        review_tasks=len(reviewed_clusters),
        false_by_tables=false_by,
        missed_by_tables=missed_by,
    )


def _tables(records: WorldRecords, a: int, b: int) -> str:
    return " ~ ".join(sorted((records.tables[a], records.tables[b])))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, help="where to write the trained model (JSON)")
    parser.add_argument("--model", type=Path, help="check this model instead of training one")
    parser.add_argument("--check", action="store_true", help="score a world against its truth")
    args = parser.parse_args(argv)
    config = GeneratorConfig(customers=args.customers, seed=args.seed)
    began = time.perf_counter()
    records = world_records(config)
    print(f"{len(records.features):,} records mapped in {time.perf_counter() - began:.1f}s")
    if args.model is not None:
        model = MatchModel.load(args.model)
    else:
        began = time.perf_counter()
        model = with_m_floor(train(demo_spec(), records.features, seed=config.seed))
        print(f"trained in {time.perf_counter() - began:.1f}s")
        if args.out is not None:
            model.save(args.out)
            print(f"model written to {args.out}")
    if args.check:
        began = time.perf_counter()
        # As the demo does: the prior scaled to the world that is checked, demo.yaml's
        # thresholds.
        checked = with_demo_thresholds(with_prior_for(model, len(records.features)))
        check = check_model(checked, records)
        print(
            f"checked in {time.perf_counter() - began:.1f}s: precision {check.precision:.4f},"
            f" recall (match + review) {check.recall:.4f}, automatic recall"
            f" {check.correct_pairs / max(check.true_pairs, 1):.4f}, records with a review"
            f" pair {check.review_candidates / check.records:.2%}, review tasks (cluster pairs)"
            f" {check.review_tasks / check.records:.2%} of records"
        )
        print("false merges:", check.false_by_tables.most_common(6))
        print("missed:", check.missed_by_tables.most_common(6))


if __name__ == "__main__":
    main()
