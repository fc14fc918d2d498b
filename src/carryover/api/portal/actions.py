"""What a subscriber changes from the portal (gifts, member limits, alert thresholds).

Each form posts with the session's CSRF token (session.checked_form) and calls
the service the REST API calls, under the same self-service rules: the change
happens at the server's now and is recorded with the portal session's account as
a subscriber actor (docs/security.md). A line outside the session's account is a
404, as on every page. After a change the browser is sent back to the page it
came from (303), which shows the new state; a refused change shows why (422; 403
for one a subscriber may not make, such as a plan not offered for self-service).

- `GET /portal/family`: the family owner's page (domain.family_view), for an
  account with a pool; 404 for any other account.
- `POST /portal/family/gift`: `from_line`, `to_line`, `amount` with `unit` (MB or GB).
- `POST /portal/family/limit`: `line`, `amount` with `unit`, or empty for no cap.
- `GET /portal/lines/{line}/advice`: the advice cards (services.advice.advise), each with
  its action: change plan (now or at the next cycle, with what a change now
  forfeits), the family's suggested gifts and member limits, alert thresholds.
- `POST /portal/lines/{line}/plan-change`: `plan`, `effective` (now or next_cycle);
  only plans offered for self-service, as for a subscriber key.
- `POST /portal/lines/{line}/alert-thresholds`: `thresholds`, percentages separated
  by commas or spaces, or empty for the defaults (services.notify.alert_thresholds).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from carryover.api.portal.render import page
from carryover.api.portal.session import PortalRefusal, Signed, checked_form
from carryover.services.advice import advise as advice
from carryover.services.errors import Forbidden, NotFound, ServiceError
from carryover.services.ledger import operations as ledger_ops
from carryover.services.notify import alert_thresholds
from carryover.services.portal import family as portal_family
from carryover.store.uow import UnitOfWork

router = APIRouter()
# B: the exact bytes of an advice suggestion, posted by its own form.
UNITS = {"B": 1, "MB": 1024**2, "GB": 1024**3}
Form = Annotated[dict, Depends(checked_form)]


def _engine(request: Request):
    return request.app.state.carry.open()


def _own(session, line: str) -> str:
    if line not in session.lines:
        raise PortalRefusal(404, f"There is no line {line!r} in your account.")
    return line


def _bytes(fields: dict, blank_is_none: bool = False) -> int | None:
    text = fields.get("amount", "").strip()
    if not text and blank_is_none:
        return None
    unit = UNITS.get(fields.get("unit", "MB"))
    if unit is None or not re.fullmatch(r"\d{1,9}(\.\d{1,3})?", text):
        raise PortalRefusal(422, "Give the amount as a number of MB or GB, such as 500 or 1.5.")
    whole, _, part = text.partition(".")
    return int(whole) * unit + int(part.ljust(3, "0") or 0) * unit // 1000


async def _change(call, *args):
    try:
        return await run_in_threadpool(call, *args)
    except NotFound as exc:
        raise PortalRefusal(404, str(exc)) from None
    except Forbidden as exc:
        raise PortalRefusal(403, f"That change is not yours to make here: {exc}") from None
    except ServiceError as exc:
        raise PortalRefusal(422, f"That change was refused: {exc}") from None


@router.get("/family")
async def family_page(request: Request, session: Signed, done: str | None = None) -> Response:
    found = await run_in_threadpool(portal_family.view, UnitOfWork(_engine(request)),
                                    session.line, datetime.now(UTC))
    if found is None:
        raise PortalRefusal(404, "Your account is not a family plan.")
    return page(request, "family.html", session=session, family=found, tab="family",
                done=done if done in {"gift", "limit"} else None)


@router.post("/family/gift")
async def gift(request: Request, session: Signed, fields: Form) -> Response:
    giver = _own(session, fields.get("from_line", ""))
    taker = _own(session, fields.get("to_line", ""))
    amount = _bytes(fields)
    if not amount:
        raise PortalRefusal(422, "A gift needs an amount above zero.")
    await _change(portal_family.gift, UnitOfWork(_engine(request)), session.account, giver,
                  taker, amount, f"gift-{uuid.uuid4().hex[:16]}")
    return RedirectResponse("/portal/family?done=gift", status_code=303)


@router.post("/family/limit")
async def member_limit(request: Request, session: Signed, fields: Form) -> Response:
    line = _own(session, fields.get("line", ""))
    await _change(portal_family.set_limit, UnitOfWork(_engine(request)), session.account, line,
                  _bytes(fields, blank_is_none=True), f"limit-{uuid.uuid4().hex[:16]}")
    return RedirectResponse("/portal/family?done=limit", status_code=303)


@router.post("/lines/{line}/alert-thresholds")
async def thresholds(request: Request, line: str, session: Signed, fields: Form) -> Response:
    _own(session, line)
    text = fields.get("thresholds", "").strip()
    values = None
    if text:
        parts = [p for p in re.split(r"[\s,;%]+", text) if p]
        if not all(p.isdigit() and len(p) <= 3 for p in parts):
            raise PortalRefusal(422, "Give whole percentages, such as 25, 75, 100.")
        values = [int(p) for p in parts]
    await _change(alert_thresholds.set_thresholds, UnitOfWork(_engine(request)), line, values)
    return RedirectResponse(f"/portal/lines/{line}/advice?done=thresholds", status_code=303)


@router.get("/lines/{line}/advice")
async def advice_page(request: Request, line: str, session: Signed,
                      done: str | None = None) -> Response:
    _own(session, line)
    engine = _engine(request)
    now = datetime.now(UTC)
    found = await _change(advice.advise, UnitOfWork(engine), line, now)
    picked = await run_in_threadpool(alert_thresholds.thresholds, UnitOfWork(engine), line)
    return page(request, "advice.html", session=session, view={"line": line, **found},
                advice=found, thresholds=picked, tab="advice",
                done=done if done in {"thresholds", "plan"} else None,
                parse=datetime.fromisoformat, zone=session.timezone)


@router.post("/lines/{line}/plan-change")
async def plan_change(request: Request, line: str, session: Signed, fields: Form) -> Response:
    _own(session, line)
    effective = fields.get("effective", "")
    if effective not in {"now", "next_cycle"}:
        raise PortalRefusal(422, "Choose to change now or at the next cycle.")
    await _change(ledger_ops.change_plan, UnitOfWork(_engine(request)), line,
                  fields.get("plan", ""), effective, None, f"plan-{uuid.uuid4().hex[:16]}",
                  portal_family.actor(session.account))
    return RedirectResponse(f"/portal/lines/{line}/advice?done=plan", status_code=303)
