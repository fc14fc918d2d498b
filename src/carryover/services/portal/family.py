"""The family owner's page (domain.family_view) and what its forms change.

A portal session belongs to one account, the account holder's: of a family account
it may gift between the account's lines and set a member's limit, as a subscriber
key may through the REST API (docs/security.md): at the server's now, recorded
with the portal as the actor. The changes are services.ledger.operations'.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from carryover.domain.family_view import family
from carryover.domain.views import position
from carryover.services.ledger import operations as ledger_ops
from carryover.services.ledger.operations import Actor, read_book

if TYPE_CHECKING:
    from carryover.services.ledger.ports import LedgerUnit


def actor(account: str) -> Actor:
    """The actor a portal change is recorded with: a subscriber, never the operator."""
    return Actor(f"portal:{account}"[:64], operator=False)


def view(uow: LedgerUnit, line: str, at: datetime) -> dict | None:
    """The family of `line`'s account at `at`; None when the account has no pool."""
    def read(uow, book, row, t):
        found = family(position(book, t), t)
        if found is not None:
            found.update({"at": t, "timezone": row.timezone})
        return found
    return read_book(uow, line, at, read)


def gift(uow: LedgerUnit, account: str, from_line: str, to_line: str, amount: int,
         ref: str) -> ledger_ops.Recorded:
    return ledger_ops.gift(uow, from_line, to_line, amount, None, ref, actor(account))


def set_limit(uow: LedgerUnit, account: str, line: str, amount: int | None,
              ref: str) -> ledger_ops.Recorded:
    return ledger_ops.set_limit(uow, line, amount, None, ref, actor(account))
