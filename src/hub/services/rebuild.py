"""Rebuilding every golden record from source records and steward decisions."""

from __future__ import annotations

from hub import repositories as repo
from hub.matcher import Matcher
from hub.records import RebuildResult
from hub.services._golden_work import GoldenWork


def rebuild_all(work: GoldenWork, matcher: Matcher | None) -> RebuildResult:
    """Recompute every golden record from its linked source records, pins and the rule set.

    What is derived is recomputed without looking at it: golden attributes, lineage, and (with
    a matcher) match features and blocking keys. What was decided is kept as it is: the
    crosswalk links (each one a rule or steward decision with its score and matcher version),
    merges, match constraints and pins. A golden record gets a new version only where the
    result differs from what is stored, so rebuilding a consistent store changes nothing.
    """
    golden_ids = repo.all_golden_ids(work.session)
    work.lock(golden_ids)
    if matcher is not None:
        keys: dict[int, list[str]] = {}
        for record_id in sorted(work.records):
            row = work.records[record_id]
            if row.golden_id is None or row.deleted or row.validation_errors is not None:
                continue
            features = matcher.standardize(row.attributes)
            if features != row.features:
                row.features = features
            keys[record_id] = sorted(set(matcher.blocking_keys(features)))
        with repo.SqlBatch(work.session) as batch:
            repo.replace_blocking_keys(batch, keys)
    for golden_id in golden_ids:
        work.note_changed(golden_id)
    saved = work.save()
    return RebuildResult(goldens_checked=len(golden_ids), goldens_changed=saved.changed)
