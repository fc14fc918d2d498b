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
  whose latest `throttled` or `blocked` notification (services.notifications)
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
  notification was written (0 when none): services.webhooks.backlog.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    TIMESTAMP,
    BigInteger,
    ColumnElement,
    Engine,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.sql.expression import Select

from carryover.domain.buckets import POOL
from carryover.services.webhooks import backlog
from carryover.store.tables import Instant, accounts, buckets, counters, ledger_entries, lines
from carryover.store.uow import UnitOfWork
from carryover.store.webhook_tables import outbox

RESTRICTED = ("throttled", "blocked")


@dataclass(frozen=True, slots=True)
class BusinessFigures:
    rollover_deposited: dict[str, int]
    lines_without_data: int
    webhook_deliveries_pending: int = 0
    outbox_lag_seconds: float = 0.0
    lines_throttled: int = 0
    lines_blocked: int = 0


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
    now = now or datetime.now(UTC)
    with UnitOfWork(engine) as uow:
        sums = {unit: int(total) for unit, total in uow.conn.execute(deposited)}
        count = int(uow.conn.execute(empty).scalar_one())
        restricted = dict.fromkeys(RESTRICTED, 0)
        restricted.update({kind: int(n) for kind, n in uow.conn.execute(
            restricted_lines(now, uow.conn.dialect.name))})
    pending, lag = backlog(engine, now)
    return BusinessFigures(sums, count, pending, lag, restricted["throttled"],
                           restricted["blocked"])


def restricted_lines(now: datetime, dialect: str) -> Select:
    """(kind, lines) for throttled and blocked lines at `now`: the definition above."""
    o, ln, a = outbox.c, lines.c, accounts.c
    at = literal(now, Instant)
    later = outbox.alias("later")
    own, pool = buckets.alias("own_bucket"), buckets.alias("pool_bucket")
    taken = (select(counters.c.value).where(
        counters.c.account_id == o.account_id, counters.c.cycle_start == o.cycle_start,
        counters.c.line == o.line, counters.c.unit == "data", counters.c.name == "pool")
        .scalar_subquery())
    # Limits are bytes: past 2**31, so BIGINT (as_integer() casts to a 32-bit INTEGER).
    limit = cast(ln.limits["data"].as_string(), BigInteger)
    pool_open = and_(ln.member.is_(True),
                     exists().where(pool.c.account_id == o.account_id, pool.c.owner == POOL,
                                    _usable(pool, at)),
                     or_(limit.is_(None), func.coalesce(taken, 0) < limit))
    return (select(o.kind, func.count())
            .select_from(outbox.join(lines, ln.id == o.line)
                         .join(accounts, a.id == o.account_id))
            .where(o.kind.in_(RESTRICTED), a.cycle_end > at,
                   _same_instant(o.cycle_start, a.cycle_start, dialect),
                   # the latest of the two kinds in the cycle wins (a plan changed mid-cycle)
                   ~exists().where(later.c.line == o.line,
                                   later.c.cycle_start == o.cycle_start,
                                   later.c.kind.in_(RESTRICTED), later.c.id > o.id),
                   ~exists().where(own.c.account_id == o.account_id, own.c.owner == o.line,
                                   _usable(own, at)),
                   ~pool_open)
            .group_by(o.kind))


def _usable(b, at: ColumnElement) -> ColumnElement:
    return and_(b.c.unit == "data", b.c.closed.is_(False), b.c.valid_from <= at,
                or_(b.c.valid_until.is_(None), b.c.valid_until > at),
                or_(b.c.remaining.is_(None), b.c.remaining > 0))


def _same_instant(text: ColumnElement, instant: ColumnElement, dialect: str) -> ColumnElement:
    """The outbox's ISO 8601 `cycle_start` string names the same instant as the column."""
    if dialect == "postgresql":
        return cast(text, TIMESTAMP(timezone=True)) == instant
    # SQLite's datetime() reads both spellings (with an offset, or stored UTC) as UTC.
    return func.datetime(text) == func.datetime(instant)
