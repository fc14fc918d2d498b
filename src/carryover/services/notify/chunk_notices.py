"""Notifications for an ingest chunk: the same outbox rows as `emit_notifications`, cheaper.

`emit_notifications` (services.notify.notices) reads the state of the touched
accounts through SQLAlchemy Core, one result row object per line and per bucket
group. An ingest chunk touches tens of thousands of accounts, and turning those
rows into objects cost more than rating the chunk. `BulkNotifier.emit` runs the
same three set-based reads (accounts, the current cycle's counters, bucket
aggregates per owner) on the raw DBAPI cursor, joined to the temporary table of
the chunk's accounts instead of long IN lists, and hands each line to the same
`_conditions`. So the conditions and payloads are those of `emit_notifications`
by construction (`tests/integration/test_bulk_notifications.py` compares the
rows offered, and the rows stored).

The rows go to the outbox through `_insert` too, so they are stored as the
single-event path stores them.

Each account's notices are decided at its own instant: the latest its book has
reached (`accounts.until`, what the chunk just wrote), never the latest of the
chunk, which belongs to some other account; a test may ask for one instant for
all. The per-account instants go into the temporary table `notice_instants`
beside `ingest_accounts`.

One thing it adds: a candidate already offered by an earlier chunk of the same
run is not offered again. That chunk committed before this one began, so the
outbox holds the (line, cycle, kind) key and ON CONFLICT DO NOTHING would drop
the row anyway.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from carryover.domain.buckets import POOL
from carryover.services.notify.notices import EXPIRING_WITHIN, _conditions, _insert
from carryover.store import bulk_io
from carryover.store.repository import utc


@dataclass(frozen=True, slots=True)
class _Line:
    id: str
    account_id: int
    msisdn: str | None
    plan_id: str | None
    member: bool
    limits: dict
    alert_thresholds: list | None


@dataclass(frozen=True, slots=True)
class _Account:
    name: str
    pool_plan_id: str | None
    cycle_day: int
    timezone: str


def _instant(value) -> datetime | None:
    """A stored instant (SQLite text, or a driver datetime) as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return utc(value)


INSERT_SLICE = 10_000


class BulkNotifier:
    """Offers each chunk's notifications; remembers what this run offered already."""

    def __init__(self) -> None:
        self.offered: set[tuple[str, str, str]] = set()

    def emit(self, conn, raw: bulk_io.Raw, account_ids: Iterable[int], at: datetime | None,
             plans: dict) -> int:
        """Insert the notifications that hold for the lines of `account_ids`, each account
        at its own instant (`at` None) or all at `at` (names them in the temporary table
        `ingest_accounts`). Returns the rows offered."""
        offered = 0
        rows: list[dict] = []
        for row in _candidates(raw, account_ids, at, plans, self.offered):
            # Interned: a run remembers a key per notification (200,000 for a
            # 10,000,000-event file), and each row brings its own copies of the same
            # few strings; shared, a key costs about a third.
            self.offered.add((sys.intern(row["line"]), sys.intern(row["cycle_start"]),
                              sys.intern(row["kind"])))
            rows.append(row)
            if len(rows) == INSERT_SLICE:  # bounded memory: a payload dict is ~1 KB
                _insert(conn, rows)
                offered, rows = offered + len(rows), []
        _insert(conn, rows)
        return offered + len(rows)


def candidates(raw: bulk_io.Raw, account_ids: Iterable[int], at: datetime | None,
               plans: dict) -> list[dict]:
    """The rows `emit_notifications(conn, account_ids, at)` would offer, in its order."""
    return list(_candidates(raw, account_ids, at, plans))


def _candidates(raw: bulk_io.Raw, account_ids: Iterable[int], at: datetime | None,
                plans: dict, offered: Container[tuple[str, str, str]] = frozenset(),
                ) -> Iterator[dict]:
    """The candidate rows, but none whose (line, cycle_start, kind) is in `offered`."""
    ids = sorted({int(a) for a in account_ids})
    if not ids:
        return
    raw.name_accounts(ids)
    acct: dict[int, _Account] = {}
    cycle: dict[int, str] = {}
    when: dict[int, datetime] = {}
    starts: dict = {}  # accounts share a few cycle starts (and instants): parse each once
    for a, name, start, until, pool_plan, cycle_day, zone in raw.run(
            "SELECT a.id, a.name, a.cycle_start, a.until, a.pool_plan_id, a.cycle_day, "
            "a.timezone FROM ingest_accounts t "
            "CROSS JOIN accounts a WHERE a.id = t.id AND a.cycle_start IS NOT NULL"):
        acct[a] = _Account(name, pool_plan, cycle_day, zone)
        for value in (start, until):
            if value not in starts:
                starts[value] = _instant(value)
        cycle[a] = starts[start].isoformat()
        when[a] = at or starts[until] or starts[start]
    if not acct:
        return
    used = _counters(raw, cycle)
    _name_instants(raw, when)
    facts = _bucket_facts(raw)
    parsed: dict[str, dict] = {}
    stamps = {t: t.isoformat() for t in set(when.values())}
    for line_id, account_id, msisdn, plan_id, member, limits, picked in raw.run(
            "SELECT l.id, l.account_id, l.msisdn, l.plan_id, l.member, l.limits, "
            "l.alert_thresholds "
            "FROM ingest_accounts t CROSS JOIN lines l WHERE l.account_id = t.id ORDER BY l.id"):
        if account_id not in acct:
            continue
        if isinstance(limits, str):  # SQLite's JSON text; almost always the same '{}'
            if limits not in parsed:
                parsed[limits] = json.loads(limits)
            limits = parsed[limits]
        if isinstance(picked, str):  # SQLite's JSON text
            picked = json.loads(picked)
        line = _Line(line_id, account_id, msisdn, plan_id, bool(member), limits or {}, picked)
        account = acct[account_id]
        own = facts.get((account_id, line_id), {})
        pool = facts.get((account_id, POOL), {}) if line.member else {}
        instant = when[account_id]
        base = {"line": line_id, "msisdn": msisdn, "account": account.name,
                "cycle_start": cycle[account_id], "at": stamps[instant]}
        for kind, numbers in _conditions(line, account, own, pool, used, plans, cycle,
                                         instant):
            if (line_id, cycle[account_id], kind) in offered:
                continue  # before its row is built: most of a chunk's were offered before
            yield {"account_id": account_id, "line": line_id, "cycle_start": cycle[account_id],
                   "kind": kind, "at": instant, "payload": {"kind": kind, **base, **numbers}}


