"""The account book: an account's balances as a fold over its inputs.

The rules are docs/semantics.md, "A line's state is a fold", and docs/semantics.md,
"Cycles and rollover at the boundary instant".

`AccountBook.submit` takes inputs in arrival order. An input that sorts after
everything already folded is applied incrementally; one that sorts earlier (a
late CDR within the grace window, say) triggers a full replay in
(effective instant, rank, id) order, and the difference between what was booked
and what the replay says, cycle by cycle, is appended as correction entries
(`adjust`, signed grants, or signed debits where usage moved down the
consumption order), each effective in the cycle it corrects and recorded at the
booking instant. So the balances and every cycle's statement are always those
of a full replay, whatever the arrival order, and the ledger stays append-only.

The booking instant (`recorded_at` of the entries) is `book.now` when the caller
sets it (`record_at`: the server's clock, say); a pure fold, with no clock,
records each input's entries at its arrival instant.

A replay streams the history (domain/history.py, in fold order) and keeps only
the per-bucket totals of the entries it books, not the entries themselves, so
its memory is the account's state, not its history. `submit_usage` takes many
usage events at once and replays at most once for all of them.

Time only moves forward inside a fold: `advance_to(t)` materializes every
expiry and cycle boundary up to t (rollover included) before anything at t is
applied, which is how rolled-over data is usable at the boundary instant with
no job in between.

This module is about order: when each input folds, when time advances, when a
replay is due. What happens is the rules' (domain/input_rules.py for each input,
domain/boundary.py and domain/plan_grants.py in time), which act on the book
through domain/folding.py. The state a store keeps, restores (`restore`) and
writes back (`snapshot`, `changes`) is domain/book_state.py.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime, timedelta

from carryover.domain import book_state, boundary, input_rules, plan_grants
from carryover.domain.book_state import Changes, Cursor, LineState, Snapshot
from carryover.domain.buckets import POOL, Bucket, BucketTable, in_consumption_order
from carryover.domain.cycles import CycleCalendar
from carryover.domain.history import History
from carryover.domain.input_rules import Refused
from carryover.domain.inputs import (
    DEFAULT_GRACE,
    ChangePlan,
    Gift,
    Input,
    OpenLine,
    SetLimit,
    TopUp,
    Usage,
    arrival_instant,
    effective_instant,
    order_key,
)
from carryover.domain.ledger import CycleTotals, Entry, EntryKind, correction_entries
from carryover.domain.plan_versions import PlanCatalog
from carryover.domain.plans import Plan
from carryover.domain.units import Unit


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one submitted input."""

    status: str  # accepted | duplicate | rejected
    late: bool = False
    replayed: bool = False
    reason: str | None = None
    entries: tuple[Entry, ...] = ()


