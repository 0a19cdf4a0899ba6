"""Reader operations over a real hub: golden records by id (merged ids resolve) and by source
key, lineage, link explanations, history and as-of, search, the changes feed."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from api_testkit import T0, Keys, acme, change
from fastapi.testclient import TestClient

from api.schemas import ChangeEventPublic
from hub.errors import GoldenRecordNotFoundError
from hub.services import HubServices
from hub.services.keys import ApiRole, AuditContext

READER = ApiRole.READER


def _world(hub: HubServices) -> None:
    hub.apply_changes(
        [
            acme("crm", "A1", 1),
            acme("billing", "B1", 2, emails=["ap@acme.example"]),
            change(
                "crm",
                "P1",
                3,
                kind="person",
                given_name="Jane",
                family_name="Doe",
                emails=["jane.doe@mail.example"],
                phones=["+44 20 7946 0000"],
                addresses=[{"postal_code": "SW1A 1AA", "country": "GB"}],
            ),
        ]
    )


def test_golden_by_id_and_by_source_key(hub: HubServices, keys: Keys, client: TestClient) -> None:
    _world(hub)
    by_source = client.get("/v1/sources/billing/customers/B1/golden", headers=keys.headers(READER))
    assert by_source.status_code == 200, by_source.text
    golden = by_source.json()
    assert golden["attributes"]["legal_name"] == "Acme Corporation"
    assert {s["source"]["system"] for s in golden["sources"]} == {"crm", "billing"}
    by_id = client.get(f"/v1/golden/{golden['id']}", headers=keys.headers(READER))
    assert by_id.json() == golden
    assert golden["redirected"] is False

    missing = client.get("/v1/golden/999", headers=keys.headers(READER))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "golden_record_not_found"
    unknown = client.get("/v1/sources/erp/customers/X/golden", headers=keys.headers(READER))
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "source_record_not_found"


def test_merged_away_id_answers_with_its_survivor(
    hub: HubServices, keys: Keys, client: TestClient
) -> None:
    _world(hub)
    acme_id = hub.get_golden_by_source(_key("crm", "A1")).id
    jane_id = hub.get_golden_by_source(_key("crm", "P1")).id
    hub.desk(AuditContext("alice", ApiRole.STEWARD)).merge_golden(acme_id, jane_id, reason="test")
    answer = client.get(f"/v1/golden/{jane_id}", headers=keys.headers(READER)).json()
    assert answer["id"] == acme_id
    assert answer["requested_id"] == jane_id
    assert answer["redirected"] is True


def test_lineage_and_link_explanations(hub: HubServices, keys: Keys, client: TestClient) -> None:
    _world(hub)
    golden_id = hub.get_golden_by_source(_key("crm", "A1")).id
    lineage = client.get(f"/v1/golden/{golden_id}/lineage", headers=keys.headers(READER)).json()
    by_attribute = {entry["attribute"]: entry for entry in lineage["lineage"]}
    assert by_attribute["legal_name"]["value"] == "Acme Corporation"
    assert by_attribute["legal_name"]["source"]["system"] in ("crm", "billing")
    assert by_attribute["legal_name"]["committed_at"].startswith("2026-01-01")
    assert by_attribute["legal_name"]["rule"]

    links = client.get(f"/v1/golden/{golden_id}/links", headers=keys.headers(READER)).json()
    billing = next(link for link in links["links"] if link["source"]["system"] == "billing")
    assert billing["decided_by"] == "rule"
    assert billing["score"] > 0.95
    # The waterfall adds up to the total weight of the explanation.
    assert billing["waterfall"][0]["name"] == "prior"
    assert (
        abs(billing["waterfall"][-1]["running_total"] - billing["explanation"]["total_weight"])
        < 1e-6
    )


def test_history_and_as_of(hub: HubServices, keys: Keys, client: TestClient) -> None:
    times = iter([T0 + timedelta(hours=1), T0 + timedelta(hours=2), T0 + timedelta(hours=3)])
    hub.clock = lambda: next(times)
    hub.apply_changes([acme("crm", "A1", 1)])
    hub.apply_changes([acme("crm", "A1", 2, phones=["+1 415 555 0199"])])
    golden_id = hub.get_golden_by_source(_key("crm", "A1")).id
    full = client.get(f"/v1/golden/{golden_id}/history", headers=keys.headers(READER)).json()
    assert [e["kind"] for e in full["events"]] == ["created", "updated"]
    assert full["state"]["attributes"]["phones"] == ["+1 415 555 0199"]
    then = client.get(
        f"/v1/golden/{golden_id}/history",
        params={"as_of": (T0 + timedelta(hours=1, minutes=30)).isoformat()},
        headers=keys.headers(READER),
    ).json()
    assert [e["kind"] for e in then["events"]] == ["created"]
    assert then["state"]["attributes"]["phones"] == ["+1 415 555 0100"]
    before = client.get(
        f"/v1/golden/{golden_id}/history",
        params={"as_of": T0.isoformat()},
        headers=keys.headers(READER),
    ).json()
    assert before["state"] is None
    naive = client.get(
        f"/v1/golden/{golden_id}/history",
        params={"as_of": "2026-01-01T01:00:00"},
        headers=keys.headers(READER),
    )
    assert naive.status_code == 422
    assert naive.json()["error"]["code"] == "invalid_request"


def test_search_by_name_email_phone_and_tax_id(
    hub: HubServices, keys: Keys, client: TestClient
) -> None:
    _world(hub)
    acme_id = hub.get_golden_by_source(_key("crm", "A1")).id
    jane_id = hub.get_golden_by_source(_key("crm", "P1")).id

    def top(**params: str) -> int:
        answer = client.get("/v1/search", params=params, headers=keys.headers(READER))
        assert answer.status_code == 200, answer.text
        hits = answer.json()["hits"]
        assert hits, params
        return int(hits[0]["golden"]["id"])

    assert top(name="ACME Corp.") == acme_id  # legal form and case do not matter
    assert top(name="Acme", country="US") == acme_id
    assert top(name="Jane Doe") == jane_id
    assert top(name="Jayne Doe") == jane_id  # fuzzy: phonetic blocking, scored by the matcher
    assert top(email="Jane.Doe@Mail.Example") == jane_id
    assert top(phone="+44 (20) 7946-0000") == jane_id
    assert top(tax_id="us 12 3456789") == acme_id
    nothing = client.get("/v1/search", params={"name": "Zyxw"}, headers=keys.headers(READER))
    assert nothing.json()["hits"] == []
    empty = client.get("/v1/search", headers=keys.headers(READER))
    assert empty.status_code == 422


def test_changes_feed_pages_through_every_change_once(
    hub: HubServices, keys: Keys, client: TestClient
) -> None:
    _world(hub)
    hub.apply_changes([acme("crm", "A1", 10, phones=["+1 415 555 0111"])])
    seen: list[int] = []
    cursor = 0
    while True:
        page = client.get(
            "/v1/changes", params={"after": cursor, "limit": 2}, headers=keys.headers(READER)
        ).json()
        seen += [e["sequence"] for e in page["events"]]
        assert page["next_cursor"] >= cursor
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == sorted(set(seen))
    assert len(seen) == len(hub.changes_after(0, 1000))
    last = client.get("/v1/changes", params={"after": cursor}, headers=keys.headers(READER)).json()
    assert last == {"events": [], "next_cursor": cursor, "has_more": False}


def test_changes_long_poll_wakes_up_on_a_commit(
    hub: HubServices, keys: Keys, client: TestClient
) -> None:
    _world(hub)
    cursor = hub.changes_after(0, 1000)[-1].sequence
    assert cursor is not None

    def later() -> None:
        time.sleep(0.4)
        hub.apply_changes([acme("erp", "E1", 20)])

    writer = threading.Thread(target=later)
    writer.start()
    started = time.monotonic()
    page = client.get(
        "/v1/changes", params={"after": cursor, "wait": 5}, headers=keys.headers(READER)
    ).json()
    waited = time.monotonic() - started
    writer.join()
    assert [e["kind"] for e in page["events"]] == ["linked"]
    assert page["events"][0]["sources_added"]
    assert 0.3 < waited < 2.0  # held open, answered on the commit (not at the 2 s cap)

    started = time.monotonic()
    empty = client.get(
        "/v1/changes",
        params={"after": page["next_cursor"], "wait": 60},
        headers=keys.headers(READER),
    ).json()
    assert empty["events"] == []
    assert 1.5 < time.monotonic() - started < 4  # the server's cap (2 s in these tests)


def test_bad_input_is_a_4xx_in_one_shape(keys: Keys, client: TestClient) -> None:
    cases = [
        ("/v1/golden/abc", {}),
        ("/v1/golden/0", {}),
        (f"/v1/golden/{2**64}", {}),
        ("/v1/changes", {"after": "-1"}),
        ("/v1/changes", {"after": "x"}),
        ("/v1/changes", {"limit": "100000"}),
        ("/v1/changes", {"cursor": "5"}),  # unknown parameter
        ("/v1/search", {"name": "a\x00b"}),
        ("/v1/sources/crm/customers/a%00b/golden", {}),
        ("/v1/reports/duplicates", {"bucket": "year"}),
    ]
    for path, params in cases:
        answer = client.get(path, params=params, headers=keys.headers(READER))
        assert 400 <= answer.status_code < 500, (path, params, answer.status_code)
        body = answer.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"status", "code", "message", "details"}
        assert body["error"]["status"] == answer.status_code
        assert body["error"]["message"]


def _key(system: str, pk: str):  # type: ignore[no-untyped-def]
    from hub.model import SourceKey

    return SourceKey(system, "customers", pk)


def test_one_statement_read_equals_the_store_read(hub: HubServices) -> None:
    """The API's hot path (``read_golden``) gives exactly what ``get_golden`` gives: plain,
    merged away (resolved through a chain), pinned, after an unmerge."""
    _world(hub)
    hub.apply_changes([acme("erp", "E1", 5, tax_id=None)])
    desk = hub.desk(AuditContext("alice", ApiRole.STEWARD))
    acme_id = hub.get_golden_by_source(_key("crm", "A1")).id
    jane_id = hub.get_golden_by_source(_key("crm", "P1")).id

    def same(golden_id: int) -> None:
        assert hub.read_golden(golden_id) == hub.get_golden(golden_id)

    same(acme_id)
    same(jane_id)
    desk.pin_attribute(acme_id, "legal_name", "ACME (pinned)", reason="legal")
    same(acme_id)
    desk.merge_golden(acme_id, jane_id, reason="chain")
    same(jane_id)
    erp = hub.get_source_record(_key("erp", "E1")).id
    _, split = desk.unmerge(acme_id, [erp], reason="apart")
    same(acme_id)
    same(split.id)
    desk.merge_golden(split.id, acme_id, reason="chain of two")
    same(jane_id)  # jane -> acme -> split
    assert hub.read_golden(jane_id).id == split.id
    with pytest.raises(GoldenRecordNotFoundError):
        hub.read_golden(999)


def test_feed_rows_equal_the_history_events(hub: HubServices) -> None:
    """The feed's hot path gives, event for event, what ``changes_after`` gives."""
    _world(hub)
    desk = hub.desk(AuditContext("alice", ApiRole.STEWARD))
    acme_id = hub.get_golden_by_source(_key("crm", "A1")).id
    jane_id = hub.get_golden_by_source(_key("crm", "P1")).id
    desk.pin_attribute(acme_id, "legal_name", "ACME", reason="legal")
    desk.merge_golden(acme_id, jane_id, reason="test")
    events = [ChangeEventPublic.of(e).model_dump(mode="json") for e in hub.changes_after(0, 100)]
    rows = [
        ChangeEventPublic.model_validate(r).model_dump(mode="json")
        for r in hub.change_records_after(0, 100)
    ]
    assert rows == events
    assert (
        hub.change_records_after(events[2]["sequence"], 2) == hub.change_records_after(0, 100)[3:5]
    )


