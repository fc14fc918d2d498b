"""Webhook endpoints, dead letters, replay and the delivery loop's steps on a fake unit of
work: no database, no HTTP (services.notify.webhooks, services.notify.delivery).

Endpoint URLs are IP literals, so checking them resolves nothing; the ones that must be
accepted use a public address or `allow_private`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carryover.domain.plans import plan_from_mapping
from carryover.services.errors import NotFound, ServiceError
from carryover.services.notify import delivery, webhooks
from carryover.settings import get_settings
from tests.unit.fakes import FakeDatabase, FakeUnitOfWork

JAN = datetime(2026, 1, 1, tzinfo=UTC)
LATER = JAN + timedelta(hours=1)
HOOK = "http://127.0.0.1:9/hook"  # a loopback target: accepted only with allow_private
SMALL = plan_from_mapping({"id": "small", "kind": "metered", "allowance": {"data": "4MB"},
                           "overage": {"action": "block"}})


@pytest.fixture
def db() -> FakeDatabase:
    db = FakeDatabase({"small": SMALL})
    account = db.add_account("acme")
    db.add_line(account, "s1", "small", JAN, msisdn="+491510000001")
    return db


def notify(db: FakeDatabase, *kinds: str) -> None:
    """Outbox rows for line s1, as a change's transaction writes them."""
    uow = FakeUnitOfWork(db)
    with uow:
        uow.outbox.offer([{"account_id": 1, "line": "s1", "cycle_start": JAN.isoformat(),
                           "kind": kind, "at": JAN, "payload": {"kind": kind, "line": "s1"}}
                          for kind in kinds])
        uow.commit()


def add(db: FakeDatabase, kinds: list[str] | None = None, at: datetime = JAN) -> dict:
    info, _ = webhooks.add_endpoint(FakeUnitOfWork(db), HOOK, kinds, at, allow_private=True)
    return info


def dead_delivery(db: FakeDatabase) -> int:
    """A delivery of a usage_50 notice that used up its attempts; its id."""
    add(db, ["usage_50"])
    notify(db, "usage_50")
    (endpoint,) = delivery._due_endpoints(FakeUnitOfWork(db), JAN)
    claimed = delivery._claim_one(FakeUnitOfWork(db), endpoint, JAN, timedelta(seconds=40))
    assert delivery._record(FakeUnitOfWork(db), claimed, {
        "status": "dead", "attempts": 1, "last_error": delivery.NO_RESPONSE})
    return claimed.id


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/hook", "http://", "not a url"])
def test_an_endpoint_with_a_bad_url_is_refused_naming_the_url(db, url) -> None:
    with pytest.raises(ServiceError, match=r"^URL: "):
        webhooks.add_endpoint(FakeUnitOfWork(db), url, None, JAN, allow_private=True)
    assert db.state.endpoints == {} and db.commits == 0


def test_a_private_target_is_refused_unless_allowed(db) -> None:
    with pytest.raises(ServiceError, match=r"^URL: .*127\.0\.0\.1"):
        webhooks.add_endpoint(FakeUnitOfWork(db), HOOK, None, JAN)
    assert db.state.endpoints == {}
    assert add(db)["url"] == HOOK


def test_an_unknown_kind_is_refused_naming_the_field_and_the_kind(db) -> None:
    with pytest.raises(ServiceError, match=r"^--kinds: unknown kind\(s\) nope, usage_0;"):
        webhooks.add_endpoint(FakeUnitOfWork(db), HOOK, ["usage_50", "usage_0", "nope"], JAN,
                              allow_private=True)
    assert db.state.endpoints == {} and db.commits == 0
    # Any picked alert threshold's kind is known, not only the defaults.
    assert add(db, ["usage_37", "throttled"])["kinds"] == ["throttled", "usage_37"]


