"""`carryover ingest`: CDR files in chunks, one transaction per chunk, set-based rating.

A chunk is what one transaction takes: one read of the file (a `Chunk` of the
reader), or with `transaction_rows` several consecutive reads of one file. For each
read, as it comes (`_admit`):
1. lines are resolved (id, MSISDN or IMSI), refused rows set aside, and stored event
   ids found first (a sample, then all when one is stored), before anything of the
   accounts is read;
2. the effective instant and lateness of every event computed per account calendar
   (docs/semantics.md, "Late usage"), vectorized, and the events inserted: the unique
   event id is the exact duplicate check (a count that comes up short falls back to
   an exact lookup), so re-ingesting a file, or the rest of a file after a crash,
   counts nothing twice. The read is then let go: only the accepted events' compact
   columns stay (`_Pending`).
At the chunk's end, once (`_settle`):
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
of its own on it.
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
                  on_commit: Callable[[Committed], None] | None = None,
                  transaction_rows: int | None = None) -> IngestSummary:
    """Ingest `chunks` ((file, chunk, rejects) each), one transaction (a `with uow:`
    block) per chunk, or, with `transaction_rows`, per run of consecutive chunks of one
    file holding at least that many rows (the last one fewer).

    A transaction of several chunks checks and inserts each chunk's events as it comes
    (the chunk's columns are then let go: only the accepted events' compact columns stay)
    and rates, writes and notifies once, at its end: the lines an ingest touches are
    written once per transaction, not once per chunk. The chunk iterator is advanced
    inside the transaction, so it must not write the database itself (the CLI's reader
    only reads the file); one that does (a test interleaving other writers) leaves
    `transaction_rows` unset.

    After each commit `on_commit` is told what is stored so far (`Committed`), so a
    caller whose run then fails can say it; the summary counts committed transactions only.

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
    feed = iter(chunks)
    held = None  # a chunk read inside a transaction that belongs to the next one
    n = 0
    with gc_tuning.fewer_collections() if long_run else contextlib.nullcontext(), \
            uow.background_checkpoints(enabled=long_run) as checkpoints:
        while True:
            if held is None:  # read between transactions, where the feed may write
                held = next(feed, None)
                if held is None:
                    break
            counted = (summary.accepted, summary.duplicates, summary.late)
            took = _Took(held[0], held[1].first_row)
            checkpoints.before_chunk()
            stored = False
            try:
                with uow, checkpoints.deferred(uow.ingest):
                    if directory is None:
                        directory = uow.ingest.line_directory()
                    pending = _Pending()
                    while True:
                        file, chunk, rejects = held
                        took.add(chunk, rejects)
                        took.bad.extend(_admit(uow, directory, file, chunk, summary,
                                               cache, pending))
                        held = chunk = None  # let the chunk go before the next is read
                        if transaction_rows is None or took.rows >= transaction_rows:
                            break
                        held = next(feed, None)
                        if held is None or held[0] != took.file:
                            break
                    _settle(uow, directory, pending, f"{ref}#{n}", summary, notifier, cache)
                    uow.commit()
                    stored = True
            except BaseException:
                if not stored:  # rolled back: the summary counts only what is stored
                    summary.accepted, summary.duplicates, summary.late = counted
                    raise
                # Committed, then a step after it failed (e.g. putting a setting back
                # on a full disk): the chunk is stored and is said to be.
                _count_commit(summary, took)
                committed = _committed(committed, summary, took)
                if on_commit:
                    on_commit(committed)
                raise
            n += 1
            _count_commit(summary, took)
            committed = _committed(committed, summary, took)
            if on_commit:
                on_commit(committed)
            if on_rejects and took.bad:
                on_rejects(took.bad)
            if progress:
                progress(took.rows)
    return summary


@dataclass
class _Took:
    """The chunks one transaction took: their file, rows and rejects."""

    file: str
    first_row: int
    rows: int = 0  # good, duplicate or rejected
    last_row: int = 0
    bad: list = field(default_factory=list)

    def add(self, chunk, rejects: list) -> None:
        self.rows += len(chunk.amount) + len(rejects)
        self.last_row = max(self.last_row, _last_row(chunk, rejects))
        self.bad.extend(rejects)


