"""WAL checkpoints on a thread of their own, beside a bulk writer (SQLite only).

In WAL mode a commit appends the changed pages to the `-wal` file, and SQLite's
automatic checkpoint (at a commit that leaves more than 1,000 pages in it)
copies them back into the database file and syncs it, inside that commit. For
an ingest chunk that has changed a few hundred megabytes of pages, that copy is
the chunk's commit: about a tenth of the ingest, during which nothing else
happens.

`BackgroundCheckpoints` turns the automatic checkpoint off on the writer's
connection for the duration of each chunk (`deferred`), and after each commit
asks a thread with its own connection for a PASSIVE checkpoint, which copies
the committed pages while the writer rates the next chunk. SQLite runs the
checkpoint with the GIL released, so it uses the second core. Nothing about
durability changes: the commit is in the WAL either way, and with
synchronous=NORMAL the database is synced at each checkpoint, whichever connection
runs it.

A WAL file only starts again from its beginning when a write transaction
begins after a complete checkpoint. A writer that never waits would grow it by
every chunk it writes, so when the file has passed `wal_limit` bytes the next
chunk waits for the running checkpoint before it begins (`before_chunk`). And
`close` waits for the last one, so an ingest returns with its pages in the
database file, as the automatic checkpoint would leave them.

`carryover ingest` uses it (services.ingest.chunks, `long_run`); a small API
batch does not, as its own commit's checkpoint is short. On PostgreSQL, on an
in-memory SQLite database, or when not `enabled`, every method does nothing.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from sqlalchemy import Engine

if TYPE_CHECKING:
    from carryover.store.ingest_repository import IngestRepository

WAL_LIMIT = 512 * 1024 * 1024  # bytes of -wal file before a chunk waits for the checkpoint


class CheckpointError(RuntimeError):
    """The checkpoint thread failed (the cause is chained: a full disk, an I/O error)."""


class BackgroundCheckpoints:
    """PASSIVE checkpoints after each commit of a bulk writer, on a thread."""

    def __init__(self, engine: Engine, enabled: bool = True) -> None:
        database = engine.url.database or ""
        self.active = (enabled and engine.dialect.name == "sqlite"
                       and database not in ("", ":memory:")
                       and "mode=memory" not in str(engine.url))
        self.engine = engine
        self.wal_path = f"{database}-wal"
        self.wal_limit = WAL_LIMIT
        self._wanted = threading.Condition()
        self._pending = False
        self._running = False
        self._closing = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> BackgroundCheckpoints:
        if self.active:
            self._thread = threading.Thread(target=self._work, name="wal-checkpoints",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        # The thread is joined on every way out. When the writer is already failing,
        # its error is the one to report (a full disk fails the checkpoint too).
        self.close(report=error is None)

    @contextlib.contextmanager
    def deferred(self, ingest: IngestRepository) -> Iterator[None]:
        """Within: the connection of `ingest` (a unit of work's ingest repository)
        commits without checkpointing; on the way out (commit or not) its setting is put
        back, and a checkpoint is asked for."""
        if not self.active:
            yield
            return
        raw = ingest.raw
        before = raw.run("PRAGMA wal_autocheckpoint")[0][0]
        raw.run("PRAGMA wal_autocheckpoint = 0")
        try:
            yield
        finally:
            raw.run(f"PRAGMA wal_autocheckpoint = {int(before)}")
            self._ask()

    def before_chunk(self) -> None:
        """Wait for the running checkpoint if the WAL file has grown past the limit, so
        the next transaction can start the file again from its beginning."""
        if not self.active:
            return
        self._raise_error()
        try:
            size = os.path.getsize(self.wal_path)
        except FileNotFoundError:
            return
        if size > self.wal_limit:
            self._wait_idle()

    def close(self, report: bool = True) -> None:
        """Stop the thread once it has run the checkpoint last asked for; then raise
        its error, if it had one (unless not `report`)."""
        if self._thread is None:
            return
        with self._wanted:
            self._closing = True
            self._wanted.notify_all()
        self._thread.join()
        self._thread = None
        if report:
            self._raise_error()

    def _ask(self) -> None:
        with self._wanted:
            self._pending = True
            self._wanted.notify_all()

    def _wait_idle(self) -> None:
        with self._wanted:
            self._wanted.wait_for(lambda: (not self._pending and not self._running)
                                  or self._error is not None)

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise CheckpointError("background WAL checkpoint failed") from error

    def _work(self) -> None:
        connection = None
        try:
            # Its own pooled connection (the engine's PRAGMAs), used only by this thread.
            connection = self.engine.raw_connection()
            while True:
                with self._wanted:
                    self._wanted.wait_for(lambda: self._pending or self._closing)
                    if not self._pending:
                        return
                    self._pending, self._running = False, True
                cursor = connection.cursor()
                try:
                    self._checkpoint(cursor)
                finally:
                    cursor.close()
                with self._wanted:
                    self._running = False
                    self._wanted.notify_all()
        except BaseException as error:  # reported to the writer at its next chunk
            with self._wanted:
                self._error, self._running = error, False
                self._wanted.notify_all()
        finally:
            if connection is not None:
                connection.close()

    def _checkpoint(self, cursor) -> None:
        # PASSIVE: copies what no reader still needs, and never waits for a lock.
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
