"""The stored history a replay streams comes in fold order, on both databases.

A replay merges the stored inputs with the new ones as they stream (domain.book),
so the store must yield them in `order_key` order: effective instant, rank, id.
Events sharing an instant are ordered by id in Python, not by the database, whose
collation may sort case and punctuation differently (PostgreSQL's en_US does);
late events sort by their arrival. And a replay that uses the stream gives the
balances of the same events folded in order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carryover.domain.inputs import TopUp, Usage, order_key
from carryover.runtime import Carryover
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork

MB = 1024**2
GB = 1024**3


def open_line(db_url: str, name: str, line_id: str) -> tuple:
    engine = Carryover(get_settings(database_url=db_url)).open()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    account_id = provisioning.create_account(UnitOfWork(engine), name, 1, "UTC", start)
    provisioning.create_line(UnitOfWork(engine), name, f"+49151{account_id:08d}", start,
                             "verizon-carryover-8gb", line_id=line_id)
    return engine, account_id


def test_history_comes_in_fold_order(db_url):
    engine, account_id = open_line(db_url, "acct", "v")
    same = datetime(2026, 1, 10, 12, tzinfo=UTC)
    # One instant, ids whose order differs between byte order and a natural-language
    # collation; recorded in an order that is neither.
    for event_id in ["b-2", "B-1", "a_3", "A-10", "a-9", "Z", "_x", "-y"]:
        ledger_ops.record_usage(UnitOfWork(engine), "v", MB, same, same + timedelta(minutes=1),
                                event_id)
    ledger_ops.top_up(UnitOfWork(engine), "v", GB, same, None, "top")  # same instant, another rank
    earlier = datetime(2026, 1, 5, tzinfo=UTC)
    ledger_ops.record_usage(UnitOfWork(engine), "v", MB, earlier, earlier, "zz-early")
    # Late: January's event reported after January's grace window, rated at arrival.
    late_at, late_received = datetime(2026, 1, 31, 23, tzinfo=UTC), datetime(2026, 2, 5,
                                                                              tzinfo=UTC)
    ledger_ops.record_usage(UnitOfWork(engine), "v", MB, late_at, late_received, "late")
    ledger_ops.record_usage(UnitOfWork(engine), "v", MB, datetime(2026, 2, 4, tzinfo=UTC),
                            datetime(2026, 2, 4, tzinfo=UTC), "feb")

    with UnitOfWork(engine) as uow:
        row = uow.accounts.lock_account(account_id)
        book, _ = uow.accounts.load_book(row, uow.plans.all())
        streamed = list(uow.accounts.history(account_id, book.calendar, book.grace))

    keys = [order_key(i, book.calendar, book.grace) for i in streamed]
    assert keys == sorted(keys)
    ids = [i.id for i in streamed if isinstance(i, Usage | TopUp)]
    assert ids[:1] == ["zz-early"]
    # At one instant a top-up (rank 3) comes before usage (rank 5), then ids by code point.
    assert ids[1:10] == ["top", "-y", "A-10", "B-1", "Z", "_x", "a-9", "a_3", "b-2"]
    assert ids[10:] == ["feb", "late"]  # the late one at its arrival, 5 February


def test_a_replay_from_the_stream_matches_the_fold_in_order(db_url):
    """Usage of January reported after the boundary, inside the grace, makes the store-
    backed book replay; its balances equal an account that got the same events in
    order."""
    jan = [datetime(2026, 1, d, tzinfo=UTC) for d in (3, 9, 17, 28)]
    feb = datetime(2026, 2, 1, 6, tzinfo=UTC)
    late = datetime(2026, 1, 31, 22, tzinfo=UTC)

    engine_a, _ = open_line(db_url, "in-order", "a")
    for n, at in enumerate([*jan, late]):
        ledger_ops.record_usage(UnitOfWork(engine_a), "a", GB, at, at, f"a{n}")
    ledger_ops.record_usage(UnitOfWork(engine_a), "a", 2 * GB, feb, feb, "a-feb")

    engine_b, _ = open_line(db_url, "late", "b")
    for n, at in enumerate(jan):
        ledger_ops.record_usage(UnitOfWork(engine_b), "b", GB, at, at, f"b{n}")
    ledger_ops.record_usage(UnitOfWork(engine_b), "b", 2 * GB, feb, feb, "b-feb")
    recorded = ledger_ops.record_usage(UnitOfWork(engine_b), "b", GB, late,
                                       feb + timedelta(hours=1), "b4")
    assert recorded.outcome.replayed

    at = feb + timedelta(hours=2)
    a, b = ledger_ops.balance(UnitOfWork(engine_a), "a",
                              at), ledger_ops.balance(UnitOfWork(engine_b), "b", at)
    assert a["available"] == b["available"]
    # 8 GB - 5 GB = 3 GB rolled over; February's 2 GB came from its new allowance.
    assert a["available"] == {"data": 3 * GB + 6 * GB}

    def shape(view):
        return sorted((x["kind"], x["remaining"]) for x in view["buckets"])

    assert shape(a) == shape(b)
