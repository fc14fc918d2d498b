"""Shared pieces of the eSIM tests: valid identifiers, an emulator and an operator on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from carryover.adapters.smdp_emulator import HttpNotifier, create_emulator_app
from carryover.adapters.smdp_store import SmdpStore
from carryover.domain.esim.identifiers import eid_check_digits, luhn_check_digit
from carryover.domain.esim.inventory import ProfileRecord
from tests.loopback import serving


def iccid(n: int, issuer: str = "898824700") -> str:
    """The n-th 19-digit test ICCID (Luhn-valid)."""
    body = f"{issuer}{n:09d}"
    return body + luhn_check_digit(body)


def eid(n: int) -> str:
    body = f"8988211990000000000000{n:08d}"
    return body + eid_check_digits(body)


EID_A, EID_B, EID_C = eid(1), eid(2), eid(3)
# The emulator's token, and the operator setting that accepts it (docs/esim.md).
SMDP_TOKEN = "test-smdp-token-0123456789abcdef0123"
NOTIFICATION_TOKENS = {"smdp.localhost": SMDP_TOKEN}


def records(count: int, profile_type: str = "consumer", start: int = 0) -> list[ProfileRecord]:
    return [ProfileRecord(iccid(start + i), f"26201{start + i:010d}", profile_type)
            for i in range(count)]


def inventory_csv(recs: list[ProfileRecord]) -> str:
    return "iccid,imsi,profile_type\n" + "".join(
        f"{r.iccid},{r.imsi},{r.profile_type}\n" for r in recs)


@contextmanager
def emulator(recs: list[ProfileRecord], operator_url: str | None = None,
             address: str = "smdp.localhost",
             token: str | None = SMDP_TOKEN) -> Iterator[tuple[SmdpStore, str]]:
    """An SM-DP+ emulator holding `recs`, notifying `operator_url` (if any) with `token`."""
    store = SmdpStore(address, notify=HttpNotifier(operator_url, token) if operator_url
                      else None)
    for r in recs:
        store.add_profile(r.iccid, r.imsi, r.profile_type)
    with serving(create_emulator_app(store)) as url:
        yield store, url
