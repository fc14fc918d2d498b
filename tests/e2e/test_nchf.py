"""Nchf_ConvergedCharging over real HTTP on loopback (SQLite and PostgreSQL).

Every request sent and every answer received is validated against the 3GPP
schemas (tests/nchf_schema.py, specs/3gpp/). Expected grants are derived by
hand from the plans below and the settings the app runs with.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from carryover.domain.quota import SUCCESS
from carryover.services.charging import reauthorization_delivery
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger import provisioning
from carryover.store.charging_tables import quota_holds
from carryover.store.tables import ledger_entries, usage_events
from carryover.store.uow import UnitOfWork
from tests.api_support import JAN, Api, served_api
from tests.nchf_schema import validate, validate_problem

MB = 1024**2
GB = 1024**3
BASE = "/nchf-convergedcharging/v3"
SMF = {"nodeFunctionality": "SMF", "nFName": "6c7a9b1e-4f0e-4a8e-9d8e-2f4b1c3d5e6f"}
PLANS = {
    # A family pool that blocks, with rollover (for the boundary test).
    "fam-block-2gb": {"id": "fam-block-2gb", "name": "Family 2 GB, blocked after",
                      "kind": "metered", "allowance": {"data": "2GB"},
                      "rollover": {"kinds": ["allowance"], "lifetime": {"cycles": 1}},
                      "overage": {"action": "block"}},
    "roll-1gb": {"id": "roll-1gb", "name": "1 GB with rollover", "kind": "metered",
                 "allowance": {"data": "1GB"},
                 "rollover": {"kinds": ["allowance"], "lifetime": {"cycles": 1}},
                 "overage": {"action": "block", "redirect": "https://topup.example.com/"}},
    "throttle-1gb": {"id": "throttle-1gb", "name": "1 GB then 128 kbps", "kind": "metered",
                     "allowance": {"data": "1GB"},
                     "overage": {"action": "throttle", "kbps": "128kbps"}},
}
MAX_GRANT = 300 * MB


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def request(at: datetime, seq: int, units: list[dict], subscriber: str | None = None,
            **extra: Any) -> dict:
    body: dict[str, Any] = {"nfConsumerIdentification": SMF, "invocationTimeStamp": iso(at),
                            "invocationSequenceNumber": seq, "multipleUnitUsage": units, **extra}
    if subscriber is not None:
        body["subscriberIdentifier"] = subscriber
    validate("ChargingDataRequest", body)
    return body


def ask(rg: int = 1, volume: int | None = 100 * MB, used: list[tuple[int, int]] = (),
        at: datetime | None = None) -> dict:
    unit: dict[str, Any] = {"ratingGroup": rg}
    if volume is not None:
        unit["requestedUnit"] = {"totalVolume": volume}
    if used:
        unit["usedUnitContainer"] = [
            {"localSequenceNumber": n, "totalVolume": amount,
             **({"triggerTimestamp": iso(at)} if at else {})} for n, amount in used]
    return unit


class Smf:
    """The packet core's side: posts requests and checks every answer's schema."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def create(self, body: dict, expect: int = 201) -> tuple[str | None, dict]:
        r = self.api.call("POST", f"{BASE}/chargingdata", json=body)
        assert r.status_code == expect, r.text
        if expect != 201:
            validate_problem(r.json())
            return None, r.json()
        validate("ChargingDataResponse", r.json())
        location = r.headers["location"]
        assert location.startswith(self.api.url + BASE + "/chargingdata/")
        return location.rsplit("/", 1)[1], r.json()

    def update(self, ref: str, body: dict, expect: int = 200) -> dict:
        r = self.api.call("POST", f"{BASE}/chargingdata/{ref}/update", json=body)
        assert r.status_code == expect, r.text
        if expect == 200:
            validate("ChargingDataResponse", r.json())
        else:
            validate_problem(r.json())
        return r.json()

    def release(self, ref: str, body: dict, expect: int = 204) -> None:
        r = self.api.call("POST", f"{BASE}/chargingdata/{ref}/release", json=body)
        assert r.status_code == expect, r.text
        if expect == 204:
            assert r.content == b""
        else:
            validate_problem(r.json())


