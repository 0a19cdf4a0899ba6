"""HTTP webhook target: each golden change POSTed as signed JSON.

The request:

- body: the golden document (``document.golden_document``) as canonical JSON, so the same
  change is byte for byte the same request every time it is sent;
- ``Idempotency-Key``: ``golden_id:version:target``; a receiver that has seen it answers 2xx
  and does nothing;
- ``X-Mdh-Timestamp`` (Unix seconds) and ``X-Mdh-Signature: sha256=<hex>``, the HMAC-SHA256
  of ``"<timestamp>." + body`` under the target's secret: the receiver recomputes it (and
  refuses old timestamps, so a captured request cannot be replayed later);
- ``X-Mdh-Event`` (``created``, ``merged``...), ``X-Mdh-Golden-Id``, ``X-Mdh-Version``.

2xx is an acknowledgement; 408, 425, 429 and 5xx, a timeout or a connection failure mean the
receiver is unavailable (retried); any other status rejects the payload (dead-lettered).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import httpx

from cdc.targets.base import DeliveryRejectedError, DeliveryTarget, TargetUnavailableError
from cdc.targets.config import WebhookTargetSpec, document_fields
from cdc.targets.document import encode_document, golden_document
from hub.services.sync import Delivery

SIGNATURE_HEADER = "X-Mdh-Signature"
TIMESTAMP_HEADER = "X-Mdh-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_RETRYABLE_STATUS = frozenset({408, 425, 429})


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value a receiver recomputes: ``sha256=<hex>``."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookTarget(DeliveryTarget):
    """POSTs golden changes to one URL (module docstring)."""

    def __init__(
        self, name: str, spec: WebhookTargetSpec, *, now: Callable[[], float] = time.time
    ) -> None:
        super().__init__(name, spec.events, spec.delivery)
        self.spec = spec
        self._fields = document_fields(spec)
        self._secret = spec.secret.get_secret_value().encode()
        self._now = now
        self._client: httpx.Client | None = None

    def open(self) -> None:
        if self._client is None:
            self._client = httpx.Client(
                timeout=self.delivery.timeout_seconds,
                headers={"User-Agent": "mdh-relay", **self.spec.headers},
                follow_redirects=False,
            )

    def deliver(self, delivery: Delivery) -> None:
        self.open()
        assert self._client is not None
        body = encode_document(golden_document(delivery, self._fields))
        timestamp = str(int(self._now()))
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: delivery.idempotency_key,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            "X-Mdh-Event": delivery.event or "",
            "X-Mdh-Golden-Id": str(delivery.golden_id),
            "X-Mdh-Version": str(delivery.version),
        }
        try:
            response = self._client.post(self.spec.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise TargetUnavailableError(self.name, f"timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise TargetUnavailableError(self.name, f"{type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = f"HTTP {status}: {response.text[:200].strip()}"
        if status >= 500 or status in _RETRYABLE_STATUS:
            raise TargetUnavailableError(self.name, detail)
        raise DeliveryRejectedError(self.name, detail)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


__all__ = ["IDEMPOTENCY_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookTarget", "sign"]
