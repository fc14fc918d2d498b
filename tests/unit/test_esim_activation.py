"""Activation codes (SGP.22 4.1) and `esim validate`'s classification."""

from __future__ import annotations

import pytest

from carryover.domain.esim.activation import ActivationCode, parse_activation_code
from carryover.domain.esim.classify import classify
from carryover.domain.esim.identifiers import IdentifierError


@pytest.mark.parametrize(("text", "expected"), [
    ("1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815",
     ActivationCode("SMDP.GSMA.COM", "04386-AGYFT-A74Y8-3F815")),
    ("1$smdp.example.com$QR-G-5C-1LS-1W1Z9P7$1.3.6.1.4.1.31746",
     ActivationCode("smdp.example.com", "QR-G-5C-1LS-1W1Z9P7", "1.3.6.1.4.1.31746")),
    ("1$smdp.example.com$ABC123$1.3.6.1.4.1.31746$1",
     ActivationCode("smdp.example.com", "ABC123", "1.3.6.1.4.1.31746", True)),
    ("1$smdp.example.com$ABC123$$1", ActivationCode("smdp.example.com", "ABC123", None, True)),
    ("LPA:1$rsp.truphone.com$QRF-SPEEDTEST",
     ActivationCode("rsp.truphone.com", "QRF-SPEEDTEST")),
    ("lpa:1$rsp.truphone.com$QRF-SPEEDTEST",
     ActivationCode("rsp.truphone.com", "QRF-SPEEDTEST")),
])
def test_parse(text, expected):
    assert parse_activation_code(text) == expected


@pytest.mark.parametrize("text", [
    "1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815",
    "1$smdp.example.com$ABC123$1.3.6.1.4.1.31746",
    "1$smdp.example.com$ABC123$1.3.6.1.4.1.31746$1",
    "1$smdp.example.com$ABC123$$1",
])
def test_format_round_trips_and_the_qr_has_the_lpa_prefix(text):
    code = parse_activation_code(text)
    assert code.format() == text
    assert code.qr_text() == "LPA:" + text
    assert parse_activation_code(code.qr_text()) == code


@pytest.mark.parametrize(("text", "check", "words"), [
    ("2$smdp.example.com$ABC", "format", "AC format '2'"),
    ("1$smdp.example.com", "fields", "2 '$'-separated fields"),
    ("1$smdp.example.com$ABC$1.2$1$x", "fields", "at most 5"),
    ("1$smdp.example.com$abc", "MatchingID", "'a'"),
    ("1$smdp.example.com$AB_C", "MatchingID", "'_'"),
    ("1$smdp.example.com$", "MatchingID", "empty"),
    ("1$smdp_x.example.com$ABC", "SM-DP+ address", "smdp_x"),
    ("1$-smdp.example.com$ABC", "SM-DP+ address", "-smdp"),
    ("1$$ABC", "SM-DP+ address", "empty"),
    ("1$smdp.example.com$ABC$1..2", "OID", "dotted-decimal"),
    ("1$smdp.example.com$ABC$$2", "confirmation code flag", "'2'"),
])
def test_errors_name_the_check(text, check, words):
    with pytest.raises(IdentifierError) as caught:
        parse_activation_code(text)
    assert caught.value.check == check
    assert caught.value.kind == "activation_code"
    assert words in str(caught.value)


def test_a_code_cannot_be_built_with_a_bad_matching_id():
    with pytest.raises(IdentifierError):
        ActivationCode("smdp.example.com", "lower-case")


@pytest.mark.parametrize(("value", "kind", "valid"), [
    ("89882119900000000000000000001654", "eid", True),
    ("89882119900000000000000000001655", "eid", False),
    ("8988211990000000000000000000165", "eid", False),
    ("89014103211118510720", "iccid", True),
    ("8944500102198304826F", "iccid", True),
    ("89014103211118510721", "iccid", False),
    ("310260123456789", "imsi", True),
    ("010260123456789", "imsi", False),
    ("LPA:1$smdp.example.com$ABC-123", "activation_code", True),
    ("1$smdp.example.com$abc", "activation_code", False),
    ("hello", "unknown", False),
    ("12345", "unknown", False),
    ("", "unknown", False),
])
def test_classify(value, kind, valid):
    result = classify(value)
    assert (result.kind, result.valid) == (kind, valid)
    assert (result.reason is None) == valid
    assert result.as_dict() == {"value": value, "kind": kind, "valid": valid,
                                "reason": result.reason}


def test_classify_says_why():
    assert "MOD 97-10" in classify("89882119900000000000000000001655").reason
    assert "Luhn" in classify("89014103211118510721").reason
    assert "32 digits" in classify("hello").reason
