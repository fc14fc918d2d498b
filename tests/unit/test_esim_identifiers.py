"""EID, ICCID and IMSI checks (domain/esim/identifiers.py) on published examples."""

from __future__ import annotations

import random

import pytest

from carryover.domain.esim.identifiers import (
    IdentifierError,
    Imsi,
    eid_check_digits,
    format_iccid_padded,
    luhn_check_digit,
    parse_eid,
    parse_iccid,
    parse_imsi,
)

EID = "89882119900000000000000000001654"  # GSMA SGP.22 / SGP.29 example
EID_2 = "89049032123451234512345678901235"  # the example EID in many vendor guides
ICCID_20 = "89014103211118510720"  # an ICCID printed on a US carrier SIM card
ICCID_19 = "8944500102198304826"  # 19 digits: UK format


def one_digit_changes(number: str):
    for position, digit in enumerate(number):
        for other in "0123456789":
            if other != digit:
                yield number[:position] + other + number[position + 1:]


@pytest.mark.parametrize("eid", [EID, EID_2])
def test_published_eids_are_valid(eid):
    assert parse_eid(eid) == eid
    assert parse_eid(f"  {eid}\n") == eid


def test_changing_any_one_digit_of_an_eid_makes_it_invalid():
    changed = list(one_digit_changes(EID))
    assert len(changed) == 32 * 9
    for wrong in changed:
        with pytest.raises(IdentifierError) as caught:
            parse_eid(wrong)
        assert caught.value.check in ("MOD 97-10", "prefix")


def test_swapping_neighbours_in_an_eid_is_caught():
    for i in range(31):
        swapped = EID[:i] + EID[i + 1] + EID[i] + EID[i + 2:]
        if swapped != EID:
            with pytest.raises(IdentifierError):
                parse_eid(swapped)


def test_eid_check_digits_are_iso_7064_mod_97_10():
    assert eid_check_digits(EID[:30]) == EID[30:]
    rng = random.Random(7)
    for _ in range(200):
        body = "89" + "".join(rng.choice("0123456789") for _ in range(28))
        eid = body + eid_check_digits(body)
        assert int(eid) % 97 == 1
        assert parse_eid(eid) == eid


@pytest.mark.parametrize(("value", "check", "words"), [
    (EID[:-1], "length", "31 digits"),
    (EID + "0", "length", "33 digits"),
    (EID[:10] + "A" + EID[11:], "digits", "'A' is not a digit"),
    ("", "digits", ""),
    ("12" + EID[2:], "prefix", "starts 12"),
    (EID[:-2] + "55", "MOD 97-10", "check digits are 54"),
])
def test_eid_errors_name_the_check(value, check, words):
    with pytest.raises(IdentifierError) as caught:
        parse_eid(value)
    assert caught.value.check == check
    assert caught.value.kind == "eid"
    assert words in str(caught.value)
    assert str(caught.value).startswith("EID ")


def test_luhn_check_digit_known_values():
    assert luhn_check_digit("7992739871") == "3"  # the textbook example
    assert luhn_check_digit(ICCID_20[:-1]) == ICCID_20[-1]
    assert luhn_check_digit(ICCID_19[:-1]) == ICCID_19[-1]


@pytest.mark.parametrize("iccid", [ICCID_20, ICCID_19])
def test_published_iccids_are_valid(iccid):
    assert parse_iccid(iccid) == iccid


@pytest.mark.parametrize("padded", [ICCID_19 + "F", ICCID_19 + "f", f" {ICCID_19}F "])
def test_the_es2plus_f_pad_is_stripped(padded):
    assert parse_iccid(padded) == ICCID_19
    assert format_iccid_padded(ICCID_19) == ICCID_19 + "F"
    assert format_iccid_padded(ICCID_20) == ICCID_20


def test_changing_any_one_digit_of_an_iccid_makes_it_invalid():
    for wrong in one_digit_changes(ICCID_20):
        with pytest.raises(IdentifierError) as caught:
            parse_iccid(wrong)
        assert caught.value.check in ("Luhn", "prefix")


@pytest.mark.parametrize(("value", "check"), [
    (ICCID_20[:-2], "length"),  # 18 digits
    (ICCID_20 + "1", "length"),  # 21 digits
    ("4" + ICCID_20[1:], "prefix"),
    (ICCID_20[:-1] + "1", "Luhn"),
    (ICCID_20[:5] + "-" + ICCID_20[6:], "digits"),
    (ICCID_19 + "FF", "digits"),
])
def test_iccid_errors_name_the_check(value, check):
    with pytest.raises(IdentifierError) as caught:
        parse_iccid(value)
    assert caught.value.check == check
    assert str(caught.value).startswith("ICCID ")


@pytest.mark.parametrize(("imsi", "mcc", "mnc"), [
    ("310260123456789", "310", "260"),  # T-Mobile US
    ("311480123456789", "311", "480"),  # Verizon
    ("302720123456789", "302", "720"),  # Rogers, Canada
    ("334020123456789", "334", "020"),  # Telcel, Mexico
    ("405025123456789", "405", "025"),  # India (405 series)
    ("722070123456789", "722", "070"),  # Argentina
    ("262011234567890", "262", "01"),  # Telekom Deutschland
    ("234150123456789", "234", "15"),  # Vodafone UK
    ("460001234567890", "460", "00"),  # China Mobile
    ("404451234567890", "404", "45"),  # India (404 series: two digits)
    ("208011234567890", "208", "01"),  # Orange France
    ("001010000000001", "001", "01"),  # ITU test network (open 5G core labs)
    ("999700000000001", "999", "70"),  # private network
])
def test_imsi_split_from_the_mnc_length_table(imsi, mcc, mnc):
    parsed = parse_imsi(imsi)
    assert (parsed.mcc, parsed.mnc) == (mcc, mnc)
    assert str(parsed) == imsi
    assert len(parsed.msin) == 15 - 3 - len(mnc)


def test_a_known_mnc_length_overrides_the_table():
    assert parse_imsi("502152123456789") == Imsi("502", "15", "2123456789")
    assert parse_imsi("502152123456789", mnc_length=3) == Imsi("502", "152", "123456789")
    with pytest.raises(ValueError, match="2 or 3"):
        parse_imsi("502152123456789", mnc_length=4)


@pytest.mark.parametrize(("value", "check"), [
    ("31026012345678", "length"),
    ("3102601234567890", "length"),
    ("31026012345678X", "digits"),
    ("010260123456789", "MCC"),
    ("110260123456789", "MCC"),
    ("810260123456789", "MCC"),
])
def test_imsi_errors_name_the_check(value, check):
    with pytest.raises(IdentifierError) as caught:
        parse_imsi(value)
    assert caught.value.check == check
    assert str(caught.value).startswith("IMSI ")
