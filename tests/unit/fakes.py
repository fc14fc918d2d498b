"""A fake unit of work: the services' repositories in memory, for unit tests.

`FakeDatabase` holds what is committed. A `FakeUnitOfWork` on it works on a
copy taken when its block is entered: nothing it writes is visible to any other
unit of work (nor to the test) until `commit()`, and leaving the block without
committing throws the copy away, as the store's UnitOfWork rolls back. Like the
store's, one FakeUnitOfWork may be entered again and again, each time a new
transaction; `db.commits` counts the commits.

The repositories implement the protocols the services declare (services.charging.ports,
services.esim.ports, services.access.ports, services.notify.ports,
services.ledger.ports); tests/unit/test_fakes_match.py checks that they and the
store's classes have the methods of the protocols, with their parameters. As the
store's, the fake unit of work also hands out another unit of work on the same
database (`another`) and the deployment's webhook delivery lock (`delivery_lock`,
one holder per FakeDatabase).

Each account's book is kept whole (`State.books`): its buckets, closed or not, and
its entries, which are the account's stored ledger. The ledger's repositories
(FakeAccounts.load_book and save_book) hand a service a copy that holds only what
its own transaction books, with a history that answers the stored entries'
totals, as the store's books are; a write the store refuses on a unique key
raises `Taken`, which `FakeUnitOfWork.refuse_taken` turns into the service's error.
Plans given as Plan objects (not their plan-file mappings) have no stored text:
their plan rows hold only id, name and kind as the body.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from carryover.domain.book import AccountBook
from carryover.domain.book_state import Snapshot
from carryover.domain.buckets import POOL, Bucket
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import DEFAULT_GRACE, Input, Usage
from carryover.domain.ledger import Entry
from carryover.domain.notices import EXPIRING_WITHIN, owner_facts
from carryover.domain.plan_versions import PlanCatalog, PlanVersion
from carryover.domain.plans import Plan, plan_from_mapping
from carryover.domain.sessions import ChargingSession, QuotaHold
from carryover.domain.subscriber_ids import split_typed
from carryover.domain.units import Unit
from carryover.store import codec
from carryover.store.instants import booking_clock

# When the plans a FakeDatabase starts with were loaded (their rows need an instant).
SEEDED_AT = datetime(2025, 12, 1, tzinfo=UTC)


class Taken(Exception):
    """A write the store would refuse on a unique key (its IntegrityError)."""


@dataclass
class Account:
    id: int
    name: str
    cycle_day: int = 1
    timezone: str = "UTC"
    version: int = 0
    cycle_start: datetime | None = None
    created_at: datetime = SEEDED_AT
    grace_seconds: int = int(DEFAULT_GRACE.total_seconds())
    pool_plan_id: str | None = None


@dataclass
class Line:
    id: str
    account_id: int
    opened_at: datetime
    msisdn: str
    imsi: str | None = None
    plan_id: str | None = None
    member: bool = False
    pending_plan: str | None = None
    limits: dict = field(default_factory=dict)
    alert_thresholds: list[int] | None = None


@dataclass
class Profile:
    iccid: str
    imsi: str
    profile_type: str
    state: str
    eid: str | None
    imported_at: datetime
    updated_at: datetime


@dataclass
class Order:
    id: int
    line_id: str
    iccid: str
    eid: str | None
    created_at: datetime
    matching_id: str | None = None
    smdp_address: str | None = None
    cc_hash: str | None = None
    closed_at: datetime | None = None
    closed_reason: str | None = None


@dataclass
class Event:
    id: int
    iccid: str
    at: datetime
    source: str
    kind: str
    from_state: str | None
    to_state: str | None
    detail: dict
    dedupe_key: str | None


@dataclass
class Key:
    id: str
    token_hash: str
    role: str
    account_id: int | None
    label: str | None
    created_at: datetime
    revoked_at: datetime | None = None
    account_name: str | None = None


@dataclass
class StoredResponse:
    api_key_id: str
    route_hash: str
    key: str
    route: str
    request_hash: str
    created_at: datetime
    status: int = 0
    body: Any = None


@dataclass
class BatchReads:
    plans: PlanCatalog
    sessions: list
    stored: set[str]
    books: dict[int, tuple[AccountBook, dict]]
    holds: list
    closed: dict[int, list[Bucket]]
    watched: list = field(default_factory=list)


@dataclass
class State:
    """Every table of the fake database."""

    plans: PlanCatalog
    accounts: dict[int, Account] = field(default_factory=dict)
    lines: dict[str, Line] = field(default_factory=dict)
    books: dict[int, AccountBook] = field(default_factory=dict)
    sessions: dict[str, ChargingSession] = field(default_factory=dict)
    holds: dict[tuple[str, int], QuotaHold] = field(default_factory=dict)
    usage: dict[str, dict] = field(default_factory=dict)
    outbox: dict[tuple[str, str, str], dict] = field(default_factory=dict)  # id: its place
    alert_thresholds: dict[str, list[int]] = field(default_factory=dict)  # line -> picked
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    deliveries: dict[int, Delivery] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    keys: dict[str, Key] = field(default_factory=dict)
    rates: dict[str, tuple[int, bool]] = field(default_factory=dict)
    responses: dict[tuple[str, str, str], StoredResponse] = field(default_factory=dict)
    reauthorizations: list[dict] = field(default_factory=list)  # pending
    inputs: dict[tuple[int, str], InputRow] = field(default_factory=dict)
    plan_versions: dict[str, list[PlanVersionRow]] = field(default_factory=dict)


def _copied(state: State) -> State:
    # Plans are immutable: shared, not copied (the books' catalogs too).
    shared = {id(state.plans): state.plans}
    shared.update((id(book.plans), book.plans) for book in state.books.values())
    return copy.deepcopy(state, shared)


class FakeDatabase:
    def __init__(self, plans: PlanCatalog | Mapping[str, Plan | Mapping]) -> None:
        """`plans`: a catalog, or plans by id, each a Plan or its plan-file mapping."""
        bodies: dict[str, dict] = {}
        if not isinstance(plans, PlanCatalog):
            bodies = {k: dict(v) for k, v in plans.items() if not isinstance(v, Plan)}
            plans = {k: plan_from_mapping(bodies[k]) if k in bodies else v
                     for k, v in plans.items()}
        catalog = PlanCatalog.of(plans)
        self.state = State(catalog)
        for plan_id in catalog:
            self.state.plan_versions[plan_id] = [
                PlanVersionRow(plan_id, v.version, bodies.get(plan_id) or {
                    "id": plan_id, "name": v.plan.name, "kind": str(v.plan.kind)},
                    "preset", v.recorded_at or SEEDED_AT, v.effective_at, v.next_boundary_after)
                for v in catalog.versions(plan_id)]
        self.commits = 0
        self.delivery_locked = False  # the webhook delivery lock (not transactional)

    def copy(self) -> State:
        return _copied(self.state)

    # ---- set-up, committed at once (as a test's fixtures are) ------------------------
    def add_account(self, name: str, *, cycle_day: int = 1, timezone: str = "UTC",
                    grace=None) -> int:
        account_id = len(self.state.accounts) + 1
        self.state.accounts[account_id] = Account(
            account_id, name, cycle_day, timezone,
            grace_seconds=int((grace or DEFAULT_GRACE).total_seconds()))
        calendar = CycleCalendar(cycle_day, timezone)
        self.state.books[account_id] = (AccountBook(calendar, self.state.plans) if grace is None
                                        else AccountBook(calendar, self.state.plans, grace))
        return account_id

    def add_line(self, account_id: int, line: str, plan_id: str | None, at: datetime, *,
                 msisdn: str, imsi: str | None = None, member: bool = False) -> None:
        from carryover.domain.inputs import OpenLine

        book = self.state.books[account_id]
        outcome = book.submit(OpenLine(f"open:{line}", line, at, plan_id, member=member))
        assert outcome.status == "accepted", outcome.reason
        self.state.lines[line] = Line(line, account_id, at, msisdn, imsi, plan_id, member)


class FakeUnitOfWork:
    """The services' unit of work, in memory (see the module docstring)."""

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self._work: State | None = None

    def __enter__(self) -> FakeUnitOfWork:
        assert self._work is None, "a unit of work is not entered twice at once"
        self._work = self.db.copy()
        self.accounts = FakeNoticeAccounts(self._work)
        self.charging = FakeCharging(self._work, self.accounts)
        self.reauthorizations = FakeReauthorizations(self._work)
        self.outbox = FakeNoticeOutbox(self._work)
        self.esim = FakeEsim(self._work)
        self.keys = FakeKeys(self._work)
        self.idempotency = FakeIdempotency(self._work)
        self.plans = FakePlans(self._work)
        self.webhooks = FakeWebhooks(self._work)
        self.directory = FakeDirectory(self._work)
        self.line_import = FakeLineImport(self._work)
        return self

    def commit(self) -> None:
        assert self._work is not None, "commit outside the block"
        self.db.state = _copied(self._work)
        self.db.commits += 1

    @contextlib.contextmanager
    def refuse_taken(self, error: Exception) -> Iterator[None]:
        """Within: a write refused on a unique key (`Taken`) raises `error`."""
        try:
            yield
        except Taken as exc:
            raise error from exc

    def __exit__(self, *exc_info: object) -> None:
        self._work = None  # what was not committed is gone

    def reading(self) -> FakeUnitOfWork:
        """A unit of work for reads only: in memory, any unit of work on the database."""
        return FakeUnitOfWork(self.db)

    def another(self) -> FakeUnitOfWork:
        """A new unit of work on the same database (for a thread of its own)."""
        return FakeUnitOfWork(self.db)

    def delivery_lock(self) -> FakeLock | None:
        """The database's delivery lock, or None while another holder has it."""
        if self.db.delivery_locked:
            return None
        self.db.delivery_locked = True
        return FakeLock(self.db)


