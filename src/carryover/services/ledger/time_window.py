"""The window of instants a request may carry (docs/semantics.md, "Bounds").

Writes (usage, top-ups, gifts, limits, plan changes, new accounts and lines)
carry instants no earlier than what they concern opened and no later than now
plus `clock_skew_seconds`: a network element's clock may run a little ahead,
but nothing is booked for a future that has not happened. Reads (balance,
statement, QoS) may look up to `read_ahead_days` ahead of now, and a read past
now commits nothing (services.ledger.operations). The bounds themselves are pure
(domain/bounds.py); this module adds the clock and the settings, read once per
process (tests may `configure` them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from carryover.domain import bounds
from carryover.services.errors import ServiceError


class OutOfWindow(ServiceError):
    """An instant outside the accepted window; the message names the field and the window."""


@dataclass(frozen=True, slots=True)
class Window:
    skew: timedelta = bounds.DEFAULT_CLOCK_SKEW
    ahead: timedelta = bounds.DEFAULT_READ_AHEAD


_window: Window | None = None


def configure(skew_seconds: float, ahead_days: float) -> None:
    global _window
    _window = Window(timedelta(seconds=skew_seconds), timedelta(days=ahead_days))


def window() -> Window:
    if _window is None:
        from carryover.settings import get_settings
        s = get_settings()
        configure(s.clock_skew_seconds, s.read_ahead_days)
    assert _window is not None
    return _window


def now() -> datetime:
    return datetime.now(UTC)


def check_write(field: str, at: datetime, opened: datetime | None = None,
                what: str = "the line") -> datetime:
    return _checked(bounds.check_write_instant, field, at, opened, what, window().skew)


def check_read(field: str, at: datetime, opened: datetime | None = None,
               what: str = "the line") -> datetime:
    return _checked(bounds.check_read_instant, field, at, opened, what, window().ahead)


def _checked(check: Callable[..., datetime], field: str, at: datetime,
             opened: datetime | None, what: str, margin: timedelta) -> datetime:
    """`check` against the server's now; a bound it finds broken is OutOfWindow."""
    try:
        return check(field, at, now(), opened, what, margin)
    except bounds.BoundError as exc:
        raise OutOfWindow(str(exc)) from None


def in_future(at: datetime) -> bool:
    """Whether a read at `at` is past now: such a read must commit nothing."""
    return at > now()
