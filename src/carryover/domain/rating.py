"""The rating core: drain demand through ordered buckets, on arrays.

The order is docs/semantics.md, "Buckets and the consumption order".

Rating one line's usage over a stretch of time in which its usable buckets do
not change is a prefix-sum problem. Lay the buckets end to end in consumption
order; bucket k covers the interval [before_k, before_k + left_k) of the line's
cumulative usage; a total demand D therefore takes

    debit_k = clip(D - before_k, 0, left_k)      overage = D - sum(debit_k)

which is exactly what a greedy per-event loop produces, byte for byte. The
same arithmetic on intervals gives the per-event split when it is wanted.

A *run* is a stretch of demand from one line against one *queue* (that line's
usable buckets, own and pool, in consumption order). `drain` rates many runs at
once; runs passed together must not share a bucket (the caller rates runs that
share a family pool in successive rounds). A family member's limit caps what the
run may take from the pool entries of its queue (docs/semantics.md, "Family pools").

Everything is int64. Unlimited buckets use buckets.UNLIMITED as their size.

Why int64 cannot overflow (the bounds of domain/bounds.py): a run's demand is
what one line uses of one unit in one cycle, at most MAX_TOTAL = 2^62, since an
event that would take that total past it is refused before it is rated (and
`drain` refuses a demand outside 0..2^62). Each entry is clamped to its run's
demand first, so debits, overage and pool takes are at most 2^62 < 2^63. What
grows with the number of entries is the prefix sum over all entries laid end
to end: `drain` adds the clamped sizes in float64 first (relative error at most
n * 2^-53, far inside the factor 2 of margin) and only when that total is below
2^62 uses int64, where every prefix sum, and every difference of two of them,
then lies within +-2^62. Otherwise it does the same arithmetic on Python
integers: exact, slower, and only for inputs no real network produces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carryover.domain.bounds import MAX_TOTAL
from carryover.domain.buckets import UNLIMITED

I64 = np.int64
_SAFE_SUM = float(2**62)


@dataclass(frozen=True, slots=True)
class Drained:
    """What `drain` took: per queue entry, and the overage per run."""

    debit: np.ndarray  # int64[Q], aligned with the queue entries
    overage: np.ndarray  # int64[R]
    pool_taken: np.ndarray  # int64[R], what each run took from pool entries


def _run_index(ptr: np.ndarray) -> np.ndarray:
    """For queue entries laid out by `ptr` (R+1 offsets), the run each belongs to."""
    lengths = np.diff(ptr)
    return np.repeat(np.arange(len(lengths), dtype=I64), lengths)


def _exclusive_group_cumsum(values: np.ndarray, ptr: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """Sum of the values before each entry within its own run."""
    inclusive = np.cumsum(values, dtype=values.dtype)
    exclusive = inclusive - values
    # exclusive[ptr[r]] is the total of all runs before r; subtract it per entry.
    starts = np.concatenate([exclusive, np.zeros(1, dtype=values.dtype)])[ptr[:-1]]
    return exclusive - starts[runs]


def drain(
    demand: np.ndarray,
    ptr: np.ndarray,
    left: np.ndarray,
    pooled: np.ndarray | None = None,
    pool_cap: np.ndarray | None = None,
) -> Drained:
    """Rate R runs against their queues.

    demand  int64[R]   units each run asks for (>= 0)
    ptr     int64[R+1] queue offsets: run r owns entries ptr[r]:ptr[r+1]
    left    int64[Q]   what each queue entry's bucket has left (UNLIMITED for no cap)
    pooled  bool[Q]    entries drawn from a family pool (optional)
    pool_cap int64[R]  what each run may still take from the pool (optional)
    """
    demand = np.asarray(demand, dtype=I64)
    ptr = np.asarray(ptr, dtype=I64)
    left = np.asarray(left, dtype=I64)
    if len(demand) and (int(demand.min()) < 0 or int(demand.max()) > MAX_TOTAL):
        raise ValueError(f"demand outside 0..2^62: {int(demand.min())}..{int(demand.max())}")
    runs = _run_index(ptr)
    # No entry can give a run more than the run asks for, so clamp each entry to its
    # run's demand before any prefix sum: the debits are unchanged, and the sums stay
    # bounded by real usage instead of adding up UNLIMITED sentinels past int64.
    run_demand = demand[runs]
    usable = np.minimum(left, run_demand)
    if float(usable.sum(dtype=np.float64)) >= _SAFE_SUM:
        # The prefix sum over all entries could pass int64: the same arithmetic on
        # Python integers (module docstring). The results fit int64 again.
        exact = _drain(demand.astype(object), ptr, usable.astype(object), runs, pooled,
                       None if pool_cap is None else np.asarray(pool_cap).astype(object))
        return Drained(*(a.astype(I64) for a in (exact.debit, exact.overage, exact.pool_taken)))
    return _drain(demand, ptr, usable, runs, pooled,
                  None if pool_cap is None else np.asarray(pool_cap, dtype=I64))


def _drain(demand: np.ndarray, ptr: np.ndarray, usable: np.ndarray, runs: np.ndarray,
           pooled: np.ndarray | None, pool_cap: np.ndarray | None) -> Drained:
    dtype = usable.dtype
    run_demand = demand[runs]
    has_pool = pooled is not None and bool(pooled.any())
    if has_pool and pool_cap is not None:
        cap = pool_cap[runs]
        pool_left = np.where(pooled, np.minimum(usable, cap), 0)
        pool_before = _exclusive_group_cumsum(pool_left, ptr, runs)
        capped = np.clip(cap - pool_before, 0, usable)
        usable = np.where(pooled, capped, usable)
    before = _exclusive_group_cumsum(usable, ptr, runs)
    debit = np.clip(run_demand - before, 0, usable)
    covered = np.zeros(len(demand), dtype=dtype)
    _grouped_sum_into(covered, debit, ptr)
    taken = np.zeros(len(demand), dtype=dtype)
    if has_pool:
        pool_debit = np.where(pooled, debit, 0)
        _grouped_sum_into(taken, pool_debit, ptr)
    return Drained(debit=debit, overage=demand - covered, pool_taken=taken)


def _grouped_sum_into(out: np.ndarray, values: np.ndarray, ptr: np.ndarray) -> None:
    """out[r] = sum(values[ptr[r]:ptr[r+1]]) exactly (in values' dtype), empty runs give 0."""
    inclusive = np.concatenate([np.zeros(1, dtype=values.dtype),
                                np.cumsum(values, dtype=values.dtype)])
    out[:] = inclusive[ptr[1:]] - inclusive[ptr[:-1]]


def split_events(amounts: np.ndarray, usable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-event split of one run: (matrix int64[E, Q] of debits, overage int64[E]).

    Event i covers [E_i, E_i + a_i) of the run's cumulative usage; queue entry k
    covers [B_k, B_k + u_k); the debit is the length of the intersection. This is
    how a batch booked per bucket is explained event by event (docs/semantics.md,
    "The ledger and conservation").
    """
    amounts = np.asarray(amounts, dtype=I64)
    usable = np.asarray(usable, dtype=I64)
    ev_end = np.cumsum(amounts, dtype=I64)
    ev_start = ev_end - amounts
    b_end = np.cumsum(usable, dtype=I64)
    b_start = b_end - usable
    lo = np.maximum(ev_start[:, None], b_start[None, :])
    hi = np.minimum(ev_end[:, None], b_end[None, :])
    matrix = np.clip(hi - lo, 0, None)
    return matrix, amounts - matrix.sum(axis=1)


def drain_loop(demands: list[int], queues: list[list[int]]) -> tuple[list[list[int]], list[int]]:
    """The plain per-unit greedy loop the prefix-sum core must equal (used as an oracle)."""
    debits: list[list[int]] = []
    overage: list[int] = []
    for need, queue in zip(demands, queues, strict=True):
        taken = []
        for size in queue:
            take = min(need, size)
            taken.append(take)
            need -= take
        debits.append(taken)
        overage.append(need)
    return debits, overage


__all__ = ["UNLIMITED", "Drained", "drain", "drain_loop", "split_events"]
