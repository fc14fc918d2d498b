"""The ES2+ client: the operator calling an SM-DP+ (GSMA SGP.22, specs/ES2PLUS.md).

Each function is a JSON POST to `<base>/gsma/rsp2/es2plus/<function>` with the
header `X-Admin-Protocol: gsma/rsp/v2.5.0` and a request header object naming
the requester and a functionCallIdentifier unique to the call. A call that
fails in transit (connection refused or reset, timeout, HTTP 5xx or 429) is
retried with exponential backoff under the *same* functionCallIdentifier, so an
SM-DP+ that executed the first attempt recognises the retry instead of running
the function twice. A Failed or Expired answer is not retried: it becomes
FunctionFailed naming the subject and reason codes.

Production SM-DP+s require mutual TLS: give the client certificate and key
and the CA that signed the SM-DP+'s certificate.
"""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from carryover.domain.esim.identifiers import IdentifierError, parse_iccid
from carryover.domain.esim.status import (
    ADMIN_PROTOCOL,
    ADMIN_PROTOCOL_HEADER,
    EXPIRED,
    FAILED,
    STATUSES,
    FunctionFailed,
    StatusCode,
)
from carryover.services.esim.ports import AVAILABLE, ConfirmedOrder, TransportFailure

BASE_PATH = "/gsma/rsp2/es2plus/"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def tls_context(client_cert: str | None, client_key: str | None,
                ca_file: str | None) -> ssl.SSLContext | bool:
    """The TLS settings: a context for mutual TLS or a private CA, else system defaults."""
    if client_cert is None and ca_file is None:
        return True
    context = ssl.create_default_context(cafile=ca_file)
    if client_cert is not None:
        context.load_cert_chain(client_cert, client_key)
    return context


class Es2PlusClient:
    """Implements services.esim.ports.Smdp over HTTP(S)."""

    def __init__(self, base_url: str, *, requester_id: str = "carryover",
                 timeout: float = 10.0, retries: int = 3, backoff: float = 0.5,
                 client_cert: str | None = None, client_key: str | None = None,
                 ca_file: str | None = None, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 new_call_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        self.requester_id = requester_id
        self.retries = retries
        self.backoff = backoff
        self.warnings: list[StatusCode] = []
        self._sleep = sleep
        self._new_call_id = new_call_id
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
            verify=tls_context(client_cert, client_key, ca_file),
            headers={ADMIN_PROTOCOL_HEADER: ADMIN_PROTOCOL, "Content-Type": "application/json",
                     "Accept": "application/json"})

    @classmethod
    def from_settings(cls, settings: Any) -> Es2PlusClient:
        return cls(settings.es2plus_url, requester_id=settings.es2plus_requester_id,
                   timeout=settings.es2plus_timeout, retries=settings.es2plus_retries,
                   backoff=settings.es2plus_backoff, client_cert=settings.es2plus_client_cert,
                   client_key=settings.es2plus_client_key, ca_file=settings.es2plus_ca_file)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Es2PlusClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- the functions ----------------------------------------------------------------
    def download_order(self, *, iccid: str | None = None, eid: str | None = None,
                       profile_type: str | None = None) -> str:
        answer = self.call("downloadOrder", {"eid": eid, "iccid": iccid,
                                             "profileType": profile_type})
        try:
            return parse_iccid(str(answer.get("iccid", "")))
        except IdentifierError as exc:
            raise TransportFailure(f"downloadOrder answered without a valid iccid: {exc}") \
                from exc

    def confirm_order(self, *, iccid: str, release: bool, eid: str | None = None,
                      matching_id: str | None = None,
                      confirmation_code: str | None = None) -> ConfirmedOrder:
        answer = self.call("confirmOrder", {
            "iccid": iccid, "releaseFlag": release, "eid": eid, "matchingId": matching_id,
            "confirmationCode": confirmation_code})
        if not answer.get("matchingId"):
            raise TransportFailure("confirmOrder answered without a matchingId")
        return ConfirmedOrder(str(answer["matchingId"]), answer.get("eid") or eid,
                              answer.get("smdpAddress"))

    def cancel_order(self, *, iccid: str, final_status: str = AVAILABLE,
                     eid: str | None = None, matching_id: str | None = None) -> None:
        self.call("cancelOrder", {"iccid": iccid, "finalProfileStatusIndicator": final_status,
                                  "eid": eid, "matchingId": matching_id})

    def release_profile(self, *, iccid: str) -> None:
        self.call("releaseProfile", {"iccid": iccid})

    # ---- transport ----------------------------------------------------------------------
    def call(self, function: str, fields: dict[str, Any]) -> dict[str, Any]:
        """POST one function, retrying transport failures with the same call identifier."""
        body = {"header": {"functionRequesterIdentifier": self.requester_id,
                           "functionCallIdentifier": self._new_call_id()},
                **{k: v for k, v in fields.items() if v is not None}}
        attempt, problem = 0, ""
        while True:
            try:
                response = self._http.post(BASE_PATH + function, json=body)
                if response.status_code not in RETRY_STATUSES:
                    return self._answer(function, response)
                problem = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt >= self.retries:
                raise TransportFailure(f"{function}: {problem} after {attempt + 1} attempt"
                                       f"{'s' if attempt else ''}")
            self._sleep(self.backoff * 2**attempt)
            attempt += 1

    def _answer(self, function: str, response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise TransportFailure(f"{function}: HTTP {response.status_code} from the SM-DP+")
        try:
            answer = response.json()
            execution = answer["header"]["functionExecutionStatus"]
            status = execution["status"]
        except (ValueError, KeyError, TypeError):
            raise TransportFailure(f"{function}: the answer is not an ES2+ response") from None
        if status not in STATUSES:
            raise TransportFailure(f"{function}: unknown execution status {status!r}")
        code = execution.get("statusCodeData")
        code = None if code is None else StatusCode.from_json(code)
        if status in (FAILED, EXPIRED):
            raise FunctionFailed(function, status, code)
        if code is not None:  # Executed-WithWarning
            self.warnings.append(code)
        return answer
