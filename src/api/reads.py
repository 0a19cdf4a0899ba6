"""Reader operations: golden records (by id, by source key), lineage, link explanations,
history and as-of, search, the changes feed and the duplicate-rate report."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import AwareDatetime, BaseModel
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, requires, role_extra
from api.context import ApiContext, context
from api.errors import ApiProblem, responses
from api.schemas import (
    MAX_ID,
    ChangeEventPublic,
    ChangesPage,
    GoldenPublic,
    HistoryPage,
    LineagePage,
    LineagePublic,
    LinkExplanationPublic,
    LinksPage,
    ReportPublic,
    SearchHitPublic,
    SearchPage,
    SnapshotPublic,
    SourceKeyPublic,
    SourceRecordPublic,
    WaterfallStepPublic,
)
from hub.history import HistoryEvent, reconstruct
from hub.model import SourceKey
from hub.services.keys import ApiRole
from hub.services.queue import waterfall
from hub.services.reports import ReportQuery, TrendBucket
from hub.services.search import SearchQuery

router = APIRouter(prefix="/v1")
READER = requires(ApiRole.READER)
GoldenId = Annotated[
    int, Path(ge=1, le=MAX_ID, description="A golden id; merged-away ids resolve.")
]
SourcePart = Annotated[str, Path(min_length=1, max_length=200)]
Ctx = Annotated[ApiContext, Depends(context)]
MAX_CHANGES_PAGE = 1000
MAX_WAIT_SECONDS = 60.0


@router.get(
    "/golden/{golden_id}",
    response_model=GoldenPublic,
    tags=["golden records"],
    summary="A golden record by id (a merged-away id answers with its survivor)",
    responses=responses(404),
    openapi_extra=role_extra(ApiRole.READER),
)
def get_golden(golden_id: GoldenId, ctx: Ctx, _: Principal = READER) -> Response:
    # The hot path: serialized once (a returned model would be validated again).
    return _json(GoldenPublic.of(ctx.services.read_golden(golden_id)))


def _json(model: BaseModel) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


@router.get(
    "/sources/{system}/{table}/{pk}/golden",
    response_model=GoldenPublic,
    tags=["golden records"],
    summary="The golden record a source row belongs to",
    responses=responses(404),
    openapi_extra=role_extra(ApiRole.READER),
)
def get_golden_by_source(
    system: SourcePart, table: SourcePart, pk: SourcePart, ctx: Ctx, _: Principal = READER
) -> GoldenPublic:
    return GoldenPublic.of(ctx.services.get_golden_by_source(SourceKey(system, table, pk)))


@router.get(
    "/sources/{system}/{table}/{pk}",
    response_model=SourceRecordPublic,
    tags=["golden records"],
    summary="A source record as the hub keeps it (latest image, link, validation errors)",
    responses=responses(404),
    openapi_extra=role_extra(ApiRole.READER),
)
def get_source_record(
    system: SourcePart, table: SourcePart, pk: SourcePart, ctx: Ctx, _: Principal = READER
) -> SourceRecordPublic:
    return SourceRecordPublic.of(ctx.services.get_source_record(SourceKey(system, table, pk)))


@router.get(
    "/golden/{golden_id}/lineage",
    response_model=LineagePage,
    tags=["golden records"],
    summary="Where every attribute's value came from and which rule chose it",
    responses=responses(404),
    openapi_extra=role_extra(ApiRole.READER),
)
def get_lineage(golden_id: GoldenId, ctx: Ctx, _: Principal = READER) -> LineagePage:
    golden = ctx.services.get_golden(golden_id)
    return LineagePage(
        golden_id=golden.id,
        requested_id=golden.requested_id,
        version=golden.version,
        lineage=[LineagePublic.of(entry) for entry in golden.lineage.values()],
    )


@router.get(
    "/golden/{golden_id}/links",
    response_model=LinksPage,
    tags=["golden records"],
    summary="Why each source record is linked: score, per-field weights, who decided",
    responses=responses(404),
    openapi_extra=role_extra(ApiRole.READER),
)
def get_links(golden_id: GoldenId, ctx: Ctx, _: Principal = READER) -> LinksPage:
    golden = ctx.services.get_golden(golden_id)
    return LinksPage(
        golden_id=golden.id,
        requested_id=golden.requested_id,
        links=[
            LinkExplanationPublic(
                source_record_id=link.source_record_id,
                source=SourceKeyPublic.of(link.key),
                decided_by=link.decided_by.value,
                decided_at=link.decided_at,
                score=link.score,
                matcher_version=link.matcher_version,
                explanation=None if link.explanation is None else dict(link.explanation),
                waterfall=[
                    WaterfallStepPublic.of(step) for step in waterfall(link.explanation or {})
                ],
            )
            for link in golden.sources
        ],
    )


@router.get(
    "/golden/{golden_id}/history",
    response_model=HistoryPage,
    tags=["golden records"],
    summary="The history of exactly this golden record, and its state at `as_of`",
    description=(
        "Events in commit order. With `as_of` (timezone required), only the events up to then "
        "and the state they fold to; `state` is null if the record did not exist yet. A "
        "merged-away record reads as itself, not its survivor."
    ),
    responses=responses(404),
    openapi_extra=role_extra(ApiRole.READER),
)
def get_history(
    golden_id: GoldenId,
    ctx: Ctx,
    as_of: Annotated[AwareDatetime | None, Query(description="ISO 8601 with offset")] = None,
    _: Principal = READER,
) -> HistoryPage:
    events = ctx.services.golden_history(golden_id)
    if as_of is not None:
        events = _until(events, as_of)
    state = reconstruct(events, as_of or datetime.max.replace(tzinfo=UTC))
    return HistoryPage(
        golden_id=golden_id,
        as_of=as_of,
        state=None if state is None else SnapshotPublic.of(state),
        events=[ChangeEventPublic.of(event) for event in events],
    )


def _until(events: list[HistoryEvent], as_of: datetime) -> list[HistoryEvent]:
    # The same rule as ``reconstruct``: the fold stops at the first later event.
    kept = []
    for event in events:
        if event.occurred_at > as_of:
            break
        kept.append(event)
    return kept


@router.get(
    "/search",
    response_model=SearchPage,
    tags=["golden records"],
    summary="Fuzzy search by name, e-mail, phone or tax id (through the matching engine)",
    responses=responses(),
    openapi_extra=role_extra(ApiRole.READER),
)
def search(
    ctx: Ctx,
    name: Annotated[str | None, Query(max_length=200)] = None,
    email: Annotated[str | None, Query(max_length=254)] = None,
    phone: Annotated[str | None, Query(max_length=64)] = None,
    tax_id: Annotated[str | None, Query(max_length=64)] = None,
    country: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    _: Principal = READER,
) -> SearchPage:
    query = SearchQuery(
        name=name, email=email, phone=phone, tax_id=tax_id, country=country, limit=limit
    )
    if query.empty:
        raise ApiProblem(
            422, "invalid_request", "give at least one of name, email, phone or tax_id"
        )
    return SearchPage(hits=[SearchHitPublic.of(h) for h in ctx.services.search_golden(query)])


@router.get(
    "/changes",
    response_model=ChangesPage,
    tags=["changes feed"],
    summary="Golden changes after a cursor, in commit order (long-poll with `wait`)",
    description=(
        "Every golden change exactly once, in commit order: pass the `next_cursor` of a page "
        "as the next `after`. The hub numbers history under a commit-order lock, so a change "
        "that commits later never gets a lower number than one already visible. With "
        "`wait` > 0 and nothing new, the request is held until a change arrives or `wait` "
        "seconds pass (then `events` is empty)."
    ),
    responses=responses(),
    openapi_extra=role_extra(ApiRole.READER),
)
async def changes(
    ctx: Ctx,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="Last sequence seen (0: start)")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_CHANGES_PAGE)] = 500,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS, description="Seconds")] = 0.0,
    _: Principal = READER,
) -> Response:
    deadline = time.monotonic() + min(wait, ctx.settings.changes_max_wait)
    interval = ctx.settings.changes_poll_interval
    while True:
        events = await run_in_threadpool(ctx.services.change_records_after, after, limit)
        if events or time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(interval, max(deadline - time.monotonic(), 0.0)))
        interval = min(interval * 2, 0.5)
    # The hot path: rows straight to JSON in the ChangesPage shape (no per-event models).
    page = {
        "events": events,
        "next_cursor": events[-1]["sequence"] if events else after,
        "has_more": len(events) == limit,
    }
    return Response(json.dumps(page, ensure_ascii=False), media_type="application/json")


@router.get(
    "/reports/duplicates",
    response_model=ReportPublic,
    tags=["reports"],
    summary="The duplicate-rate report (overall, per system, coverage, trend, queue, sync)",
    responses=responses(),
    openapi_extra=role_extra(ApiRole.READER),
)
def duplicate_report(
    ctx: Ctx,
    days: Annotated[int, Query(ge=1, le=3660, description="Window: the last N days")] = 30,
    bucket: TrendBucket = TrendBucket.DAY,
    sla_hours: Annotated[float | None, Query(gt=0, le=24 * 365)] = None,
    _: Principal = READER,
) -> ReportPublic:
    sla = sla_hours if sla_hours is not None else ctx.settings.review_sla_hours
    query = ReportQuery(
        since=datetime.now(UTC) - timedelta(days=days), bucket=bucket, sla=timedelta(hours=sla)
    )
    report = ctx.services.duplicate_report(query)
    return ReportPublic(
        generated_at=report.generated_at,
        since=query.since,
        bucket=bucket.value,
        sla_hours=sla,
        sections=report.records(),
    )
