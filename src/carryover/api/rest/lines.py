"""Lines: created by operators; listed and read within the caller's scope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from carryover.api.deps import Caller, EngineDep, Operator, actor
from carryover.api.problems import responses
from carryover.api.rest import pagination
from carryover.api.rest.idempotent import IdempotencyKey, respond
from carryover.api.rest.schemas import LineIn, LineOut, LinePage
from carryover.services.ledger import directory, provisioning
from carryover.store.uow import UnitOfWork

router = APIRouter(prefix="/v1/lines", tags=["lines"], responses=responses(401, 422, 429))


@router.post("", status_code=201, response_model=LineOut, summary="Create a line",
             responses=responses(403, 404, 409))
def create_line(body: LineIn, request: Request, eng: EngineDep, who: Operator,
                idempotency_key: IdempotencyKey = None):
    def action() -> dict:
        line_id = provisioning.create_line(UnitOfWork(eng), body.account, body.msisdn,
                                           body.start or datetime.now(UTC), body.plan,
                                           body.imsi, body.id, body.member, actor(who))
        return directory.line(UnitOfWork(eng), line_id)
    return respond(request, eng, who, idempotency_key, body, action)


@router.get("", response_model=LinePage, summary="List lines", responses=responses(404))
def list_lines(eng: EngineDep, who: Caller, limit: pagination.Limit = 100,
               cursor: pagination.Cursor = None,
               account: Annotated[str | None, Query(max_length=200,
                                                    description="Only this account's.")] = None,
               ) -> dict:
    items, last = directory.lines_page(UnitOfWork(eng), pagination.decode(cursor), limit,
                                       who.scope, account)
    return {"items": items, "next_cursor": pagination.encode(last)}


@router.get("/{line}", response_model=LineOut, summary="Show a line (id, MSISDN or IMSI)",
            responses=responses(404))
def get_line(line: str, eng: EngineDep, who: Caller) -> dict:
    return directory.line(UnitOfWork(eng), line, who.scope)
