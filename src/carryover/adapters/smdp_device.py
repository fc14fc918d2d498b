"""A simulated phone: what an LPA does against the SM-DP+ emulator's device API.

`download` presents the activation code and the EID, proves the confirmation
code when the order needs one (SHA256(SHA256(CC) || TransactionID), so the code
itself is never sent) and downloads and installs the profile; `act` enables,
disables or deletes an installed profile. Only the emulator speaks this API.
"""

from __future__ import annotations

from typing import Any

import httpx

from carryover.domain.esim.confirmation import device_proof


class DeviceRefused(Exception):
    """The emulator refused the device action; the message says why."""


class SimulatedDevice:
    def __init__(self, url: str, eid: str, timeout: float = 10.0) -> None:
        self.eid = eid
        self._http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SimulatedDevice:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._http.post(path, json=body)
        except httpx.TransportError as exc:
            raise DeviceRefused(f"SM-DP+ emulator unreachable: {exc}") from exc
        data = response.json() if response.content else {}
        if response.status_code != 200:
            raise DeviceRefused(data.get("error") or data.get("detail")
                                or f"HTTP {response.status_code}")
        return data

    def download(self, activation_code: str, confirmation_code: str | None = None,
                 fail: str | None = None) -> dict[str, Any]:
        session = self._post("/emulator/device/initiate",
                             {"activationCode": activation_code, "eid": self.eid})
        proof = None
        if session["confirmationCodeRequired"]:
            if confirmation_code is None:
                raise DeviceRefused("this order needs its confirmation code")
            proof = device_proof(confirmation_code,
                                 bytes.fromhex(session["transactionId"])).hex()
        return self._post("/emulator/device/download", {
            "transactionId": session["transactionId"], "confirmationCodeProof": proof,
            "fail": fail})

    def act(self, action: str, iccid: str) -> dict[str, Any]:
        return self._post(f"/emulator/device/{action}", {"iccid": iccid, "eid": self.eid})
