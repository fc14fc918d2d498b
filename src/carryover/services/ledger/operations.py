"""Use cases that change or read an account's book, each one unit of work.

Each takes the unit of work first (services.ledger.ports.LedgerUnit); each of its
`with uow:` blocks is one transaction. Every change goes the same way: lock the
account, load its book, submit the input to the pure domain, write back what the
fold changed and the input itself, commit.

Every change has an `Actor`: the API key that asked (its id), or `CLI`. An
operator may give the instant a change takes effect (back-dating, recorded with
the actor and the instant it was recorded); a subscriber acts at the server's
now only and may move a line only to a plan offered for self-service
(docs/security.md). Reads at or after the book's cursor materialize cycles on the way
(lazily, inside the transaction of the first read or write at or after a
boundary: docs/semantics.md, "Cycles and rollover at the boundary instant"), so
they commit too, unless they look past now; reads in the past replay in memory.
services.ledger.time_window bounds the instants of both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from carryover.domain.book import Outcome
from carryover.domain.bounds import BoundError, check_event
from carryover.domain.buckets import POOL
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import ChangePlan, Gift, Input, SetLimit, TopUp, Usage
from carryover.domain.notices import decided_at
from carryover.domain.statement import Statement, build_statement
from carryover.domain.units import Unit
from carryover.domain.views import QosDecision, check, position, qos
from carryover.services.charging import reauthorization
from carryover.services.errors import Duplicate, Forbidden, NotFound, ServiceError
from carryover.services.ledger import time_window
from carryover.services.notify.notices import emit_from_book

if TYPE_CHECKING:
    from carryover.services.ledger.ports import LedgerUnit


@dataclass(frozen=True, slots=True)
class Recorded:
    line: str
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Actor:
    """Who gives an input: an API key's id (`key_...`) or `cli`, and whether it acts as
    the operator (may back-date, may choose any plan) or for a subscriber."""

    id: str
    operator: bool = True


CLI = Actor("cli")
SELF_SERVICE_AT = ("field `at`: a subscriber key acts at the server's now; drop `at` "
                   "(back-dating is an operator action)")


def _when(at: datetime | None, actor: Actor, now: datetime) -> datetime:
    """The instant a change takes effect: `at` from an operator, else now."""
    if at is None:
        return now
    if not actor.operator:
        raise Forbidden(SELF_SERVICE_AT)
    return at


def _line(uow: LedgerUnit, ident: str):
    row = uow.accounts.find_line(ident)
    if row is None:
        raise NotFound(f"unknown line {ident!r} (give a line id, an MSISDN or an IMSI)")
    return row


def localizer(timezone: str) -> Callable[[datetime | None], datetime | None]:
    """Instants without an offset are read in the account's timezone (as in scenarios)."""
    tz = ZoneInfo(timezone)

    def local(at: datetime | None) -> datetime | None:
        if at is None:
            return None
        try:
            return (at.replace(tzinfo=tz) if at.tzinfo is None else at).astimezone(UTC)
        except OverflowError:  # within a day of year 1 or 9999
            raise time_window.OutOfWindow(
                f"{at.isoformat()} is outside the instants carryover accepts "
                "(docs/semantics.md, Bounds)") from None
    return local


