"""Cursor pagination shared by every list: opaque cursors over the last id seen.

A cursor is the URL-safe base64 of the last id of the page before; lists are
ordered by id, so a page is stable while rows are added elsewhere. A cursor that
does not decode is a 422 problem.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Query

from carryover.api.problems import ApiProblem

Limit = Annotated[int, Query(ge=1, le=500, description="Items per page.")]
Cursor = Annotated[str | None, Query(max_length=400,
                                     description="`next_cursor` of the previous page.")]


def encode(last_id: str | None) -> str | None:
    if last_id is None:
        return None
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        last = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_",
                                validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        last = ""
    if not last or not last.isprintable():  # ids this API returns are printable text
        raise ApiProblem(422, "cursor is not one this API returned")
    return last
