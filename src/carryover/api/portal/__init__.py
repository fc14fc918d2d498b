"""The subscriber portal: server-rendered pages under /portal (docs/portal.md).

`session` signs subscribers in (one-time link or subscriber key), keeps the
session cookie and checks every form's CSRF token; `pages` renders what a
subscriber reads (overview, usage, statement); `actions` takes what a
subscriber changes. Templates and the style sheet ship in the package: no CDN,
no script needed to read a page.
"""

from __future__ import annotations

from fastapi import APIRouter

from carryover.api.portal import actions, pages, session

router = APIRouter(prefix="/portal", include_in_schema=False)
router.include_router(session.router)
router.include_router(pages.router)
router.include_router(actions.router)