class FakeAccounts:
    def __init__(self, state: State) -> None:
        self.s = state

    def account_by_name(self, name: str) -> Any:
        return next((a for a in self.s.accounts.values() if a.name == name), None)

    def account(self, account_id: int) -> Any:
        return self.s.accounts.get(account_id)

    def find_line(self, ident: str) -> Any:
        return self.find_lines([ident]).get(ident)

    def find_lines(self, idents: Iterable[str]) -> dict[str, Any]:
        # As the store's: a typed identifier is only that type; else a line id wins over
        # an MSISDN (with or without +), an MSISDN over an IMSI, then the lowest id.
        by_id = sorted(self.s.lines.values(), key=lambda row: row.id)
        out = {}
        for ident in sorted(set(idents)):
            kind, value = split_typed(ident)
            numbers = {value, value.lstrip("+"), "+" + value.lstrip("+")}
            wanted = (numbers if kind is None else set(),
                      numbers if kind in (None, "msisdn") else set(),
                      {value} if kind in (None, "imsi") else set())
            for column, accepted in zip(("id", "msisdn", "imsi"), wanted, strict=True):
                line = next((ln for ln in by_id if getattr(ln, column) in accepted), None)
                if line is not None:
                    out[ident] = self._row(line)
                    break
        return out

    def _row(self, line: Line) -> LineRow:
        a = self.s.accounts[line.account_id]
        return LineRow(line.id, line.account_id, line.msisdn, line.imsi, line.opened_at,
                       line.plan_id, line.member, line.pending_plan, dict(line.limits),
                       None if line.alert_thresholds is None else list(line.alert_thresholds),
                       a.timezone, a.cycle_day, a.grace_seconds, a.name)

    # ---- what the ledger's services write and read ----------------------------------
    def create_account(self, name: str, cycle_day: int, timezone: str, at: datetime,
                       grace: timedelta) -> int:
        if self.account_by_name(name) is not None:
            raise Taken(f"account name {name!r}")
        account_id = max(self.s.accounts, default=0) + 1
        self.s.accounts[account_id] = Account(account_id, name, cycle_day, timezone,
                                              created_at=at,
                                              grace_seconds=int(grace.total_seconds()))
        self.s.books[account_id] = AccountBook(CycleCalendar(cycle_day, timezone),
                                               self.s.plans, grace)
        return account_id

    def lock_account(self, account_id: int) -> Any:
        return self.s.accounts.get(account_id)

    def insert_line(self, **values: Any) -> None:
        line = Line(values["id"], values["account_id"], values["opened_at"], values["msisdn"],
                    values.get("imsi"), values.get("plan_id"), bool(values.get("member")),
                    values.get("pending_plan"), dict(values.get("limits") or {}))
        _unique_line(self.s, line)
        self.s.lines[line.id] = line

    def account_lines(self, account_id: int) -> list[Any]:
        return [self._row(ln) for ln in sorted(self.s.lines.values(), key=lambda row: row.id)
                if ln.account_id == account_id]

    def load_book(self, account: Any, all_plans: dict[str, Plan]) -> tuple[AccountBook, Snapshot]:
        kept = self.s.books[account.id]
        # This transaction's copy: its entries are those it books; the stored ones are
        # its history's (what a replay corrects against).
        book = copy.deepcopy(kept, {id(kept.entries): [], id(kept.plans): kept.plans})
        book.use_plans(all_plans)
        book.record_at(None)  # booked at the clock of `save_book`, as the store's
        book.attach(_StoredEntries(kept.entries))
        lines = [ln for ln in self.s.lines.values() if ln.account_id == account.id]
        return book, book.snapshot(
            {ln.id: ln.msisdn for ln in lines},
            {ln.id: tuple(ln.alert_thresholds) for ln in lines
             if ln.alert_thresholds is not None})

    def booked_at(self, book: AccountBook, clock: datetime | None = None) -> datetime:
        return book.now or clock or booking_clock()

    def save_book(self, account_id: int, book: AccountBook, snapshot: Snapshot) -> None:
        recorded = self.booked_at(book)
        stored = self.s.books[account_id].entries
        entries = [*stored, *(replace(e, recorded_at=recorded) for e in book.entries)]
        kept = copy.deepcopy(book, {id(book.entries): entries, id(book.plans): book.plans,
                                    id(book._history): None})
        kept.replayed = False
        self.s.books[account_id] = kept
        _keep_rows(self.s, account_id, kept)

    def record(self, account_id: int, item: Input, calendar: CycleCalendar,
               grace: timedelta, actor: str | None = None,
               recorded_at: datetime | None = None) -> None:
        if isinstance(item, Usage):
            if item.id in self.s.usage:
                raise Taken(f"usage event {item.id!r}")
            self.s.usage[item.id] = {"account_id": account_id, "line": item.line,
                                     "at": item.at, "amount": item.amount}
            return
        if (account_id, item.id) in self.s.inputs:
            raise Taken(f"input {item.id!r} of account {account_id}")
        kind, body = codec.encode(item)
        self.s.inputs[(account_id, item.id)] = InputRow(
            account_id, item.id, kind, getattr(item, "line", None), item.at, body, actor,
            recorded_at)

    def changes(self, account_id: int, start: datetime, end: datetime) -> list[Any]:
        return sorted((replace(r, body=copy.deepcopy(r.body)) for r in self.s.inputs.values()
                       if r.account_id == account_id and start <= r.at < end),
                      key=lambda r: (r.at, r.input_id))

    def entries(self, account_id: int, before: datetime | None = None) -> list[Entry]:
        return [e for e in self.s.books[account_id].entries
                if before is None or e.effective_at < before]

    def unlimited_bucket_ids(self, account_id: int) -> set[str]:
        return {b.id for b in self.s.books[account_id].buckets.values() if b.granted is None}


