"""handleDownloadProgressInfo parsing, ES2+ status codes, and confirmation-code hashing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from carryover.api.es2plus_auth import smdp_of
from carryover.domain.esim import confirmation
from carryover.domain.esim.download_progress import (
    DownloadProgress,
    nesting_exceeds,
    notification_body,
    parse_download_progress,
)
from carryover.domain.esim.states import Request
from carryover.domain.esim.status import FunctionFailed, StatusCode

ICCID = "8944500102198304826"
EID = "89882119900000000000000000001654"


def body(**changes):
    data = {"header": {"functionRequesterIdentifier": "smdp", "functionCallIdentifier": "c1"},
            "eid": EID, "iccid": ICCID + "F", "profileType": "consumer",
            "timestamp": "2026-03-01T12:00:00Z", "notificationPointId": 4,
            "notificationPointStatus": {"status": "Executed-Success"}}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_a_notification_is_parsed():
    progress = parse_download_progress(body())
    assert progress == DownloadProgress(
        ICCID, "consumer", datetime(2026, 3, 1, 12, tzinfo=UTC), 4, "Executed-Success", EID,
        function_call_id="c1")
    assert progress.success and progress.request() is Request.INSTALL
    assert progress.point_name == "BPP installation"


def test_the_body_an_smdp_sends_parses_back_to_the_same_notification():
    progress = parse_download_progress(body(resultData="AAEC"))
    again = parse_download_progress(notification_body(progress, "smdp", "c1"))
    assert again == progress
    assert again.key() == progress.key()


@pytest.mark.parametrize(("changes", "subject", "reason", "words"), [
    ({"iccid": None}, "8.2.1", "2.2", "iccid is missing"),
    ({"profileType": None}, "8.2.5", "2.2", "profileType"),
    ({"timestamp": None}, "1.1", "2.2", "timestamp"),
    ({"notificationPointId": None}, "1.1", "2.2", "notificationPointId"),
    ({"notificationPointStatus": None}, "1.1", "2.2", "notificationPointStatus"),
    ({"iccid": "8944500102198304827"}, "8.2.1", "2.1", "Luhn"),
    ({"eid": "89882119900000000000000000001655"}, "8.1.1", "2.1", "MOD 97-10"),
    ({"timestamp": "2026-03-01T12:00:00"}, "1.1", "2.1", "offset"),
    ({"timestamp": "yesterday"}, "1.1", "2.1", "W3C"),
    ({"notificationPointId": "three"}, "1.1", "2.1", "integer"),
    ({"notificationPointStatus": {"status": "Done"}}, "1.1", "2.1", "'Done'"),
    ({"header": "x"}, "1.1", "2.1", "header"),
    ({"resultData": "not base64!"}, "1.1", "2.1", "base64"),
])
def test_a_bad_notification_gets_the_right_status_code(changes, subject, reason, words):
    code = parse_download_progress(body(**changes))
    assert isinstance(code, StatusCode)
    assert (code.subject, code.reason) == (subject, reason)
    assert words in code.message


@pytest.mark.parametrize("value", [[], "text", 3, None])
def test_a_body_that_is_not_an_object(value):
    code = parse_download_progress(value)
    assert (code.subject, code.reason) == ("1.1", "2.1")


@pytest.mark.parametrize(("point", "status", "request_"), [
    (1, "Executed-Success", None),
    (2, "Failed", None),
    (3, "Executed-Success", Request.DOWNLOAD),
    (3, "Failed", Request.FAIL),
    (4, "Executed-WithWarning", Request.INSTALL),
    (4, "Failed", Request.FAIL),
    (5, "Executed-Success", Request.DELETE),
    (5, "Failed", None),
])
def test_what_each_notification_point_does(point, status, request_):
    progress = parse_download_progress(body(notificationPointId=point,
                                            notificationPointStatus={"status": status}))
    assert progress.request() is request_


def test_keys_tell_repeats_from_new_notifications():
    first = parse_download_progress(body())
    assert parse_download_progress(body(header={"functionCallIdentifier": "other"})).key() \
        == first.key()  # the same content, delivered again under another call id
    assert parse_download_progress(body(timestamp="2026-03-01T12:00:01Z")).key() != first.key()
    assert parse_download_progress(body(notificationPointId=3)).key() != first.key()


def test_function_failed_names_subject_and_reason():
    error = FunctionFailed("cancelOrder", "Failed",
                           StatusCode("8.2.1", "3.3", "profile is installed"))
    assert str(error) == ("ES2+ cancelOrder Failed: 8.2.1 profile ICCID / 3.3 already in use: "
                          "profile is installed")
    assert error.codes == ("8.2.1", "3.3")


def test_confirmation_code_hash_is_salted_and_verifiable():
    stored = confirmation.hash_for_storage("12345678", b"salt" * 4, iterations=1000)
    assert "12345678" not in stored and stored.startswith("pbkdf2_sha256$1000$")
    assert confirmation.matches_stored("12345678", stored)
    assert not confirmation.matches_stored("12345679", stored)
    assert stored != confirmation.hash_for_storage("12345678", b"pepper" * 3, iterations=1000)


def test_device_proof_is_sgp22_double_hash():
    import hashlib

    transaction = bytes(range(16))
    proof = confirmation.device_proof("1234", transaction)
    expected = hashlib.sha256(hashlib.sha256(b"1234").digest() + transaction).digest()
    assert proof == expected
    assert confirmation.proof_matches(confirmation.hashed_code("1234"), transaction, proof)
    assert not confirmation.proof_matches(confirmation.hashed_code("1235"), transaction, proof)


# ---- the SM-DP+'s token, and the body's nesting ---------------------------------------

TOKENS = {"smdp-a": SecretStr("a" * 32), "smdp-b": SecretStr("b" * 40)}


@pytest.mark.parametrize(("authorization", "expected"), [
    ("Bearer " + "a" * 32, "smdp-a"),
    ("bearer " + "b" * 40, "smdp-b"),
    ("  Bearer   " + "b" * 40 + " ", "smdp-b"),
    ("Bearer " + "a" * 31, None),
    ("Bearer " + "a" * 33, None),
    ("Basic " + "a" * 32, None),
    ("a" * 32, None),
    ("Bearer ", None),
    ("", None),
    (None, None),
])
def test_the_smdp_is_named_by_its_own_token_only(authorization, expected):
    assert smdp_of(authorization, TOKENS) == expected


def test_no_configured_smdp_means_no_caller_is_one():
    assert smdp_of("Bearer " + "a" * 32, {}) is None


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n', max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(alphabet='[]{}"\\k', max_size=3), inner, max_size=3),
    max_leaves=30)


@given(json_values, st.integers(min_value=0, max_value=10))
def test_nesting_is_counted_as_the_decoder_would_see_it(value, limit):
    raw = json.dumps(value, ensure_ascii=False).encode()
    assert nesting_exceeds(raw, limit) == (_depth(value) > limit)


@pytest.mark.parametrize("point", ["٣", "3.0", "-1", 1000, "1000", 10**40, [3], 2.5])
def test_a_point_id_is_a_small_ascii_integer(point):
    assert isinstance(parse_download_progress(body(notificationPointId=point)), StatusCode)
