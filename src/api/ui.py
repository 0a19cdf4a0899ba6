"""The stewards' web pages, rendered on the server with a little JavaScript: sign-in with a key
(kept in an HttpOnly, SameSite=Strict cookie), the review queue, a task side by side with the
score waterfall and keyboard decisions, a golden record with lineage, history and unmerge
preview, and the duplicate-rate dashboard. Actions call the JSON API with the same cookie.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field

from api.auth import COOKIE, Principal, authenticate_request, bearer, role_extra
from api.context import ApiContext, context
from api.errors import ApiProblem
from api.schemas import MAX_ID
from hub.errors import HubError
from hub.records import GoldenRecord
from hub.services.keys import ApiRole
from hub.services.queue import QueueQuery, QueueSort, TaskSide
from hub.services.reports import DuplicateReport, ReportQuery, TrendBucket

router = APIRouter(prefix="/ui", tags=["steward pages"])
Ctx = Annotated[ApiContext, Depends(context)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
HTML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "An HTML page"}
}

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{background:#22303c;color:#fff;padding:.6em 1.2em;display:flex;gap:1.2em;align-items:center}
header a{color:#fff;text-decoration:none}header .who{margin-left:auto;opacity:.8}
main{padding:1em 1.4em;max-width:1300px}table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid #e3e6ea;padding:.35em .6em;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}tr.sel{outline:2px solid #2f6fde}
.different{background:#fff1c2}.left_only,.right_only{background:#e7f0ff}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:1em}.card{background:#fff;padding:1em;
border:1px solid #e3e6ea;border-radius:6px;margin-bottom:1em}.badge{padding:0 .4em;border-radius:3px;
background:#ddd}.late{background:#ffd2d2}.ok{background:#d7f5dc}button{padding:.4em .9em;margin-right:.4em}
.bar{height:14px;display:inline-block}.pos{background:#3c9a5f}.neg{background:#c94a4a}
.msg{padding:.6em;background:#e7f0ff;border:1px solid #b9cff5;margin-bottom:1em}
.err{background:#ffe3e3;border-color:#f5b9b9}kbd{border:1px solid #aaa;border-radius:3px;padding:0 .3em}
.kpis{display:flex;gap:1em;flex-wrap:wrap}.kpi{background:#fff;border:1px solid #e3e6ea;padding:.6em 1em;
border-radius:6px}.kpi b{display:block;font-size:1.6em}
"""

_JS = """
async function mdhApi(method, url, body) {
  const response = await fetch(url, {method, credentials: 'same-origin',
    headers: {'Content-Type': 'application/json', 'Accept': 'application/json'},
    body: body === undefined ? undefined : JSON.stringify(body)});
  const data = await response.json().catch(() => ({}));
  if (!response.ok) { throw new Error((data.error && data.error.message) || response.statusText); }
  return data;
}
function mdhMessage(text, error) {
  const box = document.getElementById('message');
  box.textContent = text; box.className = error ? 'msg err' : 'msg'; box.hidden = false;
}
"""


def _page(title: str, body: str, principal: Principal | None, status: int = 200) -> HTMLResponse:
    who = (
        f'<span class="who">{escape(principal.actor)} ({escape(principal.role.value)}) '
        '<a href="#" id="signout">sign out</a></span>'
        if principal is not None
        else ""
    )
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} · mdh</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_CSS}</style><script>{_JS}</script></head>
<body><header><strong>mdh</strong><a href="/ui/queue">Review queue</a>
<a href="/ui/reports/duplicates">Duplicate rates</a>
<form action="/ui/golden" method="get" style="margin:0"><input name="id" placeholder="golden id"
 size="9" aria-label="golden id"></form>{who}</header>
<main><div id="message" class="msg" hidden></div>{body}</main>
<script>
const out = document.getElementById('signout');
if (out) out.addEventListener('click', async (e) => {{ e.preventDefault();
  await fetch('/ui/session', {{method: 'DELETE'}}); location.href = '/ui/login'; }});
