"""Advice: computed from the line's own history by the pure fold, never guessed.

`advise(book, inputs, line, at, cycles)` answers, for one line at `at`:

- `forecast` (forecast.py): projected use to the cycle's end with an interval,
  when high-speed data runs out, the method; or why there is none yet;
- `rollover` (rollover_risk.py): each live deposit and what the projected pace
  leaves of it at its expiry; what the next boundary loses to caps;
- `plans` (plan_fit.py): the last N complete cycles replayed exactly on every
  plan with the same unit kinds, best first, and when to switch;
- `family` (family.py): per member, projected surplus or shortfall, and gifts
  and member limits that would prevent a shortfall, each checked by replay.

Every item has a `kind`, integer amounts (bytes), and one plain sentence `text`.
Same inputs, same advice: nothing reads the clock, and every order is total.
`book` is the account's book (any state); `inputs` its inputs in fold order (the
history the caller loaded). Projections fold into forks (fork.py); the book
handed in is only moved to `at` (views.position).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from carryover.domain.advice import family, forecast, plan_fit, profile, rollover_risk
from carryover.domain.advice.plan_fit import high_speed_left
from carryover.domain.book import AccountBook
from carryover.domain.inputs import Input
from carryover.domain.units import Unit
from carryover.domain.views import position

DEFAULT_CYCLES = 3
MAX_CYCLES = 24


def advise(book: AccountBook, inputs: Iterable[Input], line: str, at: datetime,
           cycles: int = DEFAULT_CYCLES) -> dict:
    """The advice object for `line` at `at` over the last `cycles` complete cycles."""
    if not 1 <= cycles <= MAX_CYCLES:
        raise ValueError(f"cycles must be 1..{MAX_CYCLES}, got {cycles}")
    inputs = list(inputs)
    state = position(book, at)
    calendar = state.calendar
    usage: dict[str, profile.LineUsage] = {}
    others: dict[Unit, profile.LineUsage] = {}
    paces: dict[str, forecast.Pace | None] = {}
    windows: dict[str, list] = {}

    def pace_of(name: str):
        by_unit = profile.usage_by_unit(inputs, name, calendar, state.grace)
        usage[name] = by_unit.pop(Unit.DATA, profile.LineUsage([]))
        if name == line:
            others.update(by_unit)
        windows[name] = profile.complete_cycles(calendar, state.lines[name].opened_at, at,
                                                cycles)
        found = forecast.pace(calendar, usage[name], at, windows[name])
        paces[name] = None if isinstance(found, str) else found

    pace_of(line)
    member = state.lines[line].member
    if member:
        for name in family.members(state):
            if name not in paces:
                pace_of(name)
    item, pace = forecast.forecast(calendar, usage[line], at, windows[line],
                                   high_speed_left(state, line, at))
    result = {
        "line": line,
        "at": at.astimezone(UTC).isoformat(),
        "cycles": len(windows[line]),
        "forecast": item,
        "rollover": rollover_risk.at_risk(state, line, at, pace, paces if member else None),
        "plans": plan_fit.fit(state, line, at, usage[line], windows[line], others),
        "family": None,
    }
    if member:
        result["family"] = family.suggest(state, at, paces)
    return result


__all__ = ["DEFAULT_CYCLES", "MAX_CYCLES", "advise", "high_speed_left"]
