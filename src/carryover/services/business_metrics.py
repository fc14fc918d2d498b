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
- `webhook_deliveries_pending` and `outbox_lag_seconds`: webhook deliveries not
  yet delivered and not dead, and the age of the oldest of them since its
  notification was written (0 when none): services.webhooks.backlog.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, and_, case, func, literal, select

from carryover.domain.buckets import POOL
from carryover.services.webhooks import backlog
from carryover.store.tables import buckets, ledger_entries, lines
from carryover.store.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class BusinessFigures:
    rollover_deposited: dict[str, int]
    lines_without_data: int
    webhook_deliveries_pending: int = 0
    outbox_lag_seconds: float = 0.0


def figures(engine: Engine, now: datetime | None = None) -> BusinessFigures:
    """The figures as of `now` (default: the clock), in short read-only transactions."""
    deposited = (select(ledger_entries.c.unit, func.coalesce(func.sum(ledger_entries.c.amount), 0))
                 .where(ledger_entries.c.kind == "rollover_in")
                 .group_by(ledger_entries.c.unit))
    usable = case((buckets.c.remaining.is_(None) | (buckets.c.remaining > 0), 1), else_=0)
    owners = (select(buckets.c.account_id, buckets.c.owner, func.max(usable).label("usable"))
              .where(buckets.c.unit == "data", buckets.c.closed.is_(False))
              .group_by(buckets.c.account_id, buckets.c.owner)
              .subquery("owners"))
    own, pool = owners.alias("own"), owners.alias("pool")
    empty = (select(func.count())
             .select_from(
                 lines.outerjoin(own, and_(own.c.account_id == lines.c.account_id,
                                           own.c.owner == lines.c.id))
                 .outerjoin(pool, and_(pool.c.account_id == lines.c.account_id,
                                       pool.c.owner == literal(POOL),
                                       lines.c.member.is_(True))))
             .where(own.c.owner.isnot(None) | pool.c.owner.isnot(None),
                    func.coalesce(own.c.usable, 0) == 0,
                    func.coalesce(pool.c.usable, 0) == 0))
    with UnitOfWork(engine) as uow:
        sums = {unit: int(total) for unit, total in uow.conn.execute(deposited)}
        count = int(uow.conn.execute(empty).scalar_one())
    pending, lag = backlog(engine, now or datetime.now(UTC))
    return BusinessFigures(sums, count, pending, lag)
