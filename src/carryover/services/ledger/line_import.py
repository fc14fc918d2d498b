"""`carryover line import`: provisioning lines in bulk from a CSV file.

Columns: msisdn, imsi (may be empty), account, plan (may be empty for a member of
a family account), start (ISO 8601; without an offset, local to the account).
Accounts that do not exist are created with the default bill-cycle day and
timezone. Each line is opened by folding an OpenLine input, exactly as
`carryover line create` does; new accounts are folded in memory and written in
bulk (store.line_import_repository, `uow.line_import`), existing ones through
their stored book. Bad rows are rejected with
their row number and reason; the good rows of the file are imported, in chunks
of one transaction each (one `with uow:` block of the unit of work given).
"""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from carryover.domain.book import AccountBook
from carryover.domain.cycles import CycleCalendar
from carryover.domain.inputs import DEFAULT_GRACE, OpenLine
from carryover.services.ledger import time_window

if TYPE_CHECKING:
    from carryover.services.ledger.ports import LedgerUnit

E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # as provisioning.E164
IMSI = re.compile(r"[0-9]{15}")
COLUMNS = ("msisdn", "imsi", "account", "plan", "start")


REASON_COLUMNS = ("file", "row", "reason")  # a rejects file's own: not the row's


@dataclass
class ImportSummary:
    rows: int = 0
    imported: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    accounts_created: int = 0
    seconds: float = 0.0
    header: list[str] = field(default_factory=list)        # the file's, as written
    originals: dict[int, list[str]] = field(default_factory=dict)  # rejected rows' fields

    def as_dict(self) -> dict:
        return {"rows": self.rows, "imported": self.imported, "rejected": len(self.rejected),
                "accounts_created": self.accounts_created, "seconds": round(self.seconds, 3)}

    def write_rejects(self, path: Path, source: Path) -> None:
        """The rejected rows as CSV, in file order: file, row, reason, then the original
        row's fields under the original header (a rejects file's own reason columns left out),
        so the file can be fixed and imported again as it is."""
        keep = [i for i, name in enumerate(self.header)
                if name.strip().lower() not in REASON_COLUMNS]
        with path.open("w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle, lineterminator="\n")
            out.writerow([*REASON_COLUMNS, *(self.header[i] for i in keep)])
            for row, reason in sorted(self.rejected):
                # The fields as the row had them: a short row is not padded, fields
                # past the header are kept.
                fields = self.originals.get(row, [])
                out.writerow([str(source), row, reason,
                              *(fields[i] for i in keep if i < len(fields)),
                              *fields[len(self.header):]])


class LineFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, not UTF-8, a missing column)."""


def read_rows(path: Path, summary: ImportSummary | None = None,
              ) -> Iterator[tuple[int, dict]]:
    """Rows numbered from 1, keyed by column name in lower case (headers match in any
    case); `summary` keeps the header and each row's original fields for rejects."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                return
            names = [h.strip().lower() for h in header]
            missing = [c for c in COLUMNS if c not in names]
            if missing:
                raise LineFileError(f"{path}: missing column(s) {', '.join(missing)}")
            if summary is not None:
                summary.header = header
            for number, fields in enumerate(reader, start=1):
                if not any(f.strip() for f in fields):
                    continue  # a blank line
                if summary is not None:
                    summary.originals[number] = fields
                row = {k: (v or "").strip() for k, v in zip(names, fields, strict=False) if k}
                yield number, {c: row.get(c, "") for c in COLUMNS}
    except UnicodeDecodeError as exc:
        raise LineFileError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                            f"offset {exc.start})") from exc


def import_lines(uow: LedgerUnit, path: Path, cycle_day: int, timezone: str, now: datetime,
                 chunk_rows: int = 20_000,
                 progress: Callable[[int], None] | None = None) -> ImportSummary:
    CycleCalendar(cycle_day, timezone)  # refuse bad defaults before reading anything
    summary = ImportSummary()
    batch: list[tuple[int, dict]] = []
    for item in read_rows(path, summary):
        batch.append(item)
        if len(batch) >= chunk_rows:
            _import_chunk(uow, batch, cycle_day, timezone, now, summary)
            _forget_imported(summary)
            if progress:
                progress(len(batch))
            batch = []
    if batch:
        _import_chunk(uow, batch, cycle_day, timezone, now, summary)
        if progress:
            progress(len(batch))
    _forget_imported(summary)
    summary.rejected.sort()
    return summary


