"""The closed data buckets of accounts, as notices need them.

A usage notice (domain.notices) counts the cycle's allowance and rollover even
after a bucket closed (used up or expired), so whoever evaluates notices reads
an account's closed data buckets beside its live book: those that may count for
a cycle starting at or after `since`, a superset of those that count (an
allowance that overlaps the cycle and a rollover that starts in it both end
after the cycle starts), which gives the same notices.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select

from carryover.domain.buckets import Bucket
from carryover.domain.plans import BucketKind
from carryover.domain.units import Unit
from carryover.store.instants import utc
from carryover.store.tables import Instant, buckets

# Built once: SQLAlchemy memoizes a statement's cache key on the object, and this one
# runs on every single event (as the repository's hot-path statements do).
_b = buckets.c
_CLOSED_COLUMNS = (_b.id, _b.owner, _b.kind, _b.granted, _b.remaining, _b.valid_from,
                   _b.valid_until, _b.priority, _b.rollable)
_CLOSED_OF = select(_b.account_id, *_CLOSED_COLUMNS).where(
    _b.account_id.in_(bindparam("ids", expanding=True)), _b.closed.is_(True),
    _b.unit == "data").order_by(_b.account_id, _b.id)
_CLOSED_OF_SINCE = _CLOSED_OF.where(
    _b.valid_until.is_(None) | (_b.valid_until > bindparam("since", type_=Instant)))


def closed_query(account_ids: list[int], since: datetime | None) -> tuple[Any, dict]:
    """The query of the closed data buckets of `account_ids` that may count for a cycle
    starting at or after `since` (None: all), and its parameters (for
    store.pipelined.read_all); `closed_from_rows` reads its rows."""
    if since is None:
        return _CLOSED_OF, {"ids": account_ids}
    return _CLOSED_OF_SINCE, {"ids": account_ids, "since": since}


def closed_from_rows(rows: Iterable[Any]) -> dict[int, list[Bucket]]:
    """Account id -> its closed data buckets, in id order."""
    out: dict[int, list[Bucket]] = {}
    for r in rows:
        out.setdefault(r.account_id, []).append(Bucket(
            id=r.id, owner=r.owner, unit=Unit.DATA, kind=BucketKind(r.kind),
            granted=r.granted, valid_from=utc(r.valid_from), valid_until=utc(r.valid_until),
            priority=r.priority, rollable=r.rollable, remaining=r.remaining, closed=True))
    return out
