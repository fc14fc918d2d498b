"""The pages a subscriber reads: the overview of a line, its usage, its statement.

Each page is one read through services.portal.pages or services.ledger.operations at the
server's now; a line outside the session's account is a 404, worded as an
unknown line's.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from carryover.api.portal.chart import usage_chart
from carryover.api.portal.render import page
from carryover.api.portal.session import PortalRefusal, Signed
from carryover.services.access.portal_sessions import Session
from carryover.services.ledger import operations as ledger_ops
from carryover.services.portal import pages as portal_pages
from carryover.store.uow import UnitOfWork

router = APIRouter()
QOS_WORDS = {"normal": "Full speed", "deprioritized": "Full speed, lower priority when busy",
             "throttled": "Slowed", "blocked": "Data blocked"}


def qos_words(state: str, kbps: int | None) -> str:
    words = QOS_WORDS.get(state, state)
    if state == "throttled" and kbps is not None:
        words = f"Slowed to {kbps:,} kbps" if kbps < 1000 else f"Slowed to {kbps / 1000:g} Mbps"
    return words


def _line(session: Session, line: str) -> str:
    if line not in session.lines:
        raise PortalRefusal(404, f"There is no line {line!r} in your account.")
    return line


def _engine(request: Request):
    return request.app.state.carry.open()


@router.get("/")
async def home(session: Signed) -> Response:
    return RedirectResponse(f"/portal/lines/{session.line}", status_code=303)


@router.get("/lines/{line}")
async def overview(request: Request, line: str, session: Signed) -> Response:
    found = await run_in_threadpool(portal_pages.overview, UnitOfWork(_engine(request)),
                                    _line(session, line), datetime.now(UTC))
    decision = found["qos"]
    return page(request, "overview.html", session=session, view=found, tab="overview",
                qos=qos_words(decision.state, decision.max_downlink_kbps),
                qos_state=decision.state)


@router.get("/lines/{line}/usage")
async def usage(request: Request, line: str, session: Signed) -> Response:
    found = await run_in_threadpool(portal_pages.usage, UnitOfWork(_engine(request)),
                                    _line(session, line), datetime.now(UTC))
    return page(request, "usage.html", session=session, view=found, tab="usage",
                chart=usage_chart(found["days"], found["cycle_days"], found["forecast"],
                                  found["timezone"]),
                parse=datetime.fromisoformat)


@router.get("/lines/{line}/statement")
async def statement(request: Request, line: str, session: Signed,
                    cycle: str | None = None) -> Response:
    _line(session, line)
    zone = ZoneInfo(session.timezone)
    at = datetime.now(UTC)
    if cycle is not None:
        try:
            at = datetime.combine(datetime.strptime(cycle[:10], "%Y-%m-%d").date(),
                                  time(12), zone)
        except ValueError:
            raise PortalRefusal(400, "The cycle must be a date, YYYY-MM-DD.") from None
        at = min(at, datetime.now(UTC))
    found = await run_in_threadpool(ledger_ops.statement, UnitOfWork(_engine(request)), line,
                                    at)
    data = found.as_dict()
    return page(request, "statement.html", session=session, view=data, tab="statement",
                line=line, parse=datetime.fromisoformat)
