"""API keys (roles, hashed tokens, revocation) and the audit log of steward and admin actions.

A token reads ``mdh_<prefix>_<secret>``: the 12-hex-digit ``prefix`` is public and finds the
row; only the sha256 of the whole token is stored, and it is compared in constant time. The
token is shown once, when the key is created.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from hub.errors import HubError
from hub.tables import ApiKeyRow, AuditEntryRow

_TOKEN = re.compile(r"^mdh_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class ApiRole(StrEnum):
    """What a key may do; each role may do everything the roles before it may."""

    READER = "reader"
    STEWARD = "steward"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(ApiRole).index(self)

    def allows(self, needed: ApiRole) -> bool:
        return self.rank >= needed.rank


class ApiKeyNotFoundError(HubError):
    def __init__(self, key_id: int) -> None:
        self.key_id = key_id
        super().__init__(f"API key {key_id} does not exist")


class InvalidApiKeyNameError(HubError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"API key name {name!r} must be 1-64 letters, digits or ._@- (starting with a "
            "letter or digit)"
        )


@dataclass(frozen=True)
class ApiKey:
    """An API key as it is listed (never with its token)."""

    id: int
    prefix: str
    name: str
    role: ApiRole
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class IssuedApiKey:
    """A new key and its token: the only moment the token is known."""

    key: ApiKey
    token: str


@dataclass(frozen=True)
class AuditContext:
    """Who acts: recorded as the actor of history events and audit entries."""

    actor: str
    role: ApiRole


@dataclass(frozen=True)
class AuditEntry:
    id: int
    occurred_at: datetime
    actor: str
    role: str
    action: str
    target: str
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh (prefix, token) pair: 48 random bits of prefix, 256 of secret."""
    prefix = secrets.token_hex(6)
    return prefix, f"mdh_{prefix}_{secrets.token_urlsafe(32)}"


def api_key_view(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        prefix=row.prefix,
        name=row.name,
        role=ApiRole(row.role),
        created_by=row.created_by,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )


def create_key(
    session: Session, name: str, role: ApiRole, *, created_by: str, now: datetime
) -> IssuedApiKey:
    if not _NAME.match(name):
        raise InvalidApiKeyNameError(name)
    prefix, token = new_token()
    key_id = session.execute(
        sa.insert(ApiKeyRow)
        .values(
            prefix=prefix,
            secret_hash=hash_token(token),
            name=name,
            role=role.value,
            created_by=created_by,
            created_at=now,
        )
        .returning(col(ApiKeyRow.id))
    ).scalar_one()
    row = session.get(ApiKeyRow, key_id)
    assert row is not None
    return IssuedApiKey(key=api_key_view(row), token=token)


def list_keys(session: Session, *, include_revoked: bool = True) -> list[ApiKey]:
    statement = select(ApiKeyRow).order_by(col(ApiKeyRow.id))
    if not include_revoked:
        statement = statement.where(col(ApiKeyRow.revoked_at).is_(None))
    return [api_key_view(row) for row in session.exec(statement)]


def revoke_key(session: Session, key_id: int, *, revoked_by: str, now: datetime) -> ApiKey:
    """Revoke a key (revoking a revoked key keeps its first revocation)."""
    row = session.exec(
        select(ApiKeyRow).where(col(ApiKeyRow.id) == key_id).with_for_update()
    ).first()
    if row is None:
        raise ApiKeyNotFoundError(key_id)
    if row.revoked_at is None:
        row.revoked_at = now
        row.revoked_by = revoked_by
        session.flush()
    return api_key_view(row)


def authenticate(session: Session, token: str) -> ApiKey | None:
    """The active key this token belongs to, or None (malformed, unknown, wrong or revoked)."""
    match = _TOKEN.match(token)
    if match is None:
        return None
    row = session.exec(select(ApiKeyRow).where(col(ApiKeyRow.prefix) == match.group(1))).first()
    if row is None or not hmac.compare_digest(row.secret_hash, hash_token(token)):
        return None
    if row.revoked_at is not None:
        return None
    return api_key_view(row)


def record_audit(
    session: Session,
    context: AuditContext,
    action: str,
    target: str,
    reason: str,
    now: datetime,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Append one audit entry in the caller's transaction (a short insert: it may follow the
    history append, which holds its lock until commit)."""
    session.execute(
        sa.insert(AuditEntryRow).values(
            occurred_at=now,
            actor=context.actor,
            role=context.role.value,
            action=action,
            target=target,
            reason=reason,
            details=dict(details or {}),
        )
    )


def audit_entries(
    session: Session,
    *,
    actor: str | None = None,
    target: str | None = None,
    action: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Audit entries, newest first; ``before_id`` pages back."""
    statement = select(AuditEntryRow).order_by(col(AuditEntryRow.id).desc()).limit(limit)
    if actor is not None:
        statement = statement.where(col(AuditEntryRow.actor) == actor)
    if target is not None:
        statement = statement.where(col(AuditEntryRow.target) == target)
    if action is not None:
        statement = statement.where(col(AuditEntryRow.action) == action)
    if before_id is not None:
        statement = statement.where(col(AuditEntryRow.id) < before_id)
    return [
        AuditEntry(
            id=row.id,
            occurred_at=row.occurred_at,
            actor=row.actor,
            role=row.role,
            action=row.action,
            target=row.target,
            reason=row.reason,
            details=row.details,
        )
        for row in session.exec(statement)
    ]
