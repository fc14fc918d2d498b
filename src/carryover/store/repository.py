"""Accounts, their lines and their books: rows in, domain objects out, and the
book's state written back.

`AccountRepository.load_book` rebuilds an AccountBook from the account's cursor,
its lines, its live buckets and its current counters; `save_book` writes back
what the fold changed: new ledger entries (append-only), buckets whose state
moved, counters, lines and the cursor. A replay (out-of-order input) reads the
whole history and the booked totals through the history the book is given
(`history_of`); those reads, and the writing of inputs, are store.account_history.
The plan catalog is store.plan_repository; the store's instants are
store.instants.

Row locks: `lock_account` takes the account row FOR UPDATE on PostgreSQL; on
SQLite the write transaction already holds the database's write lock from BEGIN
IMMEDIATE. Either way two writers to one account serialize.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence, Set
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, insert, select, tuple_, update

from carryover.domain.book import AccountBook
from carryover.domain.book_state import Cursor, LineState, Snapshot
from carryover.domain.buckets import POOL, Bucket, BucketTable
from carryover.domain.cycles import CycleCalendar
from carryover.domain.ledger import Entry
from carryover.domain.plans import BucketKind, Plan
from carryover.domain.subscriber_ids import split_typed
from carryover.domain.units import Unit
from carryover.store.account_history import AccountHistory, StoredHistory
from carryover.store.instants import booking_clock, utc
from carryover.store.many_rows import OnConflict, insert_many, update_many
from carryover.store.pipelined import read_all
from carryover.store.tables import accounts, buckets, counters, ledger_entries, lines

__all__ = ["AccountRepository", "book_queries"]

# The hot path's statements are built once: SQLAlchemy memoizes a statement's cache key
# on the object, so reusing them skips most of the per-call construction cost.
_FIND_LINES = select(
    lines, accounts.c.timezone, accounts.c.cycle_day, accounts.c.grace_seconds,
).join(accounts, accounts.c.id == lines.c.account_id).where(
    lines.c.id.in_(bindparam("ids", expanding=True))
    | lines.c.msisdn.in_(bindparam("msisdns", expanding=True))
    | lines.c.imsi.in_(bindparam("imsis", expanding=True))).order_by(lines.c.id)
_ACCOUNT = select(accounts).where(accounts.c.id == bindparam("account_id"))
# FOR NO KEY UPDATE: excludes other writers of the account, yet does not block inserts
# whose foreign keys merely reference it.
_ACCOUNT_FOR_UPDATE = _ACCOUNT.with_for_update(key_share=True)
_ACCOUNT_LINES = select(lines).where(lines.c.account_id == bindparam("account_id")).order_by(
    lines.c.id)
_LINES_OF = select(lines).where(lines.c.account_id.in_(bindparam("ids", expanding=True))
                                 ).order_by(lines.c.account_id, lines.c.id)
_CYCLE_COUNTERS_OF = select(counters).where(
    tuple_(counters.c.account_id, counters.c.cycle_start).in_(bindparam("keys", expanding=True)))
_LIVE_BUCKETS_OF = select(buckets).where(and_(
    buckets.c.account_id.in_(bindparam("ids", expanding=True)), buckets.c.closed.is_(False))
    ).order_by(buckets.c.account_id, buckets.c.id)
# `inline()`: no RETURNING of generated keys (nothing reads them), so the statements
# need no answer and can go out in a pipeline (services.charging.group_commit).
_CURSOR_SETS = ("cycle_start", "cycle_end", "until", "segment_start", "last_key")
_BUCKET_SETS = ("owner", "unit", "kind", "granted", "remaining", "valid_from", "valid_until",
                "priority", "rollable", "origin", "closed")


def book_queries(account_rows: Iterable[Any]) -> list[tuple[Any, dict]]:
    """The reads `load_books` needs for these account rows: lines, live buckets and,
    for accounts in a cycle, that cycle's counters (independent of each other)."""
    rows = sorted(account_rows, key=lambda row: row.id)
    ids = [row.id for row in rows]
    queries: list[tuple[Any, dict]] = [(_LINES_OF, {"ids": ids}), (_LIVE_BUCKETS_OF, {"ids": ids})]
    current = [(row.id, utc(row.cycle_start).isoformat()) for row in rows
               if row.cycle_start is not None]
    if current:
        queries.append((_CYCLE_COUNTERS_OF, {"keys": current}))
    return queries