def _name_instants(raw: bulk_io.Raw, when: dict[int, datetime]) -> None:
    """Fill the temporary table `notice_instants`: each account's instant, and that
    instant plus EXPIRING_WITHIN, as the backend stores instants (compared as stored)."""
    kind = "TEXT" if raw.dialect == "sqlite" else "TIMESTAMPTZ"
    raw.run(f"CREATE TEMP TABLE IF NOT EXISTS notice_instants "
            f"(id INTEGER PRIMARY KEY, now {kind} NOT NULL, soon {kind} NOT NULL)")
    raw.run("DELETE FROM notice_instants")
    text = {t: (raw.instant(t), raw.instant(t + EXPIRING_WITHIN)) for t in set(when.values())}
    raw.append("notice_instants", ("id", "now", "soon"),
               [(a, *text[t]) for a, t in sorted(when.items())])


def _counters(raw: bulk_io.Raw, cycle: dict[int, str]) -> dict[tuple, int]:
    # Sought by account only, the cycle compared here: an IN list of the chunk's cycle
    # starts would make SQLite seek once per account per start.
    out: dict[tuple, int] = {}
    for account_id, start, line, name, value in raw.run(
            "SELECT c.account_id, c.cycle_start, c.line, c.name, c.value "
            "FROM ingest_accounts t CROSS JOIN counters c WHERE c.account_id = t.id "
            "AND c.unit = 'data' AND c.name IN ('used', 'pool')"):
        if cycle.get(account_id) == start:
            out[(account_id, line, name)] = int(value)
    return out


def _bucket_facts(raw: bulk_io.Raw) -> dict[tuple, dict]:
    """Per (account, owner): the aggregates of notifications._bucket_facts, same predicates,
    each account at its instant in `notice_instants` (n.now, and n.soon for expiries)."""
    in_cycle = ("b.valid_from < a.cycle_end AND (b.valid_until IS NULL "
                "OR b.valid_until > a.cycle_start)")
    allowance = f"b.kind = 'allowance' AND {in_cycle}"
    live = ("b.closed = ? AND b.valid_from <= n.now "
            "AND (b.valid_until IS NULL OR b.valid_until > n.now)")
    rollover_new = ("b.kind = 'rollover' AND b.valid_from >= a.cycle_start "
                    "AND b.valid_from < a.cycle_end")
    expiring = ("b.kind = 'rollover' AND b.closed = ? AND b.remaining > 0 "
                "AND b.valid_until > n.now AND b.valid_until <= n.soon")
    query = (
        "SELECT b.account_id, b.owner, "
        f"SUM(CASE WHEN {allowance} AND b.granted IS NOT NULL THEN b.granted ELSE 0 END), "
        f"SUM(CASE WHEN {allowance} AND b.granted IS NULL THEN 1 ELSE 0 END), "
        f"MAX(CASE WHEN {live} AND (b.remaining IS NULL OR b.remaining > 0) THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN {rollover_new} THEN b.granted ELSE 0 END), "
        f"SUM(CASE WHEN {expiring} THEN b.remaining ELSE 0 END), "
        f"MIN(CASE WHEN {expiring} THEN b.valid_until ELSE NULL END) "
        "FROM ingest_accounts t CROSS JOIN buckets b JOIN accounts a ON a.id = t.id "
        "JOIN notice_instants n ON n.id = t.id "
        "WHERE b.account_id = t.id AND b.unit = 'data' GROUP BY b.account_id, b.owner")
    params = (False, False, False)
    out: dict[tuple, dict] = {}
    for account_id, owner, allow, unlimited, usable, credited, left, until in raw.run(
            query, params):
        out[(account_id, owner)] = {
            "allowance": int(allow or 0), "allowance_unlimited": int(unlimited or 0),
            "usable": int(usable or 0), "rollover_credited": int(credited or 0),
            "rollover_expiring": int(left or 0),
            "expiring_until": None if until is None else _instant(until)}
    return out