def test_feed_consumer_sees_every_change_once_while_writers_commit_concurrently(
    hub: HubServices, keys: Keys, client: TestClient
) -> None:
    """Three writers commit concurrently while one consumer long-polls: the consumer ends with
    every event of the store, each once, in sequence order (commit order)."""
    errors: list[BaseException] = []

    def writer(system: str) -> None:
        try:
            for i in range(15):
                hub.apply_changes(
                    [
                        change(
                            system,
                            f"{system}-{i}",
                            100 + i,
                            legal_name=f"{system} customer {i}",
                            emails=[f"c{i}@{system}.example"],
                        )
                    ]
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s,)) for s in ("crm", "billing", "erp")]
    for thread in threads:
        thread.start()
    seen: list[int] = []
    cursor = 0
    while any(t.is_alive() for t in threads) or cursor < max(
        (e.sequence or 0 for e in hub.changes_after(cursor, 1000)), default=0
    ):
        page = client.get(
            "/v1/changes",
            params={"after": cursor, "limit": 7, "wait": 0.5},
            headers=keys.headers(READER),
        ).json()
        seen += [e["sequence"] for e in page["events"]]
        cursor = page["next_cursor"]
    for thread in threads:
        thread.join()
    assert errors == []
    stored = [e.sequence for e in hub.changes_after(0, 10_000)]
    assert len(stored) >= 45
    assert seen == stored
