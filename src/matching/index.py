"""In-memory incremental match index: add and remove records, match one new record in place.

Each record is prepared once when added (its comparison inputs, term-frequency adjustments
and hard-conflict values), and filed under the hashes of its blocking keys. Matching a new
record looks up its keys, takes at most ``max_candidates_per_key`` records from each block
(the most recently added), and scores each distinct candidate on the precomputed inputs.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from matching.model import MatchModel, PreparedRecord
from matching.scoring import ScoredPair


class MatchIndex:
    """Records by blocking key, for one model."""

    def __init__(self, model: MatchModel, *, max_candidates_per_key: int | None = None) -> None:
        self.model = model
        self.max_candidates_per_key = max_candidates_per_key or model.spec.max_candidates_per_key
        self._ids: list[Hashable | None] = []
        self._prepared: list[PreparedRecord | None] = []
        self._keys: list[tuple[int, ...]] = []
        self._slots: dict[Hashable, int] = {}
        self._blocks: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._slots

    def add(self, record_id: Hashable, features: Mapping[str, Any]) -> None:
        """File a record (replacing the one with the same id, if any)."""
        if record_id in self._slots:
            self.remove(record_id)
        slot = len(self._ids)
        hashes = tuple({hash(k) for k in self.model.blocking_keys(features)})
        self._ids.append(record_id)
        self._prepared.append(self.model.prepare(features))
        self._keys.append(hashes)
        self._slots[record_id] = slot
        blocks = self._blocks
        for h in hashes:
            block = blocks.get(h)
            if block is None:
                blocks[h] = [slot]
            else:
                block.append(slot)

    def add_many(self, records: Iterable[tuple[Hashable, Mapping[str, Any]]]) -> None:
        """``add`` for each ``(record_id, features)``."""
        for record_id, features in records:
            self.add(record_id, features)

    def remove(self, record_id: Hashable) -> bool:
        """Forget a record; False when it was not there."""
        slot = self._slots.pop(record_id, None)
        if slot is None:
            return False
        for h in self._keys[slot]:
            block = self._blocks.get(h)
            if block is not None:
                block.remove(slot)
                if not block:
                    del self._blocks[h]
        self._ids[slot] = None
        self._prepared[slot] = None
        self._keys[slot] = ()
        return True

    def candidates(self, features: Mapping[str, Any]) -> list[Hashable | None]:
        """Ids of the records sharing a blocking key with ``features`` (capped per key)."""
        return [self._ids[s] for s in self._candidate_slots(features)]

    def _candidate_slots(self, features: Mapping[str, Any]) -> list[int]:
        cap = self.max_candidates_per_key
        blocks = self._blocks
        seen: dict[int, None] = {}
        for key in self.model.blocking_keys(features):
            block = blocks.get(hash(key))
            if block is not None:
                seen.update(dict.fromkeys(block[-cap:] if len(block) > cap else block))
        return list(seen)

    def match_one(
        self,
        features: Mapping[str, Any],
        *,
        exclude: Hashable | None = None,
        include_no_match: bool = False,
        limit: int | None = None,
    ) -> list[ScoredPair]:
        """Score ``features`` against its candidates, best first.

        Args:
            features: the new record's features.
            exclude: a record id to skip (the record itself, when it is already filed).
            include_no_match: also return candidates whose decision is ``no_match``.
            limit: return at most this many.

        Returns:
            Scored pairs with ``candidate_id`` set, by descending weight then id.
        """
        model = self.model
        prepared = model.prepare(features)
        threshold = model.review_weight
        ids = self._ids
        store = self._prepared
        weigh = model.weight_prepared
        hits: list[tuple[float, int]] = []
        for slot in self._candidate_slots(features):
            if exclude is not None and ids[slot] == exclude:
                continue
            other = store[slot]
            assert other is not None
            weight = weigh(prepared, other)
            if include_no_match or weight >= threshold:
                hits.append((weight, slot))
        hits.sort(key=lambda hit: (-hit[0], str(ids[hit[1]])))
        if limit is not None:
            hits = hits[:limit]
        return [model.score_prepared(prepared, store[s], ids[s]) for _, s in hits]  # type: ignore[arg-type]

    def match_many(
        self, records: Iterable[Mapping[str, Any]], **options: Any
    ) -> list[list[ScoredPair]]:
        """``match_one`` for each record (the index is not changed)."""
        return [self.match_one(features, **options) for features in records]
