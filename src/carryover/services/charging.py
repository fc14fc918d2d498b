"""Real-time charging sessions for the 5G core (Nchf_ConvergedCharging): open, update, release.

Each call is one unit of work on the subscriber's account, in this order:
lock the account (so two sessions of one account are answered one after the
other and can never be granted the same bytes), load its book, rate the used
units the request reports as ordinary usage events at their own instants
(event id `nchf:<ref>:<rating group>:<localSequenceNumber>`, so a report sent
twice is counted once and DESIGN 1.5 applies to late reports), bring the book
to the request's instant (a boundary on the way rolls over as it always does),
then grant each requested rating group with domain.quota, holding every other
live grant of the account against the buckets. The new grants replace the
session's holds for those rating groups, the book and the holds are written, and
the answer is stored on the session so that a retransmission (same
invocationSequenceNumber) gets the same answer rather than a second grant.

The request's instants are the packet core's (invocationTimeStamp, and each
container's triggerTimestamp for its usage), as with CDR files.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import Connection, Engine, and_, bindparam, delete, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from carryover.domain.book import AccountBook
from carryover.domain.inputs import Usage
from carryover.domain.quota import Grant, Hold, QuotaPolicy, decide
from carryover.domain.units import Unit
from carryover.services.errors import NotFound, ServiceError
from carryover.services.notifications import emit_from_book
from carryover.store.charging_tables import charging_sessions, quota_holds
from carryover.store.repository import utc
from carryover.store.tables import accounts
from carryover.store.uow import UnitOfWork

# Built once (SQLAlchemy memoizes a statement's cache key on the object): this is the
# packet core's hot path.
_cs = charging_sessions.c
# The session and its account in one round trip; on PostgreSQL the account row is
# locked (FOR NO KEY UPDATE, as AccountRepository.lock_account), so the session's
# sequence number is read under the lock every writer of the account takes.
_SESSION = select(accounts, _cs.line.label("session_line"),
                  _cs.sequence.label("session_sequence"),
                  _cs.last_result.label("session_result"),
                  _cs.released_at.label("session_released_at")).join(
    charging_sessions, _cs.account_id == accounts.c.id).where(_cs.ref == bindparam("ref"))
_SESSION_LOCKED = _SESSION.with_for_update(key_share=True, of=accounts)
_HOLDS = select(quota_holds.c.ref, quota_holds.c.rating_group, quota_holds.c.line,
                quota_holds.c.amount, quota_holds.c.expires_at).where(
    quota_holds.c.account_id == bindparam("account_id")).order_by(
    quota_holds.c.granted_at, quota_holds.c.ref, quota_holds.c.rating_group)
_CLOSE = update(charging_sessions).where(_cs.ref == bindparam("s_ref"))


@cache
def _hold_upsert(dialect: str):
    """The dialect's upsert of a hold, built once (`excluded` copies every column)."""
    hold = (pg_insert if dialect == "postgresql" else sqlite_insert)(quota_holds)
    return hold.on_conflict_do_update(
        index_elements=["ref", "rating_group"],
        set_={"amount": hold.excluded.amount, "granted_at": hold.excluded.granted_at,
              "expires_at": hold.excluded.expires_at})


class UnknownSubscriber(NotFound):
    """No line has this SUPI/GPSI."""


class SessionNotFound(NotFound):
    """No open charging session has this chargingDataRef."""


class StaleRequest(ServiceError):
    """The invocationSequenceNumber is older than the last one answered."""


@dataclass(frozen=True, slots=True)
class UsedUnits:
    """One usedUnitContainer: bytes used, keyed by its localSequenceNumber."""

    sequence: int
    amount: int
    at: datetime | None  # triggerTimestamp; None: the request's invocationTimeStamp


@dataclass(frozen=True, slots=True)
class UnitRequest:
    """One multipleUnitUsage entry: a rating group, what it asks for, what it used."""

    rating_group: int
    wants_quota: bool  # a requestedUnit was present
    requested: int | None  # bytes asked for; None: as much as the operator grants
    used: tuple[UsedUnits, ...] = ()


@dataclass(frozen=True, slots=True)
class ChargingRequest:
    at: datetime  # invocationTimeStamp
    sequence: int  # invocationSequenceNumber
    units: tuple[UnitRequest, ...] = ()
    subscriber: str | None = None  # the line: an IMSI, MSISDN or line id (create only)


