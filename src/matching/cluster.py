"""Constrained clustering: connected components of automatic matches that never join conflicts.

Edges are added strongest first (Kruskal order, ties broken by record ids, so the result is
deterministic). An edge that would put a cannot-link pair, or two conflicting hard-identifier
values (two tax ids, two birth dates), into one cluster is dropped; this is the same as
splitting the plain connected component by removing its weakest offending edges. Steward
must-links are applied first and unconditionally.

Cluster ids are stable: a cluster's id is one of its own record ids (the smallest, unless a
previous assignment says otherwise), and a previous cluster id is kept by the new cluster
holding most of its members.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

RecordId = TypeVar("RecordId", str, int)

ConflictCheck = Callable[[int, Any, Any], bool]
"""``(slot, value_a, value_b) -> True`` when two hard-conflict values differ for real."""


class _Component:
    __slots__ = ("cannot", "members", "values")

    def __init__(self, member: int, values: Sequence[Any], cannot: set[int]) -> None:
        self.members = [member]
        self.values: list[list[Any]] = [[] if v is None else [v] for v in values]
        self.cannot = cannot


def cluster_records(
    ids: Sequence[RecordId],
    edges: Iterable[tuple[RecordId, RecordId, float]],
    *,
    conflict_values: Mapping[RecordId, Sequence[Any]] | None = None,
    conflicts: ConflictCheck | None = None,
    cannot_link: Iterable[tuple[RecordId, RecordId]] = (),
    must_link: Iterable[tuple[RecordId, RecordId]] = (),
    previous: Mapping[RecordId, RecordId] | None = None,
) -> dict[RecordId, RecordId]:
    """Cluster records from automatic-match edges under constraints.

    Args:
        ids: every record id (records without edges become singletons).
        edges: ``(a, b, weight)`` automatic matches; stronger weights join first.
        conflict_values: per record, its hard-conflict values by slot (None when missing).
        conflicts: decides whether two values of a slot conflict; default: they differ.
        cannot_link: pairs that must never share a cluster (steward rejections).
        must_link: pairs that must share a cluster (steward merges); they win over everything.
        previous: an earlier ``record -> cluster id`` assignment to keep ids stable.

    Returns:
        ``record id -> cluster id``, where the cluster id is a member's record id.
    """
    order = sorted(set(ids))
    index = {rid: k for k, rid in enumerate(order)}
    check: ConflictCheck = conflicts or (lambda _slot, a, b: a != b)
    cannot: dict[int, set[int]] = {}
    for a, b in cannot_link:
        if a in index and b in index and a != b:
            cannot.setdefault(index[a], set()).add(index[b])
            cannot.setdefault(index[b], set()).add(index[a])
    values = conflict_values or {}
    # Components exist only for records that an edge touches; the rest stay singletons.
    comps: dict[int, _Component] = {}

    def component(k: int) -> _Component:
        found = comps.get(k)
        if found is None:
            found = _Component(k, values.get(order[k], ()), set(cannot.get(k, ())))
            comps[k] = found
        return found

    owner = list(range(len(order)))

    def find(k: int) -> int:
        root = k
        while owner[root] != root:
            root = owner[root]
        while owner[k] != root:
            owner[k], k = root, owner[k]
        return root

    def can_join(x: _Component, y: _Component) -> bool:
        small, big = (x, y) if len(x.members) <= len(y.members) else (y, x)
        if any(m in big.cannot for m in small.members):
            return False
        for slot, (xs, ys) in enumerate(zip(x.values, y.values, strict=False)):
            if any(check(slot, a, b) for a in xs for b in ys):
                return False
        return True

    def join(rx: int, ry: int) -> None:
        x, y = component(rx), component(ry)
        if len(x.members) < len(y.members):
            rx, ry, x, y = ry, rx, y, x
        owner[ry] = rx
        x.members.extend(y.members)
        x.cannot |= y.cannot
        slots = max(len(x.values), len(y.values))
        x.values += [[] for _ in range(slots - len(x.values))]
        for slot, ys in enumerate(y.values):
            for v in ys:
                if v not in x.values[slot]:
                    x.values[slot].append(v)

    for a, b in must_link:
        if a in index and b in index:
            ra, rb = find(index[a]), find(index[b])
            if ra != rb:
                join(ra, rb)
    ranked = sorted(
        (
            (-weight, min(index[a], index[b]), max(index[a], index[b]))
            for a, b, weight in edges
            if a in index and b in index and a != b
        ),
    )
    for _, ka, kb in ranked:
        ra, rb = find(ka), find(kb)
        if ra != rb and can_join(component(ra), component(rb)):
            join(ra, rb)
    groups: dict[int, list[int]] = {}
    for k in range(len(order)):
        groups.setdefault(find(k), []).append(k)
    clusters = [[order[k] for k in members] for members in groups.values()]
    return _assign_ids(clusters, set(order), previous or {})


def _assign_ids(
    clusters: list[list[RecordId]],
    all_ids: set[RecordId],
    previous: Mapping[RecordId, RecordId],
) -> dict[RecordId, RecordId]:
    taken: set[RecordId] = set()
    out: dict[RecordId, RecordId] = {}
    if not previous:
        return {
            member: cid for members in clusters for cid in (min(members),) for member in members
        }
    votes = [Counter(previous[m] for m in members if m in previous) for members in clusters]
    # Clusters holding the most members of one previous cluster choose first.
    ranked = sorted(
        range(len(clusters)),
        key=lambda c: (-max(votes[c].values(), default=0), min(clusters[c])),
    )
    for c in ranked:
        members = clusters[c]
        member_set = set(members)
        chosen: RecordId | None = None
        for candidate, _ in sorted(
            votes[c].items(), key=lambda item: (-item[1], item[0] not in member_set, item[0])
        ):
            # A previous id is kept only while it cannot collide with another cluster's own id.
            if candidate not in taken and (candidate in member_set or candidate not in all_ids):
                chosen = candidate
                break
        if chosen is None:
            chosen = min(members)
        taken.add(chosen)
        for member in members:
            out[member] = chosen
    return out