class FakeCharging:
    def __init__(self, state: State, accounts: FakeAccounts) -> None:
        self.s, self._accounts = state, accounts
        self.pipelined: list[bool] = []

    def subscribers(self, idents: Iterable[str]) -> dict[str, Any]:
        return self._accounts.find_lines(idents)

    def session_accounts(self, refs: Sequence[str]) -> dict[str, int]:
        return {r: self.s.sessions[r].account_id for r in refs if r in self.s.sessions}

    def lock_accounts(self, ids: Sequence[int]) -> list[Any]:
        return [self.s.accounts[i] for i in sorted(ids) if i in self.s.accounts]

    def read(self, refs: Sequence[str], events: Sequence[str], missing: Sequence[Any],
             keys: Sequence[str] = (), watch: Sequence[int] = ()) -> BatchReads:
        books = {}
        for row in missing:
            lines = {ln.id: ln.msisdn for ln in self.s.lines.values() if ln.account_id == row.id}
            books[row.id] = (self.s.books[row.id], Snapshot(msisdns=lines))
        loaded = {row.id for row in missing}
        wanted = set(keys)
        sessions = [s for ref, s in sorted(self.s.sessions.items()) if ref in refs or (
            s.create_key in wanted and s.released_at is None)]
        return BatchReads(
            self.s.plans, [replace(s) for s in sessions],
            {e for e in events if e in self.s.usage}, books,
            [replace(h) for h in self.s.holds.values() if h.account_id in loaded], {},
            [replace(s) for _, s in sorted(self.s.sessions.items())
             if s.account_id in set(watch) and s.released_at is None and s.notify_uri])

    def watched(self, account_ids: Sequence[int]) -> list[ChargingSession]:
        return [replace(s) for _, s in sorted(self.s.sessions.items())
                if s.account_id in set(account_ids) and s.released_at is None
                and s.notify_uri]

    def attach(self, account_id: int, book: AccountBook) -> None:
        book.detach()

    @contextlib.contextmanager
    def writing(self, pipelined: bool = True) -> Iterator[None]:
        self.pipelined.append(pipelined)
        yield

    def add_sessions(self, sessions: Iterable[Any]) -> None:
        for s in sessions:
            assert s.ref not in self.s.sessions, f"session {s.ref} stored twice"
            assert s.create_key is None or not any(  # the store's unique index
                o.create_key == s.create_key and o.released_at is None
                for o in self.s.sessions.values()), f"create {s.create_key} opened twice"
            self.s.sessions[s.ref] = copy.deepcopy(s)

    def update_sessions(self, sessions: Iterable[Any]) -> None:
        for s in sessions:
            row = self.s.sessions[s.ref]
            row.updated_at, row.sequence = s.updated_at, s.sequence
            row.last_result, row.released_at = copy.deepcopy(s.last_result), s.released_at
            row.last_digest = s.last_digest

    def add_usage(self, events: Iterable[tuple[int, Usage, CycleCalendar, Any]]) -> None:
        for account_id, event, _, _ in events:
            assert event.id not in self.s.usage, f"usage event {event.id} stored twice"
            self.s.usage[event.id] = {"account_id": account_id, "line": event.line,
                                      "at": event.at, "amount": event.amount}

    def save_books(self, changed: Iterable[tuple[int, AccountBook, Snapshot]]) -> None:
        for account_id, book, _ in changed:
            self.s.books[account_id] = book
            _keep_rows(self.s, account_id, book)

    def drop_holds(self, keys: Sequence[tuple[str, int]]) -> None:
        for key in keys:
            self.s.holds.pop(tuple(key), None)

    def put_holds(self, holds: Iterable[Any]) -> None:
        for h in holds:
            self.s.holds[(h.ref, h.rating_group)] = copy.copy(h)


