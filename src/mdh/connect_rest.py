"""Kafka Connect connector configs: reading them from files and registering them idempotently.

A connector file is the body Kafka Connect's REST API takes, ``{"name": ..., "config": {...}}``,
with string values only (Connect keeps configs as strings, so a stored config compares
exactly). ``${NAME}`` or ``${NAME:-default}`` in a value is replaced from the environment, so
passwords stay out of the files; Connect's own config-provider references
(``${file:/path:key}``) do not match that pattern and pass through untouched.

Registering uses ``PUT /connectors/{name}/config``, which creates a missing connector and
replaces an existing one's config; a connector whose stored config already equals the file's
is left alone (no PUT, so no restart of its task). Connect answers 409 while its workers
rebalance: that, and a Connect that does not answer yet, is retried until ``wait_seconds``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")


class ConnectorFileError(Exception):
    """A connector file is not what was expected: names the file, the key and the expectation."""

    def __init__(self, file: str, key: str, expected: str) -> None:
        self.file = file
        self.key = key
        self.expected = expected
        super().__init__(f"{file}: {key}: expected {expected}")


class ConnectRestError(Exception):
    """Kafka Connect refused a request or could not be reached."""

    def __init__(self, connector: str, status: int | None, message: str) -> None:
        self.connector = connector
        self.status = status
        self.message = message
        where = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"{connector}: {where}: {message}")


@dataclass(frozen=True)
class ConnectorSpec:
    """One connector as read from its file, with ``${...}`` already substituted."""

    name: str
    config: Mapping[str, str]
    file: Path


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Registration:
    name: str
    outcome: Outcome
    state: str | None
    """The connector's state after registering (RUNNING, UNASSIGNED, FAILED...), if known."""
    trace: str | None = None


