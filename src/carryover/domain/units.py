"""Units and amounts: every quantity the engine counts is an integer.

Data is counted in bytes, voice in seconds, SMS in messages (docs/semantics.md, "Units"). People
write amounts the way carriers advertise them (`500MB`, `1.5GB`, `90s`, `20min`,
`3`); this module turns that text into an exact integer and back. Carriers bill
data with binary multiples, so 1 GB = 1024 MB = 1,073,741,824 bytes. Speeds are
decimal (1 kbps = 1000 bit/s) and are kept as integer kbps.

Parsing never rounds: `0.1MB` is not a whole number of bytes and is refused,
because a balance engine that rounds silently cannot be exact.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from enum import StrEnum


class Unit(StrEnum):
    """What a bucket holds and a usage event consumes; one engine serves all three."""

    DATA = "data"
    VOICE = "voice"
    SMS = "sms"


class AmountError(ValueError):
    """A piece of text that is not a valid amount; the message names the text."""


DATA_MULTIPLIERS: dict[str, int] = {
    "B": 1,
    "KB": 1024,
    "MB": 1024**2,
    "GB": 1024**3,
    "TB": 1024**4,
}
VOICE_MULTIPLIERS: dict[str, int] = {"s": 1, "sec": 1, "min": 60, "h": 3600}
SPEED_MULTIPLIERS: dict[str, int] = {"kbps": 1, "Mbps": 1000, "Gbps": 1_000_000}

# A plain decimal number (no sign, no exponent) followed directly by a suffix.
_AMOUNT = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<suffix>[A-Za-z]*)")


def _split(text: str) -> tuple[Decimal, str]:
    cleaned = text.strip()
    match = _AMOUNT.fullmatch(cleaned)
    if match is None:
        if cleaned.startswith("-"):
            raise AmountError(f"{text!r} is negative; amounts are zero or more")
        raise AmountError(
            f"{text!r} is not an amount; write a number and a unit such as 500MB, 1.5GB, "
            "90s, 20min or a plain count such as 3"
        )
    try:
        number = Decimal(match["number"])
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise AmountError(f"{text!r} is not a number") from exc
    return number, match["suffix"]


def _exact(text: str, number: Decimal, multiplier: int, what: str) -> int:
    # Exact rational arithmetic: Decimal multiplication rounds to the context precision
    # (28 digits), which would silently round long amounts.
    numerator, denominator = number.as_integer_ratio()
    value, remainder = divmod(numerator * multiplier, denominator)
    if remainder:
        raise AmountError(f"{text!r} is not a whole number of {what}")
    return value


def unit_of_suffix(suffix: str) -> Unit | None:
    """The unit a suffix belongs to, or None for a bare number."""
    if suffix in DATA_MULTIPLIERS:
        return Unit.DATA
    if suffix in VOICE_MULTIPLIERS:
        return Unit.VOICE
    return None


def parse_amount(text: str | int, unit: Unit | None = None) -> tuple[int, Unit]:
    """Parse `text` into (integer amount, unit).

    With `unit` given, the suffix must belong to it (a bare number means bytes,
    seconds or messages of that unit). Without it, the suffix decides, and a bare
    number is an SMS count.
    """
    if isinstance(text, bool):
        raise AmountError(f"{text!r} is not an amount")
    if isinstance(text, int):
        if text < 0:
            raise AmountError(f"{text!r} is negative; amounts are zero or more")
        return text, unit or Unit.SMS
    number, suffix = _split(str(text))
    suffix_unit = unit_of_suffix(suffix)
    if suffix and suffix_unit is None and suffix.upper() in DATA_MULTIPLIERS:
        # "Mb" is megabits and "mb" is ambiguous; a charging system must not guess.
        raise AmountError(f"{text!r}: write data units in capitals ({suffix.upper()}); "
                          "lower-case b means bits")
    if suffix and suffix_unit is None:
        raise AmountError(
            f"{text!r} has an unknown unit {suffix!r}; use B, KB, MB, GB, TB for data, "
            "s, min, h for voice, or no unit for SMS"
        )
    if unit is not None and suffix_unit is not None and suffix_unit is not unit:
        raise AmountError(f"{text!r} is a {suffix_unit} amount where {unit} was expected")
    resolved = unit or suffix_unit or Unit.SMS
    if resolved is Unit.DATA:
        return _exact(text, number, DATA_MULTIPLIERS[suffix or "B"], "bytes"), resolved
    if resolved is Unit.VOICE:
        return _exact(text, number, VOICE_MULTIPLIERS[suffix or "s"], "seconds"), resolved
    return _exact(text, number, 1, "messages"), resolved


def parse_bytes(text: str | int) -> int:
    """Parse a data amount (`500MB`, `1.5GB`, or a plain byte count)."""
    return parse_amount(text, Unit.DATA)[0]


def parse_speed_kbps(text: str | int) -> int:
    """Parse a speed (`128kbps`, `1.5Mbps`, or plain kbps) into integer kbps."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise AmountError(f"{text!r} is negative; speeds are zero or more")
        return text
    number, suffix = _split(str(text))
    multiplier = SPEED_MULTIPLIERS.get(suffix or "kbps")
    if multiplier is None:
        raise AmountError(f"{text!r} has an unknown speed unit {suffix!r}; use kbps, Mbps or Gbps")
    return _exact(str(text), number, multiplier, "kbps")


def format_amount(value: int | None, unit: Unit = Unit.DATA) -> str:
    """A short human form that round-trips where it can: 1610612736 -> '1.5GB'."""
    if value is None:
        return "unlimited"
    if unit is Unit.SMS:
        return f"{value} SMS"
    if unit is Unit.VOICE:
        if value and value % 3600 == 0:
            return f"{value // 3600}h"
        if value and value % 60 == 0:
            return f"{value // 60}min"
        return f"{value}s"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    rounded: str | None = None
    for suffix in ("TB", "GB", "MB", "KB"):
        size = DATA_MULTIPLIERS[suffix]
        if magnitude >= size:
            if magnitude * 100 % size == 0:
                # Exact in at most two decimals: this form parses back to the same bytes.
                whole, cents = divmod(magnitude * 100 // size, 100)
                text = f"{whole}.{cents:02d}".rstrip("0").rstrip(".")
                return f"{sign}{text}{suffix}"
            if rounded is None:
                # Two decimals are enough for a person; exact values stay in the JSON.
                text = f"{Decimal(magnitude) / size:.2f}".rstrip("0").rstrip(".")
                rounded = f"{sign}{text}{suffix}"
    return rounded or f"{sign}{magnitude}B"
