"""Steward operations over a real hub: the queue (filters, priority, age), a task side by side
with its waterfall, decisions one by one and in bulk, merge, unmerge with its preview, pins,
and the audit entry each of them leaves (who, what, when, why)."""

from __future__ import annotations

from typing import Any

from api_testkit import Keys, acme, change
from fastapi.testclient import TestClient

from hub.model import SourceKey
from hub.services import HubServices
from hub.services.keys import ApiRole

STEWARD = ApiRole.STEWARD


def globex(system: str, pk: str, seconds: float, city: str, **extra: Any) -> Any:
    return change(
        system,
        pk,
        seconds,
        kind="organization",
        legal_name=extra.pop("legal_name", "Globex GmbH"),
        addresses=[{"country": "DE", "city": city}],
        **extra,
    )


def _review_world(hub: HubServices) -> list[int]:
    """Two pairs the matcher is unsure about (review tasks), and Acme matched for sure."""
    hub.apply_changes([acme("crm", "A1", 1), acme("billing", "B1", 2)])
    hub.apply_changes([globex("crm", "G1", 3, "Berlin")])
    hub.apply_changes([globex("erp", "G2", 4, "Hamburg", legal_name="Globex")])
    hub.apply_changes([globex("billing", "H1", 5, "Berlin", legal_name="Hooli GmbH")])
    hub.apply_changes([globex("erp", "H2", 6, "Munich", legal_name="Hooli")])
    tasks = hub.open_review_tasks()
    assert len(tasks) == 2, tasks
    return [t.id for t in tasks]


def _get(client: TestClient, keys: Keys, path: str, **params: Any) -> Any:
    answer = client.get(path, params=params, headers=keys.headers(STEWARD))
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_queue_filters_sorts_and_explains_priority(
    hub: HubServices, keys: Keys, client: TestClient
) -> None:
    _review_world(hub)
    page = _get(client, keys, "/v1/review/tasks")
    assert page["total"] == 2
    first = page["items"][0]
    assert first["priority"] == first["uncertainty"] * first["impact"]
    assert 0 < first["uncertainty"] <= 1
    assert first["records_affected"] == 2
    assert page["items"][0]["priority"] >= page["items"][1]["priority"]
    assert first["sla_breached"] is False

    only_billing = _get(client, keys, "/v1/review/tasks", system="billing")
    assert only_billing["total"] == 1
    assert "billing" in only_billing["items"][0]["systems"]
    oldest = _get(client, keys, "/v1/review/tasks", sort="oldest")
    assert [i["task"]["id"] for i in oldest["items"]] == sorted(
        i["task"]["id"] for i in oldest["items"]
    )
    assert _get(client, keys, "/v1/review/tasks", min_score=0.99)["total"] == 0
    assert _get(client, keys, "/v1/review/tasks", status="decided")["total"] == 0
    bad = client.get("/v1/review/tasks", params={"sort": "random"}, headers=keys.headers(STEWARD))
    assert bad.status_code == 422


def test_task_detail_is_side_by_side_with_a_waterfall(
    hub: HubServices, keys: Keys, client: TestClient
) -> None:
    task_id = _review_world(hub)[0]
    detail = _get(client, keys, f"/v1/review/tasks/{task_id}")
    left, right = detail["left"], detail["right"]
    assert left["source_record"]["source"]["pk"] in ("G2", "H2")
    assert right["golden"]["id"] == detail["item"]["task"]["candidate_golden_id"]
    assert detail["differences"]["legal_name"] == "different"
    assert detail["differences"]["kind"] == "same"
    steps = detail["waterfall"]
    assert steps[0]["name"] == "prior"
    assert abs(steps[-1]["running_total"] - detail["explanation"]["total_weight"]) < 1e-6
    missing = client.get("/v1/review/tasks/999", headers=keys.headers(STEWARD))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "review_task_not_found"