def _bucket_values(b: Bucket) -> dict:
    return {"owner": b.owner, "unit": str(b.unit), "kind": str(b.kind),
            "granted": b.granted, "remaining": b.remaining, "valid_from": b.valid_from,
            "valid_until": b.valid_until, "priority": b.priority,
            "rollable": b.rollable, "origin": b.origin, "closed": b.closed}


def _entry_row(account_id: int, e: Entry, recorded_at: datetime) -> dict:
    return {"account_id": account_id, "effective_at": e.effective_at,
            "recorded_at": recorded_at, "kind": str(e.kind), "unit": str(e.unit),
            "amount": e.amount, "bucket_id": e.bucket_id, "owner": e.owner,
            "line": e.line, "ref": e.ref, "note": e.note}


def _counter_row(account_id: int, key: tuple, value: int) -> dict:
    cycle, line, unit, name = key
    return {"account_id": account_id, "cycle_start": cycle, "line": line, "unit": str(unit),
            "name": name, "value": value}


_COUNTER_CONFLICT = OnConflict(("account_id", "cycle_start", "line", "unit", "name"), ("value",))


def _cursor_of(account: Any) -> Cursor:
    """The account row's cursor columns as the book's Cursor."""
    key = None
    if account.last_key is not None:
        at, rank, ident = account.last_key
        key = (datetime.fromisoformat(at), rank, ident)
    return Cursor(utc(account.cycle_start), utc(account.cycle_end),
                  utc(account.segment_start), utc(account.until), key)


def _pool_of(account: Any) -> dict[str, LineState]:
    """The account's lines before its line rows: the family pool, if it has one."""
    if account.pool_plan_id is None:
        return {}
    return {POOL: LineState(POOL, utc(account.pool_opened_at), account.pool_plan_id,
                            pending_plan=account.pool_pending_plan)}


