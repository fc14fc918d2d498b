"""`advise`: the advice of docs/advice.md for a line at an instant, one read.

The service loads what the pure domain needs, the account's book (its plan
catalog, every version, comes with it) and the account's stored history in fold
order, and hands them to domain/advice. It reads like a balance read
(ledger_ops): the same window on `at`, and a read at or after the book's cursor
that is not in the future commits the cycles it materializes.
"""

from __future__ import annotations

from datetime import datetime

from carryover.domain import advice
from carryover.services.errors import ServiceError
from carryover.services.ledger.operations import read_book


def advise(uow, line: str, at: datetime,
           cycles: int = advice.DEFAULT_CYCLES) -> dict:
    """The advice object for the line at `at` over its last `cycles` complete cycles,
    read in `uow` (a unit of work, as services.ledger.operations.read_book takes)."""
    if not 1 <= cycles <= advice.MAX_CYCLES:
        raise ServiceError(f"cycles: {cycles} is not in 1..{advice.MAX_CYCLES}")

    def view(uow, book, row, t):
        return advice.advise(book, book.ordered_inputs(), row.id, t, cycles)
    return read_book(uow, line, at, view)
