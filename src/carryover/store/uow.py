"""The unit of work: one transaction, rolled back unless committed (cosmicpython).

A service is given one (the CLI's `uow()`, `Carryover.uow()`, the API's routes) and
runs each transaction as a block of it: `with uow: ...; uow.commit()`, again and
again, each block a new transaction on the repositories hung on it (`uow.accounts`,
`uow.charging`, ...). Leaving a block without `commit()` (an error, a refusal)
rolls everything back, so a use case either happens whole or not at all.

On SQLite the threads of one process that write (the API's request threads)
queue on an in-process lock before BEGIN IMMEDIATE. SQLite itself would make
them wait too, but its busy handler polls with sleeps of up to 100 ms, so under
concurrent requests most of a request's time went to sleeping on a lock that
had long been free; a Python lock hands over at once. Other processes still
meet at SQLite's lock. Read-only units of work (store.engine.read_only) do not
take it.

A write the database refuses on a constraint (most often a unique key a racing
writer took first) reaches a service as the service error it names with
`refuse_taken`, never as a database exception.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from carryover.store.api_repository import ApiRepository, IdempotencyRepository, KeyRepository
from carryover.store.charging_repository import ChargingRepository
from carryover.store.delivery_lock import DeliveryLock, try_lock
from carryover.store.engine import READ_ONLY_OPTION, read_only
from carryover.store.esim_repository import EsimRepository
from carryover.store.ingest_repository import IngestRepository
from carryover.store.line_import_repository import LineImportRepository
from carryover.store.metrics_repository import MetricsRepository
from carryover.store.outbox import OutboxRepository
from carryover.store.plan_repository import PlanRepository
from carryover.store.portal_repository import PortalRepository
from carryover.store.reauthorization_repository import ReauthorizationRepository
from carryover.store.repository import AccountRepository
from carryover.store.wal_checkpoints import BackgroundCheckpoints
from carryover.store.webhook_repository import WebhookRepository

if TYPE_CHECKING:
    from carryover.services.errors import ServiceError

_writers: dict[str, threading.RLock] = {}
_writers_guard = threading.Lock()


class _Refusing:
    """The context manager of `UnitOfWork.refuse_taken` (a class: it is on the
    single-event path, where a generator-based one costs more)."""

    __slots__ = ("error",)

    def __init__(self, error: ServiceError) -> None:
        self.error = error

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, value: BaseException | None, tb: object) -> bool:
        if kind is not None and issubclass(kind, IntegrityError):
            raise self.error from value
        return False


def _writer_lock(engine: Engine) -> threading.RLock | None:
    if engine.dialect.name != "sqlite" or engine.get_execution_options().get(READ_ONLY_OPTION):
        return None
    key = engine.url.render_as_string(hide_password=False)
    with _writers_guard:
        return _writers.setdefault(key, threading.RLock())


class UnitOfWork:
    conn: Connection
    plans: PlanRepository
    accounts: AccountRepository
    charging: ChargingRepository
    reauthorizations: ReauthorizationRepository
    esim: EsimRepository
    keys: KeyRepository
    idempotency: IdempotencyRepository
    outbox: OutboxRepository
    metrics: MetricsRepository
    portal: PortalRepository
    webhooks: WebhookRepository
    directory: ApiRepository
    line_import: LineImportRepository
    ingest: IngestRepository

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._committed = False

    def __enter__(self) -> UnitOfWork:
        self._lock = _writer_lock(self.engine)
        if self._lock is not None:
            self._lock.acquire()
        try:
            self.conn = self.engine.connect()
            self._tx = self.conn.begin()
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise
        self.plans = PlanRepository(self.conn)
        self.accounts = AccountRepository(self.conn)
        self.charging = ChargingRepository(self.conn, self.accounts)
        self.reauthorizations = ReauthorizationRepository(self.conn)
        self.esim = EsimRepository(self.conn)
        self.keys = KeyRepository(self.conn)
        self.idempotency = IdempotencyRepository(self.conn)
        self.outbox = OutboxRepository(self.conn)
        self.metrics = MetricsRepository(self.conn)
        self.portal = PortalRepository(self.conn)
        self.webhooks = WebhookRepository(self.conn)
        self.directory = ApiRepository(self.conn)
        self.line_import = LineImportRepository(self.conn)
        self.ingest = IngestRepository(self.conn)
        self._committed = False
        return self

    def commit(self) -> None:
        self._tx.commit()
        self._committed = True

    def refuse_taken(self, error: ServiceError) -> _Refusing:
        """Within: a statement (or the commit) the database refuses on a constraint
        raises `error`, chained to the database's exception. The transaction is then
        unusable (PostgreSQL aborts it): the unit of work ends with `error`."""
        return _Refusing(error)

    def reading(self) -> UnitOfWork:
        """A unit of work on the same database for reads only (store.engine.read_only):
        on SQLite it neither queues for the writer lock nor takes it."""
        return UnitOfWork(read_only(self.engine))

    def another(self) -> UnitOfWork:
        """A new unit of work on the same database (read-only if this one is), for a
        thread of its own: one unit of work runs one transaction at a time."""
        return UnitOfWork(self.engine)

    # What is not a transaction but needs the database's engine: the services ask the
    # unit of work for it, so they never hold an engine.
    def background_checkpoints(self, enabled: bool = True) -> BackgroundCheckpoints:
        """WAL checkpoints on a thread with its own connection, beside this unit of
        work's bulk writes (store.wal_checkpoints; nothing to do unless a SQLite file)."""
        return BackgroundCheckpoints(self.engine, enabled)

    def delivery_lock(self) -> DeliveryLock | None:
        """Take the deployment's webhook delivery-loop lock (store.delivery_lock: held on
        a connection or a file of its own, outside any transaction), or None when
        another process holds it."""
        return try_lock(self.engine)

    def __exit__(self, *exc_info: object) -> None:
        try:
            if not self._committed and self._tx.is_active:
                self._tx.rollback()
        finally:
            try:
                self.conn.close()
            finally:
                if self._lock is not None:
                    self._lock.release()
