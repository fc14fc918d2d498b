"""Between object books and the columnar book, for tests that compare the two folds.

`columnar_from_books` lays several AccountBooks side by side as columns;
`write_back` applies the columnar result to the object books, so either can
continue the fold. Production never converts one into the other (the bulk
ingest loads its columns from the store), so this lives with the tests.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from carryover.domain.book import AccountBook
from carryover.domain.book_state import Cursor
from carryover.domain.buckets import Bucket
from carryover.domain.columnar.fold import COUNTERS, ColumnarBook, Events
from carryover.domain.columnar.state import (
    ENTRY_KINDS,
    I64,
    KINDS,
    NEVER,
    UNITS,
    buckets_from_objects,
    from_us,
    to_us,
)
from carryover.domain.inputs import HOTSPOT, Usage
from carryover.domain.ledger import Entry
from carryover.domain.plans import Plan


def columnar_from_books(books: list[AccountBook], plans: Mapping[str, Plan],
                        ref: str) -> tuple[ColumnarBook, list[str]]:
    """A ColumnarBook over `books` (no pools) and the line ids in its line order."""
    line_ids: list[str] = []
    line_account: list[int] = []
    line_plans: list[str | None] = []
    items: list[tuple[int, Bucket]] = []
    for a, book in enumerate(books):
        for name in sorted(book.lines):
            index = len(line_ids)
            line_ids.append(name)
            line_account.append(a)
            line_plans.append(book.lines[name].plan_id)
            items.extend((index, b) for b in book.buckets.values() if b.owner == name)

    def instants(values) -> np.ndarray:
        return np.array([-1 if v is None else to_us(v) for v in values], dtype=I64)
    bulk = ColumnarBook(
        plans, [b.calendar for b in books],
        instants(b.cycle_start for b in books), instants(b.cycle_end for b in books),
        instants(b.until for b in books), instants(b.segment_start for b in books),
        np.array(line_account, dtype=I64), np.array(line_ids, dtype=object), line_plans,
        buckets_from_objects(items), ref)
    return bulk, line_ids


def rate(columnar: ColumnarBook, line_ids: list[str], events: list[Usage]) -> None:
    """Rate `events` (in the order given) through `columnar`, as ingest hands it a chunk."""
    index = {name: i for i, name in enumerate(line_ids)}
    columnar.rate(Events(
        line=np.array([index[e.line] for e in events], dtype=np.int64),
        eff=np.array([to_us(e.at) for e in events], dtype=np.int64),
        amount=np.array([e.amount for e in events], dtype=np.int64),
        unit=np.array([UNITS.index(e.unit) for e in events], dtype=np.int64),
        hotspot=np.array([e.rating_group == HOTSPOT for e in events], dtype=bool)))


def entries_of(bulk: ColumnarBook, line_ids: list[str]) -> list[Entry]:
    cols = bulk.entries.columns()
    b = bulk.b
    out = []
    for i in range(len(cols["amount"])):
        row = int(cols["bucket"][i])
        line = int(cols["line"][i])
        owner = line_ids[int(cols["owner_line"][i])]
        out.append(Entry(
            from_us(int(cols["at"][i])), ENTRY_KINDS[int(cols["kind"][i])],
            UNITS[int(cols["unit"][i])], int(cols["amount"][i]),
            None if row < 0 else b.ids[row], owner, None if line < 0 else line_ids[line],
            str(cols["ref"][i]), str(cols["note"][i])))
    return out


def write_back(bulk: ColumnarBook, books: list[AccountBook], line_ids: list[str]) -> None:
    """Give each object book the columnar result: buckets, entries, counters, and the
    cursor, for which each book in `books` is replaced by one restored at it."""
    b = bulk.b
    line_book = {name: book for book in books for name in book.lines}
    for row in range(len(b)):
        owner = line_ids[int(b.line[row])]
        book = line_book[owner]
        unlimited = bool(b.unlimited[row])
        book.buckets[b.ids[row]] = Bucket(
            id=b.ids[row], owner=owner, unit=UNITS[int(b.unit[row])],
            kind=KINDS[int(b.kind[row])], granted=None if unlimited else int(b.granted[row]),
            valid_from=from_us(int(b.valid_from[row])),
            valid_until=None if b.valid_until[row] == NEVER else from_us(int(b.valid_until[row])),
            priority=int(b.priority[row]), rollable=bool(b.rollable[row]),
            origin=b.origin[row], remaining=None if unlimited else int(b.remaining[row]),
            closed=bool(b.closed[row]))
    for entry in entries_of(bulk, line_ids):
        line_book[entry.owner].entries.append(entry)
    for (cycle, line, unit, code), value in bulk.counters().items():
        book = line_book[line_ids[line]]
        key = (from_us(cycle).isoformat(), line_ids[line], UNITS[unit], COUNTERS[code])
        book.counters[key] += value
    for a, book in enumerate(books):
        cursor = Cursor(
            from_us(int(bulk.cycle_start[a])), from_us(int(bulk.cycle_end[a])),
            None if bulk.segment_start[a] < 0 else from_us(int(bulk.segment_start[a])),
            None if bulk.until[a] < 0 else from_us(int(bulk.until[a])), book.last_key)
        books[a] = AccountBook.restore(book.calendar, book.plans, book.grace, lines=book.lines,
                                       buckets=book.buckets, counters=book.counters,
                                       cursor=cursor)
        books[a].entries.extend(book.entries)
