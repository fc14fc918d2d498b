"""Migration carryover_0019 on both backends: the bulk tables lose their key to `accounts`.

On a database made by the previous schema, with rows in each of `usage_events`,
`ledger_entries`, `buckets`, `counters` and `outbox` (and a webhook delivery of the
outbox row), the upgrade drops `fk_<table>_account_id_accounts` of those five tables
and nothing else: every row reads back as it was, a new row takes the next key, the
indexes (the partial `ix_counters_big` too) and every other foreign key are as they
were (on SQLite, their DDL text is the same), and the schema is what tables.py
declares. The downgrade creates the keys again over the same rows (on SQLite the
schema text is byte for byte the previous revision's), refusing while a row names no
account; a second upgrade drops them again.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from carryover.store.engine import make_engine
from carryover.store.schema import current_revision, downgrade, head_revision, upgrade
from carryover.store.tables import BIG_TOTAL, metadata

PREVIOUS = "carryover_0018"
TABLES = ("usage_events", "ledger_entries", "buckets", "counters", "outbox")
KEYS = {f"fk_{t}_account_id_accounts": t for t in TABLES}
T1 = datetime(2026, 7, 4, 19, 20, 19, tzinfo=UTC)
T2 = datetime(2026, 7, 5, 8, 0, 0, 654321, tzinfo=UTC)
LINE = "ln_462933f46609"
BUCKET = f"{LINE}/data/allowance/2026-07-04T19:20:19Z"
CYCLE = "2026-07-04T19:20:19+00:00"
# Each table's rows in key order, every column (what "as it was" compares).
ORDER = {"usage_events": "seq", "ledger_entries": "seq", "buckets": "account_id, id",
         "counters": "account_id, cycle_start, line, unit, name", "outbox": "id",
         "webhook_deliveries": "id", "inputs": "seq", "lines": "id", "accounts": "id"}
NOWHERE = 9999  # an account id no account has


def _at(engine: Engine, t: datetime) -> datetime:
    return t if engine.dialect.name == "postgresql" else t.replace(tzinfo=None)


def _json(engine: Engine) -> str:
    return "CAST(:payload AS JSON)" if engine.dialect.name == "postgresql" else ":payload"


def fill(engine: Engine) -> int:
    """An account with a line, and rows of it in every table the migration touches, as
    the previous code stored them. Returns the account's id."""
    at = {"t1": _at(engine, T1), "t2": _at(engine, T2)}
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO plans (id, body, source, loaded_at) VALUES ('p', '{}', 'file', :t1)"),
            at)
        conn.execute(text(
            "INSERT INTO accounts (name, cycle_day, timezone, grace_seconds, created_at, "
            "version) VALUES ('acme', 4, 'UTC', 172800, :t1, 0)"), at)
        account = conn.execute(text("SELECT id FROM accounts")).scalar_one()
        conn.execute(text(
            "INSERT INTO lines (id, account_id, msisdn, opened_at, plan_id, member, limits) "
            f"VALUES (:line, :a, '+14155550100', :t1, 'p', :no, {_json(engine)})"),
            {**at, "line": LINE, "a": account, "no": False, "payload": "{}"})
        conn.execute(text(
            "INSERT INTO usage_events (event_id, account_id, line, at, received_at, "
            "effective_at, amount, unit, rating_group, late) VALUES "
            "(:id, :a, :line, :t1, :t2, :eff, :amount, 'data', :rg, :late)"),
            [{**at, "id": f"e{n}", "a": account, "line": LINE, "amount": 1_500_000 * n,
              "rg": "hotspot" if n == 2 else None, "late": n == 3,
              "eff": at["t2"] if n == 3 else at["t1"]} for n in (1, 2, 3)])
        conn.execute(text(
            "INSERT INTO ledger_entries (account_id, effective_at, recorded_at, kind, unit, "
            "amount, bucket_id, owner, line, ref, note) VALUES (:a, :t1, :t2, :kind, 'data', "
            ":amount, :bucket, :line, :line, :ref, :note)"),
            [{**at, "a": account, "kind": kind, "amount": amount, "bucket": bucket,
              "line": LINE, "ref": ref, "note": note}
             for kind, amount, bucket, ref, note in (
                 ("grant", 8_000_000_000, BUCKET, f"open:{LINE}", "p"),
                 ("debit", 1_500_000, BUCKET, "e1", ""),
                 ("overage", 7, None, "e3", ""))])
        conn.execute(text(
            "INSERT INTO buckets (account_id, id, owner, unit, kind, granted, remaining, "
            "valid_from, valid_until, priority, rollable, origin, closed) VALUES (:a, :id, "
            ":line, 'data', :kind, :granted, :remaining, :t1, :until, 10, :yes, :origin, "
            ":closed)"),
            [{**at, "a": account, "id": BUCKET, "line": LINE, "kind": "allowance",
              "granted": 8_000_000_000, "remaining": 7_998_500_000, "until": at["t2"],
              "yes": True, "origin": None, "closed": False},
             {**at, "a": account, "id": f"{LINE}/data/unlimited", "line": LINE,
              "kind": "topup", "granted": None, "remaining": None, "until": None,
              "yes": False, "origin": "t1", "closed": True}])
        conn.execute(text(
            "INSERT INTO counters (account_id, cycle_start, line, unit, name, value) VALUES "
            "(:a, :cycle, :line, 'data', :name, :value)"),
            [{"a": account, "cycle": CYCLE, "line": LINE, "name": "used", "value": 1_500_000},
             {"a": account, "cycle": CYCLE, "line": LINE, "name": "pool",
              "value": BIG_TOTAL + 1}])  # in the partial index
        conn.execute(text(
            "INSERT INTO outbox (account_id, line, cycle_start, kind, at, payload, written_at) "
            f"VALUES (:a, :line, :cycle, 'usage_50', :t1, {_json(engine)}, :t2)"),
            {**at, "a": account, "line": LINE, "cycle": CYCLE,
             "payload": '{"kind": "usage_50", "line": "ln_462933f46609"}'})
        conn.execute(text(
            "INSERT INTO webhook_endpoints (id, url, secret, since_outbox_id, created_at) "
            "VALUES ('wh_1', 'https://example.com/hook', 's3cret', 0, :t1)"), at)
        conn.execute(text(
            "INSERT INTO webhook_deliveries (endpoint_id, outbox_id, status, attempts, "
            "next_attempt_at) VALUES ('wh_1', 1, 'pending', 0, :t2)"), at)
    return account


