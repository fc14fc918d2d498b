"""Webhook delivery: endpoints, fan-out from the outbox, signed POSTs, retries, dead letters.

- An endpoint is a URL, a secret and optionally the kinds it wants. The secret
  signs every delivery, so it is stored as given (not hashed): it is returned
  once by `add_endpoint` and never listed or logged.
- A URL is checked when it is added and again at every delivery
  (services.notify.targets): malformed URLs and loopback, private, link-local
  and other non-public targets are refused unless webhook_allow_private_targets.
- Each delivery pass fans out: one delivery row per endpoint per new outbox row
  (store.webhook_repository, set-based, so concurrent workers cannot double
  it). `deliver_once` and `run` are the delivery loop
  (services.notify.delivery): concurrent per endpoint, one lease per attempt.
  A failure (no HTTP response, an answer other than 2xx, a refused target) is
  retried after `webhook_backoff * 2**(attempts-1)` seconds; after
  `webhook_max_attempts` the delivery is dead. `replay` queues a delivery again.
- `remove_endpoint` disables an endpoint (kept for its history): it gets no new
  deliveries and its pending ones are not sent. `backlog` gives the pending
  deliveries and the outbox lag for `/metrics`.
- Each POST carries `X-Carryover-Timestamp` (Unix seconds) and
  `X-Carryover-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`, and
  `X-Carryover-Event` (the outbox id) so a receiver can drop a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from carryover.domain.notices import USAGE_KINDS
from carryover.services.errors import NotFound, ServiceError
from carryover.services.notify import targets as webhook_targets
from carryover.services.notify.notices import KINDS
from carryover.settings import Settings

if TYPE_CHECKING:
    from carryover.services.notify.ports import DeliveryUnit, WebhookUnit


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of "{timestamp}.{body}" under `secret`."""
    message = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def add_endpoint(uow: WebhookUnit, url: str, kinds: list[str] | None, at: datetime, *,
                 allow_private: bool = False) -> tuple[dict, str]:
    """Add an endpoint; returns its description and its secret (shown this once).

    The URL must be well formed and its host must resolve to addresses deliveries
    may go to (services.notify.targets; `allow_private` is the setting
    webhook_allow_private_targets). Each delivery checks again.
    """
    webhook_targets.check(url, allow_private)
    # usage_<pct> for any alert threshold a subscriber may pick, not only the defaults.
    unknown = sorted(set(kinds or []) - set(KINDS) - USAGE_KINDS)
    if unknown:
        raise ServiceError(f"--kinds: unknown kind(s) {', '.join(unknown)}; "
                           f"known: {', '.join(KINDS)} (and usage_1 to usage_100)")
    ident, secret = "wh_" + secrets.token_hex(8), "whsec_" + secrets.token_urlsafe(32)
    with uow:
        since = uow.webhooks.last_outbox_id()
        uow.webhooks.add_endpoint(ident, url, secret, kinds, since, at)
        uow.commit()
    return {"id": ident, "url": url, "kinds": sorted(set(kinds)) if kinds else None,
            "created_at": at.isoformat()}, secret


def _endpoint(r: Any, counts: dict[str, dict[str, int]]) -> dict:
    return {"id": r.id, "url": r.url,
            "kinds": r.kinds.strip(",").split(",") if r.kinds else None,
            "created_at": r.created_at.isoformat(),
            "disabled_at": r.disabled_at.isoformat() if r.disabled_at else None,
            **{s: counts.get(r.id, {}).get(s, 0) for s in ("pending", "delivered", "dead")}}


def _endpoints(uow: WebhookUnit, read: Callable[[Any], list[Any]]) -> list[dict]:
    """The endpoints `read(uow.webhooks)` gives, with their delivery counts."""
    with uow.reading() as reading:
        rows = read(reading.webhooks)
        counts = reading.webhooks.delivery_counts([r.id for r in rows])
    return [_endpoint(r, counts) for r in rows]