def _forget_imported(summary: ImportSummary) -> None:
    """Only the rejected rows' original fields are kept (memory stays one chunk's)."""
    rejected = {row for row, _ in summary.rejected}
    summary.originals = {k: v for k, v in summary.originals.items() if k in rejected}


def _instant(text: str, tz, now: datetime) -> datetime:
    if not text:
        return now
    value = datetime.fromisoformat(text)
    return (value.replace(tzinfo=tz) if value.tzinfo is None else value).astimezone(UTC)


def _import_chunk(uow: LedgerUnit, rows: list[tuple[int, dict]], cycle_day: int, timezone: str,
                  now: datetime, summary: ImportSummary) -> None:
    summary.rows += len(rows)
    with uow:
        store = uow.line_import
        plans = uow.plans.all()
        existing = store.accounts()
        # Line ids, MSISDNs (with and without +) and IMSIs are one namespace
        # (provisioning.create_line): a new MSISDN or IMSI may be none of them.
        taken = store.taken_identifiers()
        new_accounts: dict[str, AccountBook] = {}
        by_old_account: dict[int, list[OpenLine]] = {}
        line_rows = []
        for number, row in rows:
            msisdn, imsi, account, plan = (row["msisdn"], row["imsi"] or None, row["account"],
                                           row["plan"] or None)
            problem = None
            if not E164.fullmatch(msisdn):
                problem = f"msisdn: {msisdn!r} is not an E.164 number (+ and at most 15 digits)"
            elif imsi is not None and not IMSI.fullmatch(imsi):
                problem = f"imsi: {imsi!r} is not 15 digits"
            elif not account:
                problem = "account: missing"
            elif plan is not None and plan not in plans:
                problem = f"plan: unknown plan {plan!r}"
            msisdn = msisdn if msisdn.startswith("+") else "+" + msisdn
            if problem is None and (msisdn in taken or msisdn.lstrip("+") in taken):
                problem = f"msisdn: {msisdn} is already the id, MSISDN or IMSI of a line"
            elif problem is None and imsi and (imsi in taken or imsi == msisdn.lstrip("+")):
                problem = f"imsi: {imsi} is already the id, MSISDN or IMSI of a line"
            if problem is None:
                info = existing.get(account)
                tz_name = info[2] if info else timezone
                try:
                    start = _instant(row["start"], CycleCalendar(1, tz_name).tz, now)
                    time_window.check_write("start", start, what="the line")
                except time_window.OutOfWindow as exc:
                    problem = str(exc)
                except (ValueError, OverflowError):
                    problem = f"start: {row['start']!r} is not an ISO 8601 instant"
            if problem is None and plan is None and not (info and info[3]):
                problem = "plan: a line outside a family account needs a plan"
            if problem is not None:
                summary.rejected.append((number, problem))
                continue
            taken.update((msisdn, msisdn.lstrip("+")))
            if imsi:
                taken.add(imsi)
            line_id = f"ln_{uuid.uuid4().hex[:12]}"
            member = bool(info and info[3])
            item = OpenLine(f"open:{line_id}", line_id, start, plan, member=member)
            if info is None:
                book = new_accounts.get(account)
                if book is None:
                    book = new_accounts[account] = AccountBook(
                        CycleCalendar(cycle_day, timezone), plans, DEFAULT_GRACE)
                outcome = book.submit(item)
            else:
                by_old_account.setdefault(info[0], []).append(item)
                outcome = None
            if outcome is not None and outcome.status != "accepted":
                summary.rejected.append((number, outcome.reason or "refused"))
                continue
            line_rows.append((line_id, account, msisdn, imsi, start, plan, member))
        ids = store.create_accounts(sorted(new_accounts), cycle_day, timezone, DEFAULT_GRACE,
                                    now)
        summary.accounts_created += len(ids)
        account_id = {**{k: v[0] for k, v in existing.items()}, **ids}
        store.add_lines([(lid, account_id[acc], ms, im, st, pl, mem)
                         for lid, acc, ms, im, st, pl, mem in line_rows])
        recorded = datetime.now(UTC)  # imports run from the CLI: recorded as its action
        store.save_new_books(ids, new_accounts, recorded)
        for acct, items in sorted(by_old_account.items()):
            row = uow.accounts.lock_account(acct)
            book, snapshot = uow.accounts.load_book(row, plans)
            for item in items:
                book.submit(item)
            uow.accounts.save_book(acct, book, snapshot)
            for item in items:
                uow.accounts.record(acct, item, book.calendar, book.grace, "cli", recorded)
        uow.commit()
        summary.imported += len(line_rows)

