"""Writing the notification outbox: rows offered, each (line, cycle, kind) kept once.

A condition (a usage threshold crossed, a line throttled, a profile installed)
is notified once per line and bill cycle: the outbox's unique (line,
cycle_start, kind) keeps the first row and ignores the rest (ON CONFLICT DO
NOTHING), so every writer may offer what it finds without reading first.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert

from carryover.store.bulk_io import Raw
from carryover.store.bulk_update import insert_many
from carryover.store.webhook_tables import outbox

OUTBOX_COLUMNS = ("account_id", "line", "cycle_start", "kind", "at", "payload", "written_at")
_OFFER_PG = pg_insert(outbox).inline().on_conflict_do_nothing(
    index_elements=["line", "cycle_start", "kind"])


def offer(conn: Connection, rows: list[dict]) -> None:
    """Offer `rows` to the outbox, stamped with the time of writing; a (line,
    cycle_start, kind) already there is left as it is."""
    if not rows:
        return
    written = datetime.now(UTC)
    if conn.dialect.name == "postgresql":  # one statement, the rows as one JSON text
        insert_many(conn, _OFFER_PG, outbox, [{**row, "written_at": written} for row in rows],
                    "ON CONFLICT (line, cycle_start, kind) DO NOTHING")
        return
    # SQLite: an executemany on the driver, the instants and the JSON made here. Through
    # SQLAlchemy's typed executemany, binding them row by row was a third of an ingest
    # chunk's notifications; the text is what its Instant and JSON types write.
    raw = Raw(conn)
    instants = {at: raw.instant(at) for at in {row["at"] for row in rows}}  # a few per call
    stamp = raw.instant(written)
    raw.append_new("outbox", OUTBOX_COLUMNS,
                   [(row["account_id"], row["line"], row["cycle_start"], row["kind"],
                     instants[row["at"]], json.dumps(row["payload"]), stamp) for row in rows],
                   "line, cycle_start, kind")


class OutboxRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def offer(self, rows: list[dict]) -> None:
        offer(self.conn, rows)
