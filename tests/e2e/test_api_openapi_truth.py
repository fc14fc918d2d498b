"""The served OpenAPI tells the truth: every $ref resolves, every status an operation
answers with is documented, and Nchf errors keep the TS 29.571 shape (`cause`).

Over loopback against the world of tests.api_support. Each unreadable body is one
the JSON parser cannot decode at all: bytes that are not UTF-8, or nesting deeper
than Python's parser allows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api_support import Api, served_api
from tests.unit.test_nchf_schema import _refs

NCHF = "/nchf-convergedcharging/v3/chargingdata"
UNREADABLE = {"not UTF-8": b'\xff{"a": 1}', "UTF-16 noise": b'\xff\xfe{"a": 1}',
              "too deep": b"[" * 100_000, "not JSON": b"{not json"}
PATH_VALUES = {"line": "a1", "endpoint_id": "1", "delivery_id": "1", "chargingDataRef": "x",
               "name": "acme", "plan_id": "travel-5gb-30d"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    path = tmp_path_factory.mktemp("openapi") / "carryover.db"
    with served_api(f"sqlite:///{path}") as served:
        yield served


@pytest.fixture(scope="module")
def spec(api: Api) -> dict[str, Any]:
    return api.client.get(f"{api.url}/openapi.json").json()


def _resolve(spec: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = spec
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve at {part!r}"
        node = node[part]
    return node


def test_every_ref_resolves(spec: dict[str, Any]) -> None:
    refs = set(_refs(spec))
    assert "#/components/schemas/Problem" in refs
    for ref in sorted(refs):
        _resolve(spec, ref)


def _body_operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                concrete = path
                for name, value in PATH_VALUES.items():
                    concrete = concrete.replace("{" + name + "}", value)
                found.append((method, concrete, operation))
    return found


@pytest.mark.parametrize("kind", sorted(UNREADABLE))
def test_unreadable_bodies_get_a_documented_status(api: Api, spec: dict[str, Any],
                                                   kind: str) -> None:
    operations = _body_operations(spec)
    assert len(operations) >= 14
    for method, path, operation in operations:
        if path.startswith("/gsma/"):
            continue  # the ES2+ callback's bodies: tests/integration/test_es2plus_receiver.py
        response = api.call(method.upper(), path, content=UNREADABLE[kind],
                            headers={"Content-Type": "application/json"})
        where = f"{method.upper()} {path} ({kind})"
        assert response.status_code < 500, where
        assert str(response.status_code) in operation["responses"], (
            f"{where} answered {response.status_code}, documented: "
            f"{sorted(operation['responses'])}")
        assert response.headers["content-type"] == "application/problem+json", where
        body = response.json()
        if path.startswith(NCHF):
            assert response.status_code == 400, where
            assert body["cause"] == "INVALID_MSG_FORMAT", where
        else:
            # One answer whatever the parser's reason: the body field is invalid JSON.
            assert response.status_code == 422, where
            assert [(e["field"].split(".")[0], e["type"]) for e in body["errors"]] == [
                ("body", "json_invalid")], where


def test_error_schemas_match_their_family(spec: dict[str, Any]) -> None:
    # An SMF is told ProblemDetails (with `cause`) for its 400, a REST client Problem.
    nchf_400 = 0
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            for code, answer in operation["responses"].items():
                schema = answer.get("content", {}).get("application/problem+json", {})
                if "schema" not in schema:
                    continue
                nchf = path.startswith("/nchf-") and code in ("400", "404")
                expected = "ProblemDetails" if nchf else "Problem"
                assert schema["schema"]["$ref"] == f"#/components/schemas/{expected}", (
                    path, code)
                nchf_400 += nchf and code == "400"
            if "requestBody" in operation:
                assert "413" in operation["responses"], path
    assert nchf_400 == 3


def test_nchf_non_json_body_keeps_the_3gpp_shape(api: Api) -> None:
    for content, kind in ((b"not json", "application/json"), (b"\xff", "application/json"),
                          (b"[" * 5000, "text/plain")):
        response = api.call("POST", NCHF, content=content, headers={"Content-Type": kind})
        assert response.status_code == 400, (content[:8], kind)
        body = json.loads(response.content)
        assert body["cause"] == "INVALID_MSG_FORMAT", body
        assert "type" not in body, body  # not the REST problem


def test_control_characters_are_refused_where_they_enter(db_url: str) -> None:
    # PostgreSQL cannot store NUL in text: before, a cursor that decodes to one (AO is
    # base64 of b"\x00") or a NUL in a path or body reached the database as a 500.
    with served_api(db_url) as served:
        for path, params in (("/v1/plans", {"cursor": "AO"}), ("/v1/lines/a1%00", None),
                             ("/v1/lines", {"account": "acme\x00"}),
                             ("/v1/lines/a1/balance", {"rating_group\x00": "x"})):
            response = served.call("GET", path, params=params)
            assert response.status_code == 422, (path, params, response.text)
        response = served.call("POST", "/v1/accounts", json={
            "name": "nul\x00name", "cycle_day": 1, "timezone": "UTC"})
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "body.name"
        response = served.call("POST", f"{NCHF}/ref%00/update", json={})
        assert response.status_code == 400, response.text
        assert response.json()["cause"] == "INVALID_MSG_FORMAT"
        # Printable text still passes, non-ASCII included.
        assert served.call("POST", "/v1/accounts", json={
            "name": "Zoë – 张伟", "cycle_day": 1, "timezone": "UTC"}).status_code == 201
