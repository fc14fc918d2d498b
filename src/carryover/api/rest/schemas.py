"""Request and response bodies of the REST API (pydantic), shared by the routers.

Amounts are integers (bytes, seconds or counts, by `unit`) and come back with
a `*_human` string beside them (carryover.domain.units.format_amount). An
instant without an offset is read in the account's timezone, as in the CLI;
every instant in a response carries its offset.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from carryover.api.printable import printable
from carryover.domain.bounds import MAX_BUCKET, MAX_EVENT
from carryover.domain.notices import MAX_THRESHOLDS
from carryover.domain.units import Unit, format_amount

UnitName = Literal["data", "voice", "sms"]
Amount = Field(ge=0, le=MAX_EVENT, description="Bytes, seconds or a count, by unit; at most "
               "2^50, the bound of one event (docs/semantics.md, Bounds).")
At = Field(default=None, description="ISO 8601; without an offset: the account's timezone. "
                                     "Default: now.")
# On a change to a line: only an operator key may say when (back-dating, recorded as its
# action); a subscriber key's change happens at the server's now (docs/security.md).
OperatorAt = Field(default=None, description=(
    "ISO 8601; without an offset: the account's timezone. Default: now. Operator keys "
    "only: a subscriber key's change takes effect at the server's now, and a request "
    "from one that gives `at` is refused with 403."))


def human(amount: int | None, unit: str = "data") -> str:
    return format_amount(amount, Unit(unit))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    _printable = field_validator("*")(printable)


class AccountIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    cycle_day: int = Field(ge=1, le=31)
    timezone: str = Field(min_length=1, max_length=64, examples=["America/New_York"])
    pool_plan: str | None = Field(default=None, max_length=120,
                                  description="Make a family account sharing this plan's pool.")
    at: datetime | None = At


class AccountOut(BaseModel):
    id: int
    name: str
    cycle_day: int
    timezone: str
    pool_plan: str | None
    created_at: str
    lines: list[str]


class LineIn(Strict):
    account: str = Field(min_length=1, max_length=200)
    msisdn: str = Field(min_length=1, max_length=20, examples=["+14155550100"])
    plan: str | None = Field(default=None, max_length=120)
    imsi: str | None = Field(default=None, max_length=15)
    id: str | None = Field(default=None, min_length=1, max_length=64,
                           pattern=r"^[A-Za-z0-9_.:-]+$")
    member: bool | None = None
    start: datetime | None = At


class LineOut(BaseModel):
    id: str
    account: str
    msisdn: str | None
    imsi: str | None
    plan: str | None
    pending_plan: str | None
    member: bool
    opened_at: str


class Page(BaseModel):
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; "
                                                "null on the last page.")


class LinePage(Page):
    items: list[LineOut]


class PlanVersionOut(BaseModel):
    """One immutable version of a plan (docs/plan-files.md, "Plan versions")."""

    version: int = Field(description="1, 2, ... in load order.")
    source: str = Field(description="preset or file.")
    recorded_at: str = Field(description="When this version was loaded.")
    effective: dict[str, Any] = Field(description=(
        "From when it is in force: {\"always\": true} (version 1), {\"at\": instant}, or "
        "{\"next_boundary_after\": instant} (each account's first cycle boundary after it)."))
    definition: dict[str, Any] = Field(description="The plan-file mapping of this version.")


class PlanOut(BaseModel):
    id: str
    name: str
    kind: str | None
    source: str
    loaded_at: str
    definition: dict[str, Any] = Field(description="The latest version's plan-file mapping.")
    version: int = Field(description="The latest version's number.")
    versions: list[PlanVersionOut] = Field(description="Every version, oldest first.")


class PlanPage(Page):
    items: list[PlanOut]


class UsageIn(Strict):
    line: str = Field(min_length=1, max_length=64, description="Line id, MSISDN or IMSI.")
    event_id: str = Field(min_length=1, max_length=200, description="Counted once per id.")
    amount: int = Amount
    unit: UnitName = "data"
    at: datetime
    received_at: datetime | None = Field(default=None, description="Default: now.")
    rating_group: str | None = Field(default=None, max_length=64)


class Debit(BaseModel):
    bucket: str | None
    amount: int
    amount_human: str


class UsageOut(BaseModel):
    line: str
    event_id: str
    amount: int
    amount_human: str
    unit: UnitName
    late: bool
    corrected: bool
    debits: list[Debit]
    overage: int
    overage_human: str


class UsageBatchIn(Strict):
    rows: list[UsageIn] = Field(min_length=1, max_length=10_000)


class RowReject(BaseModel):
    row: int = Field(description="Index of the row in `rows`, from 0.")
    reason: str


class UsageBatchOut(BaseModel):
    rows: int
    accepted: int
    duplicates: int
    late: int
    rejected: int
    rejects: list[RowReject]


class TopUpIn(Strict):
    amount: int = Field(gt=0, le=MAX_EVENT, description="At most 2^50 (docs/semantics.md).")
    valid_days: int = Field(ge=1, le=3660)
    unit: UnitName = "data"
    at: datetime | None = At


class PlanChangeIn(Strict):
    plan: str = Field(min_length=1, max_length=120)
    effective: Literal["now", "next_cycle"] = "now"
    at: datetime | None = OperatorAt


class LimitIn(Strict):
    amount: int | None = Field(ge=0, le=MAX_BUCKET,
                               description="Per cycle, at most 2^60; null lifts the cap.")
    at: datetime | None = OperatorAt


class GiftIn(Strict):
    to_line: str = Field(min_length=1, max_length=64)
    amount: int = Field(gt=0, le=MAX_EVENT, description="At most 2^50 (docs/semantics.md).")
    at: datetime | None = OperatorAt


class ChangeOut(BaseModel):
    """What a top-up, plan change, limit or gift did."""

    line: str
    ref: str
    kind: str
    amount: int | None = None
    amount_human: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


Percent = Annotated[StrictInt, Field(ge=1, le=100)]


class AlertThresholdsIn(Strict):
    thresholds: list[Percent] | None = Field(
        min_length=1, max_length=MAX_THRESHOLDS,
        description="Whole percentages of the cycle's data allowance, each firing the "
                    "notice usage_<pct> once per cycle; null: back to the defaults "
                    "(50, 80, 100).")


class AlertThresholdsOut(BaseModel):
    line: str
    thresholds: list[int] = Field(description="Ascending, each once.")
    default: bool = Field(description="True: the line picked none and has the defaults.")


class EsimOrderIn(Strict):
    eid: str | None = Field(default=None, max_length=40,
                            description="Bind the order to this device (32-digit EID).")
    profile_type: str | None = Field(default=None, max_length=64,
                                     description="Needed when several types are in stock.")
    confirmation_code: bool = Field(default=False, description=(
        "Protect the download with a confirmation code, returned once in this response."))


class EsimOrderOut(BaseModel):
    line: str
    iccid: str
    eid: str | None
    matching_id: str
    activation_code: str = Field(description="SM-DP+ address and matching id: `1$addr$id`.")
    qr: str = Field(description="What the QR code holds: the activation code after `LPA:`.")
    confirmation_code: str | None = Field(description=(
        "Only in the first response when asked for: stored as a hash only, so an "
        "Idempotency-Key replay has null here."))


class EsimOrderRecord(BaseModel):
    line: str
    eid: str | None
    created_at: str | None
    closed_at: str | None
    closed_reason: str | None


class EsimStatusOut(BaseModel):
    iccid: str
    imsi: str
    profile_type: str
    state: str
    eid: str | None
    line: str | None = Field(description="The line of the open order; null once closed.")
    matching_id: str | None
    activation_code: str | None
    confirmation_code_required: bool
    orders: list[EsimOrderRecord]
    history: list[dict[str, Any]]


class WebhookIn(Strict):
    url: str = Field(min_length=1, max_length=2000, examples=["https://hooks.example.com/co"])
    kinds: list[str] | None = Field(default=None, max_length=20, description=(
        "Only these notification kinds (docs/api.md, Webhooks); null: every kind."))


class WebhookOut(BaseModel):
    id: str
    url: str
    kinds: list[str] | None
    created_at: str
    disabled_at: str | None = Field(description="When it was removed; null while enabled.")
    pending: int
    delivered: int
    dead: int


class WebhookCreated(WebhookOut):
    secret: str | None = Field(description=(
        "Signs every delivery (HMAC-SHA256). Only in the first response: an "
        "Idempotency-Key replay has null here."))


class WebhookPage(Page):
    items: list[WebhookOut]


class DeadLetterOut(BaseModel):
    id: int = Field(description="The delivery's id, for replay.")
    endpoint: str
    url: str
    event: int = Field(description="The notification's outbox id.")
    kind: str
    line: str
    attempts: int
    last_error: str | None


class DeadLetterPage(Page):
    items: list[DeadLetterOut]


class ReplayOut(BaseModel):
    id: int
    status: str
    previous: str
