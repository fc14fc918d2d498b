"""The CLI's one error boundary: every failure ends as one line on stderr and an exit code.

A command refuses bad input itself (`common.fail`: exit 2). What escapes a
command is sorted here:
- an *expected* failure, one the user or the machine causes and can fix (the
  database cannot be opened or written: missing directory, read-only file,
  disk full, a server that refuses, a statement cancelled by the statement
  timeout on either backend; a file that is not UTF-8; any OSError),
  prints `carryover: <what>: <why>` and exits 2;
- anything else is a defect: one line naming it and how to see the traceback
  (CARRYOVER_DEBUG=1), exit 1.
An ingest stopped by either also prints what it had stored (services.ingest.chunks,
`IngestStopped`), so a re-run can be reasoned about. With CARRYOVER_DEBUG=1 the
traceback is printed first. No message carries a password: database URLs are
shown with it hidden, and any password of the configured URL is blanked out of
every line printed here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import sqlite3
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import typer
from sqlalchemy.engine import make_url
from typer.core import TyperGroup

# typer's and click's own exits and errors pass the boundary: each is already a line
# and an exit code (click's are typer's own classes on typer releases that vendor it).
_PASS: tuple[type[BaseException], ...] = (SystemExit, KeyboardInterrupt)
for _module in ("typer.exceptions", "typer._click.exceptions", "click.exceptions"):
    try:
        _found = __import__(_module, fromlist=["Exit"])
    except ImportError:
        continue
    _PASS += tuple(getattr(_found, n) for n in ("Exit", "Abort", "ClickException",
                                                "TyperException") if hasattr(_found, n))

DEBUG_VARIABLE = "CARRYOVER_DEBUG"
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]+@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&\s'\"]*", re.IGNORECASE)  # libpq takes it


class Expected(Exception):
    """A failure described for the user: `carryover: {what}: {why}`."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")
        self.what, self.why = what, why


class Guarded(TyperGroup):
    """The app's command group: a command's failure is reported here (`report`) and
    becomes its exit code, however the app is run (console script, tests' runner)."""

    def invoke(self, ctx):
        fit_console()
        try:
            return super().invoke(ctx)
        except _PASS:
            raise
        except Exception as exc:  # the boundary: everything else ends here
            raise typer.Exit(report(exc)) from exc


def fit_console() -> None:
    """Size the shared console for this invocation: the terminal's width, or COLUMNS
    (as `shutil` reads them). Rich reads them once, when the console is made; an
    invocation in the same process (a test runner, an embedding) must see its own."""
    from carryover.cli.common import console

    console.width = shutil.get_terminal_size().columns


def run(app: Callable[[], object]) -> None:
    """Run `app`; what escapes even its group (e.g. at import) meets the boundary too."""
    try:
        app()
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:
        sys.exit(report(exc))


def report(exc: BaseException) -> int:
    """Print `exc` as the boundary does; the exit code it earns."""
    if os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
        traceback.print_exception(exc, file=sys.stderr)
    stopped = _stopped(exc)
    cause = stopped.__cause__ if stopped is not None and stopped.__cause__ else exc
    described = describe(cause)
    if described is None:
        line = (f"carryover: unexpected error: {type(cause).__name__}: {_first_line(cause)} "
                f"(set {DEBUG_VARIABLE}=1 to see the traceback)")
        code = 1
    else:
        line, code = f"carryover: {described.what}: {described.why}", 2
    _say(line)
    if stopped is not None:
        _say(f"carryover: {stopped}")
    return code


def describe(exc: BaseException) -> Expected | None:
    """What the user should read for `exc`, or None if it is a defect."""
    for error in _chain(exc):
        found = _describe_one(error)
        if found is not None:
            return found
    return None


def _describe_one(exc: BaseException) -> Expected | None:
    from sqlalchemy.exc import OperationalError

    if isinstance(exc, Expected):
        return exc
    if isinstance(exc, OperationalError):
        return _database(exc.orig)
    if isinstance(exc, sqlite3.OperationalError) or _is_psycopg_operational(exc):
        return _database(exc)
    if isinstance(exc, UnicodeDecodeError):
        return Expected("input", f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                                 f"position {exc.start})")
    if isinstance(exc, OSError):
        what = exc.filename or "system"
        if exc.errno == errno.ENOSPC:
            return Expected(str(what), "no space left on the device (the disk is full)")
        return Expected(str(what), exc.strerror or str(exc))
    from carryover.adapters.cdr_files import CdrFileError
    if isinstance(exc, CdrFileError):
        text = str(exc)
        what, _, why = text.partition(": ")
        return Expected(what, why) if why else Expected("file", text)
    return None


def _database(orig: BaseException | None) -> Expected:
    from carryover.store.engine import STATEMENT_TIMEOUT, is_statement_timeout

    url, path = _configured_url()
    message = _first_line(orig) if orig is not None else "cannot be used"
    what = f"database {url}" if url else "database"
    if orig is not None and is_statement_timeout(orig):
        return Expected(what, STATEMENT_TIMEOUT)
    lowered = message.lower()
    if "unable to open database file" in lowered and path is not None:
        if not path.parent.is_dir():
            return Expected(what, f"cannot open it: the directory {path.parent} does not exist")
        if not os.access(path.parent, os.W_OK):
            return Expected(what, f"cannot open it: the directory {path.parent} is not "
                                  "writable")
    if "readonly" in lowered or "read-only" in lowered:
        return Expected(what, "it is read-only: carryover needs to write the database file "
                              "and its directory (for the -wal and -shm files)")
    if "disk is full" in lowered or "no space" in lowered:
        return Expected(what, "the disk is full (SQLite: database or disk is full)")
    return Expected(what, message)


def _is_psycopg_operational(exc: BaseException) -> bool:
    return any(k.__module__.startswith("psycopg") and k.__name__ == "OperationalError"
               for k in type(exc).__mro__)


def _configured_url() -> tuple[str | None, Path | None]:
    """The configured database URL with its password hidden, and a SQLite file's path."""
    try:
        from carryover.settings import get_settings
        url = make_url(get_settings().database_url)
    except Exception:
        return None, None
    path = (Path(url.database) if url.get_backend_name() == "sqlite" and url.database
            and url.database != ":memory:" else None)
    return url.render_as_string(hide_password=True), path


def _secrets() -> list[str]:
    found = []
    for text in (os.environ.get("CARRYOVER_DATABASE_URL"), _settings_url()):
        if not text:
            continue
        try:
            password = make_url(text).password
        except Exception:
            continue
        if password:
            found.append(str(password))
        with contextlib.suppress(Exception):
            query = make_url(text).query.get("password")
            found.extend([query] if isinstance(query, str) else list(query or ()))
    return found


def _settings_url() -> str | None:
    try:
        from carryover.settings import get_settings
        return get_settings().database_url
    except Exception:
        return None


def scrub(line: str) -> str:
    """`line` without a URL's password, nor the configured database password."""
    line = _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", line))
    for secret in _secrets():
        line = line.replace(secret, "***")
    return line


def _say(line: str) -> None:
    print(scrub(line), file=sys.stderr)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)


def _stopped(exc: BaseException):
    from carryover.services.ingest.chunks import IngestStopped
    for error in _chain(exc):
        if isinstance(error, IngestStopped):
            return error
    return None
