"""The hot reads of downstream systems, one statement each: the golden record by id and the
changes feed.

``reads.find_golden`` loads a golden record with one query per part (merge chain, row, linked
source records, lineage, pins) inside a REPEATABLE READ transaction. This builds the same
``GoldenRecord`` from a single statement, which sees one snapshot by itself, so it needs
neither the stricter isolation nor the extra round trips. A test holds the two equal.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from hub.model import AttributeLineage, DecidedBy, GoldenStatus, Pin, SourceKey, SourcePosition
from hub.records import GoldenRecord, SourceLink

_GOLDEN = sa.text(
    """
    WITH RECURSIVE chain(id, merged_into, depth) AS (
      SELECT id, merged_into, 0 FROM golden_records WHERE id = :golden_id
      UNION ALL
      SELECT g.id, g.merged_into, c.depth + 1
      FROM golden_records g JOIN chain c ON g.id = c.merged_into
      WHERE c.depth < 1000
    ), resolved AS (
      SELECT id FROM chain ORDER BY depth DESC LIMIT 1
    )
    SELECT g.id, g.version, g.status, g.merged_into, g.attributes, g.created_at, g.updated_at,
      (SELECT coalesce(json_agg(json_build_object(
          'id', s.id, 'system', s.system, 'table', s.source_table, 'pk', s.pk,
          'lsn', s.lsn, 'tx_id', s.tx_id, 'committed_at', s.committed_at,
          'score', s.link_score, 'decided_by', s.link_decided_by,
          'decided_at', s.link_decided_at, 'matcher_version', s.matcher_version,
          'explanation', s.link_explanation) ORDER BY s.id), '[]'::json)
       FROM source_records s WHERE s.golden_id = g.id) AS members,
      (SELECT coalesce(json_agg(json_build_object(
          'attribute', l.attribute, 'value', l.value, 'rule', l.rule,
          'rule_set_version', l.rule_set_version, 'source_record_id', l.source_record_id,
          'system', s.system, 'table', s.source_table, 'pk', s.pk,
          'lsn', l.lsn, 'tx_id', l.tx_id, 'committed_at', l.committed_at,
          'pinned', l.pinned, 'pin_reason', l.pin_reason, 'pinned_by', l.pinned_by)
          ORDER BY l.attribute), '[]'::json)
       FROM attribute_lineage l LEFT JOIN source_records s ON s.id = l.source_record_id
       WHERE l.golden_id = g.id) AS lineage,
      (SELECT coalesce(json_agg(json_build_object(
          'attribute', p.attribute, 'value', p.value, 'pinned_by', p.pinned_by,
          'reason', p.reason, 'pinned_at', p.pinned_at)), '[]'::json)
       FROM golden_pins p WHERE p.golden_id = g.id) AS pins
    FROM golden_records g JOIN resolved r ON g.id = r.id
    """
)


def _time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


def read_golden(session: Session, golden_id: int) -> GoldenRecord | None:
    """The golden record ``golden_id`` (merges followed to the survivor), or None."""
    row = session.execute(_GOLDEN, {"golden_id": golden_id}).first()
    if row is None:
        return None
    sources = tuple(
        SourceLink(
            source_record_id=int(m["id"]),
            key=SourceKey(m["system"], m["table"], m["pk"] or ""),
            position=SourcePosition(
                lsn=m["lsn"], tx_id=m["tx_id"], committed_at=_time(m["committed_at"])
            ),
            score=m["score"],
            decided_by=DecidedBy(m["decided_by"]),
            decided_at=_time(m["decided_at"]),
            matcher_version=m["matcher_version"],
            explanation=m["explanation"],
        )
        for m in row.members
    )
    lineage = {
        entry["attribute"]: AttributeLineage(
            attribute=entry["attribute"],
            value=entry["value"],
            rule=entry["rule"],
            rule_set_version=entry["rule_set_version"],
            source_record_id=entry["source_record_id"],
            source_key=(
                SourceKey(entry["system"], entry["table"], entry["pk"] or "")
                if entry["system"] is not None
                else None
            ),
            position=(
                SourcePosition(
                    lsn=entry["lsn"],
                    tx_id=entry["tx_id"],
                    committed_at=_time(entry["committed_at"]),
                )
                if entry["committed_at"] is not None
                else None
            ),
            pinned=entry["pinned"],
            pin_reason=entry["pin_reason"],
            pinned_by=entry["pinned_by"],
        )
        for entry in row.lineage
    }
    pins = {
        p["attribute"]: Pin(
            attribute=p["attribute"],
            value=p["value"],
            pinned_by=p["pinned_by"],
            reason=p["reason"],
            pinned_at=_time(p["pinned_at"]),
        )
        for p in row.pins
    }
    return GoldenRecord(
        id=int(row.id),
        requested_id=golden_id,
        version=int(row.version),
        status=GoldenStatus(row.status),
        merged_into=row.merged_into,
        attributes=row.attributes,
        lineage=lineage,
        sources=sources,
        pins=pins,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


_CHANGES = sa.text(
    "SELECT sequence, golden_id, kind, cause, actor, occurred_at, version, data"
    " FROM golden_history WHERE sequence > :cursor ORDER BY sequence LIMIT :limit"
)


def change_records_after(session: Session, cursor: int, limit: int) -> list[dict[str, Any]]:
    """The changes after ``cursor`` as JSON-ready dicts, in the shape of ``HistoryEvent``
    (row columns plus its ``data`` payload spread out), without building event objects.

    The same rows as ``changes_after``: one statement, sequence order, which is commit order.
    """
    records = []
    for row in session.execute(_CHANGES, {"cursor": cursor, "limit": limit}):
        data: dict[str, Any] = row.data
        records.append(
            {
                "sequence": row.sequence,
                "golden_id": row.golden_id,
                "kind": row.kind,
                "cause": row.cause,
                "actor": row.actor,
                "occurred_at": row.occurred_at.isoformat(),
                "version": row.version,
                "snapshot": data.get("snapshot"),
                "diff": data.get("diff", {}),
                "sources_added": data.get("sources_added", []),
                "sources_removed": data.get("sources_removed", []),
                "status": data.get("status"),
                "merged_into": data.get("merged_into"),
                "pins_set": data.get("pins_set", {}),
                "pins_removed": data.get("pins_removed", []),
                "details": data.get("details", {}),
            }
        )
    return records
