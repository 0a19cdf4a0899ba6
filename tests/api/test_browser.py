"""The steward pages in a real browser: Playwright driving Debian's Chromium against the app
served by uvicorn on a loopback port. Signing in with a key, working the queue with the
keyboard, deciding a task and seeing the golden record change, an unmerge with its preview,
and the dashboard's charts. Screenshots are kept in ``$MDH_TEST_ARTIFACTS/browser`` (or the
pytest temporary directory, printed at the end).

Chromium is a system package (``apt-get install chromium``). Without it these tests skip with
that reason, except under CI (``CI`` set), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from api_testkit import Keys, acme, change

from api.app import create_app
from api.context import ApiSettings
from hub.model import SourceKey
from hub.services import HubServices
from netkit import free_port

CHROMIUM = os.environ.get("MDH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail(
            f"CI needs Chromium for the browser tests: {CHROMIUM} is missing", pytrace=False
        )
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install Debian's chromium (apt-get install chromium) "
        "to run the browser tests",
        allow_module_level=True,
    )

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")


@pytest.fixture
def server(hub: HubServices) -> Iterator[str]:
    app = create_app(hub, ApiSettings(auth_cache_seconds=0))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("MDH_TEST_ARTIFACTS")
    root = Path(configured) if configured else tmp_path_factory.mktemp("artifacts")
    path = root / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page(artifacts: Path) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def _world(hub: HubServices) -> None:
    hub.apply_changes([acme("crm", "A1", 1), acme("billing", "B1", 2), acme("erp", "E1", 3)])
    hub.apply_changes(
        [
            change(
                "crm",
                "G1",
                4,
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
                5,
                legal_name="Globex",
                addresses=[{"country": "DE", "city": "Hamburg"}],
            )
        ]
    )
    assert len(hub.open_review_tasks()) == 1


def _sign_in(page: Any, server: str, token: str) -> None:
    page.goto(f"{server}/ui/queue")
    assert page.locator("#signin").is_visible()
    page.click("#signin")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/ui/queue")


def test_sign_in_decide_a_task_and_see_the_golden_record_change(
    hub: HubServices, keys: Keys, server: str, page: Any, artifacts: Path
) -> None:
    _world(hub)
    page.goto(f"{server}/ui/login")
    page.fill("#token", "mdh_000000000000_" + "x" * 43)
    page.click("button[type=submit]")
    page.wait_for_selector("#message.err")
    assert "unknown or revoked" in page.inner_text("#message")

    _sign_in(page, server, keys.steward)
    rows = page.locator("#queue tbody tr[data-href]")
    assert rows.count() == 1
    page.screenshot(path=str(artifacts / "1-queue.png"), full_page=True)
    page.keyboard.press("Enter")  # the first task is selected: open it
    page.wait_for_selector("#waterfall")
    assert page.locator("#sides tr.different").count() >= 1
    assert page.locator("#waterfall tr.step").count() >= 3
    page.screenshot(path=str(artifacts / "2-task.png"), full_page=True)

    task = hub.open_review_tasks()[0]
    before = hub.get_golden(task.candidate_golden_id)
    page.fill("#reason", "same company, moved to Hamburg")
    page.locator("body").click()
    page.keyboard.press("m")
    page.wait_for_selector("#note")
    assert "decided" in page.inner_text("#note")
    after = hub.get_golden(task.candidate_golden_id)
    assert len(after.sources) == len(before.sources) + 1
    shown = page.locator("#sources tbody tr").count()
    assert shown == len(after.sources)
    assert "linked" in page.inner_text("#history")
    page.screenshot(path=str(artifacts / "3-golden-after-match.png"), full_page=True)
    assert hub.audit_log(action="review.match")[0].reason == "same company, moved to Hamburg"


def test_unmerge_with_preview(
    hub: HubServices, keys: Keys, server: str, page: Any, artifacts: Path
) -> None:
    hub.apply_changes([acme("crm", "A1", 1), acme("billing", "B1", 2), acme("erp", "E1", 3)])
    golden_id = hub.get_golden_by_source(SourceKey("crm", "customers", "A1")).id
    erp = hub.get_source_record(SourceKey("erp", "customers", "E1")).id
    _sign_in(page, server, keys.steward)
    page.goto(f"{server}/ui/golden/{golden_id}")
    page.check(f".detach[value='{erp}']")
    page.fill("#unmerge-reason", "ERP row is the parent company")
    page.click("#preview")
    page.wait_for_selector("#preview-table")
    preview = page.inner_text("#preview-table")
    assert "erp" in preview
    page.screenshot(path=str(artifacts / "4-unmerge-preview.png"), full_page=True)
    assert len(hub.get_golden(golden_id).sources) == 3  # a preview changes nothing
    page.click("#confirm-unmerge")
    page.wait_for_url(f"{server}/ui/golden/{golden_id}?unmerged=*")
    assert page.locator("#sources tbody tr").count() == 2
    assert "unmerged" in page.inner_text("#history")
    split = hub.get_golden_by_source(SourceKey("erp", "customers", "E1"))
    assert split.id != golden_id
    page.screenshot(path=str(artifacts / "5-after-unmerge.png"), full_page=True)


def test_dashboard_charts(
    hub: HubServices, keys: Keys, server: str, page: Any, artifacts: Path
) -> None:
    _world(hub)
    hub.apply_changes([acme("crm", "A2", 9, phones=["+1 415 555 0111"])])
    _sign_in(page, server, keys.reader)
    page.goto(f"{server}/ui/reports/duplicates?days=3650")
    page.wait_for_selector("#chart-systems")
    assert page.locator("#chart-systems rect.bar").count() == 3  # crm, billing, erp
    assert page.locator("#chart-coverage rect.bar").count() >= 2
    assert page.locator("#chart-trend circle.point").count() >= 1
    assert page.inner_text("#kpi-rate").strip().endswith("duplicate rate")
    # A reader sees the dashboard but not the queue.
    page.goto(f"{server}/ui/queue")
    assert "steward role" in page.content()
    page.goto(f"{server}/ui/reports/duplicates?days=3650")
    page.screenshot(path=str(artifacts / "6-dashboard.png"), full_page=True)


def test_screenshots_are_kept(artifacts: Path) -> None:
    # Runs last in this module: report where the pictures are.
    print(f"browser screenshots in {artifacts}")
