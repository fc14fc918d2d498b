"""The same Nchf create answered by two workers at once opens one session (SQLite and
PostgreSQL): each copy runs services.charging.group_commit in its own transaction, as
two serve workers would, started together.

Each round's two copies ask 100 MB on a pool with 200 MB left: had both opened a
session, 200 MB would be held and another member's create refused. After every
round exactly one session of that create is open, 100 MB are held for it, and the
other member's create still gets 100 MB.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from carryover.services.charging.group_commit import charge
from carryover.services.charging.model import (
    ChargingAnswer,
    ChargingOp,
    ChargingPolicy,
    ChargingRequest,
    UnitRequest,
    create_key,
)
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.settings import Settings
from carryover.store.charging_tables import charging_sessions, quota_holds
from carryover.store.engine import make_engine
from carryover.store.schema import ensure_schema
from carryover.store.uow import UnitOfWork

MB = 1024**2
GB = 1024**3
JAN = datetime(2026, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
SMF = {"nodeFunctionality": "SMF", "nFName": "6c7a9b1e-4f0e-4a8e-9d8e-2f4b1c3d5e6f"}
POLICY = ChargingPolicy.from_settings(Settings(
    nchf_max_grant=100 * MB, nchf_threshold_percent=20, nchf_validity_seconds=3600,
    nchf_hold_margin_seconds=60))
POOL_PLAN = {"id": "race-pool-2gb", "name": "Family 2 GB, blocked after", "kind": "metered",
             "allowance": {"data": "2GB"}, "overage": {"action": "block"}}
ROUNDS = 6


def create(subscriber: str, at: datetime, charging_id: int | None) -> ChargingOp:
    request = ChargingRequest(at, 0, (UnitRequest(1, True, 100 * MB),), subscriber)
    key = (None if charging_id is None else
           create_key(SMF, subscriber, {"chargingId": charging_id, "pduSessionID": 5}, 0))
    return ChargingOp("create", replace(request, create_key=key))


def release(ref: str, at: datetime) -> ChargingOp:
    return ChargingOp("release", ChargingRequest(at, 1), ref)


def at_once(engine, op: ChargingOp) -> list[object]:
    """`op` answered twice, in two transactions started together."""
    start = threading.Barrier(2)
    answers: list[object] = [None, None]

    def worker(k: int) -> None:
        uow = UnitOfWork(engine)
        start.wait()
        (answers[k],) = charge(uow, POLICY, [op])

    threads = [threading.Thread(target=worker, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def pool(db_url: str, members: int) -> Engine:
    """A database with account `pool` on the 2 GB pool plan and lines p1..p`members`."""
    engine = make_engine(db_url)
    ensure_schema(engine)
    with UnitOfWork(engine) as uow:
        uow.plans.upsert(POOL_PLAN["id"], POOL_PLAN, "file", JAN)
        uow.commit()
    provisioning.create_account(UnitOfWork(engine), "pool", 1, "UTC", JAN, POOL_PLAN["id"])
    for n in range(1, members + 1):
        provisioning.create_line(UnitOfWork(engine), "pool", f"+1415555070{n}", JAN,
                                 line_id=f"p{n}", imsi=f"31026000000070{n}")
    return engine


def test_two_workers_answering_one_create_at_once_open_one_session(db_url: str) -> None:
    engine = pool(db_url, 3)
    ledger_ops.record_usage(UnitOfWork(engine), "p1", 2 * GB - 200 * MB, T0, T0, "pre")

    for round_ in range(ROUNDS):
        at = T0 + timedelta(minutes=round_)
        first, copy = at_once(engine, create("imsi-310260000000702", at, round_))
        assert isinstance(first, ChargingAnswer) and isinstance(copy, ChargingAnswer), (
            first, copy)
        assert first.ref == copy.ref and [first.replayed, copy.replayed].count(True) == 1
        assert first.grants == copy.grants
        assert [g.amount for _, g in first.grants] == [100 * MB]
        with engine.connect() as conn:
            open_refs = conn.execute(select(charging_sessions.c.ref).where(
                charging_sessions.c.line == "p2",
                charging_sessions.c.released_at.is_(None))).scalars().all()
            held = conn.execute(select(func.sum(quota_holds.c.amount))).scalar_one()
        assert open_refs == [first.ref] and held == 100 * MB
        # What is left is another member's: 100 MB, not QUOTA_LIMIT_REACHED.
        (other,) = charge(UnitOfWork(engine), POLICY,
                          [create("imsi-310260000000703", at, None)])
        assert [g.amount for _, g in other.grants] == [100 * MB], other
        assert charge(UnitOfWork(engine), POLICY,
                      [release(first.ref, at + timedelta(seconds=1)),
                       release(other.ref, at + timedelta(seconds=1))]) == [None, None]
    engine.dispose()


def test_a_release_and_the_same_create_after_it_in_one_batch(db_url: str,
                                                            monkeypatch) -> None:
    from carryover.services.charging import group_commit

    engine = pool(db_url, 1)
    (first,) = charge(UnitOfWork(engine), POLICY, [create("imsi-310260000000701", T0, 7)])
    batches = []
    real = group_commit._Batch.__init__

    def counting(self, *args, **kwargs):
        batches.append(1)
        real(self, *args, **kwargs)

    monkeypatch.setattr(group_commit._Batch, "__init__", counting)
    at = T0 + timedelta(minutes=1)
    released, again = charge(UnitOfWork(engine), POLICY,
                             [release(first.ref, at), create("imsi-310260000000701", at, 7)])
    assert released is None and isinstance(again, ChargingAnswer)
    assert again.ref != first.ref and not again.replayed
    assert len(batches) == 1  # one transaction: the release is written before the create
    engine.dispose()
