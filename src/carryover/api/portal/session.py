"""Signing in and out of the portal, the session cookie, CSRF and the rate limit.

- `GET /portal/link/{token}` shows a button; its POST uses the link (once) and
  starts a session. A GET alone changes nothing, so a mail scanner that follows
  the link does not burn it.
- `GET/POST /portal/sign-in`: a subscriber API key starts a session too.
- `POST /portal/sign-out` ends it.

The session cookie is HttpOnly, SameSite=Lax, Secure when the request came
over HTTPS, and lasts `portal_session_minutes`. Every form carries a CSRF token:
the session's own, or before sign-in a random one also set in a short cookie
(double submit); a POST without the matching token is refused 403. Requests are
rate-limited like the API: per account once signed in, per client address
before. A page of a line outside the session's account answers 404, as an
unknown line does.
"""

from __future__ import annotations

import logging
import math
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from carryover.api.deps import take_token
from carryover.api.portal.render import page
from carryover.services.access import portal_sessions as portal_access
from carryover.services.access.portal_sessions import Session, SignInRefused
from carryover.store.uow import UnitOfWork

log = logging.getLogger("carryover.portal")
router = APIRouter()
COOKIE = "carryover_portal"
FORM_COOKIE = "carryover_portal_form"
MAX_FORM = 16_384


class PortalRefusal(Exception):
    """An answer other than the page: a status and the words shown to the subscriber."""

    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def refused(request: Request, exc: PortalRefusal) -> Response:
    response = page(request, "refused.html", exc.status, message=exc.message,
                    status=exc.status, session=getattr(request.state, "portal", None))
    response.headers.update(exc.headers)
    return response


def _now() -> datetime:
    return datetime.now(UTC)


async def limited(request: Request, key: str) -> None:
    wait = await take_token(request.app.state.carry.limiter, f"portal:{key}")
    if wait > 0:
        raise PortalRefusal(429, "Too many requests: try again in a moment.",
                            {"Retry-After": str(max(1, math.ceil(wait)))})


async def form(request: Request) -> dict[str, str]:
    """The urlencoded body of a form post (one value per field)."""
    body = await request.body()
    if len(body) > MAX_FORM:
        raise PortalRefusal(413, "That form was too large.")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise PortalRefusal(400, "That form could not be read.") from None
    return {k: v[0] for k, v in fields.items()}


async def current(request: Request) -> Session:
    """The signed-in session, or a redirect to the sign-in page."""
    carry = request.app.state.carry
    token = request.cookies.get(COOKIE)
    found = await run_in_threadpool(portal_access.session, UnitOfWork(carry.open()), token,
                                    _now())
    if found is None:
        raise PortalRefusal(303, "Please sign in.", {"Location": "/portal/sign-in"})
    await limited(request, f"account:{found.account_id}")
    request.state.portal = found
    return found


Signed = Annotated[Session, Depends(current)]


async def checked_form(request: Request, session: Signed) -> dict[str, str]:
    """A signed-in form post whose CSRF token is the session's (else 403)."""
    fields = await form(request)
    if not portal_access.csrf_matches(session.csrf, fields.get("csrf")):
        raise PortalRefusal(403, "This form has expired or did not come from this site: "
                                 "reload the page and try again.")
    return fields


def _form_token(request: Request) -> str:
    return request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(32)


def _with_form_cookie(request: Request, response: Response, token: str) -> Response:
    response.set_cookie(FORM_COOKIE, token, max_age=3600, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/portal")
    return response


async def _anonymous_form(request: Request) -> dict[str, str]:
    await limited(request, f"client:{request.client.host if request.client else '-'}")
    fields = await form(request)
    if not portal_access.csrf_matches(request.cookies.get(FORM_COOKIE) or "\0",
                                      fields.get("csrf")):
        raise PortalRefusal(403, "This form has expired or did not come from this site: "
                                 "reload the page and try again.")
    return fields


def _signed_in(request: Request, token: str, session: Session) -> Response:
    carry = request.app.state.carry
    response = RedirectResponse(f"/portal/lines/{session.line}", status_code=303)
    response.set_cookie(COOKIE, token, max_age=carry.settings.portal_session_minutes * 60,
                        httponly=True, samesite="lax", secure=request.url.scheme == "https",
                        path="/portal")
    response.delete_cookie(FORM_COOKIE, path="/portal")
    return response


@router.get("/link/{token}")
async def link_page(request: Request, token: str) -> Response:
    csrf = _form_token(request)
    return _with_form_cookie(request, page(request, "link.html", token=token, csrf=csrf), csrf)


@router.post("/link/{token}")
async def use_link(request: Request, token: str) -> Response:
    await _anonymous_form(request)
    carry = request.app.state.carry
    lifetime = timedelta(minutes=carry.settings.portal_session_minutes)
    try:
        cookie, session = await run_in_threadpool(
            portal_access.sign_in_by_link, UnitOfWork(carry.open()), token, _now(), lifetime)
    except SignInRefused as exc:
        log.info("portal link refused: %s", exc.reason)
        raise PortalRefusal(403, str(exc)) from None
    return _signed_in(request, cookie, session)


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    csrf = _form_token(request)
    return _with_form_cookie(request, page(request, "sign_in.html", csrf=csrf, error=None),
                             csrf)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    fields = await _anonymous_form(request)
    carry = request.app.state.carry
    lifetime = timedelta(minutes=carry.settings.portal_session_minutes)
    try:
        cookie, session = await run_in_threadpool(
            portal_access.sign_in_by_key, UnitOfWork(carry.open()),
            fields.get("key", "").strip(), _now(), lifetime)
    except SignInRefused as exc:
        log.info("portal key sign-in refused: %s", exc.reason)
        return page(request, "sign_in.html", 403, csrf=request.cookies.get(FORM_COOKIE),
                    error=str(exc))
    return _signed_in(request, cookie, session)


@router.post("/sign-out")
async def sign_out(request: Request, fields: Annotated[dict, Depends(checked_form)]) -> Response:
    carry = request.app.state.carry
    await run_in_threadpool(portal_access.sign_out, UnitOfWork(carry.open()),
                            request.cookies.get(COOKIE), _now())
    response = RedirectResponse("/portal/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/portal")
    return response
