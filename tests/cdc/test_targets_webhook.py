"""The webhook target against a real HTTP receiver: signed canonical JSON with the idempotency
key, the document mapping and ownership, and how answers are classified."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from publish_kit import SECRET, WebhookReceiver, webhook_receiver, webhook_spec

from cdc.targets import (
    DeliveryRejectedError,
    TargetUnavailableError,
    WebhookTarget,
    parse_targets,
)
from hub.services.sync import Delivery

PAYLOAD = {
    "golden_id": 42,
    "version": 3,
    "status": "active",
    "merged_into": None,
    "attributes": {
        "kind": "organization",
        "legal_name": "Acme Robotics GmbH",
        "tax_id": "DE811907980",
        "emails": ["info@acme-robotics.example", "ap@acme-robotics.example"],
        "addresses": [{"lines": ["Hauptstr. 5", "Hof 2"], "city": "Berlin", "country": "DE"}],
    },
    "sources": [{"system": "crm", "table": "account", "pk": "001A"}],
    "changed_at": "2026-03-01T09:00:00+00:00",
    "cause": "source_change",
}


def _delivery() -> Delivery:
    now = datetime.now(UTC)
    return Delivery(
        id=7,
        golden_id=42,
        version=3,
        target="hooks",
        idempotency_key="42:3:hooks",
        payload=PAYLOAD,
        event="updated",
        attempts=1,
        created_at=now,
        lease_token="t",
        lease_until=now + timedelta(seconds=60),
    )


def _target(url: str, **extra: object) -> WebhookTarget:
    spec = parse_targets({"hooks": webhook_spec(url, **extra)}).specs["hooks"]
    assert spec.kind == "webhook"
    return WebhookTarget("hooks", spec, now=lambda: 1_767_225_600.0)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as receiver:
        yield receiver


def test_a_delivery_is_signed_canonical_json_with_the_idempotency_key(
    receiver: WebhookReceiver,
) -> None:
    target = _target(receiver.url, owns=["tax_id"], headers={"X-Tenant": "acme"})
    target.deliver(_delivery())
    [request] = receiver.received
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["idempotency-key"] == "42:3:hooks"
    assert headers["x-mdh-event"] == "updated"
    assert headers["x-tenant"] == "acme"
    assert headers["x-mdh-timestamp"] == "1767225600"
    # The receiver's check, done here by hand: HMAC-SHA256 of "<timestamp>." + body.
    expected = hmac.new(SECRET.encode(), b"1767225600." + request.body, hashlib.sha256).hexdigest()
    assert headers["x-mdh-signature"] == f"sha256={expected}"
    document = json.loads(request.body)
    assert request.body == json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    assert document["golden_id"] == 42
    assert document["version"] == 3
    assert document["idempotency_key"] == "42:3:hooks"
    assert "tax_id" not in document["attributes"]  # the target owns it
    assert document["attributes"]["emails"] == PAYLOAD["attributes"]["emails"]
    target.close()


def test_fields_map_golden_attributes_to_the_receiver_s_names(receiver: WebhookReceiver) -> None:
    target = _target(
        receiver.url,
        fields={
            "name": "legal_name",
            "first_email": "emails[0]",
            "street": {"from": "addresses[0].lines", "join": ", "},
            "given": {"from": "given_name", "kind": "person"},
        },
    )
    target.deliver(_delivery())
    [request] = receiver.received
    assert request.document["attributes"] == {
        "name": "Acme Robotics GmbH",
        "first_email": "info@acme-robotics.example",
        "street": "Hauptstr. 5, Hof 2",
    }
    target.close()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, DeliveryRejectedError),
        (422, DeliveryRejectedError),
        (408, TargetUnavailableError),
        (429, TargetUnavailableError),
        (500, TargetUnavailableError),
        (503, TargetUnavailableError),
    ],
)
def test_answers_other_than_2xx_are_unavailability_or_rejection(
    receiver: WebhookReceiver, status: int, error: type[Exception]
) -> None:
    receiver.respond = lambda d: status
    target = _target(receiver.url)
    with pytest.raises(error, match=f"HTTP {status}"):
        target.deliver(_delivery())
    target.close()


def test_a_receiver_that_is_down_or_too_slow_is_unavailable(receiver: WebhookReceiver) -> None:
    receiver.down()
    target = _target(receiver.url, delivery={"timeout_seconds": 0.5})
    with pytest.raises(TargetUnavailableError, match="ConnectError"):
        target.deliver(_delivery())
    receiver.up()
    receiver.delay = 1.0
    with pytest.raises(TargetUnavailableError, match="timed out"):
        target.deliver(_delivery())
    target.close()
