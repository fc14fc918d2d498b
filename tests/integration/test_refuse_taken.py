"""A write the database refuses on a constraint reaches the service as the error it named.

Services hold no database exceptions: `UnitOfWork.refuse_taken(error)` turns a
refused write within it (a racing writer took the unique key first) into `error`,
chained to the database's exception, and lets every other exception through.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from carryover.runtime import Carryover
from carryover.services.errors import Conflict
from carryover.services.ledger import provisioning
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork

START = datetime(2026, 1, 1, tzinfo=UTC)
PLAN = "tmobile-data-stash-10gb"


def test_a_refused_write_is_the_named_error_and_nothing_is_stored(db_url):
    engine = Carryover(get_settings(database_url=db_url)).open()
    provisioning.create_account(UnitOfWork(engine), "acme", 1, "UTC", START)
    provisioning.create_line(UnitOfWork(engine), "acme", "+14155550901", START, PLAN,
                             line_id="first")
    with UnitOfWork(engine) as uow:
        account_id = uow.accounts.account_by_name("acme").id
        with pytest.raises(Conflict, match=r"^line 'first' is taken$") as caught, \
                uow.refuse_taken(Conflict("line 'first' is taken")):
            # The same line id again: the primary key refuses it.
            uow.accounts.insert_line(id="first", account_id=account_id, msisdn="+14155550902",
                                     imsi=None, opened_at=START, plan_id=PLAN, member=False,
                                     limits={})
            uow.commit()
    assert isinstance(caught.value.__cause__, IntegrityError)
    with UnitOfWork(engine) as uow:
        assert [r.msisdn for r in uow.accounts.account_lines(account_id)] == ["+14155550901"]
    engine.dispose()


def test_other_errors_pass_through(db_url):
    engine = Carryover(get_settings(database_url=db_url)).open()
    with UnitOfWork(engine) as uow, pytest.raises(ZeroDivisionError), \
            uow.refuse_taken(Conflict("never")):
        _ = 1 / 0
    engine.dispose()
