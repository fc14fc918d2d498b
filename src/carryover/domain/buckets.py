"""Buckets: grants of one unit to one owner, and the order they are drawn in.

The rule is docs/semantics.md, "Buckets and the consumption order".

A bucket belongs to a line or to an account's family pool. It is usable at
instant t when valid_from <= t < valid_until and it has something left.
Consumption order is total and deterministic:
(priority asc, valid_until asc with none last, valid_from asc, owner rank, id asc),
where the owner rank puts a line's own buckets before the pool's on a tie.

Bucket ids are derived from what created them (owner, kind, instant, input id),
so a full replay recreates the same ids and the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from carryover.domain.plans import BucketKind
from carryover.domain.units import Unit

POOL = "pool"
# Stand-in for "no cap" inside integer arrays: large enough for any real usage,
# small enough that a few of them summed never overflow int64 (2**63).
UNLIMITED = 2**56
_FAR_FUTURE = datetime.max.replace(tzinfo=None).isoformat()


@dataclass(slots=True)
class Bucket:
    """One grant and what is left of it; `granted` None means unlimited."""

    id: str
    owner: str  # a line id, or POOL for the account's family pool
    unit: Unit
    kind: BucketKind
    granted: int | None
    valid_from: datetime
    valid_until: datetime | None
    priority: int
    rollable: bool
    origin: str | None = None
    remaining: int | None = None
    closed: bool = False  # expired, rolled over or forfeited: never usable again

    def __post_init__(self) -> None:
        if self.remaining is None and self.granted is not None:
            self.remaining = self.granted

    @property
    def unlimited(self) -> bool:
        return self.granted is None

    def usable_at(self, at: datetime) -> bool:
        if self.closed or self.valid_from > at:
            return False
        if self.valid_until is not None and at >= self.valid_until:
            return False
        return self.unlimited or (self.remaining or 0) > 0

    def left(self) -> int:
        """Remaining as an integer for the rating arrays."""
        return UNLIMITED if self.remaining is None else self.remaining


def consumption_key(bucket: Bucket) -> tuple:
    """The consumption order's sort key; pool buckets after a line's own on a full tie."""
    until = bucket.valid_until.isoformat() if bucket.valid_until else _FAR_FUTURE
    # ISO strings of UTC instants sort like the instants themselves.
    return (
        bucket.priority,
        bucket.valid_until is None,
        until,
        bucket.valid_from.isoformat(),
        bucket.owner == POOL,
        bucket.id,
    )


def in_consumption_order(buckets) -> list[Bucket]:
    return sorted(buckets, key=consumption_key)


class BucketTable(dict):
    """An account's buckets by id, with an index of the live (not closed) ones.

    Closed buckets stay in the table (the store writes them, statements read them)
    but nothing at a boundary, an expiry or a usage event needs them again. An
    account gains buckets every cycle, so scanning the whole table once per cycle
    would make a long fold quadratic in its cycles; `live()` costs the live buckets
    plus those closed since the last call. `scanned` counts the buckets `live()`
    has looked at, so tests can measure work rather than time.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()
        self._live: dict[str, Bucket] = {}
        self.scanned = 0
        self.update(*args, **kwargs)

    def __setitem__(self, key: str, bucket: Bucket) -> None:
        super().__setitem__(key, bucket)
        self._live[key] = bucket  # a replaced bucket replaces its index entry too

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._live.pop(key, None)

    def update(self, *args, **kwargs) -> None:
        for key, bucket in dict(*args, **kwargs).items():
            self[key] = bucket

    def setdefault(self, key: str, default: Bucket) -> Bucket:  # type: ignore[override]
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key: str, *default):  # type: ignore[override]
        self._live.pop(key, None)
        return super().pop(key, *default)

    def popitem(self):  # type: ignore[override]
        key, bucket = super().popitem()
        self._live.pop(key, None)
        return key, bucket

    def clear(self) -> None:
        super().clear()
        self._live.clear()

    def live(self) -> list[Bucket]:
        """The buckets not closed, in insertion order."""
        self.scanned += len(self._live)
        gone = [key for key, bucket in self._live.items() if bucket.closed]
        for key in gone:
            del self._live[key]
        return list(self._live.values())
