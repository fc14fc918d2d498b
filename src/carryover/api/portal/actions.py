"""What a subscriber changes from the portal (gifts, member limits, alert thresholds).

Each form posts with the session's CSRF token (session.checked_form) and calls
the service the REST API calls, under the same self-service rules."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