def submit(uow: LedgerUnit, line_ident: str, make: Callable, actor: Actor = CLI,
           recorded_at: datetime | None = None) -> Recorded:
    """Apply the input `make(line_id, local)` to the line's account, all or nothing (one
    `with uow:` block); the input is stored with `actor` and `recorded_at` (default: now)."""
    recorded_at = recorded_at or datetime.now(UTC)
    with uow:
        row = _line(uow, line_ident)
        item: Input = make(row.id, localizer(row.timezone))
        _in_window(item, row.opened_at)
        # Lock the account before writing anything that references it: the input row's
        # foreign key takes a share lock on the account, and taking the row lock after it
        # would let two writers deadlock on PostgreSQL.
        account = uow.accounts.lock_account(row.account_id)
        if isinstance(item, Usage):
            # Bounded before the event row is written: a column cannot hold every integer.
            try:
                check_event("amount", item.amount)
            except BoundError as exc:
                raise ServiceError(str(exc)) from exc
            # The unique event id is the duplicate check: inserting the event first costs
            # no extra query, and a racing writer with the same id waits, then fails here.
            with uow.refuse_taken(Duplicate(f"duplicate event {item.id!r}: already counted, "
                                            "not counted again")):
                uow.accounts.record(row.account_id, item,
                                    CycleCalendar(row.cycle_day, row.timezone),
                                    timedelta(seconds=row.grace_seconds))
        if isinstance(item, Gift):
            giver = _line(uow, item.from_line)
            if giver.account_id != row.account_id:
                raise ServiceError("gifts move bytes between lines of the same account only")
            item = Gift(item.id, giver.id, row.id, item.at, item.amount, item.unit)
        book, snapshot = uow.accounts.load_book(account, uow.plans.all())
        watched = uow.charging.watched([row.account_id])
        standing = reauthorization.before(book, watched)
        outcome = book.submit(item)
        if outcome.status == "rejected":
            raise ServiceError(outcome.reason or "refused")
        if outcome.status == "duplicate":  # pragma: no cover - the query above sees it first
            raise Duplicate(outcome.reason or "duplicate")
        uow.accounts.save_book(row.account_id, book, snapshot)
        if not isinstance(item, Usage):
            uow.accounts.record(row.account_id, item, book.calendar, book.grace, actor.id,
                                recorded_at)
        # The book in memory is the state just saved: decide the notifications from it
        # rather than reading that state back (services.notify.notices), where the account
        # stands: an out-of-order input is before its current cycle.
        emit_from_book(uow, account, book, decided_at(book, item.at), row,
                       snapshot.alert_thresholds)
        # Packet cores holding a grant for a line this input moved are asked again.
        owed, _ = reauthorization.owed(book, watched, standing, _why(item))
        uow.reauthorizations.offer(owed)
        uow.commit()
        return Recorded(row.id, outcome)


def _why(item: Input) -> str:
    """The input in a few words, for a re-authorization's reason."""
    what = {Usage: "usage", TopUp: "top-up", Gift: "gift", SetLimit: "member limit",
            ChangePlan: "plan change"}.get(type(item), type(item).__name__)
    return f"{what} {item.id}"


def _in_window(item: Input, opened: datetime) -> None:
    """A write's instants lie in the window of services.time_window."""
    time_window.check_write("at", item.at, opened, f"line {item.line!r}")
    received = getattr(item, "received_at", None)
    if received is not None:
        time_window.check_write("received_at", received, opened, f"line {item.line!r}")


def record_usage(uow: LedgerUnit, line: str, amount: int, at: datetime, received_at: datetime,
                 event_id: str, unit: Unit = Unit.DATA,
                 rating_group: str | None = None) -> Recorded:
    return submit(uow, line, lambda lid, local: Usage(
        event_id, lid, local(at), amount, unit, rating_group, local(received_at)))


def top_up(uow: LedgerUnit, line: str, amount: int, at: datetime | None,
           valid_days: int | None, ref: str, unit: Unit = Unit.DATA,
           actor: Actor = CLI) -> Recorded:
    now = datetime.now(UTC)
    at = _when(at, actor, now)
    return submit(uow, line, lambda lid, local: TopUp(ref, lid, local(at), amount, unit,
                                                         valid_days), actor, now)


def change_plan(uow: LedgerUnit, line: str, plan_id: str, effective: str, at: datetime | None,
                ref: str, actor: Actor = CLI) -> Recorded:
    """Move the line to `plan_id`; for a subscriber, only to a plan whose version in force
    now is offered for self-service (checked in a unit of work of its own)."""
    now = datetime.now(UTC)
    at = _when(at, actor, now)
    if not actor.operator:
        _offered(uow, line, plan_id, now)
    return submit(uow, line, lambda lid, local: ChangePlan(ref, lid, local(at), plan_id,
                                                              effective), actor, now)


def _offered(uow: LedgerUnit, line: str, plan_id: str, now: datetime) -> None:
    with uow:
        row = _line(uow, line)
        catalog = uow.plans.all()
        if plan_id not in catalog:
            raise NotFound(f"unknown plan {plan_id!r}")
        plan = catalog.at(plan_id, now, CycleCalendar(row.cycle_day, row.timezone))
        if not plan.self_service:
            raise Forbidden(f"plan {plan_id!r} is not offered for self-service "
                            "(its plan file does not say `self_service: true`); "
                            "an operator can make this change")


