"""Set-based rating of many accounts at once (docs/ingest.md, "How it works").

`ColumnarBook.rate` does what AccountBook.submit does event by event, for every
account in one pass of array operations:

- between two *breakpoints* of an account (an expiry, a cycle boundary) its usable
  buckets do not change, so all its events in that stretch are rated together:
  their total per (line, unit) is drained through the queue with rating.drain,
  giving each bucket exactly the total an event-by-event fold would;
- then every account with events beyond its next breakpoint crosses it: expiries
  close buckets; a boundary expires what does not roll, carries each rollable
  bucket by the functions of domain/rollover.py (the same calls the object book
  makes, given every (line, unit) at once) into a rollover bucket valid from T,
  and grants the new cycle's allowances — for all those accounts at once.

It covers accounts without a family pool, no plan change pending and events that
sort after the account's last breakpoint (in order, or commuting: see
AccountBook._commutes). The caller sends every other account through the object
book. Entries are booked aggregated: one debit per bucket per stretch; the
per-event split is reproducible by replay (docs/semantics.md, "The ledger and
conservation").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from carryover.domain import ids, plan_grants, rollover
from carryover.domain.buckets import UNLIMITED
from carryover.domain.columnar.state import (
    I64,
    KINDS,
    NEVER,
    UNITS,
    Buckets,
    Entries,
    from_us,
    to_us,
)
from carryover.domain.cycles import CycleCalendar
from carryover.domain.ledger import EntryKind
from carryover.domain.plan_versions import PlanCatalog
from carryover.domain.plans import BucketKind, Plan, PlanKind, RolloverPolicy
from carryover.domain.rating import drain

ROLLOVER = KINDS.index(BucketKind.ROLLOVER)
COUNTERS = ("used", "overage", "hotspot")


@lru_cache(maxsize=1 << 16)
def stamp(us: int) -> str:
    # Boundaries and expiries repeat across accounts: a few hundred distinct instants
    # stand for hundreds of thousands of bucket ids and refs.
    return ids.stamp(from_us(us))


@lru_cache(maxsize=1 << 16)
def _next_boundary(calendar: CycleCalendar, boundary_us: int) -> int:
    # Keyed by calendar, not account: a hundred calendars serve 100,000 accounts.
    return to_us(calendar.next_boundary(from_us(boundary_us)))


def _version_at(plans: PlanCatalog, plan_id: str, calendar: CycleCalendar, at_us: int) -> Plan:
    if len(plans.versions(plan_id)) == 1:
        return plans[plan_id]
    return plans.at(plan_id, from_us(at_us), calendar)


def _deposit_until(policy: RolloverPolicy, calendar: CycleCalendar, boundary_us: int) -> int:
    return _lifetime_end(policy.lifetime_months, policy.lifetime_cycles, calendar, boundary_us)


@lru_cache(maxsize=1 << 16)
def _lifetime_end(months: int | None, cycles: int | None, calendar: CycleCalendar,
                  boundary_us: int) -> int:
    # Keyed by the lifetime alone (a policy holds mappings, which do not hash).
    policy = RolloverPolicy(lifetime_months=months, lifetime_cycles=cycles)
    return to_us(rollover.deposit_until(policy, from_us(boundary_us), calendar))


@dataclass
class Events:
    line: np.ndarray  # line index
    eff: np.ndarray  # effective instant, µs
    amount: np.ndarray
    unit: np.ndarray
    hotspot: np.ndarray  # bool


class ColumnarBook:
    def __init__(self, plans: Mapping[str, Plan], calendars: list[CycleCalendar],
                 cycle_start: np.ndarray, cycle_end: np.ndarray, until: np.ndarray,
                 segment_start: np.ndarray, line_account: np.ndarray, line_ids: np.ndarray,
                 line_plans: list[str | None], buckets: Buckets, ref: str) -> None:
        self.plans = PlanCatalog.of(plans)
        self.calendars = calendars
        self.cycle_start, self.cycle_end = cycle_start.copy(), cycle_end.copy()
        self.until, self.segment_start = until.copy(), segment_start.copy()
        self.line_account = line_account
        self.line_ids = line_ids
        self.line_plans = line_plans
        self.b = buckets
        self.ref = ref
        self.entries = Entries()
        # counter deltas as columns: cycle start (µs), line, unit, counter code, amount
        self.counter_parts: list[tuple[np.ndarray, ...]] = []

    # ---- calendars and plans ---------------------------------------------------------
    def plan_at(self, plan_id: str | None, account: int, at_us: int) -> Plan | None:
        """The version of `plan_id` in force at the instant, for the account's calendar."""
        if not plan_id or plan_id not in self.plans:
            return None
        return _version_at(self.plans, plan_id, self.calendars[account], int(at_us))

    def plans_of_lines(self, lines: list[int], at_us: list[int]) -> list[Plan | None]:
        """`plan_at` of each line's plan at its instant, asked once per distinct
        (plan, calendar, instant): a boundary asks for every line of many accounts."""
        seen: dict[tuple, Plan | None] = {}
        out = []
        for line, t in zip(lines, at_us, strict=True):
            account = int(self.line_account[line])
            plan_id = self.line_plans[line]
            key = (plan_id, self.calendars[account], t)
            if key not in seen:
                seen[key] = self.plan_at(plan_id, account, t)
            out.append(seen[key])
        return out

    def next_boundary(self, account: int, boundary_us: int) -> int:
        return _next_boundary(self.calendars[account], int(boundary_us))

    # ---- the pass -----------------------------------------------------------------
    def rate(self, ev: Events) -> None:
        pending = np.ones(len(ev.amount), dtype=bool)
        ev_account = self.line_account[ev.line]
        while pending.any():
            b_account = self.line_account[self.b.line]
            live = ~self.b.closed
            due = np.where(live & (self.b.valid_until < self.cycle_end[b_account]),
                           self.b.valid_until, NEVER)
            first_due = np.full(len(self.cycle_end), NEVER, dtype=I64)
            np.minimum.at(first_due, b_account, due)
            next_break = np.minimum(first_due, self.cycle_end)
            stretch = pending & (ev.eff < next_break[ev_account])
            if stretch.any():
                self._drain(ev, stretch)
            pending &= ~stretch
            if not pending.any():
                break
            crossing = np.unique(ev_account[pending])
            expiring = first_due[crossing] < self.cycle_end[crossing]
            if expiring.any():
                self._expire(crossing[expiring], first_due[crossing[expiring]])
            if (~expiring).any():
                self._boundary(crossing[~expiring])
        np.maximum.at(self.until, ev_account, ev.eff)

    # ---- rating a stretch -----------------------------------------------------------
    def _drain(self, ev: Events, mask: np.ndarray) -> None:
        idx = np.flatnonzero(mask)
        group = ev.line[idx] * len(UNITS) + ev.unit[idx]
        groups, inverse = np.unique(group, return_inverse=True)
        demand = np.zeros(len(groups), dtype=I64)
        np.add.at(demand, inverse, ev.amount[idx])
        hot = np.zeros(len(groups), dtype=I64)
        np.add.at(hot, inverse, np.where(ev.hotspot[idx], ev.amount[idx], 0))
        first = np.full(len(groups), NEVER, dtype=I64)
        np.minimum.at(first, inverse, ev.eff[idx])
        last = np.zeros(len(groups), dtype=I64)
        np.maximum.at(last, inverse, ev.eff[idx])

        b = self.b
        order = b.order()
        b_group = b.line[order] * len(UNITS) + b.unit[order]
        pos = np.clip(np.searchsorted(groups, b_group), 0, len(groups) - 1)
        usable = ((groups[pos] == b_group) & ~b.closed[order]
                  & (b.valid_from[order] <= first[pos]) & (b.valid_until[order] > last[pos])
                  & (b.unlimited[order] | (b.remaining[order] > 0)))
        queue = order[usable]
        qpos = pos[usable]
        ptr = np.concatenate([[0], np.cumsum(np.bincount(qpos, minlength=len(groups)))])
        left = np.where(b.unlimited[queue], UNLIMITED, b.remaining[queue])
        result = drain(demand, ptr.astype(I64), left.astype(I64))
        b.remaining[queue] = np.where(b.unlimited[queue], b.remaining[queue],
                                      b.remaining[queue] - result.debit)
        took = result.debit > 0
        q = queue[took]
        self.entries.add(last[qpos[took]], EntryKind.DEBIT, b.unit[q], result.debit[took], q,
                         b.line[q], b.line[q], self.ref)
        lines = groups // len(UNITS)
        units = groups % len(UNITS)
        over = result.overage > 0
        self.entries.add(last[over], EntryKind.OVERAGE, units[over], result.overage[over], -1,
                         lines[over], lines[over], self.ref)
        cycle = self.cycle_start[self.line_account[lines]]
        for code, values in enumerate((demand, result.overage, hot)):
            nz = values > 0
            self.counter_parts.append((cycle[nz], lines[nz], units[nz],
                                       np.full(int(nz.sum()), code, dtype=I64), values[nz]))

    # ---- breakpoints ------------------------------------------------------------------
    def _close(self, rows: np.ndarray, kind: EntryKind, at: np.ndarray, refs, note="") -> None:
        b = self.b
        left = ~b.unlimited[rows] & (b.remaining[rows] > 0)
        r = rows[left]
        self.entries.add(at[left], kind, b.unit[r], b.remaining[r], r, -1, b.line[r],
                         np.asarray(refs, dtype=object)[left] if np.ndim(refs) else refs, note)
        b.remaining[r] = 0
        b.closed[rows] = True

    def _expire(self, accounts: np.ndarray, at: np.ndarray) -> None:
        when = np.full(len(self.cycle_end), -1, dtype=I64)
        when[accounts] = at
        b = self.b
        rows = np.flatnonzero(~b.closed & (b.valid_until <= when[self.line_account[b.line]]))
        refs = np.array([ids.expiry_ref(stamp(int(t)))
                         for t in when[self.line_account[b.line[rows]]]], dtype=object)
        self._close(rows, EntryKind.EXPIRE, b.valid_until[rows], refs)
        self.segment_start[accounts] = np.maximum(self.segment_start[accounts], at)

    def _boundary(self, accounts: np.ndarray) -> None:
        b = self.b
        T = np.full(len(self.cycle_end), -1, dtype=I64)
        T[accounts] = self.cycle_end[accounts]
        self.segment_start[accounts] = T[accounts]
        refs_of = {int(a): ids.boundary_ref(stamp(int(T[a]))) for a in accounts}
        row_T = T[self.line_account[b.line]]
        live = ~b.closed & (row_T >= 0)
        source = live & rollover.is_source(b.rollable, b.valid_until, row_T)
        first = np.flatnonzero(live & rollover.expires_at(b.valid_until, row_T, source))
        self._close(first, EntryKind.EXPIRE, b.valid_until[first],
                    [refs_of[int(a)] for a in self.line_account[b.line[first]]])
        self._carry(np.flatnonzero(source), row_T, refs_of)
        for a in accounts.tolist():
            self.cycle_start[a] = T[a]
            self.cycle_end[a] = self.next_boundary(a, int(T[a]))
        self._grant(accounts, T, refs_of)

    def _carry(self, sources: np.ndarray, row_T: np.ndarray, refs_of: dict[int, str]) -> None:
        """The boundary rule of domain/rollover.py for every (line, unit) at once."""
        b = self.b
        if len(sources) == 0:
            return
        order = b.order()
        sources = order[np.isin(order, sources)]  # consumption order within (line, unit)
        group = b.line[sources] * len(UNITS) + b.unit[sources]
        starts = np.flatnonzero(np.concatenate([[True], group[1:] != group[:-1]]))
        n_in_group = np.arange(len(sources)) - np.repeat(starts, np.diff(np.append(starts,
                                                                               len(sources))))
        left = b.remaining[sources].copy()
        room = np.zeros(len(sources), dtype=I64)  # no rollover policy: nothing carries
        # Each source rolls under the version of its line's plan in force at T.
        src_plans = self.plans_of_lines(b.line[sources].tolist(), row_T[sources].tolist())
        by_plan = {id(p): p for p in src_plans if p is not None}
        src_plan = np.array([0 if p is None else id(p) for p in src_plans], dtype=np.int64)
        held = None
        for key, plan in sorted(by_plan.items(), key=lambda kv: kv[1].id):
            if plan.rollover is None:
                continue
            for u in sorted(set(b.unit[sources[src_plan == key]].tolist())):
                mine = (src_plan == key) & (b.unit[sources] == u)
                per_cycle, stash = rollover.unit_caps(plan, UNITS[u])
                if stash is not None and held is None:
                    held = self._stash_held(sources, row_T)
                room[mine] = rollover.room(per_cycle, stash,
                                           0 if stash is None else held[mine])
        carried = rollover.carry(left, group, room)
        new_rows: list[dict] = []
        out_notes: list[str] = []
        in_notes: list[str] = []
        for k in np.flatnonzero(carried > 0).tolist():
            row = int(sources[k])
            line = int(b.line[row])
            plan = src_plans[k]
            t = int(row_T[row])
            account = int(self.line_account[line])
            deposit = ids.deposit_id(self.line_ids[line], UNITS[int(b.unit[row])], stamp(t),
                                          int(n_in_group[k]))
            new_rows.append(dict(
                line=line, unit=int(b.unit[row]), kind=ROLLOVER, granted=int(carried[k]),
                valid_from=t, valid_until=_deposit_until(plan.rollover,
                                                         self.calendars[account], t),
                origin=b.ids[row], id=deposit, **rollover.deposit_fields(plan)))
            out_notes.append(rollover.out_note(deposit))
            in_notes.append(rollover.in_note(b.ids[row]))
        refs = [refs_of[int(self.line_account[b.line[r]])] for r in sources.tolist()]
        took = carried > 0
        self.entries.add(row_T[sources[took]], EntryKind.ROLLOVER_OUT, b.unit[sources[took]],
                         carried[took], sources[took], -1, b.line[sources[took]],
                         np.array(refs, dtype=object)[took], np.array(out_notes, dtype=object))
        b.remaining[sources] -= carried
        start = len(b)
        self._append(new_rows)
        created = np.arange(start, len(self.b))
        self.entries.add(self.b.valid_from[created], EntryKind.ROLLOVER_IN, self.b.unit[created],
                         self.b.granted[created], created, -1, self.b.line[created],
                         np.array(refs, dtype=object)[took], np.array(in_notes, dtype=object))
        self._close(sources, EntryKind.EXPIRE, row_T[sources], refs, rollover.EXPIRE_NOTE)

    def _stash_held(self, rows: np.ndarray, row_T: np.ndarray) -> np.ndarray:
        """What each source's owner still holds in its unit's stash at T (rollover.in_stash)."""
        b = self.b
        is_source = np.zeros(len(b), dtype=bool)
        is_source[rows] = True
        stash = np.flatnonzero(~b.closed & (row_T >= 0) & rollover.in_stash(
            b.kind == ROLLOVER, b.valid_from, b.valid_until, row_T, is_source))
        key = b.line[stash] * len(UNITS) + b.unit[stash]
        held: dict[int, int] = {}
        for k, amount in zip(key.tolist(), b.remaining[stash].tolist(), strict=True):
            held[k] = held.get(k, 0) + amount
        return np.array([held.get(int(k), 0) for k in b.line[rows] * len(UNITS) + b.unit[rows]],
                        dtype=I64)

    def _grant(self, accounts: np.ndarray, T: np.ndarray, refs_of: dict[int, str]) -> None:
        chosen = np.isin(self.line_account, accounts)
        new_rows: list[dict] = []
        refs: list[str] = []
        notes: list[str] = []
        granted = np.flatnonzero(chosen).tolist()
        line_plans = self.plans_of_lines(granted, T[self.line_account[granted]].tolist())
        for line, plan in zip(granted, line_plans, strict=True):
            account = int(self.line_account[line])
            t, ref = int(T[account]), refs_of[account]
            if plan is None or plan.kind is PlanKind.PACK:
                continue
            for unit, amount in sorted(plan.allowances.items()):
                # A boundary's grant (plan_grants.grant_allowances): one per line and instant.
                priority, rollable = plan_grants.allowance_terms(plan, amount)
                new_rows.append(dict(
                    line=line, unit=UNITS.index(unit), kind=KINDS.index(BucketKind.ALLOWANCE),
                    granted=amount, valid_from=t, valid_until=int(self.cycle_end[account]),
                    priority=priority, rollable=rollable, origin=ref,
                    id=ids.allowance_id(self.line_ids[line], unit, stamp(t))))
                refs.append(ref)
                notes.append(plan.id)
        start = len(self.b)
        self._append(new_rows)
        created = np.arange(start, len(self.b))
        amounts = np.where(self.b.unlimited[created], 0, self.b.granted[created])
        self.entries.add(self.b.valid_from[created], EntryKind.GRANT, self.b.unit[created],
                         amounts, created, self.b.line[created], self.b.line[created],
                         np.array(refs, dtype=object), np.array(notes, dtype=object))

    def _append(self, rows: list[dict]) -> None:
        if not rows:
            return
        unlimited = np.array([r["granted"] is None for r in rows], dtype=bool)
        granted = np.array([UNLIMITED if r["granted"] is None else r["granted"] for r in rows],
                           dtype=I64)
        fresh = Buckets(
            line=np.array([r["line"] for r in rows], dtype=I64),
            unit=np.array([r["unit"] for r in rows], dtype=I64),
            kind=np.array([r["kind"] for r in rows], dtype=I64),
            granted=granted, remaining=granted.copy(), unlimited=unlimited,
            valid_from=np.array([r["valid_from"] for r in rows], dtype=I64),
            valid_until=np.array([r["valid_until"] for r in rows], dtype=I64),
            priority=np.array([r["priority"] for r in rows], dtype=I64),
            rollable=np.array([r["rollable"] for r in rows], dtype=bool),
            closed=np.zeros(len(rows), dtype=bool),
            ids=np.array([r["id"] for r in rows], dtype=object),
            origin=np.array([r["origin"] for r in rows], dtype=object),
            new=np.ones(len(rows), dtype=bool),
        )
        self.b = self.b.append(fresh)

    # ---- results ------------------------------------------------------------------
    def counters(self) -> dict[tuple[int, int, int, int], int]:
        """Counter deltas keyed (cycle start µs, line, unit, counter code)."""
        out: dict[tuple[int, int, int, int], int] = {}
        for cycle, line, unit, code, value in self.counter_parts:
            keys = zip(cycle.tolist(), line.tolist(), unit.tolist(), code.tolist(), strict=True)
            for key, v in zip(keys, value.tolist(), strict=True):
                out[key] = out.get(key, 0) + v
        return out
