"""`mdh serve` as a user runs it: a real uvicorn process on a loopback port, wired by the
composition root (hub services from the settings, capture lag from the capture's metrics file);
and the dead-letter replay it wires from the CDC parser and source mappings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from api_testkit import acme
from fastapi.testclient import TestClient

from api.app import create_app
from api.context import ApiSettings
from cdc.mapping import load_source_mappings
from cdc.replay import read_replay
from hub.model import SourceKey
from hub.records import DeadLetter
from hub.services import HubServices
from hub.services.keys import ApiRole, AuditContext
from mdh.commands.serve import DeadLetterReplayer
from netkit import free_port

CDC_FIXTURES = Path(__file__).parents[1] / "cdc" / "fixtures"


def test_mdh_serve(hub: HubServices, api_db_url: str, tmp_path: Path) -> None:
    hub.apply_changes([acme("crm", "A1", 1), acme("billing", "B1", 2)])
    golden_id = hub.get_golden_by_source(SourceKey("crm", "customers", "A1")).id
    env = {**os.environ, "MDH_DATABASE_URL": api_db_url, "MDH_HOME": str(tmp_path)}
    created = subprocess.run(
        [sys.executable, "-m", "mdh", "keys", "create", "--role", "reader", "--name", "erin"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    token = created.stdout.strip()
    (tmp_path / "cdc").mkdir()
    (tmp_path / "cdc" / "metrics.json").write_text(
        json.dumps(
            {
                "transport": "embedded",
                "sources": {
                    "crm": {
                        "last_commit_at": "2026-01-01T00:00:00+00:00",
                        "commit_to_golden_ms": {"p50": 20, "p95": 40, "p99": 80},
                    }
                },
            }
        )
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mdh", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.monotonic() < deadline, "mdh serve did not come up"
            time.sleep(0.2)
        ready = httpx.get(f"{base}/health/ready").json()
        assert ready["status"] == "ready"
        assert ready["capture"]["live"]["sources"]["crm"]["commit_to_golden_ms"]["p99"] == 80
        assert "crm" in ready["capture"]["last_source_commit"]
        golden = httpx.get(
            f"{base}/v1/golden/{golden_id}", headers={"Authorization": f"Bearer {token}"}
        )
        assert golden.status_code == 200
        assert golden.json()["attributes"]["legal_name"] == "Acme Corporation"
        assert httpx.get(f"{base}/v1/golden/{golden_id}").status_code == 401
        metrics = httpx.get(f"{base}/metrics").text
        assert (
            'mdh_http_requests_total{method="GET",route="/v1/golden/{golden_id}",status="200"} 1'
            in metrics
        )
        assert "mdh_golden_records_active 1" in metrics
        assert 'mdh_capture_commit_to_golden_p99_seconds{source="crm"} 0.08' in metrics
        assert "mdh_store_up 1" in metrics
        openapi = httpx.get(f"{base}/openapi.json").json()
        assert "/v1/changes" in openapi["paths"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert server.returncode in (0, -signal.SIGTERM)
    output = server.stdout.read() if server.stdout else ""
    assert "Traceback" not in output


def test_dead_letter_replay_after_the_mapping_is_fixed(hub: HubServices, api_db_url: str) -> None:
    """A message dead-lettered (here: recorded as if its mapping had been missing) applies on
    replay with the current mappings, and the letter is marked replayed and audited."""
    [first, *_] = [
        m for batch in read_replay(CDC_FIXTURES / "pg_schemas_default.jsonl") for m in batch
    ]
    hub.record_dead_letters(
        [
            DeadLetter(
                source="crm",
                raw_key=first.key,
                raw_value=first.value,
                reason="unmapped_table: crm/public.customer",
                error_class="UnmappedTableError",
                position={"topic": first.topic},
            ),
            DeadLetter(
                source="crm",
                raw_key=b"{",
                raw_value=b"not json",
                reason="malformed",
                error_class="MalformedMessageError",
            ),
        ]
    )
    replayer = DeadLetterReplayer(hub, load_source_mappings(CDC_FIXTURES / "sources.yaml"))
    app = create_app(hub, ApiSettings(auth_cache_seconds=0), replayer=replayer)
    admin = hub.desk(AuditContext("setup", ApiRole.ADMIN)).create_api_key("ops", ApiRole.ADMIN)
    headers = {"Authorization": f"Bearer {admin.token}"}
    with TestClient(app) as client:
        letters = client.get("/v1/dead-letters", headers=headers).json()["items"]
        assert [letter["status"] for letter in letters] == ["open", "open"]
        detail = client.get(f"/v1/dead-letters/{letters[1]['id']}", headers=headers).json()
        assert detail["raw_value_text"] == "not json"
        replayed = client.post(f"/v1/dead-letters/{letters[0]['id']}/replay", headers=headers)
        assert replayed.status_code == 200, replayed.text
        assert replayed.json()["dead_letter"]["status"] == "replayed"
        assert hub.get_golden_by_source(SourceKey("crm", "public.customer", "1")).id > 0
        still_bad = client.post(f"/v1/dead-letters/{letters[1]['id']}/replay", headers=headers)
        assert still_bad.status_code == 409
        assert still_bad.json()["error"]["code"] == "replay_failed"
        again = client.post(f"/v1/dead-letters/{letters[0]['id']}/replay", headers=headers)
        assert again.json()["error"]["code"] == "not_open"
        discarded = client.post(
            f"/v1/dead-letters/{letters[1]['id']}/discard",
            json={"reason": "test garbage"},
            headers=headers,
        )
        assert discarded.json()["status"] == "discarded"
    actions = [e.action for e in hub.audit_log(actor="ops")]
    assert actions == ["dead_letter.discarded", "dead_letter.replayed"]
