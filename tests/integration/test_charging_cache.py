"""The charging queue's book cache (services.charging.group_commit.BookCache) never answers
from a stale book, on SQLite and PostgreSQL.

A kept book is used only at the account version it was kept at: a top-up by the
REST path (services.ledger.operations) in between must be seen by the next grant, a
batch that rolled back must leave nothing behind, and a run with the cache must
answer exactly as a run without it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from carryover.domain.quota import QuotaPolicy
from carryover.services.charging.book_cache import BookCache
from carryover.services.charging.group_commit import charge
from carryover.services.charging.model import (
    ChargingOp,
    ChargingPolicy,
    ChargingRequest,
    UnitRequest,
    UsedUnits,
)
from carryover.services.errors import ServiceError
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.store.uow import UnitOfWork
from tests.api_support import JAN

GB = 1024**3
PLAN = {"id": "block-1gb", "name": "1 GB, blocked after", "kind": "metered",
        "allowance": {"data": "1GB"}, "overage": {"action": "block"}}
# Grants as large as the headroom: each grant tells exactly what the book thinks is left.
POLICY = ChargingPolicy(QuotaPolicy(10 * GB, 20, timedelta(hours=1)), timedelta(seconds=60), {})


@pytest.fixture
def lines(engine):
    with UnitOfWork(engine) as uow:
        uow.plans.upsert(PLAN["id"], PLAN, "file", JAN)
        uow.commit()
    for name in ("a", "b"):
        provisioning.create_account(UnitOfWork(engine), name, 1, "UTC", JAN)
        provisioning.create_line(UnitOfWork(engine), name, f"+1415555{ord(name):04d}", JAN,
                                 PLAN["id"],
                                 line_id=f"line-{name}", imsi=f"3102600000{ord(name):05d}")
    return engine


def ask(at, seq: int, used: tuple[UsedUnits, ...] = (), subscriber: str | None = None):
    return ChargingRequest(at, seq, (UnitRequest(1, True, None, used),), subscriber)


def run(engine, cache, ops):
    return charge(UnitOfWork(engine), POLICY, ops, cache)


def granted(result) -> int:
    assert not isinstance(result, Exception), result
    return dict(result.grants)[1].amount


def test_another_writers_top_up_is_seen_at_once(lines) -> None:
    cache = BookCache(100)
    t = JAN + timedelta(days=2)
    (opened,) = run(lines, cache, [ChargingOp("create", ask(t, 0, subscriber="line-a"))])
    assert granted(opened) == GB
    ref = opened.ref
    (spent,) = run(lines, cache, [ChargingOp("update", ask(t + timedelta(minutes=1), 1,
                                                          (UsedUnits(0, GB, None),)), ref)])
    assert granted(spent) == 0  # the whole allowance is used
    hits = cache.hits
    # Not through the queue: the REST path writes the account and bumps its version.
    ledger_ops.top_up(UnitOfWork(lines), "line-a", 300 * 1024**2, t + timedelta(minutes=2), None,
                      "tu-1")
    (after,) = run(lines, cache, [ChargingOp("update", ask(t + timedelta(minutes=3), 2), ref)])
    assert granted(after) == 300 * 1024**2
    assert cache.hits == hits  # the kept book was stale: read again, not used


def test_kept_books_are_used_when_nobody_else_wrote(lines) -> None:
    cache = BookCache(100)
    t = JAN + timedelta(days=2)
    (opened,) = run(lines, cache, [ChargingOp("create", ask(t, 0, subscriber="line-b"))])
    for n in range(1, 4):
        (answer,) = run(lines, cache, [ChargingOp("update", ask(
            t + timedelta(minutes=n), n, (UsedUnits(n, 100 * 1024**2, None),)), opened.ref)])
        # What is left of 1 GB after n reports of 100 MB: the cached book is exact.
        assert granted(answer) == GB - n * 100 * 1024**2
    assert cache.hits == 3


def test_a_rolled_back_batch_leaves_no_book_behind(lines) -> None:
    cache = BookCache(100)
    t = JAN + timedelta(days=2)
    opened = run(lines, cache, [ChargingOp("create", ask(t, 0, subscriber="line-a")),
                                ChargingOp("create", ask(t, 0, subscriber="line-b"))])
    ref_a, ref_b = (o.ref for o in opened)
    later = t + timedelta(minutes=5)
    # A usage report from after the request's instant is refused midway through its
    # batch: the batch rolls back (with line-a's good report) and each op runs alone.
    results = run(lines, cache, [
        ChargingOp("update", ask(t + timedelta(minutes=1), 1,
                                 (UsedUnits(1, 200 * 1024**2, None),)), ref_a),
        ChargingOp("update", ask(t + timedelta(minutes=1), 1,
                                 (UsedUnits(1, 100 * 1024**2, later),)), ref_b),
    ])
    assert granted(results[0]) == GB - 200 * 1024**2
    assert isinstance(results[1], ServiceError)
    # Had the rolled-back attempt's book been kept, line-a's report would count twice.
    (again,) = run(lines, cache, [ChargingOp("update", ask(t + timedelta(minutes=2), 2),
                                             ref_a)])
    assert granted(again) == GB - 200 * 1024**2
    (b,) = run(lines, cache, [ChargingOp("update", ask(t + timedelta(minutes=2), 2), ref_b)])
    assert granted(b) == GB  # nothing of the refused report was kept


def test_an_error_that_is_no_refusal_is_only_its_own_requests_answer(lines) -> None:
    # A volume the database cannot store (the API refuses it first: this is the service
    # called directly) fails the batch; run again one by one, only that request fails.
    cache = BookCache(100)
    t = JAN + timedelta(days=2)
    opened = run(lines, cache, [ChargingOp("create", ask(t, 0, subscriber="line-a")),
                                ChargingOp("create", ask(t, 0, subscriber="line-b"))])
    ref_a, ref_b = (o.ref for o in opened)
    later = t + timedelta(minutes=1)
    results = run(lines, cache, [
        ChargingOp("update", ask(later, 1, (UsedUnits(1, 100 * 1024**2, None),)), ref_a),
        ChargingOp("update", ask(later, 1, (UsedUnits(1, 2**63, None),)), ref_b),
        ChargingOp("update", ask(later + timedelta(seconds=1), 2,
                                 (UsedUnits(2, 100 * 1024**2, None),)), ref_a),
    ])
    assert granted(results[0]) == GB - 100 * 1024**2
    assert isinstance(results[1], Exception)
    assert granted(results[2]) == GB - 200 * 1024**2
