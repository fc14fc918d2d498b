"""ES2+ callbacks from the SM-DP+: `POST /gsma/rsp2/es2plus/handleDownloadProgressInfo`.

A notification that is applied, recorded or already known is answered 204 No
Content. One that cannot be taken is answered 200 with an ES2+ header whose
status is Failed: a body that is not a notification gets the element's subject
with reason 2.2 (missing) or 2.1 (invalid), an ICCID the operator does not hold
gets 8.2.1 / 3.9 (unknown). Thin: parse, call the service, render.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from carryover.domain.esim.notifications import parse_download_progress
from carryover.domain.esim.status import (
    ADMIN_PROTOCOL,
    ADMIN_PROTOCOL_HEADER,
    StatusCode,
    failed,
)
from carryover.runtime import Carryover
from carryover.services import esim_notifications

PROTOCOL_HEADER = {ADMIN_PROTOCOL_HEADER: ADMIN_PROTOCOL}
FAILED_EXAMPLE = {"header": {"functionExecutionStatus": {
    "status": "Failed", "statusCodeData": {"subjectCode": "8.2.1", "reasonCode": "3.9",
                                           "message": "unknown ICCID 8988..."}}}}

router = APIRouter(prefix="/gsma/rsp2/es2plus", tags=["ES2+"])


def carryover_app(request: Request) -> Carryover:
    return request.app.state.carry


CarryDep = Annotated[Carryover, Depends(carryover_app)]


def _failed(code: StatusCode) -> JSONResponse:
    return JSONResponse(failed(code), headers=PROTOCOL_HEADER)


@router.post(
    "/handleDownloadProgressInfo", status_code=204,
    summary="The SM-DP+ reports a download's progress (SGP.22 ES2+.HandleDownloadProgressInfo)",
    responses={204: {"description": "Received (applied, or already known)"},
               200: {"description": "ES2+ Failed header", "content": {
                   "application/json": {"example": FAILED_EXAMPLE}}}},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object", "required": ["iccid", "profileType", "timestamp",
                                                  "notificationPointId",
                                                  "notificationPointStatus"]}}}}})
async def handle_download_progress_info(request: Request, carry: CarryDep) -> Response:
    received_at = datetime.now(UTC)
    try:
        body: Any = json.loads(await request.body())
    except ValueError:
        return _failed(StatusCode("1.1", "2.1", "the body is not JSON"))
    progress = parse_download_progress(body)
    if isinstance(progress, StatusCode):
        return _failed(progress)
    try:
        await run_in_threadpool(
            lambda: esim_notifications.receive(carry.open(), progress, received_at))
    except esim_notifications.UnknownProfile as exc:
        return _failed(StatusCode("8.2.1", "3.9", str(exc), progress.iccid))
    return Response(status_code=204, headers=PROTOCOL_HEADER)
