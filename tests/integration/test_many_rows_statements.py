"""store.many_rows and store.pipelined on SQLite and PostgreSQL: one statement for
many rows (unnest on PostgreSQL) writes exactly what one statement per row writes,
NULLs, JSON, instants and ON CONFLICT included; pipelined reads return what plain
reads return."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, insert, select, update

from carryover.services.ledger import provisioning
from carryover.store.many_rows import OnConflict, insert_many, update_many
from carryover.store.pipelined import read_all
from carryover.store.tables import accounts, buckets, counters, lines
from carryover.store.uow import UnitOfWork
from tests.api_support import JAN

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def account(engine) -> int:
    return provisioning.create_account(UnitOfWork(engine), "bulk", 1, "UTC", JAN)


def bucket(account_id: int, n: int, **changes) -> dict:
    row = {"account_id": account_id, "id": f"b{n}", "owner": "l1", "unit": "data",
           "kind": "topup", "granted": 1000 * n, "remaining": 1000 * n,
           "valid_from": T0 + timedelta(hours=n), "valid_until": None if n % 2 else
           T0 + timedelta(days=n), "priority": n, "rollable": bool(n % 2), "origin": None,
           "closed": False}
    return {**row, **changes}


def stored(engine, table, order) -> list:
    with engine.connect() as conn:
        return list(conn.execute(select(table).order_by(*order)))


def test_insert_many_and_update_many_write_what_row_by_row_writes(engine, account) -> None:
    rows = [bucket(account, n) for n in range(1, 6)]
    with UnitOfWork(engine) as uow:
        insert_many(uow.conn, buckets, rows)
        uow.commit()
    want = [bucket(account, n) for n in range(1, 6)]
    got = stored(engine, buckets, [buckets.c.id])
    columns = ("id", "granted", "remaining", "valid_from", "valid_until", "priority",
               "rollable", "origin", "closed")
    assert [tuple(getattr(r, c) for c in columns) for r in got] == [
        tuple(w[c] for c in columns) for w in want]
    # Update some of them, with NULLs going in and out, and one row left alone.
    changes = [bucket(account, 1, remaining=None, origin="x", valid_until=T0),
               bucket(account, 4, remaining=0, closed=True, valid_until=None)]
    sets = ("remaining", "origin", "valid_until", "closed")
    with UnitOfWork(engine) as uow:
        update_many(uow.conn, buckets, ("account_id", "id"), sets, changes)
        uow.commit()
    got = {r.id: r for r in stored(engine, buckets, [buckets.c.id])}
    assert (got["b1"].remaining, got["b1"].origin, got["b1"].valid_until) == (None, "x", T0)
    assert (got["b4"].remaining, got["b4"].closed, got["b4"].valid_until) == (0, True, None)
    assert got["b1"].closed is False and got["b4"].origin is None
    assert got["b2"].remaining == 2000 and got["b3"].remaining == 3000  # untouched


def test_update_many_adds_its_also_clause_once_per_row(engine, account) -> None:
    with engine.connect() as conn:
        before = conn.execute(select(accounts.c.version).where(accounts.c.id == account)
                              ).scalar_one()
    with UnitOfWork(engine) as uow:
        update_many(uow.conn, accounts, ("id",), ("last_key",),
                    [{"id": account, "last_key": ["2026-03-01T12:00:00+00:00", 1, "e"]}],
                    also="version = version + 1")
        uow.commit()
    with engine.connect() as conn:
        row = conn.execute(select(accounts.c.version, accounts.c.last_key)
                           .where(accounts.c.id == account)).one()
    assert row.version == before + 1
    assert row.last_key == ["2026-03-01T12:00:00+00:00", 1, "e"]  # JSON round trip


def test_insert_many_upserts_and_keeps_as_its_conflict_rule_says(engine, account) -> None:
    replace = OnConflict(("account_id", "cycle_start", "line", "unit", "name"), ("value",))
    keep = OnConflict(("account_id", "cycle_start", "line", "unit", "name"))

    def row(line: str, value: int) -> dict:
        return {"account_id": account, "cycle_start": "2026-03-01T00:00:00+00:00",
                "line": line, "unit": "data", "name": "used", "value": value}
    with UnitOfWork(engine) as uow:
        insert_many(uow.conn, counters, [row("a", 1), row("b", 2)], replace)
        insert_many(uow.conn, counters, [row("b", 20), row("c", 3)], replace)
        insert_many(uow.conn, counters, [row("c", 30), row("d", 4)], keep)
        uow.commit()
    got = [(r.line, r.value) for r in stored(engine, counters, [counters.c.line])]
    assert got == [("a", 1), ("b", 20), ("c", 3), ("d", 4)]
    # No rule: a taken key is refused (by the driver itself on PostgreSQL's path).
    with pytest.raises(Exception, match=r"(?i)unique|duplicate key"), UnitOfWork(engine) as uow:
        insert_many(uow.conn, counters, [row("a", 5)])


def test_naive_instants_are_refused_by_both_paths(engine, account) -> None:
    naive = bucket(account, 1, valid_from=datetime(2026, 3, 1, 12))
    with pytest.raises(Exception, match="naive"), UnitOfWork(engine) as uow:
        insert_many(uow.conn, buckets, [naive, bucket(account, 2)])


def test_read_all_returns_what_each_read_returns(engine, account) -> None:
    plan = {"id": "p1", "name": "1 GB", "kind": "metered", "allowance": {"data": "1GB"},
            "overage": {"action": "block"}}
    with UnitOfWork(engine) as uow:
        uow.plans.upsert("p1", plan, "file", JAN)
        uow.commit()
    provisioning.create_line(UnitOfWork(engine), "bulk", "+14155550111", JAN, "p1", line_id="l1",
                             imsi="310260000000111")
    by_account = select(lines.c.id, lines.c.opened_at, lines.c.limits).where(
        lines.c.account_id.in_(bindparam("ids", expanding=True)))
    live = select(buckets.c.id, buckets.c.remaining).where(
        buckets.c.account_id == bindparam("a")).order_by(buckets.c.id)
    queries = [(by_account, {"ids": [account, account + 999]}), (live, {"a": account}),
               (select(accounts.c.name).where(accounts.c.id == bindparam("a")), {"a": 0})]
    with UnitOfWork(engine) as uow:
        together = read_all(uow.conn, queries)
        alone = [uow.conn.execute(q, p).all() for q, p in queries]
    assert [[tuple(r) for r in rows] for rows in together] == \
        [[tuple(r) for r in rows] for rows in alone]
    assert together[0][0].id == "l1" and together[2] == []
    assert together[1]  # the line's plan granted a bucket


def test_awkward_values_and_json_null_are_written_as_the_dialect_statement_writes(
        engine, account) -> None:
    """Quotes, backslashes, unicode, the largest amount, microseconds, offsets other than
    UTC, nested JSON and a JSON null: each written once by insert_many/update_many and
    once by SQLAlchemy's own statement, then read back (and asked `IS NULL`) alike."""
    berlin = timezone(timedelta(hours=2))
    odd = 'a"b\\c\'d\nÿ€𝄞'

    def row(n: int, **changes) -> dict:
        return {**bucket(account, n), "owner": odd, "granted": 2**63 - 1,
                "remaining": -(2**63) + 1,
                "valid_from": datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=berlin),
                "valid_until": datetime(2026, 3, 9, 7, tzinfo=timezone(-timedelta(hours=5))),
                **changes}
    other = provisioning.create_account(UnitOfWork(engine), "b2", 1, "UTC", JAN)
    with UnitOfWork(engine) as uow:
        insert_many(uow.conn, buckets, [row(1), row(3)])
        uow.conn.execute(insert(buckets), [row(2), row(4)])
        # accounts.last_key stores None as JSON null (SQLAlchemy's default for JSON).
        update_many(uow.conn, accounts, ("id",), ("last_key",),
                    [{"id": account, "last_key": None}])
        uow.conn.execute(update(accounts).where(accounts.c.id == other).values(last_key=None))
        uow.commit()
    got = {r.id: r for r in stored(engine, buckets, [buckets.c.id])}
    columns = ("owner", "granted", "remaining", "valid_from", "valid_until")
    assert [tuple(getattr(got[b], c) for c in columns) for b in ("b1", "b3")] == \
        [tuple(getattr(got[b], c) for c in columns) for b in ("b2", "b4")]
    assert got["b1"].owner == odd and got["b1"].valid_from == row(1)["valid_from"]
    assert got["b1"].granted == 2**63 - 1 and got["b1"].remaining == -(2**63) + 1
    with engine.connect() as conn:
        is_null = [conn.execute(select(accounts.c.last_key.is_(None))
                                .where(accounts.c.id == a)).scalar_one()
                   for a in (account, other)]
    assert is_null == [False, False]  # JSON null on both paths, not SQL NULL on one
