"""Migration carryover_0013 on both backends: eSIM history rows no longer need a profile.

Before it, `esim_events.iccid` referenced `esim_profiles`, so a notification about
an ICCID outside the inventory could not be kept. After the upgrade the existing
history reads back unchanged and such a row can be stored; the downgrade drops only
the rows that would break the key again.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from carryover.store.engine import make_engine
from carryover.store.esim_tables import esim_events, esim_profiles
from carryover.store.schema import downgrade, upgrade
from tests.esim_support import iccid

JAN = datetime(2026, 1, 1, tzinfo=UTC)
PREVIOUS = "carryover_0012"


def event(of: str) -> dict:
    return {"iccid": of, "at": JAN, "source": "notification", "kind": "point 3 Executed",
            "detail": {"outcome": "refused"}}


def test_history_outside_the_inventory_after_the_upgrade_and_back(db_url):
    engine = make_engine(db_url)  # it enforces foreign keys on SQLite too
    upgrade(engine, PREVIOUS)
    held, unknown = iccid(1), iccid(999)
    with engine.begin() as conn:
        conn.execute(insert(esim_profiles).values(
            iccid=held, imsi="262010000000001", profile_type="consumer", state="available",
            imported_at=JAN, updated_at=JAN))
        conn.execute(insert(esim_events).values(**event(held)))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(esim_events).values(**event(unknown)))

    upgrade(engine, "head")
    with engine.begin() as conn:
        conn.execute(insert(esim_events).values(**event(unknown)))
        kept = conn.execute(select(esim_events.c.iccid).order_by(esim_events.c.id)).scalars()
        assert list(kept) == [held, unknown]

    downgrade(engine, PREVIOUS)
    with engine.connect() as conn:
        assert list(conn.execute(select(esim_events.c.iccid)).scalars()) == [held]
        assert conn.execute(select(func.count()).select_from(esim_profiles)).scalar() == 1
    upgrade(engine, "head")
    engine.dispose()
