"""What the ledger needs from the store: accounts with their lines, books and history,
the plan catalog, the directory the API lists, and the bulk writes of a line import.

The ledger services (operations, provisioning, directory, line_import, catalog) and
those built on them (services.portal.family, services.scenarios.demo) run in a unit
of work that carries these repositories: `uow.accounts` (accounts, lines, each
account's book and the inputs and entries of its history), `uow.plans` (every
version of every plan), `uow.directory` (pages and reads across accounts),
`uow.line_import` (a line file's rows in bulk) and `uow.outbox` (the notifications
a change offers, services.notify.ports). The store implements them
(store.repository with store.account_history, store.plan_repository,
store.api_repository, store.line_import_repository, store.outbox on
store/uow.py's UnitOfWork), tests/unit/fakes.py in memory; tests/unit/test_fakes_match.py
checks that both have these methods, with these parameters. Each `with uow:`
block is one transaction, rolled back unless committed; within
`uow.refuse_taken(error)`, a write the store refuses on a unique key (a racing
writer took it first) ends the unit of work with `error`. Instants come back
UTC-aware.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from carryover.domain.book import AccountBook
from carryover.domain.book_state import Snapshot
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import Input
from carryover.domain.ledger import Entry
from carryover.domain.plan_versions import PlanCatalog
from carryover.domain.plans import Plan
from carryover.domain.sessions import ChargingSession
from carryover.services.charging.ports import Reauthorizations
from carryover.services.notify.ports import Outbox
from carryover.services.unit_of_work import Reading

if TYPE_CHECKING:
    from carryover.services.errors import ServiceError


class AccountStore(Protocol):
    """Account rows: `id`, `name`, `cycle_day`, `timezone`, `grace_seconds`, `created_at`,
    `pool_plan_id` (None: no family pool), the book's cursor and `version`. Line rows:
    `id`, `account_id`, `msisdn`, `imsi`, `opened_at`, `plan_id`, `member`,
    `pending_plan`, `limits`, `alert_thresholds`."""

    def booked_at(self, book: AccountBook, clock: datetime | None = None) -> datetime:
        """When what `book` folded in this transaction is booked (its entries'
        recorded_at): the book's `now`, else the server's clock."""

    def create_account(self, name: str, cycle_day: int, timezone: str, at: datetime,
                       grace: timedelta) -> int:
        """A new account with no lines and no cursor yet: its id."""

    def account_by_name(self, name: str) -> Any:
        """The account row, or None."""

    def account(self, account_id: int) -> Any: ...

    def lock_account(self, account_id: int) -> Any:
        """The account row; no other writer changes the account until the unit ends."""

    def find_line(self, ident: str) -> Any:
        """A line by id, MSISDN (with or without +) or IMSI, with its account's `timezone`,
        `cycle_day` and `grace_seconds`; None when no line has it."""

    def find_lines(self, idents: Iterable[str]) -> dict[str, Any]:
        """`find_line` for many identifiers: ident -> row (absent: unknown)."""

    def insert_line(self, **values: Any) -> None:
        """Store a line row; an id, MSISDN or IMSI another line has is refused as taken."""

    def account_lines(self, account_id: int) -> list[Any]:
        """The account's lines, by id."""

    def load_book(self, account: Any, all_plans: dict[str, Plan]) -> tuple[AccountBook, Snapshot]:
        """The account's book (its row, locked) and the snapshot `save_book` compares with;
        a replay reads the stored history."""

    def save_book(self, account_id: int, book: AccountBook, snapshot: Snapshot) -> None:
        """Write back what the book holds that `snapshot` does not; entries booked now."""

    def record(self, account_id: int, item: Input, calendar: CycleCalendar,
               grace: timedelta, actor: str | None = None,
               recorded_at: datetime | None = None) -> None:
        """Store an input (any but usage with who gave it and when); an event id or an
        input id of the account stored already is refused as taken."""

    def changes(self, account_id: int, start: datetime, end: datetime) -> list[Any]:
        """The account's inputs but usage effective in [start, end): `input_id`, `kind`,
        `line`, `at`, `body`, `actor`, `recorded_at`, in (at, input id) order."""

    def entries(self, account_id: int, before: datetime | None = None) -> list[Entry]:
        """The account's stored entries effective before `before`, in booking order."""

    def unlimited_bucket_ids(self, account_id: int) -> set[str]: ...