</script></body></html>"""
    return HTMLResponse(html, status_code=status)


def _guard(
    request: Request, credentials: HTTPAuthorizationCredentials | None, role: ApiRole
) -> Principal | HTMLResponse:
    try:
        return authenticate_request(request, credentials, role)
    except ApiProblem as exc:
        target = escape(request.url.path)
        if exc.status_code == 401:
            body = (
                f'<div class="card"><h2>Sign in</h2><p>{escape(str(exc.detail))}.</p>'
                f'<p><a id="signin" href="/ui/login?next={target}">Sign in with an API key</a></p>'
                "</div>"
            )
            return _page("Sign in", body, None, 401)
        return _page("Not allowed", f'<div class="card">{escape(str(exc.detail))}</div>', None, 403)


def _value(value: Any) -> str:
    if value is None:
        return '<span style="opacity:.5">—</span>'
    if isinstance(value, str | int | float | bool):
        return escape(str(value))
    return escape(json.dumps(value, ensure_ascii=False, default=str))


def _when(at: datetime | None) -> str:
    return "—" if at is None else escape(at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} d" if hours >= 48 else f"{hours:.1f} h"


# --- sign-in -----------------------------------------------------------------------------


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: Annotated[str, Field(min_length=1, max_length=200)]


class SessionPublic(BaseModel):
    name: str
    role: ApiRole


@router.get("/login", response_class=HTMLResponse, responses=HTML, openapi_extra=role_extra(None))
def login(
    next: Annotated[str, Query(max_length=300, pattern=r"^/ui(/[A-Za-z0-9/_.-]*)?$")] = "/ui/queue",
) -> HTMLResponse:
    body = f"""<div class="card" style="max-width:480px"><h2>Sign in</h2>
<p>Paste your API key (<code>mdh keys create --role steward</code>). It is kept in a cookie
for this site only.</p>
<form id="login"><input id="token" type="password" size="60" autocomplete="off"
 aria-label="API key" required> <button type="submit">Sign in</button></form></div>
<script>
document.getElementById('login').addEventListener('submit', async (e) => {{
  e.preventDefault();
  try {{ await mdhApi('POST', '/ui/session', {{token: document.getElementById('token').value}});
        location.href = {json.dumps(next)}; }}
  catch (err) {{ mdhMessage(err.message, true); }}
}});
</script>"""
    return _page("Sign in", body, None)


@router.post(
    "/session",
    response_model=SessionPublic,
    responses={401: {"description": "Unknown or revoked key"}},
    openapi_extra=role_extra(None),
)
def create_session(body: SessionCreate, ctx: Ctx) -> Response:
    key = ctx.authenticator.authenticate(body.token)
    if key is None:
        raise ApiProblem(401, "unauthorized", "unknown or revoked API key")
    response = JSONResponse(SessionPublic(name=key.name, role=key.role).model_dump(mode="json"))
    response.set_cookie(
        COOKIE,
        body.token,
        httponly=True,
        samesite="strict",
        secure=ctx.settings.secure_cookies,
        path="/",
        max_age=12 * 3600,
    )
    return response


@router.delete("/session", status_code=204, openapi_extra=role_extra(None))
def delete_session() -> Response:
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("", response_class=RedirectResponse, status_code=307, openapi_extra=role_extra(None))
def home() -> RedirectResponse:
    return RedirectResponse("/ui/queue", status_code=307)


# --- queue -------------------------------------------------------------------------------


@router.get(
    "/queue", response_class=HTMLResponse, responses=HTML, openapi_extra=role_extra(ApiRole.STEWARD)
)
def queue_page(
    request: Request,
    ctx: Ctx,
    credentials: Credentials,
    sort: QueueSort = QueueSort.PRIORITY,
    system: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> HTMLResponse:
    principal = _guard(request, credentials, ApiRole.STEWARD)
    if isinstance(principal, HTMLResponse):
        return principal
    page = ctx.services.review_queue(QueueQuery(sort=sort, system=system, limit=50, offset=offset))
    sla = timedelta(hours=ctx.settings.review_sla_hours)
    rows = []
    for item in page.items:
        task = item.task
        late = item.age > sla
        rows.append(
            f'<tr data-href="/ui/tasks/{task.id}"><td><a href="/ui/tasks/{task.id}">#{task.id}</a></td>'
            f"<td>{item.priority_score:.2f}</td><td>{task.score:.3f}</td><td>{escape(task.kind.value)}</td>"
            f"<td>{escape(', '.join(item.systems))}</td><td>{item.records_affected}</td>"
            f'<td><span class="badge {"late" if late else "ok"}">{_age(item.age)}</span></td></tr>'
        )
    sorts = " · ".join(
        f'<a href="/ui/queue?sort={s.value}">{"<b>" + s.value + "</b>" if s is sort else s.value}</a>'
        for s in QueueSort
    )
    nav = ""
    if offset + len(page.items) < page.total:
        nav = f'<a href="/ui/queue?sort={sort.value}&offset={offset + 50}">next page</a>'
    body = f"""<h2>Review queue <small>({page.total} open)</small></h2>