def unit_info(answer: dict, rg: int = 1) -> dict:
    (info,) = [u for u in answer["multipleUnitInformation"] if u["ratingGroup"] == rg]
    return info


def granted(answer: dict, rg: int = 1) -> int:
    return unit_info(answer, rg).get("grantedUnit", {}).get("totalVolume", 0)


# `routed`: every request through FastAPI's route; `fast`: the operator key is
# remembered after its first use, so the rest take api.nchf_fast (checked at the end).
@pytest.fixture(params=[0, 60], ids=["routed", "fast"])
def api(db_url: str, request: pytest.FixtureRequest) -> Iterator[Api]:
    with served_api(db_url, api_key_cache_seconds=request.param, nchf_max_grant=MAX_GRANT,
                    nchf_validity_seconds=3600, nchf_threshold_percent=20,
                    nchf_hold_margin_seconds=60,
                    nchf_rating_groups={20: "hotspot"}) as served:
        with UnitOfWork(served.engine) as uow:
            for plan_id, body in PLANS.items():
                uow.plans.upsert(plan_id, body, "file", JAN)
            uow.commit()
        eng = served.engine
        provisioning.create_account(UnitOfWork(eng), "pool", 1, "UTC", JAN, "fam-block-2gb")
        for n in range(1, 4):
            provisioning.create_line(UnitOfWork(eng), "pool", f"+1415555070{n}", JAN,
                                     line_id=f"p{n}", imsi=f"31026000000070{n}")
        provisioning.create_account(UnitOfWork(eng), "roll", 1, "UTC", JAN)
        provisioning.create_line(UnitOfWork(eng), "roll", "+14155550801", JAN, "roll-1gb",
                                 line_id="r1", imsi="310260000000801")
        provisioning.create_account(UnitOfWork(eng), "slow", 1, "UTC", JAN)
        provisioning.create_line(UnitOfWork(eng), "slow", "+14155550901", JAN, "throttle-1gb",
                                 line_id="t1", imsi="310260000000901")
        provisioning.create_account(UnitOfWork(eng), "unl", 1, "UTC", JAN)
        provisioning.create_line(UnitOfWork(eng), "unl", "+14155551001", JAN, "tmobile-go5g",
                                 line_id="u1", imsi="310260000001001")
        yield served


def available(api: Api, line: str, at: datetime) -> int:
    return ledger_ops.balance(UnitOfWork(api.engine), line, at)["available"]["data"]


def stored_usage(api: Api, line: str) -> int:
    with api.engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.sum(usage_events.c.amount), 0))
                                .where(usage_events.c.line == line)).scalar_one())


def holds(api: Api) -> list[tuple]:
    with api.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(
            quota_holds.c.ref, quota_holds.c.rating_group, quota_holds.c.amount)
            .order_by(quota_holds.c.ref, quota_holds.c.rating_group))]


T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def test_a_session_is_granted_charged_and_released(api: Api) -> None:
    smf = Smf(api)
    ref, answer = smf.create(request(T0, 0, [ask(1, 100 * MB)], "imsi-310260000000801"))
    info = unit_info(answer)
    assert info["resultCode"] == "SUCCESS"
    assert granted(answer) == 100 * MB
    assert info["volumeQuotaThreshold"] == 20 * MB  # 20 % of the grant
    assert info["validityTime"] == 3600
    assert "finalUnitIndication" not in info
    assert answer["invocationSequenceNumber"] == 0
    # The grant is held: the balance is untouched, and the hold is stored.
    assert available(api, "r1", T0) == 1 * GB
    assert holds(api) == [(ref, 1, 100 * MB)]

    t1 = T0 + timedelta(minutes=5)
    answer = smf.update(ref, request(t1, 1, [ask(1, 100 * MB, [(1, 70 * MB)], t1)]))
    assert granted(answer) == 100 * MB
    assert stored_usage(api, "r1") == 70 * MB
    assert available(api, "r1", t1) == 1 * GB - 70 * MB

    t2 = T0 + timedelta(minutes=10)
    smf.release(ref, request(t2, 2, [ask(1, None, [(2, 30 * MB)], t2)]))
    assert stored_usage(api, "r1") == 100 * MB
    assert available(api, "r1", t2) == 1 * GB - 100 * MB
    assert holds(api) == []
    # Released is released: a second release changes nothing, an update is refused.
    smf.release(ref, request(t2, 3, [ask(1, None, [(3, 5 * MB)], t2)]))
    assert stored_usage(api, "r1") == 100 * MB
    problem = smf.update(ref, request(t2, 4, [ask()]), expect=404)
    assert problem["cause"] == "CONTEXT_NOT_FOUND"


