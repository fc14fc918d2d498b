"""Refusing events that would take a stored total past MAX_TOTAL (services.ingest.total_bounds),
against stored totals given in memory."""

from __future__ import annotations

import numpy as np

from carryover.domain.bounds import MAX_TOTAL
from carryover.services.ingest.total_bounds import over_total

UNITS = np.array(["data", "voice"], dtype=object)


def check(totals, lines: np.ndarray, units, amounts) -> np.ndarray:
    """over_total with the lines given by name, coded as the ingest codes them."""
    names, codes = np.unique(lines, return_inverse=True)
    return over_total(totals, codes, names, np.asarray(units), amounts, UNITS)


class Totals:
    above = MAX_TOTAL // 2

    def __init__(self, stored: dict[tuple[str, str], int]) -> None:
        self.stored, self.asked = stored, []

    def big(self) -> dict[tuple[str, str], int]:
        return {k: v for k, v in self.stored.items() if v > self.above}

    def of(self, lines):
        self.asked.append(sorted(lines))
        return {k: v for k, v in self.stored.items() if k[0] in set(lines)}


def test_the_event_past_the_bound_and_every_later_one_of_its_line_are_refused() -> None:
    totals = Totals({("L1", "data"): MAX_TOTAL - 10, ("L2", "data"): 7})
    lines = np.array(["L1", "L2", "L1", "L1", "L1"], dtype=object)
    units = np.array([0, 0, 0, 1, 0])
    amounts = np.array([5, 9, 6, 10**6, 1], dtype=np.int64)
    # L1 data: MAX-10 +5 = MAX-5 fits; +6 = MAX+1 refused; +1 = MAX+2 refused too.
    # L1 voice has no stored total near the bound; L2 is far below it.
    refused = check(totals, lines, units, amounts)
    assert refused.tolist() == [False, False, True, False, True]


def test_lines_far_below_the_bound_are_not_read() -> None:
    totals = Totals({("L1", "data"): 100})
    refused = check(totals, np.array(["L1"], dtype=object), np.array([0]),
                    np.array([10**9], dtype=np.int64))
    assert refused.tolist() == [False]
    assert totals.asked == []  # nothing near BIG: no per-line lookup


def test_slices_of_one_transaction_are_checked_together() -> None:
    # Stored just below the half bound (not "big"); each slice adds 0.6 of it: alone
    # each slice fits, together the second passes MAX_TOTAL. The ingest checks a
    # slice with the slices accepted before it in the transaction.
    half = MAX_TOTAL // 2
    totals = Totals({("L1", "data"): half - 1})
    part = np.array([int(half * 0.6)], dtype=np.int64)
    first = check(totals, np.array(["L1"], dtype=object), [0], part)
    assert first.tolist() == [False]
    both = check(totals, np.array(["L1", "L1"], dtype=object), [0, 0],
                 np.concatenate([part, part]))
    assert both.tolist() == [False, True]
