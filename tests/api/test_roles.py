"""Every operation of the app, for every role: 401 without a key (or with a bad one), 403 with a
role below the one it declares, and neither with the role it declares or a higher one.

The operations are enumerated from the app itself, so a new endpoint is covered (and must
declare its role) the moment it exists."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from api_testkit import ROLES, Keys, truncate_all
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from api.auth import ROLE_EXTENSION
from api.context import ApiSettings
from hub.rules import default_rules
from hub.services import HubServices
from hub.services.keys import ApiRole, AuditContext
from matching import MatchModel

SAMPLE_PATH = {
    "golden_id": "1",
    "task_id": "1",
    "system": "crm",
    "table": "customers",
    "pk": "A1",
    "attribute": "legal_name",
    "dead_letter_id": "1",
    "key_id": "999",  # not a real key: revoking it must not disable the test keys
}
SAMPLE_QUERY = {
    ("DELETE", "/v1/golden/{golden_id}/pins/{attribute}"): {"reason": "x"},
    ("GET", "/ui/golden"): {"id": "1"},
}
SAMPLE_BODY: dict[str, Any] = {"reason": "x", "source_record_ids": [1], "decision": "defer"}


def operations(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, path template, required role or "public") of every operation in the OpenAPI."""
    found = []
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            role = operation.get(ROLE_EXTENSION)
            assert role is not None, f"{method} {path} does not declare its role"
            found.append((method.upper(), path, str(role)))
    return sorted(found)


def _app_operations() -> list[tuple[str, str, str]]:
    # Building the app needs no database: the services are only called per request.
    return operations(create_app(HubServices.__new__(HubServices)))


OPERATIONS = _app_operations()
OPERATION_IDS = [f"{m} {p}" for m, p, _ in OPERATIONS]


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    url = re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PATH[m.group(1)], path)
    params = SAMPLE_QUERY.get((method, path), {})
    body = SAMPLE_BODY if method in ("POST", "PUT") else None
    answer = client.request(
        method, url, params=params, json=body, headers=headers, follow_redirects=False
    )
    return answer.status_code


def test_the_app_has_the_operations_the_issue_asks_for() -> None:
    paths = {p for _, p, _ in OPERATIONS}
    for expected in (
        "/v1/golden/{golden_id}",
        "/v1/sources/{system}/{table}/{pk}/golden",
        "/v1/search",
        "/v1/golden/{golden_id}/history",
        "/v1/golden/{golden_id}/lineage",
        "/v1/golden/{golden_id}/links",
        "/v1/changes",
        "/v1/review/tasks",
        "/v1/review/tasks/{task_id}",
        "/v1/review/tasks/{task_id}/decision",
        "/v1/review/decisions",
        "/v1/golden/merge",
        "/v1/golden/{golden_id}/unmerge/preview",
        "/v1/golden/{golden_id}/unmerge",
        "/v1/golden/{golden_id}/pins/{attribute}",
        "/v1/dead-letters",
        "/v1/dead-letters/{dead_letter_id}/replay",
        "/v1/keys",
        "/v1/reports/duplicates",
        "/health/live",
        "/health/ready",
        "/metrics",
        "/ui/queue",
        "/ui/tasks/{task_id}",
        "/ui/golden/{golden_id}",
        "/ui/reports/duplicates",
    ):
        assert expected in paths


@pytest.fixture(scope="module")
def shared(api_engine: Engine, matcher: MatchModel) -> Iterator[tuple[Keys, TestClient]]:
    """One store, one set of keys and one client for all the role checks (they only read or
    fail before acting)."""
    truncate_all(api_engine)
    hub = HubServices(api_engine, matcher=matcher, rules=default_rules(), targets=("crm",))
    desk = hub.desk(AuditContext(actor="test-setup", role=ApiRole.ADMIN))
    tokens = {role: desk.create_api_key(f"{role.value}-1", role).token for role in ROLES}
    keys = Keys(tokens[ApiRole.READER], tokens[ApiRole.STEWARD], tokens[ApiRole.ADMIN])
    with TestClient(create_app(hub, ApiSettings(auth_cache_seconds=0))) as client:
        yield keys, client


