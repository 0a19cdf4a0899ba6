"""Helpers of the API tests (constants, API keys, source changes), imported by name; the
fixtures live in conftest.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub.model import ChangeOp, SourceChange, SourceKey, SourcePosition
from hub.services.keys import ApiRole
from hub.tables import API_TABLES, HUB_TABLES

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ROLES = (ApiRole.READER, ApiRole.STEWARD, ApiRole.ADMIN)


def truncate_all(engine: Engine) -> None:
    with engine.begin() as conn:
        tables = ", ".join((*HUB_TABLES, *API_TABLES))
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@dataclass(frozen=True)
class Keys:
    reader: str
    steward: str
    admin: str

    def of(self, role: ApiRole) -> str:
        return str(getattr(self, role.value))

    def headers(self, role: ApiRole) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.of(role)}"}


# --- source changes ------------------------------------------------------------------------


def change(
    system: str, pk: str, seconds: float, table: str = "customers", **attributes: Any
) -> SourceChange:
    """An upsert of one source row committed ``seconds`` after T0."""
    return SourceChange(
        key=SourceKey(system, table, pk),
        op=ChangeOp.UPSERT,
        attributes=attributes,
        raw={"id": pk, **{k: str(v) for k, v in attributes.items()}},
        position=SourcePosition(
            lsn=int(seconds * 1000) + 1, tx_id=None, committed_at=T0 + timedelta(seconds=seconds)
        ),
    )


def acme(system: str, pk: str, seconds: float, **extra: Any) -> SourceChange:
    attributes: dict[str, Any] = {
        "kind": "organization",
        "legal_name": "Acme Corporation",
        "emails": ["billing@acme.example"],
        "phones": ["+1 415 555 0100"],
        "tax_id": "US-12-3456789",
        "addresses": [
            {
                "lines": ["1 Market St"],
                "city": "San Francisco",
                "postal_code": "94105",
                "country": "US",
            }
        ],
    }
    attributes.update(extra)
    return change(system, pk, seconds, **attributes)
