"""The unit of work as every service sees it: a reusable transaction.

A service is given a unit of work and runs each transaction as a block of it:
`with uow: ...; uow.commit()`. Each block is a new transaction on the repositories
the unit carries; leaving it without `commit()` rolls it back. Each package's
ports.py names the repositories its units carry (`uow.accounts`, `uow.charging`,
...) on top of these; store.uow.UnitOfWork implements them, tests/unit/fakes.py
in memory.
"""

from __future__ import annotations

from typing import Protocol, Self


class Transaction(Protocol):
    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def commit(self) -> None: ...


class Reading(Transaction, Protocol):
    def reading(self) -> Self:
        """A unit of work on the same data that only reads (it waits for no writer)."""
