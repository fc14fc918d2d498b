"""Business figures for `/metrics`, read from the database when Prometheus scrapes.

Cheap aggregate queries only, never a rating or QoS evaluation per line:

- `rollover_deposited`: the sum of every `rollover_in` ledger entry, per unit
  (bytes for data), since the beginning.
- `lines_without_data`: an approximation of lines throttled or blocked now:
  lines that have open data buckets to draw from (their own, and the family
  pool for a member line) and none with anything left (an unlimited bucket
  counts as something left). It reads the buckets as stored after each line's
  last rated event: an expiry or a new cycle's allowance that no event or read
  has applied yet is not seen, and a plan's throttle or deprioritization rules
  (docs/qos) are not evaluated.
- `lines_throttled` and `lines_blocked` (exact, docs/api.md "Metrics"): lines
  whose latest `throttled` or `blocked` notification (services.notify.notices)
  belongs to their account's current bill cycle, that cycle has not ended at
  `now`, and that have nothing usable at `now`: no open data bucket of their own
  valid at `now` with something left (an unlimited one always has), and for a
  family member none in the pool either, or the member's pool limit is used up.
  So a top-up, a plan change that grants data, or a raised member limit takes
  the line out at once, and a new cycle does too (until the line uses data in it
  with nothing left, which notifies again). One set-based query, no per-line
  Python: the outbox's unique (line, cycle_start, kind) rows drive it.
- `webhook_deliveries_pending` and `outbox_lag_seconds`: webhook deliveries not
  yet delivered and not dead, and the age of the oldest of them since its
  notification was written (0 when none): services.notify.webhooks.backlog.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from carryover.services.notify.webhooks import backlog


@dataclass(frozen=True, slots=True)
class BusinessFigures:
    rollover_deposited: dict[str, int]
    lines_without_data: int
    webhook_deliveries_pending: int = 0
    outbox_lag_seconds: float = 0.0
    lines_throttled: int = 0
    lines_blocked: int = 0


class MetricsStore(Protocol):
    """The figures' queries (store/metrics_repository.py), as defined above."""

    def rollover_deposited(self) -> dict[str, int]: ...

    def lines_without_data(self) -> int: ...

    def restricted(self, now: datetime) -> dict[str, int]:
        """Lines throttled and blocked at `now`: each kind of RESTRICTED, 0 if none."""


class MetricsUnit(Protocol):
    metrics: MetricsStore

    def __enter__(self) -> MetricsUnit: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def reading(self) -> MetricsUnit: ...


def figures(uow: MetricsUnit, now: datetime | None = None) -> BusinessFigures:
    """The figures as of `now` (default: the clock), in short transactions of `uow`."""
    now = now or datetime.now(UTC)
    with uow:
        store = uow.metrics
        sums = store.rollover_deposited()
        count = store.lines_without_data()
        restricted = store.restricted(now)
    pending, lag = backlog(uow, now)
    return BusinessFigures(sums, count, pending, lag, restricted["throttled"],
                           restricted["blocked"])
