"""The application factory: ``create_app(services, settings)`` builds a FastAPI app around
hub services handed in by the composition root (``mdh serve``, tests, benches)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api import admin, reads, steward, system, ui
from api.auth import Authenticator
from api.context import ApiContext, ApiSettings, DeadLetterReplayer
from api.errors import ApiProblem, install_error_handlers
from api.metrics import MetricsMiddleware, RequestMetrics
from api.schemas import storable_text
from hub.services import HubServices

DESCRIPTION = """\
Golden customer records built from CRM, billing and ERP changes, the changes feed, the
stewards' review queue and decisions, and duplicate-rate reports.

Send an API key as `Authorization: Bearer <token>` (`mdh keys create --role ...`). Roles:
**reader** (golden reads, changes feed, reports), **steward** (also the review queue, decisions,
merges, unmerges, pins, dead-letter views, audit log), **admin** (also keys and dead-letter
replay). Each operation names its role in `x-required-role`. Health and metrics are public.

Every error has the same body: `{"error": {"status", "code", "message", "details"}}`.
"""


def _allowed_query(request: Request, route: APIRoute) -> frozenset[str]:
    cache: dict[str, frozenset[str]] = request.app.state.mdh.extra.setdefault("query_names", {})
    key = f"{route.path} {sorted(route.methods or ())}"
    names = cache.get(key)
    if names is None:
        names = frozenset(_query_names(route.dependant))
        cache[key] = names
    return names


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def check_input(request: Request) -> None:
    """Refuse unknown query parameters, and text PostgreSQL cannot store, before anything
    else looks at the request (422 in the common error shape)."""
    route = request.scope.get("route")
    if isinstance(route, APIRoute):
        unknown = sorted(set(request.query_params.keys()) - _allowed_query(request, route))
        if unknown:
            raise ApiProblem(
                422,
                "invalid_request",
                f"unknown query parameter(s): {', '.join(unknown)}",
                {"unknown": unknown, "allowed": sorted(_allowed_query(request, route))},
            )
    for where, values in (
        ("path", list(request.path_params.values())),
        ("query", [v for _, v in request.query_params.multi_items()]),
    ):
        for value in values:
            if isinstance(value, str):
                try:
                    storable_text(value)
                except ValueError as exc:
                    raise ApiProblem(422, "invalid_request", f"{where}: {exc}") from exc


def create_app(
    services: HubServices,
    settings: ApiSettings | None = None,
    *,
    capture_status: Callable[[], Mapping[str, Any] | None] | None = None,
    replayer: DeadLetterReplayer | None = None,
) -> FastAPI:
    """The API and steward pages over ``services``.

    Args:
        capture_status: the live lag metrics of the capture process (readiness and /metrics
            show them when given).
        replayer: re-parses and applies a dead letter (admin replay); without it replay
            answers 409.
    """
    settings = settings or ApiSettings()
    app = FastAPI(
        title=f"{settings.title} API",
        version="1",
        description=DESCRIPTION,
        dependencies=[Depends(check_input)],
        openapi_tags=[
            {"name": "golden records", "description": "Golden records, lineage, history"},
            {"name": "changes feed", "description": "Every golden change, in commit order"},
            {"name": "review", "description": "The stewards' queue and decisions"},
            {"name": "steward actions", "description": "Merge, unmerge, pin, link"},
            {"name": "dead letters", "description": "What capture could not apply"},
            {"name": "keys", "description": "API keys (admin)"},
            {"name": "reports", "description": "Duplicate rates and KPIs"},
            {"name": "operations", "description": "Health and metrics"},
        ],
    )
    metrics = RequestMetrics()
    app.state.mdh = ApiContext(
        services=services,
        settings=settings,
        authenticator=Authenticator(services, settings.auth_cache_seconds),
        metrics=metrics,
        capture_status=capture_status,
        replayer=replayer,
    )
    install_error_handlers(app)
    app.include_router(reads.router)
    app.include_router(steward.router)
    app.include_router(admin.router)
    app.include_router(system.router)
    app.include_router(ui.router)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
