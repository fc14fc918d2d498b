"""Property tests for the account book: conservation, duplicates, replay, monotonicity.

What is checked, with the section of docs/semantics.md it comes from:
- conservation ("The ledger and conservation"): per bucket the ledger folds to the
  bucket's remaining (and remaining never goes below zero); per line the debits plus
  overage equal the usage the line reported; every byte rolled out of a bucket rolls
  into one, and every byte gifted away arrives.
- duplicates ("Late usage"): an event id counted twice changes nothing.
- replay equivalence ("A line's state is a fold"): the same inputs give the same
  balances, counters and check objects whether they arrive in timestamp order or
  with usage reordered inside the grace window; the corrected ledger still folds to
  those balances.
- More usage never makes more available later. Two exclusions, each pinned by a
  test at the end: no gifts (a gift refused for lack of bytes leaves the giver
  more), and no stash caps (a smaller deposit now leaves stash room for a
  longer-lived one later: step 2 of "Cycles and rollover at the boundary instant").

Scenarios are drawn from the shipped presets and from random metered plans built
with plan_from_mapping; inputs span 2-4 bill cycles of a random bill-cycle day
and zone, with instants biased towards the boundaries (exactly on, 1 us either
side), amounts from a byte to tens of GB.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from carryover.domain import ledger, views
from carryover.domain.book import AccountBook
from carryover.domain.buckets import POOL
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import (
    DEFAULT_GRACE,
    HOTSPOT,
    ChangePlan,
    Gift,
    Input,
    OpenLine,
    SetLimit,
    TopUp,
    Usage,
    effective_instant,
    order_key,
)
from carryover.domain.ledger import EntryKind
from carryover.domain.plans import Plan, PlanKind, plan_from_mapping
from carryover.domain.units import Unit
from carryover.plan_files import load_presets

KB = 1024
MB = 1024**2
GB = 1024**3
US = timedelta(microseconds=1)
PRESETS = load_presets()
METERED_PRESETS = sorted(p.id for p in PRESETS.values() if p.kind is PlanKind.METERED)
# CARRYOVER_PROPERTY_SCALE=20 runs every property 20 times as long (a deeper search).
SCALE = int(os.environ.get("CARRYOVER_PROPERTY_SCALE", "1"))
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Shanghai", "America/Santiago",
         "Australia/Lord_Howe"]
LINES = ["a", "b", "c"]

# ------------------------------------------------------------------------------ strategies


def examples(n: int) -> int:
    return n * SCALE


tiny = st.integers(0, 3)
# Amounts of usage, top-ups and gifts: mostly realistic, sometimes a few bytes.
amounts = st.one_of(
    tiny,
    st.integers(1, 4 * GB),
    st.sampled_from([1, KB, MB, 100 * MB, GB, 5 * GB]),
)
sizes = st.one_of(  # allowances and caps
    st.integers(1, 3),
    st.integers(MB, 30 * GB),
    st.sampled_from([1, 500 * MB, 2 * GB, 10 * GB, 20 * GB]),
)


@st.composite
def random_plan(draw, plan_id: str, stash_cap: bool = True) -> Plan:
    """A random metered plan; `stash_cap=False` never gives it a stash cap."""
    data: dict = {"id": plan_id, "kind": "metered"}
    allowance: dict = {"data": draw(sizes)}
    if draw(st.booleans()):
        allowance["voice"] = draw(st.sampled_from([1, 60, 3600, 100 * 60]))
    data["allowance"] = allowance
    if draw(st.booleans()):
        kinds = ["bonus", "allowance", "rollover", "topup", "gift"]
        data["priorities"] = {k: draw(st.integers(0, 50)) for k in kinds if draw(st.booleans())}
    data["first_cycle"] = draw(st.sampled_from(["prorate", "full"]))
    if draw(st.integers(0, 4)):  # mostly with rollover
        rollover: dict = {
            "kinds": draw(st.lists(st.sampled_from(["allowance", "topup", "gift", "rollover"]),
                                   min_size=1, max_size=3, unique=True)),
            "rolls_again": draw(st.booleans()),
            "forfeit_on_plan_change": draw(st.booleans()),
        }
        cap = draw(st.sampled_from(["none", "allowance", "bytes"]))
        if cap == "allowance":
            rollover["per_cycle_cap"] = "allowance"
        elif cap == "bytes":  # a cap in bytes caps data only (docs/plan-files.md)
            rollover["per_cycle_cap"] = f"{draw(sizes)}B"
        if stash_cap and draw(st.booleans()):
            rollover["stash_cap"] = f"{draw(sizes)}B"
        if draw(st.booleans()):
            rollover["lifetime"] = {"cycles": draw(st.integers(1, 3))}
        else:
            rollover["lifetime"] = {"months": draw(st.integers(1, 13))}
        data["rollover"] = rollover
    action = draw(st.sampled_from(["block", "throttle", "charge"]))
    if action == "throttle":
        data["overage"] = {"action": "throttle", "kbps": "128kbps"}
    elif action == "charge":
        data["overage"] = {"action": "charge", "price": "0.29", "currency": "USD", "per": "1MB"}
    else:
        data["overage"] = {"action": "block"}
    data["topup"] = {"mode": draw(st.sampled_from(["stack", "merge"]))}
    return plan_from_mapping(data)


@dataclass(frozen=True)
class Scenario:
    calendar: CycleCalendar
    plans: dict[str, Plan]
    start: datetime
    end: datetime  # the last boundary of the scenario; every input is before it
    boundaries: tuple[datetime, ...]
    lines: tuple[str, ...]  # the subscriber lines (the pool, if any, is not one)
    family: bool
    openers: tuple[Input, ...]
    events: tuple[Input, ...]

    def inputs(self) -> list[Input]:
        return [*self.openers, *self.events]

    def __repr__(self) -> str:
        # Short enough to read in a falsifying example: the presets are left out.
        own = {k: v for k, v in self.plans.items() if k not in PRESETS}
        lines = [f"Scenario({self.calendar}, start={self.start.isoformat()}, "
                 f"end={self.end.isoformat()}, family={self.family}",
                 f"  random plans: {own!r}"]
        lines += [f"  {item!r}" for item in self.inputs()]
        return "\n".join(lines) + ")"

    def _repr_pretty_(self, printer, cycle) -> None:  # used by hypothesis' reports
        printer.text(repr(self))


@st.composite
def instants(draw, start: datetime, end: datetime, boundaries: tuple[datetime, ...]) -> datetime:
    """An instant in [start, end): anywhere, or on / next to a boundary."""
    inner = [b for b in boundaries if start < b < end]
    if inner and draw(st.integers(0, 3)) == 0:
        b = draw(st.sampled_from(inner))
        at = b + draw(st.sampled_from([-US, timedelta(0), US, -timedelta(seconds=1),
                                       timedelta(hours=1)]))
        return min(max(at, start), end - US)
    span = (end - start) // US
    return start + draw(st.integers(0, span - 1)) * US


@st.composite
def scenarios(draw, *, grace_only: bool = False, gifts: bool = True, max_events: int = 22,
              stash_cap: bool = True, usage_weight: int = 6):
    calendar = CycleCalendar(draw(st.integers(1, 31)), draw(st.sampled_from(ZONES)))
    year, month = 2026, draw(st.integers(1, 12))
    first = calendar.start_in_month(year, month)
    n_cycles = draw(st.integers(2, 4))
    end = calendar.shift_cycles(first, n_cycles)
    boundaries = tuple(calendar.shift_cycles(first, k) for k in range(n_cycles + 1))
    if draw(st.booleans()):
        start = first
    else:  # a partial first cycle (prorated or full, as each plan says)
        start = first + draw(st.integers(1, (boundaries[1] - first) // US - 1)) * US

    plans = {k: p for k, p in PRESETS.items()
             if stash_cap or p.rollover is None or p.rollover.stash_cap is None}
    for n in range(draw(st.integers(0, 3))):
        plans[f"random-{n}"] = draw(random_plan(f"random-{n}", stash_cap))
    metered = [p for p in METERED_PRESETS if p in plans]
    metered += [p for p in plans if p.startswith("random-")]
    all_plans = sorted(plans)

    family = draw(st.booleans())
    lines = tuple(LINES[: draw(st.integers(1, 3))])
    if not family and len(lines) == 1 and gifts and draw(st.booleans()):
        lines = ("a", "b")
    openers: list[Input] = []
    if family:
        openers.append(OpenLine("open-pool", POOL, start, draw(st.sampled_from(metered))))
    for line in lines:
        member = family and draw(st.booleans())
        plan_id = draw(st.sampled_from([None, *all_plans])) if member else draw(
            st.sampled_from(all_plans))
        openers.append(OpenLine(f"open-{line}", line, start, plan_id, member=member))

    def received(at: datetime) -> datetime | None:
        choice = draw(st.integers(0, 5))
        if choice <= 1:
            return None
        _, cycle_end = calendar.cycle_at(at)
        last_in_grace = cycle_end + DEFAULT_GRACE
        if choice == 2:
            return last_in_grace  # the last instant still inside the grace window
        if choice == 3 or grace_only:
            return at + draw(st.integers(0, (last_in_grace - at) // US)) * US
        return last_in_grace + draw(st.integers(1, 5 * 24 * 3600)) * timedelta(seconds=1)

    kinds = ["usage"] * usage_weight + ["topup"] * 2 + ["change"] + ["limit"] * family
    if gifts and len(lines) > 1:
        kinds += ["gift"]
    events: list[Input] = []
    for i in range(draw(st.integers(0, max_events))):
        kind = draw(st.sampled_from(kinds))
        at = draw(instants(start, end, boundaries))
        line = draw(st.sampled_from(lines))
        if kind == "usage":
            unit = draw(st.sampled_from([Unit.DATA] * 6 + [Unit.VOICE, Unit.SMS]))
            amount = draw(amounts) if unit is Unit.DATA else draw(st.integers(0, 4000))
            group = HOTSPOT if draw(st.integers(0, 4)) == 0 else None
            events.append(Usage(f"u{i}", line, at, amount, unit, group, received(at)))
        elif kind == "topup":
            unit = draw(st.sampled_from([Unit.DATA] * 4 + [Unit.VOICE]))
            valid = draw(st.one_of(st.none(), st.integers(1, 45)))
            events.append(TopUp(f"t{i}", line, at, draw(amounts), unit, valid))
        elif kind == "change":
            target = POOL if family and draw(st.integers(0, 4)) == 0 else line
            effective = draw(st.sampled_from(["now", "next_cycle"]))
            events.append(ChangePlan(f"c{i}", target, at, draw(st.sampled_from(all_plans)),
                                     effective))
        elif kind == "limit":
            limit = draw(st.one_of(st.none(), amounts, st.integers(0, 20 * GB)))
            events.append(SetLimit(f"l{i}", line, at, limit))
        else:
            to = draw(st.sampled_from([x for x in lines if x != line]))
            events.append(Gift(f"g{i}", line, to, at, draw(amounts)))
    return Scenario(calendar, plans, start, end, boundaries, lines, family, tuple(openers),
                    tuple(events))


# --------------------------------------------------------------------------------- helpers


def in_order(scenario: Scenario) -> list[Input]:
    return sorted(scenario.inputs(), key=lambda i: order_key(i, scenario.calendar))


def submit_all(book: AccountBook, items: list[Input]) -> dict[str, str]:
    """Submit in the given arrival order; returns the status per input id."""
    return {item.id: book.submit(item).status for item in items}


def accepted_usage(items: list[Input], status: dict[str, str]) -> dict[tuple[str, Unit], int]:
    out: dict[tuple[str, Unit], int] = defaultdict(int)
    for item in items:
        if isinstance(item, Usage) and status.get(item.id) == "accepted" and item.amount:
            out[(item.line, item.unit)] += item.amount
    return dict(out)


def assert_conserved(book: AccountBook, usage: dict[tuple[str, Unit], int]) -> None:
    """docs/semantics.md, "The ledger and conservation", on the book's ledger."""
    folded = ledger.balances(book.entries)
    for bucket in book.buckets.values():
        if bucket.unlimited:
            continue
        assert bucket.remaining is not None and bucket.remaining >= 0, bucket
        assert folded.get(bucket.id, 0) == bucket.remaining, bucket
    # A bucket the ledger knows but the book no longer holds (dropped by a replay) must
    # have been corrected down to nothing.
    for bucket_id, balance in folded.items():
        if bucket_id not in book.buckets:
            assert balance == 0, (bucket_id, balance)
    by_line = {k: v for k, v in ledger.usage_by_line(book.entries).items() if v}
    assert by_line == usage
    total: dict[EntryKind, int] = defaultdict(int)
    for e in book.entries:
        total[e.kind] += e.amount
    assert total[EntryKind.ROLLOVER_OUT] == total[EntryKind.ROLLOVER_IN]
    assert total[EntryKind.TRANSFER_OUT] == total[EntryKind.TRANSFER_IN]


