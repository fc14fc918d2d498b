"""Refusing the usage events that would take a stored total past its bound.

A line's usage of one unit in one cycle is a stored counter (BIGINT). Each event
is at most MAX_EVENT, but many of them could add up past what the column holds,
and an UPDATE would then fail (or, in int64 arrays, wrap). So before a chunk is
written, each event is checked against MAX_TOTAL (domain/bounds.py): the line's
largest stored total, plus the events before it in the chunk, plus itself. An
event past the bound is refused with that reason, and so is every later event of
the same line and unit in the chunk (they would pass it too, or be accepted only
because an earlier one was refused: order must not decide).

The stored total taken is the line's largest over all cycles and the chunk's
events are summed over every cycle they fall in: a conservative check, which
can refuse early only when a line's usage in a cycle is already past 2^61.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import numpy as np

from carryover.domain.bounds import MAX_TOTAL, past_total

REASON = past_total("the line's usage in the cycle")


class StoredTotals(Protocol):
    """The largest stored usage total per (line, unit) over all cycles (store/totals.py)."""

    above: int  # `big()` has every total past this; below it, ask `of()`

    def big(self) -> dict[tuple[str, str], int]: ...

    def of(self, lines: Iterable[str]) -> dict[tuple[str, str], int]: ...


def over_total(totals: StoredTotals, line_codes: np.ndarray, line_names: np.ndarray,
               units: np.ndarray, amounts: np.ndarray, unit_names: np.ndarray) -> np.ndarray:
    """Which events (aligned arrays: line code, unit code, amount) are refused. A line
    code indexes `line_names`, the line ids; the events are in order, and a caller that
    checks a transaction slice by slice passes the slices accepted before too (they
    were checked against the same totals, so they stay accepted)."""
    refused = np.zeros(len(amounts), dtype=bool)
    if len(amounts) == 0:
        return refused
    n_units = len(unit_names)
    # One integer per (line, unit): no text key is built per event.
    keys, inverse = np.unique(np.asarray(line_codes, dtype=np.int64) * n_units
                              + np.asarray(units, dtype=np.int64), return_inverse=True)
    # float64 sums are within a relative 2^-35 of the exact ones here: enough to tell
    # which lines could come near `totals.above`.
    approx = np.bincount(inverse, weights=amounts.astype(np.float64), minlength=len(keys))
    near = {int(k) for k in np.flatnonzero(approx > totals.above * 0.99)}
    big = totals.big()
    if big:
        where = {int(key): k for k, key in enumerate(keys.tolist())}
        code_of = {name: c for c, name in enumerate(line_names.tolist())}
        unit_of = {name: u for u, name in enumerate(unit_names.tolist())}
        for line, unit in big:
            if line in code_of and unit in unit_of:
                k = where.get(code_of[line] * n_units + unit_of[unit])
                if k is not None:
                    near.add(k)
    if not near:
        return refused

    def pair(k: int) -> tuple[str, str]:
        key = int(keys[k])
        return line_names[key // n_units], unit_names[key % n_units]

    stored = totals.of([pair(k)[0] for k in near])
    running: dict[int, int] = {}
    for i in np.flatnonzero(np.isin(inverse, list(near))).tolist():
        k = int(inverse[i])
        if k not in running:
            running[k] = stored.get(pair(k), 0)
        running[k] += int(amounts[i])
        refused[i] = running[k] > MAX_TOTAL
    return refused