@pytest.mark.parametrize(("method", "path", "required"), OPERATIONS, ids=OPERATION_IDS)
def test_every_operation_for_every_role(
    method: str, path: str, required: str, shared: tuple[Keys, TestClient]
) -> None:
    keys, client = shared
    without = _call(client, method, path, {})
    bad = _call(client, method, path, {"Authorization": "Bearer mdh_000000000000_" + "x" * 43})
    if required == "public":
        assert without not in (401, 403), without
        return
    assert without == 401
    assert bad == 401
    needed = ApiRole(required)
    for role in ROLES:
        status = _call(client, method, path, keys.headers(role))
        if role.allows(needed):
            assert status not in (401, 403), (role, status)
        else:
            assert status == 403, (role, status)


def test_a_revoked_key_is_refused_at_once(hub: HubServices, keys: Keys, client: TestClient) -> None:
    assert client.get("/v1/changes", headers=keys.headers(ApiRole.READER)).status_code == 200
    reader_id = next(k.id for k in hub.api_keys() if k.role is ApiRole.READER)
    revoked = client.delete(f"/v1/keys/{reader_id}", headers=keys.headers(ApiRole.ADMIN))
    assert revoked.status_code == 200
    assert revoked.json()["revoked_by"] == "admin-1"
    answer = client.get("/v1/changes", headers=keys.headers(ApiRole.READER))
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"
    assert answer.headers["www-authenticate"] == "Bearer"


def test_keys_are_stored_hashed_and_created_by_admins(
    hub: HubServices, keys: Keys, client: TestClient
) -> None:
    created = client.post(
        "/v1/keys", json={"name": "bob", "role": "steward"}, headers=keys.headers(ApiRole.ADMIN)
    )
    assert created.status_code == 201
    token = created.json()["token"]
    listed = client.get("/v1/keys", headers=keys.headers(ApiRole.ADMIN)).json()["items"]
    assert "token" not in listed[-1]
    assert token not in str(listed)
    with hub.engine.connect() as conn:
        import sqlalchemy as sa

        stored = [tuple(r) for r in conn.execute(sa.text("SELECT secret_hash FROM api_keys"))]
    assert all(token not in row[0] for row in stored)
    assert (
        client.get("/v1/review/tasks", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    audit = hub.audit_log(action="key.create")
    assert audit[0].actor == "admin-1"
    assert audit[0].details["name"] == "bob"


def test_the_pages_cookie_signs_in(hub: HubServices, keys: Keys, client: TestClient) -> None:
    refused = client.post("/ui/session", json={"token": "nope"})
    assert refused.status_code == 401
    signed_in = client.post("/ui/session", json={"token": keys.steward})
    assert signed_in.status_code == 200
    assert "httponly" in signed_in.headers["set-cookie"].lower()
    assert "samesite=strict" in signed_in.headers["set-cookie"].lower()
    assert client.get("/ui/queue").status_code == 200
    assert client.get("/v1/review/tasks").status_code == 200
    client.delete("/ui/session")
    client.cookies.clear()
    assert client.get("/ui/queue").status_code == 401


def test_cli_actor_keys_are_audited(hub: HubServices) -> None:
    desk = hub.desk(AuditContext(actor="cli", role=ApiRole.ADMIN))
    issued = desk.create_api_key("carol", ApiRole.READER)
    assert hub.authenticate(issued.token) == issued.key
    assert hub.authenticate(issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B")) is None
    desk.revoke_api_key(issued.key.id, reason="left")
    assert hub.authenticate(issued.token) is None
    assert [e.action for e in hub.audit_log(actor="cli")] == ["key.revoke", "key.create"]
