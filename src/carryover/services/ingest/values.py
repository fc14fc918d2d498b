"""Recording many usage events given as values (not a file): the demo, tests, callers.

A thin adapter over the ingest path (services.ingest.chunks): the rows become one chunk
and go through the same duplicate check, the same columnar or per-account fold and
the same notifications as `carryover ingest`, so there is one batch mechanism.
Bad events (unknown line, before the line started, an amount past the bound of one
event) are reported by their index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from carryover.adapters.cdr_files import Chunk
from carryover.domain.bounds import BoundError, check_event
from carryover.domain.columnar.state import UNITS, to_us
from carryover.domain.units import Unit
from carryover.services.ingest.chunks import ingest_chunks

if TYPE_CHECKING:
    from carryover.services.ingest.ports import IngestUnit


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One event as it comes in: the line by id, MSISDN or IMSI."""

    event_id: str
    line: str
    at: datetime
    amount: int
    received_at: datetime
    unit: Unit = Unit.DATA
    rating_group: str | None = None


@dataclass(slots=True)
class BatchResult:
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (index in batch, reason)
    lines: set[str] = field(default_factory=set)


def record_batch(uow: IngestUnit, rows: list[UsageRow], source: str = "batch",
                 ref: str = "batch") -> BatchResult:
    """Rate `rows` as one chunk. `source` names the chunk where a file's name would
    stand (a reject's origin); `ref` is the ref of the ledger entries the chunk books."""
    if not rows:
        return BatchResult()
    # Amounts past the bound of one event are refused here, by index, as a file's rows
    # are by adapters.cdr_checks: the chunk's int64 columns must never see them.
    rejected: list[tuple[int, str]] = []
    kept: list[int] = []
    for n, r in enumerate(rows):
        try:
            check_event("amount", r.amount)
        except BoundError as exc:
            rejected.append((n, str(exc)))
        else:
            kept.append(n)
    if not kept:
        return BatchResult(rejected=rejected)
    use = [rows[n] for n in kept]
    chunk = Chunk(
        first_row=1,
        event_id=np.array([r.event_id for r in use], dtype=object),
        line=np.array([r.line.strip() for r in use], dtype=object),
        at=np.array([to_us(r.at) for r in use], dtype=np.int64),
        received_at=np.array([to_us(r.received_at) for r in use], dtype=np.int64),
        amount=np.array([r.amount for r in use], dtype=np.int64),
        unit=np.array([UNITS.index(r.unit) for r in use], dtype=np.int8),
        rating_group=np.array([r.rating_group for r in use], dtype=object),
        row=np.array(kept, dtype=np.int64) + 1,  # row k is rows[k - 1]
    )
    summary = ingest_chunks(uow, [(source, chunk, [])], ref,
                            on_rejects=lambda bad: rejected.extend(
                                (r.row - 1, r.reason) for r in bad))
    return BatchResult(summary.accepted, summary.duplicates, summary.late, sorted(rejected),
                       summary.lines)