@dataclass
class _Pending:
    """The events a transaction's chunks accepted so far, as aligned compact columns."""

    parts: list[dict[str, np.ndarray]] = field(default_factory=list)
    # The accounts and lines a read's `AccountCache.prepare` gave, and how many reads
    # prepared any: with one (a chunk of one read, the default) they are the chunk's.
    prepared: tuple[dict, list] | None = None
    prepared_reads: int = 0

    def add(self, **columns: np.ndarray) -> None:
        self.parts.append(columns)

    def column(self, name: str) -> np.ndarray:
        if not self.parts:
            return np.zeros(0, dtype=I64)
        return np.concatenate([p[name] for p in self.parts])

    def take(self) -> dict[str, np.ndarray]:
        """All the columns, concatenated; the parts are let go (half the memory)."""
        if not self.parts:
            return {}
        names = list(self.parts[0])
        out = {}
        for name in names:
            out[name] = np.concatenate([p.pop(name) for p in self.parts])
        self.parts = []
        return out


def _count_commit(summary: IngestSummary, took: _Took) -> None:
    summary.rows += took.rows
    took.bad.sort(key=lambda r: r.row)  # file order, whichever step refused them
    summary.rejected += len(took.bad)


def _committed(before: Committed, summary: IngestSummary, took: _Took) -> Committed:
    return Committed(before.chunks + 1, before.rows + took.rows, summary.accepted,
                     summary.duplicates, summary.rejected,
                     (took.file, took.first_row, took.last_row))


def _last_row(chunk, rejects: list) -> int:
    """The number of the last row read into `chunk` (good or rejected)."""
    last = int(chunk.row[-1]) if len(chunk.row) else chunk.first_row - 1
    return max([last, *(r.row for r in rejects)])


def _admit(uow: IngestUnit, directory: LineDirectory, file: str, chunk,
           summary: IngestSummary, cache: AccountCache, pending: _Pending) -> list:
    """Check one chunk's rows and insert its good events; add them to `pending` (the
    transaction's accepted events). Returns the rows refused."""
    from carryover.adapters.cdr_files import Reject

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
    keep &= _firsts(chunk.event_id)
    summary.duplicates += int((~unknown & ~before & ~future).sum() - keep.sum())
    kept = np.flatnonzero(keep)
    # A file ingested before (a re-run, the rest of a file after a crash) is found here,
    # before its accounts' state is read: a sample of the chunk's ids is looked up, and
    # only when one is stored are all of them. The insert below stays the exact check
    # (and catches an id an earlier chunk of the same transaction inserted).
    if len(kept) and uow.ingest.stored_events(_sample(chunk.event_id[kept])).any():
        seen = uow.ingest.stored_events(chunk.event_id[kept])
        summary.duplicates += int(seen.sum())
        keep[kept[seen]] = False
        kept = kept[~seen]
    # Checked with the transaction's accepted events before this chunk's: their totals
    # are not stored until the transaction's end.
    earlier_line, earlier_unit = pending.column("line"), pending.column("unit")
    too_much = over_total(uow.ingest.totals(),
                          np.concatenate([earlier_line, line[kept]]), directory.ids,
                          np.concatenate([earlier_unit, chunk.unit[kept]]),
                          np.concatenate([pending.column("amount"), chunk.amount[kept]]),
                          UNIT_NAMES)[len(earlier_line):]
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
    pending.prepared, pending.prepared_reads = (accounts, lines), pending.prepared_reads + 1
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
    event_ids = chunk.event_id[idx]
    inserted = uow.ingest.insert_events(event_ids, account, directory.ids[line], at, received,
                                        eff, chunk.amount[idx], chunk.unit[idx],
                                        chunk.rating_group[idx], late)
    summary.duplicates += len(idx) - int(inserted.sum())
    idx = idx[inserted]
    summary.accepted += len(idx)
    summary.late += int(late[inserted].sum())
    summary.lines.update(directory.ids[line[inserted]].tolist())
    pending.add(line=line[inserted], account=account[inserted], eff=eff[inserted],
                event_id=event_ids[inserted], at=at[inserted], received=received[inserted],
                amount=chunk.amount[idx], unit=chunk.unit[idx],
                rating_group=chunk.rating_group[idx])
    return bad


def _firsts(event_ids: np.ndarray) -> np.ndarray:
    """True at the first row of each event id (file order)."""
    first: dict = {}
    ids = event_ids.tolist()
    marks = [first.setdefault(e, i) == i for i, e in enumerate(ids)]
    return np.array(marks, dtype=bool)


