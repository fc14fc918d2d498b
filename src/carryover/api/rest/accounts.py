"""Accounts: created by operators; a subscriber key reads its own account only."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request

from carryover.api.deps import Caller, CarryDep, EngineDep, Operator, actor
from carryover.api.problems import responses
from carryover.api.rest.idempotent import IdempotencyKey, respond
from carryover.api.rest.schemas import AccountIn, AccountOut
from carryover.services.ledger import directory, provisioning
from carryover.store.uow import UnitOfWork

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], responses=responses(401, 422, 429))


@router.post("", status_code=201, response_model=AccountOut, summary="Create an account",
             responses=responses(403, 404, 409))
def create_account(body: AccountIn, request: Request, carry: CarryDep, eng: EngineDep,
                   who: Operator, idempotency_key: IdempotencyKey = None):
    def action() -> dict:
        provisioning.create_account(UnitOfWork(eng), body.name, body.cycle_day, body.timezone,
                                    body.at or datetime.now(UTC), body.pool_plan, carry.grace,
                                    actor(who))
        return directory.account(UnitOfWork(eng), body.name)
    return respond(request, eng, who, idempotency_key, body, action)


@router.get("/{name}", response_model=AccountOut, summary="Show an account",
            responses=responses(404))
def get_account(name: str, eng: EngineDep, who: Caller) -> dict:
    return directory.account(UnitOfWork(eng), name, who.scope)
