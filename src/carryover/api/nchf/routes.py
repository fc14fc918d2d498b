"""Nchf_ConvergedCharging v3 (3GPP TS 32.291): real-time quota for a 5G SMF.

Three operations under `/nchf-convergedcharging/v3` (docs/nchf.md):
`POST /chargingdata` opens a charging session (201, `Location` of the new
chargingDataRef), `POST /chargingdata/{ref}/update` reports usage and asks for
more (200), `POST /chargingdata/{ref}/release` reports the last usage and ends
the session (204). The SMF authenticates with an operator API key.

Only the parts of ChargingDataRequest that decide a grant are modelled: the
subscriber (`subscriberIdentifier` imsi-..., msisdn-..., or the GPSI in
pDUSessionChargingInformation.userInformation.servedGPSI), the invocation
instant and sequence number, and `multipleUnitUsage` (each entry a rating
group, its requestedUnit and usedUnitContainers, volumes in bytes). Every
other member the spec allows is accepted and ignored. The answer is a
ChargingDataResponse whose `multipleUnitInformation` carries, per requested
rating group, the resultCode, grantedUnit.totalVolume, validityTime,
volumeQuotaThreshold and a finalUnitIndication on the line's last data. The
QoS decision (throttled, deprioritized) is reported as the authorized session
AMBR when the request carried pduSessionInformation, and always in each
entry's `qosDecision` (a carryover extension member, ignored by cores that do
not know it). Bad requests get 400 and unknown subscribers or references 404,
as ProblemDetails (TS 29.571) with a `cause` and `invalidParams`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from carryover.api.deps import Operator
from carryover.api.printable import printable
from carryover.api.problems import PROBLEM_JSON, nchf_problem, responses
from carryover.domain.bounds import BoundError, check_event
from carryover.domain.quota import Grant
from carryover.services.charging.model import (
    ChargingAnswer,
    ChargingOp,
    ChargingRequest,
    SessionNotFound,
    UnitRequest,
    UnknownSubscriber,
    UsedUnits,
    create_key,
)
from carryover.services.errors import ServiceError
from carryover.services.ledger import time_window
from carryover.services.notify import targets

PREFIX = "/nchf-convergedcharging/v3"
Uint32 = Annotated[int, Field(ge=0, le=2**32 - 1)]
Uint64 = Annotated[int, Field(ge=0, le=2**64 - 1)]


class _Open(BaseModel):
    """3GPP objects may carry members this server does not use: keep them, ignore them."""

    model_config = ConfigDict(extra="allow")

    _printable = field_validator("*")(printable)


class NFIdentification(_Open):
    nodeFunctionality: str = Field(min_length=1, max_length=100)


class RequestedUnit(_Open):
    totalVolume: Uint64 | None = None
    uplinkVolume: Uint64 | None = None
    downlinkVolume: Uint64 | None = None
    time: Uint32 | None = None


class UsedUnitContainer(_Open):
    localSequenceNumber: Annotated[int, Field(ge=0, le=2**63 - 1)]
    totalVolume: Uint64 | None = None
    uplinkVolume: Uint64 | None = None
    downlinkVolume: Uint64 | None = None
    triggerTimestamp: AwareDatetime | None = None


class MultipleUnitUsage(_Open):
    ratingGroup: Uint32
    requestedUnit: RequestedUnit | None = None
    usedUnitContainer: list[UsedUnitContainer] = Field(default_factory=list, max_length=1000)


class ChargingDataRequest(_Open):
    """The members of TS 32.291 ChargingDataRequest that carryover reads."""

    subscriberIdentifier: str | None = Field(default=None, max_length=100)
    nfConsumerIdentification: NFIdentification
    invocationTimeStamp: AwareDatetime
    invocationSequenceNumber: Uint32
    retransmissionIndicator: bool | None = None
    notifyUri: str | None = Field(default=None, max_length=2000)
    multipleUnitUsage: list[MultipleUnitUsage] = Field(default_factory=list, max_length=100)
    pDUSessionChargingInformation: dict[str, Any] | None = None


class GrantedUnit(BaseModel):
    totalVolume: int


class RedirectServer(BaseModel):
    redirectAddressType: str
    redirectServerAddress: str


class FinalUnitIndication(BaseModel):
    finalUnitAction: str
    redirectServer: RedirectServer | None = None


class QosDecisionOut(BaseModel):
    state: str
    maxDownlinkKbps: int | None = None


class MultipleUnitInformation(BaseModel):
    ratingGroup: int
    resultCode: str
    grantedUnit: GrantedUnit | None = None
    validityTime: int
    volumeQuotaThreshold: int | None = None
    finalUnitIndication: FinalUnitIndication | None = None
    qosDecision: QosDecisionOut


class ChargingDataResponse(BaseModel):
    invocationTimeStamp: str
    invocationSequenceNumber: int
    multipleUnitInformation: list[MultipleUnitInformation] | None = None
    pDUSessionChargingInformation: dict[str, Any] | None = None


class ProblemDetails(BaseModel):
    """TS 29.571 ProblemDetails."""

    type: str | None = None
    title: str
    status: int
    detail: str
    cause: str
    invalidParams: list[dict[str, str]] | None = None


NCHF_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "model": ProblemDetails,
           "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}}
    for code, text in ((400, "Bad request"), (404, "Unknown subscriber or chargingDataRef"))}
router = APIRouter(prefix=PREFIX, tags=["nchf"],
                   responses={**NCHF_ERRORS, **responses(401, 403, 429)})


def charging_request(body: ChargingDataRequest, subscriber: bool = False) -> ChargingRequest:
    groups = [u.ratingGroup for u in body.multipleUnitUsage]
    if len(groups) != len(set(groups)):
        raise BadRequest("/multipleUnitUsage", "a rating group appears more than once")
    units = tuple(UnitRequest(
        u.ratingGroup, u.requestedUnit is not None,
        _requested(u.requestedUnit, f"/multipleUnitUsage/{n}/requestedUnit"),
        tuple(UsedUnits(c.localSequenceNumber,
                        _volume(c, f"/multipleUnitUsage/{n}/usedUnitContainer/{k}"),
                        c.triggerTimestamp)
              for k, c in enumerate(u.usedUnitContainer)))
        for n, u in enumerate(body.multipleUnitUsage))
    _in_window(body.invocationTimeStamp, "/invocationTimeStamp")
    for n, u in enumerate(body.multipleUnitUsage):
        for k, c in enumerate(u.usedUnitContainer):
            if c.triggerTimestamp is not None:
                _in_window(c.triggerTimestamp,
                           f"/multipleUnitUsage/{n}/usedUnitContainer/{k}/triggerTimestamp")
    again = bool(body.retransmissionIndicator)
    if not subscriber:
        return ChargingRequest(body.invocationTimeStamp, body.invocationSequenceNumber, units,
                               retransmission=again)
    who = _subscriber(body)
    if body.notifyUri is not None:
        try:  # well formed now; where it points is checked at every delivery
            targets.parse(body.notifyUri)
        except targets.RefusedTarget as exc:
            raise BadRequest("/notifyUri", str(exc).removeprefix("URL: ")) from None
    return ChargingRequest(body.invocationTimeStamp, body.invocationSequenceNumber, units, who,
                           _create_key(body, who), again, body.notifyUri)


def _create_key(body: ChargingDataRequest, subscriber: str | None) -> str | None:
    info = body.pDUSessionChargingInformation or {}
    session = info.get("pduSessionInformation")
    members = {"chargingId": info.get("chargingId"),
               "sMFchargingId": info.get("sMFchargingId"),
               "pduSessionID": session.get("pduSessionID") if isinstance(session, dict)
               else None}
    return create_key(body.nfConsumerIdentification.model_dump(), subscriber, members,
                      body.invocationSequenceNumber)


def _requested(unit: RequestedUnit | None, where: str) -> int | None:
    if unit is None:
        return None
    if unit.totalVolume is not None:
        return _bounded(unit.totalVolume, f"{where}/totalVolume")
    if unit.uplinkVolume is None and unit.downlinkVolume is None:
        return None  # time or service units only: the operator's default grant of data
    return _bounded((unit.uplinkVolume or 0) + (unit.downlinkVolume or 0), where)


def _volume(container: UsedUnitContainer, where: str) -> int:
    if container.totalVolume is not None:
        return _bounded(container.totalVolume, f"{where}/totalVolume")
    return _bounded((container.uplinkVolume or 0) + (container.downlinkVolume or 0), where)


def _in_window(at: datetime, where: str) -> None:
    """Usage is booked at these instants: 1970 up to now plus the clock skew
    (services.ledger.time_window), or the book would materialize cycles up to any year."""
    try:
        time_window.check_write("instant", at)
    except time_window.OutOfWindow as exc:
        raise BadRequest(where, str(exc).removeprefix("instant: ")) from None


def _bounded(volume: int, where: str) -> int:
    """Uint64 in the spec; carryover takes at most MAX_EVENT (2^50) in one report or
    request, the bound of one usage event (docs/semantics.md, Bounds)."""
    try:
        return check_event("volume", volume)
    except BoundError as exc:
        raise BadRequest(where, exc.reason) from None


def _subscriber(body: ChargingDataRequest) -> str | None:
    """The SUPI, else the GPSI of the PDU session, as sent: `imsi-...` and `msisdn-...`
    keep their type prefix, so the line is looked up by IMSI or by MSISDN only, never
    by a line id that happens to be the same digits (docs/security.md)."""
    candidates = [body.subscriberIdentifier]
    info = (body.pDUSessionChargingInformation or {}).get("userInformation") or {}
    if isinstance(info, dict):
        candidates.append(info.get("servedGPSI"))
    for value in candidates:
        if isinstance(value, str) and value:
            return value
    return None


class BadRequest(Exception):
    """A request the schema allows but carryover cannot answer (400)."""

    def __init__(self, param: str, reason: str) -> None:
        super().__init__(reason)
        self.param, self.reason = param, reason


def _bitrate(kbps: int) -> str:
    return f"{kbps} Kbps"


def _unit_information(rating_group: int, grant: Grant) -> dict:
    item: dict[str, Any] = {"ratingGroup": rating_group, "resultCode": grant.result,
                            "validityTime": grant.validity_seconds}
    if grant.amount:
        item["grantedUnit"] = {"totalVolume": grant.amount}
    if grant.threshold:
        item["volumeQuotaThreshold"] = grant.threshold
    if grant.final_action:
        final: dict[str, Any] = {"finalUnitAction": grant.final_action}
        if grant.redirect_url:
            final["redirectServer"] = {"redirectAddressType": "URL",
                                       "redirectServerAddress": grant.redirect_url}
        item["finalUnitIndication"] = final
    item["qosDecision"] = {"state": grant.qos.state}
    if grant.qos.max_downlink_kbps is not None:
        item["qosDecision"]["maxDownlinkKbps"] = grant.qos.max_downlink_kbps
    return item


def response_body(answer: ChargingAnswer, body: ChargingDataRequest) -> dict:
    out: dict[str, Any] = {"invocationTimeStamp": answer.at.isoformat(),
                           "invocationSequenceNumber": answer.sequence}
    if answer.grants:
        out["multipleUnitInformation"] = [_unit_information(rg, g) for rg, g in answer.grants]
    speeds = [g.qos.max_downlink_kbps for _, g in answer.grants
              if g.qos.state == "throttled" and g.qos.max_downlink_kbps]
    session = ((body.pDUSessionChargingInformation or {}).get("pduSessionInformation")
               if speeds else None)
    if isinstance(session, dict) and "pduSessionID" in session and "dnnId" in session:
        # The standard place for a speed limit: the session AMBR the CHF authorizes.
        rate = _bitrate(min(speeds))
        out["pDUSessionChargingInformation"] = {"pduSessionInformation": {
            "pduSessionID": session["pduSessionID"], "dnnId": session["dnnId"],
            "authorizedSessionAMBR": {"uplink": rate, "downlink": rate}}}
    return out


async def answer(app, op: Callable[[], ChargingOp],
                 respond: Callable[[Any], Response]) -> Response:
    """Hand the request to the queue, wait for its answer and respond, or map its
    refusal to a ProblemDetails (shared by the routes and api.nchf_fast)."""
    try:
        future = app.state.carry.charging().submit(op())
        return respond(await asyncio.wrap_future(future))
    except BadRequest as exc:
        return nchf_problem(400, "INVALID_MSG_FORMAT", exc.reason,
                            [{"param": exc.param, "reason": exc.reason}])
    except UnknownSubscriber as exc:
        return nchf_problem(404, "USER_UNKNOWN", str(exc))
    except SessionNotFound as exc:
        return nchf_problem(404, "CONTEXT_NOT_FOUND", str(exc))
    except ServiceError as exc:
        return nchf_problem(400, "CHARGING_FAILED", str(exc))


def created(answer: ChargingAnswer, body: ChargingDataRequest, url: str) -> Response:
    """201 with the new session's address (`url`: the create request's own)."""
    return JSONResponse(response_body(answer, body), status_code=201,
                        headers={"Location": f"{url.split('?', 1)[0].rstrip('/')}/{answer.ref}"})


def updated(answer: ChargingAnswer, body: ChargingDataRequest) -> Response:
    return JSONResponse(response_body(answer, body))


def released(_: None) -> Response:
    return Response(status_code=204)


# The handlers are coroutines: they wait for the queue's answer without a thread of
# their own (the queue's thread does the database work for all of them).
@router.post("/chargingdata", status_code=201, response_model=ChargingDataResponse,
             summary="Open a charging session and grant quota")
async def create(body: ChargingDataRequest, request: Request, who: Operator):
    return await answer(request.app, lambda: ChargingOp("create", charging_request(body, True)),
                        lambda result: created(result, body, str(request.url)))


@router.post("/chargingdata/{ref}/update", response_model=ChargingDataResponse,
             summary="Report usage and ask for more quota")
async def update(ref: str, body: ChargingDataRequest, request: Request, who: Operator):
    return await answer(request.app, lambda: ChargingOp("update", charging_request(body), ref),
                        lambda result: updated(result, body))


@router.post("/chargingdata/{ref}/release", status_code=204, response_class=Response,
             summary="Report the last usage and end the session")
async def release(ref: str, body: ChargingDataRequest, request: Request, who: Operator):
    return await answer(request.app, lambda: ChargingOp("release", charging_request(body), ref),
                        released)
