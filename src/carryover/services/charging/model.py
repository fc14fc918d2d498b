"""The vocabulary of real-time charging: requests, answers, policy and refusals.

Real-time charging sessions for the 5G core (Nchf_ConvergedCharging): open,
update, release. A ChargingRequest is what carryover reads of a TS 32.291
ChargingDataRequest (api/nchf/routes.py maps the JSON to it); a ChargingAnswer the
grants it decided (domain.quota) per rating group.

Each request is answered on the subscriber's account in this order: lock the
account (so two sessions of one account are answered one after the other and
can never be granted the same bytes), load its book, rate the used units the
request reports as ordinary usage events at their own instants (event id
`nchf:<ref>:<rating group>:<localSequenceNumber>`, so a report sent twice is
counted once and late reports follow docs/semantics.md, "Late usage"), bring
the book to the request's instant (a boundary on the way rolls over as on every
other path), then grant each requested rating group with domain.quota, holding
every other live grant of the account against the buckets. The new grants
replace the session's holds for those rating groups, the book and the holds are
written, and the answer is stored on the session so that a retransmission (same
invocationSequenceNumber) gets the same answer rather than a second grant. The
request's instants are the packet core's (invocationTimeStamp, and each
container's triggerTimestamp for its usage), as with CDR files.

services.charging.group_commit answers many requests in one transaction (group
commit) with the same result as answering them one by one; the API hands its
requests to services.charging.queue, which batches them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from carryover.domain.quota import Grant, QuotaPolicy
from carryover.services.errors import NotFound, ServiceError


class UnknownSubscriber(NotFound):
    """No line has this SUPI/GPSI."""


class SessionNotFound(NotFound):
    """No open charging session has this chargingDataRef."""


class StaleRequest(ServiceError):
    """The invocationSequenceNumber is older than the last one answered."""


@dataclass(frozen=True, slots=True)
class UsedUnits:
    """One usedUnitContainer: bytes used, keyed by its localSequenceNumber."""

    sequence: int
    amount: int
    at: datetime | None  # triggerTimestamp; None: the request's invocationTimeStamp


@dataclass(frozen=True, slots=True)
class UnitRequest:
    """One multipleUnitUsage entry: a rating group, what it asks for, what it used."""

    rating_group: int
    wants_quota: bool  # a requestedUnit was present
    requested: int | None  # bytes asked for; None: as much as the operator grants
    used: tuple[UsedUnits, ...] = ()


@dataclass(frozen=True, slots=True)
class ChargingRequest:
    at: datetime  # invocationTimeStamp
    sequence: int  # invocationSequenceNumber
    units: tuple[UnitRequest, ...] = ()
    subscriber: str | None = None  # the line: an IMSI, MSISDN or line id (create only)
    create_key: str | None = None  # what makes a create the same create (create_key)
    retransmission: bool = False  # retransmissionIndicator
    notify_uri: str | None = None  # notifyUri of a create: where to ask for re-authorization
    # digest(), computed once: a batch asks for it up to four times per request.
    _digest: str | None = field(default=None, init=False, repr=False, compare=False)

    def digest(self) -> str:
        """What the request says, as a SHA-256: its instant, sequence number and units,
        each container's number, volume and instant. A retransmission has the digest
        of the request it repeats; an SMF's next report, whatever it numbers, another."""
        if self._digest is None:
            body = [self.at.isoformat(), self.sequence, [
                [u.rating_group, u.wants_quota, u.requested,
                 [[c.sequence, c.amount, c.at.isoformat() if c.at else None] for c in u.used]]
                for u in self.units]]
            text = json.dumps(body, separators=(",", ":"))
            object.__setattr__(self, "_digest", hashlib.sha256(text.encode()).hexdigest())
        return self._digest

    def usage_ids(self, ref: str, per_report: bool, unnumbered_only: bool = False
                  ) -> list[list[str]]:
        """The usage event id of each used-unit container, per unit: numbered by the
        session (`nchf:<ref>:<rating group>:<localSequenceNumber>`), or, `per_report`,
        by this report and the container's place in it
        (`nchf:<ref>:<digest>:<rating group>:<place>`); with `unnumbered_only`, only
        the containers numbered 0 by the report: docs/nchf.md, "Sequence numbers"."""
        report = self.digest()[:REPORT_DIGITS] if per_report else ""
        return [[f"nchf:{ref}:{report}:{u.rating_group}:{k}"
                 if per_report and not (unnumbered_only and c.sequence > 0)
                 else f"nchf:{ref}:{u.rating_group}:{c.sequence}"
                 for k, c in enumerate(u.used)]
                for u in self.units]


REPORT_DIGITS = 20  # of a report's digest in its usage ids: 80 bits, no collision to fear
NF_MEMBERS = ("nodeFunctionality", "nFName", "nFFqdn", "nFIPv4Address", "nFIPv6Address")


def create_key(nf: dict[str, object], subscriber: str | None, session: dict[str, object],
               sequence: int) -> str | None:
    """What makes two creates one: the same NF (its nodeFunctionality, nFName, nFFqdn
    and addresses as sent), the same subscriber, the same PDU session (chargingId,
    sMFchargingId, pduSessionID) and the same invocationSequenceNumber. A create that
    names no PDU session at all has no key: nothing tells its copy from a second
    session. The key is a SHA-256 of those members, so its length is fixed whatever
    they hold (docs/nchf.md, "What is read from a ChargingDataRequest")."""
    ids = {name: session.get(name) for name in ("chargingId", "sMFchargingId", "pduSessionID")}
    if subscriber is None or all(value is None for value in ids.values()):
        return None
    parts = {"nf": {name: nf.get(name) for name in sorted(NF_MEMBERS)},
             "subscriber": subscriber, **ids, "sequence": sequence}
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChargingAnswer:
    ref: str
    line: str
    at: datetime
    sequence: int
    grants: tuple[tuple[int, Grant], ...]
    replayed: bool = False  # a retransmission answered from the stored answer


@dataclass(frozen=True, slots=True)
class ChargingPolicy:
    quota: QuotaPolicy
    hold_margin: timedelta
    rating_groups: dict[int, str]  # 3GPP rating group -> carryover rating group
    per_report: bool = False  # containers are numbered afresh in every report

    @classmethod
    def from_settings(cls, settings) -> ChargingPolicy:
        return cls(QuotaPolicy(settings.nchf_max_grant, settings.nchf_threshold_percent,
                               timedelta(seconds=settings.nchf_validity_seconds)),
                   timedelta(seconds=settings.nchf_hold_margin_seconds),
                   dict(settings.nchf_rating_groups),
                   settings.nchf_local_sequence == "report")

    def rating_group(self, number: int) -> str:
        return self.rating_groups.get(number, str(number))


@dataclass(frozen=True, slots=True)
class ChargingOp:
    """One request to answer: `create` (the request names its subscriber), or `update`
    or `release` of the session `ref`."""

    kind: str  # create | update | release
    request: ChargingRequest
    ref: str | None = None
