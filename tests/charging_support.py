"""One Nchf request in a transaction of its own: what the charging tests compare batches to.

Production answers every request through the charging queue, in batches
(services.charging.group_commit); these answer one request alone, as a batch of one,
which the tests use to set up sessions and to check that a batch gives the same
answers as its requests one by one.
"""

from __future__ import annotations

from sqlalchemy import Engine

from carryover.services.charging.group_commit import charge
from carryover.services.charging.model import (
    ChargingAnswer,
    ChargingOp,
    ChargingPolicy,
    ChargingRequest,
)
from carryover.store.uow import UnitOfWork


def _one(engine: Engine, policy: ChargingPolicy, op: ChargingOp):
    (result,) = charge(UnitOfWork(engine), policy, [op])
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