class FakeOutbox:
    def __init__(self, state: State) -> None:
        self.s = state

    def offer(self, rows: list[dict]) -> None:
        for row in rows:
            self.s.outbox.setdefault((row["line"], row["cycle_start"], row["kind"]),
                                     copy.deepcopy(row))

    def closed_buckets(self, account_ids: list[int],
                       since: datetime | None) -> dict[int, list[Bucket]]:
        # The fake's books are never reloaded: every bucket, closed or not, is in them.
        return {}

    def msisdns(self, account_id: int) -> dict[str, str]:
        return {ln.id: ln.msisdn for ln in self.s.lines.values() if ln.account_id == account_id}


class FakeEsim:
    def __init__(self, state: State) -> None:
        self.s = state

    def _held(self, iccid: str) -> bool:
        return any(o.iccid == iccid and o.closed_at is None for o in self.s.orders)

    def add_profiles(self, rows: list[dict[str, Any]], at: datetime) -> None:
        for row in rows:
            assert row["iccid"] not in self.s.profiles
            self.s.profiles[row["iccid"]] = Profile(
                row["iccid"], row["imsi"], row["profile_type"], row.get("state", "available"),
                None, at, at)

    def known(self, iccids: Iterable[str], imsis: Iterable[str]) -> tuple[set[str], set[str]]:
        held_imsis = {p.imsi for p in self.s.profiles.values()}
        return ({i for i in iccids if i in self.s.profiles},
                {i for i in imsis if i in held_imsis})

    def profile(self, iccid: str, lock: bool = False) -> Any:
        found = self.s.profiles.get(iccid)
        return None if found is None else replace(found)

    def profiles(self, state: str | None = None) -> list[Any]:
        return [replace(p) for p in sorted(self.s.profiles.values(),
                                           key=lambda p: (p.profile_type, p.iccid))
                if state is None or p.state == state]

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for p in self.s.profiles.values():
            name = "reserved" if p.state == "available" and self._held(p.iccid) else p.state
            by_state = out.setdefault(p.profile_type, {})
            by_state[name] = by_state.get(name, 0) + 1
        return out

    def pick_available(self, profile_type: str | None = None,
                       exclude: str | None = None) -> Any:
        free = [p for p in self.s.profiles.values()
                if p.state == "available" and not self._held(p.iccid)
                and (profile_type is None or p.profile_type == profile_type)
                and p.iccid != exclude]
        free.sort(key=lambda p: (p.imported_at, p.iccid))
        return replace(free[0]) if free else None

    def available_types(self) -> list[str]:
        return sorted({p.profile_type for p in self.s.profiles.values()
                       if p.state == "available" and not self._held(p.iccid)})

    def set_profile(self, iccid: str, at: datetime, **values: Any) -> None:
        profile = self.s.profiles[iccid]
        for name, value in {"updated_at": at, **values}.items():
            setattr(profile, name, str(value) if name == "state" else value)

    def create_order(self, line_id: str, iccid: str, eid: str | None, at: datetime) -> int:
        order_id = len(self.s.orders) + 1
        self.s.orders.append(Order(order_id, line_id, iccid, eid, at))
        return order_id

    def order(self, order_id: int) -> Any:
        return next((replace(o) for o in self.s.orders if o.id == order_id), None)

    def open_order(self, line_id: str) -> Any:
        return next((replace(o) for o in reversed(self.s.orders)
                     if o.line_id == line_id and o.closed_at is None), None)

    def open_order_for(self, iccid: str) -> Any:
        return next((replace(o) for o in reversed(self.s.orders)
                     if o.iccid == iccid and o.closed_at is None), None)

    def orders(self, line_id: str | None = None, iccid: str | None = None) -> list[Any]:
        return [replace(o) for o in self.s.orders
                if (line_id is None or o.line_id == line_id)
                and (iccid is None or o.iccid == iccid)]

    def update_order(self, order_id: int, **values: Any) -> None:
        order = next(o for o in self.s.orders if o.id == order_id)
        for name, value in values.items():
            setattr(order, name, value)

    def close_order(self, order_id: int, at: datetime, reason: str) -> None:
        self.update_order(order_id, closed_at=at, closed_reason=reason)

    def add_event(self, iccid: str, at: datetime, source: str, kind: str,
                  from_state: str | None = None, to_state: str | None = None,
                  detail: dict | None = None, dedupe_key: str | None = None) -> bool:
        if dedupe_key is not None and self.seen(dedupe_key):
            return False
        self.s.events.append(Event(
            len(self.s.events) + 1, iccid, at, source, kind,
            None if from_state is None else str(from_state),
            None if to_state is None else str(to_state), copy.deepcopy(detail or {}),
            dedupe_key))
        return True

    def seen(self, dedupe_key: str) -> bool:
        return any(e.dedupe_key == dedupe_key for e in self.s.events)

    def event_with_key(self, dedupe_key: str) -> Any:
        return next((replace(e) for e in self.s.events if e.dedupe_key == dedupe_key), None)

    def events(self, iccid: str) -> list[Any]:
        return [replace(e) for e in self.s.events if e.iccid == iccid]

    def line_account(self, line_id: str) -> Any:
        line = self.s.lines.get(line_id)
        if line is None:
            return None
        a = self.s.accounts[line.account_id]
        return _Row(msisdn=line.msisdn, id=a.id, name=a.name, cycle_start=a.cycle_start,
                    cycle_day=a.cycle_day, timezone=a.timezone)