def note_features(book: AccountBook, status: dict[str, str]) -> None:
    """Label what an example exercised (shown with --hypothesis-show-statistics)."""
    kinds = {e.kind for e in book.entries}
    for kind in sorted(kinds):
        event(f"entry {kind}")
    if any(e.kind is EntryKind.DEBIT and e.owner == POOL for e in book.entries):
        event("pool debited")
    if any(e.kind is EntryKind.DEBIT and e.amount < 0 for e in book.entries):
        event("negative debit (usage moved down the order)")
    for k, v in status.items():
        if k.startswith(("g", "u")):
            event(f"{k[0]} {v}")


def snapshot(book: AccountBook) -> tuple:
    return (
        {b.id: (b.remaining, b.closed, b.valid_until) for b in book.buckets.values()},
        {k: v for k, v in book.counters.items() if v},
    )


def gift_statuses(status: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in status.items() if k.startswith("g")}


# ---------------------------------------------------------------------- 2. conservation


@settings(max_examples=examples(200), deadline=None)
@given(scenarios())
def test_ledger_conserves_every_byte(scenario: Scenario) -> None:
    book = AccountBook(scenario.calendar, scenario.plans)
    usage: dict[tuple[str, Unit], int] = defaultdict(int)
    status: dict[str, str] = {}
    for item in in_order(scenario):
        outcome = book.submit(item)
        status[item.id] = outcome.status
        assert outcome.status in ("accepted", "rejected")
        if outcome.status == "rejected":
            # Only a gift bigger than what the giver may gift is refused here.
            assert isinstance(item, Gift), outcome.reason
        elif isinstance(item, Usage) and item.amount:
            usage[(item.line, item.unit)] += item.amount
        assert not outcome.replayed
        # Debits are never negative outside a correction, nor is any other movement.
        assert all(e.amount >= 0 for e in outcome.entries)
        assert_conserved(book, dict(usage))
    views.position(book, scenario.end)  # materialize the last boundary lazily
    assert_conserved(book, dict(usage))
    note_features(book, status)


