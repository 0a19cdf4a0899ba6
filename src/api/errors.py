"""Hub errors to HTTP status codes, and the one JSON error shape every error body has:

    {"error": {"status": 404, "code": "golden_record_not_found", "message": "...", "details": {}}}

``HTTPException`` is raised only in ``api/``; hub services raise hub errors, mapped here.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.errors import (
    ConcurrentUpdateError,
    GoldenRecordNotActiveError,
    GoldenRecordNotFoundError,
    HubError,
    InvalidPinError,
    InvalidStewardActionError,
    ReviewTaskNotFoundError,
    SchemaNotReadyError,
    SourceRecordNotFoundError,
    SourceRecordNotLinkedError,
    StaleVersionError,
    StoreUnavailableError,
)
from hub.services.keys import ApiKeyNotFoundError, InvalidApiKeyNameError
from hub.services.queue import DeadLetterNotFoundError

logger = logging.getLogger("api")

# (status, code) per hub error; the first matching class wins (subclasses first).
HUB_ERRORS: tuple[tuple[type[HubError], int, str], ...] = (
    (GoldenRecordNotFoundError, 404, "golden_record_not_found"),
    (SourceRecordNotFoundError, 404, "source_record_not_found"),
    (SourceRecordNotLinkedError, 404, "source_record_not_linked"),
    (ReviewTaskNotFoundError, 404, "review_task_not_found"),
    (DeadLetterNotFoundError, 404, "dead_letter_not_found"),
    (ApiKeyNotFoundError, 404, "api_key_not_found"),
    (StaleVersionError, 409, "stale_version"),
    (GoldenRecordNotActiveError, 409, "golden_record_not_active"),
    (InvalidStewardActionError, 409, "invalid_steward_action"),
    (InvalidPinError, 422, "invalid_pin"),
    (InvalidApiKeyNameError, 422, "invalid_api_key_name"),
    (StoreUnavailableError, 503, "store_unavailable"),
    (ConcurrentUpdateError, 503, "concurrent_update"),
    (SchemaNotReadyError, 503, "schema_not_ready"),
)


class ErrorBody(BaseModel):
    status: int
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    """Every error the API returns has this shape."""

    error: ErrorBody


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorResponse(
        error=ErrorBody(status=status, code=code, message=message, details=details)
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def hub_error_status(exc: HubError) -> tuple[int, str]:
    for kind, status, code in HUB_ERRORS:
        if isinstance(exc, kind):
            return status, code
    return 400, "bad_request"


def _details(exc: HubError) -> dict[str, Any]:
    return {
        name: (str(value) if not isinstance(value, int | str | float | bool | None) else value)
        for name, value in vars(exc).items()
        if not name.startswith("_")
    }


class ApiProblem(HTTPException):
    """An HTTP error with a machine-readable code (rendered in the common shape)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code
        self.details = details


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HubError)
    async def hub_error(request: Request, exc: HubError) -> JSONResponse:
        status, code = hub_error_status(exc)
        headers = {"Retry-After": "1"} if status == 503 else None
        return error_response(status, code, str(exc), _details(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "location": ".".join(str(part) for part in error.get("loc", ())),
                "message": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
            for error in exc.errors()
        ]
        summary = "; ".join(f"{p['location']}: {p['message']}" for p in problems[:5])
        return error_response(422, "invalid_request", summary or "invalid request", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = getattr(exc, "code", None) or {
            400: "bad_request",
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
        }.get(exc.status_code, "http_error")
        return error_response(
            exc.status_code,
            code,
            str(exc.detail),
            getattr(exc, "details", None),
            dict(exc.headers) if exc.headers else None,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error; see the server log")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (401, "No valid API key"),
        (403, "The key's role may not do this"),
        (422, "Invalid input"),
    )
}
"""Responses every authenticated operation documents."""


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for these error statuses, plus the common ones."""
    described = {
        400: "Bad input",
        404: "Not found",
        409: "Conflicts with the current state",
        503: "The store is unavailable; retry",
    }
    result = dict(ERROR_RESPONSES)
    for status in statuses:
        result[status] = {"model": ErrorResponse, "description": described.get(status, "Error")}
    return result
