"""A bounded schemathesis run over the whole OpenAPI with an admin key: generated input (valid
and invalid) never gets a 5xx, and every answer matches the schema documented for its status."""

from __future__ import annotations

import pytest
import schemathesis
from api_testkit import acme, change, truncate_all
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from sqlalchemy.engine import Engine

from api.app import create_app
from api.context import ApiSettings
from hub.rules import default_rules
from hub.services import HubServices
from hub.services.keys import ApiRole, AuditContext
from matching import MatchModel

EXAMPLES_PER_OPERATION = 12


@pytest.fixture(scope="module")
def fuzzed(api_engine: Engine, matcher: MatchModel) -> tuple[schemathesis.BaseSchema, str]:
    truncate_all(api_engine)
    hub = HubServices(api_engine, matcher=matcher, rules=default_rules(), targets=("crm",))
    hub.apply_changes([acme("crm", "A1", 1), acme("billing", "B1", 2)])
    hub.apply_changes(
        [change("crm", "G1", 3, legal_name="Globex GmbH", addresses=[{"country": "DE"}])]
    )
    token = (
        hub.desk(AuditContext("test-setup", ApiRole.ADMIN))
        .create_api_key("fuzzer", ApiRole.ADMIN)
        .token
    )
    app = create_app(hub, ApiSettings(auth_cache_seconds=60, changes_max_wait=0.05))
    return schemathesis.openapi.from_asgi("/openapi.json", app), token


def _cases() -> list[tuple[str, schemathesis.GenerationMode]]:
    """Every operation with valid input, and those that take input with invalid input too."""
    app = create_app(HubServices.__new__(HubServices))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    cases = []
    for result in schema.get_all_operations():
        operation = result.ok()
        cases.append((operation.label, schemathesis.GenerationMode.POSITIVE))
        takes_input = any(
            len(part) for part in (operation.path_parameters, operation.query, operation.body)
        )
        if takes_input:
            cases.append((operation.label, schemathesis.GenerationMode.NEGATIVE))
    return sorted(cases)


CASES = _cases()


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{name} {m.value}" for name, m in CASES])
def test_no_server_error_and_answers_match_the_schema(
    fuzzed: tuple[schemathesis.BaseSchema, str], label: str, mode: schemathesis.GenerationMode
) -> None:
    schema, token = fuzzed
    [operation] = [r.ok() for r in schema.get_all_operations() if r.ok().label == label]

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: schemathesis.Case) -> None:
        # Generated cases carry generated credentials; every case here is an admin's.
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        case.call_and_validate(
            checks=[checks.not_a_server_error, checks.response_schema_conformance],
            # A valid-looking request may still be refused by the store (404, 409).
            excluded_checks=[checks.positive_data_acceptance],
        )

    run()
