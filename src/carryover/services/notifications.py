"""Notifications derived from stored state, written to the transactional outbox.

`emit_notifications(conn, account_ids, at)` runs inside the transaction of a
change (one event, a batch, an ingest chunk, a read that materialized a cycle)
after the change is written. It reads the stored state of every line of the
touched accounts with a few set-based queries (lines, the current cycle's
counters, bucket aggregates per owner), decides which conditions hold now, and
inserts one outbox row per condition with INSERT ... ON CONFLICT DO NOTHING on
(line, cycle_start, kind). So each kind fires once per line per cycle, however
often and by whichever path the same state is evaluated, and it commits or rolls
back with the change that caused it. The work is per line, never per event.

Kinds (data only):
- usage_50, usage_80, usage_100: the line's `used` counter of the current cycle
  against the data allowance granted to it in that cycle (its allowance buckets;
  a plan-less family member: the pool's). Unlimited allowances have no thresholds.
- throttled, blocked: the line used data this cycle and has nothing usable left
  (own buckets, and the pool's for a member within its limit), and the governing
  plan's overage action is throttle or block.
- rollover_credited: a rollover bucket of the line (or of its pool) starts in the
  current cycle.
- rollover_expiring: an open rollover bucket with something left ends within 7
  days after `at`.
- member_limit_reached: the member's `pool` counter reached its data limit.
- esim_installed: written by `emit_esim_installed` from the eSIM notification
  service when a profile reaches `installed`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from carryover.domain.buckets import POOL
from carryover.domain.cycles import CycleCalendar
from carryover.domain.plans import OverageAction, PlanKind
from carryover.store.repository import PlanRepository, utc
from carryover.store.tables import accounts, buckets, counters, lines
from carryover.store.webhook_tables import outbox

KINDS = ("usage_50", "usage_80", "usage_100", "throttled", "blocked", "rollover_credited",
         "rollover_expiring", "member_limit_reached", "esim_installed")
THRESHOLDS = ((50, "usage_50"), (80, "usage_80"), (100, "usage_100"))
EXPIRING_WITHIN = timedelta(days=7)


def emit_notifications(conn: Connection, account_ids: Iterable[int], at: datetime) -> int:
    """Insert the notifications that hold now for the lines of `account_ids`.

    Returns how many candidate rows were offered (the outbox keeps only new ones)."""
    ids = sorted({int(a) for a in account_ids})
    if not ids:
        return 0
    acct = {r.id: r for r in conn.execute(select(
        accounts.c.id, accounts.c.name, accounts.c.cycle_start, accounts.c.cycle_end,
        accounts.c.pool_plan_id).where(accounts.c.id.in_(ids), accounts.c.cycle_start.isnot(None)))}
    if not acct:
        return 0
    cycle = {a: utc(r.cycle_start).isoformat() for a, r in acct.items()}
    used = _counters(conn, list(acct), sorted(set(cycle.values())), cycle)
    facts = _bucket_facts(conn, list(acct), at)
    plans = PlanRepository(conn).all()
    rows: list[dict] = []
    for line in conn.execute(select(lines).where(lines.c.account_id.in_(list(acct)))
                             .order_by(lines.c.id)):
        account = acct[line.account_id]
        own = facts.get((line.account_id, line.id), {})
        pool = facts.get((line.account_id, POOL), {}) if line.member else {}
        base = {"line": line.id, "msisdn": line.msisdn, "account": account.name,
                "cycle_start": cycle[line.account_id], "at": at.isoformat()}
        for kind, numbers in _conditions(line, account, own, pool, used, plans, cycle):
            rows.append({"account_id": line.account_id, "line": line.id,
                         "cycle_start": cycle[line.account_id], "kind": kind, "at": at,
                         "payload": {"kind": kind, **base, **numbers}})
    _insert(conn, rows)
    return len(rows)


def emit_esim_installed(conn: Connection, line_id: str, iccid: str, eid: str | None,
                        at: datetime) -> None:
    """The line's eSIM profile was installed on a device (once per line per cycle)."""
    row = conn.execute(select(lines.c.msisdn, accounts.c.id, accounts.c.name,
                              accounts.c.cycle_start, accounts.c.cycle_day, accounts.c.timezone)
                       .join(accounts, accounts.c.id == lines.c.account_id)
                       .where(lines.c.id == line_id)).first()
    if row is None:
        return
    start = utc(row.cycle_start)
    if start is None or start > at:
        start = CycleCalendar(row.cycle_day, row.timezone).cycle_at(at)[0]
    payload = {"kind": "esim_installed", "line": line_id, "msisdn": row.msisdn,
               "account": row.name, "cycle_start": start.isoformat(), "at": at.isoformat(),
               "iccid": iccid, "eid": eid}
    _insert(conn, [{"account_id": row.id, "line": line_id, "cycle_start": start.isoformat(),
                    "kind": "esim_installed", "at": at, "payload": payload}])