<p>Sort: {sorts}. Keys: <kbd>j</kbd>/<kbd>k</kbd> move, <kbd>Enter</kbd> opens.</p>
<table id="queue"><thead><tr><th>task</th><th>priority</th><th>score</th><th>kind</th>
<th>systems</th><th>records</th><th>age (SLA {ctx.settings.review_sla_hours:g} h)</th></tr></thead>
<tbody>{"".join(rows) or '<tr><td colspan="7">Nothing to review.</td></tr>'}</tbody></table>{nav}
<script>
const rows = Array.from(document.querySelectorAll('#queue tbody tr[data-href]'));
let at = 0; const mark = () => rows.forEach((r, i) => r.classList.toggle('sel', i === at));
if (rows.length) mark();
document.addEventListener('keydown', (e) => {{
  if (e.target.tagName === 'INPUT') return;
  if (e.key === 'j') {{ at = Math.min(at + 1, rows.length - 1); mark(); }}
  if (e.key === 'k') {{ at = Math.max(at - 1, 0); mark(); }}
  if (e.key === 'Enter' && rows[at]) location.href = rows[at].dataset.href;
}});
</script>"""
    return _page("Review queue", body, principal)


# --- task --------------------------------------------------------------------------------


def _side_attributes(side: TaskSide) -> Mapping[str, Any]:
    if side.source_record is not None:
        return side.source_record.attributes
    return {} if side.golden is None else side.golden.attributes


def _side_title(side: TaskSide) -> str:
    parts = []
    if side.source_record is not None and side.source_record.key is not None:
        parts.append(f"source {escape(str(side.source_record.key))}")
    if side.golden is not None:
        parts.append(f'golden <a href="/ui/golden/{side.golden.id}">#{side.golden.id}</a>')
    return " in ".join(parts) or "—"


def _waterfall(steps: Sequence[Any]) -> str:
    if not steps:
        return "<p>The matcher gave no weights for this pair.</p>"
    scale = max(abs(s.weight) for s in steps) or 1.0
    rows = []
    for step in steps:
        width = int(abs(step.weight) / scale * 200)
        sign = "pos" if step.weight >= 0 else "neg"
        rows.append(
            f'<tr class="step"><td>{escape(step.name)}</td><td>{escape(step.label)}</td>'
            f'<td style="text-align:right">{step.weight:+.2f}</td>'
            f'<td><span class="bar {sign}" style="width:{width}px"></span></td>'
            f'<td style="text-align:right">{step.running_total:+.2f}</td></tr>'
        )
    return (
        '<table id="waterfall"><thead><tr><th>comparison</th><th>level</th><th>weight</th>'
        "<th></th><th>running total</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


@router.get(
    "/tasks/{task_id}",
    response_class=HTMLResponse,
    responses=HTML,
    openapi_extra=role_extra(ApiRole.STEWARD),
)
def task_page(
    request: Request,
    ctx: Ctx,
    credentials: Credentials,
    task_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> HTMLResponse:
    principal = _guard(request, credentials, ApiRole.STEWARD)
    if isinstance(principal, HTMLResponse):
        return principal
    try:
        detail = ctx.services.review_task_detail(task_id)
    except HubError as exc:
        return _page("Task", f'<div class="msg err">{escape(str(exc))}</div>', principal, 404)
    task = detail.item.task
    left, right = _side_attributes(detail.left), _side_attributes(detail.right)
    rows = "".join(
        f'<tr class="{state}" data-attribute="{escape(name)}"><th>{escape(name)}</th>'
        f"<td>{_value(left.get(name))}</td><td>{_value(right.get(name))}</td></tr>"
        for name, state in detail.differences.items()
    )
    explanation = task.explanation
    verdict = (
        f"probability {task.score:.3f}, decision {escape(str(explanation.get('decision', '?')))}"
    )
    if explanation.get("hard_conflict"):
        verdict += (
            f", hard conflict on {escape(', '.join(map(str, explanation.get('conflicts', []))))}"
        )
    if explanation.get("held_back"):
        verdict += f'; <span class="held-back">{escape(str(explanation["held_back"]))}</span>'
    open_task = task.status.value in ("open", "deferred")
    buttons = (
        """<p><input id="reason" size="50" placeholder="why (kept in the audit log)"
 aria-label="reason"></p><p><button id="match">Match <kbd>m</kbd></button>
