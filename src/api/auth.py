"""API keys in requests: ``Authorization: Bearer <token>`` (or the steward pages' cookie),
checked against the hub's hashed keys, and the role each operation needs.

Each operation declares its role with ``requires(role)``; the role is also written into the
operation's OpenAPI (``x-required-role``), which is what the role tests enumerate.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.errors import ApiProblem
from hub.services import HubServices
from hub.services.keys import ApiKey, ApiRole, AuditContext

COOKIE = "mdh_key"
ROLE_EXTENSION = "x-required-role"

bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `mdh keys create --role reader|steward|admin`.",
)


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


@dataclass(frozen=True)
class Principal:
    key: ApiKey

    @property
    def actor(self) -> str:
        return self.key.name

    @property
    def role(self) -> ApiRole:
        return self.key.role

    def audit(self) -> AuditContext:
        return AuditContext(actor=self.actor, role=self.role)


class Authenticator:
    """Checks tokens against the hub, remembering good ones for ``cache_seconds`` (a revoke
    through this process forgets them at once; one elsewhere takes effect within the TTL)."""

    def __init__(
        self,
        services: HubServices,
        cache_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._services = services
        self._ttl = cache_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[ApiKey, float]] = {}

    def cached(self, token: str) -> ApiKey | None:
        """The key of a token checked less than ``cache_seconds`` ago (no database call)."""
        if self._ttl <= 0:
            return None
        with self._lock:
            hit = self._cache.get(_digest(token))
        if hit is not None and hit[1] > self._monotonic():
            return hit[0]
        return None

    def authenticate(self, token: str) -> ApiKey | None:
        hit = self.cached(token)
        if hit is not None:
            return hit
        key = self._services.authenticate(token)
        if key is not None and self._ttl > 0:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[_digest(token)] = (key, self._monotonic() + self._ttl)
        return key

    def forget(self, key_id: int) -> None:
        with self._lock:
            for digest in [d for d, (k, _) in self._cache.items() if k.id == key_id]:
                del self._cache[digest]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_of(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    if credentials is not None and credentials.scheme.lower() == "bearer":
        return credentials.credentials
    cookie = request.cookies.get(COOKIE)
    return cookie or None


def _principal(key: ApiKey | None, role: ApiRole) -> Principal:
    if key is None:
        raise ApiProblem(
            401,
            "unauthorized",
            "unknown or revoked API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not key.role.allows(role):
        raise ApiProblem(
            403,
            "forbidden",
            f"this operation needs the {role.value} role; the key has {key.role.value}",
            {"required_role": role.value, "key_role": key.role.value},
        )
    return Principal(key)


def _token_or_401(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
    token = token_of(request, credentials)
    if token is None:
        raise ApiProblem(
            401,
            "unauthorized",
            "an API key is required (Bearer)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token


def authenticate_request(
    request: Request, credentials: HTTPAuthorizationCredentials | None, role: ApiRole
) -> Principal:
    """Blocking form (may ask the database), for code already off the event loop."""
    authenticator: Authenticator = request.app.state.mdh.authenticator
    token = _token_or_401(request, credentials)
    return _principal(authenticator.authenticate(token), role)


def requires(role: ApiRole) -> Any:
    """A dependency giving the request's ``Principal``, or 401/403. A recently checked key is
    answered from memory on the event loop; otherwise the database is asked off the loop."""

    async def dependency(request: Request, credentials: BearerCredentials) -> Principal:
        authenticator: Authenticator = request.app.state.mdh.authenticator
        token = _token_or_401(request, credentials)
        key = authenticator.cached(token)
        if key is None:
            key = await run_in_threadpool(authenticator.authenticate, token)
        return _principal(key, role)

    return Depends(dependency)


def role_extra(role: ApiRole | None) -> dict[str, Any]:
    """``openapi_extra`` naming the role an operation needs (None: public)."""
    return {ROLE_EXTENSION: "public" if role is None else role.value}
