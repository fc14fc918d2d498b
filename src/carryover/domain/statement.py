"""The statement of a line's cycle: every byte explained, totals that reconcile to zero.

Two reconciliations, per unit (docs/semantics.md, "The ledger and conservation"):
- balances: opening + grants + rollover in + transfers in + adjustments
  - debits - rollover out - expired - forfeited - transfers out - closing = 0,
  over the buckets the line owns (unlimited buckets have no balance to explain);
- usage: what the line used = its debits (own and pool buckets) + its overage.

The statement is a fold over ledger entries with the cycle as a window
[start, end) on their *effective* instant: entries effective before `start`
make the opening balance. The ledger is bitemporal (domain/ledger.py): a
correction booked later (a late event's `adjust`, a back-dated line's grants) is
effective in the cycle it corrects, so it appears in that cycle's statement,
and opening(C) = closing(C-1) whatever the arrival order. `as_of` restricts the
fold to entries recorded by then: the statement as the subscriber was told it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from carryover.domain.ledger import INFLOWS, OUTFLOWS, Entry, EntryKind
from carryover.domain.plans import OverageAction, Plan
from carryover.domain.units import Unit

FLOW_ORDER = (
    EntryKind.GRANT, EntryKind.ROLLOVER_IN, EntryKind.TRANSFER_IN, EntryKind.ADJUST,
    EntryKind.DEBIT, EntryKind.ROLLOVER_OUT, EntryKind.EXPIRE, EntryKind.FORFEIT,
    EntryKind.TRANSFER_OUT,
)


@dataclass(slots=True)
class UnitStatement:
    opening: int = 0
    flows: dict[str, int] = field(default_factory=lambda: {str(k): 0 for k in FLOW_ORDER})
    closing: int = 0
    used: int = 0
    debited_own: int = 0
    debited_pool: int = 0
    overage: int = 0
    charge: str | None = None

    @property
    def balance_check(self) -> int:
        """Zero when every byte of the owned buckets is explained."""
        inflow = sum(self.flows[str(k)] for k in INFLOWS) + self.flows[str(EntryKind.ADJUST)]
        outflow = sum(self.flows[str(k)] for k in OUTFLOWS)
        return self.opening + inflow - outflow - self.closing

    @property
    def usage_check(self) -> int:
        """Zero when usage equals debits plus overage."""
        return self.used - self.debited_own - self.debited_pool - self.overage

    def as_dict(self) -> dict:
        return {
            "opening": self.opening, **self.flows, "closing": self.closing,
            "balance_check": self.balance_check,
            "used": self.used, "debited_own": self.debited_own,
            "debited_pool": self.debited_pool, "overage": self.overage,
            "usage_check": self.usage_check, "overage_charge": self.charge,
        }


@dataclass(slots=True)
class Statement:
    line: str
    start: datetime
    end: datetime
    units: dict[Unit, UnitStatement]
    entries: list[Entry]
    # The inputs effective in the cycle other than usage (plan changes, top-ups, limits,
    # gifts, the line's opening), each with who gave it and when it was recorded.
    changes: list[dict] = field(default_factory=list)
    as_of: datetime | None = None

    def as_dict(self) -> dict:
        return {
            "line": self.line,
            "cycle": {"start": self.start.isoformat(), "end": self.end.isoformat()},
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "units": {str(u): s.as_dict() for u, s in self.units.items()},
            "entries": [
                {"at": e.at.isoformat(), "recorded_at": e.recorded_at.isoformat(),
                 "kind": str(e.kind), "unit": str(e.unit),
                 "amount": e.amount, "bucket": e.bucket_id, "owner": e.owner, "line": e.line,
                 "ref": e.ref, "note": e.note}
                for e in self.entries
            ],
            "changes": [dict(c) for c in self.changes],
        }


def overage_charge(overage: int, plan: Plan | None) -> Decimal | None:
    """Overage price of one cycle on a `charge` plan: whole increments started, times
    the price, to the cent (None: the plan does not charge, or nothing to charge)."""
    if plan is None or plan.overage.action is not OverageAction.CHARGE or not overage:
        return None
    policy = plan.overage
    increments = -(-overage // policy.increment)  # ceiling division
    total = (policy.price or Decimal(0)) * increments
    return total.quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN)


def charge_for(overage: int, plan: Plan | None) -> str | None:
    """Overage price for a `charge` plan, with its currency."""
    total = overage_charge(overage, plan)
    return None if total is None else f"{total} {plan.overage.currency}"


def build_statement(line: str, start: datetime, end: datetime, entries: Iterable[Entry],
                    unlimited_buckets: set[str], plan: Plan | None = None,
                    as_of: datetime | None = None) -> Statement:
    """Fold `entries` (all of the account's entries effective before `end`) into a
    statement; with `as_of`, only those recorded at or before it."""
    units: dict[Unit, UnitStatement] = defaultdict(UnitStatement)
    shown: list[Entry] = []
    for e in entries:
        if e.at >= end or (as_of is not None and e.recorded_at > as_of):
            continue
        owned = e.owner == line and e.bucket_id is not None and e.bucket_id not in unlimited_buckets
        in_cycle = e.at >= start
        unit = units[e.unit]
        if owned:
            effect = e.balance_effect()
            if in_cycle:
                unit.flows[str(e.kind)] += e.amount
            else:
                unit.opening += effect
            unit.closing += effect
        if in_cycle and e.line == line:
            if e.kind is EntryKind.DEBIT:
                if e.owner == line:
                    unit.debited_own += e.amount
                else:
                    unit.debited_pool += e.amount
                unit.used += e.amount
            elif e.kind is EntryKind.OVERAGE:
                unit.overage += e.amount
                unit.used += e.amount
        if in_cycle and (owned or e.line == line):
            shown.append(e)
    for unit in units.values():
        unit.charge = charge_for(unit.overage, plan)
    ordered = {u: units[u] for u in Unit if u in units}
    return Statement(line, start, end, ordered, shown, as_of=as_of)
