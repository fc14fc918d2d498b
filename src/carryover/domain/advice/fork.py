"""Forks of a book: what-ifs folded by the same engine, never touching the original.

Advice asks "what would the fold do if...": the projected pace were used, a gift
were made, the plan were changed now. A fork copies the state of a book at its
instant (lines, live buckets, counters, the cycle it is in) into a new book with
no history and no entries, so whatever is submitted to it afterwards is folded
by the very rules of domain/book.py, and its entries are the what-if's alone.
Only inputs at or after the fork's instant may be submitted (a fork has no
history to replay).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta

from carryover.domain.book import AccountBook
from carryover.domain.buckets import BucketTable
from carryover.domain.history import NoHistory
from carryover.domain.inputs import Usage
from carryover.domain.ledger import EntryKind
from carryover.domain.units import Unit

_US = timedelta(microseconds=1)
_NO_HISTORY = NoHistory("a fork has no history to replay: submit inputs at or after its instant")


def fork(book: AccountBook) -> AccountBook:
    """A copy of `book`'s state at its instant, with no entries and no history."""
    copy = AccountBook.restore(
        book.calendar, book.plans, book.grace,
        lines={k: replace(v, limits=dict(v.limits)) for k, v in book.lines.items()},
        buckets=BucketTable({b.id: replace(b) for b in book.buckets.live()}),
        counters=defaultdict(int, book.counters), cursor=book.cursor,
        history=_NO_HISTORY)  # an input out of order must fail, not replay from nothing
    copy.plan_at = book.plan_at
    copy.keeps_inputs = False
    return copy


def instant(book: AccountBook, at: datetime) -> datetime:
    """The instant a what-if input may take in a fork at `at`: `at`, or a microsecond
    later when an input already folded at `at` sorts after it (a fork cannot replay)."""
    if book.last_key is not None and book.last_key[0] >= at:
        return book.last_key[0] + _US
    return at


def planned(book: AccountBook, line: str, start: datetime, end: datetime, expected,
            tag: str) -> list[Usage]:
    """`line`'s expected data use over [start, end) as inputs for a fork: one event per
    stretch between the instants where the buckets change (boundaries, expiries), at
    the stretch's start, which leaves the balances at each stretch's end exactly as any
    spreading of that use inside the stretch would (usage commutes while the queue
    does not change, domain/book.py)."""
    cuts = {start, end}
    t = start
    while True:
        _, nxt = book.calendar.cycle_at(t)
        if nxt >= end:
            break
        cuts.add(nxt)
        t = nxt
    cuts.update(b.valid_until for b in book.buckets.live()
                if b.valid_until is not None and start < b.valid_until < end)
    ordered = sorted(cuts)
    out = []
    for n, (lo, hi) in enumerate(itertools.pairwise(ordered)):
        amount = round(expected(lo, hi))
        if amount > 0:
            out.append(Usage(f"advice:{tag}:{line}:{n:06d}", line, lo, amount, Unit.DATA))
    return out


def fold(book: AccountBook, items: list) -> None:
    """Submit what-if inputs to a fork in fold order; a refused one is left out."""
    for item in sorted(items, key=book.key):
        book.submit(item)


def booked(book: AccountBook, kind: EntryKind, bucket_id: str | None = None,
           line: str | None = None, note: str | None = None) -> int:
    """The sum of a fork's entries of `kind` (for one bucket, one owner, one note)."""
    return sum(e.amount for e in book.entries if e.kind is kind
               and (bucket_id is None or e.bucket_id == bucket_id)
               and (line is None or e.owner == line)
               and (note is None or e.note == note))