def _conditions(line: Any, account: Any, own: dict, pool: dict, used: dict, plans: dict,
                cycle: dict) -> Iterable[tuple[str, dict]]:
    key = (line.account_id, line.id)
    spent = used.get((*key, "used"), 0)
    from_pool = used.get((*key, "pool"), 0)
    plan_less_member = line.member and line.plan_id is None
    grant = pool if plan_less_member else own
    if grant.get("allowance_unlimited", 0) == 0 and grant.get("allowance", 0) > 0:
        allowance = grant["allowance"]
        for percent, kind in THRESHOLDS:
            if spent * 100 >= allowance * percent:
                yield kind, {"used": spent, "allowance": allowance, "threshold": percent}
    limit = (line.limits or {}).get("data") if line.member else None
    limit_reached = limit is not None and from_pool >= limit
    if limit_reached:
        yield "member_limit_reached", {"limit": limit, "used_from_pool": from_pool}
    usable = own.get("usable", 0) or (pool.get("usable", 0) and not limit_reached)
    plan_id = line.plan_id or (account.pool_plan_id if line.member else None)
    plan = plans.get(plan_id) if plan_id else None
    if spent > 0 and not usable and plan is not None and plan.kind is not PlanKind.UNLIMITED:
        action = plan.overage.action
        if action in (OverageAction.THROTTLE, OverageAction.BLOCK):
            kind = "throttled" if action is OverageAction.THROTTLE else "blocked"
            numbers = {"used": spent, "plan": plan.id}
            if plan.overage.throttle_kbps is not None and kind == "throttled":
                numbers["kbps"] = plan.overage.throttle_kbps
            yield kind, numbers
    credited = own.get("rollover_credited", 0) + pool.get("rollover_credited", 0)
    if credited > 0:
        yield "rollover_credited", {"amount": credited,
                                    "from_pool": pool.get("rollover_credited", 0)}
    expiring = own.get("rollover_expiring", 0) + pool.get("rollover_expiring", 0)
    if expiring > 0:
        ends = [f["expiring_until"] for f in (own, pool) if f.get("expiring_until")]
        yield "rollover_expiring", {"remaining": expiring,
                                    "valid_until": utc(min(ends)).isoformat()}


def _counters(conn: Connection, account_ids: list[int], starts: list[str],
              cycle: dict[int, str]) -> dict[tuple, int]:
    c = counters.c
    out: dict[tuple, int] = {}
    for row in conn.execute(select(c.account_id, c.cycle_start, c.line, c.name, c.value).where(
            c.account_id.in_(account_ids), c.cycle_start.in_(starts), c.unit == "data",
            c.name.in_(["used", "pool"]))):
        if cycle.get(row.account_id) == row.cycle_start:
            out[(row.account_id, row.line, row.name)] = int(row.value)
    return out


def _bucket_facts(conn: Connection, account_ids: list[int], at: datetime) -> dict[tuple, dict]:
    """Per (account, owner): allowance granted this cycle, usability, rollover facts."""
    b, a = buckets.c, accounts.c
    in_cycle = and_(b.valid_from < a.cycle_end,
                    b.valid_until.is_(None) | (b.valid_until > a.cycle_start))
    allowance = and_(b.kind == "allowance", in_cycle)
    live = and_(b.closed.is_(False), b.valid_from <= at,
                b.valid_until.is_(None) | (b.valid_until > at))
    rollover_new = and_(b.kind == "rollover", b.valid_from >= a.cycle_start,
                        b.valid_from < a.cycle_end)
    expiring = and_(b.kind == "rollover", b.closed.is_(False), b.remaining > 0,
                    b.valid_until > at, b.valid_until <= at + EXPIRING_WITHIN)
    query = (select(
        b.account_id, b.owner,
        func.sum(case((and_(allowance, b.granted.isnot(None)), b.granted), else_=0))
        .label("allowance"),
        func.sum(case((and_(allowance, b.granted.is_(None)), 1), else_=0))
        .label("allowance_unlimited"),
        func.max(case((and_(live, b.remaining.is_(None) | (b.remaining > 0)), 1), else_=0))
        .label("usable"),
        func.sum(case((rollover_new, b.granted), else_=0)).label("rollover_credited"),
        func.sum(case((expiring, b.remaining), else_=0)).label("rollover_expiring"),
        func.min(case((expiring, b.valid_until), else_=None)).label("expiring_until"))
        .join(accounts, a.id == b.account_id)
        .where(b.account_id.in_(account_ids), b.unit == "data")
        .group_by(b.account_id, b.owner))
    out: dict[tuple, dict] = {}
    for row in conn.execute(query):
        until = row.expiring_until
        if isinstance(until, str):  # SQLite's MIN over a CASE loses the column type
            until = datetime.fromisoformat(until)
        out[(row.account_id, row.owner)] = {
            "allowance": int(row.allowance or 0),
            "allowance_unlimited": int(row.allowance_unlimited or 0),
            "usable": int(row.usable or 0),
            "rollover_credited": int(row.rollover_credited or 0),
            "rollover_expiring": int(row.rollover_expiring or 0),
            "expiring_until": until}
    return out


def _insert(conn: Connection, rows: list[dict]) -> None:
    if not rows:
        return
    written = datetime.now(UTC)
    rows = [{**row, "written_at": written} for row in rows]
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(dialect_insert(outbox).on_conflict_do_nothing(
        index_elements=["line", "cycle_start", "kind"]), rows)