# ------------------------------------------------------------------------ 3. duplicates


@settings(max_examples=examples(100), deadline=None)
@given(scenarios(), st.data())
def test_a_duplicate_event_is_counted_once(scenario: Scenario, data) -> None:
    book = AccountBook(scenario.calendar, scenario.plans)
    ordered = in_order(scenario)
    status: dict[str, str] = {}
    seen: list[Usage] = []
    for item in ordered:
        status[item.id] = book.submit(item).status
        if isinstance(item, Usage) and status[item.id] == "accepted":
            seen.append(item)
        if seen and data.draw(st.integers(0, 3)) == 0:
            again = data.draw(st.sampled_from(seen))
            # Same id, possibly re-reported later and with other fields garbled: still
            # the same event.
            if data.draw(st.booleans()):
                again = replace(again, amount=again.amount + 1,
                                received_at=again.arrival() + timedelta(hours=1))
            before = snapshot(book)
            n_entries = len(book.entries)
            outcome = book.submit(again)
            assert outcome.status == "duplicate"
            assert outcome.entries == ()
            assert len(book.entries) == n_entries
            assert snapshot(book) == before
    assert_conserved(book, accepted_usage(ordered, status))


# ------------------------------------------------------------------- 4. replay equivalence


@st.composite
def reordered(draw):
    """A scenario whose usage all arrives within the grace window, and an arrival order:
    openers first, other inputs in timestamp order, usage interleaved anywhere after."""
    # Sometimes mostly usage, so that reordered events often fall in one segment (no
    # grant, plan change or boundary between them) and take the in-place path.
    scenario = draw(scenarios(grace_only=True, usage_weight=draw(st.sampled_from([6, 40]))))
    usage = [e for e in scenario.events if isinstance(e, Usage)]
    others = sorted((e for e in scenario.events if not isinstance(e, Usage)),
                    key=lambda i: order_key(i, scenario.calendar))
    if draw(st.booleans()):
        # Realistic: everything arrives when it is reported (ties in a random order).
        ties = draw(st.permutations(range(len(scenario.events))))
        arrivals = sorted(
            zip(scenario.events, ties, strict=True),
            key=lambda pair: (pair[0].arrival() if isinstance(pair[0], Usage) else pair[0].at,
                              pair[1]))
        arrival = [e for e, _ in arrivals]
    else:
        shuffled = list(draw(st.permutations(usage)))
        arrival = []
        while shuffled or others:
            take_usage = shuffled and (not others or draw(st.booleans()))
            arrival.append(shuffled.pop() if take_usage else others.pop(0))
    # The network may report an event twice, later: the copy must change nothing.
    for _ in range(draw(st.integers(0, 2))):
        if usage:
            copy = draw(st.sampled_from(usage))
            first = arrival.index(copy)
            arrival.insert(draw(st.integers(first + 1, len(arrival))), copy)
    return scenario, [*scenario.openers, *arrival]


