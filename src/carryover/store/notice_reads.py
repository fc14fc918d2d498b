"""The stored state notices are decided from, for an ingest chunk: raw cursor reads.

The reads of store.outbox.OutboxRepository (accounts with a current cycle, their
lines, the cycle's data counters, bucket aggregates per owner) with the same
predicates, for the tens of thousands of accounts an ingest chunk touches:
turning SQLAlchemy Core result rows into objects cost more than rating the
chunk, so these run on the raw DBAPI cursor (store.raw_cursor.Raw) and name the
accounts through the temporary table `ingest_accounts` (`Raw.name_accounts`)
instead of long IN lists. Each account's instant goes into the temporary table
`notice_instants` beside it. Values come back as the Core reads give them:
instants aware in UTC, JSON columns decoded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

import numpy as np

from carryover.domain.columnar.state import I64, to_us
from carryover.store.instants import utc
from carryover.store.raw_cursor import Raw, us_column

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _instant(value) -> datetime | None:
    """A stored instant (SQLite text, or a driver datetime) as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return utc(value)


def accounts(raw: Raw, ids: list[int]) -> list[tuple]:
    """Name `ids` in `ingest_accounts` (the other reads here read it); the (id, name,
    cycle_start, until, pool_plan_id, cycle_day, timezone) of those that have a current
    cycle, instants aware in UTC."""
    raw.name_accounts(ids)
    rows = raw.run(
        "SELECT a.id, a.name, a.cycle_start, a.until, a.pool_plan_id, a.cycle_day, "
        "a.timezone FROM ingest_accounts t "
        "CROSS JOIN accounts a WHERE a.id = t.id AND a.cycle_start IS NOT NULL")
    if not rows:
        return []
    # Accounts share a few cycle starts but mostly stand at instants of their own: both
    # columns are parsed by numpy, and each distinct instant made a datetime once.
    made: dict[int, datetime | None] = {}
    columns = []
    for k in (2, 3):
        us = us_column([r[k] for r in rows])
        for v in set(us):
            if v not in made:
                made[v] = None if v < 0 else _EPOCH + timedelta(microseconds=v)
        columns.append([made[v] for v in us])
    return [(a, name, start, until, pool_plan, cycle_day, zone)
            for (a, name, _, _, pool_plan, cycle_day, zone), start, until
            in zip(rows, *columns, strict=True)]


def lines(raw: Raw) -> Iterator[tuple]:
    """(id, account_id, msisdn, plan_id, member, limits, alert_thresholds) of the lines of
    the accounts in `ingest_accounts`, by id; the JSON columns decoded."""
    parsed: dict[str, dict] = {}
    for line_id, account_id, msisdn, plan_id, member, limits, picked in raw.run(
            "SELECT l.id, l.account_id, l.msisdn, l.plan_id, l.member, l.limits, "
            "l.alert_thresholds "
            "FROM ingest_accounts t CROSS JOIN lines l WHERE l.account_id = t.id ORDER BY l.id"):
        if isinstance(limits, str):  # SQLite's JSON text; almost always the same '{}'
            if limits not in parsed:
                parsed[limits] = json.loads(limits)
            limits = parsed[limits]
        if isinstance(picked, str):  # SQLite's JSON text
            picked = json.loads(picked)
        yield line_id, account_id, msisdn, plan_id, member, limits, picked


def name_instants(raw: Raw, when: Mapping[int, datetime], expiring_within: timedelta) -> None:
    """Fill the temporary table `notice_instants`: each account's instant, and that
    instant plus `expiring_within`, as the backend stores instants (compared as stored)."""
    kind = "TEXT" if raw.dialect == "sqlite" else "TIMESTAMPTZ"
    raw.run(f"CREATE TEMP TABLE IF NOT EXISTS notice_instants "
            f"(id INTEGER PRIMARY KEY, now {kind} NOT NULL, soon {kind} NOT NULL)")
    # Formatted as one numpy column each: a chunk's accounts mostly stand at instants
    # of their own, so formatting them one by one cost a strftime per account.
    ids = sorted(when)
    now = np.array([to_us(when[a]) for a in ids], dtype=I64)
    within = expiring_within // timedelta(microseconds=1)
    raw.refill("notice_instants", ("id", "now", "soon"),
               list(zip(ids, raw.instants(now), raw.instants(now + within), strict=True)))


def cycle_counters(raw: Raw, cycle: Mapping[int, str]) -> dict[tuple, int]:
    """(account, line, name) -> value of the `used` and `pool` data counters of each
    account's cycle (`cycle`: account id -> its cycle_start text)."""
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


def bucket_facts(raw: Raw) -> dict[tuple, dict]:
    """Per (account, owner): the aggregates of OutboxRepository.bucket_facts, same
    predicates, each account at its instant in `notice_instants` (n.now, and n.soon for
    expiries)."""
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


class NoticeReads:
    """The reads above on one connection's raw cursor, as the chunk's notifier calls them
    (services.notify.ports.ChunkNoticeReads)."""

    def __init__(self, raw: Raw) -> None:
        self._raw = raw

    def accounts(self, ids: list[int]) -> list[tuple]:
        return accounts(self._raw, ids)

    def lines(self) -> Iterator[tuple]:
        return lines(self._raw)

    def name_instants(self, when: Mapping[int, datetime], expiring_within: timedelta) -> None:
        name_instants(self._raw, when, expiring_within)

    def cycle_counters(self, cycle: Mapping[int, str]) -> dict[tuple, int]:
        return cycle_counters(self._raw, cycle)

    def bucket_facts(self) -> dict[tuple, dict]:
        return bucket_facts(self._raw)