def test_reports_sent_twice_are_counted_once(api: Api) -> None:
    smf = Smf(api)
    ref, _ = smf.create(request(T0, 0, [ask()], "msisdn-14155550801"))
    t1 = T0 + timedelta(minutes=1)
    first = smf.update(ref, request(t1, 1, [ask(1, 100 * MB, [(1, 40 * MB)], t1)]))
    # A retransmission (same invocationSequenceNumber) gets the same answer, not a new grant.
    again = smf.update(ref, request(t1, 1, [ask(1, 100 * MB, [(1, 40 * MB)], t1)],
                                    retransmissionIndicator=True))
    assert again["multipleUnitInformation"] == first["multipleUnitInformation"]
    # A container already reported (same localSequenceNumber) in a later request: once.
    t2 = T0 + timedelta(minutes=2)
    smf.update(ref, request(t2, 2, [ask(1, 100 * MB, [(1, 40 * MB), (2, 10 * MB)], t2)]))
    assert stored_usage(api, "r1") == 50 * MB
    # An older sequence number than the last answered is refused.
    problem = smf.update(ref, request(t2, 1, [ask()]), expect=400)
    assert problem["cause"] == "CHARGING_FAILED"


def test_two_sessions_cannot_be_granted_the_same_bytes(api: Api) -> None:
    smf = Smf(api)
    # r1 has 1 GB; max grant 300 MB: grants 300, 300, 300, then the last 124 MB.
    grants, refs = [], []
    for n in range(4):
        ref, answer = smf.create(request(T0, 0, [ask(1, 400 * MB)], "imsi-310260000000801"))
        grants.append(granted(answer))
        refs.append(ref)
        info = unit_info(answer)
        if n < 3:
            assert "finalUnitIndication" not in info
    assert grants == [300 * MB, 300 * MB, 300 * MB, 124 * MB]
    # The last of the line's data on a blocking plan with a top-up page: REDIRECT there.
    assert unit_info(answer)["finalUnitIndication"] == {
        "finalUnitAction": "REDIRECT",
        "redirectServer": {"redirectAddressType": "URL",
                           "redirectServerAddress": "https://topup.example.com/"}}
    ref, answer = smf.create(request(T0, 0, [ask()], "imsi-310260000000801"))
    info = unit_info(answer)
    assert info["resultCode"] == "QUOTA_LIMIT_REACHED"
    assert "grantedUnit" not in info
    assert info["finalUnitIndication"]["finalUnitAction"] == "REDIRECT"
    # Releasing one session gives its bytes back to the others.
    smf.release(refs[0], request(T0, 1, [ask(1, None, [(1, 100 * MB)], T0)]))
    answer = smf.update(ref, request(T0, 1, [ask(1, 400 * MB)]))
    assert granted(answer) == 200 * MB


def test_an_expired_grant_holds_nothing(api: Api) -> None:
    smf = Smf(api)
    smf.create(request(T0, 0, [ask(1, 300 * MB)], "imsi-310260000000801"))
    smf.create(request(T0, 0, [ask(1, 300 * MB)], "imsi-310260000000801"))
    smf.create(request(T0, 0, [ask(1, 300 * MB)], "imsi-310260000000801"))
    _, answer = smf.create(request(T0, 0, [ask(1, 300 * MB)], "imsi-310260000000801"))
    assert granted(answer) == 124 * MB
    # validityTime 3600 s + margin 60 s: a second later the holds are gone.
    later = T0 + timedelta(seconds=3661)
    _, answer = smf.create(request(later, 0, [ask(1, 300 * MB)], "imsi-310260000000801"))
    assert granted(answer) == 300 * MB
    assert len(holds(api)) == 1