@dataclass(frozen=True)
class _Row:
    msisdn: str
    id: int
    name: str
    cycle_start: datetime | None
    cycle_day: int
    timezone: str


class FakeKeys:
    def __init__(self, state: State) -> None:
        self.s = state

    def add_key(self, **values: Any) -> None:
        assert values["id"] not in self.s.keys
        account = self.s.accounts.get(values.get("account_id"))
        self.s.keys[values["id"]] = Key(**values,
                                        account_name=None if account is None else account.name)

    def all_keys(self) -> list[Any]:
        return [replace(k) for k in sorted(self.s.keys.values(),
                                           key=lambda k: (k.created_at, k.id))]

    def key(self, key_id: str) -> Any:
        found = self.s.keys.get(key_id)
        return None if found is None else replace(found)

    def key_by_hash(self, token_hash: str) -> Any:
        return next((replace(k) for k in self.s.keys.values() if k.token_hash == token_hash),
                    None)

    def revoke(self, key_id: str, at: datetime) -> None:
        self.s.keys[key_id].revoked_at = at

    def admit(self, key: str, now: int, interval: int, limit: int) -> tuple[int, bool]:
        stored = self.s.rates.get(key)
        if stored is None:
            self.s.rates[key] = (now + interval, True)
        else:
            start = max(stored[0], now)
            fits = start + interval - now <= limit
            self.s.rates[key] = (start + interval if fits else stored[0], fits)
        return self.s.rates[key]


class FakeIdempotency:
    def __init__(self, state: State) -> None:
        self.s = state

    def stored_response(self, api_key_id: str, route_hash: str, key: str) -> Any:
        found = self.s.responses.get((api_key_id, route_hash, key))
        return None if found is None else replace(found)

    def claim(self, **values: Any) -> bool:
        ident = (values["api_key_id"], values["route_hash"], values["key"])
        if ident in self.s.responses:
            return False
        self.s.responses[ident] = StoredResponse(**values)
        return True

    def complete(self, api_key_id: str, route_hash: str, key: str, status: int,
                 body: Any) -> None:
        stored = self.s.responses[(api_key_id, route_hash, key)]
        stored.status, stored.body = status, copy.deepcopy(body)

    def release(self, api_key_id: str, route_hash: str, key: str) -> None:
        self.s.responses.pop((api_key_id, route_hash, key), None)


# ---- notify: alert thresholds, notices from the stored state, webhooks ---------------
# (FakeUnitOfWork hangs FakeNoticeAccounts, FakeNoticeOutbox, FakePlans and FakeWebhooks
# on itself; the first two are FakeAccounts and FakeOutbox with what notify reads more.)


@dataclass
class Endpoint:
    id: str
    url: str
    secret: str
    kinds: str | None  # comma-wrapped (",usage_80,throttled,"), as the store keeps it
    since_outbox_id: int
    created_at: datetime
    disabled_at: datetime | None = None


@dataclass
class Delivery:
    id: int
    endpoint_id: str
    outbox_id: int
    status: str  # pending | delivered | dead
    attempts: int
    next_attempt_at: datetime
    last_error: str | None = None
    delivered_at: datetime | None = None


class FakeLock:
    """The delivery lock of a FakeDatabase while held."""

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def release(self) -> None:
        self._db.delivery_locked = False


class FakeNoticeAccounts(FakeAccounts):
    """The accounts, with the lines' alert thresholds (services.notify.ports.LineSettings)."""

    def set_alert_thresholds(self, account_id: int, line_id: str,
                             thresholds: list[int] | None) -> None:
        if thresholds is None:
            self.s.alert_thresholds.pop(line_id, None)
        else:
            self.s.alert_thresholds[line_id] = list(thresholds)
        self.s.accounts[account_id].version += 1

    def alert_thresholds(self, line_id: str) -> list[int] | None:
        found = self.s.alert_thresholds.get(line_id)
        return None if found is None else list(found)