def check_objects(book: AccountBook, scenario: Scenario, at: datetime) -> list[dict]:
    return [views.check(book, line, at) for line in scenario.lines]


@settings(max_examples=examples(200), deadline=None)
@given(reordered())
def test_reordered_arrival_gives_the_same_state(case) -> None:
    scenario, arrival = case
    book_a, status_a = in_order_book(scenario)
    book_b = AccountBook(scenario.calendar, scenario.plans)
    status_b: dict[str, str] = {}
    for item in arrival:
        state = book_b.buckets
        outcome = book_b.submit(item)
        if item.id in status_b:
            assert outcome.status == "duplicate" and outcome.entries == ()
            continue
        status_b[item.id] = outcome.status
        if outcome.replayed:  # a replay adopts a new state; a commuted event does not
            event("replayed" if book_b.buckets is not state else "applied in place")
        assert not outcome.late  # every arrival is inside the grace window
        assert_conserved(book_b, accepted_usage(in_order(scenario), status_b))
    note_features(book_b, status_b)
    assert_same_as_in_order(scenario, book_a, status_a, book_b, status_b)


def in_order_book(scenario: Scenario) -> tuple[AccountBook, dict[str, str]]:
    """The scenario folded in timestamp order: what every arrival order must give."""
    book = AccountBook(scenario.calendar, scenario.plans)
    return book, submit_all(book, in_order(scenario))