def test_a_throttled_line_keeps_service_and_gets_its_speed(api: Api) -> None:
    smf = Smf(api)
    ref, _ = smf.create(request(T0, 0, [ask(1, 300 * MB)], "imsi-310260000000901"))
    t1 = T0 + timedelta(minutes=1)
    used = [(n, 300 * MB) for n in range(1, 4)] + [(4, 124 * MB)]
    session = {"pduSessionInformation": {"pduSessionID": 5, "dnnId": "internet"}}
    answer = smf.update(ref, request(t1, 1, [ask(1, 300 * MB, used, t1)],
                                     pDUSessionChargingInformation=session))
    assert available(api, "t1", t1) == 0
    info = unit_info(answer)
    assert info["resultCode"] == "SUCCESS"
    assert granted(answer) == 300 * MB  # overage at 128 kbps, not refused
    assert "finalUnitIndication" not in info
    assert info["qosDecision"] == {"state": "throttled", "maxDownlinkKbps": 128}
    ambr = answer["pDUSessionChargingInformation"]["pduSessionInformation"]
    assert ambr["authorizedSessionAMBR"] == {"uplink": "128 Kbps", "downlink": "128 Kbps"}


def test_unlimited_plans_grant_the_maximum(api: Api) -> None:
    smf = Smf(api)
    _, answer = smf.create(request(T0, 0, [ask(1, 10 * GB), {"ratingGroup": 20,
                                                              "requestedUnit": {}}],
                                   "imsi-310260000001001"))
    assert granted(answer, 1) == MAX_GRANT
    assert granted(answer, 20) == MAX_GRANT  # no requestedUnit volume: the maximum
    assert unit_info(answer, 1)["qosDecision"] == {"state": "normal"}


def test_hotspot_rating_group_is_throttled_past_the_hotspot_allowance(api: Api) -> None:
    smf = Smf(api)
    ref, _ = smf.create(request(T0, 0, [ask(20, MAX_GRANT)], "imsi-310260000001001"))
    t1 = T0 + timedelta(hours=1)
    used = [(1, 50 * GB)]  # rating group 20 is `hotspot` (nchf_rating_groups)
    answer = smf.update(ref, request(t1, 1, [ask(20, MAX_GRANT, used, t1), ask(1)]))
    assert unit_info(answer, 20)["qosDecision"] == {"state": "throttled",
                                                    "maxDownlinkKbps": 600}
    assert unit_info(answer, 1)["qosDecision"] == {"state": "normal"}


def test_a_session_across_the_boundary_gets_the_new_cycles_rollover(api: Api) -> None:
    smf = Smf(api)
    late_jan = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
    ref, answer = smf.create(request(late_jan, 0, [ask(1, 300 * MB)], "imsi-310260000000801"))
    # The grant ends at the boundary, so the core comes back for the new cycle.
    assert unit_info(answer)["validityTime"] == 3600
    used_at = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
    feb = datetime(2026, 2, 1, 0, 0, 5, tzinfo=UTC)
    answer = smf.update(ref, request(feb, 1, [ask(1, 2 * GB, [(1, 600 * MB)], used_at)]))
    # January: 1 GB - 600 MB = 424 MB rolls over; February: 1 GB + 424 MB, capped by the max.
    assert available(api, "r1", feb) == 1 * GB + 424 * MB
    assert granted(answer) == MAX_GRANT
    before = (datetime(2026, 1, 31, 23, 59, tzinfo=UTC))
    assert available(api, "r1", before) == 424 * MB


