"""Stored running totals near their bound (domain/bounds.py MAX_TOTAL).

A line's usage counter per cycle and unit must never pass MAX_TOTAL. Ingest adds
a whole chunk to the counters at once, so before that it needs each line's
largest stored total; reading every counter of a chunk's lines would cost as
much as the chunk. Totals past BIG_TOTAL (half the bound) are covered by the
partial index `ix_counters_big` and are almost always none; a line below it can
only pass the bound with a chunk that itself adds more than BIG_TOTAL, and only
those lines are read one by one.
"""

from __future__ import annotations

from collections.abc import Iterable

from carryover.store.raw_cursor import Raw
from carryover.store.tables import BIG_TOTAL


class UsageTotals:
    """The stored usage totals a chunk is checked against (services.ingest.total_bounds)."""

    above = BIG_TOTAL  # `big()` holds every total past this

    def __init__(self, raw: Raw) -> None:
        self.raw = raw

    def big(self) -> dict[tuple[str, str], int]:
        return big_usage_totals(self.raw)

    def of(self, lines: Iterable[str]) -> dict[tuple[str, str], int]:
        return usage_totals(self.raw, lines)


def big_usage_totals(raw: Raw) -> dict[tuple[str, str], int]:
    """(line, unit) -> the largest stored usage total past BIG_TOTAL, over all cycles."""
    rows = raw.run("SELECT line, unit, MAX(value) FROM counters "
                   f"WHERE value > {BIG_TOTAL} AND name = 'used' GROUP BY line, unit")
    return {(line, unit): int(value) for line, unit, value in rows}


def usage_totals(raw: Raw, lines: Iterable[str]) -> dict[tuple[str, str], int]:
    """(line, unit) -> the largest stored usage total of each of `lines`, over all cycles."""
    out: dict[tuple[str, str], int] = {}
    wanted = sorted(set(lines))
    for lo in range(0, len(wanted), 500):
        part = wanted[lo:lo + 500]
        marks = ", ".join("?" * len(part))
        for line, unit, value in raw.run(
                f"SELECT line, unit, MAX(value) FROM counters WHERE name = 'used' "
                f"AND line IN ({marks}) GROUP BY line, unit", part):
            out[(line, unit)] = int(value)
    return out