def assert_same_as_in_order(scenario: Scenario, book_a: AccountBook, status_a: dict,
                            book_b: AccountBook, status_b: dict) -> None:
    """`book_b` (another arrival order) ends where `book_a` (the in-order fold) does:
    statuses, check objects now and at past boundaries, balances, counters, the
    ledger's fold, conservation."""
    # A gift is refused or accepted on what is known when it arrives, so a usage that
    # arrives after it may flip that decision; that is not a replay difference.
    assume(gift_statuses(status_a) == gift_statuses(status_b))
    assert status_a == status_b
    end = scenario.end
    assert check_objects(book_a, scenario, end) == check_objects(book_b, scenario, end)
    # And at instants inside the scenario (replayed views of the past).
    for t in scenario.boundaries[1:-1]:
        assert check_objects(book_a, scenario, t) == check_objects(book_b, scenario, t)
    assert snapshot(book_a) == snapshot(book_b)
    folded_a = {k: v for k, v in ledger.balances(book_a.entries).items() if v}
    folded_b = {k: v for k, v in ledger.balances(book_b.entries).items() if v}
    assert folded_a == folded_b
    usage = accepted_usage(in_order(scenario), status_a)
    assert_conserved(book_a, usage)
    assert_conserved(book_b, usage)


class CountingReplays(AccountBook):
    replays = 0

    def _replay_with(self, items: list[Input]) -> None:
        self.replays += 1
        super()._replay_with(items)


