"""A bucket's id is a function of the input that made it, on every path.

Found by tests/integration/test_model_based.py: a line opened, changed to a pack
and back to a metered plan in the same second made the store insert a second
`.../allowance/<instant>` bucket (a 500 from an IntegrityError), because the
store's book holds only live buckets and so did not see the closed one that a
replay would have seen. Now every plan change's allowance is `...~<ref>`, and
migration 0008 renames the ones an older version stored without it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from carryover.domain.book import AccountBook
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import ChangePlan, OpenLine, Usage
from carryover.plan_files import load_presets
from carryover.runtime import Carryover
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.settings import get_settings
from carryover.store import tables
from carryover.store.schema import downgrade, upgrade
from carryover.store.uow import UnitOfWork

T = datetime(2026, 1, 24, 10, 30, tzinfo=UTC)


def _stored(engine) -> dict[str, tuple[int | None, bool]]:
    with UnitOfWork(engine) as uow:
        rows = uow.conn.execute(select(tables.buckets.c.id, tables.buckets.c.remaining,
                                       tables.buckets.c.closed)).all()
    return {r.id: (r.remaining, r.closed) for r in rows}


def _model(changes: list[tuple[str, str, str, datetime]], late: datetime | None) -> AccountBook:
    book = AccountBook(CycleCalendar(1, "UTC"), load_presets())
    assert book.submit(OpenLine("open:l0", "l0", T, "tmobile-data-stash-10gb")).status == (
        "accepted")
    for ref, plan, effective, at in changes:
        assert book.submit(ChangePlan(ref, "l0", at, plan, effective)).status == "accepted"
    if late is not None:
        book.submit(Usage("ev-late", "l0", late, 1024, received_at=T + timedelta(hours=2)))
    return book


def test_changes_in_one_second_do_not_collide(db_url: str) -> None:
    engine = Carryover(get_settings(database_url=db_url)).open()
    provisioning.create_account(UnitOfWork(engine), "a", 1, "UTC", T)
    provisioning.create_line(UnitOfWork(engine), "a", "+14155550100", T, "tmobile-data-stash-10gb",
                             line_id="l0")
    changes = [("cp1", "travel-5gb-30d", "now", T), ("cp2", "china-mobile-jiezhuan-20gb",
                                                     "next_cycle", T),
               ("cp3", "verizon-carryover-8gb", "now", T)]
    for ref, plan, effective, at in changes:
        ledger_ops.change_plan(UnitOfWork(engine), "l0", plan, effective, at, ref)
    model = _model(changes, None)
    stored = _stored(engine)
    assert set(stored) == set(model.buckets)
    assert "l0/data/allowance/2026-01-24T10:30:00Z~cp3" in stored
    for bucket_id, bucket in model.buckets.items():
        assert stored[bucket_id] == (bucket.remaining, bucket.closed), bucket_id


def test_migration_names_old_plan_change_grants_as_a_replay_does(db_url: str) -> None:
    engine = Carryover(get_settings(database_url=db_url)).open()
    provisioning.create_account(UnitOfWork(engine), "a", 1, "UTC", T)
    provisioning.create_line(UnitOfWork(engine), "a", "+14155550100", T, "tmobile-data-stash-10gb",
                             line_id="l0")
    later = T + timedelta(hours=1)
    changes = [("cp1", "verizon-carryover-8gb", "now", later)]
    ledger_ops.change_plan(UnitOfWork(engine), "l0", "verizon-carryover-8gb", "now", later, "cp1")
    long_name = "l0/data/allowance/2026-01-24T11:30:00Z~cp1"
    assert long_name in _stored(engine)

    # The database as the version before 0008 left it: the short name.
    downgrade(engine, "carryover_0007")
    assert "l0/data/allowance/2026-01-24T11:30:00Z" in _stored(engine)
    assert long_name not in _stored(engine)
    upgrade(engine)
    assert long_name in _stored(engine)

    # A late event replays the whole history: the replay's names are the stored ones,
    # so no bucket is left behind under its old name.
    ledger_ops.record_usage(UnitOfWork(engine), "l0", 1024, T + timedelta(minutes=5),
                            T + timedelta(hours=2), "ev-late")
    model = _model(changes, T + timedelta(minutes=5))
    stored = _stored(engine)
    assert set(stored) == set(model.buckets)
    for bucket_id, bucket in model.buckets.items():
        assert stored[bucket_id] == (bucket.remaining, bucket.closed), bucket_id
    with UnitOfWork(engine) as uow:
        refs = {r.bucket_id for r in uow.conn.execute(select(tables.ledger_entries.c.bucket_id))}
    assert refs <= set(stored) | {None}
