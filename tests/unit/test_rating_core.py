"""Property tests for the numpy rating core, carryover.domain.rating.

The rules are docs/semantics.md, "Buckets and the consumption order", "Family pools"
and "The ledger and conservation".

The prefix-sum core must give, byte for byte, what the plain greedy loop gives:
usage drains the first queue entry, then the next, and what no entry covers is
overage. Oracles here are written as the obvious per-entry loops, independent of
the arrays; `drain_loop` (the module's own oracle) is also checked against them.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from carryover.domain.rating import UNLIMITED, drain, drain_loop, split_events

MB = 1024**2
GB = 1024**3

# Sizes mix realistic values (MB..tens of GB), tiny ones (0, 1, 2 bytes) to hit the
# edges, and UNLIMITED entries (buckets with no cap).
sizes = st.one_of(
    st.integers(0, 3),
    st.integers(0, 50 * GB),
    st.sampled_from([0, 1, MB, GB, 10 * GB, UNLIMITED]),
)
demands = st.one_of(
    st.integers(0, 3),
    st.integers(0, 120 * GB),
    st.sampled_from([0, 1, MB - 1, MB, GB + 1]),
)
queues = st.lists(sizes, min_size=0, max_size=7)
runs = st.lists(st.tuples(demands, queues), min_size=0, max_size=8)


def arrays(batch: list[tuple[int, list[int]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    demand = np.array([d for d, _ in batch], dtype=np.int64)
    ptr = np.zeros(len(batch) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(q) for _, q in batch])
    left = np.array([s for _, q in batch for s in q], dtype=np.int64)
    return demand, ptr, left


def greedy(need: int, queue: list[int], pooled: list[bool] | None = None,
           cap: int | None = None) -> tuple[list[int], int, int]:
    """The hand-written loop: (debit per entry, overage, taken from the pool)."""
    taken: list[int] = []
    pool_taken = 0
    for k, size in enumerate(queue):
        room = size
        if pooled is not None and pooled[k] and cap is not None:
            room = min(room, cap - pool_taken)
        take = min(need, room)
        taken.append(take)
        need -= take
        if pooled is not None and pooled[k]:
            pool_taken += take
    return taken, need, pool_taken


@settings(max_examples=200, deadline=None)
@given(runs)
def test_drain_equals_the_greedy_loop(batch: list[tuple[int, list[int]]]) -> None:
    demand, ptr, left = arrays(batch)
    got = drain(demand, ptr, left)
    loop_debits, loop_overage = drain_loop([d for d, _ in batch], [q for _, q in batch])
    assert got.debit.dtype == np.int64
    assert got.debit.tolist() == [x for row in loop_debits for x in row]
    assert got.overage.tolist() == loop_overage
    assert got.pool_taken.tolist() == [0] * len(batch)
    for r, (need, queue) in enumerate(batch):
        debits, overage, _ = greedy(need, queue)
        assert got.debit[ptr[r]:ptr[r + 1]].tolist() == debits
        assert int(got.overage[r]) == overage
        # Conservation per run: demand = debits + overage, and no entry is overdrawn.
        assert sum(debits) + overage == need
        assert all(0 <= d <= s for d, s in zip(debits, queue, strict=True))


@settings(max_examples=150, deadline=None)
@given(runs)
def test_runs_rated_together_equal_runs_rated_alone(batch: list[tuple[int, list[int]]]) -> None:
    demand, ptr, left = arrays(batch)
    together = drain(demand, ptr, left)
    for r, (need, queue) in enumerate(batch):
        alone = drain(np.array([need]), np.array([0, len(queue)]),
                      np.array(queue, dtype=np.int64))
        assert together.debit[ptr[r]:ptr[r + 1]].tolist() == alone.debit.tolist()
        assert int(together.overage[r]) == int(alone.overage[0])


def test_edge_shapes() -> None:
    # No runs at all.
    none = drain(np.array([], dtype=np.int64), np.array([0]), np.array([], dtype=np.int64))
    assert none.debit.tolist() == [] and none.overage.tolist() == []
    # Empty queues between non-empty ones: everything is overage for them.
    got = drain(np.array([5, 7, 0, 3]), np.array([0, 0, 2, 2, 3]), np.array([4, 10, 1]))
    # run 0: empty queue, 5 overage; run 1: 4 then 3 of 10; run 2: zero demand; run 3: 1, 2 over.
    assert got.debit.tolist() == [4, 3, 1]
    assert got.overage.tolist() == [5, 0, 0, 2]
    # UNLIMITED entries absorb any realistic demand.
    got = drain(np.array([1000 * GB]), np.array([0, 2]), np.array([GB, UNLIMITED]))
    assert got.debit.tolist() == [GB, 999 * GB]
    assert got.overage.tolist() == [0]


# ---------------------------------------------------------------------------- split_events


@settings(max_examples=200, deadline=None)
@given(st.lists(demands, min_size=0, max_size=8), queues)
def test_split_events_rows_and_columns(amounts: list[int], queue: list[int]) -> None:
    matrix, overage = split_events(np.array(amounts, dtype=np.int64),
                                   np.array(queue, dtype=np.int64))
    assert matrix.shape == (len(amounts), len(queue))
    assert (matrix >= 0).all() and (overage >= 0).all()
    # Rows: each event's bytes are its debits plus its overage.
    assert (matrix.sum(axis=1) + overage).tolist() == amounts
    # Columns: the per-event split adds up to what drain books per bucket for the total.
    total = drain(np.array([sum(amounts)]), np.array([0, len(queue)]),
                  np.array(queue, dtype=np.int64))
    assert matrix.sum(axis=0).tolist() == total.debit.tolist()
    assert int(overage.sum()) == int(total.overage[0])
    # And it is the split events rated one after the other would produce.
    remaining = list(queue)
    for i, amount in enumerate(amounts):
        debits, over, _ = greedy(amount, remaining)
        assert matrix[i].tolist() == debits
        assert int(overage[i]) == over
        remaining = [s - d for s, d in zip(remaining, debits, strict=True)]


# ------------------------------------------------------------------------------ pool caps

pool_caps = st.one_of(st.integers(0, 3), st.integers(0, 30 * GB),
                      st.sampled_from([0, 1, GB, UNLIMITED]))


@st.composite
def pooled_runs(draw):
    batch = draw(runs)
    pooled = [draw(st.lists(st.booleans(), min_size=len(q), max_size=len(q))) for _, q in batch]
    caps = [draw(pool_caps) for _ in batch]
    return batch, pooled, caps


@settings(max_examples=200, deadline=None)
@given(pooled_runs())
def test_pool_cap_equals_the_loop_with_a_cap(case) -> None:
    batch, pooled, caps = case
    demand, ptr, left = arrays(batch)
    flags = np.array([p for row in pooled for p in row], dtype=bool)
    got = drain(demand, ptr, left, flags, np.array(caps, dtype=np.int64))
    for r, (need, queue) in enumerate(batch):
        debits, overage, pool_taken = greedy(need, queue, pooled[r], caps[r])
        mine = got.debit[ptr[r]:ptr[r + 1]]
        assert mine.tolist() == debits
        assert int(got.overage[r]) == overage
        assert int(got.pool_taken[r]) == pool_taken
        # A run never takes more than its cap from pooled entries, and pool_taken is
        # exactly what it took from them.
        assert pool_taken <= caps[r]
        assert int(mine[np.array(pooled[r], dtype=bool)].sum()) == pool_taken
        assert sum(debits) + overage == need


@settings(max_examples=100, deadline=None)
@given(pooled_runs())
def test_pool_flags_without_a_cap_only_count(case) -> None:
    batch, pooled, _ = case
    demand, ptr, left = arrays(batch)
    flags = np.array([p for row in pooled for p in row], dtype=bool)
    got = drain(demand, ptr, left, flags, None)
    plain = drain(demand, ptr, left)
    assert got.debit.tolist() == plain.debit.tolist()
    assert got.overage.tolist() == plain.overage.tolist()
    for r, (need, queue) in enumerate(batch):
        assert int(got.pool_taken[r]) == greedy(need, queue, pooled[r])[2]


def test_pool_cap_example() -> None:
    # Queue: own 1 GB, pool 5 GB, pool 5 GB, own 2 GB; cap 6 GB on the pool; demand 20 GB.
    # Own 1, pool 5, pool 1 (cap reached), own 2 -> 9 GB debited, 11 GB overage.
    got = drain(np.array([20 * GB]), np.array([0, 4]),
                np.array([GB, 5 * GB, 5 * GB, 2 * GB]),
                np.array([False, True, True, False]), np.array([6 * GB]))
    assert got.debit.tolist() == [GB, 5 * GB, GB, 2 * GB]
    assert got.overage.tolist() == [11 * GB]
    assert got.pool_taken.tolist() == [6 * GB]