class FakeNoticeOutbox(FakeOutbox):
    """The outbox, with the stored state notices are decided from (NoticeStore), read
    from the fake's books (which hold every bucket and counter of the account)."""

    def offer(self, rows: list[dict]) -> None:
        written = datetime.now(UTC)  # outbox.written_at: the backlog's age runs from it
        for row in rows:
            key = (row["line"], row["cycle_start"], row["kind"])
            if key not in self.s.outbox:
                self.s.outbox[key] = {**copy.deepcopy(row), "written_at": written}

    def notice_accounts(self, account_ids: Iterable[int]) -> dict[int, Any]:
        out = {}
        for account_id in account_ids:
            account, book = self.s.accounts.get(account_id), self.s.books.get(account_id)
            if account is None or book is None or book.cycle_start is None:
                continue
            pool = book.lines.get(POOL)
            out[account_id] = SimpleNamespace(
                id=account_id, name=account.name, cycle_start=book.cycle_start,
                cycle_end=book.cycle_end, until=book.until,
                pool_plan_id=pool.plan_id if pool is not None else None,
                cycle_day=account.cycle_day, timezone=account.timezone)
        return out

    def notice_lines(self, account_ids: Iterable[int]) -> list[Any]:
        wanted = set(account_ids)
        rows = []
        for line in sorted(self.s.lines.values(), key=lambda row: row.id):
            if line.account_id not in wanted:
                continue
            state = self.s.books[line.account_id].lines[line.id]
            picked = self.s.alert_thresholds.get(line.id)
            rows.append(SimpleNamespace(
                id=line.id, account_id=line.account_id, msisdn=line.msisdn, imsi=line.imsi,
                opened_at=line.opened_at, plan_id=state.plan_id, member=state.member,
                pending_plan=state.pending_plan,
                limits={unit.value: n for unit, n in state.limits.items()} or None,
                alert_thresholds=None if picked is None else list(picked)))
        return rows

    def cycle_counters(self, cycle: Mapping[int, str]) -> dict[tuple, int]:
        out: dict[tuple, int] = {}
        for account_id, start in cycle.items():
            book = self.s.books.get(account_id)
            if (book is None or book.cycle_start is None
                    or book.cycle_start.astimezone(UTC).isoformat() != start):
                continue
            for line in book.lines:
                for name in ("used", "pool"):
                    value = book.counter(book.cycle_start, line, Unit.DATA, name)
                    if value:
                        out[(account_id, line, name)] = value
        return out

    def bucket_facts(self, account_ids: list[int], at: datetime,
                     expiring_within: timedelta) -> dict[tuple, dict]:
        # domain.notices.owner_facts counts rollovers expiring within EXPIRING_WITHIN.
        assert expiring_within == EXPIRING_WITHIN, expiring_within
        out: dict[tuple, dict] = {}
        for account_id in account_ids:
            book = self.s.books.get(account_id)
            if book is None or book.cycle_start is None or book.cycle_end is None:
                continue
            for owner, facts in owner_facts(book.buckets.values(), book.cycle_start,
                                            book.cycle_end, at).items():
                out[(account_id, owner)] = facts
        return out


# ---- the ledger's rows and repositories (services.ledger.ports) -----------------------
@dataclass(frozen=True)
class LineRow:
    """A line as the store reads it: its columns, with its account's calendar and name."""

    id: str
    account_id: int
    msisdn: str
    imsi: str | None
    opened_at: datetime
    plan_id: str | None
    member: bool
    pending_plan: str | None
    limits: dict
    alert_thresholds: list[int] | None
    timezone: str
    cycle_day: int
    grace_seconds: int
    account_name: str


@dataclass(frozen=True)
class InputRow:
    """An input other than usage as stored: who gave it and when it was recorded."""

    account_id: int
    input_id: str
    kind: str
    line: str | None
    at: datetime
    body: dict
    actor: str | None
    recorded_at: datetime | None


@dataclass(frozen=True)
class PlanVersionRow:
    plan_id: str
    version: int
    body: dict
    source: str
    recorded_at: datetime
    effective_at: datetime | None = None
    next_boundary_after: datetime | None = None


def _keep_rows(state: State, account_id: int, book: AccountBook) -> None:
    """What the store writes of a saved book besides its buckets and entries: the
    account's cursor and version, its pool's plan, its lines' plans and limits."""
    account = state.accounts[account_id]
    account.version += 1
    account.cycle_start = book.cycle_start
    for name, line_state in book.lines.items():
        if name == POOL:
            account.pool_plan_id = line_state.plan_id
        elif name in state.lines:
            line = state.lines[name]
            line.plan_id, line.pending_plan = line_state.plan_id, line_state.pending_plan
            line.limits = {str(k): v for k, v in line_state.limits.items()}


def _unique_line(state: State, line: Line) -> None:
    """The unique keys of the lines table: id, MSISDN, IMSI (each as written)."""
    for other in state.lines.values():
        if (other.id == line.id or other.msisdn == line.msisdn
                or (line.imsi is not None and other.imsi == line.imsi)):
            raise Taken(f"line {line.id!r}, MSISDN {line.msisdn} or IMSI {line.imsi}")


class _StoredEntries:
    """The history of a book `FakeAccounts.load_book` hands out: the stored entries'
    totals (its inputs are all in the kept book's own `applied`)."""

    def __init__(self, entries: list[Entry]) -> None:
        self._entries = entries

    def inputs(self) -> Iterable[Input]:
        return ()

    def booked_totals(self) -> Iterable[tuple[tuple, datetime, int]]:
        for e in self._entries:
            yield (e.bucket_id, e.owner, e.line, e.unit, e.kind), e.effective_at, e.amount


