"""An ingest chunk holds the accounts it rates from before it reads them until it
commits, as every other writer does, so a concurrent top-up or Nchf batch waits
for the chunk instead of being overwritten by it: on PostgreSQL by their row locks
(only those accounts), on SQLite by the write transaction (the whole database)."""

from __future__ import annotations

from sqlalchemy import text

from carryover.services.ingest.state_cache import AccountCache
from carryover.services.ledger import provisioning
from carryover.store.uow import UnitOfWork
from tests.api_support import JAN

PLAN = {"id": "lk-1gb", "name": "1 GB", "kind": "metered", "allowance": {"data": "1GB"},
        "overage": {"action": "block"}}


def test_a_chunk_holds_its_accounts_until_it_commits(engine) -> None:
    with UnitOfWork(engine) as uow:
        uow.plans.upsert(PLAN["id"], PLAN, "file", JAN)
        uow.commit()
    mine = provisioning.create_account(UnitOfWork(engine), "chunk", 1, "UTC", JAN)
    other = provisioning.create_account(UnitOfWork(engine), "other", 1, "UTC", JAN)
    for n, name in enumerate(("chunk", "other")):
        provisioning.create_line(UnitOfWork(engine), name, f"+141555500{n}0", JAN, PLAN["id"])

    def can_lock(account_id: int) -> bool:
        if engine.dialect.name == "sqlite":  # one writer at a time, whatever the account
            import sqlite3
            other_writer = sqlite3.connect(engine.url.database, timeout=0.3,
                                           isolation_level=None)
            try:
                other_writer.execute("BEGIN IMMEDIATE")
                other_writer.execute("ROLLBACK")
                return True
            except sqlite3.OperationalError as exc:
                assert "locked" in str(exc)
                return False
            finally:
                other_writer.close()
        with engine.connect() as conn:
            conn.execute(text("SET lock_timeout = '300ms'"))
            try:
                conn.execute(text("SELECT id FROM accounts WHERE id = :a FOR NO KEY UPDATE"),
                             {"a": account_id})
            except Exception as exc:  # LockNotAvailable, wrapped by SQLAlchemy
                assert "lock" in str(exc).lower()
                return False
            finally:
                conn.rollback()
            return True

    with UnitOfWork(engine) as uow:
        AccountCache().prepare(uow.ingest, [mine])
        assert not can_lock(mine)  # another writer of this account waits
        if engine.dialect.name == "postgresql":
            assert can_lock(other)  # only the chunk's accounts are held
        uow.commit()
    assert can_lock(mine)
