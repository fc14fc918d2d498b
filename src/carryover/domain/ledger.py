"""The ledger: every change to a bucket is an immutable entry (DESIGN 1.9).

Entry kinds and the side of the bucket's balance they sit on:
- in:  grant, rollover_in, transfer_in
- out: debit, rollover_out, expire, forfeit, transfer_out
- adjust: a signed correction of the balance (positive adds), written when a
  late event changes a boundary that was already booked (DESIGN 1.5).
- overage: usage no bucket covered; it has no bucket, only a line.

Per bucket: granted + transfers_in + adjustments = debits + rolled_out + expired
+ forfeited + transfers_out + remaining. Per line: usage = debits + overage.
These are folds over entries, computed here and checked against the engine's
own running balances in tests.

Debits may be negative only as a correction: when a late event shrinks a
rollover bucket that was already drawn past its new size, the excess debit is
moved down the consumption order (a negative debit on one bucket, a positive
one on the next), so per-line conservation still holds to the byte.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from carryover.domain.units import Unit


class EntryKind(StrEnum):
    GRANT = "grant"
    DEBIT = "debit"
    ROLLOVER_OUT = "rollover_out"
    ROLLOVER_IN = "rollover_in"
    EXPIRE = "expire"
    ADJUST = "adjust"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    FORFEIT = "forfeit"
    OVERAGE = "overage"


INFLOWS = frozenset({EntryKind.GRANT, EntryKind.ROLLOVER_IN, EntryKind.TRANSFER_IN})
OUTFLOWS = frozenset({
    EntryKind.DEBIT, EntryKind.ROLLOVER_OUT, EntryKind.EXPIRE,
    EntryKind.FORFEIT, EntryKind.TRANSFER_OUT,
})
USAGE_KINDS = frozenset({EntryKind.DEBIT, EntryKind.OVERAGE})


@dataclass(frozen=True, slots=True)
class Entry:
    """One movement of units. `line` is the line that caused it (the consumer for a
    debit), `ref` the input that caused it (an event id, a boundary, a top-up)."""

    at: datetime
    kind: EntryKind
    unit: Unit
    amount: int
    bucket_id: str | None
    owner: str | None  # the bucket's owner (line id or pool); None for overage
    line: str | None
    ref: str
    note: str = ""

    def balance_effect(self) -> int:
        """How this entry changes its bucket's remaining."""
        if self.kind in INFLOWS or self.kind is EntryKind.ADJUST:
            return self.amount
        if self.kind in OUTFLOWS:
            return -self.amount
        return 0


def balances(entries: Iterable[Entry]) -> dict[str, int]:
    """Remaining per bucket as a pure fold over the entries."""
    out: dict[str, int] = defaultdict(int)
    for e in entries:
        if e.bucket_id is not None:
            out[e.bucket_id] += e.balance_effect()
    return dict(out)


def total_key(e: Entry) -> tuple:
    """What `totals` sums an entry under: (bucket, owner, line, unit, kind)."""
    return (e.bucket_id, e.owner, e.line, e.unit, e.kind)


def totals(entries: Iterable[Entry]) -> dict[tuple, int]:
    """Sum of amounts per (bucket, line, unit, kind): the shape corrections are diffed in."""
    out: dict[tuple, int] = defaultdict(int)
    for e in entries:
        out[total_key(e)] += e.amount
    return out


def usage_by_line(entries: Iterable[Entry]) -> dict[tuple[str, Unit], int]:
    """Debits plus overage per (line, unit): must equal the usage that line reported."""
    out: dict[tuple[str, Unit], int] = defaultdict(int)
    for e in entries:
        if e.kind in USAGE_KINDS and e.line is not None:
            out[(e.line, e.unit)] += e.amount
    return dict(out)


def correction_entries(booked: dict[tuple, int], truth: dict[tuple, int], at: datetime,
                       ref: str, note: str) -> list[Entry]:
    """Entries that bring `booked` totals to `truth` (DESIGN 1.5).

    Usage moves stay debits and overage (signed), so a line's usage still equals
    its debits plus overage; every other difference becomes one `adjust` on the
    bucket with the signed change to its balance.
    """
    out: list[Entry] = []
    adjust: dict[tuple, int] = defaultdict(int)
    for key in sorted(set(booked) | set(truth), key=_key_order):
        delta = truth.get(key, 0) - booked.get(key, 0)
        if delta == 0:
            continue
        bucket_id, owner, line, unit, kind = key
        if kind in USAGE_KINDS:
            out.append(Entry(at, kind, unit, delta, bucket_id, owner, line, ref, note))
        else:
            sign = 1 if kind in INFLOWS or kind is EntryKind.ADJUST else -1
            adjust[(bucket_id, owner, unit)] += sign * delta
    for (bucket_id, owner, unit), amount in sorted(adjust.items(), key=lambda kv: str(kv[0])):
        if amount:
            out.append(Entry(at, EntryKind.ADJUST, unit, amount, bucket_id, owner, None, ref, note))
    return out


def _key_order(key: tuple) -> tuple:
    return tuple("" if part is None else str(part) for part in key)
