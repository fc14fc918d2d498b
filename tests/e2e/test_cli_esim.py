"""`carryover esim ...` and `carryover smdp device ...` end to end through the CLI.

The SM-DP+ emulator and the operator's HTTP app run on loopback (uvicorn in a
thread); the CLI finds them through CARRYOVER_ES2PLUS_URL and the emulator
notifies the operator app, which shares the CLI's SQLite file.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from carryover.api.app import create_app
from carryover.cli import app
from carryover.domain.esim.download_progress import parse_download_progress
from carryover.runtime import Carryover
from carryover.services.esim import download_progress
from tests.esim_support import (
    EID_A,
    EID_B,
    NOTIFICATION_TOKENS,
    SMDP_TOKEN,
    emulator,
    iccid,
    inventory_csv,
    records,
)
from tests.loopback import serving

runner = CliRunner()
PROFILES = records(3)
EID = "89882119900000000000000000001654"


def cli(*args: str, code: int = 0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result


@pytest.mark.parametrize(("value", "kind"), [
    (EID, "eid"),
    ("8944500102198304826F", "iccid"),
    ("310260123456789", "imsi"),
    ("LPA:1$smdp.example.com$ABC-123$$1", "activation_code"),
])
def test_validate_a_valid_value_exits_0(value, kind):
    out = json.loads(cli("esim", "validate", value, "--json").stdout)
    assert out == {"value": value, "kind": kind, "valid": True, "reason": None}
    assert "valid" in cli("esim", "validate", value).stdout


@pytest.mark.parametrize(("value", "kind", "words"), [
    (EID[:-1] + "5", "eid", "MOD 97-10"),
    ("89014103211118510721", "iccid", "Luhn"),
    ("31026012345678", "unknown", "15 digits"),
    ("1$smdp.example.com$lower", "activation_code", "MatchingID"),
    ("banana", "unknown", "not an EID"),
])
def test_validate_an_invalid_value_exits_1_and_says_why(value, kind, words):
    out = json.loads(cli("esim", "validate", value, "--json", code=1).stdout)
    assert (out["kind"], out["valid"]) == (kind, False)
    assert words in out["reason"]
    assert words in cli("esim", "validate", value, code=1).stdout


def test_changing_one_digit_of_the_example_eid_fails_validation():
    for position in (0, 5, 17, 31):
        digit = str((int(EID[position]) + 1) % 10)
        wrong = EID[:position] + digit + EID[position + 1:]
        assert json.loads(cli("esim", "validate", wrong, "--json", code=1).stdout)[
            "valid"] is False


def test_inventory_import_and_list_with_a_low_stock_warning(tmp_path, monkeypatch):
    batch = tmp_path / "batch.csv"
    batch.write_text(inventory_csv(PROFILES))
    imported = cli("esim", "inventory", "import", str(batch), "--json")
    assert json.loads(imported.stdout) == {"imported": 3, "file": str(batch)}
    warning = ("warning: low stock: profile type consumer has 3 available profiles "
               "(threshold 10)")
    assert warning in imported.stderr

    listed = cli("esim", "inventory", "list", "--json")
    data = json.loads(listed.stdout)
    assert [p["iccid"] for p in data["profiles"]] == [r.iccid for r in PROFILES]
    assert data["stock"] == {"consumer": {"available": 3}}
    assert data["low_stock"] == ["consumer"]
    assert warning in listed.stderr
    table = cli("esim", "inventory", "list")
    assert PROFILES[0].iccid in table.stdout and "consumer: 3 available" in table.stdout
    assert json.loads(cli("esim", "inventory", "list", "--state", "installed",
                          "--json").stdout)["profiles"] == []

    monkeypatch.setenv("CARRYOVER_ESIM_LOW_STOCK_THRESHOLD", "3")
    assert "warning" not in cli("esim", "inventory", "list").stderr

    again = cli("esim", "inventory", "import", str(batch), code=2)
    assert again.stderr.count("already in the inventory") == 6  # 3 ICCIDs, 3 IMSIs


def test_a_bad_inventory_file_reports_every_row(tmp_path):
    bad = tmp_path / "bad.csv"
    good = PROFILES[0]
    bad.write_text("ICCID,IMSI,Profile_Type,batch\n"
                   f"{good.iccid},{good.imsi},consumer,7\n"
                   f"{good.iccid[:-1]}0,262010000000099,consumer,7\n"
                   f"{good.iccid},262010000000098,,7\n")
    result = cli("esim", "inventory", "import", str(bad), code=2)
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"{bad}:3: iccid: Luhn check failed: check digit is 0, the Luhn digit of the rest is "
        f"{good.iccid[-1]}",
        f"{bad}:4: profile_type: empty",
    ]
    assert json.loads(cli("esim", "inventory", "list", "--json").stdout)["profiles"] == []
    assert "header lacks imsi" in cli("esim", "inventory", "import", str(_file(
        tmp_path, "iccid,profile_type\n")), code=2).stderr
    assert "No such file" in cli("esim", "inventory", "import",
                                 str(tmp_path / "missing.csv"), code=2).stderr
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"iccid,imsi,profile_type\n" + "caf\xe9\n".encode("latin-1"))
    refused = cli("esim", "inventory", "import", str(latin), code=2).stderr
    assert str(latin) in refused and "utf-8" in refused and "Traceback" not in refused


def _file(folder, text):
    path = folder / "f.csv"
    path.write_text(text)
    return path


@pytest.fixture
def provisioned(tmp_path, monkeypatch):
    """Two lines, an inventory, the operator app and the emulator on loopback."""
    cli("init")
    cli("account", "create", "acct", "--cycle-day", "1", "--timezone", "UTC",
        "--at", "2026-01-01T00:00")
    for n, line in enumerate(("alice", "bob"), start=1):
        cli("line", "create", "--account", "acct", "--msisdn", f"+491510000000{n}",
            "--id", line, "--plan", "tmobile-data-stash-10gb", "--start", "2026-01-01T00:00")
    batch = tmp_path / "batch.csv"
    batch.write_text(inventory_csv(PROFILES))
    cli("esim", "inventory", "import", str(batch))
    monkeypatch.setenv("CARRYOVER_ES2PLUS_NOTIFICATION_TOKENS",
                       json.dumps(NOTIFICATION_TOKENS))
    with serving(create_app(Carryover())) as operator_url, \
            emulator(PROFILES, operator_url) as (store, smdp_url):
        monkeypatch.setenv("CARRYOVER_ES2PLUS_URL", smdp_url)
        monkeypatch.setenv("CARRYOVER_ES2PLUS_RETRIES", "0")
        yield store, smdp_url


def test_order_prints_the_activation_code_and_writes_png_and_svg(provisioned, tmp_path):
    png, svg = tmp_path / "alice.png", tmp_path / "bob.svg"
    out = cli("esim", "order", "alice", "--eid", EID_A, "--png", str(png)).stdout
    code = next(line.split(": ", 1)[1] for line in out.splitlines()
                if line.startswith("activation code: "))
    assert code.startswith("1$smdp.localhost$")
    assert "▀" in out or "█" in out  # the QR code, drawn in the terminal
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    bob = json.loads(cli("esim", "order", "+4915100000002", "--svg", str(svg),
                         "--confirmation-code", "--json").stdout)
    assert bob["activation_code"].endswith("$$1") and bob["qr"] == "LPA:" + bob[
        "activation_code"]
    assert len(bob["confirmation_code"]) == 8
    assert "<svg" in svg.read_text()
    status = cli("esim", "status", "bob", "--json").stdout
    assert bob["confirmation_code"] not in status
    assert json.loads(status)["confirmation_code_required"] is True

    assert cli("esim", "order", "alice", "--png", "a.png", "--svg", "b.svg", code=2).stderr \
        .strip() == "give --png or --svg, not both"
    refused = cli("esim", "order", "alice", code=2).stderr.strip().splitlines()
    assert len(refused) == 1 and "already has profile" in refused[0]


def test_device_download_then_move_and_cancel_through_the_cli(provisioned):
    store, _ = provisioned
    ordered = json.loads(cli("esim", "order", "alice", "--eid", EID_A, "--json").stdout)
    iccid = ordered["iccid"]
    cli("smdp", "device", "download", ordered["activation_code"], "--eid", EID_A)
    status = json.loads(cli("esim", "status", "alice", "--json").stdout)
    assert (status["state"], status["eid"]) == ("installed", EID_A)
    text = cli("esim", "status", iccid).stdout
    assert f"installed on EID {EID_A}, line alice" in text
    assert "downloaded ->" in text and "point 4" in text

    refused = cli("esim", "move", "alice", "--eid", EID_B, code=2).stderr
    assert "delete it on the old device first" in refused
    cancel = cli("esim", "cancel", "alice", code=2).stderr
    assert "8.2.1 profile ICCID / 3.3 already in use" in cancel

    cli("smdp", "device", "disable", iccid, "--eid", EID_A)
    deleted = json.loads(cli("smdp", "device", "delete", iccid, "--eid", EID_A,
                             "--json").stdout)
    assert deleted["state"] == "available"
    moved = json.loads(cli("esim", "move", "alice", "--eid", EID_B, "--json").stdout)
    assert moved["iccid"] == iccid and moved["eid"] == EID_B
    assert "no profile released" in cli("smdp", "device", "download",
                                        ordered["activation_code"], "--eid", EID_A,
                                        code=2).stderr

    cancelled = json.loads(cli("esim", "cancel", "alice", "--json").stdout)
    assert cancelled == {"line": "alice", "iccid": iccid, "state": "available"}
    assert store.profiles[iccid].state == "available"


def test_an_unreachable_smdp_is_one_line(provisioned, monkeypatch):
    monkeypatch.setenv("CARRYOVER_ES2PLUS_URL", "http://127.0.0.1:9")
    result = cli("esim", "order", "alice", code=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "SM-DP+ unreachable" in lines[0]
    assert "Traceback" not in result.output


def test_serve_runs_the_api_under_uvicorn(monkeypatch):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    cli("serve", "--port", "8123", "--workers", "2")
    assert calls == [(("carryover.api.app:app_from_environment",),
                      {"factory": True, "host": "127.0.0.1", "port": 8123, "workers": 2,
                       "access_log": True})]
    monkeypatch.setenv("CARRYOVER_API_ACCESS_LOG", "false")  # setting api_access_log
    cli("serve", "--port", "8123")
    assert calls[-1][1]["access_log"] is False


def test_smdp_serve_loads_the_profiles(monkeypatch, tmp_path):
    import carryover.adapters.smdp_emulator as emulator_module

    seen = {}

    def fake_serve(store, host, port, **tls):
        seen.update(store=store, host=host, port=port, tls=tls)

    monkeypatch.setattr(emulator_module, "serve", fake_serve)
    batch = tmp_path / "p.csv"
    batch.write_text(inventory_csv(PROFILES))
    out = cli("smdp", "serve", "--profiles", str(batch), "--port", "8701").stdout
    assert "development and tests only" in out
    assert sorted(seen["store"].profiles) == sorted(r.iccid for r in PROFILES)
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8701)
    assert seen["tls"] == {"certfile": None, "keyfile": None, "client_ca": None}


def test_the_emulator_notifies_with_its_token_and_warns_without(monkeypatch):
    import carryover.adapters.smdp_emulator as smdp_emulator

    started = []
    monkeypatch.setattr(smdp_emulator, "serve", lambda store, *a, **k: started.append(store))
    monkeypatch.setenv("CARRYOVER_SMDP_EMULATOR_TOKEN", SMDP_TOKEN)
    out = cli("smdp", "serve", "--operator-url", "http://127.0.0.1:9").stdout
    assert started[-1].notify.headers["Authorization"] == f"Bearer {SMDP_TOKEN}"
    assert "warning" not in out

    monkeypatch.delenv("CARRYOVER_SMDP_EMULATOR_TOKEN")
    out = cli("smdp", "serve").stdout
    assert "Authorization" not in started[-1].notify.headers
    assert "CARRYOVER_SMDP_EMULATOR_TOKEN is not set" in out


def test_status_of_an_iccid_outside_the_inventory_shows_its_refused_notifications(
        provisioned):
    outsider = iccid(4242)
    assert "unknown line" in cli("esim", "status", outsider, code=2).stderr  # nothing yet
    progress = parse_download_progress({
        "iccid": outsider, "profileType": "consumer", "timestamp": "2026-01-02T10:00:00Z",
        "eid": EID_A, "notificationPointId": 3,
        "notificationPointStatus": {"status": "Executed-Success"}})
    with pytest.raises(download_progress.UnknownProfile):
        download_progress.receive(Carryover().uow(), progress, datetime.now(UTC), "smdp")
    out = cli("esim", "status", outsider).stdout
    assert f"ICCID {outsider} is not in the inventory" in out
    assert "(refused)" in out
    [kept] = json.loads(cli("esim", "status", outsider, "--json").stdout)["history"]
    assert kept["kind"] == "point 3 Executed-Success"
    assert kept["detail"]["refusal"]["reasonCode"] == "3.9"