<button id="no_match">Not a match <kbd>n</kbd></button><button id="defer">Defer <kbd>d</kbd></button></p>"""
        if open_task
        else f"<p>Decided: <b>{escape(str(task.decision.value if task.decision else task.status.value))}</b>"
        f" by {escape(task.decided_by or '—')} at {_when(task.decided_at)}</p>"
    )
    body = f"""<h2>Task #{task.id} <small>{escape(task.kind.value)} · {escape(task.status.value)}</small></h2>
<div class="card">{verdict}; priority {detail.item.priority_score:.2f}
(uncertainty {detail.item.uncertainty:.2f} × impact {detail.item.impact:.2f}), waiting {_age(detail.item.age)}.
{buttons}</div>
<table id="sides"><thead><tr><th>attribute</th><th>{_side_title(detail.left)}</th>
<th>{_side_title(detail.right)}</th></tr></thead><tbody>{rows}</tbody></table>
<h3>Score waterfall</h3>{_waterfall(detail.waterfall)}
<script>
const taskId = {task.id}, candidate = {task.candidate_golden_id}, left = {task.golden_id};
async function decide(decision) {{
  const reason = (document.getElementById('reason') || {{value: ''}}).value;
  try {{
    const result = await mdhApi('POST', `/v1/review/tasks/${{taskId}}/decision`, {{decision, reason}});
    if (decision === 'match') location.href = `/ui/golden/${{candidate}}?decided=${{taskId}}`;
    else if (decision === 'no_match') location.href = `/ui/golden/${{left}}?decided=${{taskId}}`;
    else location.href = '/ui/queue';
  }} catch (err) {{ mdhMessage(err.message, true); }}
}}
for (const d of ['match', 'no_match', 'defer']) {{
  const b = document.getElementById(d); if (b) b.addEventListener('click', () => decide(d));
}}
document.addEventListener('keydown', (e) => {{
  if (e.target.tagName === 'INPUT' || !document.getElementById('match')) return;
  if (e.key === 'm') decide('match'); if (e.key === 'n') decide('no_match');
  if (e.key === 'd') decide('defer');
}});
</script>"""
    return _page(f"Task {task.id}", body, principal)


# --- golden ------------------------------------------------------------------------------


@router.get(
    "/golden", response_class=HTMLResponse, responses=HTML, openapi_extra=role_extra(ApiRole.READER)
)
def golden_lookup(
    request: Request,
    credentials: Credentials,
    id: Annotated[int, Query(ge=1, le=MAX_ID)],
) -> Response:
    principal = _guard(request, credentials, ApiRole.READER)
    if isinstance(principal, HTMLResponse):
        return principal
    return RedirectResponse(f"/ui/golden/{id}", status_code=303)


def _history_rows(ctx: ApiContext, golden: GoldenRecord) -> str:
    events = ctx.services.golden_history(golden.id)
    items = []
    for event in reversed(events):
        changes = ", ".join(escape(name) for name in event.diff) or ""
        extra = []
        if event.sources_added:
            extra.append(f"+{len(event.sources_added)} source(s)")
        if event.sources_removed:
            extra.append(f"−{len(event.sources_removed)} source(s)")
        if event.status is not None:
            extra.append(f"status {escape(event.status.value)}")
        reason = event.details.get("reason")
        items.append(
            f'<li class="event"><b>{escape(event.kind.value)}</b> v{event.version} · '
            f"{_when(event.occurred_at)} · {escape(event.actor)} ({escape(event.cause.value)})"
            f"{' · ' + changes if changes else ''}{' · ' + ', '.join(extra) if extra else ''}"
            f"{' · “' + escape(str(reason)) + '”' if reason else ''}</li>"
        )
    return '<ol id="history" reversed>' + "".join(items) + "</ol>"


@router.get(
    "/golden/{golden_id}",
    response_class=HTMLResponse,
    responses=HTML,
    openapi_extra=role_extra(ApiRole.READER),
)
def golden_page(
    request: Request,
    ctx: Ctx,
    credentials: Credentials,
    golden_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    decided: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    unmerged: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> HTMLResponse:
    principal = _guard(request, credentials, ApiRole.READER)
    if isinstance(principal, HTMLResponse):
        return principal
    try:
        golden = ctx.services.get_golden(golden_id)
    except HubError as exc:
        return _page(
            "Golden record", f'<div class="msg err">{escape(str(exc))}</div>', principal, 404
        )
    notes = []
    if golden.id != golden.requested_id:
        notes.append(f"Golden record #{golden.requested_id} was merged into #{golden.id}.")
    if decided is not None:
        notes.append(f"Task #{decided} decided.")
    if unmerged is not None:
        notes.append(f"Unmerged: the detached source records are now golden record #{unmerged}.")
    note = "".join(f'<div class="msg" id="note">{escape(n)}</div>' for n in notes)
    lineage_rows = []
    for name, value in golden.attributes.items():
        entry = golden.lineage.get(name)
        source = "—"
        if entry is not None and entry.source_key is not None:
            source = escape(str(entry.source_key))
        rule = "—" if entry is None else escape(entry.rule)
        committed = _when(
            None if entry is None or entry.position is None else entry.position.committed_at
        )
        pinned = " 📌" if name in golden.pins else ""
        lineage_rows.append(
            f'<tr data-attribute="{escape(name)}"><th>{escape(name)}{pinned}</th><td>{_value(value)}</td>'
            f"<td>{source}</td><td>{rule}</td><td>{committed}</td></tr>"
        )
    steward = principal.role.allows(ApiRole.STEWARD)
    source_rows = "".join(
        f"<tr><td>{'<input type=checkbox class=detach value=' + str(s.source_record_id) + '>' if steward else ''}</td>"
        f"<td>{s.source_record_id}</td><td>{escape(s.key.system)}</td><td>{escape(s.key.table)}</td>"
        f"<td>{escape(s.key.pk)}</td><td>{escape(s.decided_by.value)}</td>"
        f"<td>{'—' if s.score is None else f'{s.score:.3f}'}</td></tr>"
        for s in golden.sources
    )
    unmerge = (
        """<p><input id="unmerge-reason" size="40" placeholder="why" aria-label="unmerge reason">
