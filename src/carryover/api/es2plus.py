"""ES2+ callbacks from the SM-DP+: `POST /gsma/rsp2/es2plus/handleDownloadProgressInfo`.

Only a configured SM-DP+ may call: a request without its bearer token is
answered 401 before its body is read (api/es2plus_auth.py). The body is
bounded before it is decoded: over MAX_BODY_BYTES is 413, nested deeper than
MAX_DEPTH is 400 (so a hostile body never makes the decoder recurse).

A notification that is applied, recorded or already known is answered 204 No
Content. One that cannot be taken is answered 200 with an ES2+ header whose
status is Failed: a body that is not a notification gets the element's subject
with reason 2.2 (missing) or 2.1 (invalid, too long included), an ICCID the
operator does not hold gets 8.2.1 / 3.9 (unknown), one that contradicts the
order (EID, profile type) gets the element's subject with 3.10 (invalid
association) or 2.2 and is kept in the history as refused. Thin: check, parse,
call the service, render.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from carryover.api.es2plus_auth import smdp_of
from carryover.domain.esim.download_progress import (
    MAX_BODY_BYTES,
    MAX_DEPTH,
    nesting_exceeds,
    parse_download_progress,
)
from carryover.domain.esim.status import (
    ADMIN_PROTOCOL,
    ADMIN_PROTOCOL_HEADER,
    StatusCode,
    failed,
)
from carryover.runtime import Carryover
from carryover.services.esim import download_progress

PROTOCOL_HEADER = {ADMIN_PROTOCOL_HEADER: ADMIN_PROTOCOL}
FAILED_EXAMPLE = {"header": {"functionExecutionStatus": {
    "status": "Failed", "statusCodeData": {"subjectCode": "8.2.1", "reasonCode": "3.9",
                                           "message": "unknown ICCID 8988..."}}}}
_FAILED_BODY = {"application/json": {"example": FAILED_EXAMPLE}}

router = APIRouter(prefix="/gsma/rsp2/es2plus", tags=["ES2+"])


def carryover_app(request: Request) -> Carryover:
    return request.app.state.carry


CarryDep = Annotated[Carryover, Depends(carryover_app)]


def _failed(code: StatusCode, status_code: int = 200,
            headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(failed(code), status_code=status_code,
                        headers={**PROTOCOL_HEADER, **(headers or {})})


async def _bounded_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is longer than `limit` bytes (not read further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/handleDownloadProgressInfo", status_code=204,
    summary="The SM-DP+ reports a download's progress (SGP.22 ES2+.HandleDownloadProgressInfo)",
    description="The SM-DP+ presents its token as `Authorization: Bearer <token>` (setting "
                "es2plus_notification_tokens, docs/esim.md).",
    responses={204: {"description": "Received (applied, or already known)"},
               200: {"description": "ES2+ Failed header: malformed, unknown ICCID, or "
                                    "refused (contradicts the order)",
                     "content": _FAILED_BODY},
               400: {"description": f"Body nested deeper than {MAX_DEPTH} levels",
                     "content": _FAILED_BODY},
               401: {"description": "No SM-DP+ token, or not a configured one",
                     "content": _FAILED_BODY},
               413: {"description": f"Body larger than {MAX_BODY_BYTES} bytes",
                     "content": _FAILED_BODY}},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object", "required": ["iccid", "profileType", "timestamp",
                                                  "notificationPointId",
                                                  "notificationPointStatus"]}}}}})
async def handle_download_progress_info(request: Request, carry: CarryDep) -> Response:
    received_at = datetime.now(UTC)
    smdp = smdp_of(request.headers.get("authorization"),
                   carry.settings.es2plus_notification_tokens)
    if smdp is None:
        return _failed(StatusCode("1.1", "1.2", "not allowed: present the SM-DP+'s token as "
                                  "Authorization: Bearer <token>"), 401,
                       {"WWW-Authenticate": 'Bearer realm="es2plus"'})
    raw = await _bounded_body(request, MAX_BODY_BYTES)
    if raw is None:
        return _failed(StatusCode("1.1", "2.1", f"the body is larger than {MAX_BODY_BYTES} "
                                  "bytes"), 413)
    if nesting_exceeds(raw):
        return _failed(StatusCode("1.1", "2.1", f"the body nests deeper than {MAX_DEPTH} "
                                  "levels"), 400)
    try:
        body: Any = json.loads(raw)
    except ValueError:
        return _failed(StatusCode("1.1", "2.1", "the body is not JSON"))
    progress = parse_download_progress(body)
    if isinstance(progress, StatusCode):
        return _failed(progress)
    try:
        received = await run_in_threadpool(
            lambda: download_progress.receive(carry.uow(), progress, received_at, smdp))
    except download_progress.UnknownProfile as exc:
        return _failed(StatusCode("8.2.1", "3.9", str(exc), progress.iccid))
    if received.refusal is not None:
        return _failed(received.refusal)
    return Response(status_code=204, headers=PROTOCOL_HEADER)
