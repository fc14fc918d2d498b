"""Family: each member's projected surplus or shortfall to the cycle's end, and the
gifts and member limits that would prevent a shortfall, each checked by replaying it.

A projection folds every member's projected pace (forecast.Pace; a member without
one uses nothing more) into one fork of the book, in fold order, up to the last
instant of the cycle. A member's `projected_shortfall` is the overage it would
incur; its `projected_surplus` the bytes of its own rollover and top-up buckets
(what a gift may move: docs/semantics.md, "Family pools") that would
expire unused by the cycle's end.

Suggestions are found greedily (short members by id, givers by id, at most what
the giver would lose anyway) and each is kept only if the projection with it and
every suggestion kept before it leaves no member with more shortfall than without
it, and lowers the receiver's. A limit is suggested for a member still short whose
pool would keep bytes unused: its limit raised by what it lacks, kept by the same
check. Gifts and limits move bytes; they never create any. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from carryover.domain.advice.forecast import Pace
from carryover.domain.advice.fork import fold, fork, instant, planned
from carryover.domain.book import AccountBook
from carryover.domain.buckets import POOL
from carryover.domain.inputs import Gift, Input, SetLimit
from carryover.domain.ledger import EntryKind
from carryover.domain.plans import BucketKind
from carryover.domain.units import Unit, format_amount

_US = timedelta(microseconds=1)
GIFTABLE = (BucketKind.ROLLOVER, BucketKind.TOPUP)


@dataclass(frozen=True, slots=True)
class Projection:
    shortfall: dict[str, int]
    surplus: dict[str, int]
    pool_left: int


def members(book: AccountBook) -> list[str]:
    return sorted(k for k, s in book.lines.items() if s.member and k != POOL)


def project(book: AccountBook, at: datetime, paces: dict[str, Pace | None],
            extra: list[Input]) -> Projection:
    """Fold `extra` (at the what-if instant) and every member's pace into a fork up to
    the cycle's last instant, and read what each member would lack and lose."""
    what_if = fork(book)
    start, end = book.calendar.cycle_at(at)
    t = instant(what_if, at)
    fold(what_if, [moved(i, t) for i in extra])
    before = {m: what_if.counter(start, m, Unit.DATA, "overage") for m in members(book)}
    items = []
    for m in members(book):
        pace = paces.get(m)
        if pace is not None:
            items += planned(what_if, m, t, end, pace.expected, "family")
    fold(what_if, items)
    last = end - _US
    what_if.advance_to(last)
    shortfall = {m: what_if.counter(start, m, Unit.DATA, "overage") - before[m]
                 for m in members(book)}
    surplus = {}
    for m in members(book):
        own = [b for b in what_if.buckets.values() if b.owner == m and b.unit is Unit.DATA
               and b.kind in GIFTABLE and b.valid_until is not None and b.valid_until <= end]
        ids = {b.id for b in own}
        expired = sum(e.amount for e in what_if.entries
                      if e.kind is EntryKind.EXPIRE and e.bucket_id in ids)
        surplus[m] = expired + sum(b.remaining or 0 for b in own if not b.closed)
    pool_left = sum(b.remaining or 0 for b in what_if.own_buckets(POOL, Unit.DATA, last))
    return Projection(shortfall, surplus, pool_left)


def moved(item: Input, t: datetime) -> Input:
    """`item` at instant `t` (a what-if input at the fork's instant)."""
    if isinstance(item, Gift):
        return Gift(item.id, item.from_line, item.line, t, item.amount, item.unit)
    if isinstance(item, SetLimit):
        return SetLimit(item.id, item.line, t, item.amount, item.unit)
    return item


def _no_worse(trial: Projection, base: Projection) -> bool:
    return all(trial.shortfall[m] <= base.shortfall[m] for m in base.shortfall)


def suggest(book: AccountBook, at: datetime, paces: dict[str, Pace | None]) -> dict | None:
    """The family item of the advice, or None for an account without members."""
    names = members(book)
    if not names:
        return None
    base = project(book, at, paces, [])
    kept: list[Input] = []
    now = base
    for to in [m for m in names if base.shortfall[m] > 0]:
        for giver in names:
            need = now.shortfall[to]
            spare = now.surplus[giver]
            if giver == to or need <= 0 or spare <= 0:
                continue
            gift = Gift(f"advice:gift:{len(kept)}", giver, to, at, min(need, spare))
            trial = project(book, at, paces, [*kept, gift])
            if _no_worse(trial, now) and trial.shortfall[to] < now.shortfall[to]:
                kept.append(gift)
                now = trial
    for m in names:
        limit = book.lines[m].limits.get(Unit.DATA)
        if limit is None or now.shortfall[m] <= 0 or now.pool_left <= 0:
            continue
        raise_by = min(now.shortfall[m], now.pool_left)
        change = SetLimit(f"advice:limit:{m}", m, at, limit + raise_by)
        trial = project(book, at, paces, [*kept, change])
        if _no_worse(trial, now) and trial.shortfall[m] < now.shortfall[m]:
            kept.append(change)
            now = trial
    rows = []
    for m in names:
        short, spare = base.shortfall[m], base.surplus[m]
        if short:
            text = f"{m} is projected to lack {format_amount(short)} by the end of the cycle."
        elif spare:
            text = (f"{m} is projected to leave {format_amount(spare)} of rollover or top-up "
                    "unused by the end of the cycle.")
        else:
            text = f"{m} is projected to neither lack data nor lose any by the end of the cycle."
        rows.append({"kind": "member", "line": m, "projected_shortfall": short,
                     "projected_surplus": spare, "text": text})
    return {"members": rows, "suggestions": [_suggestion(s) for s in kept],
            "shortfall_after": sum(now.shortfall.values())}


def _suggestion(item: Input) -> dict:
    if isinstance(item, Gift):
        return {"kind": "gift", "from": item.from_line, "to": item.line, "amount": item.amount,
                "text": f"Gift {format_amount(item.amount)} from {item.from_line} to "
                        f"{item.line}: bytes that would otherwise expire unused."}
    assert isinstance(item, SetLimit)
    return {"kind": "member_limit", "line": item.line, "amount": item.amount,
            "text": f"Raise {item.line}'s member limit to {format_amount(item.amount)}: "
                    "the pool would otherwise keep bytes unused."}


def as_inputs(suggestions: list[dict], at: datetime) -> list[Input]:
    """The suggestions as inputs at `at` (to apply them, or to check them)."""
    out: list[Input] = []
    for n, s in enumerate(suggestions):
        if s["kind"] == "gift":
            out.append(Gift(f"advice:gift:{n}", s["from"], s["to"], at, s["amount"]))
        else:
            out.append(SetLimit(f"advice:limit:{n}", s["line"], at, s["amount"]))
    return out
