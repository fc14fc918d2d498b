"""A line's standing for real-time charging, and when it moved.

A packet core holds a session's grant until it reports or the grant's validity
ends; what the CHF decided then (a throttle, a block, a grant of the last bytes)
stays in force meanwhile. When something outside the session moves the line to
another standing, the CHF asks the core to re-authorize (docs/nchf.md,
"Re-authorization"), so a subscriber who bought a top-up is not slowed down until
the grant runs out. The standing is what a new grant would be decided from:

- the QoS of general data and of hotspot data (views.qos): normal, deprioritized,
  throttled at a speed, or blocked;
- whether the line has data left before overage (views.available: yes, no, or
  unlimited);
- its member limit of data in the family pool, if it has one.

A top-up or gift for a throttled or blocked line, a member limit lifted or lowered,
a plan change in force now, a pool another member drained: each changes one of
these, and only the lines whose standing changed are asked again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from carryover.domain.book import AccountBook
from carryover.domain.inputs import HOTSPOT
from carryover.domain.units import Unit
from carryover.domain.views import QosDecision, available, qos


@dataclass(frozen=True, slots=True)
class Standing:
    data: QosDecision
    hotspot: QosDecision
    has_data: bool | None  # None: an unlimited bucket is usable
    limit: int | None  # the member limit of data in the pool, None: none


def standing(book: AccountBook, line: str, at: datetime) -> Standing:
    """`line`'s standing in `book` at `at` (the book's state is at `at` or later)."""
    left = available(book, line, Unit.DATA, at)
    return Standing(qos(book, line, at), qos(book, line, at, HOTSPOT),
                    None if left is None else left > 0,
                    book.lines[line].limits.get(Unit.DATA))


def standings(book: AccountBook, lines: Iterable[str], at: datetime) -> dict[str, Standing]:
    """The standing of each of `lines` the book knows."""
    return {line: standing(book, line, at) for line in sorted(set(lines))
            if line in book.lines}


def moved(before: Mapping[str, Standing], after: Mapping[str, Standing]) -> list[str]:
    """The lines whose standing is not what it was, in line order."""
    return sorted(line for line, now in after.items() if before.get(line) != now)
