"""Rollover at risk: each live deposit, and what the projected pace leaves of it.

For every rollover deposit the line holds at `at` (data, with bytes left): what is
left, when it expires, and the bytes projected to expire unused, found by folding
the projected pace (forecast.Pace) into a fork of the book up to the deposit's
expiry: the engine itself decides what drains first and what expires. Plus
`lost_to_caps_next`: what the next boundary, at that pace, would not carry
because of the per-cycle or stash cap (the rest of a rollable bucket that
expires "not carried", domain/rollover.py). Without a pace both are None. Pure.
"""

from __future__ import annotations

from datetime import UTC, datetime

from carryover.domain import rollover
from carryover.domain.advice.forecast import Pace
from carryover.domain.advice.fork import booked, fold, fork, instant, planned
from carryover.domain.book import AccountBook
from carryover.domain.buckets import POOL
from carryover.domain.cycles import add_calendar_months
from carryover.domain.ledger import EntryKind
from carryover.domain.plans import BucketKind
from carryover.domain.units import Unit, format_amount

# How far ahead a projection may fold: a deposit living longer is projected to here.
HORIZON_MONTHS = 13


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


def at_risk(book: AccountBook, line: str, at: datetime, pace: Pace | None,
            members: dict[str, Pace | None] | None = None) -> dict:
    """The rollover item of the advice for `line`; `book` is positioned at `at`.

    For a family member (`members`: every member's pace) the pool's deposits are
    listed too, and the projection folds every member's pace, since they all draw
    the pool; a member without a pace then projects no use."""
    owners = [line] + ([POOL] if members is not None else [])
    deposits = [b for owner in owners for b in book.own_buckets(owner, Unit.DATA, at)
                if b.kind is BucketKind.ROLLOVER and (b.remaining or 0) > 0]
    _, end = book.calendar.cycle_at(at)
    projected = None
    spenders = {line: pace} if members is None else members
    if pace is not None:
        horizon = max([end] + [b.valid_until for b in deposits if b.valid_until is not None])
        horizon = min(horizon, add_calendar_months(at, HORIZON_MONTHS, book.calendar.tz))
        projected = fork(book)
        start = instant(projected, at)
        fold(projected, [u for name, p in sorted(spenders.items()) if p is not None
                         for u in planned(projected, name, start, horizon, p.expected, "pace")])
        projected.advance_to(horizon)
    items = []
    for b in deposits:
        unused = None
        if projected is not None and b.valid_until is not None and b.valid_until <= projected.until:
            unused = booked(projected, EntryKind.EXPIRE, bucket_id=b.id)
        text = f"{format_amount(b.remaining)} of rollover left"
        text += ("" if b.valid_until is None else
                 f", expiring {b.valid_until.astimezone(book.calendar.tz):%Y-%m-%d %H:%M}")
        if unused is not None:
            text += (f"; at the present pace {format_amount(unused)} of it would expire unused"
                     if unused else "; at the present pace all of it would be used")
        items.append({"kind": "rollover_deposit", "bucket": b.id, "remaining": b.remaining,
                      "expires_at": _iso(b.valid_until), "projected_unused_at_expiry": unused,
                      "text": text + "."})
    lost = None
    if projected is not None:
        lost = sum(e.amount for e in projected.entries
                   if e.kind is EntryKind.EXPIRE and e.owner in owners and e.at == end
                   and e.unit is Unit.DATA and e.note == rollover.EXPIRE_NOTE)
    if lost is None:
        lost_text = "No projection of the next boundary without a forecast."
    elif lost:
        lost_text = (f"At the present pace the boundary at "
                     f"{end.astimezone(book.calendar.tz):%Y-%m-%d %H:%M} would not carry "
                     f"{format_amount(lost)} because of the rollover caps.")
    else:
        lost_text = "At the present pace the next boundary loses nothing to rollover caps."
    return {"deposits": items,
            "lost_to_caps_next": {"kind": "lost_to_caps", "amount": lost, "boundary": _iso(end),
                                  "text": lost_text}}
