"""Liveness, readiness (database reachable, capture lag) and Prometheus metrics. Public: probes
and scrapers do not carry API keys, and nothing here names a customer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse

from api.auth import role_extra
from api.context import ApiContext, context
from api.metrics import capture_lines, store_lines
from api.schemas import LiveStatus, ReadyStatus
from hub.errors import HubError

router = APIRouter()
Ctx = Annotated[ApiContext, Depends(context)]
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


@router.get(
    "/health/live",
    response_model=LiveStatus,
    tags=["operations"],
    summary="The process is up",
    openapi_extra=role_extra(None),
)
def live() -> LiveStatus:
    return LiveStatus(status="ok")


@router.get(
    "/health/ready",
    response_model=ReadyStatus,
    tags=["operations"],
    summary="The hub database answers; capture streams and their lag",
    responses={503: {"model": ReadyStatus, "description": "The database is unreachable"}},
    openapi_extra=role_extra(None),
)
def ready(ctx: Ctx) -> Any:
    now = datetime.now(UTC)
    try:
        status = ctx.services.store_status()
    except HubError as exc:
        body = ReadyStatus(status="not_ready", database="unreachable", detail=str(exc))
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    capture: dict[str, Any] = {
        "streams": [
            {
                "source": source,
                "partition": partition,
                "offset": offset,
                "applied_at": applied_at.isoformat(),
                "seconds_since_applied": max((now - applied_at).total_seconds(), 0.0),
            }
            for source, partition, offset, applied_at in status.applied
        ],
        "last_source_commit": {k: v.isoformat() for k, v in status.last_source_commit.items()},
    }
    if ctx.capture_status is not None:
        live_metrics = ctx.capture_status()
        if live_metrics is not None:
            capture["live"] = dict(live_metrics)
    return ReadyStatus(status="ready", database="ok", capture=capture)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    tags=["operations"],
    summary="Prometheus metrics (text exposition format 0.0.4)",
    responses={200: {"content": {PROMETHEUS: {}}, "description": "Metrics"}},
    openapi_extra=role_extra(None),
)
def metrics(ctx: Ctx) -> PlainTextResponse:
    lines = ctx.metrics.lines()
    try:
        lines += store_lines(ctx.services.store_status(), datetime.now(UTC))
        up = 1
    except HubError:
        up = 0
    lines += ["# HELP mdh_store_up The hub database answered.", "# TYPE mdh_store_up gauge"]
    lines.append(f"mdh_store_up {up}")
    if ctx.capture_status is not None:
        lines += capture_lines(ctx.capture_status())
    return PlainTextResponse("\n".join(lines) + "\n", media_type=PROMETHEUS)