def read_connector_file(path: Path, environ: Mapping[str, str]) -> ConnectorSpec:
    """Read and check one connector file.

    Raises:
        ConnectorFileError: unreadable, not JSON, not ``{"name", "config"}``, a non-string
            value, or a ``${NAME}`` that is not set.
    """
    file = str(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConnectorFileError(file, "(file)", f"a readable file ({exc.strerror})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConnectorFileError(file, "(file)", f"JSON ({exc})") from exc
    if not isinstance(document, dict) or set(document) != {"name", "config"}:
        raise ConnectorFileError(file, "(top level)", 'an object with "name" and "config" only')
    name = document["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConnectorFileError(file, "name", "a connector name (letters, digits, . _ -)")
    raw = document["config"]
    if not isinstance(raw, dict) or not raw:
        raise ConnectorFileError(file, "config", "an object of connector properties")
    config: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(value, str):
            raise ConnectorFileError(
                file, f"config.{key}", f'a string (Connect stores strings), e.g. "{value}"'
            )
        config[key] = _substitute(value, environ, file, f"config.{key}")
    if config.get("name", name) != name:
        raise ConnectorFileError(file, "config.name", f"the connector's name {name!r} or nothing")
    return ConnectorSpec(name=name, config=config, file=path)


def read_connector_dir(directory: Path, environ: Mapping[str, str]) -> list[ConnectorSpec]:
    """Every ``*.json`` connector file of ``directory``, by file name.

    Raises:
        ConnectorFileError: no such directory, no file in it, a bad file, or a name used twice.
    """
    if not directory.is_dir():
        raise ConnectorFileError(str(directory), "(directory)", "a directory of *.json files")
    specs = [read_connector_file(path, environ) for path in sorted(directory.glob("*.json"))]
    if not specs:
        raise ConnectorFileError(str(directory), "(directory)", "at least one *.json file")
    seen: dict[str, Path] = {}
    for spec in specs:
        if spec.name in seen:
            raise ConnectorFileError(
                str(spec.file), "name", f"a name not already used by {seen[spec.name]}"
            )
        seen[spec.name] = spec.file
    return specs


def _substitute(value: str, environ: Mapping[str, str], file: str, key: str) -> str:
    def replace(match: re.Match[str]) -> str:
        variable, default = match.group(1), match.group(2)
        if variable in environ:
            return environ[variable]
        if default is not None:
            return default
        raise ConnectorFileError(file, key, f"the environment variable {variable} to be set")

    return _VARIABLE.sub(replace, value)


class ConnectClient:
    """The few Kafka Connect REST calls registration needs.

    Args:
        base_url: the Connect REST endpoint (``http://connect:8083``).
        wait_seconds: how long to keep retrying while Connect is unreachable or rebalancing.
    """

    def __init__(
        self,
        base_url: str,
        *,
        wait_seconds: float = 0.0,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
        )
        self.wait_seconds = wait_seconds
        self.sleep = sleep

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ConnectClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def find_config(self, name: str) -> dict[str, str] | None:
        """The stored config of connector ``name``; None when there is no such connector."""
        response = self._request("GET", f"/connectors/{quote(name, safe='')}/config", name)
        if response.status_code == 404:
            return None
        body = self._json(response, name)
        if not isinstance(body, dict):
            raise ConnectRestError(name, response.status_code, "the config is not an object")
        return {str(k): str(v) for k, v in body.items()}

    def put_config(self, name: str, config: Mapping[str, str]) -> bool:
        """Create or replace the connector's config; True when it was created."""
        response = self._request(
            "PUT", f"/connectors/{quote(name, safe='')}/config", name, json=dict(config)
        )
        self._json(response, name)
        return response.status_code == 201

    def status(self, name: str) -> tuple[str | None, str | None]:
        """The connector's state and, when it failed, the first line of its trace."""
        response = self._request("GET", f"/connectors/{quote(name, safe='')}/status", name)
        if response.status_code == 404:
            return None, None
        body = self._json(response, name)
        connector = body.get("connector") if isinstance(body, dict) else None
        if not isinstance(connector, dict):
            return None, None
        trace = connector.get("trace")
        if trace is None and isinstance(body, dict):
            failed = [t for t in body.get("tasks") or [] if t.get("state") == "FAILED"]
            trace = failed[0].get("trace") if failed else None
        first_line = str(trace).strip().splitlines()[0] if trace else None
        return connector.get("state"), first_line

    def _request(self, method: str, path: str, name: str, **kwargs: Any) -> httpx.Response:
        deadline = time.monotonic() + self.wait_seconds
        pause = 0.5
        while True:
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if time.monotonic() + pause > deadline:
                    raise ConnectRestError(
                        name, None, f"cannot reach Kafka Connect at {self.http.base_url} ({exc})"
                    ) from exc
            else:
                # 409: the Connect workers are rebalancing; the request is fine, try again.
                if response.status_code != 409 or time.monotonic() + pause > deadline:
                    return response
            self.sleep(pause)
            pause = min(pause * 2, 5.0)

    @staticmethod
    def _json(response: httpx.Response, name: str) -> Any:
        if response.status_code >= 400:
            raise ConnectRestError(name, response.status_code, _error_message(response))
        try:
            return response.json()
        except ValueError as exc:
            raise ConnectRestError(
                name, response.status_code, f"not JSON: {response.text[:200]!r}"
            ) from exc


def _error_message(response: httpx.Response) -> str:
    """Connect's own message (its error bodies are ``{"error_code", "message"}``)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return json.dumps(body)[:500]


def register_connector(client: ConnectClient, spec: ConnectorSpec) -> Registration:
    """Create or update one connector unless Connect already has exactly this config.

    Raises:
        ConnectRestError: Connect refused the config (its message is in the error) or did
            not answer.
    """
    desired = {**spec.config, "name": spec.name}
    stored = client.find_config(spec.name)
    if stored == desired:
        outcome = Outcome.UNCHANGED
    else:
        created = client.put_config(spec.name, spec.config)
        outcome = Outcome.CREATED if created else Outcome.UPDATED
    state, trace = client.status(spec.name)
    return Registration(spec.name, outcome, state, trace)


def register_connectors(
    client: ConnectClient, specs: Iterable[ConnectorSpec]
) -> list[Registration | ConnectRestError]:
    """Register each connector; one that Connect refuses does not stop the others."""
    results: list[Registration | ConnectRestError] = []
    for spec in specs:
        try:
            results.append(register_connector(client, spec))
        except ConnectRestError as exc:
            results.append(exc)
    return results
