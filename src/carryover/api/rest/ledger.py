"""A line's balance, statement and QoS, and the changes to it: top-ups, plan
change, family limit and gifts; the alert thresholds its usage notices fire at.

Reads and self-service changes (plan change, limit, gift) are open to a
subscriber key on its own account's lines; anything else answers 404 exactly
as an unknown line does. Top-ups are operator-only (403). A subscriber's change
takes effect at the server's now: `at` in its body is refused (403), and a plan
change only reaches plans offered for self-service (403 otherwise). Every change
is recorded with the key's id (docs/security.md). Alert thresholds are not a
ledger input: no `at`, nothing recorded but the line's choice. Amounts come with a `*_human`
string; instants carry their offset.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from carryover.api.deps import Caller, EngineDep, Operator, actor
from carryover.api.problems import responses
from carryover.api.rest.idempotent import IdempotencyKey, respond
from carryover.api.rest.schemas import (
    AlertThresholdsIn,
    AlertThresholdsOut,
    ChangeOut,
    GiftIn,
    LimitIn,
    PlanChangeIn,
    TopUpIn,
    human,
)
from carryover.domain.units import Unit
from carryover.services.ledger import directory
from carryover.services.ledger import operations as ledger_ops
from carryover.services.notify import alert_thresholds
from carryover.store.uow import UnitOfWork

router = APIRouter(prefix="/v1/lines/{line}", tags=["balances"],
                   responses=responses(401, 404, 422, 429))
AtQuery = Annotated[datetime | None, Query(
    description="ISO 8601; without an offset: the account's timezone. Default: now.")]
AsOfQuery = Annotated[datetime | None, Query(
    description="Only entries recorded by this instant: the statement as the subscriber was "
                "told it then (the cycle still holds the entries effective in it). ISO 8601; "
                "without an offset: the account's timezone. Default: everything recorded.")]


def _ref(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:16]}"


def _visible(eng, line: str, who) -> dict:
    """The line, if the caller may see it; else the 404 of an unknown line."""
    return directory.line(UnitOfWork(eng), line, who.scope)


def _balance_view(view: dict) -> dict:
    view["available_human"] = {u: human(v, u) for u, v in view["available"].items()}
    for b in view["buckets"]:
        b["remaining_human"] = human(b["remaining"], b["unit"])
    for name in ("used", "overage"):
        view["cycle"][f"{name}_human"] = {u: human(v, u) for u, v in view["cycle"][name].items()}
    return view


def _statement_view(data: dict) -> dict:
    for unit, figures in data["units"].items():
        figures["human"] = {k: human(v, unit) for k, v in figures.items()
                            if isinstance(v, int) and not isinstance(v, bool)}
    for e in data["entries"]:
        e["amount_human"] = human(e["amount"], e["unit"])
    return data


@router.get("/balance", summary="What the line can use, bucket by bucket")
def balance(line: str, eng: EngineDep, who: Caller, at: AtQuery = None) -> dict[str, Any]:
    _visible(eng, line, who)
    return _balance_view(ledger_ops.balance(UnitOfWork(eng), line, at or datetime.now(UTC)))


@router.get("/statement", summary="The statement of the cycle containing `at`")
def statement(line: str, eng: EngineDep, who: Caller, at: AtQuery = None,
              as_of: AsOfQuery = None) -> dict[str, Any]:
    _visible(eng, line, who)
    return _statement_view(
        ledger_ops.statement(UnitOfWork(eng), line, at or datetime.now(UTC), as_of).as_dict())


@router.get("/qos", summary="The QoS decision: normal, deprioritized, throttled or blocked")
def qos(line: str, eng: EngineDep, who: Caller, at: AtQuery = None,
        rating_group: Annotated[str | None, Query(max_length=64)] = None) -> dict[str, Any]:
    line_id = _visible(eng, line, who)["id"]
    decision = ledger_ops.qos_at(UnitOfWork(eng), line, at or datetime.now(UTC), rating_group)
    return {"line": line_id, **decision.as_dict()}


@router.post("/top-ups", status_code=201, response_model=ChangeOut, summary="Add a top-up",
             responses=responses(403))
def top_up(line: str, body: TopUpIn, request: Request, eng: EngineDep, who: Operator,
           idempotency_key: IdempotencyKey = None):
    def action() -> dict:
        ref = _ref("topup")
        done = ledger_ops.top_up(UnitOfWork(eng), line, body.amount, body.at, body.valid_days,
                                 ref, Unit(body.unit), actor(who))
        request.app.state.carry.metrics.top_ups.labels(body.unit).inc()
        return {"line": done.line, "ref": ref, "kind": "top_up", "amount": body.amount,
                "amount_human": human(body.amount, body.unit),
                "detail": {"valid_days": body.valid_days, "unit": body.unit}}
    return respond(request, eng, who, idempotency_key, body, action)


@router.post("/plan-change", status_code=201, response_model=ChangeOut,
             summary="Change the line's plan, now or at the next cycle",
             responses=responses(403, 409))
def change_plan(line: str, body: PlanChangeIn, request: Request, eng: EngineDep, who: Caller,
                idempotency_key: IdempotencyKey = None):
    def action() -> dict:
        _visible(eng, line, who)
        ref = _ref("plan")
        done = ledger_ops.change_plan(UnitOfWork(eng), line, body.plan, body.effective,
                                      body.at, ref, actor(who))
        return {"line": done.line, "ref": ref, "kind": "plan_change",
                "detail": {"plan": body.plan, "effective": body.effective}}
    return respond(request, eng, who, idempotency_key, body, action)


@router.post("/limit", status_code=201, response_model=ChangeOut,
             summary="Cap what a family member may take from the pool per cycle",
             responses=responses(403))
def set_limit(line: str, body: LimitIn, request: Request, eng: EngineDep, who: Caller,
              idempotency_key: IdempotencyKey = None):
    def action() -> dict:
        _visible(eng, line, who)
        ref = _ref("limit")
        done = ledger_ops.set_limit(UnitOfWork(eng), line, body.amount, body.at, ref, actor(who))
        return {"line": done.line, "ref": ref, "kind": "limit", "amount": body.amount,
                "amount_human": human(body.amount)}
    return respond(request, eng, who, idempotency_key, body, action)


@router.post("/gifts", status_code=201, response_model=ChangeOut,
             summary="Gift rollover or top-up bytes to another line of the same account",
             responses=responses(403))
def gift(line: str, body: GiftIn, request: Request, eng: EngineDep, who: Caller,
         idempotency_key: IdempotencyKey = None):
    def action() -> dict:
        giver = _visible(eng, line, who)["id"]
        _visible(eng, body.to_line, who)
        ref = _ref("gift")
        done = ledger_ops.gift(UnitOfWork(eng), line, body.to_line, body.amount, body.at, ref,
                               actor(who))
        return {"line": giver, "ref": ref, "kind": "gift", "amount": body.amount,
                "amount_human": human(body.amount), "detail": {"to_line": done.line}}
    return respond(request, eng, who, idempotency_key, body, action)


@router.get("/alert-thresholds", response_model=AlertThresholdsOut,
            summary="The percentages of the data allowance the line's usage notices fire at")
def get_alert_thresholds(line: str, eng: EngineDep, who: Caller):
    _visible(eng, line, who)
    return alert_thresholds.thresholds(UnitOfWork(eng), line)


@router.put("/alert-thresholds", response_model=AlertThresholdsOut,
            summary="Pick the percentages the line's usage notices fire at")
def put_alert_thresholds(line: str, body: AlertThresholdsIn, eng: EngineDep, who: Caller):
    _visible(eng, line, who)
    return alert_thresholds.set_thresholds(UnitOfWork(eng), line, body.thresholds)