def test_decisions_change_golden_records_and_are_audited(
    hub: HubServices, keys: Keys, client: TestClient
) -> None:
    first, second = _review_world(hub)
    task = hub.review_task_detail(first).item.task
    matched = client.post(
        f"/v1/review/tasks/{first}/decision",
        json={"decision": "match", "reason": "same company, moved"},
        headers=keys.headers(STEWARD),
    )
    assert matched.status_code == 200, matched.text
    assert matched.json()["status"] == "decided"
    assert matched.json()["decided_by"] == "steward-1"
    assert task.source_record_id is not None
    golden = hub.get_golden(task.candidate_golden_id)
    assert task.source_record_id in {s.source_record_id for s in golden.sources}
    again = client.post(
        f"/v1/review/tasks/{first}/decision",
        json={"decision": "no_match"},
        headers=keys.headers(STEWARD),
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "invalid_steward_action"

    deferred = client.post(
        f"/v1/review/tasks/{second}/decision",
        json={"decision": "defer", "reason": "ask sales"},
        headers=keys.headers(STEWARD),
    ).json()
    assert deferred["status"] == "deferred"
    assert _get(client, keys, "/v1/review/tasks", status="deferred")["total"] == 1

    entries = _get(client, keys, "/v1/audit")["items"]
    assert [(e["action"], e["target"], e["actor"], e["reason"]) for e in entries[:2]] == [
        ("review.defer", f"task:{second}", "steward-1", "ask sales"),
        ("review.match", f"task:{first}", "steward-1", "same company, moved"),
    ]
    history = hub.golden_history(task.candidate_golden_id)
    assert history[-1].actor == "steward-1"
    assert history[-1].details["reason"] == "same company, moved"


def test_bulk_decisions_report_each_outcome(
    hub: HubServices, keys: Keys, client: TestClient
) -> None:
    first, second = _review_world(hub)
    answer = client.post(
        "/v1/review/decisions",
        json={
            "decisions": [
                {"task_id": first, "decision": "no_match", "reason": "different firms"},
                {"task_id": 999, "decision": "match"},
                {"task_id": second, "decision": "match"},
            ]
        },
        headers=keys.headers(STEWARD),
    ).json()
    assert [r["ok"] for r in answer["results"]] == [True, False, True]
    assert answer["results"][1]["error"]["code"] == "review_task_not_found"
    assert (answer["decided"], answer["failed"]) == (2, 1)
    # A rejected pair never comes back: re-sending the same record opens no task.
    assert hub.open_review_tasks() == []
    task = hub.review_task_detail(first).item.task
    assert task.source_record_id is not None
    record = next(
        r
        for r in (hub.get_source_record(SourceKey("erp", "customers", p)) for p in ("G2", "H2"))
        if r.id == task.source_record_id
    )
    assert record.key is not None
    hub.apply_changes(
        [globex(record.key.system, record.key.pk, 50, "Stuttgart", legal_name="Globex")]
    )
    assert hub.open_review_tasks() == []


def test_merge_unmerge_preview_and_pins(hub: HubServices, keys: Keys, client: TestClient) -> None:
    hub.apply_changes([acme("crm", "A1", 1), acme("billing", "B1", 2), acme("erp", "E1", 3)])
    hub.apply_changes([globex("crm", "G1", 4, "Berlin", emails=["info@globex.example"])])
    acme_id = hub.get_golden_by_source(SourceKey("crm", "customers", "A1")).id
    globex_id = hub.get_golden_by_source(SourceKey("crm", "customers", "G1")).id
    headers = keys.headers(STEWARD)

    merged = client.post(
        "/v1/golden/merge",
        json={"survivor_id": acme_id, "merged_id": globex_id, "reason": "test merge"},
        headers=headers,
    )
    assert merged.status_code == 200, merged.text
    assert len(merged.json()["sources"]) == 4
    assert client.get(f"/v1/golden/{globex_id}", headers=headers).json()["id"] == acme_id

    g1 = hub.get_source_record(SourceKey("crm", "customers", "G1")).id
    preview = client.post(
        f"/v1/golden/{acme_id}/unmerge/preview", json={"source_record_ids": [g1]}, headers=headers
    ).json()
    assert preview["kept"]["golden_id"] == acme_id
    assert preview["split"]["golden_id"] is None
    assert preview["by_system"] == {
        "billing": {"kept": 1, "split": 0},
        "crm": {"kept": 1, "split": 1},
        "erp": {"kept": 1, "split": 0},
    }
    assert preview["split"]["attributes"]["legal_name"] == "Globex GmbH"
    assert preview["cannot_link_pairs"] == 3
    assert preview["targets_notified"] == ["crm", "billing"]
    assert hub.get_golden(acme_id).version == merged.json()["version"]  # nothing changed

    split = client.post(
        f"/v1/golden/{acme_id}/unmerge",
        json={"source_record_ids": [g1], "reason": "wrong merge"},
        headers=headers,
    ).json()
    assert split["kept"]["id"] == acme_id
    assert split["split"]["attributes"]["legal_name"] == "Globex GmbH"
    assert split["kept"]["attributes"] == preview["kept"]["attributes"]

    pinned = client.put(
        f"/v1/golden/{acme_id}/pins/legal_name",
        json={"value": "ACME Corp (pinned)", "reason": "legal says so"},
        headers=headers,
    ).json()
    assert pinned["attributes"]["legal_name"] == "ACME Corp (pinned)"
    assert pinned["pins"]["legal_name"]["pinned_by"] == "steward-1"
    bad_pin = client.put(
        f"/v1/golden/{acme_id}/pins/emails",
        json={"value": ["not an e-mail"], "reason": "x"},
        headers=headers,
    )
    assert bad_pin.status_code == 422
    assert bad_pin.json()["error"]["code"] == "invalid_pin"
    unpinned = client.delete(
        f"/v1/golden/{acme_id}/pins/legal_name", params={"reason": "done"}, headers=headers
    ).json()
    assert unpinned["attributes"]["legal_name"] == "Acme Corporation"

    actions = [e.action for e in hub.audit_log(actor="steward-1")]
    assert actions == ["golden.unpin", "golden.pin", "golden.unmerge", "golden.merge"]
    stale = client.post(
        "/v1/golden/merge",
        json={
            "survivor_id": acme_id,
            "merged_id": split["split"]["id"],
            "reason": "x",
            "expected_versions": {str(acme_id): 1},
        },
        headers=headers,
    )
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "stale_version"


def test_bodies_are_checked(keys: Keys, client: TestClient) -> None:
    headers = keys.headers(STEWARD)
    cases = [
        ("/v1/golden/merge", {"survivor_id": 1, "merged_id": 2}),  # no reason
        ("/v1/golden/merge", {"survivor_id": 1, "merged_id": 2, "reason": "x", "extra": 1}),
        ("/v1/golden/merge", {"survivor_id": 2**70, "merged_id": 2, "reason": "x"}),
        ("/v1/golden/merge", {"survivor_id": 1, "merged_id": 2, "reason": "a\u0000b"}),
        ("/v1/review/decisions", {"decisions": []}),
        ("/v1/review/tasks/1/decision", {"decision": "maybe"}),
    ]
    for path, body in cases:
        answer = client.post(path, json=body, headers=headers)
        assert answer.status_code == 422, (path, body, answer.text)
        assert answer.json()["error"]["code"] == "invalid_request"
    not_json = client.post(
        "/v1/golden/merge",
        content=b"{nope",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert not_json.status_code == 422
    surrogate = client.post(
        "/v1/golden/merge",
        content=b'{"survivor_id": 1, "merged_id": 2, "reason": "\\ud800"}',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert surrogate.status_code == 422
