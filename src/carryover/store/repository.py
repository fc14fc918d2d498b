"""Repositories: rows in, domain objects out, and the book's state written back.

`AccountRepository.load_book` rebuilds an AccountBook from the account's cursor,
its lines, its live buckets and its current counters; `save_book` writes back
what the fold changed: new ledger entries (append-only), buckets whose state
moved, counters, lines and the cursor. A replay (out-of-order input) reads the
whole history and the booked totals through the callables the book is given.

Row locks: `lock_account` takes the account row FOR UPDATE on PostgreSQL; on
SQLite the write transaction already holds the database's write lock from BEGIN
IMMEDIATE. Either way two writers to one account serialize.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    Text,
    and_,
    bindparam,
    cast,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from carryover.domain.book import AccountBook, LineState
from carryover.domain.buckets import POOL, Bucket
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import Input, Usage, effective_instant, order_key
from carryover.domain.ledger import Entry, EntryKind
from carryover.domain.plan_versions import PlanCatalog, PlanVersion
from carryover.domain.plans import BucketKind, Plan, plan_from_mapping
from carryover.domain.units import Unit
from carryover.store import codec
from carryover.store.bulk_update import insert_many, update_many
from carryover.store.pipelined import read_all
from carryover.store.tables import (
    accounts,
    buckets,
    counters,
    inputs,
    ledger_entries,
    lines,
    plan_versions,
    plans,
    usage_events,
)

# The hot path's statements are built once: SQLAlchemy memoizes a statement's cache key
# on the object, so reusing them skips most of the per-call construction cost.
_FIND_LINES = select(
    lines, accounts.c.timezone, accounts.c.cycle_day, accounts.c.grace_seconds,
).join(accounts, accounts.c.id == lines.c.account_id).where(
    lines.c.id.in_(bindparam("ids", expanding=True))
    | lines.c.msisdn.in_(bindparam("msisdns", expanding=True))
    | lines.c.imsi.in_(bindparam("imsis", expanding=True))).order_by(lines.c.id)
_ACCOUNT = select(accounts).where(accounts.c.id == bindparam("account_id"))
PLAN_TEXTS = select(
    plan_versions.c.plan_id.label("id"), plan_versions.c.version,
    cast(plan_versions.c.body, Text).label("body"), plan_versions.c.recorded_at,
    plan_versions.c.effective_at, plan_versions.c.next_boundary_after,
).order_by(plan_versions.c.plan_id, plan_versions.c.version)
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
_NEW_ENTRIES = insert(ledger_entries).inline()
_NEW_BUCKETS = insert(buckets).inline()
_CURSOR_SETS = ("cycle_start", "cycle_end", "until", "segment_start", "last_key")
_BUCKET_SETS = ("owner", "unit", "kind", "granted", "remaining", "valid_from", "valid_until",
                "priority", "rollable", "origin", "closed")


# Identifier prefixes that say which kind of identifier follows (TS 23.003 SUPI, GPSI).
TYPED = ("imsi", "msisdn")


def split_typed(ident: str) -> tuple[str | None, str]:
    """(`imsi` or `msisdn`, the value) for a typed identifier, else (None, ident)."""
    for kind in TYPED:
        if ident.startswith(kind + "-"):
            return kind, ident[len(kind) + 1:]
    return None, ident


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every instant in carryover is UTC-aware."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@lru_cache(maxsize=1024)
def _parsed(body: str) -> Plan:
    """Plans are re-validated when read; the same stored body always means the same Plan."""
    return plan_from_mapping(json.loads(body))


def _bucket_state(b: Bucket) -> tuple:
    return (b.granted, b.remaining, b.valid_until, b.closed)


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


def plans_from_rows(rows: Iterable[Any]) -> PlanCatalog:
    """The catalog, every version of every plan, from the rows of PLAN_TEXTS."""
    series: dict[str, list[PlanVersion]] = {}
    for row in rows:
        series.setdefault(row.id, []).append(PlanVersion(
            _parsed(row.body), row.version, utc(row.recorded_at), utc(row.effective_at),
            utc(row.next_boundary_after)))
    return PlanCatalog(series)


def snapshot_of(book: AccountBook) -> dict:
    """What `save_books` compares a book against to find the rows that moved."""
    return {
        "buckets": {b.id: _bucket_state(b) for b in book.buckets.values()},
        "counters": dict(book.counters),
        "lines": {k: (s.plan_id, s.pending_plan, dict(s.limits)) for k, s in book.lines.items()},
    }


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


def usage_row(account_id: int, item: Usage, calendar: CycleCalendar,
               grace: timedelta) -> dict:
    effective, late = effective_instant(item, calendar, grace)
    return {"event_id": item.id, "account_id": account_id, "line": item.line, "at": item.at,
            "received_at": item.received_at, "effective_at": effective,
            "amount": item.amount, "unit": str(item.unit),
            "rating_group": item.rating_group, "late": late}


@cache
def _counter_upsert(dialect: str):
    """INSERT ... ON CONFLICT DO UPDATE of counters, built once per dialect (building
    `excluded` copies every column: it was a tenth of an Nchf request's CPU)."""
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(counters)
    return statement.on_conflict_do_update(
        index_elements=["account_id", "cycle_start", "line", "unit", "name"],
        set_={"value": statement.excluded.value})


class PlanRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add_version(self, plan_id: str, body: dict, source: str, at: datetime,
                    effective_at: datetime | None = None,
                    next_boundary_after: datetime | None = None) -> int:
        """Append a version to `plan_id`'s series (creating the series as version 1);
        the series row keeps the latest body. Stored versions are never updated."""
        latest = self.conn.execute(
            select(func.max(plan_versions.c.version)).where(plan_versions.c.plan_id == plan_id)
        ).scalar()
        exists = self.conn.execute(select(plans.c.id).where(plans.c.id == plan_id)).first()
        if exists:
            self.conn.execute(update(plans).where(plans.c.id == plan_id)
                              .values(body=body, source=source, loaded_at=at))
        else:
            self.conn.execute(insert(plans).values(id=plan_id, body=body, source=source,
                                                   loaded_at=at))
        version = (latest or 0) + 1
        if version == 1:
            effective_at = next_boundary_after = None  # the first version: always
        self.conn.execute(insert(plan_versions).values(
            plan_id=plan_id, version=version, body=body, source=source, recorded_at=at,
            effective_at=effective_at, next_boundary_after=next_boundary_after))
        return version

    def upsert(self, plan_id: str, body: dict, source: str, at: datetime) -> None:
        """Make `body` the id's latest version, in force from `at` (version 1: always),
        unless it already is; earlier versions stay as they are."""
        versions = self.all().versions(plan_id)
        if versions and versions[-1].plan == plan_from_mapping(body):
            return
        self.add_version(plan_id, body, source, at, effective_at=at)

    def version_rows(self, plan_id: str) -> list[Any]:
        """`plan_id`'s versions, oldest first (body, source and instants)."""
        return self.version_rows_of([plan_id]).get(plan_id, [])

    def version_rows_of(self, plan_ids: Sequence[str]) -> dict[str, list[Any]]:
        """The versions of several plans in one query: id -> rows, oldest first."""
        out: dict[str, list[Any]] = {}
        if not plan_ids:
            return out
        for row in self.conn.execute(select(plan_versions).where(
                plan_versions.c.plan_id.in_(list(plan_ids))).order_by(
                plan_versions.c.plan_id, plan_versions.c.version)):
            out.setdefault(row.plan_id, []).append(row)
        return out

    def all(self) -> PlanCatalog:
        # The body as the stored JSON text: the parse cache is keyed on it, so a plan
        # that did not change costs neither a JSON decode by the driver nor a re-dump.
        return plans_from_rows(self.conn.execute(PLAN_TEXTS))

    def sources(self) -> dict[str, str]:
        return dict(self.conn.execute(select(plans.c.id, plans.c.source)).all())


def booking_clock() -> datetime:
    """When the store books what a fold wrote: the server's clock (tests replace it)."""
    return datetime.now(UTC)


class AccountRepository:
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
        or +X; never a line id (no line id starts with either, see `TYPED`). Any other
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

    # ---- inputs ---------------------------------------------------------------------
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

    # ---- the book ---------------------------------------------------------------------
    def load_book(self, account: Any, all_plans: dict[str, Plan]) -> tuple[AccountBook, dict]:
        return self.load_books([account], all_plans)[account.id]

    def load_books(self, account_rows: Iterable[Any], all_plans: dict[str, Plan],
                   fetched: Sequence[list[Any]] | None = None,
                   ) -> dict[int, tuple[AccountBook, dict]]:
        """The books of several accounts (their rows, locked by the caller), in three
        queries whatever their number: lines, live buckets, current counters
        (`book_queries`; `fetched`: their rows, when the caller ran them).

        Each book comes with its snapshot, what `save_books` diffs against; the
        snapshot also carries, for notifications, the lines' MSISDNs (`msisdns`) and the
        alert thresholds of the lines that picked some (`alert_thresholds`)."""
        rows = {row.id: row for row in account_rows}
        if not rows:
            return {}
        ids = sorted(rows)
        if fetched is None:
            fetched = read_all(self.conn, book_queries(rows.values()))
        line_rows, bucket_rows, counter_rows = [*fetched, []][:3]
        out: dict[int, tuple[AccountBook, dict]] = {}
        msisdns: dict[int, dict[str, str]] = {i: {} for i in ids}
        thresholds: dict[int, dict[str, tuple[int, ...]]] = {i: {} for i in ids}
        books = {i: self._empty_book(rows[i], all_plans) for i in ids}
        for row in line_rows:
            books[row.account_id].lines[row.id] = LineState(
                row.id, utc(row.opened_at), row.plan_id, row.member, row.pending_plan,
                {Unit(k): v for k, v in (row.limits or {}).items()})
            msisdns[row.account_id][row.id] = row.msisdn
            if row.alert_thresholds is not None:
                thresholds[row.account_id][row.id] = tuple(row.alert_thresholds)
        for row in bucket_rows:
            books[row.account_id].buckets[row.id] = Bucket(
                id=row.id, owner=row.owner, unit=Unit(row.unit), kind=BucketKind(row.kind),
                granted=row.granted, valid_from=utc(row.valid_from),
                valid_until=utc(row.valid_until), priority=row.priority, rollable=row.rollable,
                origin=row.origin, remaining=row.remaining, closed=row.closed)
        for row in counter_rows:
            books[row.account_id].counters[
                (row.cycle_start, row.line, Unit(row.unit), row.name)] = row.value
        for i in ids:
            book = books[i]
            book.history, book.booked_totals = self.readers(i, book)
            out[i] = (book, {**snapshot_of(book), "msisdns": msisdns[i],
                             "alert_thresholds": thresholds[i]})
        return out

    def readers(self, account_id: int, book: AccountBook) -> tuple:
        """Where a replay of the account's book reads its history and booked totals."""
        return (lambda: self.history(account_id, book.calendar, book.grace),
                lambda: self.booked_totals(account_id))

    @staticmethod
    def _empty_book(account: Any, all_plans: dict[str, Plan]) -> AccountBook:
        """The account's book with its cursor and pool, before lines and buckets."""
        calendar = CycleCalendar(account.cycle_day, account.timezone)
        book = AccountBook(calendar, all_plans, timedelta(seconds=account.grace_seconds))
        book.cycle_start = utc(account.cycle_start)
        book.cycle_end = utc(account.cycle_end)
        book.until = utc(account.until)
        book.segment_start = utc(account.segment_start)
        if account.last_key is not None:
            at, rank, ident = account.last_key
            book.last_key = (datetime.fromisoformat(at), rank, ident)
        if account.pool_plan_id is not None:
            book.lines[POOL] = LineState(POOL, utc(account.pool_opened_at), account.pool_plan_id,
                                         pending_plan=account.pool_pending_plan)
        return book

    def save_book(self, account_id: int, book: AccountBook, snapshot: dict) -> None:
        self.save_books([(account_id, book, snapshot)])

    def save_books(self, changed: Iterable[tuple[int, AccountBook, dict]]) -> None:
        """Write back what the folds changed, for several accounts in a few statements
        (one per kind of row, whatever the number of accounts).

        Entries are stored as recorded now (`booking_clock`, or the book's `now` when
        its caller set one): whatever instant the pure fold gave them, this is when
        the engine booked them, which is what a statement `as_of` asks about."""
        changed = sorted(changed, key=lambda item: item[0])
        entries, updates, new_buckets, counter_rows, cursors, closes = [], [], [], [], [], []
        clock = booking_clock()
        for account_id, book, snapshot in changed:
            recorded = book.now or clock
            entries.extend(_entry_row(account_id, e, recorded) for e in book.entries)
            known = snapshot["buckets"]
            # A replay adopted its state wholesale: compare with what is stored instead.
            existing = self._bucket_ids(account_id) if book.replayed else set(known)
            moved = [b for b in book.buckets.values()
                     if b.id not in known or known[b.id] != _bucket_state(b) or book.replayed]
            for b in moved:
                values = _bucket_values(b)
                if b.id in existing:
                    updates.append({"account_id": account_id, "id": b.id, **values})
                else:
                    new_buckets.append({"account_id": account_id, "id": b.id, **values})
            if book.replayed:
                # Buckets the replay no longer has (a deposit that shrank to nothing) were
                # adjusted to zero by the corrections; close them so they are never drawn.
                closes.extend({"account_id": account_id, "id": i, "remaining": 0,
                               "closed": True}
                              for i in sorted(existing - {b.id for b in moved}))
            # A replay may drop a counter to zero (absent from its book): the stored row
            # is written as 0 then, or it would keep the value booked before the replay.
            keys = set(book.counters) | (set(snapshot["counters"]) if book.replayed else set())
            counter_rows.extend(
                _counter_row(account_id, key, book.counters.get(key, 0))
                for key in sorted(keys, key=str)
                if book.replayed or snapshot["counters"].get(key) != book.counters.get(key, 0))
            for name, state in sorted(book.lines.items()):
                if snapshot["lines"].get(name) != (state.plan_id, state.pending_plan,
                                                   dict(state.limits)):
                    self._save_line(account_id, state)
            key = book.last_key
            cursors.append({
                "id": account_id, "cycle_start": book.cycle_start,
                "cycle_end": book.cycle_end, "until": book.until,
                "segment_start": book.segment_start,
                "last_key": None if key is None else [key[0].isoformat(), key[1], key[2]]})
        insert_many(self.conn, _NEW_ENTRIES, ledger_entries, entries)
        update_many(self.conn, buckets, ("account_id", "id"), _BUCKET_SETS, updates)
        update_many(self.conn, buckets, ("account_id", "id"), ("remaining", "closed"), closes)
        insert_many(self.conn, _NEW_BUCKETS, buckets, new_buckets)
        insert_many(self.conn, _counter_upsert(self.conn.dialect.name), counters, counter_rows,
                    "ON CONFLICT (account_id, cycle_start, line, unit, name) "
                    "DO UPDATE SET value = EXCLUDED.value")
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
