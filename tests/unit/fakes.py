"""A fake unit of work: the services' repositories in memory, for unit tests.

`FakeDatabase` holds what is committed. A `FakeUnitOfWork` on it works on a
copy taken when its block is entered: nothing it writes is visible to any other
unit of work (nor to the test) until `commit()`, and leaving the block without
committing throws the copy away, as the store's UnitOfWork rolls back. Like the
store's, one FakeUnitOfWork may be entered again and again, each time a new
transaction; `db.commits` counts the commits.

The repositories implement the protocols the services declare (services.charging.ports,
services.esim.ports, services.access.ports, services.notify.ports);
tests/unit/test_fakes_match.py checks that they and the store's classes have the
methods of the protocols, with their parameters.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from carryover.domain.book import AccountBook
from carryover.domain.book_state import Snapshot
from carryover.domain.buckets import Bucket
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import Usage
from carryover.domain.plan_versions import PlanCatalog
from carryover.domain.sessions import ChargingSession, QuotaHold


@dataclass
class Account:
    id: int
    name: str
    cycle_day: int = 1
    timezone: str = "UTC"
    version: int = 0
    cycle_start: datetime | None = None


@dataclass
class Line:
    id: str
    account_id: int
    opened_at: datetime
    msisdn: str
    imsi: str | None = None


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
    route: str
    key: str
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
    outbox: dict[tuple[str, str, str], dict] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    keys: dict[str, Key] = field(default_factory=dict)
    rates: dict[str, tuple[int, bool]] = field(default_factory=dict)
    responses: dict[tuple[str, str, str], StoredResponse] = field(default_factory=dict)
    reauthorizations: list[dict] = field(default_factory=list)  # pending


class FakeDatabase:
    def __init__(self, plans: PlanCatalog | dict) -> None:
        self.state = State(PlanCatalog.of(plans))
        self.commits = 0

    def copy(self) -> State:
        # Plans are immutable: shared, not copied.
        return copy.deepcopy(self.state, {id(self.state.plans): self.state.plans})

    # ---- set-up, committed at once (as a test's fixtures are) ------------------------
    def add_account(self, name: str, *, cycle_day: int = 1, timezone: str = "UTC",
                    grace=None) -> int:
        account_id = len(self.state.accounts) + 1
        self.state.accounts[account_id] = Account(account_id, name, cycle_day, timezone)
        calendar = CycleCalendar(cycle_day, timezone)
        self.state.books[account_id] = (AccountBook(calendar, self.state.plans) if grace is None
                                        else AccountBook(calendar, self.state.plans, grace))
        return account_id

    def add_line(self, account_id: int, line: str, plan_id: str, at: datetime, *,
                 msisdn: str, imsi: str | None = None) -> None:
        from carryover.domain.inputs import OpenLine

        book = self.state.books[account_id]
        outcome = book.submit(OpenLine(f"open:{line}", line, at, plan_id))
        assert outcome.status == "accepted", outcome.reason
        self.state.lines[line] = Line(line, account_id, at, msisdn, imsi)


class FakeUnitOfWork:
    """The services' unit of work, in memory (see the module docstring)."""

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self._work: State | None = None

    def __enter__(self) -> FakeUnitOfWork:
        assert self._work is None, "a unit of work is not entered twice at once"
        self._work = self.db.copy()
        self.accounts = FakeAccounts(self._work)
        self.charging = FakeCharging(self._work, self.accounts)
        self.reauthorizations = FakeReauthorizations(self._work)
        self.outbox = FakeOutbox(self._work)
        self.esim = FakeEsim(self._work)
        self.keys = FakeKeys(self._work)
        self.idempotency = FakeIdempotency(self._work)
        return self

    def commit(self) -> None:
        assert self._work is not None, "commit outside the block"
        self.db.state = copy.deepcopy(self._work, {id(self._work.plans): self._work.plans})
        self.db.commits += 1

    def __exit__(self, *exc_info: object) -> None:
        self._work = None  # what was not committed is gone

    def reading(self) -> FakeUnitOfWork:
        """A unit of work for reads only: in memory, any unit of work on the database."""
        return FakeUnitOfWork(self.db)


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
        out = {}
        for ident in idents:
            bare = ident.removeprefix("imsi-").removeprefix("msisdn-")
            for line in sorted(self.s.lines.values(), key=lambda row: row.id):
                if ident == line.id or bare == line.msisdn or bare == line.imsi:
                    out[ident] = line
                    break
        return out


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
            account = self.s.accounts[account_id]
            account.version += 1
            account.cycle_start = book.cycle_start

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

    def stored_response(self, api_key_id: str, route: str, key: str) -> Any:
        found = self.s.responses.get((api_key_id, route, key))
        return None if found is None else replace(found)

    def claim(self, **values: Any) -> bool:
        ident = (values["api_key_id"], values["route"], values["key"])
        if ident in self.s.responses:
            return False
        self.s.responses[ident] = StoredResponse(**values)
        return True

    def complete(self, api_key_id: str, route: str, key: str, status: int, body: Any) -> None:
        stored = self.s.responses[(api_key_id, route, key)]
        stored.status, stored.body = status, copy.deepcopy(body)

    def release(self, api_key_id: str, route: str, key: str) -> None:
        self.s.responses.pop((api_key_id, route, key), None)


class FakeReauthorizations:
    """Pending re-authorizations: one per session, rating groups merged."""

    def __init__(self, state: State) -> None:
        self.s = state

    def offer(self, owed: Iterable[dict]) -> None:
        for notice in owed:
            pending = next((n for n in self.s.reauthorizations if n["ref"] == notice["ref"]), None)
            if pending is None:
                self.s.reauthorizations.append(dict(notice))
            else:
                pending["rating_groups"] = sorted(
                    set(pending["rating_groups"]) | set(notice["rating_groups"]))
