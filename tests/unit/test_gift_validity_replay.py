"""A replay may shorten a bucket's validity under entries already booked for it; the
correction then sits where the corrected entry was booked (docs/semantics.md, "The
bitemporal ledger": a correction is effective at the instant of what it corrects).

Found by hypothesis in tests/unit/test_bitemporal_statements.py and reduced to a few
inputs. Two ways a bucket keeps its id and loses validity in a replay:
- a gift keeps its source's expiry: given at the February boundary from b's rollover,
  a/data/gift/g4#0 is valid to 1 March and expires there; a top-up of b's that
  arrives later, out of order, valid to 1 February 23:59:59.999999, comes first in
  b's consumption order, so the replayed g4#0 is drawn from it and ends on 1 February;
- a merged pass: top-up t3 merged into the live pass t1 and extended it; a late
  usage event drains t1 before t3 arrives, so in the replay t3 is a pass of its own
  and t1 keeps its one day.
Either way the expiry booked at the old end is taken back by an `adjust` at that
instant, outside the bucket's new validity, and every balance and statement is the
in-order fold's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from carryover.domain import views
from carryover.domain.book import AccountBook
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import Gift, OpenLine, TopUp, Usage
from carryover.domain.ledger import EntryKind
from carryover.plan_files import load_presets, parse_plan_text

from .test_bitemporal_statements import figures, statement_of

US = timedelta(microseconds=1)
JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)
BOOKED = datetime(2030, 1, 1, tzinfo=UTC)

MERGING = parse_plan_text("""id: merging
name: Merging passes
kind: metered
allowance: {data: 1KB}
priorities: {bonus: 10, allowance: 20, rollover: 30, topup: 40, gift: 50}
overage: {action: block}
topup: {mode: merge}
""", "merging")


def fold(plans, inputs) -> AccountBook:
    """The book after `inputs` in this order, step k booked at BOOKED + k s."""
    book = AccountBook(CycleCalendar(1, "UTC"), plans)
    for k, item in enumerate(inputs):
        book.record_at(BOOKED + timedelta(seconds=k))
        assert book.submit(item).status == "accepted", item
    return book


def outside_validity(book: AccountBook) -> list[tuple]:
    return [(e.kind, e.bucket_id, e.effective_at) for e in book.entries
            if e.bucket_id and (b := book.buckets.get(e.bucket_id)) is not None
            and b.valid_until is not None and e.effective_at > b.valid_until]


def booked_before(book: AccountBook, entry) -> bool:
    """Whether an entry of `entry`'s bucket at its instant was recorded before it."""
    return any(e.bucket_id == entry.bucket_id and e.effective_at == entry.effective_at
               and e.recorded_at < entry.recorded_at for e in book.entries)


def statements(book: AccountBook, line: str, ends: list[datetime]) -> list[dict]:
    """Each cycle's statement figures, the netted flows by their net (a correction of
    an expiry is an `adjust`), as tests/unit/test_bitemporal_statements.py compares."""
    return [figures(statement_of(book, line, start, end))
            for start, end in pairwise(ends)]


def assert_exact(late: AccountBook, in_order: AccountBook, lines, until: datetime) -> None:
    in_order.advance_to(until)
    late.record_at(BOOKED + timedelta(days=1))
    late.advance_to(until)
    cycles = [JAN, FEB, MAR, until]
    for line in lines:
        assert statements(late, line, cycles) == statements(in_order, line, cycles), line
        assert (views.position(late, until - US).lines[line]
                == views.position(in_order, until - US).lines[line]), line


def test_a_gift_drawn_from_another_source_in_the_replay_is_corrected_where_it_expired():
    plans = load_presets()
    opened = JAN + US
    inputs = [
        OpenLine("open-a", "a", opened, "att-mobile-share-15gb"),
        OpenLine("open-b", "b", opened, "att-mobile-share-15gb"),
        Gift("g4", "b", "a", FEB, 1),
        # Late past the grace: rated when received, so the book passes 1 March.
        Usage("u13", "a", FEB, 0, rating_group="hotspot",
              received_at=datetime(2026, 3, 3, 0, 0, 1, tzinfo=UTC)),
        TopUp("t15", "b", FEB - US, 1, valid_days=1),  # out of order: a replay
    ]
    late = fold(plans, inputs)
    gift = late.buckets["a/data/gift/g4#0"]
    assert gift.valid_until == datetime(2026, 2, 1, 23, 59, 59, 999999, tzinfo=UTC)
    outside = [e for e in late.entries if e.bucket_id == gift.id
               and e.effective_at > gift.valid_until]
    assert [(e.kind, e.effective_at) for e in outside if e.recorded_at == BOOKED
            + timedelta(seconds=4)] == [(EntryKind.ADJUST, MAR)]
    assert all(booked_before(late, e) for e in outside if e.recorded_at > BOOKED
               + timedelta(seconds=3))
    in_order = fold(plans, [inputs[0], inputs[1], inputs[4], inputs[2], inputs[3]])
    assert outside_validity(in_order) == []
    assert_exact(late, in_order, ["a", "b"], datetime(2026, 4, 1, tzinfo=UTC))


def test_a_merge_that_no_longer_happens_in_the_replay_is_corrected_where_it_expired():
    plans = {"merging": MERGING}
    inputs = [
        OpenLine("open", "a", JAN, "merging"),
        TopUp("t1", "a", JAN + timedelta(days=4), 100, valid_days=1),
        TopUp("t3", "a", JAN + timedelta(days=4, hours=12), 100, valid_days=10),
        Usage("u9", "a", JAN + timedelta(days=20), 0, received_at=JAN + timedelta(days=20)),
        # Late, within grace: drains the allowance and t1 before t3 arrives.
        Usage("u5", "a", JAN + timedelta(days=4, hours=6), 1024 + 100,
              received_at=JAN + timedelta(days=20, seconds=1)),
    ]
    late = fold(plans, inputs)
    t1 = late.buckets["a/data/topup/t1"]
    assert t1.valid_until == JAN + timedelta(days=5)
    assert late.buckets["a/data/topup/t3"].valid_until == JAN + timedelta(days=14, hours=12)
    corrections = [e for e in late.entries if e.recorded_at == BOOKED + timedelta(seconds=4)
                   and e.bucket_id == t1.id and e.effective_at > t1.valid_until]
    assert [(e.kind, e.amount) for e in corrections] == [(EntryKind.ADJUST, 200)]
    assert all(booked_before(late, e) for e in corrections)
    in_order = fold(plans, [inputs[0], inputs[1], inputs[4], inputs[2], inputs[3]])
    assert outside_validity(in_order) == []
    assert_exact(late, in_order, ["a"], datetime(2026, 4, 1, tzinfo=UTC))