def test_twenty_concurrent_sessions_on_a_pool_never_overspend(api: Api) -> None:
    # The pool has 2 GB; p1 uses 1 GB first, so 1 GB is left for 20 sessions asking 100 MB.
    ledger_ops.record_usage(UnitOfWork(api.engine), "p1", 1 * GB, T0, T0, "pre-1")
    assert available(api, "p2", T0) == 1 * GB
    lines = ["310260000000701", "310260000000702", "310260000000703"]

    def session(n: int) -> tuple[str | None, int]:
        body = request(T0, 0, [ask(1, 100 * MB)], "imsi-" + lines[n % 3])
        with httpx.Client(timeout=60) as client:
            r = client.post(api.url + f"{BASE}/chargingdata", json=body,
                            headers={"Authorization": f"Bearer {api.tokens['operator']}"})
        assert r.status_code == 201, r.text
        validate("ChargingDataResponse", r.json())
        return r.headers["location"].rsplit("/", 1)[1], granted(r.json())

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(session, range(20)))
    total = sum(g for _, g in results)
    assert total == 1 * GB  # never more; and nothing held back either
    assert sorted(g for _, g in results)[-10:] == [100 * MB] * 10
    # Each session uses 60 % of what it got and releases: conservation holds.
    smf = Smf(api)
    t1 = T0 + timedelta(minutes=3)
    used_total = 0
    for ref, grant in results:
        used = grant * 6 // 10
        used_total += used
        smf.release(ref, request(t1, 1, [ask(1, None, [(1, used)], t1)]))
    assert holds(api) == []
    assert sum(stored_usage(api, line) for line in ("p1", "p2", "p3")) == 1 * GB + used_total
    assert available(api, "p2", t1) == 1 * GB - used_total
    with api.engine.connect() as conn:
        debits = conn.execute(select(func.sum(ledger_entries.c.amount)).where(
            ledger_entries.c.kind == "debit", ledger_entries.c.owner == "pool")).scalar_one()
    assert debits == 1 * GB + used_total


def test_bad_requests_and_unknown_names(api: Api) -> None:
    smf = Smf(api)
    _, problem = smf.create(request(T0, 0, [ask()], "imsi-999999999999999"), expect=404)
    assert problem["cause"] == "USER_UNKNOWN"
    problem = smf.update("no-such-ref", request(T0, 1, [ask()]), expect=404)
    assert problem["cause"] == "CONTEXT_NOT_FOUND"
    smf.release("no-such-ref", request(T0, 1, [ask()]), expect=404)
    body = {"nfConsumerIdentification": SMF, "invocationTimeStamp": iso(T0),
            "subscriberIdentifier": "imsi-310260000000801",
            "multipleUnitUsage": [{"ratingGroup": "one"}]}
    r = api.call("POST", f"{BASE}/chargingdata", json=body)
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    validate_problem(r.json())
    assert r.json()["cause"] == "MANDATORY_IE_MISSING"
    params = {p["param"] for p in r.json()["invalidParams"]}
    assert params == {"/invocationSequenceNumber", "/multipleUnitUsage/0/ratingGroup"}
    twice = request(T0, 0, [ask(1), ask(1)], "imsi-310260000000801")
    r = api.call("POST", f"{BASE}/chargingdata", json=twice)
    assert r.status_code == 400
    assert r.json()["invalidParams"] == [{"param": "/multipleUnitUsage",
                                          "reason": "a rating group appears more than once"}]
    # Without an operator key: refused before anything is read.
    r = api.call("POST", f"{BASE}/chargingdata", who="acme",
                 json=request(T0, 0, [ask()], "imsi-310260000000801"))
    assert r.status_code == 403
    assert holds(api) == []


def test_what_the_fast_path_leaves_to_the_route(api: Api) -> None:
    smf = Smf(api)
    ref, _ = smf.create(request(T0, 0, [ask()], "imsi-310260000000801"))
    # A volume the spec allows (Uint64) but a signed 64-bit ledger cannot hold: 400,
    # nothing stored, the session goes on.
    r = api.call("POST", f"{BASE}/chargingdata/{ref}/update",
                 json=request(T0 + timedelta(minutes=1), 1, [ask(used=[(0, 2**63)])]))
    assert r.status_code == 400 and r.json()["cause"] == "INVALID_MSG_FORMAT"
    validate_problem(r.json())
    assert stored_usage(api, "r1") == 0
    good = request(T0 + timedelta(minutes=2), 2, [ask(used=[(0, MB)])])
    # Not JSON by its content type: the route decides (400), as without the fast path.
    r = api.client.post(f"{api.url}{BASE}/chargingdata/{ref}/update", content=json.dumps(good),
                        headers={"Authorization": f"Bearer {api.tokens['operator']}",
                                 "Content-Type": "text/plain"})
    assert r.status_code == 400
    assert stored_usage(api, "r1") == 0
    assert granted(smf.update(ref, good)) > 0
    assert stored_usage(api, "r1") == MB


