"""esim_installed: written by the eSIM notification service when a profile is installed."""

from __future__ import annotations

from sqlalchemy import select

from carryover.adapters.smdp_device import SimulatedDevice
from carryover.store.uow import UnitOfWork
from carryover.store.webhook_tables import outbox
from tests.esim_support import EID_A
from tests.integration.test_es2plus_receiver import world  # noqa: F401 - the fixture


def installed(engine) -> list[dict]:
    with UnitOfWork(engine) as uow:
        return list(uow.conn.execute(select(outbox.c.payload).where(
            outbox.c.kind == "esim_installed")).scalars())


def test_an_installed_profile_is_notified_once(world):  # noqa: F811
    ordered = world.order()
    assert installed(world.engine) == []
    with SimulatedDevice(world.smdp_url, EID_A) as phone:
        phone.download(ordered.activation_code.format())
    found = installed(world.engine)
    assert len(found) == 1
    assert (found[0]["line"], found[0]["iccid"], found[0]["eid"]) == (
        "alice", ordered.iccid, EID_A)
    with SimulatedDevice(world.smdp_url, EID_A) as phone:
        phone.act("disable", ordered.iccid)
        phone.act("enable", ordered.iccid)
    assert len(installed(world.engine)) == 1
