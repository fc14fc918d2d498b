"""API keys, the shared rate limit and idempotent replays on a fake unit of work."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from carryover.plan_files import load_presets
from carryover.services.access import api_keys, idempotency, rate_limits
from carryover.services.errors import Conflict, NotFound, ServiceError
from tests.unit.fakes import FakeDatabase, FakeUnitOfWork

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def db() -> FakeDatabase:
    db = FakeDatabase(load_presets())
    db.add_account("acme")
    return db


def test_a_key_verifies_until_it_is_revoked(db: FakeDatabase) -> None:
    info, token = api_keys.create_key(FakeUnitOfWork(db), "subscriber", JAN, "acme", "app")
    assert token.startswith(api_keys.TOKEN_PREFIX)
    assert (info["role"], info["account"], info["label"]) == ("subscriber", "acme", "app")
    # Only the hash is stored, never the token.
    (stored,) = db.state.keys.values()
    assert stored.token_hash == api_keys.token_hash(token) and token not in repr(stored)
    who = api_keys.authenticate(FakeUnitOfWork(db), token)
    assert (who.key_id, who.scope, who.operator) == (info["id"], 1, False)
    assert api_keys.authenticate(FakeUnitOfWork(db), token + "x") is None
    revoked = api_keys.revoke_key(FakeUnitOfWork(db), info["id"], FEB)
    assert revoked["revoked_at"] == FEB.isoformat()
    assert api_keys.authenticate(FakeUnitOfWork(db), token) is None
    # Revoking again keeps the first instant.
    assert api_keys.revoke_key(FakeUnitOfWork(db), info["id"], JAN)["revoked_at"] == \
        FEB.isoformat()
    assert [k["id"] for k in api_keys.list_keys(FakeUnitOfWork(db))] == [info["id"]]


def test_key_refusals_store_nothing(db: FakeDatabase) -> None:
    with pytest.raises(NotFound, match="unknown account"):
        api_keys.create_key(FakeUnitOfWork(db), "subscriber", JAN, "nobody")
    with pytest.raises(ServiceError, match="needs --account"):
        api_keys.create_key(FakeUnitOfWork(db), "subscriber", JAN)
    with pytest.raises(ServiceError, match="not bound to an account"):
        api_keys.create_key(FakeUnitOfWork(db), "operator", JAN, "acme")
    with pytest.raises(NotFound):
        api_keys.revoke_key(FakeUnitOfWork(db), "key_missing", JAN)
    assert db.state.keys == {} and db.commits == 0


def test_the_rate_limit_allows_the_burst_then_one_per_interval(db: FakeDatabase) -> None:
    uow, second = FakeUnitOfWork(db), 1_000_000
    interval = rate_limits.interval_us(2)  # 500 ms a request
    t0 = 1_790_000_000 * second
    assert [rate_limits.admit(uow, "k", t0, interval, 3) for _ in range(3)] == [0, 0, 0]
    assert rate_limits.admit(uow, "k", t0, interval, 3) == interval
    assert rate_limits.admit(uow, "k", t0 + interval // 2, interval, 3) == interval // 2
    assert rate_limits.admit(uow, "k", t0 + interval, interval, 3) == 0
    assert rate_limits.admit(uow, "other", t0, interval, 3) == 0


def test_idempotency_replays_the_first_response(db: FakeDatabase) -> None:
    digest = idempotency.request_hash({"name": "acme"})
    assert idempotency.claim(FakeUnitOfWork(db), "key_1", "POST /v1/accounts", "k1", digest,
                             JAN) is None  # ours to run
    # While it runs, a retry is told to come back later.
    with pytest.raises(Conflict, match="still in progress"):
        idempotency.claim(FakeUnitOfWork(db), "key_1", "POST /v1/accounts", "k1", digest, JAN)
    idempotency.complete(FakeUnitOfWork(db), "key_1", "POST /v1/accounts", "k1", 201,
                         {"id": 7})
    assert idempotency.claim(FakeUnitOfWork(db), "key_1", "POST /v1/accounts", "k1", digest,
                             FEB) == (201, {"id": 7})
    with pytest.raises(idempotency.KeyReused):
        idempotency.claim(FakeUnitOfWork(db), "key_1", "POST /v1/accounts", "k1",
                          idempotency.request_hash({"name": "other"}), FEB)
    # The same key of another caller or route is another key.
    assert idempotency.claim(FakeUnitOfWork(db), "key_2", "POST /v1/accounts", "k1", digest,
                             JAN) is None


def test_a_released_claim_runs_again(db: FakeDatabase) -> None:
    digest = idempotency.request_hash({})
    uow = FakeUnitOfWork(db)
    assert idempotency.claim(uow, "key_1", "POST /v1/lines", "k", digest, JAN) is None
    idempotency.release(uow, "key_1", "POST /v1/lines", "k")
    assert db.state.responses == {}
    assert idempotency.claim(uow, "key_1", "POST /v1/lines", "k", digest, JAN) is None


def test_the_fake_shows_nothing_before_commit(db: FakeDatabase) -> None:
    uow = FakeUnitOfWork(db)
    with uow:
        uow.keys.add_key(id="key_x", token_hash="h", role="operator", account_id=None,
                         label=None, created_at=JAN)
        with FakeUnitOfWork(db) as other:
            assert other.keys.key("key_x") is None  # not committed: invisible
    assert db.state.keys == {}  # left without commit: rolled back
    with uow:
        uow.keys.add_key(id="key_x", token_hash="h", role="operator", account_id=None,
                         label=None, created_at=JAN)
        uow.commit()
    assert set(db.state.keys) == {"key_x"}