def test_a_request_is_charged_to_the_rate_limit_once(db_url: str) -> None:
    with served_api(db_url, api_rate_per_second=0.001, api_rate_burst=2,
                    api_key_cache_seconds=60) as api:
        bad = {"nfConsumerIdentification": SMF, "invocationTimeStamp": iso(T0),
               "invocationSequenceNumber": "zero"}
        first = api.call("POST", f"{BASE}/chargingdata", json=bad)  # checks the key
        second = api.call("POST", f"{BASE}/chargingdata", json=bad)  # the key is known
        third = api.call("POST", f"{BASE}/chargingdata", json=bad)
    assert [first.status_code, second.status_code, third.status_code] == [400, 400, 429]


def test_a_sessions_other_rating_groups_keep_their_holds(api: Api) -> None:
    smf = Smf(api)
    a, _ = smf.create(request(T0, 0, [ask(1, 200 * MB), ask(2, 200 * MB)],
                              "imsi-310260000000801"))
    smf.create(request(T0, 0, [ask(1, 300 * MB)], "imsi-310260000000801"))
    smf.create(request(T0, 0, [ask(1, 300 * MB)], "imsi-310260000000801"))
    # Held: 200 + 200 + 300 + 300 of 1 GB. A asks again for rating group 1 only: its
    # old 200 MB are replaced, its 200 MB of rating group 2 still hold.
    answer = smf.update(a, request(T0, 1, [ask(1, 300 * MB)]))
    assert granted(answer) == 1 * GB - 200 * MB - 300 * MB - 300 * MB
    assert sorted(amount for ref, _, amount in holds(api) if ref == a) == [200 * MB, 224 * MB]


def test_volumes_and_instants_out_of_bounds_are_400_naming_the_member(api: Api) -> None:
    # docs/semantics.md, Bounds: a report or request of more than 2^50 bytes, or an
    # instant in the future past the clock skew, is refused before anything is stored.
    smf = Smf(api)
    ref, _ = smf.create(request(T0, 0, [ask()], "imsi-310260000000801"))
    later = T0 + timedelta(minutes=1)
    r = api.call("POST", f"{BASE}/chargingdata/{ref}/update",
                 json=request(later, 1, [ask(used=[(0, 2**50 + 1)])]))
    assert r.status_code == 400
    param = r.json()["invalidParams"][0]
    assert param["param"] == "/multipleUnitUsage/0/usedUnitContainer/0/totalVolume"
    assert "2^50" in param["reason"]
    r = api.call("POST", f"{BASE}/chargingdata/{ref}/update",
                 json=request(later, 1, [ask(volume=2**51)]))
    assert r.status_code == 400
    assert r.json()["invalidParams"][0]["param"] == "/multipleUnitUsage/0/requestedUnit/totalVolume"
    far = datetime(9999, 12, 1, tzinfo=UTC)
    r = api.call("POST", f"{BASE}/chargingdata/{ref}/update",
                 json=request(far, 1, [ask(used=[(0, MB)], at=far)]))
    assert r.status_code == 400
    assert r.json()["invalidParams"][0]["param"] == "/invocationTimeStamp"
    assert "in the future" in r.json()["invalidParams"][0]["reason"]
    assert stored_usage(api, "r1") == 0
    assert granted(smf.update(ref, request(later, 1, [ask(used=[(0, 2**20)])]))) > 0
    assert stored_usage(api, "r1") == 2**20


# An SMF that did not get its 201 sends the create again; here both copies at once.
PDU = {"chargingId": 4711,
       "pduSessionInformation": {"pduSessionID": 5, "dnnId": "internet"}}


