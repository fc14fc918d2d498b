"""The columnar state of the accounts an ingest run has rated, kept between chunks.

Each chunk of `carryover ingest` needs the cursor, lines and live buckets of
every account it touches. With heavy-tailed traffic most accounts come back in
every chunk, and reading their state again (and turning rows into columns) cost
as much as rating them. The state each chunk writes is exactly what the next
chunk would read back, so the run keeps it: cursors and lines per account, and
the live buckets of every account without a family pool as one `Buckets` table
whose `line` column indexes the run's line table.

Nothing is trusted blindly. Every write to an account's book bumps
`accounts.version` (the ingest's own cursor update too), so each chunk locks its
accounts and reads their versions (one small query) and reloads any account that
another writer changed since. Accounts rated through their object book in a chunk are
dropped, as are all but the chunk's accounts when the table grows past a bound
(memory stays bounded whatever the file's length). Losing the cache only costs a
reload; a crash loses nothing, since the database is written every chunk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from carryover.domain.columnar.fold import ColumnarBook
from carryover.domain.columnar.state import I64, Buckets

if TYPE_CHECKING:
    from carryover.services.ingest.ports import IngestStore

FIELDS = ("calendar", "grace_us", "cycle_start", "cycle_end", "until", "segment_start",
          "last_key", "pool")


class AccountCache:
    # About 300 bytes per cached bucket and 1 KB per cached account: the bounds keep the
    # cache under ~350 MB next to the chunk in flight (1 GB budget for the process).
    def __init__(self, max_buckets: int = 600_000, max_accounts: int = 150_000) -> None:
        self.max_buckets, self.max_accounts = max_buckets, max_accounts
        self.accounts: dict[int, dict] = {}  # id -> FIELDS, "version", "lines"
        self.line_of: dict[str, int] = {}  # line id -> index in the run's line table
        self.line_account: list[int] = []  # line index -> account id
        self.b = Buckets.empty()  # live buckets of cached accounts; `line` = run line index

    # ---- reading -------------------------------------------------------------------
    def prepare(self, store: IngestStore, account_ids: list[int]
                ) -> tuple[dict, list[tuple]]:
        """The accounts (columns, by id) and their lines (by account, id), as
        `store.load_accounts` and `load_lines` would read them now."""
        store.name_accounts(account_ids)
        # The chunk's accounts are locked before anything of them is read, as every other
        # writer does (AccountRepository.lock_account, the Nchf batches), so no writer's
        # update is lost to a chunk that read the state before it.
        versions = store.lock_versions()
        stale = [a for a in account_ids
                 if a not in self.accounts or self.accounts[a]["version"] != versions.get(a)]
        self.evict([a for a in stale if a in self.accounts])
        loaded: dict[int, dict] = {}
        if stale:
            store.name_accounts(stale)
            cols = store.load_accounts()
            by_account: dict[int, list[tuple]] = {}
            for row in store.load_lines():
                by_account.setdefault(row[1], []).append(row)
            for k, a in enumerate(cols["id"]):
                loaded[a] = {f: cols[f][k] for f in (*FIELDS, "version")}
                loaded[a]["lines"] = by_account.get(a, [])
            simple = [a for a, rec in loaded.items() if not rec["pool"]
                      and not any(r[3] or r[4] for r in rec["lines"])]
            self._load(store, simple, loaded)
        records = [(a, self.accounts.get(a) or loaded[a]) for a in sorted(account_ids)
                   if a in self.accounts or a in loaded]
        accounts = {"id": [a for a, _ in records]}
        for f in FIELDS:
            accounts[f] = [rec[f] for _, rec in records]
        lines = [row for _, rec in records for row in rec["lines"]]
        return accounts, lines

    def _load(self, store: IngestStore, simple: list[int], loaded: dict[int, dict]) -> None:
        if not simple:
            return
        index: dict[str, int] = {}
        for a in simple:
            self.accounts[a] = loaded[a]
            for row in loaded[a]["lines"]:
                index[row[0]] = self.line_of[row[0]] = len(self.line_account)
                self.line_account.append(a)
        store.name_accounts(simple)
        self.b = self.b.append(store.load_buckets(index))

    def buckets_of(self, account_ids: list[int], line_index: dict[str, int]) -> Buckets:
        """The cached live buckets of these accounts, `line` re-indexed by `line_index`."""
        rows = self._rows_of(account_ids)
        local = np.full(len(self.line_account), -1, dtype=I64)
        for name, k in line_index.items():
            if name in self.line_of:
                local[self.line_of[name]] = k
        out = self.b.take(rows)
        out.line = local[out.line]
        return out

    def _rows_of(self, account_ids: list[int]) -> np.ndarray:
        if len(self.b) == 0:
            return np.zeros(0, dtype=I64)
        owner = np.asarray(self.line_account, dtype=I64)[self.b.line]
        return np.flatnonzero(np.isin(owner, np.asarray(account_ids, dtype=I64)))

    # ---- writing -------------------------------------------------------------------
    def store(self, columnar: ColumnarBook, account_ids: list[int], line_ids: np.ndarray,
              written: set[int], last_keys: dict[int, list | None]) -> None:
        """Take the state `columnar` left for `account_ids` (its accounts, in its order) after
        the chunk wrote it; `written`: the accounts whose cursor row was updated."""
        keep = np.ones(len(self.b), dtype=bool)
        keep[self._rows_of(account_ids)] = False
        b = columnar.b.take(np.flatnonzero(~columnar.b.closed))
        b.line = np.array([self.line_of[x] for x in line_ids.tolist()], dtype=I64)[b.line] \
            if len(b) else b.line
        b.new = np.zeros(len(b), dtype=bool)
        self.b = self.b.take(np.flatnonzero(keep)).append(b)
        for k, a in enumerate(account_ids):
            rec = self.accounts[a]
            for f in ("cycle_start", "cycle_end", "until", "segment_start"):
                rec[f] = int(getattr(columnar, f)[k])
            if a in written:
                rec["last_key"] = last_keys[a]
                rec["version"] += 1
        if len(self.b) > self.max_buckets or len(self.accounts) > self.max_accounts:
            keep = set(account_ids)
            self.evict([a for a in self.accounts if a not in keep])

    def evict(self, account_ids: list[int]) -> None:
        if not account_ids:
            return
        gone = set(account_ids) & set(self.accounts)
        if not gone:
            return
        rows = self._rows_of(sorted(gone))
        keep = np.ones(len(self.b), dtype=bool)
        keep[rows] = False
        self.b = self.b.take(np.flatnonzero(keep))
        for a in gone:
            for row in self.accounts.pop(a)["lines"]:
                self.line_of.pop(row[0], None)
        if len(self.line_account) > 2 * len(self.line_of) + 1000:
            self._compact_lines()

    def _compact_lines(self) -> None:
        """Renumber the line table without the lines of evicted accounts."""
        new = np.full(len(self.line_account), -1, dtype=I64)
        names = sorted(self.line_of, key=self.line_of.__getitem__)
        old = np.array([self.line_of[x] for x in names], dtype=I64)
        new[old] = np.arange(len(names), dtype=I64)
        self.line_account = [self.line_account[i] for i in old.tolist()]
        self.line_of = {x: k for k, x in enumerate(names)}
        self.b.line = new[self.b.line]
