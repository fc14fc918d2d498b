"""Columnar consumption order equals a plain sort on the full key, ties broken by id."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from carryover.domain.columnar.state import Buckets


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1), st.integers(0, 2),
                          st.integers(0, 2), st.integers(0, 2),
                          st.text("abc", min_size=1, max_size=3)),
                min_size=0, max_size=40, unique_by=lambda row: row[5]))
def test_order_is_line_unit_priority_until_from_id(rows):
    b = Buckets.empty()
    if rows:
        cols = list(zip(*rows, strict=True))
        n = len(rows)
        b = Buckets(
            line=np.array(cols[0], dtype=np.int64), unit=np.array(cols[1], dtype=np.int64),
            kind=np.zeros(n, dtype=np.int64), granted=np.zeros(n, dtype=np.int64),
            remaining=np.zeros(n, dtype=np.int64), unlimited=np.zeros(n, dtype=bool),
            valid_from=np.array(cols[4], dtype=np.int64),
            valid_until=np.array(cols[3], dtype=np.int64),
            priority=np.array(cols[2], dtype=np.int64), rollable=np.zeros(n, dtype=bool),
            closed=np.zeros(n, dtype=bool), ids=np.array(cols[5], dtype=object),
            origin=np.array([None] * n, dtype=object), new=np.zeros(n, dtype=bool))
    # The consumption order within one line and unit, spelled out row by row.
    expected = sorted(range(len(rows)), key=lambda i: (rows[i][0], rows[i][1], rows[i][2],
                                                       rows[i][3], rows[i][4], rows[i][5]))
    assert b.order().tolist() == expected