def _settle(uow: IngestUnit, directory: LineDirectory, pending: _Pending, ref: str,
            summary: IngestSummary, notifier: ChunkNotifier, cache: AccountCache) -> None:
    """Rate, write and notify the transaction's accepted events, once."""
    ev = pending.take()
    if not ev or len(ev["eff"]) == 0:
        return
    reads = uow.ingest.notice_reads()  # the notifier's (services.notify.chunk_notices)
    touched = np.unique(ev["account"]).tolist()
    # One read: its accounts are the chunk's, prepared already. Several: the union is
    # prepared once more (all cached by now, and locked: one query, no reload).
    accounts, lines = (pending.prepared if pending.prepared_reads == 1
                       else cache.prepare(uow.ingest, touched))
    pos = {a: i for i, a in enumerate(accounts["id"])}
    _rate(uow, accounts, lines, pos, directory, ev, ref, summary, cache)
    # Each account at its own instant (where its book now stands), not at the chunk's
    # latest, which is some other account's.
    notifier.emit(uow.outbox, reads, touched, None, uow.plans.all())


PROBE = 64  # event ids of a chunk looked up before anything else


def _sample(event_ids: np.ndarray) -> np.ndarray:
    """Up to PROBE ids spread evenly over the chunk, its first and last among them."""
    picks = np.unique(np.linspace(0, len(event_ids) - 1, num=min(PROBE, len(event_ids)),
                                  dtype=I64))
    return event_ids[picks]


def _rate(uow, accounts, lines, pos, directory, ev: dict[str, np.ndarray], ref, summary,
          cache: AccountCache) -> None:
    """Rate the events `ev` (aligned columns: line, account, eff, event_id, at, received,
    amount, unit, rating_group): the columnar fold for accounts it covers, each other
    account's object book."""
    account, eff = ev["account"], ev["eff"]
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
    every = bool(fast.all())  # the usual case: no copy of the columns
    _rate_columnar(uow, accounts, lines, pos, simple, acct if every else acct[fast],
                   ev if every else {k: v[fast] for k, v in ev.items()}, directory, ref, cache)
    summary.bulk_accounts += int(simple[np.unique(acct)].sum())
    slow_accounts = sorted({accounts["id"][a] for a in acct[~fast].tolist()})
    summary.book_accounts += len(slow_accounts)
    if slow_accounts:
        # Their books write the database directly: the cache would be stale.
        cache.evict(slow_accounts)
        _rate_books(uow, slow_accounts, directory, {k: v[~fast] for k, v in ev.items()},
                    set(ev["event_id"].tolist()))


def _rate_books(uow, account_ids, directory, ev: dict[str, np.ndarray],
                chunk_ids: set[str]) -> None:
    """The object-book path, for pools, pending plan changes and out-of-order events."""
    plans = uow.plans.all()
    account, eff, event_ids = ev["account"], ev["eff"], ev["event_id"]
    for account_id in account_ids:
        row = uow.accounts.lock_account(account_id)
        book, snapshot = uow.accounts.load_book(row, plans)
        # This transaction's events are already in usage_events: a replay must only see
        # the ones folded so far (the book adds those from its own session).
        book.attach(uow.accounts.history_of(account_id, book.calendar, book.grace,
                                            skip_usage=chunk_ids))
        mine = np.flatnonzero(account == account_id)
        # Submitted together in (effective instant, id) order: the balances are those
        # of any order (replay equivalence), and the events that sort before what is
        # already folded share one replay of the account's history.
        order = sorted(mine.tolist(), key=lambda k: (int(eff[k]), event_ids[k]))
        items = [Usage(event_ids[k], directory.ids[ev["line"][k]], from_us(int(ev["at"][k])),
                       int(ev["amount"][k]), UNITS[int(ev["unit"][k])], ev["rating_group"][k],
                       from_us(int(ev["received"][k])))
                 for k in order]
        for item, outcome in zip(items, book.submit_usage(items), strict=True):
            if outcome.status != "accepted":  # pragma: no cover - validated before
                raise RuntimeError(f"event {item.id} refused after validation: {outcome.reason}")
        uow.accounts.save_book(account_id, book, snapshot)


def _rate_columnar(uow, accounts, lines, pos, simple, acct, ev: dict[str, np.ndarray],
                   directory, ref, cache: AccountCache) -> None:
    chosen = [a for a in range(len(accounts["id"])) if simple[a]]
    if not chosen or len(acct) == 0:
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
    local_line = np.full(len(directory.ids), -1, dtype=I64)  # directory index -> fold's
    for name, k in line_index.items():
        if name in directory.index:  # a line opened after the run began has no events here
            local_line[directory.index[name]] = k
    hotspot = np.asarray(ev["rating_group"] == HOTSPOT, dtype=bool)
    columnar.rate(Events(local_line[ev["line"]], ev["eff"], ev["amount"], ev["unit"], hotspot))
    written, last_keys = _write_columnar(uow, columnar, chosen, accounts, my_lines, known, before,
                                         acct, local, ev["eff"], ev["event_id"])
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