@dataclass(frozen=True, slots=True)
class ChargingAnswer:
    ref: str
    line: str
    at: datetime
    sequence: int
    grants: tuple[tuple[int, Grant], ...]
    replayed: bool = False  # a retransmission answered from the stored answer


@dataclass(frozen=True, slots=True)
class ChargingPolicy:
    quota: QuotaPolicy
    hold_margin: timedelta
    rating_groups: dict[int, str]  # 3GPP rating group -> carryover rating group

    @classmethod
    def from_settings(cls, settings) -> ChargingPolicy:
        return cls(QuotaPolicy(settings.nchf_max_grant, settings.nchf_threshold_percent,
                               timedelta(seconds=settings.nchf_validity_seconds)),
                   timedelta(seconds=settings.nchf_hold_margin_seconds),
                   dict(settings.nchf_rating_groups))

    def rating_group(self, number: int) -> str:
        return self.rating_groups.get(number, str(number))


def open_session(engine: Engine, policy: ChargingPolicy,
                 request: ChargingRequest) -> ChargingAnswer:
    """Create a charging session for the request's subscriber and grant what it asks."""
    if not request.subscriber:
        raise UnknownSubscriber("the request names no subscriber (subscriberIdentifier)")
    with UnitOfWork(engine) as uow:
        row = uow.accounts.find_line(request.subscriber)
        if row is None:
            raise UnknownSubscriber(f"no line has subscriber {request.subscriber!r}")
        if request.at < utc(row.opened_at):
            raise ServiceError(f"line {row.id!r} starts at {utc(row.opened_at).isoformat()}, "
                               f"after the request's {request.at.isoformat()}")
        # Lock before writing a row that references the account (see ledger_ops.submit).
        account = uow.accounts.lock_account(row.account_id)
        ref = uuid.uuid4().hex
        uow.conn.execute(insert(charging_sessions).values(
            ref=ref, account_id=row.account_id, line=row.id, subscriber=request.subscriber,
            opened_at=request.at, updated_at=request.at, sequence=-1, last_result=[]))
        answer = _charge(uow, policy, ref, account, row.id, request)
        uow.commit()
        return answer


def update_session(engine: Engine, policy: ChargingPolicy, ref: str,
                   request: ChargingRequest) -> ChargingAnswer:
    """Rate what the session used and grant what it asks now."""
    with UnitOfWork(engine) as uow:
        account = _session(uow.conn, ref)
        if request.sequence == account.session_sequence:
            return _stored(ref, account, request)
        if request.sequence < account.session_sequence:
            raise StaleRequest(f"invocationSequenceNumber {request.sequence} is older than "
                               f"the last one answered ({account.session_sequence})")
        answer = _charge(uow, policy, ref, account, account.session_line, request)
        uow.commit()
        return answer


def release_session(engine: Engine, policy: ChargingPolicy, ref: str,
                    request: ChargingRequest) -> None:
    """Rate the final usage, give back every hold of the session and close it."""
    with UnitOfWork(engine) as uow:
        account = _session(uow.conn, ref, released_too=True)
        if account.session_released_at is not None:
            return  # released already: releasing again changes nothing
        final = ChargingRequest(request.at, request.sequence, tuple(
            UnitRequest(u.rating_group, False, None, u.used) for u in request.units))
        _charge(uow, policy, ref, account, account.session_line, final)
        uow.conn.execute(delete(quota_holds).where(quota_holds.c.ref == ref))
        uow.conn.execute(update(charging_sessions).where(charging_sessions.c.ref == ref)
                         .values(released_at=request.at))
        uow.commit()


def _session(conn: Connection, ref: str, released_too: bool = False):
    """The session's account row (locked) with the session's own columns beside it."""
    query = _SESSION_LOCKED if conn.dialect.name == "postgresql" else _SESSION
    row = conn.execute(query, {"ref": ref}).first()
    if row is None or (row.session_released_at is not None and not released_too):
        raise SessionNotFound(f"no open charging session {ref!r}")
    return row


def _stored(ref: str, row, request: ChargingRequest) -> ChargingAnswer:
    grants = tuple((int(rg), Grant.from_dict(g)) for rg, g in row.session_result)
    return ChargingAnswer(ref, row.session_line, request.at, request.sequence, grants,
                          replayed=True)


