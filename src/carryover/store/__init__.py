"""The store layer: SQLAlchemy Core tables, Alembic migrations and the unit of work,
on SQLite (the embedded default) or PostgreSQL (docs/configuration.md).

Inputs and usage events are the source of truth; the rest is the materialized
state of each account's book (see carryover.store.tables).
"""

# The eSIM tables register on the shared MetaData; importing them with the package keeps
# `metadata` (Alembic, the schema test) complete whichever table module is imported first.
from carryover.store import api_tables as _api_tables  # noqa: F401
from carryover.store import charging_tables as _charging_tables  # noqa: F401
from carryover.store import esim_tables as _esim_tables  # noqa: F401
from carryover.store import portal_tables as _portal_tables  # noqa: F401
from carryover.store import webhook_tables as _webhook_tables  # noqa: F401
