"""Text that reaches carryover carries no control characters.

Ids, names, cursors and MSISDNs are printable text. A NUL or another control
character in a path, a query or a JSON string is never meaningful to us, and a
database may refuse it at the last step (PostgreSQL text cannot hold NUL), which
would surface as a 5xx. So it is refused where it enters, as a 422 naming where
(on Nchf a 400 ProblemDetails):
`PrintableRequest` checks the decoded path and query of every request, and
`printable` is the validator the API's body models run on every string field.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, unquote

from carryover.api.problems import nchf_problem, problem

# C0 controls, DEL and the C1 controls.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MESSAGE = "control characters (such as NUL) are not accepted"


def printable(value: Any) -> Any:
    """A pydantic field validator: strings pass when they hold no control character."""
    if isinstance(value, str) and _CONTROL.search(value):
        raise ValueError(MESSAGE)
    return value


def _bad_part(scope: dict) -> str | None:
    if _CONTROL.search(unquote(scope.get("path", ""))):
        return "path"
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if _CONTROL.search(name) or _CONTROL.search(value):
            return f"query.{name}"
    return None


class PrintableRequest:
    """ASGI middleware: 422 for a path or query that holds a control character."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        where = _bad_part(scope) if scope["type"] == "http" else None
        if where is None:
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith("/nchf-"):
            # An SMF is answered as every Nchf error is: a TS 29.571 400 with `cause`.
            response = nchf_problem(400, "INVALID_MSG_FORMAT", f"{where}: {MESSAGE}")
        else:
            response = problem(422, "1 invalid field(s)",
                               [{"field": where, "message": MESSAGE, "type": "value_error"}])
        await response(scope, receive, send)
