"""Charging sessions and the grants they hold: what real-time charging keeps between
one request of a session and the next.

A session (`ChargingSession`) is one Nchf charging data resource: the line it
charges, the last request it answered (its sequence number, what it said and the
answer, so a retransmission gets the same answer), the key of the create that opened it (so a
create sent again opens nothing new: services.charging.model.create_key) and,
where the packet core asked to be notified (re-authorization,
domain/standing.py) and, once released, when. A hold
(`QuotaHold`) is a grant the session was given for one rating group and has not
yet reported: quota.py counts it against the account's buckets until it is
reported, replaced or expires. The store keeps both as rows; the charging
service changes them in memory and hands them back to be written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(slots=True)
class ChargingSession:
    ref: str
    account_id: int
    line: str
    subscriber: str
    opened_at: datetime
    updated_at: datetime
    sequence: int  # the last invocation sequence number answered (-1: none yet)
    last_result: list  # that answer's grants, [[rating group, Grant.as_dict()], ...]
    released_at: datetime | None
    create_key: str | None = None  # the opening create's key; None: it had none
    last_digest: str | None = None  # ChargingRequest.digest of the last answered request
    notify_uri: str | None = None  # where the create asked to be notified; None: nowhere


@dataclass(slots=True)
class QuotaHold:
    account_id: int
    ref: str
    rating_group: int
    line: str
    amount: int
    granted_at: datetime
    expires_at: datetime

    def order(self) -> tuple:
        """Holds are counted oldest grant first, so every reader counts them alike."""
        return (self.granted_at, self.ref, self.rating_group)
