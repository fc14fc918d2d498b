"""The one application object shared by the CLI, the API and the tests (datasette style).

`Carryover` holds the settings and the database engine. `open()` makes the
database ready: it creates or upgrades the schema (or refuses a database it
cannot use, with one line saying why) and seeds the presets, once per process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from carryover.services import time_window
from carryover.services.catalog import seed_presets
from carryover.settings import Settings, get_settings
from carryover.store.engine import make_engine
from carryover.store.schema import ensure_schema
from carryover.store.uow import UnitOfWork


@dataclass
class Carryover:
    settings: Settings = field(default_factory=get_settings)
    _engine: Engine | None = None

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
