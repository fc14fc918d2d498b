"""Recording many usage events at once: one unit of work per account, not per event.

Events are grouped by account and folded into the account's book in arrival
order, exactly as the single-event path would fold them one by one; the book is
loaded once and written back once. Duplicates (an event id already stored, or
twice in the batch) are reported and not counted; a bad event (unknown line, an
instant before the line started, a negative amount) is rejected with its reason
while the good events of the same batch are recorded.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, insert, select

from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import Usage, effective_instant
from carryover.domain.units import Unit
from carryover.services.notifications import emit_notifications
from carryover.store.tables import usage_events
from carryover.store.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One event as it comes in: the line by id, MSISDN or IMSI."""

    event_id: str
    line: str
    at: datetime
    amount: int
    received_at: datetime
    unit: Unit = Unit.DATA
    rating_group: str | None = None


@dataclass(slots=True)
class BatchResult:
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (index in batch, reason)
    lines: set[str] = field(default_factory=set)


def record_batch(engine: Engine, rows: list[UsageRow]) -> BatchResult:
    result = BatchResult()
    with UnitOfWork(engine) as uow:
        resolved: dict[str, object] = {}
        by_account: dict[int, list[tuple[int, Usage]]] = defaultdict(list)
        seen: set[str] = set()
        ids = [r.event_id for r in rows]
        stored: set[str] = set()
        for start in range(0, len(ids), 900):  # keep IN lists under SQLite's variable limit
            chunk = ids[start:start + 900]
            stored.update(uow.conn.execute(select(usage_events.c.event_id).where(
                usage_events.c.event_id.in_(chunk))).scalars())
        for index, row in enumerate(rows):
            if row.event_id in stored or row.event_id in seen:
                result.duplicates += 1
                continue
            if row.line not in resolved:
                resolved[row.line] = uow.accounts.find_line(row.line)
            line = resolved[row.line]
            if line is None:
                result.rejected.append((index, f"unknown line {row.line!r}"))
                continue
            seen.add(row.event_id)
            by_account[line.account_id].append((index, Usage(
                row.event_id, line.id, row.at, row.amount, row.unit, row.rating_group,
                row.received_at)))
        for account_id in sorted(by_account):
            account = uow.accounts.lock_account(account_id)
            book, snapshot = uow.accounts.load_book(account, uow.plans.all())
            calendar = CycleCalendar(account.cycle_day, account.timezone)
            grace = timedelta(seconds=account.grace_seconds)
            stored_rows = []
            # Arrival order, ties by position: what the single-event path would have seen.
            for index, item in sorted(by_account[account_id],
                                      key=lambda p: (p[1].received_at, p[0])):
                outcome = book.submit(item)
                if outcome.status != "accepted":
                    result.rejected.append((index, outcome.reason or outcome.status))
                    continue
                effective, late = effective_instant(item, calendar, grace)
                stored_rows.append({
                    "event_id": item.id, "account_id": account_id, "line": item.line,
                    "at": item.at, "received_at": item.received_at, "effective_at": effective,
                    "amount": item.amount, "unit": str(item.unit),
                    "rating_group": item.rating_group, "late": late})
                result.accepted += 1
                result.late += late
                result.lines.add(item.line)
            # The events go in after the fold: a replay reads history from the table, and
            # the book already holds what this batch folded.
            uow.accounts.save_book(account_id, book, snapshot)
            if stored_rows:
                uow.conn.execute(insert(usage_events), stored_rows)
        if by_account:
            emit_notifications(uow.conn, by_account, max(r.at for r in rows))
        uow.commit()
    result.rejected.sort()
    return result
