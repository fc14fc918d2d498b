"""Migration carryover_0016 on both backends: charging sessions get `create_key`, unique
among open sessions, and `last_digest`.

A session the previous schema stored comes through with neither and goes on being
charged: a request with its last number is still its retransmission (no digest to
compare), the next number is answered and stores its digest. A new create stores
its key, and the index refuses a second open session of the same create while a
released one does not count; the downgrade drops both columns and keeps the
sessions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from carryover.services.charging.group_commit import charge
from carryover.services.charging.model import (
    ChargingAnswer,
    ChargingOp,
    ChargingPolicy,
    ChargingRequest,
    UnitRequest,
    create_key,
)
from carryover.services.ledger import catalog, provisioning
from carryover.settings import Settings
from carryover.store.charging_tables import charging_sessions
from carryover.store.engine import make_engine
from carryover.store.schema import downgrade, upgrade
from carryover.store.uow import UnitOfWork

JAN = datetime(2026, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
PREVIOUS = "carryover_0015"
MB = 1024**2
POLICY = ChargingPolicy.from_settings(Settings(nchf_max_grant=10 * MB))
KEY = create_key({"nodeFunctionality": "SMF"}, "imsi-310260000000901",
                 {"chargingId": 1, "pduSessionID": 1}, 0)


def columns(engine) -> set[str]:
    with engine.connect() as conn:
        return {c["name"] for c in inspect(conn).get_columns("charging_sessions")}


def create(key: str | None) -> ChargingOp:
    return ChargingOp("create", ChargingRequest(
        T0, 0, (UnitRequest(1, True, MB),), "imsi-310260000000901", key))


def insert_open(engine, ref: str, key: str, released: bool = False) -> None:
    with engine.begin() as conn:
        conn.execute(charging_sessions.insert().values(
            ref=ref, account_id=1, line="L1", subscriber="imsi-310260000000901",
            opened_at=T0, updated_at=T0, sequence=0, last_result=[],
            released_at=T0 if released else None, create_key=key))


def test_sessions_of_the_previous_schema_go_on_and_new_creates_are_keyed(db_url):
    engine = make_engine(db_url)
    upgrade(engine, "head")
    with UnitOfWork(engine) as uow:
        catalog.seed_presets(uow, JAN)
        uow.commit()
    provisioning.create_account(UnitOfWork(engine), "old", 1, "UTC", JAN)
    provisioning.create_line(UnitOfWork(engine), "old", "+14155550901", JAN,
                             "tmobile-data-stash-10gb", line_id="L1", imsi="310260000000901")
    downgrade(engine, PREVIOUS)
    assert not {"create_key", "last_digest"} & columns(engine)
    with engine.begin() as conn:  # a session as the previous code stored it
        conn.execute(text(
            "INSERT INTO charging_sessions (ref, account_id, line, subscriber, opened_at, "
            "updated_at, sequence, last_result) VALUES ('old-ref', 1, 'L1', "
            "'imsi-310260000000901', :t, :t, 0, '[]')"), {"t": T0})

    upgrade(engine, "head")

    with engine.connect() as conn:
        assert conn.execute(select(charging_sessions.c.ref, charging_sessions.c.create_key,
                                   charging_sessions.c.last_digest)
                            ).all() == [("old-ref", None, None)]
    (replay,) = charge(UnitOfWork(engine), POLICY, [ChargingOp(
        "update", ChargingRequest(T0 + timedelta(seconds=30), 0, (UnitRequest(1, True, MB),)),
        "old-ref")])
    assert isinstance(replay, ChargingAnswer) and replay.replayed
    (update,) = charge(UnitOfWork(engine), POLICY, [ChargingOp(
        "update", ChargingRequest(T0 + timedelta(minutes=1), 1, (UnitRequest(1, True, MB),)),
        "old-ref")])
    assert isinstance(update, ChargingAnswer) and update.ref == "old-ref"
    assert not update.replayed
    with engine.connect() as conn:
        assert len(conn.execute(select(charging_sessions.c.last_digest).where(
            charging_sessions.c.ref == "old-ref")).scalar_one()) == 64
    first, copy = charge(UnitOfWork(engine), POLICY, [create(KEY), create(KEY)])
    assert first.ref == copy.ref and copy.replayed
    with engine.connect() as conn:
        assert conn.execute(select(charging_sessions.c.create_key).where(
            charging_sessions.c.ref == first.ref)).scalar_one() == KEY
    with pytest.raises(IntegrityError):  # the index: one open session per create
        insert_open(engine, "second", KEY)
    insert_open(engine, "released", KEY, released=True)  # released ones do not count

    downgrade(engine, PREVIOUS)
    assert not {"create_key", "last_digest"} & columns(engine)
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT ref FROM charging_sessions")).scalars()) == [
            first.ref, "old-ref", "released"]
    engine.dispose()
