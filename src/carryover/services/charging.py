"""Real-time charging sessions for the 5G core (Nchf_ConvergedCharging): open, update, release.

Each call is one unit of work on the subscriber's account, in this order:
lock the account (so two sessions of one account are answered one after the
other and can never be granted the same bytes), load its book, rate the used
units the request reports as ordinary usage events at their own instants
(event id `nchf:<ref>:<rating group>:<localSequenceNumber>`, so a report sent
twice is counted once and late reports follow docs/semantics.md, "Late usage"),
bring the book to the request's instant (a boundary on the way rolls over as on
every other path),
then grant each requested rating group with domain.quota, holding every other
live grant of the account against the buckets. The new grants replace the
session's holds for those rating groups, the book and the holds are written, and
the answer is stored on the session so that a retransmission (same
invocationSequenceNumber) gets the same answer rather than a second grant.

The request's instants are the packet core's (invocationTimeStamp, and each
container's triggerTimestamp for its usage), as with CDR files.

Each function here answers one request in a transaction of its own;
services.charging_batch answers many in one (the API's group commit,
services.charging_queue), with the same result as answering them one by one.
"""

from __future__ import annotations

from sqlalchemy import Engine

from carryover.services.charging_batch import charge_on
from carryover.services.charging_model import (
    ChargingAnswer,
    ChargingOp,
    ChargingPolicy,
    ChargingRequest,
    SessionNotFound,
    StaleRequest,
    UnitRequest,
    UnknownSubscriber,
    UsedUnits,
)

__all__ = ["ChargingAnswer", "ChargingOp", "ChargingPolicy", "ChargingRequest",
           "SessionNotFound", "StaleRequest", "UnitRequest", "UnknownSubscriber", "UsedUnits",
           "open_session", "release_session", "update_session"]


def _one(engine: Engine, policy: ChargingPolicy, op: ChargingOp):
    (result,) = charge_on(engine, policy, [op])
    if isinstance(result, Exception):
        raise result
    return result


def open_session(engine: Engine, policy: ChargingPolicy,
                 request: ChargingRequest) -> ChargingAnswer:
    """Create a charging session for the request's subscriber and grant what it asks."""
    return _one(engine, policy, ChargingOp("create", request))


def update_session(engine: Engine, policy: ChargingPolicy, ref: str,
                   request: ChargingRequest) -> ChargingAnswer:
    """Rate what the session used and grant what it asks now."""
    return _one(engine, policy, ChargingOp("update", request, ref))


def release_session(engine: Engine, policy: ChargingPolicy, ref: str,
                    request: ChargingRequest) -> None:
    """Rate the final usage, give back every hold of the session and close it."""
    _one(engine, policy, ChargingOp("release", request, ref))
