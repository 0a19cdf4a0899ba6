"""What the app is built with: the hub services, API settings and optional collaborators the
composition root provides (capture lag, dead-letter replay). Kept on ``app.state.mdh``; no
globals, no environment reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import Request

from api.auth import Authenticator
from api.metrics import RequestMetrics
from hub.services import HubServices
from hub.services.queue import DeadLetterView


@dataclass(frozen=True)
class ReplayOutcome:
    applied: bool
    detail: str


class DeadLetterReplayer(Protocol):
    """Parses and maps a dead letter's raw message again and applies it (``mdh`` wires the
    CDC code in; the API never imports it)."""

    def __call__(self, letter: DeadLetterView) -> ReplayOutcome: ...


@dataclass(frozen=True)
class ApiSettings:
    auth_cache_seconds: float = 5.0
    """How long a checked key is trusted without asking the database again."""
    changes_max_wait: float = 30.0
    """The longest a changes long-poll is held open (a larger ``wait`` is cut to this)."""
    changes_poll_interval: float = 0.05
    review_sla_hours: float = 48.0
    secure_cookies: bool = False
    """Mark the steward pages' cookie Secure (behind HTTPS)."""
    title: str = "mdh"


@dataclass
class ApiContext:
    services: HubServices
    settings: ApiSettings
    authenticator: Authenticator
    metrics: RequestMetrics
    capture_status: Callable[[], Mapping[str, Any] | None] | None = None
    replayer: DeadLetterReplayer | None = None
    extra: dict[str, Any] = field(default_factory=dict)


async def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.mdh
    return ctx
