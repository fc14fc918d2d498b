"""What ingest needs from the store: the set-based chunk reads and writes, the object
books of the accounts the columnar fold does not take, and the outbox.

The ingest services (chunks, values) run in a unit of work that carries these
repositories: `uow.ingest` (the line directory, the chunk accounts' state and
locks, the event insert with its duplicate check and the writes of what the
columnar fold changed), `uow.accounts` (an account's book, locked, loaded and
saved), `uow.outbox` and `uow.plans` (the chunk's notifications). The store
implements them (store/ingest_repository.py, store/repository.py, store/outbox.py,
store/plan_repository.py). Each `with uow:` block is one transaction, rolled back
unless committed: `ingest_chunks` runs one per chunk on the unit of work it is
given. A long run also asks the unit of work for its WAL checkpoint thread
(`background_checkpoints`), which is not a transaction.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from carryover.services.notify.ports import Outbox, Plans
from carryover.services.unit_of_work import Transaction

if TYPE_CHECKING:
    import numpy as np

    from carryover.domain.book import AccountBook
    from carryover.domain.book_state import Snapshot
    from carryover.domain.columnar.fold import ColumnarBook
    from carryover.domain.columnar.state import Buckets
    from carryover.domain.cycles import CycleCalendar
    from carryover.domain.plans import Plan
    from carryover.services.ingest.total_bounds import StoredTotals
    from carryover.services.notify.ports import ChunkNoticeReads
    from carryover.store.ingest_repository import LineDirectory


class IngestStore(Protocol):
    """The chunk's reads and writes. The state reads are of the accounts last named
    (`name_accounts`); instants are integer microseconds, units indexes of UNITS."""

    def notice_reads(self) -> ChunkNoticeReads:
        """What the chunk's notifier reads the stored state with."""

    def line_directory(self) -> LineDirectory:
        """Every line by id, MSISDN and IMSI."""

    def totals(self) -> StoredTotals:
        """The stored usage totals a chunk is checked against."""

    def name_accounts(self, ids: Sequence[int]) -> None: ...

    def lock_versions(self) -> dict[int, int]:
        """The named accounts' versions, their rows locked first (PostgreSQL)."""

    def load_accounts(self) -> dict[str, list]: ...

    def load_lines(self) -> list[tuple]: ...

    def load_buckets(self, line_index: dict[str, int]) -> Buckets: ...

    def stored_events(self, event_ids: np.ndarray) -> np.ndarray:
        """True where an event id is stored already."""

    def insert_events(self, event_ids: np.ndarray, account: np.ndarray, line_ids: np.ndarray,
                      at: np.ndarray, received: np.ndarray, eff: np.ndarray,
                      amount: np.ndarray, unit: np.ndarray, rating_group: np.ndarray,
                      late: np.ndarray) -> np.ndarray:
        """Insert the events; True where a row went in, False for a stored id."""

    def save_fold(self, columnar: ColumnarBook, n_known: int, before: tuple[np.ndarray, np.ndarray],
                  line_account: np.ndarray, line_name: np.ndarray,
                  cursors: Sequence[tuple[int, int, list | None]]) -> None:
        """Write what the fold changed, and the cursors (which bump the versions)."""


class Books(Protocol):
    """The object books of the accounts the columnar fold does not take, on `uow.accounts`."""

    def lock_account(self, account_id: int) -> Any:
        """The account's row, locked for this transaction (PostgreSQL)."""

    def load_book(self, account: Any, all_plans: dict[str, Plan]
                  ) -> tuple[AccountBook, Snapshot]: ...

    def history_of(self, account_id: int, calendar: CycleCalendar, grace: timedelta,
                   skip_usage: Set[str] = frozenset()) -> Any:
        """Where a replay of the account's book reads its history (without `skip_usage`)."""

    def save_book(self, account_id: int, book: AccountBook, snapshot: Snapshot) -> None: ...


class Checkpoints(Protocol):
    """WAL checkpoints beside the chunks' writes (store.wal_checkpoints)."""

    def __enter__(self) -> Checkpoints: ...

    def __exit__(self, kind: object, error: object, tb: object) -> None: ...

    def deferred(self, ingest: Any) -> AbstractContextManager[None]:
        """Within: the chunk's transaction commits without checkpointing."""

    def before_chunk(self) -> None:
        """Wait for the running checkpoint when the WAL file has grown too big."""


class IngestUnit(Transaction, Protocol):
    ingest: IngestStore
    accounts: Books
    outbox: Outbox
    plans: Plans

    def background_checkpoints(self, enabled: bool = True) -> Checkpoints:
        """WAL checkpoints on a thread of their own beside this unit of work's writes
        (nothing to do unless `enabled` on a SQLite file)."""


__all__ = ["Books", "Checkpoints", "IngestStore", "IngestUnit"]
