"""The business figures of `/metrics`: cheap aggregate reads over the ledger and the outbox.

services.ops.business_metrics defines each figure; these are its queries, one each,
never a rating or QoS evaluation per line. `restricted` compares the outbox's
ISO 8601 `cycle_start` text with the account's instant column, which each
backend spells its own way.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    TIMESTAMP,
    BigInteger,
    ColumnElement,
    Connection,
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
from carryover.store.tables import Instant, accounts, buckets, counters, ledger_entries, lines
from carryover.store.webhook_tables import outbox

RESTRICTED = ("throttled", "blocked")


class MetricsRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def rollover_deposited(self) -> dict[str, int]:
        """The sum of every `rollover_in` ledger entry, per unit."""
        deposited = (select(ledger_entries.c.unit,
                            func.coalesce(func.sum(ledger_entries.c.amount), 0))
                     .where(ledger_entries.c.kind == "rollover_in")
                     .group_by(ledger_entries.c.unit))
        return {unit: int(total) for unit, total in self.conn.execute(deposited)}

    def lines_without_data(self) -> int:
        """Lines with open data buckets to draw from (their own, and the pool for a
        member) and none with anything left (an unlimited bucket has)."""
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
        return int(self.conn.execute(empty).scalar_one())

    def restricted(self, now: datetime) -> dict[str, int]:
        """Lines throttled and blocked at `now` (services.ops.business_metrics), per kind."""
        found = dict.fromkeys(RESTRICTED, 0)
        found.update({kind: int(n) for kind, n in self.conn.execute(
            restricted_lines(now, self.conn.dialect.name))})
        return found


def restricted_lines(now: datetime, dialect: str) -> Select:
    """(kind, lines) for throttled and blocked lines at `now`."""
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
