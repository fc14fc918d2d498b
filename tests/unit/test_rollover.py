"""domain/rollover.py: the one boundary rule, its invariants, and both folds using it.

- `carry` (generated cases): conservation per source, the sum carried within the
  room, and equality with the sequential rule of docs/semantics.md ("Cycles and
  rollover at the boundary instant", step 2) written out plainly
  (carried = min(left, cap left, stash room left), caps shrinking as sources carry).
- A cap of one unit never changes another unit's rollover (generated plans and
  usage, folded by the object book).
- The object book and the columnar fold book identical boundary entries — kind,
  instant, bucket, amount, ref and note — with caps of every kind.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carryover.domain import rollover, views
from carryover.domain.book import AccountBook
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import OpenLine, Usage
from carryover.domain.ledger import EntryKind
from carryover.domain.plans import PlanError, plan_from_mapping
from carryover.domain.units import Unit
from tests.unit.columnar_bridge import columnar_from_books, rate, write_back

GB, MB = 1024**3, 1024**2
START = datetime(2026, 1, 1, tzinfo=UTC)
SUFFIX = {Unit.DATA: "B", Unit.VOICE: "s", Unit.SMS: ""}


# ---------------------------------------------------------------------------- carry

def sequential(lefts: list[int], per_cycle: int | None, stash_room: int | None) -> list[int]:
    """docs/semantics.md's boundary step 2 as written: each source in order takes min(left, what the
    per-cycle cap still allows, what the stash still has room for)."""
    out = []
    for left in lefts:
        carried = min(x for x in (left, per_cycle, stash_room) if x is not None)
        out.append(carried)
        per_cycle = None if per_cycle is None else per_cycle - carried
        stash_room = None if stash_room is None else stash_room - carried
    return out


caps = st.one_of(st.none(), st.integers(0, 3), st.integers(0, 2**50))
groups = st.lists(st.tuples(st.lists(st.integers(0, 2**50), min_size=1, max_size=4),
                            caps, caps, st.integers(0, 2**50)), min_size=0, max_size=6)


@settings(max_examples=300, deadline=None)
@given(groups)
def test_carry_is_the_sequential_rule_and_conserves(spec):
    left, group, room_of, want = [], [], [], []
    for g, (lefts, per_cycle, stash, held) in enumerate(spec):
        [room] = rollover.room(per_cycle, stash, [held]).tolist()
        stash_room = None if stash is None else max(0, stash - held)
        want += sequential(lefts, per_cycle, stash_room)
        left += lefts
        group += [g] * len(lefts)
        room_of += [room] * len(lefts)
        assert room == (rollover.NO_CAP if per_cycle is None and stash is None
                        else min(x for x in (per_cycle, stash_room) if x is not None))
    got = rollover.carry(np.array(left, dtype=np.int64), np.array(group, dtype=np.int64),
                         np.array(room_of, dtype=np.int64)).tolist()
    assert got == want
    assert all(0 <= c <= lf for c, lf in zip(got, left, strict=True))
    for g, (lefts, per_cycle, stash, held) in enumerate(spec):
        mine = [c for c, k in zip(got, group, strict=True) if k == g]
        if per_cycle is None and stash is None:
            assert mine == lefts  # no cap: everything carries
        if per_cycle is not None:
            assert sum(mine) <= per_cycle
        if stash is not None:
            assert sum(mine) <= max(0, stash - held)


# -------------------------------------------------------------- caps stay in their unit

@st.composite
def unit_caps(draw, unit: Unit):
    """A cap written for `unit` alone: an amount with its suffix, `allowance` in a
    mapping, or an amount in a mapping."""
    amount = draw(st.integers(0, 3 * GB if unit is Unit.DATA else 20_000))
    form = draw(st.sampled_from(["text", "mapping", "allowance"]))
    if form == "text":
        return f"{amount}{SUFFIX[unit]}" if unit is not Unit.SMS else amount
    if form == "mapping":
        return {str(unit): f"{amount}{SUFFIX[unit]}"}
    return {str(unit): "allowance"}


def fold_to(body: dict, usage: list[tuple[Unit, int]], until: datetime) -> AccountBook:
    plan = plan_from_mapping(body)
    book = AccountBook(CycleCalendar(1, "UTC"), {plan.id: plan})
    assert book.submit(OpenLine("open", "a", START, plan.id)).status == "accepted"
    for n, (unit, amount) in enumerate(usage):
        event = Usage(f"u{n}", "a", START + timedelta(days=2 + n * 9), amount, unit)
        assert book.submit(event).status == "accepted"
    return views.position(book, until)


def rollover_by_unit(book: AccountBook) -> dict:
    return {(str(b.unit), b.valid_from, b.granted, b.valid_until)
            for b in book.buckets.values() if b.kind == "rollover"}


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(list(Unit)), st.data())
def test_a_cap_of_one_unit_never_changes_another_units_rollover(capped, data):
    allowance = {"data": data.draw(st.integers(1, 4 * GB)),
                 "voice": data.draw(st.integers(1, 30_000)), "sms": data.draw(st.integers(1, 500))}
    allowance = {"data": f"{allowance['data']}B", "voice": f"{allowance['voice']}s",
                 "sms": allowance["sms"]}
    usage = data.draw(st.lists(st.tuples(st.sampled_from(list(Unit)), st.integers(0, GB)),
                               max_size=8))
    base = {"kinds": ["allowance"], "lifetime": {"cycles": data.draw(st.integers(1, 3))}}
    field = data.draw(st.sampled_from(["per_cycle_cap", "stash_cap"]))
    body = {"id": "p", "allowance": allowance, "rollover": base}
    uncapped = fold_to(body, usage, datetime(2026, 5, 1, tzinfo=UTC))
    cap = data.draw(unit_caps(capped))
    capped_body = {**body, "rollover": {**base, field: cap}}
    with_cap = fold_to(capped_body, usage, datetime(2026, 5, 1, tzinfo=UTC))
    others = {str(u) for u in Unit} - {str(capped)}
    assert ({r for r in rollover_by_unit(with_cap) if r[0] in others}
            == {r for r in rollover_by_unit(uncapped) if r[0] in others})
    # ... and the capped unit itself never carries more than without the cap.
    assert (sum(r[2] for r in rollover_by_unit(with_cap) if r[0] == str(capped))
            <= sum(r[2] for r in rollover_by_unit(uncapped) if r[0] == str(capped)))


def test_a_bare_number_cap_on_a_plan_without_sms_is_refused():
    # A bare number is an SMS count; on a data-only plan it is bytes written without a
    # unit, and guessing either way would change a bill.
    with pytest.raises(PlanError) as caught:
        plan_from_mapping({"id": "p", "allowance": {"data": "1GB"},
                           "rollover": {"per_cycle_cap": 1024}})
    assert "rollover.per_cycle_cap" in str(caught.value) and "SMS count" in str(caught.value)
    with pytest.raises(PlanError) as caught:
        plan_from_mapping({"id": "p", "allowance": {"data": "1GB"},
                           "rollover": {"stash_cap": {"data": "10min"}}})
    assert "rollover.stash_cap.data" in str(caught.value)


# ------------------------------------------------------ both folds, identical entries

CAPPED_PLANS = {body["id"]: plan_from_mapping(body) for body in (
    {"id": "cap-bytes", "allowance": {"data": "300MB", "voice": "60min", "sms": 50},
     "rollover": {"per_cycle_cap": "100MB", "lifetime": {"cycles": 2}, "rolls_again": True},
     "priorities": {"rollover": 5}},
    {"id": "cap-seconds", "allowance": {"data": "200MB", "voice": "30min"},
     "rollover": {"per_cycle_cap": "10min", "stash_cap": "150MB", "lifetime": {"cycles": 3}}},
    {"id": "cap-count", "allowance": {"data": "100MB", "sms": 40},
     "rollover": {"per_cycle_cap": 25, "lifetime": {"months": 2}}},
    {"id": "cap-allowance", "allowance": {"data": "250MB", "voice": "20min", "sms": 10},
     "rollover": {"per_cycle_cap": "allowance", "stash_cap": "allowance",
                  "lifetime": {"cycles": 2}, "rolls_again": True}},
    {"id": "cap-mapping", "allowance": {"data": "400MB", "voice": "45min", "sms": 30},
     "rollover": {"per_cycle_cap": {"data": "150MB", "sms": "allowance"},
                  "stash_cap": {"voice": "50min", "data": "200MB"}, "lifetime": {"cycles": 2}}},
    {"id": "no-rollover", "allowance": {"data": "100MB", "voice": "10min"}},
)}
BOUNDARY_KINDS = {EntryKind.GRANT, EntryKind.ROLLOVER_OUT, EntryKind.ROLLOVER_IN,
                  EntryKind.EXPIRE}


@st.composite
def capped_accounts(draw):
    out = []
    for a in range(draw(st.integers(1, 3))):
        calendar = CycleCalendar(draw(st.integers(1, 31)),
                                 draw(st.sampled_from(["UTC", "Europe/Berlin"])))
        start, _ = calendar.cycle_at(START)
        lines = [(f"a{a}l{n}", draw(st.sampled_from(sorted(CAPPED_PLANS))))
                 for n in range(draw(st.integers(1, 3)))]
        events = []
        for line, _ in lines:
            for k in range(draw(st.integers(0, 10))):
                unit = draw(st.sampled_from(list(Unit)))
                scale = {Unit.DATA: MB, Unit.VOICE: 60, Unit.SMS: 1}[unit]
                events.append(Usage(f"{line}-e{k}", line,
                                    start + timedelta(seconds=draw(st.integers(0, 120 * 86400))),
                                    draw(st.integers(0, 200)) * scale, unit))
        # One event past the last boundary, so both folds cross every boundary.
        events.append(Usage(f"a{a}-end", lines[0][0], start + timedelta(days=125), 0))
        out.append((calendar, start, lines, sorted(events, key=lambda e: (e.at, e.id))))
    return out


def opened_books(spec) -> list[AccountBook]:
    books = []
    for calendar, start, lines, _ in spec:
        book = AccountBook(calendar, CAPPED_PLANS)
        for line, plan in lines:
            assert book.submit(OpenLine(f"open:{line}", line, start, plan)).status == "accepted"
        books.append(book)
    return books


def boundary_entries(book: AccountBook) -> Counter:
    return Counter((e.kind, e.at, e.unit, e.amount, e.bucket_id, e.owner, e.line, e.ref, e.note)
                   for e in book.entries if e.kind in BOUNDARY_KINDS)


@settings(max_examples=60, deadline=None)
@given(capped_accounts())
def test_both_folds_book_identical_boundary_entries(spec):
    reference = opened_books(spec)
    for book, (*_, events) in zip(reference, spec, strict=True):
        for event in events:
            assert book.submit(event).status == "accepted"
    columnar = opened_books(spec)
    bulk, line_ids = columnar_from_books(columnar, CAPPED_PLANS, "batch")
    events = [e for *_, evs in spec for e in evs]
    rate(bulk, line_ids, events)
    write_back(bulk, columnar, line_ids)
    for ref, col in zip(reference, columnar, strict=True):
        want = boundary_entries(ref)
        assert any(k[0] is EntryKind.ROLLOVER_OUT for k in want) or not any(
            b.kind == "rollover" for b in ref.buckets.values())
        assert boundary_entries(col) == want
        assert {b.id: (b.remaining, b.closed) for b in col.buckets.values()} == {
            b.id: (b.remaining, b.closed) for b in ref.buckets.values()}