def list_endpoints(uow: WebhookUnit) -> list[dict]:
    """Every endpoint (disabled ones too) with its delivery counts by status, never its secret."""
    return _endpoints(uow, lambda store: store.endpoints())


def endpoints_page(uow: WebhookUnit, after: str | None, limit: int
                   ) -> tuple[list[dict], str | None]:
    """Up to `limit` endpoints by id after `after`, and the last id when there are more."""
    rows = _endpoints(uow, lambda store: store.endpoints_after(after, limit + 1))
    more = len(rows) > limit
    return rows[:limit], (rows[limit - 1]["id"] if more else None)


def remove_endpoint(uow: WebhookUnit, endpoint_id: str, at: datetime) -> dict:
    """Disable an endpoint: no new deliveries, its pending ones are not sent. Idempotent."""
    with uow:
        found = uow.webhooks.endpoint(endpoint_id)
        if found is None:
            raise NotFound(f"unknown webhook endpoint {endpoint_id!r}")
        if found.disabled_at is None:
            uow.webhooks.disable_endpoint(endpoint_id, at)
        uow.commit()
    return _endpoints(uow, lambda store: [store.endpoint(endpoint_id)])[0]


def deliver_once(uow: DeliveryUnit, settings: Settings,
                 clock: Callable[[], datetime] | None = None) -> dict[str, int]:
    """One pass: fan out, then send what is due (services.notify.delivery)."""
    from carryover.services.notify import delivery as webhook_delivery

    return webhook_delivery.deliver_once(uow, settings, clock)


def run(uow: DeliveryUnit, settings: Settings, passes: int | None = None) -> dict[str, int]:
    """Deliver in a loop (`passes` of them, or until interrupted); the summed counts."""
    from carryover.services.notify import delivery as webhook_delivery

    return webhook_delivery.run(uow, settings, passes)


def dead_letters(uow: WebhookUnit, after: int | None = None, limit: int | None = None
                 ) -> list[dict]:
    """Deliveries that used up their attempts, by id (after `after`, at most `limit`)."""
    with uow.reading() as reading:
        rows = reading.webhooks.dead_letters(after, limit)
    return [{"id": r.id, "endpoint": r.endpoint_id, "url": r.url, "event": r.outbox_id,
             "kind": r.kind, "line": r.line, "attempts": r.attempts, "last_error": r.last_error}
            for r in rows]


def backlog(uow: WebhookUnit, now: datetime) -> tuple[int, float]:
    """Pending deliveries and the age in seconds of the oldest (0 when none).

    A delivery is a (notification, enabled endpoint that wants it) pair not yet
    delivered and not dead, whether or not the worker has fanned it out into a
    `webhook_deliveries` row yet, so a stopped worker shows as a growing lag.
    Its age runs from when the notification was written (`outbox.written_at`;
    rows written before migration 0005 have no age and are only counted).
    """
    with uow.reading() as reading:
        counted = reading.webhooks.backlog()
    oldest = [first for _, first in counted if first is not None]
    age = max(0.0, (now - min(oldest)).total_seconds()) if oldest else 0.0
    return sum(n for n, _ in counted), age


def replay(uow: WebhookUnit, delivery_id: int, at: datetime) -> dict:
    """Queue a dead (or delivered) delivery again, with a fresh set of attempts."""
    with uow:
        row = uow.webhooks.delivery(delivery_id)
        if row is None:
            raise NotFound(f"unknown delivery {delivery_id}")
        if row.disabled_at is not None:
            raise ServiceError(f"delivery {delivery_id} is for a removed endpoint")
        if row.status == "pending":
            raise ServiceError(f"delivery {delivery_id} is still pending: nothing to replay")
        uow.webhooks.requeue(delivery_id, at)
        uow.commit()
    return {"id": delivery_id, "status": "pending", "previous": row.status}
