"""eSIM orders for a line: order a profile, read its status, show its QR code.

Ordering is operator-only (403 for a subscriber key); it runs ES2+ downloadOrder
and confirmOrder through services.esim.orders against the SM-DP+ configured by the
`es2plus_*` settings. The status and the QR code (PNG or SVG, holding the
`LPA:` activation code) are open to a subscriber key on its own account's
lines; another account's line answers the 404 of an unknown line. An SM-DP+
refusal is a 422 problem whose `detail` names the ES2+ subject and reason
codes; an SM-DP+ that cannot be reached is 502.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Depends, Request, Response

from carryover.api.deps import Caller, EngineDep, Operator
from carryover.api.problems import ApiProblem, responses
from carryover.api.rest.idempotent import IdempotencyKey, respond
from carryover.api.rest.schemas import EsimOrderIn, EsimOrderOut, EsimStatusOut
from carryover.services.esim import orders as esim
from carryover.services.esim.ports import Smdp
from carryover.services.ledger import directory
from carryover.store.uow import UnitOfWork

log = logging.getLogger("carryover.api")
router = APIRouter(prefix="/v1/lines/{line}/esim", tags=["eSIM"],
                   responses=responses(401, 404, 422, 429))


def smdp(request: Request) -> Iterator[Smdp]:
    """An ES2+ client for one request, from the app's factory (the settings by default)."""
    try:
        client = request.app.state.carry.smdp_client()
    except (OSError, ValueError) as exc:  # unreadable certificate, key or CA file
        log.error("ES2+ client settings: %s", exc)
        raise ApiProblem(503, "the SM-DP+ client is not configured") from exc
    with client:
        yield client


SmdpDep = Annotated[Smdp, Depends(smdp)]


def _no_code(body: dict) -> dict:
    return {**body, "confirmation_code": None}


@router.post("/orders", status_code=201, response_model=EsimOrderOut,
             summary="Order an eSIM profile for the line and release it for download",
             responses=responses(403, 409, 502))
def order(line: str, body: EsimOrderIn, request: Request, eng: EngineDep, who: Operator,
          client: SmdpDep, idempotency_key: IdempotencyKey = None):
    settings = request.app.state.carry.settings

    def action() -> dict:
        result = esim.order(UnitOfWork(eng), client, line, datetime.now(UTC), eid=body.eid,
                            profile_type=body.profile_type,
                            with_confirmation_code=body.confirmation_code,
                            smdp_address=settings.activation_address())
        return result.as_dict()
    return respond(request, eng, who, idempotency_key, body, action, redact=_no_code)


@router.get("", response_model=EsimStatusOut,
            summary="The line's eSIM profile: state, device, activation code, history")
def status(line: str, eng: EngineDep, who: Caller) -> dict[str, Any]:
    line_id = directory.line(UnitOfWork(eng), line, who.scope)["id"]
    return esim.line_status(UnitOfWork(eng), line_id)


def _qr(eng: Any, line: str, who: Any, kind: str, media_type: str) -> Response:
    """The line's activation code drawn as the CLI draws it (cli/esim.py)."""
    line_id = directory.line(UnitOfWork(eng), line, who.scope)["id"]
    out = io.BytesIO()
    segno.make_qr(esim.activation_code(UnitOfWork(eng), line_id).qr_text(), error="m").save(
        out, kind=kind, scale=8, border=4)
    return Response(out.getvalue(), media_type=media_type)


def _image(media_type: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {media_type: {}}, "description": "The QR code"}}


@router.get("/qr.png", response_class=Response, responses=_image("image/png"),
            summary="The activation code as a QR code (PNG)")
def qr_png(line: str, eng: EngineDep, who: Caller) -> Response:
    return _qr(eng, line, who, "png", "image/png")


@router.get("/qr.svg", response_class=Response, responses=_image("image/svg+xml"),
            summary="The activation code as a QR code (SVG)")
def qr_svg(line: str, eng: EngineDep, who: Caller) -> Response:
    return _qr(eng, line, who, "svg", "image/svg+xml")
