"""A server that answers Nchf requests at once and does nothing else: the floor.

`bench/nchf_load.py --null-server` drives the same schedule, with the same client,
against this ASGI app under uvicorn (httptools, the loop `carryover serve` uses)
instead of `carryover serve`. What it measures is what the client, HTTP over
loopback and the machine's scheduler cost on their own: no server can answer
faster than this on the same machine, so a latency target this floor misses
cannot be met by carryover's code there.

It reads and parses each request body (as any server must) and answers with a
fixed, schema-valid ChargingDataResponse: 201 with a Location for a create, 200
for an update, 204 for a release; `/healthz` answers 200 so the bench can wait
for it. No database, no rating, no state beyond a counter for the refs.
"""

from __future__ import annotations

import itertools
import json

API = "/nchf-convergedcharging/v3"
_refs = itertools.count(1)


def _answer(request: dict) -> bytes:
    return json.dumps({
        "invocationTimeStamp": request.get("invocationTimeStamp", "2026-01-01T00:00:00Z"),
        "invocationSequenceNumber": request.get("invocationSequenceNumber", 0),
        "multipleUnitInformation": [{
            "resultCode": "SUCCESS", "ratingGroup": 1,
            "grantedUnit": {"totalVolume": 10_000_000}, "volumeQuotaThreshold": 2_000_000,
            "validityTime": 3600}],
    }).encode()


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path, headers, status, payload = scope["path"], [], 200, b""
    if path == "/healthz":
        payload = b"ok"
    elif not path.startswith(API):
        status = 404
    elif path.endswith("/release"):
        json.loads(body)
        status = 204
    else:
        payload = _answer(json.loads(body))
        headers.append((b"content-type", b"application/json"))
        if path == f"{API}/chargingdata":
            status = 201
            headers.append((b"location", f"{API}/chargingdata/null{next(_refs)}".encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
