"""Errors as RFC 9457 problem details (`application/problem+json`), never stack traces.

Every error the API returns has `type`, `title`, `status` and `detail`; a
validation error adds `errors`, one entry per bad field (`field` is the dotted
location, e.g. `body.rows.3.amount`). Service refusals map to statuses by
kind: NotFound 404; Forbidden 403; Conflict and Duplicate 409 (also an Idempotency-Key still
in use); an SM-DP+ that could not be reached 502; any other refusal 422 (also
an Idempotency-Key reused with another body, and an SM-DP+ refusal, whose ES2+
subject and reason codes are in `detail`). An unexpected exception is a bare
500 problem; its details go to the server log only, except for a database
statement the statement timeout cancelled (store/engine.py, either backend): its
500 says so, since the caller may narrow the request and retry.

A body that cannot be read as JSON at all (not JSON, not UTF-8, or nested deeper
than the parser allows) is one 422 with the field `body`, whatever the parser's
reason; on Nchf it is a 400 ProblemDetails with `cause` (TS 29.571), as every
Nchf error is. `document_errors` writes the 413 of the body limit into the
OpenAPI of each operation that takes a body, so the schema names every status
the API can answer with. `nchf_problem` builds that ProblemDetails; this module
imports no other module of the API, so every one of them may use it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from carryover.services.errors import Conflict, Duplicate, Forbidden, NotFound, ServiceError
from carryover.services.esim.ports import SmdpError
from carryover.store.engine import is_statement_timeout

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("carryover.api")

TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 413: "Request too large",
          415: "Unsupported media type", 422: "Unprocessable request",
          429: "Too many requests", 500: "Internal error", 502: "Bad gateway",
          503: "Service unavailable"}
SLUGS = {401: "unauthorized", 403: "forbidden", 404: "not-found", 409: "conflict",
         413: "too-large", 422: "invalid", 429: "rate-limited", 500: "internal",
         502: "upstream", 503: "unavailable"}


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem; `errors` only for validation errors."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


class ApiProblem(Exception):
    """Raised by dependencies and routes to answer with a problem."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers


def problem_body(status: int, detail: str, errors: list[dict] | None = None) -> dict:
    body: dict[str, Any] = {"type": f"/problems/{SLUGS.get(status, 'error')}",
                            "title": TITLES.get(status, "Error"), "status": status,
                            "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return body


def problem(status: int, detail: str, errors: list[dict] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(problem_body(status, detail, errors), status_code=status,
                        media_type=PROBLEM_JSON, headers=headers)


def service_status(exc: ServiceError) -> int:
    if isinstance(exc, SmdpError) and exc.codes is None:  # unreachable, not a refusal
        return 502
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, Conflict | Duplicate):
        return 409
    return 422


def field_errors(exc: RequestValidationError) -> list[dict]:
    return [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", ""),
             "type": e.get("type", "invalid")} for e in exc.errors()]


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problems a route may answer with."""
    schema = {"$ref": "#/components/schemas/Problem"}
    # `model` registers Problem under components/schemas, where the $ref points.
    return {code: {"description": TITLES[code], "model": Problem,
                   "content": {PROBLEM_JSON: {"schema": schema}}}
            for code in codes}


# What FastAPI says when a body is not JSON it can decode (bad UTF-8, too deep).
_UNREADABLE = "There was an error parsing the body"
UNREADABLE_BODY = "the body is not readable JSON (UTF-8, not nested too deeply)"


STATEMENT_TIMEOUT = ("a database statement ran longer than the statement timeout and was "
                     "cancelled; its transaction was rolled back")

JSON_BODY_EXPECTED = ("expected a JSON object as the body, sent with the header "
                      "Content-Type: application/json")


def _json_content_type(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the body limit's 413 to every operation of `schema` that takes a body."""
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault("413", {
                    "description": TITLES[413],
                    "content": {PROBLEM_JSON: {"schema": problem_ref}}})
    return schema


def nchf_problem(status: int, cause: str, detail: str,
                 invalid: list[dict[str, str]] | None = None) -> JSONResponse:
    """A TS 29.571 ProblemDetails: what an SMF reads, `cause` above all."""
    titles = {400: "Bad Request", 403: "Forbidden", 404: "Not Found"}
    body: dict[str, Any] = {"title": titles.get(status, "Error"), "status": status,
                            "detail": detail, "cause": cause}
    if invalid:
        body["invalidParams"] = invalid
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def invalid_request(exc: RequestValidationError) -> JSONResponse:
    """400 with one invalidParams entry per bad member (a JSON pointer into the body)."""
    invalid = []
    for error in exc.errors():
        where = [str(p) for p in error.get("loc", ()) if p != "body"]
        invalid.append({"param": "/" + "/".join(where), "reason": error.get("msg", "invalid")})
    missing = any(e.get("type") == "missing" for e in exc.errors())
    return nchf_problem(400, "MANDATORY_IE_MISSING" if missing else "INVALID_MSG_FORMAT",
                        f"{len(invalid)} invalid member(s) in the ChargingDataRequest", invalid)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem."""

    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem(exc.status, exc.detail, headers=exc.headers)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return problem(service_status(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if request.url.path.startswith("/nchf-"):
            # 3GPP service operations answer 400 with a TS 29.571 ProblemDetails.
            return invalid_request(exc)
        errors = field_errors(exc)
        if not _json_content_type(request):
            # Without a JSON content type the body is read as text, and pydantic's words
            # ("Input should be a valid dictionary") do not say what is missing.
            for error in errors:
                if error["field"] == "body":
                    error["message"] = JSON_BODY_EXPECTED
        return problem(422, f"{len(errors)} invalid field(s)", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "")
        unreadable = exc.status_code == 400 and detail == _UNREADABLE
        if request.url.path.startswith("/nchf-") and exc.status_code == 400:
            # An SMF reads `cause`: every Nchf 400 is a TS 29.571 ProblemDetails.
            return nchf_problem(400, "INVALID_MSG_FORMAT",
                                UNREADABLE_BODY if unreadable else detail)
        if unreadable:  # as a body that is not JSON: FastAPI's own json_invalid is a 422
            return problem(422, "1 invalid field(s)", [
                {"field": "body", "message": UNREADABLE_BODY, "type": "json_invalid"}])
        return problem(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        if is_statement_timeout(exc):
            log.warning("statement timeout on %s %s", request.method, request.url.path)
            return problem(500, STATEMENT_TIMEOUT)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "the server could not complete the request")
