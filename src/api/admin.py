"""Dead-letter views (stewards) and replay/discard, API keys (admins)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, requires, role_extra
from api.context import ApiContext, context
from api.errors import ApiProblem, responses
from api.schemas import (
    MAX_ID,
    ApiKeyCreate,
    ApiKeyIssued,
    ApiKeyPage,
    ApiKeyPublic,
    DeadLetterPage,
    DeadLetterPublic,
    DiscardCreate,
    ReplayPublic,
)
from hub.services.keys import ApiRole

router = APIRouter(prefix="/v1")
STEWARD = requires(ApiRole.STEWARD)
ADMIN = requires(ApiRole.ADMIN)
Ctx = Annotated[ApiContext, Depends(context)]
LetterId = Annotated[int, Path(ge=1, le=MAX_ID)]
KeyId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get(
    "/dead-letters",
    response_model=DeadLetterPage,
    tags=["dead letters"],
    summary="Messages capture could not parse or map, with the reason",
    responses=responses(),
    openapi_extra=role_extra(ApiRole.STEWARD),
)
def dead_letters(
    ctx: Ctx,
    status: Literal["open", "replayed", "discarded"] | None = None,
    source: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    _: Principal = STEWARD,
) -> DeadLetterPage:
    letters = ctx.services.dead_letters(
        status=status, source=source, after_id=after_id, limit=limit
    )
    return DeadLetterPage(
        items=[DeadLetterPublic.of(letter, raw=False) for letter in letters],
        next_after_id=letters[-1].id if len(letters) == limit else None,
    )


@router.get(
    "/dead-letters/{dead_letter_id}",
    response_model=DeadLetterPublic,
    tags=["dead letters"],
    summary="One dead letter with its raw key and value (text and base64)",
    responses=responses(404),
    openapi_extra=role_extra(ApiRole.STEWARD),
)
def dead_letter(dead_letter_id: LetterId, ctx: Ctx, _: Principal = STEWARD) -> DeadLetterPublic:
    return DeadLetterPublic.of(ctx.services.dead_letter(dead_letter_id), raw=True)


@router.post(
    "/dead-letters/{dead_letter_id}/replay",
    response_model=ReplayPublic,
    tags=["dead letters"],
    summary="Parse, map and apply the raw message again (after the mapping was fixed)",
    description=(
        "Applies the change if it now parses and maps (an already newer row is left alone, as "
        "for any redelivery) and marks the letter `replayed`. If it still fails, the letter "
        "stays open and the answer is 409 with the reason. Needs a server started by "
        "`mdh serve` with a config that has source mappings."
    ),
    responses=responses(404, 409),
    openapi_extra=role_extra(ApiRole.ADMIN),
)
async def replay(dead_letter_id: LetterId, ctx: Ctx, principal: Principal = ADMIN) -> ReplayPublic:
    letter = await run_in_threadpool(ctx.services.dead_letter, dead_letter_id)
    if ctx.replayer is None:
        raise ApiProblem(
            409, "replay_unavailable", "this server has no source mappings to replay with"
        )
    if letter.status != "open":
        raise ApiProblem(409, "not_open", f"dead letter {dead_letter_id} is {letter.status}")
    outcome = await run_in_threadpool(ctx.replayer, letter)
    if not outcome.applied:
        raise ApiProblem(409, "replay_failed", outcome.detail, {"dead_letter_id": dead_letter_id})
    updated = await run_in_threadpool(
        lambda: ctx.services.desk(principal.audit()).set_dead_letter_status(
            dead_letter_id, "replayed", reason="replayed", details={"outcome": outcome.detail}
        )
    )
    return ReplayPublic(
        dead_letter=DeadLetterPublic.of(updated, raw=False), replayed=True, detail=outcome.detail
    )


@router.post(
    "/dead-letters/{dead_letter_id}/discard",
    response_model=DeadLetterPublic,
    tags=["dead letters"],
    summary="Mark a dead letter as deliberately not applied",
    responses=responses(404),
    openapi_extra=role_extra(ApiRole.ADMIN),
)
def discard(
    dead_letter_id: LetterId, body: DiscardCreate, ctx: Ctx, principal: Principal = ADMIN
) -> DeadLetterPublic:
    letter = ctx.services.desk(principal.audit()).set_dead_letter_status(
        dead_letter_id, "discarded", reason=body.reason
    )
    return DeadLetterPublic.of(letter, raw=False)


@router.get(
    "/keys",
    response_model=ApiKeyPage,
    tags=["keys"],
    summary="API keys (never their tokens)",
    responses=responses(),
    openapi_extra=role_extra(ApiRole.ADMIN),
)
def list_keys(ctx: Ctx, _: Principal = ADMIN) -> ApiKeyPage:
    return ApiKeyPage(items=[ApiKeyPublic.of(k) for k in ctx.services.api_keys()])


@router.post(
    "/keys",
    response_model=ApiKeyIssued,
    status_code=201,
    tags=["keys"],
    summary="Create a key; the token is in this answer and nowhere else",
    responses=responses(),
    openapi_extra=role_extra(ApiRole.ADMIN),
)
def create_key(body: ApiKeyCreate, ctx: Ctx, principal: Principal = ADMIN) -> ApiKeyIssued:
    issued = ctx.services.desk(principal.audit()).create_api_key(body.name, body.role)
    return ApiKeyIssued(key=ApiKeyPublic.of(issued.key), token=issued.token)


@router.delete(
    "/keys/{key_id}",
    response_model=ApiKeyPublic,
    tags=["keys"],
    summary="Revoke a key (at once in this process; not the key making the request)",
    responses=responses(404, 409),
    openapi_extra=role_extra(ApiRole.ADMIN),
)
def revoke_key(key_id: KeyId, ctx: Ctx, principal: Principal = ADMIN) -> ApiKeyPublic:
    if key_id == principal.key.id:
        # An admin locking themselves out by mistake would need a shell to get back in.
        raise ApiProblem(409, "own_key", "a key cannot revoke itself; use another admin key")
    key = ctx.services.desk(principal.audit()).revoke_api_key(key_id)
    ctx.authenticator.forget(key_id)
    return ApiKeyPublic.of(key)