def test_a_create_sent_twice_at_once_opens_one_session(api: Api) -> None:
    ledger_ops.record_usage(UnitOfWork(api.engine), "p1", 2 * GB - 200 * MB, T0, T0, "pre-1")
    body = request(T0, 0, [ask(1, 100 * MB)], "imsi-310260000000702",
                   pDUSessionChargingInformation=PDU)
    start = threading.Barrier(2)
    answers: list[httpx.Response | None] = [None, None]

    def send(k: int) -> None:
        with httpx.Client(timeout=60) as client:
            start.wait()
            answers[k] = client.post(
                api.url + f"{BASE}/chargingdata", json=body,
                headers={"Authorization": f"Bearer {api.tokens['operator']}"})

    threads = [threading.Thread(target=send, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first, copy = answers
    assert first is not None and copy is not None
    assert (first.status_code, copy.status_code) == (201, 201), (first.text, copy.text)
    for r in (first, copy):
        validate("ChargingDataResponse", r.json())
    assert first.headers["location"] == copy.headers["location"]
    assert first.json() == copy.json() and granted(first.json()) == 100 * MB
    ref = first.headers["location"].rsplit("/", 1)[1]
    assert holds(api) == [(ref, 1, 100 * MB)]

    smf = Smf(api)
    other, answer = smf.create(request(T0, 0, [ask(1, 100 * MB)], "imsi-310260000000703",
                                       pDUSessionChargingInformation={
                                           **PDU, "chargingId": 4712}))
    assert unit_info(answer)["resultCode"] == SUCCESS and granted(answer) == 100 * MB
    # The session goes on as one: its update is answered, and a third copy of the
    # create after it is refused (400) instead of opening a session.
    t1 = T0 + timedelta(minutes=1)
    update = smf.update(ref, request(t1, 1, [ask(1, 50 * MB, [(1, 100 * MB)], t1)]))
    assert granted(update) == 0  # the pool's 200 MB: p2's 100 used, p3's 100 held
    _, refused = smf.create(body, expect=400)
    assert refused["cause"] == "CHARGING_FAILED" and ref in refused["detail"]
    assert sorted(h[0] for h in holds(api)) == [other]


FREE5GC = {"nodeFunctionality": "SMF", "nFName": "SMF", "nFIPv4Address": "127.0.0.2"}


def test_an_smf_that_numbers_nothing_is_charged_every_byte(api: Api) -> None:
    # As free5GC's SMF sends them (docs/nchf.md, "Sequence numbers"): every request
    # numbered 0, every container numbered 0, two containers of one rating group.
    smf = Smf(api)
    before = available(api, "r1", T0)
    ref, _ = smf.create(request(T0, 0, [ask()], "imsi-310260000000801",
                                nfConsumerIdentification=FREE5GC,
                                pDUSessionChargingInformation=PDU))
    sent = 0
    for k in range(1, 4):
        at = T0 + timedelta(seconds=30 * k)
        body = request(at, 0, [ask(1, 100 * MB, [(0, k * MB), (0, 2 * MB)], at)],
                       nfConsumerIdentification=FREE5GC)
        answer = smf.update(ref, body)
        assert granted(answer) == 100 * MB
        sent += k * MB + 2 * MB
    assert stored_usage(api, "r1") == sent
    again = smf.update(ref, body)  # the last report sent again: counted once
    assert again == answer and stored_usage(api, "r1") == sent
    end = T0 + timedelta(minutes=3)
    smf.release(ref, request(end, 0, [ask(1, None, [(0, 5 * MB)], end)],
                             nfConsumerIdentification=FREE5GC))
    assert stored_usage(api, "r1") == sent + 5 * MB
    assert available(api, "r1", end) == before - sent - 5 * MB


class CoreListener:
    """The SMF's side of re-authorization, on loopback: it records each
    ChargingNotifyRequest (validated against the 3GPP schema) and answers 204."""

    def __init__(self) -> None:
        import http.server

        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                body = json.loads(self.rfile.read(length))
                received.append((self.path, body, dict(self.headers)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, seconds: float = 10.0) -> list:
        import time
        deadline = time.monotonic() + seconds
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def reauthorize(api: Api) -> dict[str, int]:
    return reauthorization_delivery.deliver_once(UnitOfWork(api.engine),
                                                 api.app.state.carry.settings)


@pytest.fixture
def core() -> Iterator[CoreListener]:
    listener = CoreListener()
    yield listener
    listener.close()


def test_a_pool_drained_by_another_member_asks_the_other_session_again(
        api: Api, core: CoreListener) -> None:
    # The pool has 150 MB left; p2 holds 100 MB of it in a session that gave a notifyUri.
    ledger_ops.record_usage(UnitOfWork(api.engine), "p1", 2 * GB - 150 * MB, T0, T0, "pre-1")
    smf = Smf(api)
    ref2, answer = smf.create(request(T0, 0, [ask(1, 100 * MB)], "imsi-310260000000702",
                                      notifyUri=f"{core.url}/notify/p2"))
    assert granted(answer) == 100 * MB
    ref3, answer = smf.create(request(T0, 0, [ask(1, 100 * MB)], "imsi-310260000000703"))
    assert granted(answer) == 50 * MB
    assert reauthorize(api)["delivered"] == 0  # nothing moved p2's standing yet
    # p3 reports 150 MB: the pool is empty, so p2's standing moved (it has no data left).
    t1 = T0 + timedelta(minutes=1)
    smf.update(ref3, request(t1, 1, [ask(1, 100 * MB, [(1, 150 * MB)], t1)]))
    # What each serve worker's loop does (api/worker.py; the test server runs no lifespan).
    assert reauthorize(api) == {"delivered": 1, "retrying": 0, "dead": 0}
    ((path, body, _),) = core.wait(1)
    assert path == "/notify/p2"
    validate("ChargingNotifyRequest", body)
    assert body == {"notificationType": "REAUTHORIZATION",
                    "reauthorizationDetails": [{"ratingGroup": 1}]}
    # The core re-authorizes: p2's update now learns the pool is empty.
    again = smf.update(ref2, request(t1, 1, [ask(1, 100 * MB)]))
    assert granted(again) == 0 and unit_info(again)["resultCode"] == "QUOTA_LIMIT_REACHED"
    with UnitOfWork(api.engine) as uow:
        (sent,) = uow.reauthorizations.of_session(ref2)
    assert (sent.status, sent.attempts, sent.rating_groups) == ("delivered", 1, [1])
    assert reauthorize(api)["delivered"] == 0  # its own answer asks for nothing more
    assert len(core.received) == 1


def test_a_top_up_for_a_throttled_line_asks_its_core_again_at_once(
        api: Api, core: CoreListener) -> None:
    smf = Smf(api)
    ref, _ = smf.create(request(T0, 0, [ask(1, 300 * MB)], "imsi-310260000000901",
                                notifyUri=f"{core.url}/notify/t1"))
    t1 = T0 + timedelta(minutes=1)
    used = [(n, 300 * MB) for n in range(1, 4)] + [(4, 124 * MB)]
    answer = smf.update(ref, request(t1, 1, [ask(1, 300 * MB, used, t1)]))
    assert unit_info(answer)["qosDecision"] == {"state": "throttled", "maxDownlinkKbps": 128}
    assert reauthorize(api)["delivered"] == 0  # its own update changed nothing else
    # A top-up on another line of another account asks nobody.
    bought = {"amount": 500 * MB, "valid_days": 30, "at": iso(t1 + timedelta(seconds=30))}
    assert api.call("POST", "/v1/lines/r1/top-ups", json=bought).status_code == 201
    assert reauthorize(api)["delivered"] == 0
    # The subscriber buys a top-up: the core is asked to re-authorize, and gets full speed.
    assert api.call("POST", "/v1/lines/t1/top-ups", json=bought).status_code == 201
    assert reauthorize(api) == {"delivered": 1, "retrying": 0, "dead": 0}
    ((path, body, _),) = core.received
    assert path == "/notify/t1"
    validate("ChargingNotifyRequest", body)
    assert body["reauthorizationDetails"] == [{"ratingGroup": 1}]
    t2 = t1 + timedelta(minutes=1)
    again = smf.update(ref, request(t2, 2, [ask(1, 300 * MB)]))
    assert unit_info(again)["qosDecision"] == {"state": "normal"}
    assert granted(again) == 300 * MB
    with UnitOfWork(api.engine) as uow:
        (sent,) = uow.reauthorizations.of_session(ref)
    assert sent.reason.startswith("t1: top-up ")


def test_a_malformed_notify_uri_is_refused_at_the_create(api: Api) -> None:
    smf = Smf(api)
    for uri in ("ftp://core.example/notify", "http://user:pw@core.example/n", "http:///n"):
        _, problem = smf.create(request(T0, 0, [ask()], "imsi-310260000000801",
                                        notifyUri=uri), expect=400)
        assert [p["param"] for p in problem["invalidParams"]] == ["/notifyUri"], uri
    assert holds(api) == []