class FakePlans:
    def __init__(self, state: State) -> None:
        self.s = state

    def all(self) -> PlanCatalog:
        return self.s.plans

    def add_version(self, plan_id: str, body: dict, source: str, at: datetime,
                    effective_at: datetime | None = None,
                    next_boundary_after: datetime | None = None) -> int:
        rows = self.s.plan_versions.setdefault(plan_id, [])
        version = len(rows) + 1
        if version == 1:
            effective_at = next_boundary_after = None  # the first version: always
        rows.append(PlanVersionRow(plan_id, version, copy.deepcopy(body), source, at,
                                   effective_at, next_boundary_after))
        self.s.plans = self.s.plans.with_version(PlanVersion(
            plan_from_mapping(body), version, at, effective_at, next_boundary_after))
        return version

    def version_rows(self, plan_id: str) -> list[Any]:
        return self.version_rows_of([plan_id]).get(plan_id, [])

    def version_rows_of(self, plan_ids: Sequence[str]) -> dict[str, list[Any]]:
        return {p: list(self.s.plan_versions[p]) for p in sorted(set(plan_ids))
                if p in self.s.plan_versions}


class FakeDirectory:
    def __init__(self, state: State) -> None:
        self.s = state
        self._accounts = FakeAccounts(state)

    def lines_page(self, account_id: int | None, after: str | None, limit: int,
                   plan_id: str | None = None) -> list[Any]:
        rows = [self._accounts._row(ln) for ln in sorted(self.s.lines.values(),
                                                         key=lambda row: row.id)
                if (account_id is None or ln.account_id == account_id)
                and (plan_id is None or ln.plan_id == plan_id)
                and (after is None or ln.id > after)]
        return rows[:limit]

    def accounts_page(self, after: str | None, limit: int, timezone: str | None = None,
                      family: bool | None = None) -> list[Any]:
        rows = []
        for a in sorted(self.s.accounts.values(), key=lambda row: row.name):
            if ((after is None or a.name > after)
                    and (timezone is None or a.timezone == timezone)
                    and (family is None or (a.pool_plan_id is not None) == family)):
                count = sum(1 for ln in self.s.lines.values() if ln.account_id == a.id)
                rows.append(SimpleNamespace(**vars(a), line_count=count))
        return rows[:limit]

    def _plan_row(self, plan_id: str) -> Any:
        latest = self.s.plan_versions[plan_id][-1]
        return SimpleNamespace(id=plan_id, body=copy.deepcopy(latest.body),
                               source=latest.source, loaded_at=latest.recorded_at)

    def plans_page(self, after: str | None, limit: int) -> list[Any]:
        return [self._plan_row(p) for p in sorted(self.s.plan_versions)
                if after is None or p > after][:limit]

    def plan(self, plan_id: str) -> Any:
        return self._plan_row(plan_id) if plan_id in self.s.plan_versions else None

    def line_plans(self) -> dict[str, str | None]:
        return {ln.id: ln.plan_id for ln in self.s.lines.values()}

    def pool_plans(self) -> dict[int, str | None]:
        return {a.id: a.pool_plan_id for a in self.s.accounts.values()}

    def entries_of_kinds(self, kinds: Sequence[str]) -> list[Any]:
        wanted = set(kinds)
        return [(account_id, e.owner, str(e.kind), e.amount, e.bucket_id)
                for account_id, book in sorted(self.s.books.items())
                for e in book.entries if str(e.kind) in wanted]


class FakeLineImport:
    def __init__(self, state: State) -> None:
        self.s = state

    def accounts(self) -> dict[str, tuple]:
        return {a.name: (a.id, a.cycle_day, a.timezone, a.pool_plan_id)
                for a in self.s.accounts.values()}

    def taken_identifiers(self) -> set[str]:
        taken = {ln.msisdn for ln in self.s.lines.values() if ln.msisdn is not None}
        taken |= {m.lstrip("+") for m in taken}
        taken |= {ln.imsi for ln in self.s.lines.values() if ln.imsi is not None}
        return taken | set(self.s.lines)

    def create_accounts(self, names: Sequence[str], cycle_day: int, timezone: str,
                        grace: timedelta, created_at: datetime) -> dict[str, int]:
        accounts = FakeAccounts(self.s)
        return {name: accounts.create_account(name, cycle_day, timezone, created_at, grace)
                for name in names}

    def add_lines(self, rows: Sequence[tuple]) -> None:
        for lid, acct, ms, im, st, pl, mem in rows:
            line = Line(lid, acct, st, ms, im, pl, bool(mem))
            _unique_line(self.s, line)
            self.s.lines[lid] = line

    def save_new_books(self, ids: dict[str, int], books: dict[str, AccountBook],
                       recorded: datetime) -> None:
        booked = booking_clock()
        for name, book in books.items():
            acct = ids[name]
            for item in book.applied:
                kind, body = codec.encode(item)
                self.s.inputs[(acct, item.id)] = InputRow(acct, item.id, kind, item.line,
                                                          item.at, body, "cli", recorded)
            entries = [replace(e, recorded_at=booked) for e in book.entries]
            kept = copy.deepcopy(book, {id(book.entries): entries, id(book.plans): book.plans})
            self.s.books[acct] = kept
            self.s.accounts[acct].cycle_start = kept.cycle_start  # the cursor, no version

