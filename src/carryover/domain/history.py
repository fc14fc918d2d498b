"""Where a book's replay reads what was folded before it: the account's history.

A book folds inputs as they arrive. One that sorts before what is already folded
(docs/semantics.md, "A line's state is a fold") makes the book replay the whole
history, which a store keeps, not the book: the book is given a `History` that
streams it. `inputs` yields every stored input in fold order (`inputs.order_key`);
`booked_totals` yields what the stored entries booked, as
`((bucket, owner, line, unit, kind), effective instant, amount)` sums at any
grouping finer than the effective cycle, so a replay can book the difference.

A book given no history (a pure fold in memory) replays from the inputs it was
given itself. A book kept between transactions is handed each transaction's
history (`AccountBook.attach`) and lets go of it after (`AccountBook.detach`): a
history reads through the transaction it was made in.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from carryover.domain.inputs import Input


class History(Protocol):
    """The stored inputs and booked totals of one account (see the module docstring)."""

    def inputs(self) -> Iterable[Input]:
        """Every stored input, in fold order, streamed."""
        ...

    def booked_totals(self) -> Iterable[tuple[tuple, datetime, int]]:
        """The stored entries' sums per (bucket, owner, line, unit, kind) and instant."""
        ...


class NoHistory:
    """The history of a book that must never replay (a what-if fork): asking fails."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def inputs(self) -> Iterable[Input]:
        raise RuntimeError(self.reason)

    def booked_totals(self) -> Iterable[tuple[tuple, datetime, int]]:
        return ()