def _charge(uow: UnitOfWork, policy: ChargingPolicy, ref: str, account, line: str,
            request: ChargingRequest) -> ChargingAnswer:
    """Rate the used units, grant the requested ones, write it all (`account` is locked)."""
    account_id = account.id
    book, snapshot = uow.accounts.load_book(account, uow.plans.all())
    _rate_used(uow, policy, book, account_id, ref, line, request)
    at = request.at
    if book.until is None or at >= book.until:
        book.advance_to(at)
    else:
        at = book.until  # the book already knows later events: answer from its latest state
    replaced = {u.rating_group for u in request.units if u.wants_quota or u.used}
    holds, mine = _live_holds(uow.conn, account_id, request.at, ref, replaced)
    grants: list[tuple[int, Grant]] = []
    for unit in sorted(request.units, key=lambda u: u.rating_group):
        if not unit.wants_quota:
            continue
        grant = decide(book, line, at, unit.requested, policy.rating_group(unit.rating_group),
                       holds, policy.quota)
        grants.append((unit.rating_group, grant))
        if grant.amount:
            holds.append(Hold(line, grant.amount))
    _replace_holds(uow.conn, ref, account_id, line, request.at, mine, grants, policy)
    uow.accounts.save_book(account_id, book, snapshot)
    emit_from_book(uow.conn, account, book, at)
    uow.conn.execute(_CLOSE, {"s_ref": ref, "updated_at": request.at,
                              "sequence": request.sequence,
                              "last_result": [[rg, g.as_dict()] for rg, g in grants]})
    return ChargingAnswer(ref, line, request.at, request.sequence, tuple(grants))


def _rate_used(uow: UnitOfWork, policy: ChargingPolicy, book: AccountBook, account_id: int,
               ref: str, line: str, request: ChargingRequest) -> None:
    events = [Usage(f"nchf:{ref}:{unit.rating_group}:{used.sequence}", line,
                    used.at or request.at, used.amount, Unit.DATA,
                    policy.rating_group(unit.rating_group), request.at)
              for unit in request.units for used in unit.used]
    if not events:
        return
    # The unique event id is the duplicate check: a container reported before is not
    # inserted again, and only what was inserted is rated (the core retransmitted).
    new = uow.accounts.record_new_usage(account_id, events, book.calendar, book.grace)
    for event in events:
        if event.id not in new:
            continue
        new.discard(event.id)  # the same container twice in one request: once
        outcome = book.submit(event)
        if outcome.status == "rejected":
            raise ServiceError(outcome.reason or "usage refused")


def _live_holds(conn: Connection, account_id: int, at: datetime, ref: str,
                replaced: set[int]) -> tuple[list[Hold], set[int]]:
    """The account's holds live at `at`, in grant order, but for the rating groups of
    session `ref` that this request replaces; and which of those `ref` holds now.

    Expired holds are deleted on the way (they hold nothing any more)."""
    h = quota_holds.c
    rows = conn.execute(_HOLDS, {"account_id": account_id}).all()
    live, mine, expired = [], set(), []
    for row in rows:
        if row.ref == ref and row.rating_group in replaced:
            mine.add(int(row.rating_group))
        elif utc(row.expires_at) <= at:
            expired.append((row.ref, row.rating_group))
        else:
            live.append(Hold(row.line, int(row.amount)))
    if expired:
        conn.execute(delete(quota_holds).where(tuple_(h.ref, h.rating_group).in_(expired)))
    return live, mine


def _replace_holds(conn: Connection, ref: str, account_id: int, line: str, at: datetime,
                   held: set[int], grants: list[tuple[int, Grant]],
                   policy: ChargingPolicy) -> None:
    """The session's new grants replace its holds of the rating groups it reported or
    asked for (`held`: those it has a hold of)."""
    rows = [{"ref": ref, "rating_group": rg, "account_id": account_id, "line": line,
             "amount": g.amount, "granted_at": at,
             "expires_at": at + timedelta(seconds=g.validity_seconds) + policy.hold_margin}
            for rg, g in grants if g.amount]
    gone = sorted(held - {row["rating_group"] for row in rows})
    if gone:
        conn.execute(delete(quota_holds).where(and_(
            quota_holds.c.ref == ref, quota_holds.c.rating_group.in_(gone))))
    if rows:
        conn.execute(_hold_upsert(conn.dialect.name), rows)