@settings(max_examples=examples(150), deadline=None)
@given(reordered(), st.data())
def test_usage_submitted_together_gives_the_same_state(case, data) -> None:
    """`submit_usage` (how ingest hands a chunk's events of one account to its book):
    runs of usage submitted together, in arrival order or sorted, give the balances,
    counters and statuses of the in-order fold, with at most one replay per run."""
    scenario, arrival = case
    ordered = in_order(scenario)
    book_a, status_a = in_order_book(scenario)
    book_b = CountingReplays(scenario.calendar, scenario.plans)
    status_b: dict[str, str] = {}
    sort_runs = data.draw(st.booleans())
    n = 0
    while n < len(arrival):
        if not isinstance(arrival[n], Usage):
            status_b.setdefault(arrival[n].id, book_b.submit(arrival[n]).status)
            n += 1
            continue
        end = n
        while end < len(arrival) and isinstance(arrival[end], Usage):
            end += 1
        end = n + data.draw(st.integers(1, end - n))
        run = arrival[n:end]
        if sort_runs:
            run = sorted(run, key=lambda i: order_key(i, scenario.calendar))
        replays = book_b.replays
        outcomes = book_b.submit_usage(run)
        assert len(outcomes) == len(run)
        assert book_b.replays - replays <= 1
        for item, outcome in zip(run, outcomes, strict=True):
            if item.id in status_b:
                assert outcome.status == "duplicate"
            status_b.setdefault(item.id, outcome.status)
        if book_b.replays > replays:
            event("run replayed")
        assert_conserved(book_b, accepted_usage(ordered, status_b))
        n = end
    assert_same_as_in_order(scenario, book_a, status_a, book_b, status_b)


# ------------------------------------------------------------ 5. more usage, less available


@st.composite
def with_extra_usage(draw):
    scenario = draw(scenarios(gifts=False, stash_cap=False))
    at = draw(instants(scenario.start, scenario.end, scenario.boundaries))
    unit = draw(st.sampled_from([Unit.DATA] * 4 + [Unit.VOICE]))
    amount = draw(st.one_of(st.integers(1, 3), st.integers(1, 8 * GB)))
    extra = Usage("extra", draw(st.sampled_from(scenario.lines)), at, amount, unit)
    later = sorted({
        *draw(st.lists(instants(at, scenario.end + US, scenario.boundaries), max_size=3)),
        *(b for b in scenario.boundaries if b >= at), at,
    })
    return scenario, extra, later


@settings(max_examples=examples(100), deadline=None)
@given(with_extra_usage())
def test_more_usage_never_makes_more_available(case) -> None:
    # Gifts are left out: one extra usage can make a later gift fail, and then the giver
    # keeps more than it would have. Pool members are in: the pool only shrinks.
    scenario, extra, later = case
    base = AccountBook(scenario.calendar, scenario.plans)
    submit_all(base, in_order(scenario))
    more = AccountBook(scenario.calendar, scenario.plans)
    items = in_order(scenario)
    items.insert(0, extra)
    items = sorted(items, key=lambda i: order_key(i, scenario.calendar))
    assert submit_all(more, items)["extra"] == "accepted"
    for t in later:
        with_base = views.position(base, t)
        with_more = views.position(more, t)
        for line in scenario.lines:
            for unit in Unit:
                a = views.available(with_base, line, unit, t)
                b = views.available(with_more, line, unit, t)
                if a is None:
                    continue  # unlimited before: nothing to compare
                assert b is not None, (line, unit, t)
                assert b <= a, (line, unit, t.isoformat(), a, b)


def test_effective_instant_in_grace_is_at() -> None:
    # Guard for the replay strategy: the last instant of the grace window is not late.
    calendar = CycleCalendar(1, "UTC")
    at = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
    last = datetime(2026, 2, 1, tzinfo=UTC) + DEFAULT_GRACE
    assert effective_instant(Usage("x", "a", at, 1, received_at=last), calendar) == (at, False)
    assert effective_instant(Usage("x", "a", at, 1, received_at=last + US), calendar)[1]


# ------------------------------------------------------------------ engine bugs found here


