"""Rendering the portal's pages: the templates, and how amounts and instants read.

Every instant is shown in the account's zone with the zone named; every amount
as people read it (domain.units.format_amount). Responses say `no-store`: a page
holds a subscriber's balance and must not outlive the session in a cache.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from carryover.domain.units import Unit, format_amount

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def local(at: datetime | None, zone: str) -> str:
    """`2026-03-07 16:00 (America/Los_Angeles)`."""
    if at is None:
        return "never"
    return f"{at.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} ({zone})"


def local_date(at: datetime | None, zone: str) -> str:
    return "never" if at is None else f"{at.astimezone(ZoneInfo(zone)):%Y-%m-%d}"


def amount(value: int | None, unit: str = "data") -> str:
    return "unlimited" if value is None else format_amount(value, Unit(unit))


templates.env.filters["amount"] = amount
templates.env.globals["local"] = local
templates.env.globals["local_date"] = local_date
KIND_NAMES = {"allowance": "Monthly allowance", "rollover": "Rollover", "topup": "Top-up",
              "gift": "Gift", "bonus": "Bonus"}
templates.env.globals["kind_name"] = lambda kind: KIND_NAMES.get(kind, kind.capitalize())


def page(request: Request, name: str, code: int = 200, **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'")
    return response
