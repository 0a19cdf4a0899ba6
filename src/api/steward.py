"""Steward operations: the review queue, task detail, decisions (one or in bulk), merge,
unmerge (with preview), pin/unpin, link/unlink, invalid records and the audit log.

Every write goes through ``HubServices.desk(principal)``, which audits it in the same
transaction (who, what, when, why)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.auth import Principal, requires, role_extra
from api.context import ApiContext, context
from api.errors import hub_error_status, responses
from api.schemas import (
    MAX_ID,
    AuditEntryPublic,
    AuditPage,
    BulkDecisionCreate,
    BulkDecisionPage,
    BulkOutcomePublic,
    DecisionCreate,
    GoldenPublic,
    LinkCreate,
    MergeCreate,
    PinCreate,
    QueueItemPublic,
    QueuePagePublic,
    ReviewTaskPublic,
    SourceRecordPage,
    SourceRecordPublic,
    TaskDetailPublic,
    UnlinkCreate,
    UnmergeCreate,
    UnmergePreviewCreate,
    UnmergePreviewPublic,
    UnmergePublic,
)
from hub.model import GOLDEN_ATTRIBUTES, SourceKey
from hub.records import ReviewKind, ReviewStatus
from hub.services.desk import BulkDecision
from hub.services.keys import ApiRole
from hub.services.queue import QueueQuery, QueueSort

router = APIRouter(prefix="/v1")
STEWARD = requires(ApiRole.STEWARD)
Ctx = Annotated[ApiContext, Depends(context)]
GoldenId = Annotated[int, Path(ge=1, le=MAX_ID)]
TaskId = Annotated[int, Path(ge=1, le=MAX_ID)]
SourcePart = Annotated[str, Path(min_length=1, max_length=200)]
Attribute = Annotated[str, Path(description="A golden attribute", pattern=r"^[a-z_]{1,40}$")]
EXTRA = role_extra(ApiRole.STEWARD)


def _sla(ctx: ApiContext) -> float:
    return ctx.settings.review_sla_hours * 3600.0


@router.get(
    "/review/tasks",
    response_model=QueuePagePublic,
    tags=["review"],
    summary="The review queue, filtered and sorted (priority = uncertainty x impact)",
    responses=responses(),
    openapi_extra=EXTRA,
)
def review_queue(
    ctx: Ctx,
    status: Annotated[list[ReviewStatus] | None, Query(max_length=4)] = None,
    kind: ReviewKind | None = None,
    system: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    older_than_hours: Annotated[float | None, Query(ge=0, le=24 * 3660)] = None,
    sort: QueueSort = QueueSort.PRIORITY,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    _: Principal = STEWARD,
) -> QueuePagePublic:
    query = QueueQuery(
        statuses=tuple(status) if status else (ReviewStatus.OPEN,),
        kind=kind,
        system=system,
        min_score=min_score,
        max_score=max_score,
        older_than=None if older_than_hours is None else timedelta(hours=older_than_hours),
        sort=sort,
        limit=limit,
        offset=offset,
    )
    page = ctx.services.review_queue(query)
    return QueuePagePublic(
        items=[QueueItemPublic.of(item, _sla(ctx)) for item in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get(
    "/review/tasks/{task_id}",
    response_model=TaskDetailPublic,
    tags=["review"],
    summary="A task: both records side by side, differences, score explanation and waterfall",
    responses=responses(404),
    openapi_extra=EXTRA,
)
def review_task(task_id: TaskId, ctx: Ctx, _: Principal = STEWARD) -> TaskDetailPublic:
    return TaskDetailPublic.of(ctx.services.review_task_detail(task_id), _sla(ctx))


@router.post(
    "/review/tasks/{task_id}/decision",
    response_model=ReviewTaskPublic,
    tags=["review"],
    summary="Decide a task: match, no_match (never suggested again) or defer",
    responses=responses(404, 409),
    openapi_extra=EXTRA,
)
def decide(
    task_id: TaskId, body: DecisionCreate, ctx: Ctx, principal: Principal = STEWARD
) -> ReviewTaskPublic:
    desk = ctx.services.desk(principal.audit())
    return ReviewTaskPublic.of(desk.decide_review_task(task_id, body.decision, reason=body.reason))


@router.post(
    "/review/decisions",
    response_model=BulkDecisionPage,
    tags=["review"],
    summary="Decide several tasks; each is its own transaction and reports its own outcome",
    responses=responses(),
    openapi_extra=EXTRA,
)
def decide_bulk(
    body: BulkDecisionCreate, ctx: Ctx, principal: Principal = STEWARD
) -> BulkDecisionPage:
    desk = ctx.services.desk(principal.audit())
    outcomes = desk.decide_review_tasks(
        [BulkDecision(d.task_id, d.decision, d.reason) for d in body.decisions]
    )
    results = []
    for outcome in outcomes:
        error = None
        if outcome.error is not None:
            status, code = hub_error_status(outcome.error)
            error = {"status": status, "code": code, "message": str(outcome.error)}
        results.append(
            BulkOutcomePublic(
                task_id=outcome.task_id,
                ok=outcome.error is None,
                task=None if outcome.task is None else ReviewTaskPublic.of(outcome.task),
                error=error,
            )
        )
    failed = sum(1 for r in results if not r.ok)
    return BulkDecisionPage(results=results, decided=len(results) - failed, failed=failed)


@router.post(
    "/golden/merge",
    response_model=GoldenPublic,
    tags=["steward actions"],
    summary="Merge two golden records; the survivor keeps its id, the other resolves to it",
    responses=responses(404, 409),
    openapi_extra=EXTRA,
)
def merge(body: MergeCreate, ctx: Ctx, principal: Principal = STEWARD) -> GoldenPublic:
    expected = (
        None
        if body.expected_versions is None
        else {_golden_key(k): v for k, v in body.expected_versions.items()}
    )
    golden = ctx.services.desk(principal.audit()).merge_golden(
        body.survivor_id, body.merged_id, reason=body.reason, expected_versions=expected
    )
    return GoldenPublic.of(golden)


def _golden_key(text: str) -> int:
    from api.errors import ApiProblem

    if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        raise ApiProblem(422, "invalid_request", f"expected_versions: {text!r} is not a golden id")
    return int(text)


@router.post(
    "/golden/{golden_id}/unmerge/preview",
    response_model=UnmergePreviewPublic,
    tags=["steward actions"],
    summary="What an unmerge would do, per source system, without doing it",
    responses=responses(404, 409),
    openapi_extra=EXTRA,
)
def unmerge_preview(
    golden_id: GoldenId, body: UnmergePreviewCreate, ctx: Ctx, _: Principal = STEWARD
) -> UnmergePreviewPublic:
    return UnmergePreviewPublic.of(ctx.services.unmerge_preview(golden_id, body.source_record_ids))


@router.post(
    "/golden/{golden_id}/unmerge",
    response_model=UnmergePublic,
    tags=["steward actions"],
    summary="Split source records off a golden record (the majority keeps the id)",
    responses=responses(404, 409),
    openapi_extra=EXTRA,
)
def unmerge(
    golden_id: GoldenId, body: UnmergeCreate, ctx: Ctx, principal: Principal = STEWARD
) -> UnmergePublic:
    kept, split = ctx.services.desk(principal.audit()).unmerge(
        golden_id, body.source_record_ids, reason=body.reason
    )
    return UnmergePublic(kept=GoldenPublic.of(kept), split=GoldenPublic.of(split))


@router.put(
    "/golden/{golden_id}/pins/{attribute}",
    response_model=GoldenPublic,
    tags=["steward actions"],
    summary="Pin an attribute to a value; it beats every rule until unpinned",
    description=f"Attributes: {', '.join(GOLDEN_ATTRIBUTES)}.",
    responses=responses(404, 409),
    openapi_extra=EXTRA,
)
def pin(
    golden_id: GoldenId,
    attribute: Attribute,
    body: PinCreate,
    ctx: Ctx,
    principal: Principal = STEWARD,
) -> GoldenPublic:
    golden = ctx.services.desk(principal.audit()).pin_attribute(
        golden_id,
        attribute,
        body.value,
        reason=body.reason,
        expected_version=body.expected_version,
    )
    return GoldenPublic.of(golden)


@router.delete(
    "/golden/{golden_id}/pins/{attribute}",
    response_model=GoldenPublic,
    tags=["steward actions"],
    summary="Lift a pin; survivorship rules decide the attribute again",
    responses=responses(404, 409),
    openapi_extra=EXTRA,
)
def unpin(
    golden_id: GoldenId,
    attribute: Attribute,
    ctx: Ctx,
    reason: Annotated[str, Query(min_length=1, max_length=2000)],
    expected_version: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    principal: Principal = STEWARD,
) -> GoldenPublic:
    golden = ctx.services.desk(principal.audit()).unpin_attribute(
        golden_id, attribute, reason=reason, expected_version=expected_version
    )
    return GoldenPublic.of(golden)


@router.post(
    "/sources/{system}/{table}/{pk}/link",
    response_model=GoldenPublic,
    tags=["steward actions"],
    summary="Link a source record to a golden record (a steward decision)",
    responses=responses(404, 409),
    openapi_extra=EXTRA,
)
def link(
    system: SourcePart,
    table: SourcePart,
    pk: SourcePart,
    body: LinkCreate,
    ctx: Ctx,
    principal: Principal = STEWARD,
) -> GoldenPublic:
    golden = ctx.services.desk(principal.audit()).link(
        SourceKey(system, table, pk), body.golden_id, reason=body.reason
    )
    return GoldenPublic.of(golden)


@router.post(
    "/sources/{system}/{table}/{pk}/unlink",
    response_model=GoldenPublic,
    tags=["steward actions"],
    summary="Detach a source record into a golden record of its own",
    responses=responses(404, 409),
    openapi_extra=EXTRA,
)
def unlink(
    system: SourcePart,
    table: SourcePart,
    pk: SourcePart,
    body: UnlinkCreate,
    ctx: Ctx,
    principal: Principal = STEWARD,
) -> GoldenPublic:
    golden = ctx.services.desk(principal.audit()).unlink(
        SourceKey(system, table, pk), reason=body.reason
    )
    return GoldenPublic.of(golden)


@router.get(
    "/invalid-records",
    response_model=SourceRecordPage,
    tags=["review"],
    summary="Source records kept with validation errors, to fix at the source",
    responses=responses(),
    openapi_extra=EXTRA,
)
def invalid_records(
    ctx: Ctx,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    _: Principal = STEWARD,
) -> SourceRecordPage:
    records = ctx.services.invalid_source_records(after_id=after_id, limit=limit)
    return SourceRecordPage(
        items=[SourceRecordPublic.of(r) for r in records],
        next_after_id=records[-1].id if len(records) == limit else None,
    )


@router.get(
    "/audit",
    response_model=AuditPage,
    tags=["review"],
    summary="The audit log of steward and admin actions, newest first",
    responses=responses(),
    openapi_extra=EXTRA,
)
def audit_log(
    ctx: Ctx,
    actor: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    target: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    action: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    _: Principal = STEWARD,
) -> AuditPage:
    entries = ctx.services.audit_log(
        actor=actor, target=target, action=action, before_id=before_id, limit=limit
    )
    return AuditPage(items=[AuditEntryPublic.of(e) for e in entries])