def test_added_endpoints_list_back_without_their_secret(db) -> None:
    info, secret = webhooks.add_endpoint(FakeUnitOfWork(db), HOOK, ["usage_80", "usage_50"],
                                         JAN, allow_private=True)
    assert secret.startswith("whsec_") and info["id"].startswith("wh_")
    assert info == {"id": info["id"], "url": HOOK, "kinds": ["usage_50", "usage_80"],
                    "created_at": JAN.isoformat()}
    everything = add(db, at=LATER)  # listed in the order they were added
    listed = webhooks.list_endpoints(FakeUnitOfWork(db))
    assert [e["id"] for e in listed] == [info["id"], everything["id"]]
    assert listed[0] == {**info, "disabled_at": None, "pending": 0, "delivered": 0, "dead": 0}
    assert listed[1]["kinds"] is None
    assert secret not in repr(listed)
    assert db.state.endpoints[info["id"]].secret == secret  # kept: it signs every delivery


def test_endpoints_page_by_id(db) -> None:
    ids = sorted(add(db)["id"] for _ in range(3))
    first, cursor = webhooks.endpoints_page(FakeUnitOfWork(db), None, 2)
    assert [e["id"] for e in first] == ids[:2] and cursor == ids[1]
    rest, cursor = webhooks.endpoints_page(FakeUnitOfWork(db), cursor, 2)
    assert [e["id"] for e in rest] == ids[2:] and cursor is None


def test_a_removed_endpoint_lists_as_removed_and_a_second_removal_keeps_the_first(db) -> None:
    info = add(db)
    removed = webhooks.remove_endpoint(FakeUnitOfWork(db), info["id"], LATER)
    assert removed["id"] == info["id"] and removed["disabled_at"] == LATER.isoformat()
    assert webhooks.list_endpoints(FakeUnitOfWork(db)) == [removed]
    # Idempotent: removing it again changes nothing (the first instant stays).
    again = webhooks.remove_endpoint(FakeUnitOfWork(db), info["id"], LATER + timedelta(days=1))
    assert again == removed


def test_removing_an_unknown_endpoint_is_not_found(db) -> None:
    with pytest.raises(NotFound, match="unknown webhook endpoint 'wh_nope'"):
        webhooks.remove_endpoint(FakeUnitOfWork(db), "wh_nope", JAN)
    info = add(db)
    with pytest.raises(NotFound):
        webhooks.remove_endpoint(FakeUnitOfWork(db), info["id"] + "x", JAN)
    assert db.state.endpoints[info["id"]].disabled_at is None


def test_an_endpoint_gets_only_the_kinds_it_wants_written_after_it(db) -> None:
    notify(db, "usage_50")  # before the endpoint: never sent to it
    picky, every = add(db, ["usage_80"]), add(db)
    notify(db, "usage_80", "blocked")
    assert delivery._due_endpoints(FakeUnitOfWork(db), JAN) == sorted([picky["id"],
                                                                       every["id"]])
    counts = {e["id"]: e["pending"] for e in webhooks.list_endpoints(FakeUnitOfWork(db))}
    assert counts == {picky["id"]: 1, every["id"]: 2}
    # A second pass fans nothing out twice.
    delivery._due_endpoints(FakeUnitOfWork(db), LATER)
    assert len(db.state.deliveries) == 3


def test_a_claimed_delivery_is_leased_and_only_its_lease_records_it(db) -> None:
    info = add(db)
    notify(db, "usage_50", "usage_80")
    delivery._due_endpoints(FakeUnitOfWork(db), JAN)
    lease = timedelta(seconds=40)
    first = delivery._claim_one(FakeUnitOfWork(db), info["id"], JAN, lease)
    second = delivery._claim_one(FakeUnitOfWork(db), info["id"], JAN, lease)
    assert (first.outbox_id, second.outbox_id) == (1, 2)  # in id order, one each
    assert first.payload == {"kind": "usage_50", "line": "s1"}
    assert delivery._claim_one(FakeUnitOfWork(db), info["id"], JAN, lease) is None
    # Under its lease the outcome is kept; with a lease that is not the row's, it is not.
    stale = type(second)(**{**vars(second), "lease_until": JAN + lease * 2})
    assert not delivery._record(FakeUnitOfWork(db), stale, {"status": "delivered"})
    assert delivery._record(FakeUnitOfWork(db), first, {"status": "delivered", "attempts": 1})
    assert [d.status for d in db.state.deliveries.values()] == ["delivered", "pending"]


