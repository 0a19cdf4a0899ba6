"""Constrained clustering: conflicts and cannot-links never join; ids are stable."""

from __future__ import annotations

import random
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from matching import cluster_records


def _groups(clusters: dict[str, str]) -> set[frozenset[str]]:
    by_id: dict[str, set[str]] = defaultdict(set)
    for record, cluster in clusters.items():
        by_id[cluster].add(record)
    return {frozenset(members) for members in by_id.values()}


def test_connected_matches_form_one_cluster_named_after_its_smallest_record() -> None:
    clusters = cluster_records(["c", "a", "b", "d"], [("a", "b", 10.0), ("b", "c", 5.0)])
    assert clusters == {"a": "a", "b": "a", "c": "a", "d": "d"}


def test_a_chain_between_conflicting_records_breaks_at_its_weakest_edge() -> None:
    # a and c carry different tax ids; b has none and matches both, more strongly a.
    values = {"a": ("111",), "b": (None,), "c": ("222",)}
    clusters = cluster_records(
        ["a", "b", "c"], [("b", "c", 8.0), ("a", "b", 9.0)], conflict_values=values
    )
    assert _groups(clusters) == {frozenset({"a", "b"}), frozenset({"c"})}


def test_cannot_link_is_respected_and_must_link_wins() -> None:
    edges = [("a", "b", 9.0), ("b", "c", 9.0)]
    clusters = cluster_records(["a", "b", "c"], edges, cannot_link=[("a", "c")])
    assert _groups(clusters) == {frozenset({"a", "b"}), frozenset({"c"})}
    clusters = cluster_records(["a", "b", "c", "d"], [], must_link=[("c", "d")])
    assert _groups(clusters) == {frozenset({"a"}), frozenset({"b"}), frozenset({"c", "d"})}


def test_custom_conflict_rule_tolerates_typos() -> None:
    values = {"a": ("1804974",), "b": ("1809474",)}

    def differs_by_more_than_a_swap(_slot: int, x: object, y: object) -> bool:
        return sorted(str(x)) != sorted(str(y))

    clusters = cluster_records(
        ["a", "b"], [("a", "b", 5.0)], conflict_values=values, conflicts=differs_by_more_than_a_swap
    )
    assert clusters["a"] == clusters["b"]


_ids = [f"r{k:02d}" for k in range(12)]


@given(
    edges=st.lists(
        st.tuples(st.sampled_from(_ids), st.sampled_from(_ids), st.floats(0, 50)), max_size=40
    ),
    tax=st.lists(st.sampled_from([None, "1", "2"]), min_size=12, max_size=12),
    dob=st.lists(st.sampled_from([None, "1990-01-01", "1991-01-01"]), min_size=12, max_size=12),
    cannot=st.lists(st.tuples(st.sampled_from(_ids), st.sampled_from(_ids)), max_size=5),
    seed=st.integers(0, 1000),
)
@settings(max_examples=150, deadline=None)
def test_clusters_never_join_hard_conflicts_or_cannot_links_and_ignore_edge_order(
    edges: list[tuple[str, str, float]],
    tax: list[str | None],
    dob: list[str | None],
    cannot: list[tuple[str, str]],
    seed: int,
) -> None:
    values = {rid: (tax[k], dob[k]) for k, rid in enumerate(_ids)}
    clusters = cluster_records(_ids, edges, conflict_values=values, cannot_link=cannot)
    for members in _groups(clusters):
        for slot in (0, 1):
            assert len({values[m][slot] for m in members} - {None}) <= 1
        for a, b in cannot:
            assert not (a != b and a in members and b in members)
        # The id is a member's own id.
        assert clusters[next(iter(members))] in members
    shuffled = list(edges)
    random.Random(seed).shuffle(shuffled)
    again = cluster_records(list(reversed(_ids)), shuffled, conflict_values=values,
                            cannot_link=cannot)  # fmt: skip
    assert again == clusters


def test_previous_ids_survive_a_merge_and_a_split() -> None:
    previous = {"b": "b", "c": "b", "a": "a"}
    # a joins the {b, c} cluster: the id of the larger previous cluster is kept.
    merged = cluster_records(["a", "b", "c"], [("a", "b", 9.0), ("b", "c", 9.0)],
                             previous=previous)  # fmt: skip
    assert set(merged.values()) == {"b"}
    # {b, c, d} splits into {b} and {c, d}: b keeps its id as its own; c and d take c.
    previous = {"b": "b", "c": "b", "d": "b"}
    split = cluster_records(["b", "c", "d"], [("c", "d", 9.0)], previous=previous)
    assert split["b"] == "b"
    assert split["c"] == split["d"] == "c"


def test_ids_are_stable_when_membership_does_not_change() -> None:
    edges = [("x9", "x3", 4.0), ("x3", "x5", 6.0), ("x1", "x2", 1.0)]
    first = cluster_records(["x1", "x2", "x3", "x5", "x9"], edges)
    assert first == cluster_records(["x9", "x5", "x3", "x2", "x1"], edges[::-1], previous=first)
    assert first["x9"] == "x3"
