"""The SM-DP+ emulator over HTTP: ES2+ for the operator, a device API for simulated phones.

For development and tests only — never point production at it. It serves:
- `POST /gsma/rsp2/es2plus/{downloadOrder,confirmOrder,cancelOrder,releaseProfile}`,
  answering like an SM-DP+ (see adapters/smdp_store.py);
- `POST /emulator/device/initiate`, `/emulator/device/download` and
  `/emulator/device/{enable,disable,delete}`: what a phone's LPA would do, used by
  `carryover smdp device ...`;
- `GET /emulator/profiles`: the emulator's view, for people and tests;
and calls the operator's handleDownloadProgressInfo like a real SM-DP+ would,
presenting its token (`Authorization: Bearer`, the operator's
es2plus_notification_tokens, docs/esim.md). Over HTTPS when given a
certificate, requiring client certificates (mutual TLS) when given a client CA.
"""

from __future__ import annotations

import json
import ssl
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from carryover.adapters.es2plus_client import BASE_PATH
from carryover.adapters.smdp_store import FUNCTIONS, DeviceError, SmdpStore
from carryover.domain.esim.status import (
    ADMIN_PROTOCOL,
    ADMIN_PROTOCOL_HEADER,
    StatusCode,
    failed,
)

NOTIFICATION_PATH = BASE_PATH + "handleDownloadProgressInfo"
PROTOCOL_HEADER = {ADMIN_PROTOCOL_HEADER: ADMIN_PROTOCOL}


class HttpNotifier:
    """Posts notifications to the operator with `token`; returns True when it answered 204."""

    def __init__(self, operator_url: str, token: str | None = None, timeout: float = 5.0,
                 verify: ssl.SSLContext | bool = True) -> None:
        self.url = operator_url.rstrip("/") + NOTIFICATION_PATH
        self.timeout = timeout
        self.verify = verify
        self.headers = dict(PROTOCOL_HEADER)
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"

    def __call__(self, body: dict) -> bool | str:
        response = httpx.post(self.url, json=body, headers=self.headers,
                              timeout=self.timeout, verify=self.verify)
        if response.status_code == 204:
            return True
        return f"HTTP {response.status_code}: {response.text[:200]}"


class Initiate(BaseModel):
    activationCode: str  # the LPA's field names
    eid: str


class Download(BaseModel):
    transactionId: str
    confirmationCodeProof: str | None = None
    fail: str | None = None  # "download" | "install": simulate a failure at that step


class DeviceProfile(BaseModel):
    iccid: str
    eid: str


def create_emulator_app(store: SmdpStore) -> FastAPI:
    app = FastAPI(title="carryover SM-DP+ emulator (development and tests only)",
                  description=__doc__)
    app.state.store = store

    @app.post(BASE_PATH + "{function}")
    async def es2plus(function: str, request: Request) -> JSONResponse:
        if function not in FUNCTIONS:
            raise HTTPException(404, f"no ES2+ function {function!r} here")
        if not request.headers.get(ADMIN_PROTOCOL_HEADER, "").startswith("gsma/rsp/v2."):
            return JSONResponse(failed(StatusCode(
                "1.1", "2.2", f"{ADMIN_PROTOCOL_HEADER}: gsma/rsp/v2.x.y is missing")),
                headers=PROTOCOL_HEADER)
        try:
            body: Any = json.loads(await request.body())
        except ValueError:
            return JSONResponse(failed(StatusCode("1.1", "2.1", "the body is not JSON")),
                                headers=PROTOCOL_HEADER)
        status, answer = store.handle(function, body)
        return JSONResponse(answer, status_code=status, headers=PROTOCOL_HEADER)

    def device(action, *args: Any) -> JSONResponse:
        try:
            return JSONResponse(action(*args))
        except DeviceError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    @app.post("/emulator/device/initiate")
    def initiate(body: Initiate) -> JSONResponse:
        return device(store.initiate, body.activationCode, body.eid)

    @app.post("/emulator/device/download")
    def download(body: Download) -> JSONResponse:
        return device(store.download, body.transactionId, body.confirmationCodeProof,
                      body.fail)

    @app.post("/emulator/device/{action}")
    def device_action(action: str, body: DeviceProfile) -> JSONResponse:
        return device(store.device_action, action, body.iccid, body.eid)

    @app.get("/emulator/profiles")
    def profiles() -> list[dict]:
        with store.lock:
            return [p.as_dict() for p in store.profiles.values()]

    return app


def serve(store: SmdpStore, host: str, port: int, *, certfile: str | None = None,
          keyfile: str | None = None, client_ca: str | None = None) -> None:
    """Run the emulator until interrupted (uvicorn, one process: the store is in memory)."""
    import uvicorn

    options: dict[str, Any] = {}
    if certfile is not None:
        options.update(ssl_certfile=certfile, ssl_keyfile=keyfile)
        if client_ca is not None:
            options.update(ssl_ca_certs=client_ca, ssl_cert_reqs=ssl.CERT_REQUIRED)
    uvicorn.run(create_emulator_app(store), host=host, port=port, log_level="info", **options)
