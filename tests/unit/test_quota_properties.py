"""Properties of real-time quota (domain.quota): grants never promise the same bytes twice.

A random family account (own allowances, a shared pool, member limits, top-ups,
some usage) receives random grant requests from several sessions at one instant.
Whatever the order:
- no overspend: if every session then used all it was granted (as ordinary
  usage, in any order), no usage would become overage on a blocking plan;
- no waste: a grant smaller than asked (and than the maximum) leaves the line
  nothing more to grant;
- nothing held back: when the sessions ask for more than exists, the whole pool
  and every line's own bytes ahead of the pool in its queue are granted. (A
  member's own bytes *behind* the pool are promised only when no other claim
  on the pool could make its usage drain those first: domain.quota._Shares.)
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from carryover.domain.buckets import POOL
from carryover.domain.inputs import OpenLine, SetLimit, TopUp, Usage
from carryover.domain.quota import QUOTA_LIMIT_REACHED, Hold, QuotaPolicy, decide, headroom
from carryover.domain.units import Unit
from carryover.domain.views import available
from tests.unit.rules_support import MB, at, new_book, plan

OWN = plan("own-1gb", allowance={"data": "1GB"}, overage={"action": "block"})
POOLED = plan("pool-2gb", allowance={"data": "2GB"}, overage={"action": "block"})
LINES = ("m1", "m2", "m3")
T = at(1, 15, 12)


@st.composite
def accounts(draw):
    book = new_book(OWN, POOLED)
    book.submit(OpenLine("open-pool", POOL, at(1, 1), POOLED.id))
    for line in LINES:
        own = draw(st.booleans())
        book.submit(OpenLine(f"open-{line}", line, at(1, 1), OWN.id if own else None, True))
        if draw(st.booleans()):
            book.submit(SetLimit(f"limit-{line}", line, at(1, 2),
                                 draw(st.integers(0, 1500)) * MB))
        if draw(st.booleans()):
            book.submit(TopUp(f"top-{line}", line, at(1, 3), draw(st.integers(1, 500)) * MB,
                              Unit.DATA, draw(st.sampled_from([None, 5, 30]))))
        for n in range(draw(st.integers(0, 3))):
            book.submit(Usage(f"use-{line}-{n}", line, at(1, 4 + n),
                              draw(st.integers(0, 900)) * MB))
    book.advance_to(T)
    requests = draw(st.lists(st.tuples(st.sampled_from(LINES), st.integers(1, 800)),
                             min_size=1, max_size=25))
    return book, [(line, mb * MB) for line, mb in requests]


POLICY = QuotaPolicy(max_grant=600 * MB, threshold_percent=20, validity=timedelta(hours=1))


def grant_all(book, requests):
    holds: list[Hold] = []
    grants = []
    for line, asked in requests:
        grant = decide(book, line, T, asked, None, holds, POLICY)
        grants.append((line, asked, grant))
        if grant.amount:
            holds.append(Hold(line, grant.amount))
    return holds, grants


@settings(max_examples=150)
@given(accounts())
def test_grants_never_promise_the_same_bytes_twice(case) -> None:
    book, requests = case
    holds, grants = grant_all(book, requests)
    earlier = overage(book)  # the random usage before the grants may have run over
    for line, asked, grant in grants:
        assert grant.amount <= min(asked, POLICY.max_grant)
        if grant.amount < min(asked, POLICY.max_grant):
            # Less than asked only when nothing more is left for that line.
            assert headroom(book, line, T, holds) == 0
        if grant.result == QUOTA_LIMIT_REACHED:
            assert grant.amount == 0 and grant.final_action == "TERMINATE"
    # Every session uses all it was granted, last session first: never overage.
    for n, hold in enumerate(reversed(holds)):
        book.submit(Usage(f"grant-{n}", hold.line, T + timedelta(seconds=1), hold.amount))
    assert overage(book) == earlier


def overage(book) -> int:
    return sum(v for (_, _, _, name), v in book.counters.items() if name == "overage")


@settings(max_examples=100)
@given(accounts())
def test_what_is_granted_is_all_there_is_when_sessions_ask_for_more(case) -> None:
    book, _ = case
    before = {line: available(book, line, Unit.DATA, T) for line in LINES}
    # Ask the maximum, many times from every line: everything usable ends up granted.
    holds, grants = grant_all(book, [(line, POLICY.max_grant) for line in LINES] * 12)
    for line in LINES:
        assert headroom(book, line, T, holds) == 0
    total = sum(g.amount for _, _, g in grants)
    pool = next(b for b in book.buckets.values() if b.owner == POOL and b.kind == "allowance")
    own = sum(b.remaining for b in book.buckets.values()
              if b.owner != POOL and b.usable_at(T) and b.unit == Unit.DATA)
    # Bounded by the pool plus the lines' own buckets, and by what each line could use.
    assert total <= pool.remaining + own
    assert total <= sum(before.values())
    if all(not book.lines[line].limits for line in LINES):
        ahead = 0
        for line in LINES:
            for bucket in book.queue(line, Unit.DATA, T):
                if bucket.owner == POOL:
                    break
                ahead += bucket.remaining
        assert total >= pool.remaining + ahead