class AccountRepository(AccountHistory):
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # ---- accounts and lines --------------------------------------------------------
    def create_account(self, name: str, cycle_day: int, timezone: str, at: datetime,
                       grace: timedelta) -> int:
        result = self.conn.execute(insert(accounts).values(
            name=name, cycle_day=cycle_day, timezone=timezone, created_at=at,
            grace_seconds=int(grace.total_seconds()), version=0))
        return int(result.inserted_primary_key[0])

    def account_by_name(self, name: str) -> Any:
        return self.conn.execute(select(accounts).where(accounts.c.name == name)).first()

    def account(self, account_id: int) -> Any:
        return self.conn.execute(_ACCOUNT, {"account_id": account_id}).first()

    def lock_account(self, account_id: int) -> Any:
        locking = self.conn.dialect.name == "postgresql"
        query = _ACCOUNT_FOR_UPDATE if locking else _ACCOUNT
        return self.conn.execute(query, {"account_id": account_id}).first()

    def set_alert_thresholds(self, account_id: int, line_id: str,
                             thresholds: list[int] | None) -> None:
        """Store the line's alert thresholds (None: the defaults). The account's version
        moves too: a book kept with the old thresholds in its snapshot is read again."""
        self.conn.execute(update(lines).where(lines.c.id == line_id)
                          .values(alert_thresholds=thresholds))
        self.conn.execute(update(accounts).where(accounts.c.id == account_id)
                          .values(version=accounts.c.version + 1))

    def alert_thresholds(self, line_id: str) -> list[int] | None:
        """The line's stored alert thresholds; None where it picked none."""
        return self.conn.execute(select(lines.c.alert_thresholds)
                                 .where(lines.c.id == line_id)).scalar_one_or_none()

    def find_line(self, ident: str) -> Any:
        """A line by id, MSISDN (with or without +) or IMSI, with its account's calendar."""
        return self.find_lines([ident]).get(ident)

    def find_lines(self, idents: Iterable[str]) -> dict[str, Any]:
        """`find_line` for many identifiers in one query: ident -> row (absent: unknown).

        An identifier with a type prefix is looked up as that type only: `imsi-X` (a
        SUPI) the line whose IMSI is X, `msisdn-X` (a GPSI) the line whose MSISDN is X
        or +X; never a line id (no line id starts with either, domain/subscriber_ids.py). Any other
        identifier may be a line's id, MSISDN or IMSI, which are one namespace: a new
        line may not take an identifier any line has. Should stored lines predate that
        rule and share one, a line id wins over an MSISDN, an MSISDN over an IMSI, and
        then the lowest line id."""
        wanted: dict[str, tuple[set[str], set[str], set[str]]] = {}
        for ident in sorted(set(idents)):
            kind, value = split_typed(ident)
            numbers = {value, value.lstrip("+"), "+" + value.lstrip("+")}
            wanted[ident] = (numbers if kind is None else set(),  # as a line id
                             numbers if kind in (None, "msisdn") else set(),
                             {value} if kind in (None, "imsi") else set())
        if not wanted:
            return {}
        ids, msisdns, imsis = (sorted(set().union(*(w[n] for w in wanted.values())))
                               for n in range(3))
        rows = self.conn.execute(_FIND_LINES, {"ids": ids, "msisdns": msisdns,
                                               "imsis": imsis}).all()
        found: dict[str, Any] = {}
        for ident, names in wanted.items():
            for column, accepted in zip(("id", "msisdn", "imsi"), names, strict=True):
                row = next((r for r in rows if getattr(r, column) in accepted), None)
                if row is not None:  # rows come by line id: the lowest of that type
                    found[ident] = row
                    break
        return found

    def insert_line(self, **values: Any) -> None:
        self.conn.execute(insert(lines).values(**values))

    def account_lines(self, account_id: int) -> list[Any]:
        return list(self.conn.execute(_ACCOUNT_LINES, {"account_id": account_id}))

    # ---- the book ---------------------------------------------------------------------
    def load_book(self, account: Any, all_plans: dict[str, Plan]) -> tuple[AccountBook, Snapshot]:
        return self.load_books([account], all_plans)[account.id]

    def load_books(self, account_rows: Iterable[Any], all_plans: dict[str, Plan],
                   fetched: Sequence[list[Any]] | None = None,
                   ) -> dict[int, tuple[AccountBook, Snapshot]]:
        """The books of several accounts (their rows, locked by the caller), in three
        queries whatever their number: lines, live buckets, current counters
        (`book_queries`; `fetched`: their rows, when the caller ran them).

        Each book comes with its snapshot (domain/book_state.Snapshot), what `save_books`
        writes the changes since; it also carries, for notifications, the lines' MSISDNs
        (`msisdns`) and the alert thresholds of the lines that picked some
        (`alert_thresholds`)."""
        rows = {row.id: row for row in account_rows}
        if not rows:
            return {}
        ids = sorted(rows)
        if fetched is None:
            fetched = read_all(self.conn, book_queries(rows.values()))
        line_rows, bucket_rows, counter_rows = [*fetched, []][:3]
        out: dict[int, tuple[AccountBook, Snapshot]] = {}
        msisdns: dict[int, dict[str, str]] = {i: {} for i in ids}
        thresholds: dict[int, dict[str, tuple[int, ...]]] = {i: {} for i in ids}
        line_states = {i: _pool_of(rows[i]) for i in ids}
        bucket_states = {i: BucketTable() for i in ids}
        counter_values: dict[int, defaultdict] = {i: defaultdict(int) for i in ids}
        for row in line_rows:
            line_states[row.account_id][row.id] = LineState(
                row.id, utc(row.opened_at), row.plan_id, row.member, row.pending_plan,
                {Unit(k): v for k, v in (row.limits or {}).items()})
            msisdns[row.account_id][row.id] = row.msisdn
            if row.alert_thresholds is not None:
                thresholds[row.account_id][row.id] = tuple(row.alert_thresholds)
        for row in bucket_rows:
            bucket_states[row.account_id][row.id] = Bucket(
                id=row.id, owner=row.owner, unit=Unit(row.unit), kind=BucketKind(row.kind),
                granted=row.granted, valid_from=utc(row.valid_from),
                valid_until=utc(row.valid_until), priority=row.priority, rollable=row.rollable,
                origin=row.origin, remaining=row.remaining, closed=row.closed)
        for row in counter_rows:
            counter_values[row.account_id][
                (row.cycle_start, row.line, Unit(row.unit), row.name)] = row.value
        for i in ids:
            account = rows[i]
            calendar = CycleCalendar(account.cycle_day, account.timezone)
            grace = timedelta(seconds=account.grace_seconds)
            book = AccountBook.restore(
                calendar, all_plans, grace, lines=line_states[i], buckets=bucket_states[i],
                counters=counter_values[i], cursor=_cursor_of(account),
                history=self.history_of(i, calendar, grace))
            out[i] = (book, book.snapshot(msisdns[i], thresholds[i]))
        return out

    def history_of(self, account_id: int, calendar: CycleCalendar, grace: timedelta,
                   skip_usage: Set[str] = frozenset()) -> StoredHistory:
        """Where a replay of the account's book reads its history and booked totals."""
        return StoredHistory(self, account_id, calendar, grace, skip_usage)

    def save_book(self, account_id: int, book: AccountBook, snapshot: Snapshot) -> None:
        self.save_books([(account_id, book, snapshot)])

    def booked_at(self, book: AccountBook, clock: datetime | None = None) -> datetime:
        """When what `book` folded in this transaction is booked: its `now`, where its
        caller set one, else the server's clock (`clock`, or read now)."""
        return book.now or clock or booking_clock()

    def save_books(self, changed: Iterable[tuple[int, AccountBook, Snapshot]]) -> None:
        """Write back what the folds changed, for several accounts in a few statements
        (one per kind of row, whatever the number of accounts).

        Entries are stored as recorded now (`booking_clock`, or the book's `now` when
        its caller set one): whatever instant the pure fold gave them, this is when
        the engine booked them, which is what a statement `as_of` asks about."""
        changed = sorted(changed, key=lambda item: item[0])
        entries, updates, new_buckets, counter_rows, cursors, closes = [], [], [], [], [], []
        clock = booking_clock()
        for account_id, book, snapshot in changed:
            recorded = self.booked_at(book, clock)
            delta = book.changes(snapshot)
            entries.extend(_entry_row(account_id, e, recorded) for e in delta.entries)
            # A replay adopted its state wholesale: compare with what is stored instead.
            existing = (self._bucket_ids(account_id) if delta.replayed
                        else snapshot.buckets.keys())
            for b in delta.buckets:
                values = _bucket_values(b)
                if b.id in existing:
                    updates.append({"account_id": account_id, "id": b.id, **values})
                else:
                    new_buckets.append({"account_id": account_id, "id": b.id, **values})
            if delta.replayed:
                # Buckets the replay no longer has (a deposit that shrank to nothing) were
                # adjusted to zero by the corrections; close them so they are never drawn.
                closes.extend({"account_id": account_id, "id": i, "remaining": 0,
                               "closed": True}
                              for i in sorted(existing - {b.id for b in delta.buckets}))
            counter_rows.extend(_counter_row(account_id, key, value)
                                for key, value in delta.counters)
            for state in delta.lines:
                self._save_line(account_id, state)
            cursor = delta.cursor
            key = cursor.last_key
            cursors.append({
                "id": account_id, "cycle_start": cursor.cycle_start,
                "cycle_end": cursor.cycle_end, "until": cursor.until,
                "segment_start": cursor.segment_start,
                "last_key": None if key is None else [key[0].isoformat(), key[1], key[2]]})
        insert_many(self.conn, ledger_entries, entries)
        update_many(self.conn, buckets, ("account_id", "id"), _BUCKET_SETS, updates)
        update_many(self.conn, buckets, ("account_id", "id"), ("remaining", "closed"), closes)
        insert_many(self.conn, buckets, new_buckets)
        insert_many(self.conn, counters, counter_rows, _COUNTER_CONFLICT)
        update_many(self.conn, accounts, ("id",), _CURSOR_SETS, cursors,
                    also="version = version + 1")

    def _bucket_ids(self, account_id: int) -> set[str]:
        return {r.id for r in self.conn.execute(
            select(buckets.c.id).where(buckets.c.account_id == account_id))}

    def _save_line(self, account_id: int, state: LineState) -> None:
        if state.line == POOL:
            self.conn.execute(update(accounts).where(accounts.c.id == account_id).values(
                pool_plan_id=state.plan_id, pool_pending_plan=state.pending_plan,
                pool_opened_at=state.opened_at))
            return
        self.conn.execute(update(lines).where(lines.c.id == state.line).values(
            plan_id=state.plan_id, pending_plan=state.pending_plan,
            limits={str(k): v for k, v in state.limits.items()}))