<button id="preview">Preview unmerge</button></p><div id="preview-out"></div>"""
        if steward and len(golden.sources) > 1 and golden.status.value == "active"
        else ""
    )
    body = f"""<h2>Golden record #{golden.id} <small>v{golden.version} · {escape(golden.status.value)}</small></h2>
{note}<div class="card"><h3>Attributes and lineage</h3><table id="attributes"><thead><tr><th>attribute</th>
<th>value</th><th>source</th><th>rule</th><th>source commit</th></tr></thead>
<tbody>{"".join(lineage_rows)}</tbody></table></div>
<div class="card"><h3>Source records</h3><table id="sources"><thead><tr><th></th><th>id</th><th>system</th>
<th>table</th><th>key</th><th>decided by</th><th>score</th></tr></thead><tbody>{source_rows}</tbody></table>
{unmerge}</div>
<div class="card"><h3>History</h3>{_history_rows(ctx, golden)}</div>
<script>
const goldenId = {golden.id};
function selected() {{ return Array.from(document.querySelectorAll('.detach:checked')).map(c => +c.value); }}
function esc(s) {{ const d = document.createElement('span'); d.textContent = s; return d.innerHTML; }}
const preview = document.getElementById('preview');
if (preview) preview.addEventListener('click', async () => {{
  try {{
    const p = await mdhApi('POST', `/v1/golden/${{goldenId}}/unmerge/preview`, {{source_record_ids: selected()}});
    const rows = Object.entries(p.by_system).map(([s, c]) =>
      `<tr><td>${{esc(s)}}</td><td>${{c.kept}}</td><td>${{c.split}}</td></tr>`).join('');
    document.getElementById('preview-out').innerHTML =
      `<table id="preview-table"><thead><tr><th>system</th><th>stay on #${{p.golden_id}}</th>` +
      `<th>move to a new record</th></tr></thead><tbody>${{rows}}</tbody></table>` +
      `<p>${{p.cannot_link_pairs}} pair(s) will never be matched again; ` +
      `${{p.open_tasks_superseded}} open task(s) closed; targets told: ${{esc(p.targets_notified.join(', ') || 'none')}}.</p>` +
      `<p>New record would read: <code>${{esc(JSON.stringify(p.split.attributes))}}</code></p>` +
      `<button id="confirm-unmerge">Unmerge</button>`;
    document.getElementById('confirm-unmerge').addEventListener('click', async () => {{
      try {{
        const r = await mdhApi('POST', `/v1/golden/${{goldenId}}/unmerge`,
          {{source_record_ids: selected(), reason: document.getElementById('unmerge-reason').value || 'unmerge'}});
        location.href = `/ui/golden/${{r.kept.id}}?unmerged=${{r.split.id}}`;
      }} catch (err) {{ mdhMessage(err.message, true); }}
    }});
  }} catch (err) {{ mdhMessage(err.message, true); }}
}});
</script>"""
    return _page(f"Golden {golden.id}", body, principal)


# --- report ------------------------------------------------------------------------------


def _bars(chart_id: str, items: Iterable[tuple[str, float]], fmt: str = "{:.1%}") -> str:
    data = list(items)
    if not data:
        return f'<svg id="{chart_id}" class="chart" width="420" height="30"><text x="4" y="20">no data</text></svg>'
    top = max((v for _, v in data), default=0.0) or 1.0
    height = 26 * len(data) + 8
    parts = [f'<svg id="{chart_id}" class="chart" width="520" height="{height}" role="img">']
    for index, (label, value) in enumerate(data):
        y = 4 + index * 26
        width = max(int(value / top * 300), 1)
        parts.append(
            f'<text x="4" y="{y + 15}" font-size="12">{escape(label)}</text>'
            f'<rect class="bar" x="150" y="{y}" width="{width}" height="18" fill="#2f6fde"></rect>'
            f'<text x="{156 + width}" y="{y + 14}" font-size="12">{escape(fmt.format(value))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _line(chart_id: str, points: Sequence[tuple[str, float]]) -> str:
    values = [(label, v) for label, v in points if v == v]
    if not values:
        return f'<svg id="{chart_id}" class="chart" width="520" height="30"><text x="4" y="20">no data</text></svg>'
    top = max(v for _, v in values) or 1.0
    width, height = 520, 160
    step = (width - 60) / max(len(values) - 1, 1)
    coords = [
        (40 + i * step, height - 20 - (v / top) * (height - 40)) for i, (_, v) in enumerate(values)
    ]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(
        f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3"><title>{escape(label)}: {v:.1%}</title></circle>'
        for (x, y), (label, v) in zip(coords, values, strict=True)
    )
    return (
        f'<svg id="{chart_id}" class="chart" width="{width}" height="{height}" role="img">'
        f'<polyline points="{path}" fill="none" stroke="#2f6fde" stroke-width="2"></polyline>{dots}'
        f'<text x="40" y="{height - 4}" font-size="11">{escape(values[0][0])}</text>'
        f'<text x="{width - 130}" y="{height - 4}" font-size="11">{escape(values[-1][0])}</text></svg>'
    )


def _table(records: list[dict[str, Any]], table_id: str) -> str:
    if not records:
        return f'<table id="{table_id}"><tr><td>none</td></tr></table>'
    head = "".join(f"<th>{escape(k)}</th>" for k in records[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in r.values()) + "</tr>" for r in records
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return _value(value)


def render_report(report: DuplicateReport) -> str:
    """The dashboard body (also what ``mdh report duplicates --format html`` writes)."""
    data = report.records()
    overall = data["overall"][0] if data["overall"] else {}
    queue = data["queue"][0] if data["queue"] else {}
    unmerge = data["unmerge"][0] if data["unmerge"] else {}
    rate = overall.get("duplicate_rate")

    def kpi(label: str, value: Any, kpi_id: str) -> str:
        shown = (
            "—" if value is None else (f"{value:.1%}" if isinstance(value, float) else str(value))
        )
        return f'<div class="kpi" id="{kpi_id}"><b>{escape(shown)}</b>{escape(label)}</div>'

    kpis = "".join(
        (
            kpi("duplicate rate", rate, "kpi-rate"),
            kpi("source records", overall.get("source_records"), "kpi-sources"),
            kpi("golden records", overall.get("golden_records"), "kpi-goldens"),
            kpi("open review tasks", queue.get("open"), "kpi-open"),
            kpi("over SLA", queue.get("over_sla"), "kpi-late"),
            kpi("unmerge rate", unmerge.get("unmerge_rate"), "kpi-unmerge"),
        )
    )
    per_system = _bars(
        "chart-systems",
        [(r["system"], r["duplicate_rate"] or 0.0) for r in data["per_system"]],
    )
    coverage = _bars(
        "chart-coverage",
        [(r["systems"], float(r["golden_records"])) for r in data["coverage"]],
        "{:.0f}",
    )
    trend = _line(
        "chart-trend",
        [
            (
                str(r["bucket_start"])[:16],
                r["duplicate_rate"] if r["duplicate_rate"] is not None else float("nan"),
            )
            for r in data["trend"]
        ],
    )
    links = _bars(
        "chart-links", [(r["decided"], float(r["source_records"])) for r in data["links"]], "{:.0f}"
    )
    return f"""<h2>Duplicate rates <small>since {_when(report.query.since)}</small></h2>
