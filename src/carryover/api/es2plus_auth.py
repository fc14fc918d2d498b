"""Who is calling the ES2+ callback: the SM-DP+ whose bearer token the request presents.

Every SM-DP+ allowed to notify the operator has a token of its own (setting
`es2plus_notification_tokens`, docs/esim.md and docs/security.md); a request
without one, or with any other, is refused before its body is read. The
presented token is compared with every configured one, each through SHA-256 and
`hmac.compare_digest` and without stopping at a match, so the time taken says
neither which token matched nor how much of a wrong one was right.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from pydantic import SecretStr

SCHEME = "bearer"


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def smdp_of(authorization: str | None, tokens: Mapping[str, SecretStr]) -> str | None:
    """The name of the SM-DP+ whose token `authorization` carries, else None."""
    scheme, _, presented = (authorization or "").strip().partition(" ")
    if scheme.lower() != SCHEME or not presented.strip():
        return None
    offered = _digest(presented.strip())
    found = None
    for name, token in sorted(tokens.items()):
        if hmac.compare_digest(offered, _digest(token.get_secret_value())) and found is None:
            found = name
    return found
