"""A small HTTP server that answers like the Kafka Connect REST API, for testing
`mdh connectors register` without a JVM.

Stateful: ``PUT /connectors/{name}/config`` creates (201) or replaces (200) a connector,
``GET /connectors/{name}/config`` returns what was stored (with ``name`` added, as Connect
does), ``GET /connectors/{name}/status`` its state. A config is validated the way Connect
validates one before storing it: a connector class it has, the required properties present,
and no unknown key (checked against infra/reference, which is stricter than Connect, which
warns about unknown keys rather than failing). Errors have Connect's body,
``{"error_code": ..., "message": ...}``. Tests can queue failures (``fail_next``) and make
it answer 409 as while its workers rebalance (``rebalancing``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from connect_reference import unknown_connector_keys

POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"
REQUIRED = ("database.hostname", "database.user", "database.dbname", "topic.prefix")


@dataclass
class ConnectState:
    connectors: dict[str, dict[str, str]] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    """Connector state reported by status (RUNNING unless a test sets another)."""
    traces: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    fail_next: list[tuple[int, str]] = field(default_factory=list)
    rebalancing: int = 0
    """Answer this many requests with 409, as Connect does during a rebalance."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def puts(self) -> list[str]:
        return [path for method, path in self.requests if method == "PUT"]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with state.lock:
            state.requests.append((method, self.path))
            if state.rebalancing > 0:
                state.rebalancing -= 1
                self._error(409, "Cannot complete request because of a conflicting operation")
                return
            if state.fail_next:
                status, message = state.fail_next.pop(0)
                self._error(status, message)
                return
            self._route(method, body)

    def _route(self, method: str, body: bytes) -> None:
        state = self.server.state
        parts = [unquote(p) for p in self.path.split("?")[0].strip("/").split("/")]
        if method == "GET" and parts == [""]:
            self._reply(200, {"version": "4.0.0", "commit": "fake", "kafka_cluster_id": "fake"})
        elif method == "GET" and parts == ["connectors"]:
            self._reply(200, sorted(state.connectors))
        elif len(parts) == 3 and parts[0] == "connectors" and parts[2] == "config":
            name = parts[1]
            if method == "GET":
                if name not in state.connectors:
                    self._error(404, f"Connector {name} not found")
                else:
                    self._reply(200, state.connectors[name])
            elif method == "PUT":
                self._put_config(name, body)
            else:
                self._error(405, "HTTP 405 Method Not Allowed")
        elif (
            method == "GET"
            and len(parts) == 3
            and parts[0] == "connectors"
            and parts[2] == "status"
        ):
            self._status(parts[1])
        else:
            self._error(404, "HTTP 404 Not Found")

    def _put_config(self, name: str, body: bytes) -> None:
        state = self.server.state
        try:
            config = json.loads(body)
        except ValueError:
            self._error(500, "Unrecognized token: was expecting a JSON object")
            return
        if not isinstance(config, dict) or not all(isinstance(v, str) for v in config.values()):
            self._error(500, "Cannot deserialize value of type `java.util.HashMap<String,String>`")
            return
        if config.get("name", name) != name:
            self._error(
                400,
                f"Connector name configuration ({config['name']}) doesn't match connector name"
                f" in the URL ({name})",
            )
            return
        connector_class = config.get("connector.class")
        if connector_class is None:
            self._error(400, f"Connector config {config} contains no connector type")
            return
        if connector_class != POSTGRES_CONNECTOR:
            self._error(
                400,
                "Failed to find any class that implements Connector and which name matches"
                f" {connector_class}, available connectors are: PluginDesc{{klass=class"
                f" {POSTGRES_CONNECTOR}, name='{POSTGRES_CONNECTOR}', version='3.6.3.Final',"
                " type=source}",
            )
            return
        errors = [
            f'Missing required configuration "{key}" which has no default value.'
            for key in REQUIRED
            if key not in config
        ]
        errors += [f"Unknown configuration '{key}'" for key in unknown_connector_keys(config)]
        if errors:
            self._error(
                400,
                f"Connector configuration is invalid and contains the following {len(errors)}"
                " error(s):\n"
                + "\n".join(errors)
                + "\nYou can also find the above list of errors at the endpoint"
                " `/connector-plugins/{connectorType}/config/validate`",
            )
            return
        created = name not in state.connectors
        state.connectors[name] = {**config, "name": name}
        self._reply(
            201 if created else 200,
            {"name": name, "config": state.connectors[name], "tasks": [], "type": "source"},
        )

    def _status(self, name: str) -> None:
        state = self.server.state
        if name not in state.connectors:
            self._error(404, f"No status found for connector {name}")
            return
        connector: dict[str, Any] = {
            "state": state.states.get(name, "RUNNING"),
            "worker_id": "connect:8083",
        }
        if name in state.traces:
            connector["trace"] = state.traces[name]
        self._reply(
            200,
            {
                "name": name,
                "connector": connector,
                "tasks": [{"id": 0, "state": connector["state"], "worker_id": "connect:8083"}],
                "type": "source",
            },
        )

    def _error(self, status: int, message: str) -> None:
        self._reply(status, {"error_code": status, "message": message})

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: ConnectState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@contextmanager
def fake_connect(state: ConnectState | None = None) -> Iterator[tuple[str, ConnectState]]:
    """Serve a fake Kafka Connect on a free loopback port; yields (base URL, state)."""
    state = state or ConnectState()
    server = _Server(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
