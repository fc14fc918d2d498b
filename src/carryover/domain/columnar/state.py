"""The columnar book: many accounts' lines and buckets as numpy arrays.

The object book (domain.book) folds one account at a time and is the reference.
For bulk ingestion the same fold is done set-based: every bucket of every touched
account is a row in these arrays, instants are int64 microseconds since the Unix
epoch (UTC), and rating, expiry and rollover are array operations over all
accounts at once. Its results are checked against the object book in tests.

Codes: units DATA=0, VOICE=1, SMS=2; bucket kinds in BucketKind order.
NEVER (int64 max) stands for "no end" in valid_until.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from carryover.domain.buckets import UNLIMITED, Bucket
from carryover.domain.ledger import EntryKind
from carryover.domain.plans import BucketKind
from carryover.domain.units import Unit

I64 = np.int64
NEVER = np.iinfo(np.int64).max
UNITS = list(Unit)
UNIT_NAMES = np.array([str(u) for u in UNITS], dtype=object)  # a unit index's name
KINDS = list(BucketKind)
ENTRY_KINDS = list(EntryKind)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(at: datetime | None) -> int:
    """An aware instant as microseconds since the epoch (NEVER for None)."""
    if at is None:
        return int(NEVER)
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime | None:
    if us == NEVER:
        return None
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


def iso_key(key: tuple[int, int, str] | None) -> list | None:
    """A fold key (instant in microseconds, rank, id) as the account's cursor stores it."""
    return None if key is None else [from_us(key[0]).isoformat(), key[1], key[2]]


@dataclass
class Buckets:
    """Bucket rows. `line` indexes the Lines table; `new` marks rows created in this run."""

    line: np.ndarray
    unit: np.ndarray
    kind: np.ndarray
    granted: np.ndarray  # UNLIMITED where unlimited
    remaining: np.ndarray  # UNLIMITED where unlimited
    unlimited: np.ndarray
    valid_from: np.ndarray
    valid_until: np.ndarray
    priority: np.ndarray
    rollable: np.ndarray
    closed: np.ndarray
    ids: np.ndarray  # object
    origin: np.ndarray  # object
    new: np.ndarray

    @classmethod
    def empty(cls) -> Buckets:
        ints = [np.zeros(0, dtype=I64) for _ in range(10)]
        return cls(ints[0], ints[1], ints[2], ints[3], ints[4], np.zeros(0, bool), ints[5],
                   ints[6], ints[7], np.zeros(0, bool), np.zeros(0, bool),
                   np.zeros(0, object), np.zeros(0, object), np.zeros(0, bool))

    def __len__(self) -> int:
        return len(self.line)

    def append(self, other: Buckets) -> Buckets:
        return Buckets(*(np.concatenate([getattr(self, f), getattr(other, f)])
                         for f in self.__dataclass_fields__))

    def take(self, index: np.ndarray) -> Buckets:
        return Buckets(*(getattr(self, f)[index] for f in self.__dataclass_fields__))

    def order(self) -> np.ndarray:
        """Indices in (line, unit, consumption order): priority, valid_until (none last),
        valid_from, id. Within one line every bucket is the line's own, so the owner
        rank (a line's own before the pool's, docs/semantics.md, "Buckets and the
        consumption order") never decides here."""
        keys = (self.valid_from, self.valid_until, self.priority, self.unit, self.line)
        order = np.lexsort(keys)
        # The id only breaks full ties, which are rare: sort those runs by id instead of
        # sorting every id as a string on every call.
        ranked = np.stack([k[order] for k in keys])
        tie = np.all(ranked[:, 1:] == ranked[:, :-1], axis=0)
        if tie.any():
            starts = np.flatnonzero(np.diff(np.concatenate([[False], tie, [False]]).astype(
                np.int8)) == 1)
            ends = np.flatnonzero(np.diff(np.concatenate([[False], tie, [False]]).astype(
                np.int8)) == -1)
            for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
                run = order[start:end + 1]
                order[start:end + 1] = run[np.argsort(self.ids[run].astype(str), kind="stable")]
        return order


def buckets_from_objects(items: list[tuple[int, Bucket]]) -> Buckets:
    """Rows from object buckets: (line index, bucket)."""
    if not items:
        return Buckets.empty()
    lines, objs = zip(*items, strict=True)

    def col(values, dtype=I64) -> np.ndarray:
        return np.fromiter(values, dtype=dtype, count=len(objs))
    return Buckets(
        line=np.asarray(lines, dtype=I64),
        unit=col(UNITS.index(b.unit) for b in objs),
        kind=col(KINDS.index(b.kind) for b in objs),
        granted=col(UNLIMITED if b.granted is None else b.granted for b in objs),
        remaining=col(UNLIMITED if b.remaining is None else b.remaining for b in objs),
        unlimited=col((b.granted is None for b in objs), bool),
        valid_from=col(to_us(b.valid_from) for b in objs),
        valid_until=col(to_us(b.valid_until) for b in objs),
        priority=col(b.priority for b in objs),
        rollable=col((b.rollable for b in objs), bool),
        closed=col((b.closed for b in objs), bool),
        ids=np.array([b.id for b in objs], dtype=object),
        origin=np.array([b.origin for b in objs], dtype=object),
        new=np.zeros(len(objs), dtype=bool),
    )


@dataclass
class Entries:
    """Ledger entries as columns, appended in runs; turned into rows by the store."""

    at: list[np.ndarray] = field(default_factory=list)
    kind: list[np.ndarray] = field(default_factory=list)
    unit: list[np.ndarray] = field(default_factory=list)
    amount: list[np.ndarray] = field(default_factory=list)
    bucket: list[np.ndarray] = field(default_factory=list)  # bucket row index, -1 for none
    line: list[np.ndarray] = field(default_factory=list)  # line index of the `line` field, -1
    owner_line: list[np.ndarray] = field(default_factory=list)  # line index of the owner
    ref: list[np.ndarray] = field(default_factory=list)  # object
    note: list[np.ndarray] = field(default_factory=list)  # object

    def add(self, at, kind: EntryKind, unit, amount, bucket, line, owner_line, ref,
            note="") -> None:
        n = len(amount)
        if n == 0:
            return
        self.at.append(np.broadcast_to(np.asarray(at, dtype=I64), (n,)).copy())
        self.kind.append(np.full(n, ENTRY_KINDS.index(kind), dtype=I64))
        self.unit.append(np.asarray(unit, dtype=I64))
        self.amount.append(np.asarray(amount, dtype=I64))
        self.bucket.append(np.broadcast_to(np.asarray(bucket, dtype=I64), (n,)).copy())
        self.line.append(np.broadcast_to(np.asarray(line, dtype=I64), (n,)).copy())
        self.owner_line.append(np.asarray(owner_line, dtype=I64))
        self.ref.append(np.broadcast_to(np.asarray(ref, dtype=object), (n,)).copy())
        self.note.append(np.broadcast_to(np.asarray(note, dtype=object), (n,)).copy())

    def columns(self) -> dict[str, np.ndarray]:
        names = ("at", "kind", "unit", "amount", "bucket", "line", "owner_line", "ref", "note")
        if not self.amount:
            return {n: np.zeros(0, dtype=object if n in ("ref", "note") else I64)
                    for n in names}
        return {n: np.concatenate(getattr(self, n)) for n in names}
