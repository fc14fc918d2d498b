"""`GET /v1/lines/{line}/advice`: the advice of docs/advice.md, scoped like the balance.

A subscriber key sees the advice of its own account's lines only; any other line
answers 404 exactly as an unknown line does. Thin: parse, call services.advice.advise,
render through the response models below (the OpenAPI schema of the object).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from carryover.api.deps import Caller, EngineDep
from carryover.api.problems import responses
from carryover.domain.advice import DEFAULT_CYCLES, MAX_CYCLES
from carryover.services.advice import advise as advice_service
from carryover.services.ledger import directory
from carryover.store.uow import UnitOfWork

# Instants are ISO 8601 strings with their offset, as the domain writes them (UTC).
Instant = Annotated[str, Field(json_schema_extra={"format": "date-time"})]

router = APIRouter(prefix="/v1/lines/{line}", tags=["advice"],
                   responses=responses(401, 404, 422, 429))


class Forecast(BaseModel):
    """Projected use to the cycle's end (an estimate), or `no_forecast` with its reason."""

    kind: Literal["forecast", "no_forecast"]
    text: str
    reason: str | None = None
    method: Literal["weekday_profile", "this_cycle_pace"] | None = None
    used: int | None = Field(None, description="Bytes used so far this cycle.")
    projected_use: int | None = Field(None, description="Bytes, to the end of the cycle.")
    low: int | None = None
    high: int | None = None
    high_speed_left: int | None = Field(None, description="null: nothing limits high-speed data.")
    runs_out_at: Instant | None = Field(None, description="null: lasts to the cycle's end.")
    cycle_end: Instant | None = None
    history_cycles: int | None = None


class Deposit(BaseModel):
    kind: Literal["rollover_deposit"]
    bucket: str
    remaining: int
    expires_at: Instant | None
    projected_unused_at_expiry: int | None = Field(description="null: no forecast.")
    text: str


class LostToCaps(BaseModel):
    kind: Literal["lost_to_caps"]
    amount: int | None = Field(description="Bytes the next boundary would not carry; null: no "
                                           "forecast.")
    boundary: Instant
    text: str


class Rollover(BaseModel):
    deposits: list[Deposit]
    lost_to_caps_next: LostToCaps


class PlanFit(BaseModel):
    """One plan with the line's last N complete cycles replayed on it."""

    kind: Literal["plan_fit"]
    plan: str
    current: bool
    cycles: int
    price_total: str | None = Field(description="Decimal string; null: the plan has no price.")
    currency: str | None
    overage: int = Field(description="Data overage, bytes.")
    overage_by_unit: dict[str, int] = Field(description="Overage per unit: data bytes, voice "
                                                        "seconds, SMS messages.")
    overage_charged: str | None
    seconds_throttled: int
    seconds_blocked: int
    seconds_deprioritized: int
    rollover_kept: int
    switch: Literal["now", "next_cycle"] | None = None
    forfeits_now: int | None = None
    text: str


class Member(BaseModel):
    kind: Literal["member"]
    line: str
    projected_shortfall: int
    projected_surplus: int
    text: str


class Suggestion(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    kind: Literal["gift", "member_limit"]
    from_line: str | None = Field(None, alias="from")
    to: str | None = None
    line: str | None = None
    amount: int
    text: str


class Family(BaseModel):
    members: list[Member]
    suggestions: list[Suggestion]
    shortfall_after: int


class Advice(BaseModel):
    line: str
    at: Instant
    cycles: int = Field(description="Complete cycles of history used.")
    forecast: Forecast
    rollover: Rollover
    plans: list[PlanFit]
    family: Family | None


@router.get("/advice", response_model=Advice, response_model_exclude_unset=True,
            summary="Forecast, rollover at risk, plan fit by exact replay, family gifts")
def advice(line: str, eng: EngineDep, who: Caller,
           at: Annotated[datetime | None, Query(
               description="ISO 8601; without an offset: the account's timezone. "
                           "Default: now.")] = None,
           cycles: Annotated[int, Query(ge=1, le=MAX_CYCLES, description=(
               "Complete cycles of history to learn from and replay plans over."))]
           = DEFAULT_CYCLES):
    directory.line(UnitOfWork(eng), line, who.scope)
    return advice_service.advise(UnitOfWork(eng), line, at or datetime.now(UTC), cycles)
