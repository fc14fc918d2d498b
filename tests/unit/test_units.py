"""Unit tests for carryover.domain.units (docs/semantics.md, "Units").

Every expected value is derived by hand in a comment next to it: 1 KB = 1024 B,
1 MB = 1024**2 = 1048576 B, 1 GB = 1024**3 = 1073741824 B, 1 TB = 1024**4 =
1099511627776 B; 1 min = 60 s, 1 h = 3600 s; 1 Mbps = 1000 kbps.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from carryover.domain.units import (
    AmountError,
    Unit,
    format_amount,
    parse_amount,
    parse_bytes,
    parse_speed_kbps,
)

# --------------------------------------------------------------------------- Unit / error


def test_unit_values_are_their_names() -> None:
    assert Unit.DATA == "data"
    assert Unit.VOICE == "voice"
    assert Unit.SMS == "sms"


def test_amount_error_is_a_value_error() -> None:
    assert issubclass(AmountError, ValueError)


# --------------------------------------------------------------------------- data


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500MB", 524288000),  # 500 * 1024**2 = 500 * 1048576 = 524288000
        ("10GB", 10737418240),  # 10 * 1024**3 = 10 * 1073741824 = 10737418240
        ("1.5GB", 1610612736),  # 1.5 * 1024**3 = 1073741824 + 536870912 = 1610612736
        ("1.25GB", 1342177280),  # 1.25 * 1073741824 = 1073741824 + 268435456 = 1342177280
        ("1KB", 1024),  # 1 * 1024 = 1024
        ("0.5KB", 512),  # 0.5 * 1024 = 512
        ("1TB", 1099511627776),  # 1024**4 = 1024 * 1073741824 = 1099511627776
        ("1B", 1),  # 1 * 1 = 1
        ("42", 42),  # a bare number with the data unit is a byte count
        ("0", 0),  # zero is an amount
        ("0GB", 0),  # 0 * 1024**3 = 0
        (" 10GB ", 10737418240),  # surrounding blanks are ignored; 10 * 1073741824
    ],
)
def test_parse_bytes(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected
    assert parse_amount(text, Unit.DATA) == (expected, Unit.DATA)


def test_data_suffix_decides_the_unit_when_none_is_given() -> None:
    # 500 * 1048576 = 524288000
    assert parse_amount("500MB") == (524288000, Unit.DATA)


def test_parse_bytes_accepts_an_int() -> None:
    # An int is already a byte count: 7 -> 7.
    assert parse_bytes(7) == 7
    assert parse_bytes(0) == 0


def test_parse_bytes_is_exact_for_numbers_longer_than_decimal_precision() -> None:
    # Decimal's default context keeps 28 significant digits, so a parse in it would give
    # 10**30 for 10**30 + 1 (31 digits).
    n = 10**30 + 1
    assert parse_bytes(str(n)) == n
    # (10**30 + 1) GB = (10**30 + 1) * 1073741824 = 10**30 * 1073741824 + 1073741824
    assert parse_bytes(f"{n}GB") == 10**30 * 1073741824 + 1073741824


# --------------------------------------------------------------------------- voice / SMS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", 90),  # 90 * 1 = 90
        ("90sec", 90),  # 90 * 1 = 90
        ("20min", 1200),  # 20 * 60 = 1200
        ("1.5min", 90),  # 1.5 * 60 = 90
        ("1h", 3600),  # 1 * 3600 = 3600
        ("0.5h", 1800),  # 0.5 * 3600 = 1800
    ],
)
def test_parse_voice(text: str, expected: int) -> None:
    assert parse_amount(text) == (expected, Unit.VOICE)
    assert parse_amount(text, Unit.VOICE) == (expected, Unit.VOICE)


def test_bare_number_is_an_sms_count() -> None:
    assert parse_amount("3") == (3, Unit.SMS)
    assert parse_amount("3", Unit.SMS) == (3, Unit.SMS)


def test_bare_number_takes_the_requested_unit() -> None:
    # A bare number means seconds for voice and messages for SMS: 45 -> 45.
    assert parse_amount("45", Unit.VOICE) == (45, Unit.VOICE)
    assert parse_amount("45", Unit.SMS) == (45, Unit.SMS)


def test_int_amounts() -> None:
    assert parse_amount(3) == (3, Unit.SMS)  # a bare int without a unit is an SMS count
    assert parse_amount(90, Unit.VOICE) == (90, Unit.VOICE)
    assert parse_amount(1024, Unit.DATA) == (1024, Unit.DATA)


# --------------------------------------------------------------------------- speeds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("128kbps", 128),  # 128 * 1 = 128
        ("600kbps", 600),  # 600 * 1 = 600
        ("1.5Mbps", 1500),  # 1.5 * 1000 = 1500
        ("1Gbps", 1000000),  # 1 * 1000 * 1000 = 1000000
        ("128", 128),  # a bare number is kbps
        (128, 128),  # an int is kbps
        (0, 0),
    ],
)
def test_parse_speed_kbps(text: str | int, expected: int) -> None:
    assert parse_speed_kbps(text) == expected


# --------------------------------------------------------------------------- rejections


def _error_text(excinfo: pytest.ExceptionInfo[AmountError]) -> str:
    return str(excinfo.value)


@pytest.mark.parametrize(
    "text",
    [
        "-1GB",  # negative
        "10 GBs",  # blank between number and unit, and an unknown unit
        "1e3GB",  # exponents are not written in plans
        "0.1MB",  # 0.1 * 1048576 = 104857.6, not whole bytes
        "abc",  # no number
        "5XB",  # unknown unit
        "",  # nothing at all
        "1.5.5GB",  # not a number
        ".5GB",  # a number starts with a digit
        "20min",  # a voice suffix where data is expected
        "90s",  # a voice suffix where data is expected
        "1h",  # a voice suffix where data is expected
        "0.5B",  # 0.5 * 1 = 0.5, not whole bytes
        # 1 + 1e-28 GB = 1073741824 + 1073741824e-28 bytes, not whole; Decimal's
        # 28-digit precision would round it to exactly 1073741824.
        "1.0000000000000000000000000001GB",
    ],
)
def test_parse_bytes_rejects(text: str) -> None:
    with pytest.raises(AmountError) as excinfo:
        parse_bytes(text)
    assert repr(text) in _error_text(excinfo)


def test_rejection_messages_say_why() -> None:
    with pytest.raises(AmountError, match="negative"):
        parse_bytes("-1GB")
    with pytest.raises(AmountError, match="not a whole number of bytes"):
        parse_bytes("0.1MB")
    with pytest.raises(AmountError, match="unknown unit 'XB'"):
        parse_bytes("5XB")
    with pytest.raises(AmountError, match="where data was expected"):
        parse_bytes("20min")


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("5MB", Unit.VOICE),  # a data suffix where voice is expected
        ("5MB", Unit.SMS),  # a data suffix where SMS is expected
        ("90s", Unit.SMS),  # a voice suffix where SMS is expected
        ("1.5", Unit.SMS),  # 1.5 messages is not a whole count
        ("1.5", None),  # a bare number is an SMS count: 1.5 is not whole
        ("1.5s", Unit.VOICE),  # 1.5 * 1 = 1.5, not whole seconds
        ("0.01min", Unit.VOICE),  # 0.01 * 60 = 0.6, not whole seconds
        ("3 SMS", None),  # a blank and a suffix that is not a unit
        ("10 GBs", None),
        ("-3", None),
    ],
)
def test_parse_amount_rejects(text: str, unit: Unit | None) -> None:
    with pytest.raises(AmountError) as excinfo:
        parse_amount(text, unit)
    assert repr(text) in _error_text(excinfo)


@pytest.mark.parametrize("value", [-1, True, False])
def test_parse_amount_rejects_negative_and_bool(value: int) -> None:
    with pytest.raises(AmountError) as excinfo:
        parse_amount(value)
    assert repr(value) in _error_text(excinfo)


@pytest.mark.parametrize(
    "text",
    [
        "-1kbps",  # negative
        "5MB",  # a data size is not a speed
        "128 kbps",  # blank between number and unit
        "0.5kbps",  # 0.5 * 1 = 0.5, not whole kbps
        "1.0005Mbps",  # 1.0005 * 1000 = 1000.5, not whole kbps
        "fast",  # no number
        "128KBPS",  # speed units are case-sensitive (K vs k, M vs m)
    ],
)
def test_parse_speed_rejects(text: str) -> None:
    with pytest.raises(AmountError) as excinfo:
        parse_speed_kbps(text)
    assert repr(text) in _error_text(excinfo)


def test_parse_speed_rejects_negative_int() -> None:
    with pytest.raises(AmountError, match="-1"):
        parse_speed_kbps(-1)


# --------------------------------------------------------------------------- format


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (10737418240, "10GB"),  # 10 * 1073741824 = 10737418240
        (1610612736, "1.5GB"),  # 1610612736 / 1073741824 = 1.5
        (1342177280, "1.25GB"),  # 1342177280 / 1073741824 = 1.25
        (524288000, "500MB"),  # 524288000 / 1048576 = 500
        (1099511627776, "1TB"),  # 1024**4 / 1024**4 = 1
        (1649267441664, "1.5TB"),  # 1.5 * 1099511627776 = 1649267441664
        (1536, "1.5KB"),  # 1536 / 1024 = 1.5
        (1024, "1KB"),  # 1024 / 1024 = 1
        (512, "512B"),  # below 1 KB: 512 B
        (0, "0B"),
        (-10737418240, "-10GB"),  # -(10 * 1073741824)
        # 1025 GB = 1025/1024 TB = 1.0009765625 TB, which two decimals would show as
        # "1TB" (1024 GB). 1025 * 1073741824 = 1100585369600.
        (1100585369600, "1025GB"),
        # 1030 GB = 1030/1024 TB = 1.005859375 TB, likewise not exact in TB;
        # 1030 * 1073741824 = 1105954078720.
        (1105954078720, "1030GB"),
        # 1 GB + 1 MB = 1025 MB = 1.0009765625 GB; 1025 * 1048576 = 1074790400
        (1074790400, "1025MB"),
    ],
)
def test_format_data(value: int, expected: str) -> None:
    assert format_amount(value) == expected
    assert format_amount(value, Unit.DATA) == expected


def test_format_data_rounds_only_what_no_short_form_can_show_exactly() -> None:
    # 1234567890 B is not a whole number of hundredths of a KB, MB or GB:
    # 1234567890 = 2 * 617283945 (odd), so 1234567890 * 100 = 2**3 * 25 * 617283945
    # holds only 2**3, while 1 KB = 2**10 (and MB, GB are higher powers of two).
    # In GB: 1.145 * 1073741824 = 1229434388.48 < 1234567890 < 1.15 * 1073741824
    # = 1234803097.6, and it is nearer 1.15 -> "1.15GB".
    assert format_amount(1234567890) == "1.15GB"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (90, "90s"),  # 90 is not a multiple of 60
        (1200, "20min"),  # 1200 / 60 = 20, 1200 / 3600 is not whole
        (3600, "1h"),  # 3600 / 3600 = 1
        (5400, "90min"),  # 5400 / 3600 = 1.5 (not whole), 5400 / 60 = 90
        (7200, "2h"),  # 7200 / 3600 = 2
        (0, "0s"),
    ],
)
def test_format_voice(value: int, expected: str) -> None:
    assert format_amount(value, Unit.VOICE) == expected


def test_format_sms_and_unlimited() -> None:
    assert format_amount(3, Unit.SMS) == "3 SMS"
    assert format_amount(None) == "unlimited"
    assert format_amount(None, Unit.VOICE) == "unlimited"


@pytest.mark.parametrize("text", ["10GB", "1.5GB", "1.25GB", "500MB", "1TB", "1.5KB", "512B"])
def test_data_round_trip(text: str) -> None:
    assert format_amount(parse_bytes(text)) == text


@pytest.mark.parametrize("text", ["20min", "90s", "1h", "2h", "90min"])
def test_voice_round_trip(text: str) -> None:
    amount, unit = parse_amount(text)
    assert unit is Unit.VOICE
    assert format_amount(amount, unit) == text


# --------------------------------------------------------------------------- properties


@given(st.integers(min_value=0))
@example(10**30 + 1)  # longer than Decimal's default 28-digit precision
@example(0)
def test_parse_bytes_of_a_plain_integer_is_that_integer(n: int) -> None:
    assert parse_bytes(str(n)) == n
    assert parse_bytes(f"{n}B") == n


@given(st.integers(min_value=0, max_value=10**6))
@example(1025)  # 1025 GB is not a two-decimal number of TB
@example(1024)  # 1024 GB = 1 TB exactly
@example(0)
def test_whole_gigabytes_round_trip_through_format(k: int) -> None:
    value = k * 1024**3
    assert parse_bytes(format_amount(value)) == value
