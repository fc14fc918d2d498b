"""The charging repository: what one Nchf batch reads and writes, in few round trips.

The charging service (group commit) answers a batch of requests against the
books of the accounts they touch. This repository gives it those accounts
locked, in one statement and in id order (so two batches that share accounts
wait for each other instead of deadlocking), then every other read of the batch
in one round trip (store.pipelined): the plans, the sessions, which reported
containers are stored already and, for the accounts whose book the service does
not keep, the book, its quota holds and its closed data buckets. The writes of
the batch go out with one statement per kind of row, on PostgreSQL in psycopg's
pipeline mode (one wait for all of them).

Rows come back with UTC-aware instants whatever the backend.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, tuple_

from carryover.domain.book import AccountBook
from carryover.domain.book_state import Snapshot
from carryover.domain.buckets import Bucket
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import Usage
from carryover.domain.plan_versions import PlanCatalog
from carryover.domain.sessions import ChargingSession, QuotaHold
from carryover.store.account_history import usage_row
from carryover.store.charging_tables import charging_sessions, quota_holds
from carryover.store.closed_buckets import closed_from_rows, closed_query
from carryover.store.instants import utc
from carryover.store.many_rows import OnConflict, insert_many, update_many
from carryover.store.pipelined import pipeline, read_all
from carryover.store.plan_repository import PLAN_TEXTS, plans_from_rows
from carryover.store.repository import AccountRepository, book_queries
from carryover.store.tables import accounts, usage_events

# Built once: SQLAlchemy memoizes a statement's cache key on the object.
_cs, _h = charging_sessions.c, quota_holds.c
_REFS = bindparam("refs", expanding=True)
_IDS = bindparam("ids", expanding=True)
_SESSION_ACCOUNTS = select(_cs.ref, _cs.account_id).where(_cs.ref.in_(_REFS))
_SESSIONS = select(charging_sessions).where(_cs.ref.in_(_REFS))
_WATCHED = select(charging_sessions).where(
    _cs.account_id.in_(_IDS), _cs.released_at.is_(None), _cs.notify_uri.is_not(None))
_OPENED = select(charging_sessions).where(
    _cs.create_key.in_(bindparam("keys", expanding=True)), _cs.released_at.is_(None))
_ACCOUNTS = select(accounts).where(accounts.c.id.in_(_IDS)).order_by(accounts.c.id)
# FOR NO KEY UPDATE, as AccountRepository.lock_account; in id order (no deadlocks).
_ACCOUNTS_LOCKED = _ACCOUNTS.with_for_update(key_share=True)
_HOLDS = select(quota_holds).where(_h.account_id.in_(_IDS))
# `inline()`: no RETURNING of generated keys, which would be a result to wait for.
_STORED = select(usage_events.c.event_id).where(
    usage_events.c.event_id.in_(bindparam("events", expanding=True)))
_SESSION_SETS = ("updated_at", "sequence", "last_result", "last_digest", "released_at")


_HOLD_CONFLICT = OnConflict(("ref", "rating_group"), ("amount", "granted_at", "expires_at"))


@dataclass(slots=True)
class BatchReads:
    """What a batch reads after its lock (see the module docstring)."""

    plans: PlanCatalog
    sessions: list[ChargingSession]
    stored: set[str]  # the given usage event ids already stored
    books: dict[int, tuple[AccountBook, Snapshot]]  # account id -> (book, snapshot)
    holds: list[QuotaHold]
    closed: dict[int, list[Bucket]]  # account id -> its closed data buckets
    watched: list[ChargingSession] = field(default_factory=list)  # open, with a notify_uri


class ChargingRepository:
    def __init__(self, conn: Connection, accounts_repo: AccountRepository) -> None:
        self.conn, self._accounts = conn, accounts_repo

    def subscribers(self, idents: Iterable[str]) -> dict[str, Any]:
        """Line rows by subscriber identifier (AccountRepository.find_lines)."""
        return self._accounts.find_lines(idents)

    def session_accounts(self, refs: Sequence[str]) -> dict[str, int]:
        if not refs:
            return {}
        return dict(self.conn.execute(_SESSION_ACCOUNTS, {"refs": list(refs)}).all())

    def lock_accounts(self, ids: Sequence[int]) -> list[Any]:
        """The account rows, in id order, locked until the transaction ends (SQLite's
        writer already holds the database's write lock)."""
        if not ids:
            return []
        locking = self.conn.dialect.name == "postgresql"
        return self.conn.execute(_ACCOUNTS_LOCKED if locking else _ACCOUNTS,
                                 {"ids": list(ids)}).all()

    def read(self, refs: Sequence[str], events: Sequence[str], missing: Sequence[Any],
             keys: Sequence[str] = (), watch: Sequence[int] = ()) -> BatchReads:
        """The plans, the sessions `refs` and the open ones opened by the creates of
        `keys`, which of `events` are stored, the book, holds and closed data buckets
        of each account row in `missing`, and the open sessions with a notify_uri of
        the accounts `watch`."""
        queries: list[tuple] = [(PLAN_TEXTS, {})]
        if watch:
            queries.append((_WATCHED, {"ids": list(watch)}))
        if refs:
            queries.append((_SESSIONS, {"refs": list(refs)}))
        if keys:
            queries.append((_OPENED, {"keys": list(keys)}))
        if events:
            queries.append((_STORED, {"events": list(events)}))
        loaded = sorted(row.id for row in missing)
        first_book = len(queries)
        if loaded:
            since = [row.cycle_start for row in missing]
            queries += [*book_queries(missing), (_HOLDS, {"ids": loaded}),
                        closed_query(loaded, None if None in since else utc(min(since)))]
        # Every read of the batch in one round trip (PostgreSQL's pipeline).
        fetched = read_all(self.conn, queries)
        plans = plans_from_rows(fetched[0])
        at = 1
        watched = []
        if watch:
            watched = [_session(r) for r in sorted(fetched[at], key=lambda r: r.ref)]
            at += 1
        session_rows: dict[str, Any] = {}
        for present in (refs, keys):
            if present:
                session_rows.update((r.ref, r) for r in fetched[at])
                at += 1
        sessions = [_session(r) for _, r in sorted(session_rows.items())]
        stored = {r.event_id for r in fetched[at]} if events else set()
        books: dict[int, tuple[AccountBook, Snapshot]] = {}
        holds: list[QuotaHold] = []
        closed: dict[int, list[Bucket]] = {}
        if loaded:
            *book_rows, hold_rows, closed_rows = fetched[first_book:]
            books = self._accounts.load_books(missing, plans, book_rows)
            holds = [QuotaHold(r.account_id, r.ref, int(r.rating_group), r.line, int(r.amount),
                             utc(r.granted_at), utc(r.expires_at)) for r in hold_rows]
            closed = closed_from_rows(closed_rows)
        return BatchReads(plans, sessions, stored, books, holds, closed, watched)

    def watched(self, account_ids: Sequence[int]) -> list[ChargingSession]:
        """The open sessions with a notify_uri of these accounts, by ref."""
        if not account_ids:
            return []
        rows = self.conn.execute(_WATCHED, {"ids": list(account_ids)}).all()
        return [_session(r) for r in sorted(rows, key=lambda r: r.ref)]

    def attach(self, account_id: int, book: AccountBook) -> None:
        """Give a book kept from an earlier transaction this one's history."""
        book.attach(self._accounts.history_of(account_id, book.calendar, book.grace))

    @contextlib.contextmanager
    def writing(self, pipelined: bool = True) -> Iterator[None]:
        """The batch's writes in one round trip where the backend allows (PostgreSQL's
        pipeline mode): they need no answer but success, so they go out without waiting
        for each, and an error surfaces when the block ends (rolling the batch back like
        any other). `pipelined=False` when a write must read (saving a replayed book
        reads which buckets exist)."""
        with pipeline(self.conn) if pipelined else contextlib.nullcontext():
            yield

    def add_sessions(self, sessions: Iterable[Any]) -> None:
        insert_many(self.conn, charging_sessions, [
            {"ref": s.ref, "account_id": s.account_id, "line": s.line,
             "subscriber": s.subscriber, "opened_at": s.opened_at,
             "updated_at": s.updated_at, "sequence": s.sequence,
             "last_result": s.last_result, "released_at": s.released_at,
             "create_key": s.create_key, "last_digest": s.last_digest,
             "notify_uri": s.notify_uri} for s in sessions])

    def update_sessions(self, sessions: Iterable[Any]) -> None:
        update_many(self.conn, charging_sessions, ("ref",), _SESSION_SETS, [
            {"ref": s.ref, "updated_at": s.updated_at, "sequence": s.sequence,
             "last_result": s.last_result, "last_digest": s.last_digest,
             "released_at": s.released_at} for s in sessions])

    def add_usage(self, events: Iterable[tuple[int, Usage, CycleCalendar, Any]]) -> None:
        """Store rated used units: (account id, event, the book's calendar, its grace)."""
        insert_many(self.conn, usage_events,
                    [usage_row(account_id, event, calendar, grace)
                     for account_id, event, calendar, grace in events])

    def save_books(self, changed: Iterable[tuple[int, AccountBook, Snapshot]]) -> None:
        self._accounts.save_books(changed)

    def drop_holds(self, keys: Sequence[tuple[str, int]]) -> None:
        """Delete the holds of these (ref, rating group) pairs."""
        if keys:
            self.conn.execute(delete(quota_holds).where(
                tuple_(_h.ref, _h.rating_group).in_(list(keys))))

    def put_holds(self, holds: Iterable[Any]) -> None:
        """Insert these holds, or replace the amount and instants of the stored ones."""
        insert_many(self.conn, quota_holds, [
            {"ref": h.ref, "rating_group": h.rating_group, "account_id": h.account_id,
             "line": h.line, "amount": h.amount, "granted_at": h.granted_at,
             "expires_at": h.expires_at} for h in holds], _HOLD_CONFLICT)


def _session(r: Any) -> ChargingSession:
    return ChargingSession(r.ref, r.account_id, r.line, r.subscriber, utc(r.opened_at),
                           utc(r.updated_at), r.sequence, r.last_result, utc(r.released_at),
                           r.create_key, r.last_digest, r.notify_uri)
