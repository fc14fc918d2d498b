"""Webhook endpoints over HTTP: add, list, remove; dead letters and their replay.

Operator keys only (403 for a subscriber key). Adding an endpoint returns its
signing secret in that response only; under an `Idempotency-Key` a replay
returns the endpoint with `"secret": null` (the stored response is redacted,
as eSIM confirmation codes are). Removing an endpoint disables it
(services.notify.webhooks.remove_endpoint): it gets no new deliveries and its pending
ones are not sent. Lists are cursor-paginated by id and never show secrets.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Path, Request

from carryover.api.deps import CarryDep, EngineDep, Operator
from carryover.api.problems import ApiProblem, responses
from carryover.api.rest import pagination
from carryover.api.rest.idempotent import IdempotencyKey, respond
from carryover.api.rest.schemas import (
    DeadLetterPage,
    ReplayOut,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookPage,
)
from carryover.services.notify import webhooks
from carryover.store.uow import UnitOfWork

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"],
                   responses=responses(401, 403, 422, 429))


def _no_secret(body: dict) -> dict:
    return {**body, "secret": None}


@router.post("", status_code=201, response_model=WebhookCreated,
             summary="Add a webhook endpoint; its secret is in this response only",
             responses=responses(409))
def add(body: WebhookIn, request: Request, eng: EngineDep, carry: CarryDep, who: Operator,
        idempotency_key: IdempotencyKey = None):
    def action() -> dict:
        info, secret = webhooks.add_endpoint(
            UnitOfWork(eng), body.url, body.kinds, datetime.now(UTC),
            allow_private=carry.settings.webhook_allow_private_targets)
        return {**info, "disabled_at": None, "pending": 0, "delivered": 0, "dead": 0,
                "secret": secret}
    return respond(request, eng, who, idempotency_key, body, action, redact=_no_secret)


@router.get("", response_model=WebhookPage, summary="List webhook endpoints (no secrets)")
def list_endpoints(eng: EngineDep, who: Operator, limit: pagination.Limit = 100,
                   cursor: pagination.Cursor = None) -> dict:
    after = pagination.decode(cursor)
    # Endpoint ids are at most 32 printable ASCII characters; a longer or binary
    # cursor (a NUL byte fails on PostgreSQL) was not returned by this API.
    if after is not None and not (len(after) <= 32 and after.isascii()
                                  and after.isprintable()):
        raise ApiProblem(422, "cursor is not one this API returned")
    items, last = webhooks.endpoints_page(UnitOfWork(eng), after, limit)
    return {"items": items, "next_cursor": pagination.encode(last)}


@router.get("/dead", response_model=DeadLetterPage,
            summary="Dead letters: deliveries that used up their attempts")
def dead(eng: EngineDep, who: Operator, limit: pagination.Limit = 100,
         cursor: pagination.Cursor = None) -> dict:
    after = pagination.decode(cursor)
    # Delivery ids are positive 32-bit integers; anything else (a 300-digit number,
    # Unicode digits) was not returned by this API, and must not reach the database.
    if after is not None and not (after.isascii() and after.isdigit() and len(after) <= 10
                                  and int(after) < 2 ** 31):
        raise ApiProblem(422, "cursor is not one this API returned")
    rows = webhooks.dead_letters(UnitOfWork(eng), int(after) if after else None, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": pagination.encode(str(rows[-1]["id"]) if more else None)}


@router.delete("/{endpoint_id}", response_model=WebhookOut, responses=responses(404),
               summary="Remove (disable) a webhook endpoint")
def remove(eng: EngineDep, who: Operator,
           endpoint_id: str = Path(max_length=32)) -> dict:
    return webhooks.remove_endpoint(UnitOfWork(eng), endpoint_id, datetime.now(UTC))


@router.post("/deliveries/{delivery_id}/replay", response_model=ReplayOut,
             responses=responses(404),
             summary="Queue a dead (or delivered) delivery again with fresh attempts")
def replay(eng: EngineDep, who: Operator,
           delivery_id: int = Path(ge=1, lt=2 ** 31)) -> dict:
    return webhooks.replay(UnitOfWork(eng), delivery_id, datetime.now(UTC))
