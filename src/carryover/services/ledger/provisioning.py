"""Provisioning: accounts, their family pool, and lines on plans.

Opening a line (or an account's pool) is an input like any other: the line's
first cycle and its first grant come from folding it, so a line created with a
start in the past is replayed into place like a late event. Each use case is one
`with uow:` block of the unit of work it is given (services.ledger.ports.LedgerUnit).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from carryover.domain.buckets import POOL
from carryover.domain.cycles import CycleCalendar, CycleError
from carryover.domain.inputs import DEFAULT_GRACE, OpenLine
from carryover.domain.subscriber_ids import split_typed
from carryover.services.errors import Conflict, NotFound, ServiceError
from carryover.services.ledger import time_window
from carryover.services.ledger.operations import CLI, Actor, localizer

if TYPE_CHECKING:
    from carryover.services.ledger.ports import LedgerUnit

# E.164 as written for people and packet cores: a "+", the country code, at most 15 digits.
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
IMSI = re.compile(r"[0-9]{15}")


def create_account(uow: LedgerUnit, name: str, cycle_day: int, timezone: str, at: datetime,
                   pool_plan: str | None = None, grace: timedelta = DEFAULT_GRACE,
                   actor: Actor = CLI) -> int:
    try:
        calendar = CycleCalendar(cycle_day, timezone)
    except CycleError as exc:
        raise ServiceError(str(exc)) from exc
    if not name.strip():
        raise ServiceError("an account needs a name")
    with uow:
        if uow.accounts.account_by_name(name) is not None:
            raise Conflict(f"account {name!r} already exists")
        plans = uow.plans.all()
        if pool_plan is not None and pool_plan not in plans:
            raise NotFound(f"unknown plan {pool_plan!r}")
        at = time_window.check_write("at", localizer(timezone)(at), what="the account")
        account_id = uow.accounts.create_account(name, cycle_day, timezone, at, grace)
        if pool_plan is not None:
            account = uow.accounts.lock_account(account_id)
            book, snapshot = uow.accounts.load_book(account, plans)
            item = OpenLine(f"open:{POOL}", POOL, at, pool_plan)
            outcome = book.submit(item)
            if outcome.status != "accepted":  # pragma: no cover - a fresh book accepts it
                raise ServiceError(outcome.reason or "refused")
            uow.accounts.save_book(account_id, book, snapshot)
            uow.accounts.record(account_id, item, calendar, book.grace, actor.id,
                                datetime.now(UTC))
        uow.commit()
        return account_id


def create_line(uow: LedgerUnit, account: str, msisdn: str, start: datetime,
                plan_id: str | None = None, imsi: str | None = None,
                line_id: str | None = None, member: bool | None = None,
                actor: Actor = CLI) -> str:
    """Open a line; in a family account it draws from the pool unless member is False."""
    msisdn = msisdn.strip()
    if not E164.fullmatch(msisdn):
        raise ServiceError(f"MSISDN {msisdn!r} is not an E.164 number: a '+', the country "
                           "code and the number, at most 15 digits, such as +14155550100")
    if imsi is not None and not IMSI.fullmatch(imsi):
        raise ServiceError(f"IMSI {imsi!r} is not 15 digits")
    line_id = line_id or f"ln_{uuid.uuid4().hex[:12]}"
    kind, _ = split_typed(line_id)
    if kind is not None:
        raise ServiceError(f"line id {line_id!r}: ids starting with {kind}- are reserved "
                           f"for {kind.upper()}s written with their type (docs/security.md)")
    with uow:
        row = uow.accounts.account_by_name(account)
        if row is None:
            raise NotFound(f"unknown account {account!r}")
        start = time_window.check_write("start", localizer(row.timezone)(start),
                                        what="the line")
        plans = uow.plans.all()
        if plan_id is not None and plan_id not in plans:
            raise NotFound(f"unknown plan {plan_id!r}")
        if member and row.pool_plan_id is None:
            raise ServiceError(f"account {account!r} has no family pool to be a member of")
        member = row.pool_plan_id is not None if member is None else member
        if plan_id is None and not member:
            raise ServiceError("a line outside a family pool needs --plan")
        # Line ids, MSISDNs and IMSIs are one namespace: none may name two lines.
        taken = uow.accounts.find_lines([x for x in (line_id, msisdn, imsi) if x])
        for what, ident in (("line id", line_id), ("MSISDN", msisdn), ("IMSI", imsi)):
            if ident in taken:
                raise Conflict(f"{what} {ident!r} is already the id, MSISDN or IMSI of line "
                               f"{taken[ident].id!r}: one identifier names one line")
        account_row = uow.accounts.lock_account(row.id)
        book, snapshot = uow.accounts.load_book(account_row, plans)
        item = OpenLine(f"open:{line_id}", line_id, start, plan_id, member=member)
        outcome = book.submit(item)
        if outcome.status != "accepted":
            raise ServiceError(outcome.reason or "refused")
        with uow.refuse_taken(Conflict(f"line {line_id!r}, MSISDN {msisdn} or IMSI {imsi} "
                                       "already exists")):
            uow.accounts.insert_line(id=line_id, account_id=row.id, msisdn=msisdn, imsi=imsi,
                                     opened_at=start, plan_id=plan_id, member=member, limits={})
            uow.accounts.save_book(row.id, book, snapshot)
            uow.accounts.record(row.id, item, book.calendar, book.grace, actor.id,
                                datetime.now(UTC))
            uow.commit()
        return line_id