<div class="kpis">{kpis}</div>
<div class="cols"><div class="card"><h3>Duplicates within each source system</h3>{per_system}</div>
<div class="card"><h3>Cross-system coverage (golden records)</h3>{coverage}</div>
<div class="card"><h3>Duplicate rate over time (per {escape(report.query.bucket.value)})</h3>{trend}</div>
<div class="card"><h3>Who decided the links</h3>{links}</div></div>
<div class="card"><h3>Review queue against the SLA</h3>{_table(data["queue"], "table-queue")}</div>
<div class="card"><h3>Trend</h3>{_table(data["trend"], "table-trend")}</div>
<div class="card"><h3>Unmerges (the false-merge signal)</h3>{_table(data["unmerge"], "table-unmerge")}</div>
<div class="card"><h3>Sync latency per target</h3>{_table(data["sync_latency"], "table-sync")}</div>"""


@router.get(
    "/reports/duplicates",
    response_class=HTMLResponse,
    responses=HTML,
    openapi_extra=role_extra(ApiRole.READER),
)
def report_page(
    request: Request,
    ctx: Ctx,
    credentials: Credentials,
    days: Annotated[int, Query(ge=1, le=3660)] = 30,
    bucket: TrendBucket = TrendBucket.DAY,
) -> HTMLResponse:
    principal = _guard(request, credentials, ApiRole.READER)
    if isinstance(principal, HTMLResponse):
        return principal
    report = ctx.services.duplicate_report(
        ReportQuery(
            since=datetime.now(UTC) - timedelta(days=days),
            bucket=bucket,
            sla=timedelta(hours=ctx.settings.review_sla_hours),
        )
    )
    return _page("Duplicate rates", render_report(report), principal)
