"""Group commit for real-time charging: many Nchf requests, one transaction.

A packet core sends its requests one by one, and each answered in a transaction
of its own costs about fourteen statements and a commit. Here a batch of
requests, of any accounts and sessions, is answered in one transaction with a
fixed number of statements, whatever its size:

1. find the subscribers of the creates, and the accounts of the sessions;
2. lock every account of the batch in one statement, in id order, so that two
   workers' batches wait for each other instead of deadlocking;
3. read the sessions after the lock (so a retransmission answered by another
   worker a moment ago is seen, and so is the session a create sent again
   opened: its copy gets the first answer and opens nothing), the plans,
   which of the reported containers are stored already and, for accounts
   whose book is not kept (BookCache), the book, its holds and its closed
   buckets: one query each, sent together on PostgreSQL (store.pipelined);
4. answer each request in memory, in arrival order, exactly as it is answered
   alone: request k sees what requests 1..k-1 left, as if each had been a
   transaction of its own (the locks serialize an account's writers anyway);
5. write it all with one statement per kind of row (on PostgreSQL one
   `json_to_recordset` statement each, all in one pipeline), with the
   re-authorizations each request owes the account's other sessions whose line's
   standing it moved (services.charging.reauthorization), and commit once.

A request refused before it changes anything (unknown subscriber or reference,
an old invocationSequenceNumber) gets its error and the batch goes on. One
refused midway (usage the book refuses) or a database error rolls the batch
back; then every request is answered again in a batch of its own, so one bad
request never costs another its answer.

Used units are usage events keyed `nchf:<ref>:<rating group>:<localSequenceNumber>`,
or by their report where the SMF numbers containers per report (ChargingRequest.usage_ids).
The key is checked against `usage_events` before rating and the new rows are
inserted with the rest: no other transaction can store the same key meanwhile,
because a session's events are only written under its account's lock.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from carryover.domain.book import AccountBook
from carryover.domain.book_state import Snapshot
from carryover.domain.buckets import Bucket
from carryover.domain.inputs import Usage
from carryover.domain.notices import decided_at
from carryover.domain.quota import Grant, Hold, decide
from carryover.domain.sessions import ChargingSession, QuotaHold
from carryover.domain.units import Unit
from carryover.services.charging import reauthorization
from carryover.services.charging.book_cache import BookCache, Kept, as_loaded
from carryover.services.charging.model import (
    ChargingAnswer,
    ChargingOp,
    ChargingPolicy,
    ChargingRequest,
    SessionNotFound,
    StaleRequest,
    UnitRequest,
    UnknownSubscriber,
)
from carryover.services.charging.ports import ChargingUnit
from carryover.services.errors import ServiceError
from carryover.services.notify import notices

Result = ChargingAnswer | ServiceError | None  # None: a release


def charge(uow: ChargingUnit, policy: ChargingPolicy, ops: Sequence[ChargingOp],
           cache: BookCache | None = None) -> list[Result]:
    """Answer `ops` in order in one transaction of `uow`: per op its answer or its error.

    `cache` keeps the books between batches. Errors that are not the request's own
    (the database went away) are raised when the batch is a single request."""
    ops = list(ops)
    try:
        with uow:
            batch = _Batch(uow, policy, cache)
            results = batch.run(ops)
            uow.commit()
        batch.remember()  # only what was committed is worth keeping
        return results
    except _Refused as refused:
        if len(ops) == 1:
            return [refused.error]
    except Exception:
        # Not the request's doing (the database, a deadlock, a bug): alone, it is raised.
        if len(ops) == 1:
            raise
    # Rolled back: each request again on its own, so only the bad one is refused. An
    # error that is not a refusal (a value the database cannot store, the database
    # gone) is that request's answer alone: the others' are already committed.
    results: list[Result | Exception] = []
    for op in ops:
        try:
            results.append(charge(uow, policy, [op], cache)[0])
        except Exception as exc:
            results.append(exc)
    return results


class _Refused(Exception):
    """A request was refused after it changed the batch's state: roll back."""

    def __init__(self, error: ServiceError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(slots=True)
class _Account:
    row: Any
    book: AccountBook
    snapshot: Snapshot
    holds: dict[tuple[str, int], QuotaHold] = field(default_factory=dict)
    closed: list[Bucket] = field(default_factory=list)
    touched: bool = False


class _Batch:
    def __init__(self, uow: ChargingUnit, policy: ChargingPolicy,
                 cache: BookCache | None = None) -> None:
        self.uow, self.store, self.policy, self.cache = uow, uow.charging, policy, cache
        self.accounts: dict[int, _Account] = {}
        self.sessions: dict[str, ChargingSession] = {}
        self.opened: dict[str, ChargingSession] = {}  # open sessions by create key
        self.watched: dict[int, list[ChargingSession]] = {}  # account id -> notify sessions
        self.standing: dict[int, dict] = {}  # account id -> its watched lines' standings
        self.reauthorizations: list[dict] = []  # owed (services.charging.reauthorization)
        self.new_sessions: set[str] = set()  # refs to insert
        self.changed_sessions: set[str] = set()  # refs whose answer changed
        self.stored: set[str] = set()
        self.usage_rows: list[tuple] = []  # (account id, event, calendar, grace)
        self.outbox: dict[tuple, dict] = {}
        self.initial_holds: dict[tuple[str, int], QuotaHold] = {}

    # ---- reading ---------------------------------------------------------------------
    def run(self, ops: list[ChargingOp]) -> list[Result]:
        creates = [op.request.subscriber for op in ops
                   if op.kind == "create" and op.request.subscriber]
        found = self.store.subscribers(creates) if creates else {}
        refs = sorted({op.ref for op in ops if op.kind != "create" and op.ref})
        owners = self.store.session_accounts(refs)
        ids = sorted({row.account_id for row in found.values()} | set(owners.values()))
        keys = sorted({op.request.create_key for op in ops
                       if op.kind == "create" and op.request.create_key})
        self._load(ids, refs, keys, ops)
        results: list[Result] = []
        for op in ops:
            try:
                result = self._answer(op, found)
                results.append(result)
            except _Refused:
                raise
            except ServiceError as exc:  # refused before it changed anything
                results.append(exc)
                continue
            self._owe_after(op, result)
        self._write()
        return results

    def _load(self, ids: list[int], refs: list[str], keys: list[str],
              ops: list[ChargingOp]) -> None:
        if not ids:
            return
        rows = self.store.lock_accounts(ids)
        # Which numbering a report's containers follow depends on the session, read
        # below: ask for the ids of both.
        events = sorted({event for op in ops if op.ref for per_report in (False, True)
                         for ids in _reported(op).usage_ids(op.ref, per_report)
                         for event in ids})
        kept: dict[int, Kept] = {}
        missing = []
        for row in rows:
            hit = self.cache.take(row.id, row.version) if self.cache is not None else None
            if hit is None:
                missing.append(row)
            else:
                kept[row.id] = hit
        reads = self.store.read(refs, events, missing, keys, [row.id for row in rows])
        for r in reads.sessions:
            session = self.sessions[r.ref] = copy.copy(r)  # changed here, written at the end
            if session.create_key and session.released_at is None:
                self.opened[session.create_key] = session
        self.stored = set(reads.stored)
        for row in rows:
            hit = kept.get(row.id)
            if hit is None:
                continue
            book = hit.book
            book.use_plans(reads.plans)  # a plan's new body is a new Plan: the book sees it
            self.store.attach(row.id, book)
            self.accounts[row.id] = _Account(row, book, hit.snapshot, dict(hit.holds),
                                             hit.closed)
        for row in missing:
            book, snapshot = reads.books[row.id]
            self.accounts[row.id] = _Account(row, book, snapshot,
                                             closed=reads.closed.get(row.id, []))
        for r in reads.holds:
            self.accounts[r.account_id].holds[(r.ref, r.rating_group)] = copy.copy(r)
        for s in reads.watched:
            self.watched.setdefault(s.account_id, []).append(s)
        for account_id, watched in self.watched.items():
            self.standing[account_id] = reauthorization.before(
                self.accounts[account_id].book, watched)
        for account in self.accounts.values():
            self.initial_holds.update(account.holds)

    def _owe_after(self, op: ChargingOp, result: Result) -> None:
        """The re-authorizations request `op` owes the account's other watched sessions,
        as if it had been answered alone (services.charging.reauthorization)."""
        ref = result.ref if isinstance(result, ChargingAnswer) else op.ref
        session = self.sessions.get(ref or "")
        if session is None or session.account_id not in self.watched:
            return
        account_id = session.account_id
        owed, self.standing[account_id] = reauthorization.owed(
            self.accounts[account_id].book, self.watched[account_id],
            self.standing[account_id], "another session's usage or grant", session.ref)
        self.reauthorizations += owed

    # ---- answering ---------------------------------------------------------------------
    def _answer(self, op: ChargingOp, found: dict) -> Result:
        request = op.request
        if op.kind == "create":
            return self._create(request, found)
        session = self.sessions.get(op.ref or "")
        if session is None or (session.released_at is not None and op.kind == "update"):
            raise SessionNotFound(f"no open charging session {op.ref!r}")
        if op.kind == "release":
            if session.released_at is not None:
                return None  # released already: releasing again changes nothing
            # A release numbered no higher than the last answer comes from an SMF that
            # does not count its requests: its containers are the report's (_repeats).
            self._charge(session, _reported(op), request.sequence <= session.sequence)
            account = self.accounts[session.account_id]
            for key in [k for k in account.holds if k[0] == session.ref]:
                del account.holds[key]
            session.released_at = request.at
            if session.create_key and self.opened.get(session.create_key) is session:
                del self.opened[session.create_key]  # a create sent later opens a new one
            return None
        if request.sequence == session.sequence:
            if _repeats(session, request):  # a retransmission: the same answer
                return _replay(session, request)
            return self._charge(session, request, True)  # not counted: see _repeats
        if request.sequence < session.sequence:
            raise StaleRequest(f"invocationSequenceNumber {request.sequence} is older than "
                               f"the last one answered ({session.sequence})")
        return self._charge(session, request)

    def _create(self, request: ChargingRequest, found: dict) -> ChargingAnswer:
        if not request.subscriber:
            raise UnknownSubscriber("the request names no subscriber (subscriberIdentifier)")
        row = found.get(request.subscriber)
        if row is None:
            raise UnknownSubscriber(f"no line has subscriber {request.subscriber!r}")
        if request.at < row.opened_at:
            raise ServiceError(f"line {row.id!r} starts at {row.opened_at.isoformat()}, "
                               f"after the request's {request.at.isoformat()}")
        first = self.opened.get(request.create_key or "")
        if first is not None:  # the same create again: the first one's answer, no new hold
            if first.sequence != request.sequence or not _repeats(first, request):
                raise StaleRequest(
                    f"this create opened session {first.ref!r}, which has answered "
                    f"another request since (invocationSequenceNumber {first.sequence})")
            return _replay(first, request)
        session = ChargingSession(uuid.uuid4().hex, row.account_id, row.id,
                                  request.subscriber, request.at, request.at, -1, [], None,
                                  request.create_key, notify_uri=request.notify_uri)
        self.new_sessions.add(session.ref)
        self.sessions[session.ref] = session
        if session.create_key:
            self.opened[session.create_key] = session
        return self._charge(session, request)

    def _charge(self, session: ChargingSession, request: ChargingRequest,
                uncounted: bool = False) -> ChargingAnswer:
        """Rate one request's used units and grant its requested ones, against the book as the
        batch's earlier requests left it. `uncounted`: the request came with the sequence
        number of the last one answered and says something else (_repeats)."""
        account = self.accounts[session.account_id]
        account.touched = True
        book, ref, line = account.book, session.ref, session.line
        try:
            self._rate_used(account, session, request, self.policy.per_report or uncounted,
                            unnumbered_only=uncounted and not self.policy.per_report)
        except ServiceError as exc:
            raise _Refused(exc) from exc
        at = request.at
        if book.until is None or at >= book.until:
            book.advance_to(at)
        else:
            at = book.until  # the book already knows later events: answer from its latest state
        replaced = {u.rating_group for u in request.units if u.wants_quota or u.used}
        live, mine = [], set()
        for key, hold in sorted(account.holds.items(), key=lambda kv: kv[1].order()):
            if hold.ref == ref and hold.rating_group in replaced:
                mine.add(hold.rating_group)
            elif hold.expires_at <= request.at:
                del account.holds[key]  # expired: it holds nothing any more
            else:
                live.append(Hold(hold.line, hold.amount))
        grants: list[tuple[int, Grant]] = []
        for unit in sorted(request.units, key=lambda u: u.rating_group):
            if not unit.wants_quota:
                continue
            grant = decide(book, line, at, unit.requested,
                           self.policy.rating_group(unit.rating_group), live, self.policy.quota)
            grants.append((unit.rating_group, grant))
            if grant.amount:
                live.append(Hold(line, grant.amount))
        # The new grants replace the session's holds of the groups it reported or asked for.
        for rating_group in mine:
            del account.holds[(ref, rating_group)]
        for rating_group, grant in grants:
            if grant.amount:
                account.holds[(ref, rating_group)] = QuotaHold(
                    session.account_id, ref, rating_group, line, grant.amount, request.at,
                    request.at + timedelta(seconds=grant.validity_seconds)
                    + self.policy.hold_margin)
        for row in notices.book_rows_with(
                account.row, book, decided_at(book, at), account.closed,
                account.snapshot.msisdns, account.snapshot.alert_thresholds):
            self.outbox.setdefault((row["line"], row["cycle_start"], row["kind"]), row)
        session.updated_at, session.sequence = request.at, request.sequence
        session.last_digest = request.digest()
        session.last_result = [[rg, g.as_dict()] for rg, g in grants]
        self.changed_sessions.add(session.ref)
        return ChargingAnswer(ref, line, request.at, request.sequence, tuple(grants))

    def _rate_used(self, account: _Account, session: ChargingSession,
                   request: ChargingRequest, per_report: bool,
                   unnumbered_only: bool = False) -> None:
        """Rate the request's containers. `unnumbered_only`: the request is numbered as
        the last one and says something else (_repeats); a container numbered above 0
        keeps its session number all the same (a counting SMF sending it again in a
        changed request: counted once), those numbered 0 are the report's (an SMF that
        numbers nothing)."""
        book = account.book
        for unit, ids in zip(request.units,
                             request.usage_ids(session.ref, per_report, unnumbered_only),
                             strict=True):
            for used, event_id in zip(unit.used, ids, strict=True):
                event = Usage(event_id, session.line, used.at or request.at, used.amount,
                              Unit.DATA, self.policy.rating_group(unit.rating_group),
                              request.at)
                if event.id in self.stored:
                    continue  # reported before (the core retransmitted): counted once
                self.stored.add(event.id)
                self.usage_rows.append((session.account_id, event, book.calendar, book.grace))
                outcome = book.submit(event)
                if outcome.status == "rejected":
                    raise ServiceError(outcome.reason or "usage refused")

    def remember(self) -> None:
        """After the commit: keep the books, at the versions the batch left them."""
        if self.cache is None:
            return
        for account_id, account in self.accounts.items():
            book, version, snapshot = account.book, account.row.version, account.snapshot
            closed = account.closed
            if account.touched:  # save_books wrote it and bumped the version once
                if book.replayed:
                    continue  # its save also closed buckets it no longer holds: read again
                closed = as_loaded(book, closed)
                snapshot = book.snapshot(snapshot.msisdns, snapshot.alert_thresholds)
                version += 1
            book.detach()  # its history reads through this transaction
            self.cache.put(account_id, Kept(version, book, snapshot, account.holds, closed))

    # ---- writing -----------------------------------------------------------------------
    def _write(self) -> None:
        # Saving a replayed book reads which buckets exist: its writes cannot be pipelined.
        replayed = any(a.touched and a.book.replayed for a in self.accounts.values())
        store = self.store
        with store.writing(pipelined=not replayed):
            # Released sessions first: a create after a release in the same batch may
            # take the released one's create key (unique among open sessions).
            store.update_sessions([s for s in self.sessions.values()
                                  if s.ref in self.changed_sessions - self.new_sessions])
            store.add_sessions([s for s in self.sessions.values() if s.ref in self.new_sessions])
            store.add_usage(self.usage_rows)
            touched = sorted(i for i, a in self.accounts.items() if a.touched)
            store.save_books(
                [(i, self.accounts[i].book, self.accounts[i].snapshot) for i in touched])
            final = {key: hold for a in self.accounts.values() for key, hold in a.holds.items()}
            store.drop_holds(sorted(set(self.initial_holds) - set(final)))
            store.put_holds([h for key, h in sorted(final.items())
                             if self.initial_holds.get(key) != h])
            self.uow.outbox.offer(list(self.outbox.values()))
            self.uow.reauthorizations.offer(self.reauthorizations)


def _reported(op: ChargingOp) -> ChargingRequest:
    """The request whose containers `op` reports: a release's asks for nothing more."""
    request = op.request
    if op.kind != "release":
        return request
    return replace(request, units=tuple(UnitRequest(u.rating_group, False, None, u.used)
                                        for u in request.units))


def _repeats(session: ChargingSession, request: ChargingRequest) -> bool:
    """Whether `request`, numbered as the last answered one, is that one sent again: it
    says it is (retransmissionIndicator) or says the same (a session stored before
    digests were kept has none: then the number alone decides, as it did).

    Otherwise it is a new request from an SMF that does not count its requests
    (free5GC's SMF sends invocationSequenceNumber 0 every time); its containers
    numbered 0 are keyed by the report (ChargingRequest.usage_ids), those numbered
    above 0 keep their session number. docs/nchf.md, "Sequence numbers"."""
    return (request.retransmission or session.last_digest is None
            or session.last_digest == request.digest())


def _replay(session: ChargingSession, request: ChargingRequest) -> ChargingAnswer:
    """The answer `session` gave last, to a request sent again."""
    grants = tuple((int(rg), Grant.from_dict(g)) for rg, g in session.last_result)
    return ChargingAnswer(session.ref, session.line, request.at, request.sequence, grants,
                          replayed=True)

