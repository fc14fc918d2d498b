"""The Nchf schema validator (tests/nchf_schema.py) catches what it must.

Tests of the Nchf_ConvergedCharging API lean on `validate`: a validator that
lets everything through would make them pass vacuously. So each kind of error
is shown to be caught (a missing required field, a wrong type, a negative
Uint64, a bad value behind a `$ref` into another file), with the JSON path in
the message, and the vendored spec folder is shown to hold every file that
TS 32.291 reaches through its `$ref`s.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.nchf_schema import (
    NCHF,
    SPECS,
    OpenApi30Validator,
    errors,
    validate,
    validate_problem,
)

REQUEST = {
    "subscriberIdentifier": "imsi-262010000000001",
    "nfConsumerIdentification": {"nodeFunctionality": "SMF"},
    "invocationTimeStamp": "2026-11-24T08:00:00+01:00",
    "invocationSequenceNumber": 3,
    "multipleUnitUsage": [{
        "ratingGroup": 1,
        "requestedUnit": {"totalVolume": 10_000_000},
        "usedUnitContainer": [{"localSequenceNumber": 2, "totalVolume": 4_000_000,
                               "triggerTimestamp": "2026-11-24T07:59:58Z"}],
    }],
}

RESPONSE = {
    "invocationTimeStamp": "2026-11-24T08:00:00Z",
    "invocationSequenceNumber": 3,
    "multipleUnitInformation": [{
        "ratingGroup": 1,
        "resultCode": "SUCCESS",
        "grantedUnit": {"totalVolume": 10_000_000},
        "validityTime": 3600,
        "finalUnitIndication": {"finalUnitAction": "TERMINATE"},
    }],
}


def _request(**changes) -> dict:
    body = copy.deepcopy(REQUEST)
    body.update(changes)
    return body


def _fails(schema: str, body: object, *fragments: str) -> str:
    """Assert `validate` refuses `body` and its message names every fragment."""
    with pytest.raises(AssertionError) as caught:
        validate(schema, body)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_valid_request_and_response_pass() -> None:
    validate("ChargingDataRequest", REQUEST)
    validate("ChargingDataResponse", RESPONSE)


def test_missing_invocation_sequence_number_is_caught() -> None:
    body = _request()
    del body["invocationSequenceNumber"]
    _fails("ChargingDataRequest", body, "$:", "'invocationSequenceNumber' is a required property")


def test_rating_group_must_be_an_integer() -> None:
    body = _request()
    body["multipleUnitUsage"][0]["ratingGroup"] = "x"
    _fails("ChargingDataRequest", body, "$.multipleUnitUsage[0].ratingGroup",
           "'x' is not of type 'integer'")


def test_negative_total_volume_is_caught() -> None:
    body = _request()
    body["multipleUnitUsage"][0]["usedUnitContainer"][0]["totalVolume"] = -1
    _fails("ChargingDataRequest", body,
           "$.multipleUnitUsage[0].usedUnitContainer[0].totalVolume", "minimum of 0")


def test_every_error_is_reported_with_its_path() -> None:
    body = _request(invocationSequenceNumber=-5)
    body["multipleUnitUsage"][0]["ratingGroup"] = "x"
    message = _fails("ChargingDataRequest", body, "(2 errors)", "$.invocationSequenceNumber",
                     "$.multipleUnitUsage[0].ratingGroup")
    assert message.startswith("not a valid ChargingDataRequest")


def test_refs_into_the_common_data_file_are_checked() -> None:
    # invocationTimeStamp is TS29571_CommonData.yaml#/.../DateTime (format date-time).
    for stamp in ("yesterday", "2026-11-24 08:00:00", "2026-11-24T08:00:00",
                  "2026-13-01T00:00:00Z"):
        _fails("ChargingDataRequest", _request(invocationTimeStamp=stamp),
               "$.invocationTimeStamp", "is not a 'date-time'")
    # Supi's pattern ends in `|.+`: any non-empty string is a Supi, the empty one is not.
    _fails("ChargingDataRequest", _request(subscriberIdentifier=""), "$.subscriberIdentifier",
           "does not match")
    _fails("ChargingDataRequest", _request(subscriberIdentifier=262010000000001),
           "$.subscriberIdentifier", "is not of type 'string'")


def test_response_grant_and_final_unit_are_checked() -> None:
    body = copy.deepcopy(RESPONSE)
    body["multipleUnitInformation"][0]["grantedUnit"]["totalVolume"] = -10
    body["multipleUnitInformation"][0]["finalUnitIndication"] = {}
    _fails("ChargingDataResponse", body,
           "$.multipleUnitInformation[0].grantedUnit.totalVolume",
           "$.multipleUnitInformation[0].finalUnitIndication",
           "'finalUnitAction' is a required property")


def test_problem_details() -> None:
    validate_problem({"type": "https://example.com/quota", "title": "Quota exhausted",
                      "status": 403, "cause": "QUOTA_LIMIT_REACHED",
                      "invalidParams": [{"param": "/multipleUnitUsage/0", "reason": "x"}]})
    with pytest.raises(AssertionError, match=r"\$\.status: 'forbidden' is not of type"):
        validate_problem({"status": "forbidden"})
    with pytest.raises(AssertionError, match=r"\$\.invalidParams\[0\]: 'param' is a required"):
        validate_problem({"status": 400, "invalidParams": [{"reason": "bad"}]})


def test_unknown_schema_name_is_an_error_not_a_pass() -> None:
    with pytest.raises(KeyError, match="ChargingDataRequst"):
        validate("ChargingDataRequst", REQUEST)


def test_nullable_admits_null_only_where_declared() -> None:
    schema = {"type": "object", "properties": {
        "a": {"type": "integer", "nullable": True},
        "b": {"type": "integer"},
        "c": {"type": "string", "enum": ["X"], "nullable": True},
    }}
    check = OpenApi30Validator(schema)
    assert check.is_valid({"a": None, "b": 1, "c": None})
    assert not check.is_valid({"b": None})
    assert not check.is_valid({"a": "1"})


def _refs(node: object):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_vendored_specs_hold_every_file_ts32291_reaches() -> None:
    """Follow every $ref from the whole TS 32.291 document, schema by schema."""
    documents: dict[str, dict] = {}
    seen: set[tuple[str, str]] = set()
    todo = [(NCHF, "")]
    while todo:
        name, pointer = todo.pop()
        if (name, pointer) in seen:
            continue
        seen.add((name, pointer))
        if name not in documents:
            path = SPECS / name
            assert path.is_file(), f"{name} is referenced but not vendored in specs/3gpp/"
            documents[name] = yaml.safe_load(path.read_text(encoding="utf-8"))
        node = documents[name]
        for part in filter(None, pointer.split("/")):
            key = part.replace("~1", "/").replace("~0", "~")
            assert key in node, f"{name}#{pointer} does not resolve"
            node = node[key]
        for ref in _refs(node):
            target, _, target_pointer = ref.partition("#")
            todo.append((target or name, target_pointer))
    reached = {name for name, _ in seen}
    vendored = {p.name for p in SPECS.glob("*.yaml")}
    # Exactly what is needed: no file copied that TS 32.291 never reaches.
    assert reached == vendored
    assert len(seen) > 300  # the walk really followed the schemas
    assert errors(NCHF, "ChargingDataRequest", REQUEST) == []
