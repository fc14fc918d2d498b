"""One namespace for line ids, MSISDNs and IMSIs; typed identifiers looked up by type.

The probe this reproduces: a line created with `id` equal to another account's IMSI
captured that subscriber's Nchf sessions, because "imsi-X" was stripped to "X" and the
lookup of X as an id, MSISDN or IMSI took the lowest line id.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from carryover.cli import app
from carryover.services.errors import Conflict, ServiceError
from carryover.services.ledger import provisioning
from carryover.store.engine import make_engine
from carryover.store.tables import inputs
from carryover.store.uow import UnitOfWork
from tests.api_support import JAN, PLAN, Api, served_api

IMSI = "310260000000801"
MSISDN = "+14155550801"
BASE = "/nchf-convergedcharging/v3"
SMF = {"nodeFunctionality": "SMF", "nFName": "6c7a9b1e-4f0e-4a8e-9d8e-2f4b1c3d5e6f"}
runner = CliRunner()


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with served_api(db_url) as served:
        provisioning.create_line(UnitOfWork(served.engine), "acme", MSISDN, JAN, PLAN, IMSI,
                                 "victim")
        yield served


def charging(api: Api, subscriber: str):
    body = {"nfConsumerIdentification": SMF, "invocationSequenceNumber": 0,
            "invocationTimeStamp": datetime.now(UTC).isoformat(),
            "subscriberIdentifier": subscriber,
            "multipleUnitUsage": [{"ratingGroup": 1, "requestedUnit": {"totalVolume": 1000}}]}
    return api.call("POST", f"{BASE}/chargingdata", json=body)


def session_line(api: Api, response) -> str:
    assert response.status_code == 201, response.text
    ref = response.headers["location"].rsplit("/", 1)[1]
    with api.engine.connect() as conn:
        from carryover.store.charging_tables import charging_sessions
        return conn.execute(charging_sessions.select().where(
            charging_sessions.c.ref == ref)).one().line


def test_a_line_id_cannot_take_another_accounts_imsi(api: Api):
    shadow = api.call("POST", "/v1/lines", json={
        "account": "other", "msisdn": "+14155550899", "plan": PLAN, "id": IMSI,
        "start": JAN.isoformat()})
    assert shadow.status_code == 409, shadow.text
    assert "'victim'" in shadow.json()["detail"]
    assert session_line(api, charging(api, f"imsi-{IMSI}")) == "victim"


@pytest.mark.parametrize(("line_id", "msisdn", "imsi"), [
    (IMSI, "+14155550898", None),                    # id = another line's IMSI
    ("14155550801", "+14155550898", None),           # id = another line's MSISDN digits
    ("victim", "+14155550898", None),                # id = another line's id
    ("new", MSISDN, None),                           # MSISDN taken
    ("new", "+14155550898", IMSI),                   # IMSI taken
])
def test_every_identifier_is_checked_against_every_other(api: Api, line_id, msisdn, imsi):
    with pytest.raises(Conflict, match="one identifier names one line"):
        provisioning.create_line(UnitOfWork(api.engine), "other", msisdn, JAN, PLAN, imsi, line_id)
    # Identifiers no line has are free.
    assert provisioning.create_line(UnitOfWork(api.engine), "other", "+14155550898", JAN, PLAN,
                                    "310260000000898", "new") == "new"


def test_an_msisdn_or_imsi_cannot_be_another_lines_id(api: Api):
    provisioning.create_line(UnitOfWork(api.engine), "acme", "+14155550802", JAN, PLAN,
                             line_id="262010000000009")
    with pytest.raises(Conflict):
        provisioning.create_line(UnitOfWork(api.engine), "other", "+14155550898", JAN, PLAN,
                                 "262010000000009")
    provisioning.create_line(UnitOfWork(api.engine), "acme", "+14155550803", JAN, PLAN,
                             line_id="4930123456")
    with pytest.raises(Conflict):
        provisioning.create_line(UnitOfWork(api.engine), "other", "+4930123456", JAN, PLAN)


def test_typed_prefixes_are_reserved_and_looked_up_by_type(api: Api):
    for reserved in (f"imsi-{IMSI}", "msisdn-14155550801"):
        with pytest.raises(ServiceError, match="reserved"):
            provisioning.create_line(UnitOfWork(api.engine), "other", "+14155550898", JAN, PLAN,
                                     line_id=reserved)
    # A collision stored before the rule (written past the service): the type decides.
    with UnitOfWork(api.engine) as uow:
        account = uow.accounts.account_by_name("other").id
        uow.accounts.insert_line(id=IMSI, account_id=account, msisdn="+14155550897",
                                 imsi=None, opened_at=JAN, plan_id=PLAN, member=False,
                                 limits={})
        uow.commit()
    with UnitOfWork(api.engine) as uow:
        assert uow.accounts.find_line(f"imsi-{IMSI}").id == "victim"
        assert uow.accounts.find_line("msisdn-14155550801").id == "victim"
        assert uow.accounts.find_line(f"msisdn-{MSISDN}").id == "victim"
        assert uow.accounts.find_line(IMSI).id == IMSI  # untyped: a line id first
        assert uow.accounts.find_line("imsi-14155550897") is None  # an MSISDN, not an IMSI
    assert session_line(api, charging(api, f"imsi-{IMSI}")) == "victim"
    assert session_line(api, charging(api, "msisdn-14155550801")) == "victim"


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_cli_and_line_import_refuse_a_collision(tmp_path):
    cli("init")
    cli("account", "create", "acme", "--cycle-day", "1", "--timezone", "UTC")
    cli("line", "create", "--account", "acme", "--msisdn", MSISDN, "--imsi", IMSI,
        "--id", "victim", "--plan", PLAN, "--start", "2026-01-01T00:00")
    cli("line", "create", "--account", "acme", "--msisdn", "+14155550802", "--id",
        "262010000000009", "--plan", PLAN, "--start", "2026-01-01T00:00")
    out = cli("line", "create", "--account", "acme", "--msisdn", "+14155550899", "--id", IMSI,
              "--plan", PLAN, "--start", "2026-01-01T00:00", code=2)
    assert "one identifier names one line" in out
    rows = tmp_path / "lines.csv"
    with rows.open("w", newline="") as handle:
        out_csv = csv.writer(handle)
        out_csv.writerow(["msisdn", "imsi", "account", "plan", "start"])
        out_csv.writerow(["+14155550898", "262010000000009", "acme", PLAN, ""])  # a line's id
        out_csv.writerow(["+14155550801", "", "acme", PLAN, ""])  # an MSISDN taken
        out_csv.writerow(["+141555508970000", "", "acme", PLAN, ""])  # free
        out_csv.writerow(["+14155550896", "141555508970000", "acme", PLAN, ""])  # row 3's
        out_csv.writerow(["+14155550895", "", "newco", PLAN, ""])  # free, a new account
    imported = json.loads(cli("line", "import", str(rows), "--json", code=2))  # rejects: 2
    assert (imported["imported"], imported["rejected"]) == (2, 3)
    assert [r["row"] for r in imported["rejects"]] == [1, 2, 4]
    # Imported lines are recorded as the CLI's inputs, with when (docs/security.md).
    engine = make_engine(os.environ["CARRYOVER_DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(select(inputs.c.actor, inputs.c.recorded_at)).all()
    assert len(rows) == 4 and all(r.actor == "cli" and r.recorded_at for r in rows)
