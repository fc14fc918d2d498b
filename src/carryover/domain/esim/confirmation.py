"""Confirmation codes: a second secret the subscriber types when the device downloads.

The operator makes the code, gives it to the SM-DP+ in confirmOrder and to the
subscriber out of band (shown once), and keeps only a slow salted hash of it
(PBKDF2-SHA256) so a leaked database does not leak codes. The SM-DP+ keeps
SHA256(CC); a device proves it knows the code with
SHA256(SHA256(CC) || TransactionID) for the download's transaction id (SGP.22),
so the code itself never crosses the network at download time.
"""

from __future__ import annotations

import hashlib
import hmac

ALGORITHM = "pbkdf2_sha256"
ITERATIONS = 240_000
CODE_ALPHABET = "0123456789"
CODE_LENGTH = 8


def hash_for_storage(code: str, salt: bytes, iterations: int = ITERATIONS) -> str:
    """`algorithm$iterations$salt$digest` (hex): what the operator stores instead of the code."""
    digest = hashlib.pbkdf2_hmac("sha256", code.encode(), salt, iterations)
    return f"{ALGORITHM}${iterations}${salt.hex()}${digest.hex()}"


def matches_stored(code: str, stored: str) -> bool:
    """Whether `code` is the one whose hash is `stored`."""
    algorithm, iterations, salt, digest = stored.split("$")
    if algorithm != ALGORITHM:
        raise ValueError(f"unknown confirmation code hash {algorithm!r}")
    candidate = hash_for_storage(code, bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(candidate.rsplit("$", 1)[1], digest)


def hashed_code(code: str) -> bytes:
    """SHA256(CC): what the SM-DP+ keeps from confirmOrder."""
    return hashlib.sha256(code.encode()).digest()


def device_proof(code: str, transaction_id: bytes) -> bytes:
    """SHA256(SHA256(CC) || TransactionID): what a device sends to prove the code."""
    return hashlib.sha256(hashed_code(code) + transaction_id).digest()


def proof_matches(hashed: bytes, transaction_id: bytes, proof: bytes) -> bool:
    return hmac.compare_digest(hashlib.sha256(hashed + transaction_id).digest(), proof)
