"""An account's history: the inputs it was given and the entries its folds booked.

Inputs other than usage (`inputs`, with who gave them and when) and usage
events (`usage_events`, with their effective instant and lateness) are written
once and never changed; ledger entries are append-only. Read back, they are what
a replay folds again (`history`, in the fold's order, and `booked_totals`, what
was booked so far) and what statements and change logs list (`changes`,
`entries`). `AccountHistory` is the part of `AccountRepository`
(store.repository) that reads and writes them; `StoredHistory` is one account's,
as a book replays from it (domain/history.py).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Set
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select

from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import Input, Usage, effective_instant, order_key
from carryover.domain.ledger import Entry, EntryKind
from carryover.domain.units import Unit
from carryover.store import codec
from carryover.store.instants import utc
from carryover.store.tables import buckets, inputs, ledger_entries, usage_events


def usage_row(account_id: int, item: Usage, calendar: CycleCalendar,
               grace: timedelta) -> dict:
    """The `usage_events` row of an event: its effective instant and lateness by the
    account's calendar and grace (docs/semantics.md, "Late usage")."""
    effective, late = effective_instant(item, calendar, grace)
    return {"event_id": item.id, "account_id": account_id, "line": item.line, "at": item.at,
            "received_at": item.received_at, "effective_at": effective,
            "amount": item.amount, "unit": str(item.unit),
            "rating_group": item.rating_group, "late": late}


class AccountHistory:
    """Inputs and entries of one account at a time, on the unit of work's connection."""

    conn: Connection

    def record(self, account_id: int, item: Input, calendar: CycleCalendar,
               grace: timedelta, actor: str | None = None,
               recorded_at: datetime | None = None) -> None:
        """Store an input; for any but usage, with who gave it and when it was recorded."""
        if isinstance(item, Usage):
            self.conn.execute(insert(usage_events).values(
                **usage_row(account_id, item, calendar, grace)))
            return
        kind, body = codec.encode(item)
        self.conn.execute(insert(inputs).values(
            account_id=account_id, input_id=item.id, kind=kind,
            line=getattr(item, "line", None), at=item.at, body=body, actor=actor,
            recorded_at=recorded_at))

    def changes(self, account_id: int, start: datetime, end: datetime) -> list[Any]:
        """The account's inputs other than usage effective in [start, end), with who gave
        them and when they were recorded, in (at, input id) order."""
        c = inputs.c
        return list(self.conn.execute(
            select(c.input_id, c.kind, c.line, c.at, c.body, c.actor, c.recorded_at)
            .where(c.account_id == account_id, c.at >= start, c.at < end)
            .order_by(c.at, c.input_id)))

    def history(self, account_id: int, calendar: CycleCalendar,
                grace: timedelta) -> Iterator[Input]:
        """The account's stored inputs in fold order (`order_key`), streamed.

        Usage comes from the database ordered by its stored effective instant (the
        same rule, with the account's own calendar and grace, which never change),
        a server-side cursor on PostgreSQL; only the events sharing one instant are
        sorted here, by id, so the order does not depend on the database's
        collation. The other inputs are few: they are read whole and merged in."""
        others = [codec.decode(row.kind, row.body) for row in self.conn.execute(
            select(inputs.c.kind, inputs.c.body).where(inputs.c.account_id == account_id))]

        def key(item: Input) -> tuple:
            return order_key(item, calendar, grace)

        c = usage_events.c
        # Statement options: Connection.execution_options would change the connection.
        rows = self.conn.execute(
            select(c.event_id, c.line, c.at, c.amount, c.unit, c.rating_group, c.received_at,
                   c.effective_at)
            .where(c.account_id == account_id).order_by(c.effective_at)
            .execution_options(stream_results=True, yield_per=5000))

        def usage() -> Iterator[Usage]:
            group: list[Usage] = []
            instant = None
            for row in rows:
                item = Usage(row.event_id, row.line, utc(row.at), row.amount, Unit(row.unit),
                             row.rating_group, utc(row.received_at))
                if row.effective_at != instant:
                    group.sort(key=key)
                    yield from group
                    group, instant = [], row.effective_at
                group.append(item)
            group.sort(key=key)
            yield from group

        return heapq.merge(sorted(others, key=key), usage(), key=key)

    def booked_totals(self, account_id: int) -> Iterator[tuple[tuple, datetime, int]]:
        """The stored entries summed per (bucket, owner, line, unit, kind) and effective
        instant, streamed: the book folds them into per-cycle totals as they come."""
        c = ledger_entries.c
        rows = self.conn.execute(
            select(c.bucket_id, c.owner, c.line, c.unit, c.kind, c.effective_at,
                   func.sum(c.amount))
            .where(c.account_id == account_id)
            .group_by(c.bucket_id, c.owner, c.line, c.unit, c.kind, c.effective_at)
            .order_by(c.effective_at))
        for r in rows:
            yield (r[0], r[1], r[2], Unit(r[3]), EntryKind(r[4])), utc(r[5]), int(r[6])

    def entries(self, account_id: int, before: datetime | None = None) -> list[Entry]:
        """The account's entries effective before `before`, in booking order."""
        c = ledger_entries.c
        query = select(ledger_entries).where(c.account_id == account_id)
        if before is not None:
            query = query.where(c.effective_at < before)
        rows = self.conn.execute(query.order_by(c.seq))
        return [Entry(utc(r.effective_at), EntryKind(r.kind), Unit(r.unit), r.amount,
                      r.bucket_id, r.owner, r.line, r.ref, r.note, utc(r.recorded_at))
                for r in rows]

    def unlimited_bucket_ids(self, account_id: int) -> set[str]:
        rows = self.conn.execute(select(buckets.c.id).where(
            and_(buckets.c.account_id == account_id, buckets.c.granted.is_(None))))
        return {r.id for r in rows}


class StoredHistory:
    """One account's stored history (domain/history.py `History`), read on demand.

    It names the account, its calendar and grace, never the book: a book that
    referred to itself through its history would be a cycle, left to the collector.
    `skip_usage`: usage event ids stored already but not yet folded (an ingest
    inserts a chunk's events before its books fold them)."""

    __slots__ = ("_account_id", "_calendar", "_grace", "_reads", "_skip_usage")

    def __init__(self, reads: AccountHistory, account_id: int, calendar: CycleCalendar,
                 grace: timedelta, skip_usage: Set[str] = frozenset()) -> None:
        self._reads, self._account_id = reads, account_id
        self._calendar, self._grace, self._skip_usage = calendar, grace, skip_usage

    def inputs(self) -> Iterable[Input]:
        stored = self._reads.history(self._account_id, self._calendar, self._grace)
        if not self._skip_usage:
            return stored
        skip = self._skip_usage
        return (i for i in stored if not (isinstance(i, Usage) and i.id in skip))

    def booked_totals(self) -> Iterable[tuple[tuple, datetime, int]]:
        return self._reads.booked_totals(self._account_id)
