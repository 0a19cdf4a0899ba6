"""Where the hub database is: the embedded server under MDH_HOME, or MDH_DATABASE_URL."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType

from mdh.embedded_pg import EmbeddedPostgres
from mdh.settings import Settings


@dataclass(frozen=True)
class DatabaseTarget:
    """The hub database a command will use, and the embedded server behind it (if any)."""

    url: str
    server: EmbeddedPostgres | None

    @property
    def external(self) -> bool:
        return self.server is None


def embedded_server(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.pg_dir, port=settings.pg_port)


def resolve_database(settings: Settings, *, start: bool) -> DatabaseTarget:
    """The hub database for this process.

    With MDH_DATABASE_URL set, that server is used and no embedded server is ever started.
    Otherwise the embedded server under MDH_HOME is used, started first when ``start``.
    """
    if settings.database_url is not None:
        return DatabaseTarget(_sqlalchemy_url(settings.database_url.get_secret_value()), None)
    server = embedded_server(settings)
    if start:
        server.start()
        server.ensure_database(settings.database_name)
    return DatabaseTarget(server.url(settings.database_name), server)


def _sqlalchemy_url(url: str) -> str:
    # Accept the libpq spelling users paste (postgresql://, postgres://) and use psycopg 3.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def setup_logging(settings: Settings) -> None:
    """Log records to stderr at the configured level (the commands that run services)."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, logger: logging.Logger, then: str) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM set ``stop`` (and log ``stopping after <then>``) instead
    of interrupting: the work in flight finishes, then the caller stops."""

    def handler(signum: int, frame: FrameType | None) -> None:
        logger.info("signal %d: stopping after %s", signum, then)
        stop.set()

    with handling_signals(handler):
        yield


@contextlib.contextmanager
def handling_signals(
    handler: Callable[[int, FrameType | None], None],
) -> Iterator[None]:
    """While inside, ``handler`` takes SIGINT and SIGTERM; the previous handlers come back."""
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