class AccountBook:
    """All buckets, entries and counters of one account (its lines and its pool)."""

    def __init__(self, calendar: CycleCalendar, plans: Mapping[str, Plan],
                 grace: timedelta = DEFAULT_GRACE, history: History | None = None) -> None:
        self.calendar = calendar
        # Plans are asked for the version in force at the fold's instant (`plan_at`),
        # so re-loading a plan id never changes what an earlier instant folded to.
        self._plans = PlanCatalog.of(plans)
        self.plan_at: datetime | None = None
        self.grace = grace
        self.lines: dict[str, LineState] = {}
        self.buckets = BucketTable()
        self.entries: list[Entry] = []
        # (cycle start, line, unit, counter) -> amount; counters: used, overage, hotspot, pool
        self.counters: dict[tuple, int] = defaultdict(int)
        self.cycle_start: datetime | None = None
        # The latest instant at which anything but usage changed the buckets: usage
        # after it commutes (see _commutes).
        self.segment_start: datetime | None = None
        self.cycle_end: datetime | None = None
        self.until: datetime | None = None
        self.last_key: tuple | None = None
        self.applied: list[Input] = []
        self.seen_usage: set[str] = set()
        # Where a replay reads what was folded before this session (domain/history.py);
        # this session's own inputs and entries are `applied` and `entries`.
        self._history = history
        # The booking instant set by the caller (the server's now); None in a pure fold,
        # where entries are recorded at the arrival of the input that caused them.
        self.now: datetime | None = None
        self._arrival: datetime | None = None
        self.replayed = False  # set when a replay replaced the state wholesale
        self.keeps_inputs = True  # a replay's scratch book does not keep `applied`

    @property
    def plans(self) -> PlanCatalog:
        return self._plans

    def use_plans(self, plans: Mapping[str, Plan]) -> None:
        """Fold on with `plans` (a catalog read again): a plan's new version is seen."""
        self._plans = PlanCatalog.of(plans)

    def record_at(self, now: datetime | None) -> None:
        """Record the entries booked from now on at `now` (None: at each input's arrival)."""
        self.now = now

    def attach(self, history: History | None) -> None:
        """Replay from `history` from now on: a kept book in a new transaction."""
        self._history = history

    def detach(self) -> None:
        """Let go of the history, which reads through a transaction that has ended."""
        self._history = None

    @classmethod
    def restore(cls, calendar: CycleCalendar, plans: Mapping[str, Plan], grace: timedelta,
                *, lines: Mapping[str, LineState], buckets: Mapping[str, Bucket],
                counters: Mapping[tuple, int], cursor: Cursor,
                history: History | None = None) -> AccountBook:
        """The book a store kept (domain/book_state.py), to fold on from `cursor`.

        A BucketTable, a dict of lines and a defaultdict of counters become the book's
        own (no copy); other mappings are copied into those. A plain dict of buckets
        still gets the live index that keeps boundary work linear in the live buckets."""
        book = cls(calendar, plans, grace, history)
        book.lines = lines if type(lines) is dict else dict(lines)
        book.buckets = buckets if isinstance(buckets, BucketTable) else BucketTable(buckets)
        book.counters = (counters if isinstance(counters, defaultdict)
                         else defaultdict(int, counters))
        book.cycle_start, book.cycle_end = cursor.cycle_start, cursor.cycle_end
        book.segment_start, book.until = cursor.segment_start, cursor.until
        book.last_key = cursor.last_key
        return book

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.cycle_start, self.cycle_end, self.segment_start, self.until,
                      self.last_key)

    def snapshot(self, msisdns: Mapping[str, str] | None = None,
                 alert_thresholds: Mapping[str, tuple[int, ...]] | None = None) -> Snapshot:
        """What the book holds now, to compare with later (domain/book_state.py); the
        MSISDNs and alert thresholds are the store's, riding along."""
        return book_state.snapshot(self.buckets, self.counters, self.lines, msisdns or {},
                                   alert_thresholds or {})

    def changes(self, since: Snapshot) -> Changes:
        """What the book holds that `since` does not: the rows to write back."""
        return book_state.changes(since, self.entries, self.buckets, self.counters,
                                  self.lines, self.cursor, self.replayed)

    def forget_closed(self) -> list[Bucket]:
        """Make a saved book what a store loads back, and return the buckets it lets go.

        The live buckets and the current cycle's counters stay; closed buckets, other
        cycles' counters and what this session folded (its entries and inputs, the ids
        of its usage, the replay mark) go, so a book kept between transactions does not
        grow cycle after cycle."""
        gone = [b for b in self.buckets.values() if b.closed]
        self.buckets = BucketTable({b.id: b for b in self.buckets.values() if not b.closed})
        if self.cycle_start is not None:
            current = self.cycle_start.isoformat()
            self.counters = defaultdict(int, {k: v for k, v in self.counters.items()
                                              if k[0] == current})
        self.entries, self.applied, self.seen_usage = [], [], set()
        self.replayed = False
        return gone

    def key(self, item: Input) -> tuple:
        return order_key(item, self.calendar, self.grace)

    def ordered_inputs(self, leave_out: Set[tuple] = frozenset()) -> Iterator[Input]:
        """Every input folded so far, in fold order, streamed, without `leave_out`
        ((type, id) pairs): the store's history merged with this session's inputs."""
        mine = {(type(i), i.id) for i in self.applied}
        session = sorted((i for i in self.applied if (type(i), i.id) not in leave_out),
                         key=self.key)
        if self._history is None:
            return iter(session)
        skip = mine | leave_out
        stored = (i for i in self._history.inputs() if (type(i), i.id) not in skip)
        return heapq.merge(_checked_order(stored, self.key), session, key=self.key)

    # ---- plans -------------------------------------------------------------------
    def plan(self, plan_id: str | None) -> Plan | None:
        """The version of `plan_id` in force at the fold's instant (`plan_at`)."""
        if plan_id is None:
            return None
        at = self.plan_at if self.plan_at is not None else self.until
        return self.plans.at(plan_id, at, self.calendar)

    def plan_of(self, owner: str) -> Plan | None:
        state = self.lines.get(owner)
        return None if state is None else self.plan(state.plan_id)

    def governing_plan(self, line: str) -> Plan | None:
        """The line's own plan, or for a plan-less family member the pool's."""
        own = self.plan_of(line)
        if own is not None:
            return own
        state = self.lines.get(line)
        return self.plan_of(POOL) if state is not None and state.member else None

    # ---- submitting --------------------------------------------------------------
    def submit(self, item: Input) -> Outcome:
        try:
            input_rules.check(self, item)
        except Refused as exc:
            return Outcome("rejected", reason=str(exc))
        if isinstance(item, Usage) and item.id in self.seen_usage:
            return Outcome("duplicate", reason=f"event {item.id} was already counted")
        at, late = effective_instant(item, self.calendar, self.grace)
        in_order = self._in_order(item, at)
        before = len(self.entries)
        self._arrival = arrival_instant(item)
        try:
            if in_order or self._commutes(item, at):
                self._apply(item, strict=True)
            else:
                self._replay_with([item])
        except Refused as exc:
            return Outcome("rejected", reason=str(exc))
        finally:
            self._arrival = None
        return Outcome("accepted", late=late, replayed=not in_order,
                       entries=tuple(self.entries[before:]))

    def submit_usage(self, items: Sequence[Usage]) -> list[Outcome]:
        """`submit` for many usage events, folding the account's history at most once.

        Events are applied one by one while they are in order or commute; from the
        first that is not, the rest go into one replay together. The balances are
        those of submitting them one by one (both equal the full replay); the
        corrections are booked once, at the latest arrival among the replayed
        events, and reported on the last replayed event's outcome."""
        outcomes: list[Outcome | None] = [None] * len(items)
        deferred: list[int] = []
        ids: set[str] = set()
        for n, item in enumerate(items):
            if not deferred:
                at, _ = effective_instant(item, self.calendar, self.grace)
                if (item.id in self.seen_usage or self._in_order(item, at)
                        or self._commutes(item, at)):
                    outcomes[n] = self.submit(item)
                    continue
            # From the first event that needs a replay on, every event joins it.
            try:
                input_rules.check(self, item)
            except Refused as exc:
                outcomes[n] = Outcome("rejected", reason=str(exc))
                continue
            if item.id in self.seen_usage or item.id in ids:
                outcomes[n] = Outcome("duplicate", reason=f"event {item.id} was already counted")
                continue
            ids.add(item.id)
            deferred.append(n)
        if deferred:
            before = len(self.entries)
            self._replay_with([items[n] for n in deferred])
            for n in deferred:
                late = effective_instant(items[n], self.calendar, self.grace)[1]
                outcomes[n] = Outcome("accepted", late=late, replayed=True, entries=tuple(
                    self.entries[before:]) if n == deferred[-1] else ())
        return outcomes  # type: ignore[return-value]

    def _in_order(self, item: Input, at: datetime) -> bool:
        return self.last_key is None or (
            self.key(item) > self.last_key and (self.until is None or at >= self.until))

    def _commutes(self, item: Input, at: datetime) -> bool:
        """Whether an out-of-order input may be applied in place, with no replay.

        Usage drained greedily through a queue that does not change gives each bucket
        the same total whatever the order of the events (the prefix-sum argument of
        rating.py). So a usage event that sorts before the frontier but after the last
        breakpoint (boundary, expiry, grant, plan change: anything but usage) leaves
        the balances exactly as a full replay would. Pools are left out: with several
        members the order decides which line's usage becomes overage or hits a limit.
        """
        return (isinstance(item, Usage) and POOL not in self.lines
                and self.segment_start is not None and at >= self.segment_start
                and self.cycle_start is not None and at >= self.cycle_start)

    def _replay_with(self, items: list[Input]) -> None:
        """Fold the whole history with `items` from scratch and adopt the result.

        The history streams in fold order into a scratch book that keeps no inputs
        and only the totals of its entries: memory is the account's state (buckets,
        counters, the ids of its usage), whatever the length of its history."""
        new = {(type(i), i.id) for i in items}
        # A store may already hold the new inputs (usage is inserted first, so its
        # unique id is the duplicate check); each must be folded once.
        history = self.ordered_inputs(leave_out=new)
        fresh = AccountBook(self.calendar, self.plans, self.grace)
        fresh.keeps_inputs = False
        truth = CycleTotals(self.calendar.cycle_at)
        fresh.entries = truth  # type: ignore[assignment]
        for earlier in heapq.merge(history, sorted(items, key=self.key), key=self.key):
            fresh._apply(earlier, strict=(type(earlier), earlier.id) in new)
        latest = max(effective_instant(i, self.calendar, self.grace)[0] for i in items)
        fresh.advance_to(max(self.until, latest))
        booked = CycleTotals(self.calendar.cycle_at)
        for e in self.entries:  # this session's entries, not yet stored
            booked.append(e)
        if self._history is not None:
            for key, effective_at, value in self._history.booked_totals():
                booked.add(key, effective_at, value)
        first = min(items, key=self.key)
        note = f"replayed after {first.id} arrived out of order"
        if len(items) > 1:
            note = f"replayed after {first.id} and {len(items) - 1} more arrived out of order"
        recorded = self.now or max(arrival_instant(i) for i in items)
        corrections = correction_entries(booked, truth, recorded, first.id, note=note)
        fresh.entries = self.entries + corrections
        # Adopt the replay's state wholesale: the balances are the replay's by definition.
        for name in ("lines", "buckets", "entries", "counters", "cycle_start", "cycle_end",
                     "until", "last_key", "seen_usage", "segment_start"):
            setattr(self, name, getattr(fresh, name))
        self.applied.extend(items)
        self.replayed = True

    def _apply(self, item: Input, strict: bool) -> None:
        at, _ = effective_instant(item, self.calendar, self.grace)
        if isinstance(item, OpenLine):
            self._open(item)
        else:
            self.advance_to(at)
            self.plan_at = at
            if isinstance(item, Usage):
                input_rules.rate(self, item, at)
            elif isinstance(item, TopUp):
                input_rules.top_up(self, item)
            elif isinstance(item, Gift):
                input_rules.gift(self, item, strict)
            elif isinstance(item, ChangePlan):
                self._change_plan(item)
            elif isinstance(item, SetLimit):
                state = self.lines[item.line]
                if item.amount is None:
                    state.limits.pop(item.unit, None)
                else:
                    state.limits[item.unit] = item.amount
        key = order_key(item, self.calendar, self.grace)
        self.last_key = key if self.last_key is None else max(self.last_key, key)
        self.until = at if self.until is None else max(self.until, at)
        if not isinstance(item, Usage):
            self.mark_segment(at)
        if self.keeps_inputs:
            self.applied.append(item)

    def mark_segment(self, at: datetime) -> None:
        self.segment_start = at if self.segment_start is None else max(self.segment_start, at)

    # ---- time --------------------------------------------------------------------
    def advance_to(self, t: datetime) -> None:
        """Materialize every expiry and boundary at or before t."""
        if self.cycle_end is None:
            return
        while True:
            due = [b.valid_until for b in self.buckets.live()
                   if b.valid_until is not None and b.valid_until < self.cycle_end]
            first_due = min(due, default=None)
            if first_due is not None and first_due <= t:
                self.plan_at = first_due
                boundary.expire_due(self, first_due)
            elif self.cycle_end <= t:
                self.plan_at = self.cycle_end
                boundary.close_cycle(self, self.cycle_end)
            else:
                break
        self.until = t if self.until is None else max(self.until, t)
        self.plan_at = t

    # ---- the inputs --------------------------------------------------------------
    def _open(self, item: OpenLine) -> None:
        if self.cycle_start is None:
            self.cycle_start, self.cycle_end = self.calendar.cycle_at(item.at)
        self.advance_to(item.at)
        self.plan_at = item.at
        self.lines[item.line] = LineState(item.line, item.at, item.plan_id, item.member)
        plan = self.plan(item.plan_id)
        if plan is not None:
            full = item.at == self.cycle_start or not plan.prorate_first_cycle
            plan_grants.grant_plan(self, item.line, plan, item.at, prorate=not full, ref=item.id)

    def _change_plan(self, item: ChangePlan) -> None:
        state = self.lines[item.line]
        if item.effective == "next_cycle":
            state.pending_plan = item.plan_id
            return
        plan_grants.leave_plan(self, item.line, item.at, ref=item.id)
        state.plan_id = item.plan_id
        plan_grants.grant_plan(self, item.line, self.plan(item.plan_id), item.at, prorate=True,
                            ref=item.id, changed=True)

    # ---- helpers shared with boundary, the input rules and views ------------------
    def own_buckets(self, owner: str, unit: Unit, at: datetime) -> list[Bucket]:
        return in_consumption_order(
            b for b in self.buckets.live() if b.owner == owner and b.unit == unit
            and b.usable_at(at))

    def queue(self, line: str, unit: Unit, at: datetime) -> list[Bucket]:
        """The buckets `line` draws at `at`, own and pool, in consumption order."""
        member = self.lines[line].member
        return in_consumption_order(
            b for b in self.buckets.live()
            if b.unit == unit and (b.owner == line or (member and b.owner == POOL))
            and b.usable_at(at))

    def add_bucket(self, bucket: Bucket, kind: EntryKind, at: datetime, line: str | None,
                   ref: str, note: str = "") -> None:
        self.buckets[bucket.id] = bucket
        self.book(at, kind, bucket, bucket.granted or 0, line, ref, note)

    def book(self, at: datetime, kind: EntryKind, bucket: Bucket, amount: int,
             line: str | None, ref: str, note: str = "") -> None:
        self.entries.append(Entry(at, kind, bucket.unit, amount, bucket.id, bucket.owner,
                                  line, ref, note, self.recording_instant(at)))

    def recording_instant(self, effective_at: datetime) -> datetime:
        """When an entry booked now is recorded: the caller's clock, else the arrival of
        the input being submitted, else (time advanced by a read) its effective instant."""
        return self.now or self._arrival or effective_at

    def counter(self, cycle_start: datetime, line: str, unit: Unit, name: str) -> int:
        return self.counters.get((cycle_start.isoformat(), line, unit, name), 0)


def _checked_order(inputs: Iterable[Input], key: Callable[[Input], tuple]) -> Iterator[Input]:
    """`inputs`, checked to come in fold order: a replay merges them as they stream,
    so an input out of place would silently fold in the wrong order."""
    last = None
    for item in inputs:
        k = key(item)
        if last is not None and k < last:
            raise RuntimeError(f"history out of fold order at {item.id!r}: {k} after {last}")
        last = k
        yield item
