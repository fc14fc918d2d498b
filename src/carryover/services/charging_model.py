"""The vocabulary of real-time charging: requests, answers, policy and refusals.

A ChargingRequest is what carryover reads of a TS 32.291 ChargingDataRequest
(api/nchf.py maps the JSON to it); a ChargingAnswer the grants it decided
(domain.quota) per rating group. services.charging answers them;
services.charging_batch answers many in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
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

    @classmethod
    def from_settings(cls, settings) -> ChargingPolicy:
        return cls(QuotaPolicy(settings.nchf_max_grant, settings.nchf_threshold_percent,
                               timedelta(seconds=settings.nchf_validity_seconds)),
                   timedelta(seconds=settings.nchf_hold_margin_seconds),
                   dict(settings.nchf_rating_groups))

    def rating_group(self, number: int) -> str:
        return self.rating_groups.get(number, str(number))


@dataclass(frozen=True, slots=True)
class ChargingOp:
    """One request to answer: `create` (the request names its subscriber), or `update`
    or `release` of the session `ref`."""

    kind: str  # create | update | release
    request: ChargingRequest
    ref: str | None = None
