"""The one application object shared by the CLI, the API and the tests (datasette style).

`Carryover` is the composition root: it holds the settings and builds, once, every
long-lived part a process shares: the database engine (`open()` creates or
upgrades the schema, or refuses a database it cannot use with one line saying
why, and seeds the presets), and for a serving process the API-key cache, the
rate limiter, the Prometheus metrics, the Nchf charging queue (group commit) and
the ES2+ client factory. Everything else receives these from here; nothing keeps
its own copy on the web framework's state. `close()` stops what runs threads.

The serving parts are built on first use and import the web stack only then, so
a CLI command that never serves pays nothing for them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from carryover import gc_tuning
from carryover.services.ledger import time_window
from carryover.services.ledger.catalog import seed_presets
from carryover.settings import Settings, get_settings
from carryover.store.engine import make_engine
from carryover.store.schema import ensure_schema
from carryover.store.uow import UnitOfWork

if TYPE_CHECKING:
    from carryover.api.ops import Metrics
    from carryover.services.access.api_keys import KeyCache
    from carryover.services.charging.queue import ChargingQueue


@dataclass
class Carryover:
    settings: Settings = field(default_factory=get_settings)
    # Makes an ES2+ client; tests give one that talks to their emulator.
    smdp_factory: Callable[[], Any] | None = None
    _engine: Engine | None = None
    _charging: ChargingQueue | None = field(default=None, repr=False)
    _charging_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def grace(self) -> timedelta:
        return timedelta(hours=self.settings.grace_hours)

    def open(self) -> Engine:
        """The engine of a database at this code's schema, with the presets loaded."""
        if self._engine is None:
            engine = make_engine(self.settings.database_url, echo=self.settings.echo_sql,
                                 busy_timeout=self.settings.sqlite_busy_timeout,
                                 statement_timeout=self.settings.statement_timeout_seconds)
            time_window.configure(self.settings.clock_skew_seconds,
                                  self.settings.read_ahead_days)
            ensure_schema(engine)
            with UnitOfWork(engine) as uow:
                if not uow.plans.sources():
                    seed_presets(uow, datetime.now(UTC))
                    uow.commit()
            self._engine = engine
        return self._engine

    def uow(self) -> UnitOfWork:
        """A unit of work on the database (`open()`): what every service takes."""
        return UnitOfWork(self.open())

    # ---- the parts a serving process shares ----------------------------------------
    @cached_property
    def key_cache(self) -> KeyCache:
        from carryover.services.access.api_keys import KeyCache
        return KeyCache(self.settings.api_key_cache_seconds)

    @cached_property
    def limiter(self) -> Any:
        """The per-key rate limiter `api_rate_limit_store` asks for."""
        from carryover.services.access.rate_limits import make_limiter
        return make_limiter(self.settings, lambda: UnitOfWork(self.open()))

    @cached_property
    def metrics(self) -> Metrics:
        from carryover.api.ops import Metrics
        return Metrics(self.open)

    def smdp_client(self) -> Any:
        """A new ES2+ client to the SM-DP+ (`smdp_factory`, else the settings')."""
        if self.smdp_factory is not None:
            return self.smdp_factory()
        from carryover.adapters.es2plus_client import Es2PlusClient
        return Es2PlusClient.from_settings(self.settings)

    def charging(self) -> ChargingQueue:
        """The Nchf charging queue (group commit), started on first use."""
        with self._charging_guard:
            if self._charging is None:
                from carryover.services.charging.model import ChargingPolicy
                from carryover.services.charging.queue import ChargingQueue
                engine = self.open()
                # SQLite has one writer at a time: a second lane would only wait for it.
                lanes = 1 if engine.dialect.name == "sqlite" else self.settings.nchf_lanes
                metrics = self.metrics

                def observe(requests: int, seconds: float) -> None:
                    metrics.nchf_batch.observe(requests)
                    metrics.nchf_batch_seconds.observe(seconds)
                self._charging = ChargingQueue(
                    lambda: UnitOfWork(engine), ChargingPolicy.from_settings(self.settings),
                    self.settings.nchf_max_batch, lanes, observe,
                    self.settings.nchf_cached_accounts)
            return self._charging

    def close(self) -> None:
        """Answer what the charging queue holds, then stop its thread (a later use
        starts a new one)."""
        with self._charging_guard:
            charging, self._charging = self._charging, None
        if charging is not None:
            charging.close()

    @staticmethod
    def tune_for_serving() -> None:
        """Fewer, shorter garbage-collector pauses in a serving worker process
        (gc_tuning.for_serving)."""
        gc_tuning.for_serving()