def test_a_removed_endpoints_pending_deliveries_are_not_claimed(db) -> None:
    info = add(db)
    notify(db, "usage_50")
    delivery._due_endpoints(FakeUnitOfWork(db), JAN)
    webhooks.remove_endpoint(FakeUnitOfWork(db), info["id"], JAN)
    assert delivery._due_endpoints(FakeUnitOfWork(db), LATER) == []
    assert delivery._claim_one(FakeUnitOfWork(db), info["id"], LATER, timedelta(seconds=40)) \
        is None
    (pending,) = db.state.deliveries.values()
    assert (pending.status, pending.next_attempt_at) == ("pending", JAN)  # rolled back


def test_a_dead_letter_is_listed_and_replayed_once(db) -> None:
    dead_id = dead_delivery(db)
    (dead,) = webhooks.dead_letters(FakeUnitOfWork(db))
    assert dead == {"id": dead_id, "endpoint": dead["endpoint"], "url": HOOK, "event": 1,
                    "kind": "usage_50", "line": "s1", "attempts": 1,
                    "last_error": delivery.NO_RESPONSE}
    assert webhooks.dead_letters(FakeUnitOfWork(db), after=dead_id) == []
    done = webhooks.replay(FakeUnitOfWork(db), dead_id, LATER)
    assert done == {"id": dead_id, "status": "pending", "previous": "dead"}
    assert webhooks.dead_letters(FakeUnitOfWork(db)) == []
    again = db.state.deliveries[dead_id]
    assert (again.attempts, again.next_attempt_at) == (0, LATER)
    with pytest.raises(ServiceError, match=f"delivery {dead_id} is still pending"):
        webhooks.replay(FakeUnitOfWork(db), dead_id, LATER)


def test_replaying_an_unknown_delivery_is_not_found(db) -> None:
    with pytest.raises(NotFound, match="unknown delivery 7"):
        webhooks.replay(FakeUnitOfWork(db), 7, JAN)
    assert db.commits == 0


def test_a_delivery_of_a_removed_endpoint_is_not_replayed(db) -> None:
    dead_id = dead_delivery(db)
    endpoint = db.state.deliveries[dead_id].endpoint_id
    webhooks.remove_endpoint(FakeUnitOfWork(db), endpoint, LATER)
    with pytest.raises(ServiceError, match="is for a removed endpoint"):
        webhooks.replay(FakeUnitOfWork(db), dead_id, LATER)
    assert db.state.deliveries[dead_id].status == "dead"


def test_the_backlog_counts_pending_and_not_yet_fanned_out_deliveries(db) -> None:
    add(db)
    notify(db, "usage_50", "usage_80")
    assert webhooks.backlog(FakeUnitOfWork(db), datetime.now(UTC))[0] == 2  # none fanned out
    delivery._due_endpoints(FakeUnitOfWork(db), JAN)
    count, age = webhooks.backlog(FakeUnitOfWork(db), datetime.now(UTC) + timedelta(seconds=30))
    assert count == 2 and 30 <= age < 60


def test_one_delivery_loop_holds_the_lock(db) -> None:
    held = delivery.try_lock(FakeUnitOfWork(db))
    assert held is not None
    assert delivery.try_lock(FakeUnitOfWork(db)) is None
    # A bounded run while another loop holds the lock delivers nothing and says so.
    add(db)
    notify(db, "usage_50")
    assert delivery.run_locked(FakeUnitOfWork(db), get_settings(), passes=1) is None
    assert db.state.deliveries == {}
    held.release()
    with delivery.holding(FakeUnitOfWork(db)) as lock:
        assert lock is not None and delivery.try_lock(FakeUnitOfWork(db)) is None
    assert delivery.try_lock(FakeUnitOfWork(db)) is not None