def rows(engine: Engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY {o}"))]
                for t, o in ORDER.items()}


def foreign_keys(engine: Engine) -> dict[str, tuple]:
    """Every foreign key of the schema: name -> (table, columns, referred table)."""
    with engine.connect() as conn:
        found = inspect(conn)
        return {fk["name"]: (table, tuple(fk["constrained_columns"]), fk["referred_table"])
                for table in found.get_table_names() for fk in found.get_foreign_keys(table)}


def ddl(engine: Engine) -> dict[tuple[str, str], tuple]:
    """Each index's (and on SQLite each table's) definition as the database keeps it; on
    SQLite with its root page, which moves when a table or index is built again."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return {(kind, name): (sql, page) for kind, name, sql, page in conn.execute(text(
                "SELECT type, name, sql, rootpage FROM sqlite_master "
                "WHERE name != 'alembic_version'"))}
        return {("index", name): (sql,) for name, sql in conn.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"))}


def without_key(table: str, sql: str | None) -> str | None:
    """SQLite's CREATE TABLE text of `table` without its key to accounts."""
    clause = (f", \n\tCONSTRAINT fk_{table}_account_id_accounts FOREIGN KEY(account_id) "
              "REFERENCES accounts (id)")
    return None if sql is None else sql.replace(clause, "")


def schema_diff(engine: Engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                metadata)


def add_event(engine: Engine, event_id: str, account: int) -> int:
    with engine.begin() as conn:
        return conn.execute(text(
            "INSERT INTO usage_events (event_id, account_id, line, at, effective_at, amount, "
            "unit, late) VALUES (:id, :a, :line, :t, :t, 1, 'data', :late) RETURNING seq"),
            {"id": event_id, "a": account, "line": LINE, "t": _at(engine, T2),
             "late": False}).scalar_one()


def add_counter(engine: Engine, account: int) -> None:
    # A counter, not an event: a failed insert would still take a number of a sequence.
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO counters (account_id, cycle_start, line, unit, name, value) VALUES "
            "(:a, :cycle, :line, 'data', 'used', 1)"),
            {"a": account, "cycle": CYCLE, "line": LINE})


