"""The unit of work: one transaction, rolled back unless committed (cosmicpython).

Services open one per use case: `with UnitOfWork(engine) as uow: ...; uow.commit()`.
Leaving the block without `commit()` (an error, a refusal) rolls everything back,
so a use case either happens whole or not at all.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine

from carryover.store.repository import AccountRepository, PlanRepository


class UnitOfWork:
    conn: Connection
    plans: PlanRepository
    accounts: AccountRepository

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._committed = False

    def __enter__(self) -> UnitOfWork:
        self.conn = self.engine.connect()
        self._tx = self.conn.begin()
        self.plans = PlanRepository(self.conn)
        self.accounts = AccountRepository(self.conn)
        self._committed = False
        return self

    def commit(self) -> None:
        self._tx.commit()
        self._committed = True

    def __exit__(self, *exc_info: object) -> None:
        try:
            if not self._committed and self._tx.is_active:
                self._tx.rollback()
        finally:
            self.conn.close()
