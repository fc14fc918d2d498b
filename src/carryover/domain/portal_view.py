"""What the subscriber portal shows of a line: its meters and its days, from a book.

`meters` is a line's buckets at an instant in the order they are drawn (the
book's consumption queue, the same one rating uses), each with what it was
granted, what is left and when it ends; a member's share of the family pool
comes with the member's limit and what the member has taken of it this cycle.
`daily_use` adds a line's usage of one unit per local calendar day of a cycle,
by the instant each event happened (a late event counts on its own day).

Pure: the caller gives the book, the instant and the zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from carryover.domain.book import AccountBook
from carryover.domain.buckets import POOL
from carryover.domain.inputs import Usage
from carryover.domain.units import Unit


def meters(book: AccountBook, line: str, at: datetime) -> list[dict]:
    """The line's buckets at `at`, every unit, in consumption order."""
    state = book.lines[line]
    cycle = book.cycle_start.isoformat()
    out: list[dict] = []
    for unit in Unit:
        for bucket in book.queue(line, unit, at):
            meter = {"id": bucket.id, "kind": str(bucket.kind), "unit": str(unit),
                     "pool": bucket.owner == POOL, "granted": bucket.granted,
                     "remaining": bucket.remaining, "valid_from": bucket.valid_from,
                     "valid_until": bucket.valid_until, "origin": bucket.origin}
            if bucket.owner == POOL:
                meter["member_limit"] = state.limits.get(unit)
                meter["member_taken"] = book.counters.get((cycle, line, unit, "pool"), 0)
            out.append(meter)
    return out


def daily_use(inputs: Iterable, line: str, unit: Unit, start: datetime, end: datetime,
              zone: ZoneInfo) -> list[tuple[date, int]]:
    """(local day, amount) for every local day from `start` to `end` (exclusive)."""
    first, last = start.astimezone(zone).date(), (end - timedelta(microseconds=1)
                                                   ).astimezone(zone).date()
    days = {first + timedelta(days=n): 0 for n in range((last - first).days + 1)}
    for item in inputs:
        if isinstance(item, Usage) and item.line == line and item.unit is unit \
                and start <= item.at < end:
            days[item.at.astimezone(zone).date()] += item.amount
    return sorted(days.items())