def add_entry(engine: Engine, account: int) -> int:
    with engine.begin() as conn:
        return conn.execute(text(
            "INSERT INTO ledger_entries (account_id, effective_at, recorded_at, kind, unit, "
            "amount, ref, note) VALUES (:a, :t, :t, 'debit', 'data', 1, 'x', '') "
            "RETURNING seq"), {"a": account, "t": _at(engine, T2)}).scalar_one()


def test_the_bulk_keys_go_and_the_rows_stay(db_url: str) -> None:
    engine = make_engine(db_url)  # foreign keys enforced on SQLite too
    upgrade(engine, PREVIOUS)
    account = fill(engine)
    keys_before, ddl_before, before = foreign_keys(engine), ddl(engine), rows(engine)
    assert set(KEYS) <= set(keys_before)
    with pytest.raises(IntegrityError):
        add_counter(engine, NOWHERE)
    held = engine.connect()  # a connection opened before the upgrade sees it too
    held.execute(text("SELECT count(*) FROM usage_events")).all()
    held.commit()

    upgrade(engine, "head")

    assert current_revision(engine) == head_revision()
    assert foreign_keys(engine) == {n: k for n, k in keys_before.items() if n not in KEYS}
    assert rows(engine) == before
    assert schema_diff(engine) == []
    after = ddl(engine)
    assert {k: v for k, v in after.items() if k[0] == "index"} == {
        k: v for k, v in ddl_before.items() if k[0] == "index"}
    if engine.dialect.name == "sqlite":  # each table's text loses its key's clause, no more
        assert after == {(kind, name): (without_key(name, sql) if name in TABLES else sql,
                                        page)
                         for (kind, name), (sql, page) in ddl_before.items()}
        assert {name for (_, name), d in after.items() if d != ddl_before[_, name]} == set(
            TABLES)
    # The keys go on counting where they were; a row may name any account id now.
    last_event, last_entry = before["usage_events"][-1][0], before["ledger_entries"][-1][0]
    assert add_event(engine, "e4", account) == last_event + 1
    assert add_entry(engine, account) == last_entry + 1
    held.execute(text(
        "INSERT INTO usage_events (event_id, account_id, line, at, effective_at, amount, "
        "unit, late) VALUES ('orphan', :a, :line, :t, :t, 1, 'data', :late)"),
        {"a": NOWHERE, "line": LINE, "t": _at(engine, T2), "late": False})
    held.commit()
    held.close()
    with pytest.raises(IntegrityError), engine.begin() as conn:  # the kept keys hold
        conn.execute(text(
            "INSERT INTO inputs (account_id, input_id, kind, at, body) VALUES "
            f"(:a, 'i1', 'top_up', :t, {_json(engine)})"),
            {"a": NOWHERE, "t": _at(engine, T2), "payload": "{}"})

    # Back: refused while a row names no account, and nothing changes.
    with pytest.raises(RuntimeError, match="usage_events has 1 rows whose account_id"):
        downgrade(engine, PREVIOUS)
    assert current_revision(engine) == head_revision()
    assert foreign_keys(engine) == {n: k for n, k in keys_before.items() if n not in KEYS}
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM usage_events WHERE event_id IN ('orphan', 'e4')"))
        conn.execute(text("DELETE FROM ledger_entries WHERE ref = 'x'"))

    downgrade(engine, PREVIOUS)

    assert current_revision(engine) == PREVIOUS
    assert foreign_keys(engine) == keys_before
    assert rows(engine) == before
    restored = ddl(engine)
    if engine.dialect.name == "sqlite":
        assert restored == ddl_before  # byte for byte
    else:
        assert {k: v for k, v in restored.items() if k[0] == "index"} == {
            k: v for k, v in ddl_before.items() if k[0] == "index"}
    with pytest.raises(IntegrityError):
        add_counter(engine, NOWHERE)

    upgrade(engine, "head")

    assert foreign_keys(engine) == {n: k for n, k in keys_before.items() if n not in KEYS}
    assert rows(engine) == before
    assert schema_diff(engine) == []
    assert ddl(engine) == after
    # SQLite hands out the next rowid (max + 1), PostgreSQL its sequence's next value.
    expected = last_event + (1 if engine.dialect.name == "sqlite" else 3)
    assert add_event(engine, "e5", account) == expected
    engine.dispose()
