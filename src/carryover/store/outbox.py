"""The notification outbox: rows offered, each (line, cycle, kind) kept once, and the
stored state notices are decided from.

A condition (a usage threshold crossed, a line throttled, a profile installed)
is notified once per line and bill cycle: the outbox's unique (line,
cycle_start, kind) keeps the first row and ignores the rest (ON CONFLICT DO
NOTHING), so every writer may offer what it finds without reading first.

Which conditions hold is decided in services.notify.notices (the decision
itself in carryover.domain.notices); the reads here hand it the stored state of
the touched accounts in a few set-based queries: the accounts with a current
cycle, their lines, the cycle's data counters, bucket aggregates per owner (the
facts of domain.notices, each account at its instant), the closed data buckets
a book in memory does not hold (store.closed_buckets) and the lines' MSISDNs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, func, select

from carryover.domain.buckets import Bucket
from carryover.store.closed_buckets import closed_from_rows, closed_query
from carryover.store.instants import utc
from carryover.store.many_rows import OnConflict, insert_many
from carryover.store.raw_cursor import Raw
from carryover.store.tables import accounts, buckets, counters, lines
from carryover.store.webhook_tables import outbox

OUTBOX_COLUMNS = ("account_id", "line", "cycle_start", "kind", "at", "payload", "written_at")
_OFFER_CONFLICT = OnConflict(("line", "cycle_start", "kind"))  # the first offer is kept
# Built once: SQLAlchemy memoizes a statement's cache key on the object.
_ACCOUNT_MSISDNS = select(lines.c.id, lines.c.msisdn).where(
    lines.c.account_id == bindparam("account_id"))


def offer(conn: Connection, rows: list[dict]) -> None:
    """Offer `rows` to the outbox, stamped with the time of writing; a (line,
    cycle_start, kind) already there is left as it is."""
    if not rows:
        return
    written = datetime.now(UTC)
    if conn.dialect.name == "postgresql":  # one statement, the rows as one JSON text
        insert_many(conn, outbox, [{**row, "written_at": written} for row in rows],
                    _OFFER_CONFLICT)
        return
    # SQLite: an executemany on the driver, the instants and the JSON made here. Through
    # SQLAlchemy's typed executemany, binding them row by row was a third of an ingest
    # chunk's notifications; the text is what its Instant and JSON types write.
    raw = Raw(conn)
    instants = {at: raw.instant(at) for at in {row["at"] for row in rows}}  # a few per call
    stamp = raw.instant(written)
    raw.append_new("outbox", OUTBOX_COLUMNS,
                   [(row["account_id"], row["line"], row["cycle_start"], row["kind"],
                     instants[row["at"]], json.dumps(row["payload"]), stamp) for row in rows],
                   ", ".join(_OFFER_CONFLICT.keys))


class OutboxRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def offer(self, rows: list[dict]) -> None:
        offer(self.conn, rows)

    def notice_accounts(self, account_ids: Iterable[int]) -> dict[int, Any]:
        """Account id -> its row (id, name, cycle_start, cycle_end, until, pool_plan_id,
        cycle_day, timezone), for those of `account_ids` that have a current cycle."""
        a = accounts.c
        return {r.id: r for r in self.conn.execute(select(
            a.id, a.name, a.cycle_start, a.cycle_end, a.until, a.pool_plan_id, a.cycle_day,
            a.timezone).where(a.id.in_(list(account_ids)), a.cycle_start.isnot(None)))}

    def notice_lines(self, account_ids: Iterable[int]) -> list[Any]:
        """The lines of `account_ids` (every column), by id."""
        return list(self.conn.execute(select(lines).where(
            lines.c.account_id.in_(list(account_ids))).order_by(lines.c.id)))

    def cycle_counters(self, cycle: Mapping[int, str]) -> dict[tuple, int]:
        """(account, line, name) -> value of the `used` and `pool` data counters of each
        account's cycle (`cycle`: account id -> its cycle_start text)."""
        c = counters.c
        out: dict[tuple, int] = {}
        for row in self.conn.execute(select(
                c.account_id, c.cycle_start, c.line, c.name, c.value).where(
                c.account_id.in_(list(cycle)), c.cycle_start.in_(sorted(set(cycle.values()))),
                c.unit == "data", c.name.in_(["used", "pool"]))):
            if cycle.get(row.account_id) == row.cycle_start:
                out[(row.account_id, row.line, row.name)] = int(row.value)
        return out

    def bucket_facts(self, account_ids: list[int], at: datetime,
                     expiring_within: timedelta) -> dict[tuple, dict]:
        """Per (account, owner), at `at`: allowance granted this cycle, usability, rollover
        credited and expiring within `expiring_within` (the facts of domain.notices)."""
        b, a = buckets.c, accounts.c
        in_cycle = and_(b.valid_from < a.cycle_end,
                        b.valid_until.is_(None) | (b.valid_until > a.cycle_start))
        allowance = and_(b.kind == "allowance", in_cycle)
        live = and_(b.closed.is_(False), b.valid_from <= at,
                    b.valid_until.is_(None) | (b.valid_until > at))
        rollover_new = and_(b.kind == "rollover", b.valid_from >= a.cycle_start,
                            b.valid_from < a.cycle_end)
        expiring = and_(b.kind == "rollover", b.closed.is_(False), b.remaining > 0,
                        b.valid_until > at, b.valid_until <= at + expiring_within)
        query = (select(
            b.account_id, b.owner,
            func.sum(case((and_(allowance, b.granted.isnot(None)), b.granted), else_=0))
            .label("allowance"),
            func.sum(case((and_(allowance, b.granted.is_(None)), 1), else_=0))
            .label("allowance_unlimited"),
            func.max(case((and_(live, b.remaining.is_(None) | (b.remaining > 0)), 1), else_=0))
            .label("usable"),
            func.sum(case((rollover_new, b.granted), else_=0)).label("rollover_credited"),
            func.sum(case((expiring, b.remaining), else_=0)).label("rollover_expiring"),
            func.min(case((expiring, b.valid_until), else_=None)).label("expiring_until"))
            .join(accounts, a.id == b.account_id)
            .where(b.account_id.in_(account_ids), b.unit == "data")
            .group_by(b.account_id, b.owner))
        out: dict[tuple, dict] = {}
        for row in self.conn.execute(query):
            until = row.expiring_until
            if isinstance(until, str):  # SQLite's MIN over a CASE loses the column type
                until = datetime.fromisoformat(until)
            until = utc(until)  # naive from SQLite, whatever the type
            out[(row.account_id, row.owner)] = {
                "allowance": int(row.allowance or 0),
                "allowance_unlimited": int(row.allowance_unlimited or 0),
                "usable": int(row.usable or 0),
                "rollover_credited": int(row.rollover_credited or 0),
                "rollover_expiring": int(row.rollover_expiring or 0),
                "expiring_until": until}
        return out

    def closed_buckets(self, account_ids: list[int],
                       since: datetime | None) -> dict[int, list[Bucket]]:
        """The closed data buckets of several accounts that may count for a cycle starting
        at or after `since` (None: all), in one query: account id -> buckets.

        A superset of those that count for such a cycle (`domain.notices.owner_facts`
        counts an allowance that overlaps the cycle and a rollover that starts in it:
        either ends after the cycle starts), which gives the same notices."""
        if not account_ids:
            return {}
        return closed_from_rows(self.conn.execute(*closed_query(account_ids, since)))

    def msisdns(self, account_id: int) -> dict[str, str]:
        """Line id -> MSISDN, for the lines of one account."""
        return dict(self.conn.execute(_ACCOUNT_MSISDNS, {"account_id": account_id}).all())
