"""The demo: 50 subscribers, three months of realistic usage, on a fresh database.

Deterministic (a fixed seed): weekday and weekend days, an evening peak, a few
heavy users who run out and get throttled, two family accounts with member
limits, an unlimited plan past its premium threshold, travel packs with top-ups,
and one batch of CDRs from the last evening of January that arrives a day and a
half late, inside the grace window, so January's rollover is corrected.
Usage is fed in weekly batches through the same services an operator uses, in
the unit of work the demo is given: the ledger's (services.ledger.operations)
and the batches' (services.ingest.values.record_batch).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

import numpy as np

from carryover.domain.buckets import POOL
from carryover.domain.ledger import EntryKind
from carryover.services.ingest.values import UsageRow, record_batch
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning

if TYPE_CHECKING:
    from carryover.services.ingest.ports import IngestUnit
    from carryover.services.ledger.ports import LedgerUnit

    class DemoUnit(LedgerUnit, IngestUnit, Protocol):
        """What the demo writes through: the ledger's repositories and the ingest's."""

GB = 1024**3
TZ = "America/New_York"
START = datetime(2026, 1, 1, tzinfo=ZoneInfo(TZ))
DAYS = 90
SEED = 2026
CYCLE_DAYS = (1, 5, 10, 15, 20, 25, 31)
STATEMENT_LINE = "tmobile-data-7"  # a typical stash user on cycle day 1, in the late batch
# Share of a day's traffic by local hour: quiet nights, a commute bump, an evening peak.
HOURLY = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.2, 2.6, 2.0, 1.8, 1.9,
                   2.2, 2.0, 1.8, 1.9, 2.3, 2.8, 3.6, 4.4, 4.8, 4.5, 3.4, 2.0])
HOURLY = HOURLY / HOURLY.sum()

# (preset, lines, monthly GB by profile): light, typical and heavy users per preset.
INDIVIDUAL = [
    ("tmobile-data-stash-10gb", 14, (3, 7, 16)),
    ("china-mobile-jiezhuan-20gb", 8, (8, 15, 26)),
    ("tmobile-go5g", 8, (40, 70, 130)),
    ("travel-5gb-30d", 7, (2, 4, 8)),
    ("att-mobile-share-25gb", 6, (10, 18, 32)),
]
FAMILIES = [
    ("rivera-family", "att-mobile-share-15gb", [2.5, 4, 5, 2], {"rivera-3": 2 * GB}),
    ("okafor-family", "verizon-carryover-8gb", [2, 3, 1.5], {"okafor-2": 3 * GB // 2}),
]


@dataclass
class DemoReport:
    lines: int
    events: int
    late_events: int
    rolled_over_by_plan: dict[str, int]
    throttled: list[dict] = field(default_factory=list)
    statement_line: str = ""
    statement: object = None
    end: datetime | None = None


def _subscribers(rng: np.random.Generator) -> list[tuple[str, str, str | None, float, str]]:
    """(account, line id, plan or None for pool members, monthly GB, pool plan)."""
    subs = []
    for plan, count, profiles in INDIVIDUAL:
        short = plan.split("-")[0] + "-" + plan.split("-")[1]
        for n in range(count):
            # Mostly typical users, a few light ones and one or two heavy ones per preset.
            profile = profiles[int(rng.choice(3, p=[0.3, 0.55, 0.15]))] if n else profiles[2]
            monthly = profile * float(rng.uniform(0.8, 1.2))
            subs.append((f"{short}-{n}", f"{short}-{n}", plan, monthly, ""))
    for account, pool_plan, usage, _ in FAMILIES:
        for n, monthly in enumerate(usage):
            subs.append((account, f"{account.split('-')[0]}-{n}", None, monthly, pool_plan))
    return subs


def _events(rng: np.random.Generator, line: str, monthly_gb: float, plan: str | None):
    tz = ZoneInfo(TZ)
    daily = monthly_gb * GB / 30
    for day in range(DAYS):
        date = (START + timedelta(days=day)).date()
        weekend = date.weekday() >= 5
        volume = daily * (1.25 if weekend else 0.9) * float(rng.lognormal(0, 0.35))
        sessions = int(rng.integers(5, 9) if weekend else rng.integers(3, 7))
        hours = rng.choice(24, size=sessions, p=HOURLY)
        shares = rng.dirichlet(np.ones(sessions))
        for n, (hour, share) in enumerate(zip(hours.tolist(), shares.tolist(), strict=True)):
            at = datetime(date.year, date.month, date.day, hour, int(rng.integers(0, 60)),
                          tzinfo=tz)
            group = "hotspot" if plan == "tmobile-go5g" and rng.random() < 0.3 else None
            yield UsageRow(f"demo-{line}-{day:03d}-{n}", line, at, int(volume * share),
                           at + timedelta(minutes=5), rating_group=group)


def run_demo(uow: DemoUnit, progress=None) -> DemoReport:
    """Build the demo in `uow`'s database."""
    rng = np.random.default_rng(SEED)
    at = START
    for account, pool_plan, _, _ in FAMILIES:
        provisioning.create_account(uow, account, 1, TZ, at, pool_plan)
    subs = _subscribers(rng)
    for n, (account, line, plan, _, pool) in enumerate(subs):
        if not pool:
            provisioning.create_account(uow, account, CYCLE_DAYS[n % len(CYCLE_DAYS)], TZ, at)
        provisioning.create_line(uow, account, f"+1646555{n:04d}", at, plan, line_id=line)
    for _, _, _, limits in FAMILIES:
        for line, limit in limits.items():
            ledger_ops.set_limit(uow, line, limit, at, f"demo-limit-{line}")

    rows = [row for _, line, plan, monthly, _ in subs for row in _events(rng, line, monthly, plan)]
    # One late batch: the last evening of January, from the lines whose cycle ends on
    # 1 February, reaches us 36 hours late: inside the grace window, so January's
    # rollover is recomputed and corrected by `adjust` entries.
    boundary = datetime(2026, 2, 1, tzinfo=ZoneInfo(TZ))
    late_lines = {line for n, (_, line, _, _, pool) in enumerate(subs)
                  if pool or CYCLE_DAYS[n % len(CYCLE_DAYS)] == 1}
    for i, row in enumerate(rows):
        if row.line in late_lines and boundary - timedelta(hours=6) <= row.at < boundary:
            rows[i] = UsageRow(row.event_id, row.line, row.at, row.amount,
                               boundary + timedelta(hours=36), row.unit, row.rating_group)
    # Travellers buy a 3 GB top-up when their pack runs low: feed it as the operator would.
    for _, line, plan, _, _ in subs:
        if plan == "travel-5gb-30d":
            ledger_ops.top_up(uow, line, 3 * GB, START + timedelta(days=20), 30,
                              f"demo-topup-{line}")
    rows.sort(key=lambda r: (r.received_at, r.event_id))
    week = timedelta(days=7)
    batch_start = START
    end = START + timedelta(days=DAYS)
    while batch_start < end + timedelta(days=2):
        batch = [r for r in rows if batch_start <= r.received_at < batch_start + week]
        if batch:
            record_batch(uow, batch)
        if progress:
            progress(len(batch))
        batch_start += week
    last = end - timedelta(hours=1)
    report = DemoReport(len(subs), len(rows), sum(r.received_at - r.at > timedelta(hours=1)
                                                  for r in rows), {}, end=last)
    for _, line, *_ in subs:
        decision = ledger_ops.qos_at(uow, line, last)
        if decision.state != "normal":
            report.throttled.append({"line": line, **decision.as_dict()})
    report.rolled_over_by_plan = rolled_over_by_plan(uow)
    report.statement_line = STATEMENT_LINE
    report.statement = ledger_ops.statement(uow, report.statement_line,
                                            datetime(2026, 2, 15, tzinfo=ZoneInfo(TZ)))
    return report


def rolled_over_by_plan(uow: LedgerUnit) -> dict[str, int]:
    """Bytes deposited as rollover, by the plan of the line (or pool) that earned them."""
    with uow:
        line_plan = uow.directory.line_plans()
        pool_plan = uow.directory.pool_plans()
        totals: dict[str, int] = defaultdict(int)
        for account_id, owner, kind, amount, bucket_id in uow.directory.entries_of_kinds(
                [str(EntryKind.ROLLOVER_IN), str(EntryKind.ADJUST)]):
            plan = pool_plan.get(account_id) if owner == POOL else line_plan.get(owner)
            # Deposits, and the corrections a late CDR made to them.
            if plan is not None and (kind == EntryKind.ROLLOVER_IN or "/rollover/" in bucket_id):
                totals[plan] += amount
        return dict(sorted(totals.items()))
