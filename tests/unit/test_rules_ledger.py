"""The ledger and the statement of a cycle, one rule per test.

The rules are docs/semantics.md, "The ledger and conservation" and "The bitemporal
ledger".

A busy February for member line a of a family account: rollover, a top-up that
expires, a late event corrected inside the grace window, a gift, usage of its own
buckets and of the pool, and overage charged. See rules_support for conventions.
"""

from __future__ import annotations

from carryover.domain.buckets import POOL
from carryover.domain.inputs import Gift, OpenLine, TopUp, Usage
from carryover.domain.ledger import EntryKind, balances
from carryover.domain.statement import build_statement

from .rules_support import DATA, GB, US, assert_conserved, at, new_book, plan, state, submit

FAM = plan("fam", allowance={"data": "10GB"}, rollover={})
BUSY = plan("busy", allowance={"data": "10GB"}, rollover={},
            overage={"action": "charge", "price": "0.01", "currency": "USD", "per": "1MB"})


def busy_book():
    book = new_book(FAM, BUSY)
    submit(
        book,
        OpenLine("op", POOL, at(1, 1), "fam"),
        OpenLine("oa", "a", at(1, 1), "busy", member=True),
        OpenLine("ob", "b", at(1, 1), "busy", member=True),
        # January: own allowance first (ties with the pool's; own before pool): 10 - 4 = 6.
        Usage("u1", "a", at(1, 10), 4 * GB),
        # Feb 1: a's R = 6 GB. Feb 2: a 1 GB top-up until Feb 7.
        TopUp("t", "a", at(2, 2), GB, valid_days=5),
        # Late 2 GB of Jan 31 reported Feb 2 06:00 (inside grace): R 6 -> 4 GB, booked on
        # Feb 2 as J debit +2 (effective Jan 31, in January), J adjust +2 and R adjust -2
        # (effective at the Feb 1 boundary they correct).
        Usage("late", "a", at(1, 31, 12), 2 * GB, received_at=at(2, 2, 6)),
        # Feb 3: gift 3 GB to b, from R (priority 30, before the top-up's 40): R 4 -> 1.
        Gift("g", "a", "b", at(2, 3), 3 * GB),
        # Feb 4, 25 GB: own allowance 10, pool allowance 10, own R 1, pool R 4 (of 10).
        Usage("u2", "a", at(2, 4), 25 * GB),
        # Feb 20, 20 GB: the top-up expired Feb 7; pool R 6, then 14 GB overage.
        Usage("u3", "a", at(2, 20), 20 * GB),
    )
    state(book, at(3, 1) - US)
    return book


def statement_of(book, line, month):
    start, end = at(month, 1), at(month + 1, 1)
    unlimited = {b.id for b in book.buckets.values() if b.unlimited}
    plan_ = book.governing_plan(line) if line != POOL else book.plan_of(POOL)
    return build_statement(line, start, end, book.entries, unlimited, plan_).units[DATA]


def test_busy_cycle_statement_explains_every_byte():
    # a's own buckets in February (the ledger is bitemporal: the late 2 GB of Jan 31 is
    # January's, though booked on Feb 2; docs/semantics.md):
    #   opening 4 GB (January's allowance as January closed it: 10 - 4 - 2);
    #   grant 10 (allowance) + 1 (top-up); rollover_in 6 (R); adjust +2 (J) - 2 (R) = 0;
    #   debit 10 (allowance) + 1 (R) = 11; rollover_out 6 (J);
    #   expire 1 (top-up, Feb 7); transfer_out 3 (gift); closing 0.
    #   4 + 11 + 6 + 0 - 11 - 6 - 1 - 3 - 0 = 0.
    # usage: own 11 + pool (10 + 4 + 6 = 20) + overage 14 = 45 GB = 25 + 20.
    # Charge: 14 GB = 14,336 MB * 0.01 = 143.36 USD.
    book = busy_book()
    feb = statement_of(book, "a", 2)
    assert (feb.opening, feb.closing) == (4 * GB, 0)
    assert {k: v for k, v in feb.flows.items() if v} == {
        "grant": 11 * GB, "rollover_in": 6 * GB, "debit": 11 * GB,
        "rollover_out": 6 * GB, "expire": GB, "transfer_out": 3 * GB}
    assert (feb.used, feb.debited_own, feb.debited_pool, feb.overage) == (
        45 * GB, 11 * GB, 20 * GB, 14 * GB)
    jan = statement_of(book, "a", 1)
    assert (jan.used, jan.flows["debit"], jan.closing) == (6 * GB, 6 * GB, 4 * GB)
    assert feb.charge == "143.36 USD"
    assert (feb.balance_check, feb.usage_check) == (0, 0)
    assert_conserved(book)


def test_every_statement_of_the_busy_account_reconciles_to_zero():
    # The pool, the giver and the receiver, January and February: both checks are zero.
    book = busy_book()
    for line in (POOL, "a", "b"):
        for month in (1, 2):
            unit = statement_of(book, line, month)
            assert (unit.balance_check, unit.usage_check) == (0, 0), (line, month)


def test_opening_balance_is_the_previous_closing():
    # January closes a at 4 GB (10 - 4 - the late 2 GB, January's), b at 10 GB, the pool
    # at 10 GB; February opens there.
    # February closes every one at the sums of what each holds at Mar 1 - 1 us:
    # a 0; b its allowance 10 + R 10 + gift 3 = 23 GB; pool 0 (all drawn by a).
    book = busy_book()
    jan = {line: statement_of(book, line, 1) for line in ("a", "b", POOL)}
    feb = {line: statement_of(book, line, 2) for line in ("a", "b", POOL)}
    assert {k: s.closing for k, s in jan.items()} == {"a": 4 * GB, "b": 10 * GB, POOL: 10 * GB}
    assert {k: s.opening for k, s in feb.items()} == {k: s.closing for k, s in jan.items()}
    assert {k: s.closing for k, s in feb.items()} == {"a": 0, "b": 23 * GB, POOL: 0}
    folded = balances(book.entries)
    for line, s in feb.items():
        assert s.closing == sum(v for k, v in folded.items()
                                if book.buckets.get(k) is not None
                                and book.buckets[k].owner == line)


def test_gift_transfers_match_across_the_two_statements():
    # a's transfer_out in February equals b's transfer_in: 3 GB.
    book = busy_book()
    a, b = statement_of(book, "a", 2), statement_of(book, "b", 2)
    assert a.flows["transfer_out"] == b.flows["transfer_in"] == 3 * GB
    assert b.flows["transfer_out"] == a.flows["transfer_in"] == 0


def test_every_bucket_change_is_an_entry():
    # Per bucket: granted + transfers_in + adjustments = debits + rolled_out + expired +
    # forfeited + transfers_out + remaining, i.e. the fold of its entries is its remaining.
    book = busy_book()
    folded = balances(book.entries)
    for bucket_id, bucket in book.buckets.items():
        assert folded.get(bucket_id, 0) == bucket.remaining, bucket_id
    # An entry with no bucket is overage, and only overage.
    assert {str(e.kind) for e in book.entries if e.bucket_id is None} == {"overage"}
    assert all(e.kind is not EntryKind.OVERAGE or e.line == "a" for e in book.entries)
