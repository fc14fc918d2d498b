"""Typed subscriber identifiers: `imsi-<digits>` (a SUPI) and `msisdn-<digits>` (a GPSI).

A line is named by its id, its MSISDN or its IMSI, one namespace (docs/security.md).
An identifier with one of these prefixes (TS 23.003) names that kind only, so no
line id may start with one: the store's lookup and provisioning both ask here.
"""

from __future__ import annotations

TYPED = ("imsi", "msisdn")


def split_typed(ident: str) -> tuple[str | None, str]:
    """(`imsi` or `msisdn`, the value) for a typed identifier, else (None, ident)."""
    for kind in TYPED:
        if ident.startswith(kind + "-"):
            return kind, ident[len(kind) + 1:]
    return None, ident
