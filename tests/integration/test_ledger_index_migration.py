"""Migration carryover_0018 on both backends: the ledger loses `ix_ledger_account_bucket`.

On a database made by the previous schema, with ledger rows in it, the upgrade
drops the index and nothing else: every row is as it was, the engine reads the
account's entries and per-bucket totals as before, and the schema is exactly what
tables.py declares. The downgrade creates the index again over the same rows.
"""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from carryover.store.engine import make_engine
from carryover.store.schema import current_revision, downgrade, head_revision, upgrade
from carryover.store.tables import metadata
from carryover.store.uow import UnitOfWork

PREVIOUS = "carryover_0017"
INDEX = "ix_ledger_account_bucket"
T1 = datetime(2026, 7, 4, 19, 20, 19, tzinfo=UTC)
T2 = datetime(2026, 8, 4, 19, 20, 19, tzinfo=UTC)
NOW = datetime(2026, 8, 5, 0, 0, 0, 123456, tzinfo=UTC)
ALLOWANCE = "ln_462933f46609/data/allowance/2026-07-04T19:20:19Z"
ROLLOVER = "ln_462933f46609/data/rollover/2026-08-04T19:20:19Z"
LINE = "ln_462933f46609"
# (effective_at, kind, amount, bucket_id, owner, line, ref, note)
ROWS = [(T1, "grant", 8_000_000_000, ALLOWANCE, LINE, LINE, f"open:{LINE}",
         "verizon-carryover-8gb"),
        (T1, "debit", 1_500_000, ALLOWANCE, LINE, LINE, "u1", ""),
        (T1, "debit", 2_500_000, ALLOWANCE, LINE, LINE, "u2", ""),
        (T2, "rollover_out", 7_996_000_000, ALLOWANCE, LINE, None, "boundary", "carried"),
        (T2, "rollover_in", 7_996_000_000, ROLLOVER, LINE, None, "boundary", "carried"),
        (T2, "overage", 7, None, LINE, LINE, "u9", "")]


def _stored(engine, t: datetime) -> datetime:
    return t if engine.dialect.name == "postgresql" else t.replace(tzinfo=None)


def ledger_indexes(engine) -> dict[str, list[str]]:
    with engine.connect() as conn:
        return {i["name"]: i["column_names"] for i in inspect(conn).get_indexes("ledger_entries")}


def ledger_rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT seq, account_id, effective_at, recorded_at, kind, unit, amount, bucket_id, "
            "owner, line, ref, note FROM ledger_entries ORDER BY seq"))]


def schema_diff(engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                metadata)


def test_the_bucket_index_goes_and_the_rows_stay(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine, PREVIOUS)
    assert ledger_indexes(engine) == {"ix_ledger_account_effective": ["account_id",
                                                                      "effective_at"],
                                      INDEX: ["account_id", "bucket_id"]}
    with engine.begin() as conn:  # as the previous code stored them
        conn.execute(text(
            "INSERT INTO accounts (name, cycle_day, timezone, grace_seconds, created_at, "
            "version) VALUES ('acme', 4, 'UTC', 172800, :at, 0)"), {"at": _stored(engine, T1)})
        account = conn.execute(text("SELECT id FROM accounts")).scalar_one()
        conn.execute(text(
            "INSERT INTO ledger_entries (account_id, effective_at, recorded_at, kind, unit, "
            "amount, bucket_id, owner, line, ref, note) VALUES (:a, :at, :rec, :kind, 'data', "
            ":amount, :bucket, :owner, :line, :ref, :note)"),
            [{"a": account, "at": _stored(engine, at), "rec": _stored(engine, NOW),
              "kind": kind, "amount": amount, "bucket": bucket, "owner": owner, "line": line,
              "ref": ref, "note": note}
             for at, kind, amount, bucket, owner, line, ref, note in ROWS])
    before = ledger_rows(engine)
    assert len(before) == len(ROWS)

    upgrade(engine, "head")

    assert current_revision(engine) == head_revision()
    assert ledger_indexes(engine) == {"ix_ledger_account_effective": ["account_id",
                                                                      "effective_at"]}
    assert ledger_rows(engine) == before
    assert schema_diff(engine) == []
    with UnitOfWork(engine) as uow:
        entries = uow.accounts.entries(account)
        totals = list(uow.accounts.booked_totals(account))
    assert [(e.effective_at, e.recorded_at, str(e.kind), e.amount, e.bucket_id, e.owner,
             e.line, e.ref, e.note) for e in entries] == [
        (at, NOW, kind, amount, bucket, owner, line, ref, note)
        for at, kind, amount, bucket, owner, line, ref, note in ROWS]
    # The two debits of the allowance on T1 are summed; everything else is its own row.
    assert sorted((key[0] or "", str(key[4]), at, value) for key, at, value in totals) == [
        ("", "overage", T2, 7), (ALLOWANCE, "debit", T1, 4_000_000),
        (ALLOWANCE, "grant", T1, 8_000_000_000), (ALLOWANCE, "rollover_out", T2, 7_996_000_000),
        (ROLLOVER, "rollover_in", T2, 7_996_000_000)]

    downgrade(engine, PREVIOUS)

    assert ledger_indexes(engine)[INDEX] == ["account_id", "bucket_id"]
    assert ledger_rows(engine) == before
    upgrade(engine, "head")
    assert INDEX not in ledger_indexes(engine)
    assert ledger_rows(engine) == before
