"""Instants as the store hands them back and books them.

Every instant in carryover is aware and in UTC; SQLite's driver returns naive
datetimes, so whatever a row holds goes through `utc` on the way out. What a
write is booked at (an entry's `recorded_at`) is the server's clock at the
write, `booking_clock`, whatever instant the pure fold gave the entry.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every instant in carryover is UTC-aware."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def booking_clock() -> datetime:
    """When the store books what a fold wrote: the server's clock (tests replace it)."""
    return datetime.now(UTC)

