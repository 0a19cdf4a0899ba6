"""The duplicate-rate report on a store whose answer is known, through the hub, the API and
`mdh report duplicates` (every format), and `mdh keys`."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta

import pandas as pd
import pandera.errors
import pytest
from api_testkit import T0, Keys, acme, change
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from hub.model import SourceKey
from hub.services import HubServices
from hub.services.keys import ApiRole, AuditContext
from hub.services.reports import OVERALL_SCHEMA, ReportQuery, TrendBucket
from mdh.cli import app as mdh


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _world(hub: HubServices) -> Clock:
    """Acme in all three systems and twice in CRM, Jane in CRM only, Initech in billing and
    ERP, and one pair for review, all applied on day 0; a merge and an unmerge on day 1."""
    clock = Clock(T0)
    hub.clock = clock
    hub.apply_changes(
        [
            acme("crm", "A1", 1),
            acme("billing", "B1", 2),
            acme("erp", "E1", 3),
            change(
                "crm",
                "P1",
                4,
                kind="person",
                given_name="Jane",
                family_name="Doe",
                emails=["jane@mail.example"],
            ),
            change("billing", "I1", 5, legal_name="Initech", tax_id="US-99-1111111"),
            change("erp", "I2", 6, legal_name="Initech Inc", tax_id="US-99-1111111"),
        ]
    )
    hub.apply_changes([acme("crm", "A2", 7, phones=["+1 415 555 0111"])])
    clock.at = T0 + timedelta(hours=1)
    hub.apply_changes(
        [
            change(
                "crm",
                "G1",
                8,
                legal_name="Globex GmbH",
                addresses=[{"country": "DE", "city": "Berlin"}],
            )
        ]
    )
    hub.apply_changes(
        [
            change(
                "erp",
                "G2",
                9,
                legal_name="Globex",
                addresses=[{"country": "DE", "city": "Hamburg"}],
            )
        ]
    )
    assert len(hub.open_review_tasks()) == 1
    # Day 1: a steward merges Jane into Acme by mistake and undoes it.
    clock.at = T0 + timedelta(days=1)
    desk = hub.desk(AuditContext("alice", ApiRole.STEWARD))
    acme_id = hub.get_golden_by_source(SourceKey("crm", "customers", "A1")).id
    jane = hub.get_golden_by_source(SourceKey("crm", "customers", "P1"))
    desk.merge_golden(acme_id, jane.id, reason="oops")
    desk.unmerge(acme_id, [jane.sources[0].source_record_id], reason="not the same")
    # Outbox: the crm target acknowledges everything 2 s after the unmerge.
    clock.at = T0 + timedelta(days=1, seconds=2)
    publishing = hub.publishing()
    while claimed := publishing.claim("crm", limit=1000, lease=timedelta(minutes=1)):
        publishing.mark_all_delivered([(d, clock.at) for d in claimed])
    clock.at = T0 + timedelta(days=3)  # the review task is now 71 h old
    return clock


def _records(hub: HubServices) -> dict[str, list[dict[str, object]]]:
    report = hub.duplicate_report(
        ReportQuery(since=T0 - timedelta(days=1), bucket=TrendBucket.DAY, sla=timedelta(hours=48))
    )
    return report.records()


def test_duplicate_report_sections(hub: HubServices) -> None:
    _world(hub)
    data = _records(hub)
    [overall] = data["overall"]
    # 9 live records; goldens: Acme, Jane, Initech, Globex G1, Globex G2 -> 5.
    assert overall["source_records"] == 9
    assert overall["golden_records"] == 5
    assert overall["duplicates"] == 4
    assert overall["duplicate_rate"] == pytest.approx(4 / 9)
    per_system = {r["system"]: r for r in data["per_system"]}
    assert per_system["crm"]["source_records"] == 4  # A1, A2, P1, G1
    assert per_system["crm"]["duplicates"] == 1  # A2 duplicates A1 inside CRM
    assert per_system["billing"]["duplicates"] == 0
    coverage = {r["systems"]: r["golden_records"] for r in data["coverage"]}
    assert coverage == {"billing+crm+erp": 1, "billing+erp": 1, "crm": 2, "erp": 1}
    links = {r["decided"]: r["source_records"] for r in data["links"]}
    assert links == {"automatic": 6, "reviewed": 0, "steward": 0}
    [queue] = data["queue"]
    assert (queue["open"], queue["over_sla"], queue["within_sla_share"]) == (1, 1, 0.0)
    assert queue["oldest_age_hours"] == pytest.approx(71.0)
    [unmerge] = data["unmerge"]
    assert (unmerge["merges"], unmerge["unmerges"]) == (1, 1)
    sync = {r["target"]: r for r in data["sync_latency"]}
    # Source changes of day 0 (committed 1 to 9 s after T0) reached crm a day later; the
    # steward's merge and unmerge have no source commit (golden commit to target only).
    crm = sync["crm"]
    assert 0 < crm["from_sources"] < crm["delivered"]
    assert 86_393_000.0 <= crm["source_to_target_p50_ms"] <= crm["source_to_target_p95_ms"]
    assert crm["source_to_target_p99_ms"] <= crm["source_to_target_max_ms"] <= 86_401_000.0
    assert (crm["pending"], crm["dead"], crm["skipped"]) == (0, 0, 0)
    assert sync["billing"]["delivered"] == 0
    assert sync["billing"]["pending"] > 0
    assert sync["billing"]["source_to_target_p50_ms"] is None
    trend = data["trend"]
    assert [r["bucket_start"][:10] for r in trend] == ["2026-01-01", "2026-01-02"]
    assert trend[0]["source_records_total"] == 9
    assert trend[0]["golden_records_total"] == 5
    assert trend[0]["duplicate_rate"] == pytest.approx(4 / 9)
    assert trend[0]["joined_existing"] == 4  # B1, E1, I2 and A2 joined existing records
    assert trend[1]["golden_merged"] == 1
    assert trend[1]["unmerges"] == 1


def test_report_frames_are_validated() -> None:
    wrong = pd.DataFrame(
        [
            {
                "source_records": 1,
                "golden_records": 3,
                "duplicates": 2,
                "duplicate_rate": 2.0,
                "multi_source_golden_records": 0,
                "invalid_source_records": 0,
                "deleted_source_records": 0,
            }
        ]
    )
    with pytest.raises(pandera.errors.SchemaErrors):
        OVERALL_SCHEMA.validate(wrong, lazy=True)


def test_report_through_the_api(hub: HubServices, keys: Keys, client: TestClient) -> None:
    _world(hub)
    answer = client.get(
        "/v1/reports/duplicates",
        params={"days": 3650, "bucket": "week"},
        headers=keys.headers(ApiRole.READER),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["bucket"] == "week"
    assert body["sections"]["overall"][0]["duplicates"] == 4
    assert set(body["sections"]) == {
        "overall",
        "per_system",
        "coverage",
        "trend",
        "links",
        "queue",
        "unmerge",
        "sync_latency",
    }


def test_empty_store_report(hub: HubServices) -> None:
    data = _records(hub)
    assert data["overall"][0]["duplicate_rate"] is None
    assert data["per_system"] == []
    assert data["trend"] == []


def test_mdh_report_duplicates_formats(hub: HubServices, api_db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _world(hub)
    runner = CliRunner()
    env = {"MDH_DATABASE_URL": api_db_url, "MDH_HOME": str(tmp_path)}
    as_json = runner.invoke(
        mdh, ["report", "duplicates", "--format", "json", "--days", "3650"], env=env
    )
    assert as_json.exit_code == 0, as_json.output
    sections = json.loads(as_json.stdout)["sections"]
    assert sections["overall"][0]["duplicates"] == 4
    as_csv = runner.invoke(
        mdh, ["report", "duplicates", "--format", "csv", "--days", "3650"], env=env
    )
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {"section": "overall", "row": "0", "column": "duplicates", "value": "4"} in rows
    out = tmp_path / "report.html"
    as_html = runner.invoke(
        mdh, ["report", "duplicates", "--format", "html", "--days", "3650", "-o", str(out)], env=env
    )
    assert as_html.exit_code == 0, as_html.output
    page = out.read_text()
    assert page.startswith("<!doctype html>")
    assert 'id="chart-systems"' in page
    table = runner.invoke(mdh, ["report", "duplicates", "--days", "3650"], env=env)
    assert table.exit_code == 0
    assert "per system" in table.stdout
    bad = runner.invoke(mdh, ["report", "duplicates", "--format", "xml"], env=env)
    assert bad.exit_code == 2


def test_mdh_keys(hub: HubServices, api_db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    env = {"MDH_DATABASE_URL": api_db_url, "MDH_HOME": str(tmp_path)}
    created = runner.invoke(mdh, ["keys", "create", "--role", "steward", "--name", "dana"], env=env)
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    key = hub.authenticate(token)
    assert key is not None
    assert key.role is ApiRole.STEWARD
    assert key.name == "dana"
    listed = json.loads(runner.invoke(mdh, ["keys", "list", "--json"], env=env).stdout)
    assert [(k["name"], k["role"], k["revoked_at"]) for k in listed] == [("dana", "steward", None)]
    assert token not in json.dumps(listed)
    revoked = runner.invoke(mdh, ["keys", "revoke", str(key.id), "--reason", "left"], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert hub.authenticate(token) is None
    assert runner.invoke(mdh, ["keys", "revoke", "999"], env=env).exit_code == 2
    assert runner.invoke(mdh, ["keys", "create", "--role", "boss"], env=env).exit_code == 2
    assert [e.action for e in hub.audit_log(actor="cli")] == ["key.revoke", "key.create"]