def set_limit(uow: LedgerUnit, line: str, amount: int | None, at: datetime | None, ref: str,
              actor: Actor = CLI) -> Recorded:
    now = datetime.now(UTC)
    at = _when(at, actor, now)

    def make(lid: str, local) -> SetLimit:
        return SetLimit(ref, lid, local(at), amount)
    with uow:
        row = _line(uow, line)
        if not row.member:
            raise ServiceError(f"line {line!r} is not a member of a family pool")
    return submit(uow, line, make, actor, now)


def gift(uow: LedgerUnit, from_line: str, to_line: str, amount: int, at: datetime | None,
         ref: str, actor: Actor = CLI) -> Recorded:
    now = datetime.now(UTC)
    at = _when(at, actor, now)
    return submit(uow, to_line, lambda lid, local: Gift(ref, from_line, lid, local(at), amount),
                  actor, now)


def change_rows(uow: LedgerUnit, account_id: int, line: str, start: datetime,
                end: datetime) -> list[dict]:
    """The changes of the line effective in [start, end): its own inputs and the gifts it
    gave, each with who gave it (`actor`) and when it was recorded (null: not kept)."""
    out = []
    for r in uow.accounts.changes(account_id, start, end):
        body = dict(r.body)
        if r.line != line and body.get("from_line") != line:
            continue
        for name in ("id", "line", "at"):
            body.pop(name, None)
        recorded = r.recorded_at
        out.append({"ref": r.input_id, "kind": r.kind, "line": r.line,
                    "at": r.at.isoformat(),
                    "recorded_at": None if recorded is None else recorded.isoformat(),
                    "actor": r.actor, "detail": body})
    return out


def read_book(uow: LedgerUnit, line_ident: str, at: datetime, view):
    """`view(uow, book, row, at)` on the line's account book, as every read of it goes."""
    with uow:
        row = _line(uow, line_ident)
        at = localizer(row.timezone)(at)
        time_window.check_read("at", at, row.opened_at, f"line {row.id!r}")
        account = uow.accounts.lock_account(row.account_id)
        book, snapshot = uow.accounts.load_book(account, uow.plans.all())
        # A read past now moves the book in memory only: nothing is committed for a
        # future that has not happened (docs/semantics.md, Bounds).
        moving = (book.until is None or at >= book.until) and not time_window.in_future(at)
        result = view(uow, book, row, at)
        if moving:
            uow.accounts.save_book(row.account_id, book, snapshot)
            emit_from_book(uow, account, book, at, row, snapshot.alert_thresholds)
            uow.commit()
        return result


def balance(uow: LedgerUnit, line: str, at: datetime) -> dict:
    """The check object (docs/scenarios.md, "Output") for the line at `at`."""
    return read_book(uow, line, at,
                     lambda uow, book, row, t: check(book, row.id, t))


def qos_at(uow: LedgerUnit, line: str, at: datetime,
           rating_group: str | None = None) -> QosDecision:
    def view(uow, book, row, t):
        return qos(position(book, t), row.id, t, rating_group)
    return read_book(uow, line, at, view)


def statement(uow: LedgerUnit, line: str, at: datetime, as_of: datetime | None = None
              ) -> Statement:
    """The statement of the cycle containing `at`: the entries effective in it. With
    `as_of`, only the entries recorded by then: what the subscriber was told then."""
    def view(uow, book, row, t):
        recorded_by = localizer(row.timezone)(as_of)
        state = position(book, t)
        start, end = book.calendar.cycle_at(t)
        entries = [*uow.accounts.entries(row.account_id, before=end)]
        if state is book:
            # Booked by this read (cycles it materializes): recorded now, as they are stored.
            now = uow.accounts.booked_at(book)
            entries.extend(replace(e, recorded_at=now) for e in book.entries if e.at < end)
        unlimited = uow.accounts.unlimited_bucket_ids(row.account_id) | {
            b.id for b in book.buckets.values() if b.unlimited}
        plan = book.governing_plan(row.id)
        if plan is None and row.member:
            plan = book.plan_of(POOL)
        stmt = build_statement(row.id, start, end, entries, unlimited, plan, recorded_by)
        stmt.changes = [c for c in change_rows(uow, row.account_id, row.id, start, end)
                        if recorded_by is None or c["recorded_at"] is None
                        or datetime.fromisoformat(c["recorded_at"]) <= recorded_by]
        return stmt
    return read_book(uow, line, at, view)