def test_grants_in_one_second_keep_their_own_ids() -> None:
    # An unlimited line uses 1 byte, then changes plan "now" 0.2 s after it opened. Bucket
    # ids were stamped to the second, so the new allowance took the unlimited bucket's id
    # and the ledger folded one bucket's debit into the other: 1.9 broke by 1 byte.
    t = datetime(2026, 1, 1, tzinfo=UTC)
    book = AccountBook(CycleCalendar(1, "UTC"), PRESETS)
    book.submit(OpenLine("o", "a", t, "tmobile-go5g"))
    book.submit(Usage("u", "a", t + timedelta(milliseconds=100), 1))
    book.submit(ChangePlan("c", "a", t + timedelta(milliseconds=200), "att-mobile-share-15gb"))
    grants = [e for e in book.entries if e.kind is EntryKind.GRANT]
    assert len({e.bucket_id for e in grants}) == len(grants)
    assert_conserved(book, {("a", Unit.DATA): 1})


def test_a_gift_does_not_depend_on_when_earlier_usage_arrived() -> None:
    # Line a has a 1 MB allowance and a 1 GB top-up, uses 513 MB on Jan 3 and gifts 1 GB to
    # b on Jan 4. Refused in timestamp order (512 MB giftable < 1 GB) yet accepted when the
    # usage arrives late, the gift would make the balances depend on arrival order; it
    # moves what there is (512 MB) in both orders.
    plan = plan_from_mapping({"id": "p", "allowance": {"data": "1MB"}})

    def day(n: int) -> datetime:
        return datetime(2026, 1, n, tzinfo=UTC)

    opens = [OpenLine("oa", "a", day(1), "p"), OpenLine("ob", "b", day(1), "p")]
    top = TopUp("t", "a", day(2), GB)
    use = Usage("u", "a", day(3), MB + 512 * MB, received_at=day(5))
    gift = Gift("g", "a", "b", day(4), GB)
    seen = []
    for arrival in ([*opens, top, use, gift], [*opens, top, gift, use]):
        book = AccountBook(CycleCalendar(1, "UTC"), {"p": plan})
        statuses = [book.submit(item).status for item in arrival]
        state = views.position(book, day(6))
        seen.append((statuses[-1] == statuses[-2],
                     [views.available(state, line, Unit.DATA, day(6)) for line in "ab"]))
    assert seen[0] == seen[1]


def test_a_stash_cap_can_make_room_for_a_longer_lived_deposit() -> None:
    # The one known exception to "more usage never increases what is available", and it
    # follows step 2 of docs/semantics.md, "Cycles and rollover at the boundary instant", to
    # the letter: what carries is capped by the stash still
    # held at T, so using bytes earlier can leave room for a later, longer-lived deposit.
    # This pins the behaviour the design asks for; the property test leaves stash caps out
    # for this reason, and the question is raised with the design's owners.
    # Bill day 1 (UTC). Plan "stash": 10 GB, allowance drains first (the default order),
    # stash cap 10 GB, deposits live 2 months. On Feb 15 the line asks to move to
    # verizon-carryover-8gb from the next cycle (Mar 1).
    # Base: Feb 1, 10 GB deposited until Apr 1. Mar 1: the stash is full, February's
    #   allowance expires. Apr 1: the deposit expires; Verizon carries March's 8 GB.
    #   Available on Apr 1: 8 + 8 = 16 GB.
    # With 10 GB more usage in January: nothing deposited Feb 1, so on Mar 1 February's
    #   10 GB is deposited until May 1. Available on Apr 1: 8 + 8 + 10 = 26 GB.
    plan = plan_from_mapping({
        "id": "stash", "allowance": {"data": "10GB"},
        "rollover": {"kinds": ["allowance"], "stash_cap": "10GB", "lifetime": {"months": 2}},
    })
    plans = {**PRESETS, "stash": plan}
    t = datetime(2026, 4, 1, tzinfo=UTC)
    seen = []
    for extra in ([], [Usage("x", "a", datetime(2026, 1, 20, tzinfo=UTC), 10 * GB)]):
        book = AccountBook(CycleCalendar(1, "UTC"), plans)
        for item in [OpenLine("o", "a", datetime(2026, 1, 1, tzinfo=UTC), "stash"), *extra,
                     ChangePlan("c", "a", datetime(2026, 2, 15, tzinfo=UTC),
                                "verizon-carryover-8gb", "next_cycle")]:
            assert book.submit(item).status == "accepted"
        seen.append(views.available(views.position(book, t), "a", Unit.DATA, t))
    assert seen == [16 * GB, 26 * GB]
