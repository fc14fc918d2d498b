"""The ledger: every change to a bucket is an immutable entry (docs/semantics.md).

The ledger is bitemporal. Every entry has `effective_at`, the instant of the fold
it belongs to (inside its bucket's validity), and `recorded_at`, when the engine
booked it. A correction (late usage, a back-dated line, plan change, top-up, gift
or limit) is a new row booked now with the effective instant of what it
corrects, so the statement of a cycle (entries effective in it) is the same
whatever the arrival order, and restricting to entries recorded by an instant
gives what the subscriber was told then. No row is ever rewritten.

Entry kinds and the side of the bucket's balance they sit on:
- in:  grant, rollover_in, transfer_in
- out: debit, rollover_out, expire, forfeit, transfer_out
- adjust: a signed correction of the balance (positive adds), written when a
  late event changes a boundary that was already booked (docs/semantics.md,
  "Late usage").
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
from collections.abc import Callable, Iterable
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
# Kinds a correction keeps (signed) instead of folding into an `adjust`.
KEPT_KINDS = USAGE_KINDS | {EntryKind.GRANT, EntryKind.TRANSFER_IN, EntryKind.TRANSFER_OUT}


@dataclass(frozen=True, slots=True)
class Entry:
    """One movement of units. `line` is the line that caused it (the consumer for a
    debit), `ref` the input that caused it (an event id, a boundary, a top-up).
    `recorded_at` defaults to `effective_at` (an entry booked as it happened)."""

    effective_at: datetime
    kind: EntryKind
    unit: Unit
    amount: int
    bucket_id: str | None
    owner: str | None  # the bucket's owner (line id or pool); None for overage
    line: str | None
    ref: str
    note: str = ""
    recorded_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.recorded_at is None:
            object.__setattr__(self, "recorded_at", self.effective_at)

    @property
    def at(self) -> datetime:
        """The effective instant: where the entry sits in the fold and in statements."""
        return self.effective_at

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


class CycleTotals:
    """Sums of entry amounts per (effective cycle start, bucket, owner, line, unit, kind),
    with the latest effective instant seen under each key.

    Corrections are diffed per effective cycle, not per effective instant: a
    statement is a sum over one cycle, so per-cycle totals keep every statement
    exact, while per-instant totals would hold one key per usage event (a replay's
    memory would grow with the history, and a correction would be one row per
    event). Per cycle, a replay keeps at most one total per bucket, line, kind and
    cycle the bucket lives in: the account's state, not its history."""

    __slots__ = ("_cycle_of", "_span", "latest", "sums")

    def __init__(self, cycle_of: Callable[[datetime], tuple[datetime, datetime]]) -> None:
        self._cycle_of = cycle_of
        self._span: tuple[datetime, datetime] | None = None
        self.sums: dict[tuple, int] = defaultdict(int)
        self.latest: dict[tuple, datetime] = {}

    def cycle_start(self, t: datetime) -> datetime:
        # Entries mostly come in fold order: the last cycle found usually holds the next.
        span = self._span
        if span is None or not span[0] <= t < span[1]:
            span = self._span = self._cycle_of(t)
        return span[0]

    def add(self, key: tuple, effective_at: datetime, amount: int) -> None:
        full = (self.cycle_start(effective_at), *key)
        self.sums[full] += amount
        last = self.latest.get(full)
        if last is None or effective_at > last:
            self.latest[full] = effective_at

    def append(self, e: Entry) -> None:
        self.add(total_key(e), e.effective_at, e.amount)


def correction_entries(booked: CycleTotals, truth: CycleTotals, recorded_at: datetime,
                       ref: str, note: str) -> list[Entry]:
    """Entries that bring `booked` totals to `truth`, cycle by cycle.

    The rule is docs/semantics.md, "The bitemporal ledger".

    Each correction is effective in the cycle it corrects, at the latest effective
    instant of what it corrects there (an instant of that bucket's own entries, so
    inside its validity), and recorded at `recorded_at`. Which kind it is booked as:
    - usage (debit, overage) stays usage, signed, so a line's usage still equals its
      debits plus overage; grants stay grants, so a statement's grant is the
      allowance in force; transfers stay transfers, so a gift's two sides match;
    - a flow of an owner (line or pool) the booked ledger had nothing of in that
      cycle (a back-dated line's later cycles, say) is booked under its own kind:
      it is new, not a change, and both sides of a rollover share their owner;
    - any other change of a booked flow (a rollover a late event shrank) becomes
      one `adjust` on the bucket with the signed change to its balance.
    """
    out: list[Entry] = []
    adjust: dict[tuple, int] = defaultdict(int)
    adjust_at: dict[tuple, datetime] = {}
    seen = {(key[0], key[2]) for key, value in booked.sums.items() if value}
    for key in sorted(set(booked.sums) | set(truth.sums), key=_key_order):
        delta = truth.sums.get(key, 0) - booked.sums.get(key, 0)
        if delta == 0:
            continue
        when = truth.latest.get(key) or booked.latest[key]
        start, bucket_id, owner, line, unit, kind = key
        if kind in KEPT_KINDS or (kind is not EntryKind.ADJUST and (start, owner) not in seen):
            out.append(Entry(when, kind, unit, delta, bucket_id, owner, line, ref, note,
                             recorded_at))
        else:
            sign = 1 if kind in INFLOWS or kind is EntryKind.ADJUST else -1
            target = (start, bucket_id, owner, unit)
            adjust[target] += sign * delta
            adjust_at[target] = max(adjust_at.get(target, when), when)
    for target, amount in sorted(adjust.items(), key=lambda kv: _key_order(kv[0])):
        if amount:
            _, bucket_id, owner, unit = target
            out.append(Entry(adjust_at[target], EntryKind.ADJUST, unit, amount, bucket_id,
                             owner, None, ref, note, recorded_at))
    return out


def _key_order(key: tuple) -> tuple:
    return tuple("" if part is None else str(part) for part in key)
