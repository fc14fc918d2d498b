"""Plans: the catalog (presets and loaded plan files), readable by every key."""

from __future__ import annotations

from fastapi import APIRouter

from carryover.api.deps import Caller, EngineDep
from carryover.api.problems import responses
from carryover.api.rest import pagination
from carryover.api.rest.schemas import PlanOut, PlanPage
from carryover.services.ledger import directory
from carryover.store.uow import UnitOfWork

router = APIRouter(prefix="/v1/plans", tags=["plans"], responses=responses(401, 422, 429))


@router.get("", response_model=PlanPage, summary="List plans")
def list_plans(eng: EngineDep, who: Caller, limit: pagination.Limit = 100,
               cursor: pagination.Cursor = None) -> dict:
    items, last = directory.plans_page(UnitOfWork(eng), pagination.decode(cursor), limit)
    return {"items": items, "next_cursor": pagination.encode(last)}


@router.get("/{plan_id}", response_model=PlanOut, summary="Show a plan",
            responses=responses(404))
def show_plan(plan_id: str, eng: EngineDep, who: Caller) -> dict:
    return directory.plan(UnitOfWork(eng), plan_id)
