"""Ids: the one spelling of a bucket's name and of the refs a cycle boundary books.

A bucket id is `owner/unit/kind/...`: the line (or the family pool) that owns
it, the unit, what kind of grant it is and what makes it unique among its kind,
so a statement line says where its bytes came from and two folds of the same
inputs name the same buckets. Instants in ids are UTC to the second
(`stamp`). What a boundary books (expiries, rollover, new allowances) carries
the ref `boundary@<instant>` or `expiry@<instant>`. The object fold (book.py,
boundary.py) and the columnar fold (columnar/fold.py) both name things here; the
store keeps the ids as given.
"""

from __future__ import annotations

from datetime import datetime

from carryover.domain.units import Unit

_STAMP = "%Y-%m-%dT%H:%M:%SZ"


def stamp(at: datetime) -> str:
    """An instant as it appears in ids: UTC, to the second."""
    return at.strftime(_STAMP)


def allowance_id(owner: str, unit: Unit | str, opened: str, changed_by: str | None = None
                 ) -> str:
    """A plan's allowance for the cycle (or segment) that opened at `opened` (a stamp):
    one per owner and instant for an opening or a boundary, and `~<ref>` after it for
    a plan change (`changed_by`), of which one second may hold several."""
    name = f"{owner}/{unit}/allowance/{opened}"
    return name if changed_by is None else f"{name}~{changed_by}"


def pack_id(owner: str, unit: Unit | str, ref: str) -> str:
    """A pack plan's one allowance, named by the input that started it."""
    return f"{owner}/{unit}/pack/{ref}"


def topup_id(owner: str, unit: Unit | str, ref: str) -> str:
    return f"{owner}/{unit}/topup/{ref}"


def gift_id(owner: str, unit: Unit | str, ref: str, position: int) -> str:
    """What the `position`-th bucket a gift drew from gave the receiving line."""
    return f"{owner}/{unit}/gift/{ref}#{position}"


def deposit_id(owner: str, unit: Unit | str, boundary: str, position: int) -> str:
    """The rollover deposit made at `boundary` (a stamp) from the `position`-th source of
    (owner, unit)."""
    return f"{owner}/{unit}/rollover/{boundary}#{position}"


def boundary_ref(boundary: str) -> str:
    """The ref of what the cycle boundary at `boundary` (a stamp) books."""
    return f"boundary@{boundary}"


def expiry_ref(at: str) -> str:
    """The ref of the expiries booked when the book passes `at` (a stamp)."""
    return f"expiry@{at}"
