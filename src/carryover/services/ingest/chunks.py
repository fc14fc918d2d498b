"""`carryover ingest`: CDR files in chunks, one transaction per chunk, set-based rating.

For each chunk of good rows:
1. lines are resolved (id, MSISDN or IMSI) and the effective instant and lateness
   of every event computed per account calendar (docs/semantics.md,
   "Late usage"), vectorized;
2. the events are inserted first: the unique event id is the duplicate check (a
   count that comes up short falls back to an exact lookup), so re-ingesting a
   file, or the rest of a file after a crash, counts nothing twice;
3. accounts without a family pool whose events are in order or commute are rated
   together by the columnar fold (domain.columnar); the others go through their
   object book exactly as single events would;
4. buckets, ledger entries (debits aggregated per bucket per stretch), counters
   and cursors are written (only what changed), the chunk's notifications are
   offered (services.notify.chunk_notices) and the chunk commits. For a file (a
   `long_run`) on SQLite, the commit leaves the copy of its pages into the
   database file to a checkpoint thread (store.wal_checkpoints), which runs while
   the next chunk is rated.
The reads and writes are set-based, through the unit of work's ingest repository
(store.ingest_repository, `uow.ingest`; what the unit of work carries is
services.ingest.ports.IngestUnit); what they read and write is decided here.
`ingest_chunks` is given one unit of work and runs each chunk in a `with` block
of its own on it: one transaction per chunk.
The columnar state of the accounts rated so far stays in memory between chunks
(services.ingest.state_cache), checked against each account's version, so a chunk reads
only the accounts it has not seen. A SIGKILL loses at most the chunk in flight,
which a rerun then ingests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from carryover import gc_tuning
from carryover.domain import bounds
from carryover.domain.columnar.fold import ColumnarBook, Events
from carryover.domain.columnar.state import I64, UNIT_NAMES, UNITS, from_us, iso_key, to_us
from carryover.domain.inputs import HOTSPOT, Usage
from carryover.domain.lateness import late_mask
from carryover.services.ingest.state_cache import AccountCache
from carryover.services.ingest.total_bounds import REASON as TOTAL_REASON
from carryover.services.ingest.total_bounds import over_total
from carryover.services.ledger import time_window
from carryover.services.notify.chunk_notices import ChunkNotifier

if TYPE_CHECKING:
    from carryover.services.ingest.ports import IngestUnit
    from carryover.store.ingest_repository import LineDirectory


@dataclass
class IngestSummary:
    files: int = 0
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    rejected: int = 0
    lines: set[str] = field(default_factory=set)
    bulk_accounts: int = 0
    book_accounts: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"files": self.files, "rows": self.rows, "accepted": self.accepted,
                "duplicates": self.duplicates, "late": self.late, "rejected": self.rejected,
                "lines_touched": len(self.lines), "bulk_accounts": self.bulk_accounts,
                "book_accounts": self.book_accounts, "seconds": round(self.seconds, 3),
                "rows_per_second": round(self.rows / self.seconds) if self.seconds else None}


@dataclass(frozen=True)
class Committed:
    """What an ingest had stored when it stopped: the chunks whose transaction committed."""

    chunks: int = 0
    rows: int = 0                          # rows of those chunks (good, duplicate or rejected)
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    last: tuple[str, int, int] | None = None  # file, first and last row of the last chunk

    def __str__(self) -> str:
        if not self.chunks:
            return "nothing was stored (no chunk had committed)"
        file, first, last = self.last or ("?", 0, 0)
        return (f"stored before it stopped: {self.chunks:,} chunk(s), {self.rows:,} rows "
                f"({self.accepted:,} accepted, {self.duplicates:,} duplicates, "
                f"{self.rejected:,} rejected); the last committed chunk was {file} rows "
                f"{first:,}-{last:,}; the rows after it are not stored. Once the cause is "
                "fixed, the same command stores them (stored events count as duplicates)")


class IngestStopped(Exception):
    """An ingest failed part way (the cause is chained); `committed` says what is stored."""

    def __init__(self, committed: Committed) -> None:
        super().__init__(str(committed))
        self.committed = committed


def ingest_chunks(uow: IngestUnit, chunks: Iterable[tuple[str, object, list]], ref: str,
                  on_rejects: Callable[[list], None] | None = None,
                  progress: Callable[[int], None] | None = None,
                  long_run: bool = False,
                  on_commit: Callable[[Committed], None] | None = None) -> IngestSummary:
    """Ingest `chunks` ((file, chunk, rejects) each), one transaction per chunk (a `with
    uow:` block each).

    After each commit `on_commit` is told what is stored so far (`Committed`), so a
    caller whose run then fails can say it; the summary counts committed chunks only.

    `long_run`, for many big chunks (a file, from the CLI): on a SQLite file, each
    commit's pages are copied into the database file on a thread while the next chunk
    is rated (store.wal_checkpoints), and Python's collector runs less often
    (gc_tuning.fewer_collections; its thresholds are the process's, so only a caller
    that owns the process should ask). A small batch (the API) is better served by SQLite's own
    checkpoint at its commit, with no thread to start and wait for."""
    summary = IngestSummary()
    committed = Committed()
    directory = None
    notifier = ChunkNotifier()
    cache = AccountCache()
    with gc_tuning.fewer_collections() if long_run else contextlib.nullcontext(), \
            uow.background_checkpoints(enabled=long_run) as checkpoints:
        for n, (file, chunk, rejects) in enumerate(chunks):
            counted = (summary.accepted, summary.duplicates, summary.late)
            rows = len(chunk.amount) + len(rejects)
            bad = list(rejects)
            checkpoints.before_chunk()
            stored = False
            try:
                with uow, checkpoints.deferred(uow.ingest):
                    if directory is None:
                        directory = uow.ingest.line_directory()
                    more_bad = _ingest_chunk(uow, directory, file, chunk,
                                             f"{ref}#{n}", summary, notifier, cache)
                    uow.commit()
                    stored = True
            except BaseException:
                if not stored:  # rolled back: the summary counts only what is stored
                    summary.accepted, summary.duplicates, summary.late = counted
                    raise
                # Committed, then a step after it failed (e.g. putting a setting back
                # on a full disk): the chunk is stored and is said to be.
                _count_commit(summary, rows, bad, more_bad)
                committed = _committed(committed, summary, rows, file, chunk, bad)
                if on_commit:
                    on_commit(committed)
                raise
            _count_commit(summary, rows, bad, more_bad)
            committed = _committed(committed, summary, rows, file, chunk, bad)
            if on_commit:
                on_commit(committed)
            if on_rejects and bad:
                on_rejects(bad)
            if progress:
                progress(rows)
    return summary


def _count_commit(summary: IngestSummary, rows: int, bad: list, more_bad: list) -> None:
    summary.rows += rows
    bad.extend(more_bad)
    bad.sort(key=lambda r: r.row)  # file order, whichever step refused them
    summary.rejected += len(bad)


def _committed(before: Committed, summary: IngestSummary, rows: int, file: str, chunk,
               bad: list) -> Committed:
    return Committed(before.chunks + 1, before.rows + rows, summary.accepted,
                     summary.duplicates, summary.rejected,
                     (file, chunk.first_row, _last_row(chunk, bad)))


def _last_row(chunk, rejects: list) -> int:
    """The number of the last row read into `chunk` (good or rejected)."""
    last = int(chunk.row[-1]) if len(chunk.row) else chunk.first_row - 1
    return max([last, *(r.row for r in rejects)])


def _ingest_chunk(uow: IngestUnit, directory: LineDirectory, file: str, chunk, ref: str,
                  summary: IngestSummary, notifier: ChunkNotifier, cache: AccountCache):
    from carryover.adapters.cdr_files import Reject

    reads = uow.ingest.notice_reads()  # the chunk's notifier's (services.notify.chunk_notices)
    bad: list = []
    line = np.array([directory.index.get(x, -1) for x in chunk.line.tolist()], dtype=I64)
    unknown = line < 0
    opened = (directory.opened[np.where(unknown, 0, line)] if len(directory.opened)
              else np.zeros(len(line), dtype=I64))  # no line stored: every line is unknown
    before = ~unknown & (chunk.at < opened)
    # Nothing is booked for a future that has not happened (services.ledger.time_window).
    now, skew = time_window.now(), time_window.window().skew
    latest = to_us(now + skew)
    future = ~unknown & ~before & ((chunk.at > latest) | (chunk.received_at > latest))
    refused = np.flatnonzero(unknown | before | future).tolist()
    for i, (cells, original) in zip(refused, chunk.originals(refused), strict=True):
        if unknown[i]:
            why = f"line: unknown line {chunk.line[i]!r}"
        elif before[i]:
            why = "at: before the line started"
        else:
            field = "at" if chunk.at[i] > latest else "received_at"
            why = f"{field}: " + bounds.future_reason(
                from_us(int(getattr(chunk, field)[i])), now, skew)
        bad.append(Reject(file, int(chunk.row[i]), why, cells, original))
    # Within a chunk the first row of an event id counts; the others are duplicates.
    keep = ~unknown & ~before & ~future
    _, first = np.unique(chunk.event_id.astype(str), return_index=True)
    firsts = np.zeros(len(keep), dtype=bool)
    firsts[first] = True
    summary.duplicates += int((keep & ~firsts).sum())
    keep &= firsts
    kept = np.flatnonzero(keep)
    # A file ingested before (a re-run, the rest of a file after a crash) is found here,
    # before its accounts' state is read: a sample of the chunk's ids is looked up, and
    # only when one is stored are all of them. The insert below stays the exact check.
    if len(kept) and uow.ingest.stored_events(_sample(chunk.event_id[kept])).any():
        seen = uow.ingest.stored_events(chunk.event_id[kept].astype(str))
        summary.duplicates += int(seen.sum())
        keep[kept[seen]] = False
        kept = kept[~seen]
    too_much = over_total(uow.ingest.totals(), directory.ids[line[kept]], chunk.unit[kept],
                          chunk.amount[kept], UNIT_NAMES)
    over = kept[too_much].tolist()
    for i, (cells, original) in zip(over, chunk.originals(over), strict=True):
        bad.append(Reject(file, int(chunk.row[i]), f"bytes: {TOTAL_REASON}", cells, original))
    keep[kept[too_much]] = False
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return bad
    line = line[idx]
    account = directory.account[line]
    accounts, lines = cache.prepare(uow.ingest, np.unique(account).tolist())
    pos = {a: i for i, a in enumerate(accounts["id"])}
    at, received = chunk.at[idx], chunk.received_at[idx]
    acct = np.searchsorted(np.array(accounts["id"], dtype=I64), account)
    keys = [(c.cycle_day, c.timezone) for c in accounts["calendar"]]
    distinct = sorted(set(keys))
    number = {k: n for n, k in enumerate(distinct)}
    calendar_of = np.array([number[k] for k in keys], dtype=I64)[acct]
    from carryover.domain.cycles import CycleCalendar
    late = late_mask(at, received, calendar_of, [CycleCalendar(*k) for k in distinct],
                    np.array(accounts["grace_us"], dtype=I64)[acct])
    eff = np.where(late, received, at)
    event_ids = chunk.event_id[idx].astype(str)
    inserted = uow.ingest.insert_events(event_ids, account, directory.ids[line], at, received,
                                        eff, chunk.amount[idx], chunk.unit[idx],
                                        chunk.rating_group[idx], late)
    summary.duplicates += len(idx) - int(inserted.sum())
    if not inserted.all():
        line, account, eff, late = line[inserted], account[inserted], eff[inserted], late[inserted]
        idx, event_ids = idx[inserted], event_ids[inserted]
    summary.accepted += len(idx)
    summary.late += int(late.sum())
    summary.lines.update(directory.ids[line].tolist())
    _rate(uow, accounts, lines, pos, directory, line, account, eff, event_ids, chunk, idx, ref,
          summary, cache)
    if len(idx):
        # Each account at its own instant (where its book now stands), not at the chunk's
        # latest, which is some other account's.
        notifier.emit(uow.outbox, reads, np.unique(account).tolist(), None, uow.plans.all())
    return bad


PROBE = 64  # event ids of a chunk looked up before anything else


def _sample(event_ids: np.ndarray) -> np.ndarray:
    """Up to PROBE ids spread evenly over the chunk, its first and last among them."""
    picks = np.unique(np.linspace(0, len(event_ids) - 1, num=min(PROBE, len(event_ids)),
                                  dtype=I64))
    return event_ids[picks].astype(str)


def _rate(uow, accounts, lines, pos, directory, line, account, eff, event_ids, chunk, idx, ref,
          summary, cache: AccountCache) -> None:
    simple = np.array([not p for p in accounts["pool"]], dtype=bool)
    for _line_id, account_id, _, pending, member in lines:
        if pending or member:
            simple[pos[account_id]] = False
    acct = np.array([pos[a] for a in account.tolist()], dtype=I64)
    until = np.array(accounts["until"], dtype=I64)[acct]
    seg = np.array(accounts["segment_start"], dtype=I64)[acct]
    start = np.array(accounts["cycle_start"], dtype=I64)[acct]
    out_of_order = (eff < until) & ((eff < seg) | (eff < start))
    np.logical_and.at(simple, acct, ~out_of_order)
    fast = simple[acct]
    _rate_columnar(uow, accounts, lines, pos, simple, line[fast], acct[fast], eff[fast],
                   event_ids[fast], chunk, idx[fast], directory, ref, cache)
    summary.bulk_accounts += int(simple[np.unique(acct)].sum())
    slow_accounts = sorted({accounts["id"][a] for a in acct[~fast].tolist()})
    summary.book_accounts += len(slow_accounts)
    if slow_accounts:
        # Their books write the database directly: the cache would be stale.
        cache.evict(slow_accounts)
        _rate_books(uow, slow_accounts, directory, line[~fast], account[~fast], eff[~fast],
                    event_ids[~fast], chunk, idx[~fast], set(event_ids.tolist()))


def _rate_books(uow, account_ids, directory, line, account, eff, event_ids, chunk, idx,
                chunk_ids: set[str]) -> None:
    """The object-book path, for pools, pending plan changes and out-of-order events."""
    plans = uow.plans.all()
    for account_id in account_ids:
        row = uow.accounts.lock_account(account_id)
        book, snapshot = uow.accounts.load_book(row, plans)
        # This chunk's events are already in usage_events: a replay must only see the
        # ones folded so far (the book adds those from its own session).
        book.attach(uow.accounts.history_of(account_id, book.calendar, book.grace,
                                            skip_usage=chunk_ids))
        mine = np.flatnonzero(account == account_id)
        # Submitted together in (effective instant, id) order: the balances are those
        # of any order (replay equivalence), and the events that sort before what is
        # already folded share one replay of the account's history.
        order = sorted(mine.tolist(), key=lambda k: (int(eff[k]), event_ids[k]))
        items = []
        for k in order:
            i = idx[k]
            items.append(Usage(event_ids[k], directory.ids[line[k]], from_us(int(chunk.at[i])),
                               int(chunk.amount[i]), UNITS[int(chunk.unit[i])],
                               chunk.rating_group[i], from_us(int(chunk.received_at[i]))))
        for item, outcome in zip(items, book.submit_usage(items), strict=True):
            if outcome.status != "accepted":  # pragma: no cover - validated before
                raise RuntimeError(f"event {item.id} refused after validation: {outcome.reason}")
        uow.accounts.save_book(account_id, book, snapshot)


def _rate_columnar(uow, accounts, lines, pos, simple, line, acct, eff, event_ids, chunk, idx,
                   directory, ref, cache: AccountCache) -> None:
    chosen = [a for a in range(len(accounts["id"])) if simple[a]]
    if not chosen or len(line) == 0:
        return
    local = {a: k for k, a in enumerate(chosen)}
    my_lines = [r for r in lines if simple[pos[r[1]]]]
    line_index = {r[0]: k for k, r in enumerate(my_lines)}
    chosen_ids = [accounts["id"][a] for a in chosen]
    buckets = cache.buckets_of(chosen_ids, line_index)
    columnar = ColumnarBook(
        uow.plans.all(), [accounts["calendar"][a] for a in chosen],
        *(np.array([accounts[c][a] for a in chosen], dtype=I64)
          for c in ("cycle_start", "cycle_end", "until", "segment_start")),
        np.array([local[pos[r[1]]] for r in my_lines], dtype=I64),
        np.array([r[0] for r in my_lines], dtype=object), [r[2] for r in my_lines],
        buckets, ref)
    known = buckets.ids.copy()
    before = (buckets.remaining.copy(), buckets.closed.copy())
    ev_line = np.array([line_index[x] for x in directory.ids[line].tolist()], dtype=I64)
    columnar.rate(Events(ev_line, eff, chunk.amount[idx], chunk.unit[idx],
                     np.array([g == HOTSPOT for g in chunk.rating_group[idx].tolist()])))
    written, last_keys = _write_columnar(uow, columnar, chosen, accounts, my_lines, known, before,
                                         acct, local, eff, event_ids)
    cache.store(columnar, chosen_ids, columnar.line_ids, written, last_keys)


def _write_columnar(uow, columnar, chosen, accounts, my_lines, known, before, acct, local, eff,
                    event_ids) -> tuple[set[int], dict[int, list | None]]:
    """Write what the fold changed; returns the accounts whose cursor row was written
    and their stored last key."""
    # The cursor: last key = the largest (effective instant, usage rank, event id), found
    # with one sort rather than a comparison per event. Only accounts with events in this
    # chunk can have moved, so only their rows are written.
    last: dict[int, tuple] = {}
    if len(acct):
        order = np.lexsort((event_ids, eff, acct))
        tail = order[np.append(acct[order][1:] != acct[order][:-1], True)]
        last = {a: (e, Usage.rank, i) for a, e, i in zip(acct[tail].tolist(), eff[tail].tolist(),
                                                   event_ids[tail].tolist(), strict=True)}
    cursors = []
    written: set[int] = set()
    stored: dict[int, list | None] = {}
    for a in chosen:
        if a not in last:
            continue
        old = accounts["last_key"][a]
        old_key = None if old is None else (to_us(datetime.fromisoformat(old[0])), old[1], old[2])
        key = max((x for x in (last[a], old_key) if x is not None), default=None)
        account_id = accounts["id"][a]
        stored[account_id] = iso_key(key)
        written.add(account_id)
        cursors.append((local[a], account_id, stored[account_id]))
    uow.ingest.save_fold(columnar, len(known), before,
                         np.array([r[1] for r in my_lines], dtype=I64),
                         np.array([r[0] for r in my_lines], dtype=object), cursors)
    return written, stored


__all__ = ["Committed", "IngestStopped", "IngestSummary", "ingest_chunks"]