class FakeWebhooks:
    """Webhook endpoints and deliveries (services.notify.ports.WebhookStore). An outbox
    row's id is its place in the outbox (from 1), as rows are never removed."""

    def __init__(self, state: State) -> None:
        self.s = state

    def _outbox(self) -> list[tuple[int, dict]]:
        return list(enumerate(self.s.outbox.values(), start=1))

    def _wants(self, endpoint: Endpoint, kind: str) -> bool:
        return endpoint.kinds is None or f",{kind}," in endpoint.kinds

    # -- endpoints
    def last_outbox_id(self) -> int:
        return len(self.s.outbox)

    def add_endpoint(self, endpoint_id: str, url: str, secret: str, kinds: list[str] | None,
                     since_outbox_id: int, at: datetime) -> None:
        assert endpoint_id not in self.s.endpoints, f"endpoint {endpoint_id} stored twice"
        self.s.endpoints[endpoint_id] = Endpoint(
            endpoint_id, url, secret, f",{','.join(sorted(set(kinds)))}," if kinds else None,
            since_outbox_id, at)

    def endpoints(self) -> list[Any]:
        return [replace(e) for e in sorted(self.s.endpoints.values(),
                                           key=lambda e: (e.created_at, e.id))]

    def endpoints_after(self, after: str | None, limit: int) -> list[Any]:
        return [replace(e) for e in sorted(self.s.endpoints.values(), key=lambda e: e.id)
                if after is None or e.id > after][:limit]

    def endpoint(self, endpoint_id: str) -> Any:
        found = self.s.endpoints.get(endpoint_id)
        return None if found is None else replace(found)

    def disable_endpoint(self, endpoint_id: str, at: datetime) -> None:
        if endpoint_id in self.s.endpoints:
            self.s.endpoints[endpoint_id].disabled_at = at

    def delivery_counts(self, endpoint_ids: list[str]) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for d in self.s.deliveries.values():
            if d.endpoint_id in endpoint_ids:
                by_status = counts.setdefault(d.endpoint_id, {})
                by_status[d.status] = by_status.get(d.status, 0) + 1
        return counts

    # -- deliveries
    def _unfanned(self) -> list[tuple[Endpoint, int, dict]]:
        have = {(d.endpoint_id, d.outbox_id) for d in self.s.deliveries.values()}
        return [(e, outbox_id, row) for e in self.s.endpoints.values() if e.disabled_at is None
                for outbox_id, row in self._outbox()
                if outbox_id > e.since_outbox_id and self._wants(e, row["kind"])
                and (e.id, outbox_id) not in have]

    def fan_out(self, at: datetime) -> None:
        for endpoint, outbox_id, _ in self._unfanned():
            delivery_id = len(self.s.deliveries) + 1
            self.s.deliveries[delivery_id] = Delivery(delivery_id, endpoint.id, outbox_id,
                                                      "pending", 0, at)

    def _due(self, now: datetime) -> list[Delivery]:
        return [d for _, d in sorted(self.s.deliveries.items())
                if d.status == "pending" and d.next_attempt_at <= now]

    def due_endpoints(self, now: datetime) -> list[str]:
        return sorted({d.endpoint_id for d in self._due(now)
                       if self.s.endpoints[d.endpoint_id].disabled_at is None})

    def claim(self, endpoint_id: str, now: datetime, until: datetime) -> Any:
        due = [d for d in self._due(now) if d.endpoint_id == endpoint_id]
        if not due:
            return None
        d = due[0]
        d.next_attempt_at = until
        endpoint = self.s.endpoints[endpoint_id]
        return SimpleNamespace(id=d.id, attempts=d.attempts, outbox_id=d.outbox_id,
                               payload=copy.deepcopy(self._outbox()[d.outbox_id - 1][1]["payload"]),
                               url=endpoint.url, secret=endpoint.secret,
                               disabled_at=endpoint.disabled_at)

    def record(self, delivery_id: int, attempts: int, lease_until: datetime,
               values: dict) -> bool:
        d = self.s.deliveries.get(delivery_id)
        if (d is None or d.status != "pending" or d.attempts != attempts
                or d.next_attempt_at != lease_until):
            return False
        for name, value in values.items():
            setattr(d, name, value)
        return True

    def dead_letters(self, after: int | None, limit: int | None) -> list[Any]:
        outbox = dict(self._outbox())
        rows = [SimpleNamespace(id=d.id, endpoint_id=d.endpoint_id, outbox_id=d.outbox_id,
                                attempts=d.attempts, last_error=d.last_error,
                                url=self.s.endpoints[d.endpoint_id].url,
                                kind=outbox[d.outbox_id]["kind"],
                                line=outbox[d.outbox_id]["line"])
                for _, d in sorted(self.s.deliveries.items())
                if d.status == "dead" and (after is None or d.id > after)]
        return rows if limit is None else rows[:limit]

    def delivery(self, delivery_id: int) -> Any:
        d = self.s.deliveries.get(delivery_id)
        if d is None:
            return None
        return SimpleNamespace(id=d.id, status=d.status,
                               disabled_at=self.s.endpoints[d.endpoint_id].disabled_at)

    def requeue(self, delivery_id: int, at: datetime) -> None:
        d = self.s.deliveries[delivery_id]
        d.status, d.attempts, d.next_attempt_at, d.delivered_at = "pending", 0, at, None

    def backlog(self) -> list[tuple[int, datetime | None]]:
        outbox = dict(self._outbox())
        fanned = [outbox[d.outbox_id].get("written_at") for d in self.s.deliveries.values()
                  if d.status == "pending"
                  and self.s.endpoints[d.endpoint_id].disabled_at is None]
        waiting = [row.get("written_at") for _, _, row in self._unfanned()]
        return [(len(stamps), min((t for t in stamps if t is not None), default=None))
                for stamps in (fanned, waiting)]


class FakeReauthorizations:
    """Pending re-authorizations, one per change and session, in the order offered."""

    def __init__(self, state: State) -> None:
        self.s = state

    def offer(self, owed: Iterable[dict]) -> None:
        self.s.reauthorizations.extend(dict(n) for n in sorted(owed, key=lambda n: n["ref"]))
