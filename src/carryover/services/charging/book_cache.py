"""Account books kept between Nchf batches (services.charging.group_commit).

Reading an account's book (lines, live buckets, counters, holds, closed
buckets) costs several queries; a packet core asks about the same accounts
again and again. A worker keeps the books of the accounts it answered lately,
each with the account version it is at, and uses one only at that version.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from carryover.domain.book import AccountBook
from carryover.domain.book_state import Snapshot
from carryover.domain.buckets import Bucket
from carryover.domain.units import Unit


@dataclass(slots=True)
class Kept:
    version: int  # the account row's version the book is at
    book: AccountBook
    snapshot: Snapshot
    holds: dict
    closed: list[Bucket]


class BookCache:
    """The books (with holds and closed buckets) of accounts this process answered
    lately, each with the account version it is at: up to `limit` accounts, the
    least recently used forgotten first.

    Every writer of an account's state bumps `accounts.version` (save_book, the
    bulk ingest, line import), and a batch reads the version under the account's
    lock, so a book whose version differs is stale and is read again. A batch
    takes the books it uses out of the cache and puts them back only after its
    commit: a rolled-back batch leaves nothing behind, and two lanes never share
    a book."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._kept: OrderedDict[int, Kept] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def take(self, account_id: int, version: int) -> Kept | None:
        with self._lock:
            kept = self._kept.pop(account_id, None)
            if kept is not None and kept.version == version:
                self.hits += 1
                return kept
            self.misses += 1
            return None

    def put(self, account_id: int, kept: Kept) -> None:
        if self.limit <= 0:
            return
        with self._lock:
            self._kept[account_id] = kept
            self._kept.move_to_end(account_id)
            while len(self._kept) > self.limit:
                self._kept.popitem(last=False)



def as_loaded(book: AccountBook, closed: list[Bucket]) -> list[Bucket]:
    """Make a saved book what `load_books` would read back, and return the closed
    buckets the store would give with it (store.outbox, `closed_buckets`): the live
    buckets stay in the book, the closed data buckets that may count for the current
    cycle move to the list, counters of other cycles go, and what was folded this
    time is forgotten (`AccountBook.forget_closed`). So a kept book does not grow
    cycle after cycle, and answers as a fresh one would."""
    start = book.cycle_start
    gone = book.forget_closed()
    kept = {b.id: b for b in [*closed, *gone]
            if b.unit is Unit.DATA and b.closed and (
                start is None or b.valid_until is None or b.valid_until > start)}
    return [kept[i] for i in sorted(kept)]