class PlanStore(Protocol):
    """Version rows: `plan_id`, `version`, `body`, `source`, `recorded_at`,
    `effective_at`, `next_boundary_after`."""

    def all(self) -> PlanCatalog:
        """Every plan with its versions."""

    def add_version(self, plan_id: str, body: dict, source: str, at: datetime,
                    effective_at: datetime | None = None,
                    next_boundary_after: datetime | None = None) -> int:
        """Append a version to the plan's series (the first one: version 1, always in
        force); its number."""

    def version_rows(self, plan_id: str) -> list[Any]:
        """The plan's versions, oldest first."""

    def version_rows_of(self, plan_ids: Sequence[str]) -> dict[str, list[Any]]:
        """`version_rows` of several plans: id -> rows (absent: unknown)."""


class DirectoryStore(Protocol):
    """Reads across accounts. Plan rows: `id`, `body` (the latest version's), `source`,
    `loaded_at`."""

    def lines_page(self, account_id: int | None, after: str | None, limit: int,
                   plan_id: str | None = None) -> list[Any]:
        """Up to `limit` line rows (with `account_name`) by id after `after`, of one
        account and one plan if given."""

    def accounts_page(self, after: str | None, limit: int, timezone: str | None = None,
                      family: bool | None = None) -> list[Any]:
        """Up to `limit` account rows (with `line_count`) by name after `after`."""

    def plans_page(self, after: str | None, limit: int) -> list[Any]:
        """Up to `limit` plan rows by id after `after`."""

    def plan(self, plan_id: str) -> Any:
        """The plan row, or None."""

    def line_plans(self) -> dict[str, str | None]:
        """Every line's plan: line id -> plan id (None for a pool member)."""

    def pool_plans(self) -> dict[int, str | None]:
        """Every account's pool plan: account id -> plan id (None: no family pool)."""

    def entries_of_kinds(self, kinds: Sequence[str]) -> list[Any]:
        """(account_id, owner, kind, amount, bucket_id) of every entry of these kinds."""


class LineImportStore(Protocol):
    """A line file's chunk: what its checks read whole, and its writes in bulk."""

    def accounts(self) -> dict[str, tuple]:
        """Every account by name: (id, cycle_day, timezone, pool_plan_id)."""

    def taken_identifiers(self) -> set[str]:
        """Every line id, MSISDN (with and without "+") and IMSI a stored line has."""

    def create_accounts(self, names: Sequence[str], cycle_day: int, timezone: str,
                        grace: timedelta, created_at: datetime) -> dict[str, int]:
        """Accounts with these names (no cursor yet): name -> id."""

    def add_lines(self, rows: Sequence[tuple]) -> None:
        """Lines, each (id, account_id, msisdn, imsi, opened_at, plan_id, member), with no
        limits."""

    def save_new_books(self, ids: dict[str, int], books: dict[str, AccountBook],
                       recorded: datetime) -> None:
        """The books of brand-new accounts (name -> book, folded in memory): their inputs
        (given by the CLI, recorded at `recorded`), buckets, entries and cursor."""


class WatchedSessions(Protocol):
    def watched(self, account_ids: Sequence[int]) -> list[ChargingSession]:
        """The open charging sessions with a notify_uri of these accounts, by ref."""


class LedgerUnit(Reading, Protocol):
    accounts: AccountStore
    plans: PlanStore
    directory: DirectoryStore
    line_import: LineImportStore
    outbox: Outbox
    charging: WatchedSessions  # whose packet cores a change asks to re-authorize
    reauthorizations: Reauthorizations

    def refuse_taken(self, error: ServiceError) -> AbstractContextManager[None]:
        """Within: a write (or the commit) refused on a unique key raises `error`."""


class PlansUnit(Protocol):
    """A unit of work already entered, as the catalog's functions are given one."""

    plans: PlanStore
