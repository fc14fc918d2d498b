"""What real-time charging needs from the store: the interfaces the charging service owns.

A batch of Nchf requests (services.charging.group_commit) runs in one unit of work
(`ChargingUnit`): it locks the accounts it touches, reads what it needs in one
go, answers every request in memory and writes the result. The store implements
these protocols (store.charging_repository, store.outbox); tests/unit/fakes.py
implements them in memory. Instants come back UTC-aware.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol

from carryover.domain.book import AccountBook
from carryover.domain.book_state import Snapshot
from carryover.domain.buckets import Bucket
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import Usage
from carryover.domain.plans import Plan
from carryover.domain.sessions import ChargingSession, QuotaHold
from carryover.services.unit_of_work import Transaction


class LineRow(Protocol):
    """A line a create names: its id, its account, when it opened."""

    id: str
    account_id: int
    opened_at: datetime


class AccountRow(Protocol):
    id: int
    name: str
    version: int  # bumped by every writer of the account's state
    cycle_start: datetime | None


class BatchReads(Protocol):
    plans: Mapping[str, Plan]
    sessions: Sequence[ChargingSession]
    stored: set[str]  # the asked-for usage event ids already stored
    books: dict[int, tuple[AccountBook, Snapshot]]  # account id -> (book, snapshot)
    holds: Sequence[QuotaHold]
    closed: dict[int, list[Bucket]]  # account id -> its closed data buckets
    watched: Sequence[ChargingSession]  # open sessions with a notify_uri (`watch`)


class ChargingStore(Protocol):
    def subscribers(self, idents: Iterable[str]) -> dict[str, Any]:
        """Line rows (LineRow) by subscriber identifier: line id, MSISDN or IMSI."""

    def session_accounts(self, refs: Sequence[str]) -> dict[str, int]:
        """The account of each known session."""

    def lock_accounts(self, ids: Sequence[int]) -> list[Any]:
        """Account rows (AccountRow) in id order, locked until the unit of work ends."""

    def read(self, refs: Sequence[str], events: Sequence[str], missing: Sequence[Any],
             keys: Sequence[str] = (), watch: Sequence[int] = ()) -> BatchReads:
        """The plans, the sessions `refs` and the open sessions whose create_key is in
        `keys`, which of `events` are stored, the book (with its snapshot), holds and
        closed data buckets of each account in `missing`, and the open sessions with a
        notify_uri of the accounts `watch`."""

    def watched(self, account_ids: Sequence[int]) -> list[ChargingSession]:
        """The open sessions with a notify_uri of these accounts, by ref."""

    def attach(self, account_id: int, book: AccountBook) -> None:
        """Let a book kept from an earlier unit of work read its history in this one."""

    def writing(self, pipelined: bool = True) -> AbstractContextManager[None]:
        """The batch's writes, sent together when `pipelined`; an error surfaces at the
        end of the block at the latest."""

    def add_sessions(self, sessions: Iterable[ChargingSession]) -> None: ...

    def update_sessions(self, sessions: Iterable[ChargingSession]) -> None: ...

    def add_usage(self, events: Iterable[tuple[int, Usage, CycleCalendar, timedelta]]
                  ) -> None:
        """Store rated used units: (account id, event, its book's calendar and grace)."""

    def save_books(self, changed: Iterable[tuple[int, AccountBook, Snapshot]]) -> None:
        """Write back what the books' folds changed since their snapshots
        (`AccountBook.changes`), and bump their accounts' versions."""

    def drop_holds(self, keys: Sequence[tuple[str, int]]) -> None:
        """Delete the holds of these (ref, rating group) pairs."""

    def put_holds(self, holds: Iterable[QuotaHold]) -> None:
        """Insert these holds, or replace the stored ones of the same key."""


class Reauthorizations(Protocol):
    def offer(self, owed: Iterable[dict]) -> None:
        """Re-authorizations (ref, notify_uri, rating_groups, reason, created_at), each a
        new pending one."""


class Outbox(Protocol):
    def offer(self, rows: list[dict]) -> None:
        """Offer notification rows; each (line, cycle_start, kind) is kept once."""


class ChargingUnit(Transaction, Protocol):
    """A unit of work: each `with` block one transaction, rolled back unless committed."""

    charging: ChargingStore
    reauthorizations: Reauthorizations
    outbox: Outbox
