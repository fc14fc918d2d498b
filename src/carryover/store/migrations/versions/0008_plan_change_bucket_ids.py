"""Allowances granted by a plan change are named after the change: `...~<ref>`.

Before this revision an allowance granted by a plan change was called
`owner/unit/allowance/<instant>` unless a bucket of that name was already in the
book, when `~<ref>` was appended. Whether it was depended on what the book held
in memory: a stored book holds only live buckets, a replay every bucket, so the
two could name one bucket differently, and a second change in the same second
collided with a closed bucket in the table (a 500). Now the name is a function
of the input alone (domain.boundary.grant_allowances): every plan change's
allowance carries `~<ref>`. This revision renames the stored ones that lack it,
in `buckets` (and what points at them: `ledger_entries.bucket_id`, the `origin`
of rollover deposits and gifts made from them), so a replay after the upgrade
names them as they are stored. Downgrading renames them back where the short
name is free.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "carryover_0008"
down_revision: str | None = "carryover_0007"

_buckets = sa.table("buckets", sa.column("account_id", sa.Integer), sa.column("id", sa.String),
                    sa.column("kind", sa.String), sa.column("origin", sa.String))
_entries = sa.table("ledger_entries", sa.column("account_id", sa.Integer),
                    sa.column("bucket_id", sa.String))
_inputs = sa.table("inputs", sa.column("account_id", sa.Integer),
                   sa.column("input_id", sa.String), sa.column("kind", sa.String))


def _changes(conn: sa.Connection) -> list[tuple[int, str, str]]:
    """(account, bucket id, change id) of every allowance a plan change granted."""
    rows = conn.execute(
        sa.select(_buckets.c.account_id, _buckets.c.id, _buckets.c.origin)
        .select_from(_buckets.join(_inputs, sa.and_(
            _inputs.c.account_id == _buckets.c.account_id,
            _inputs.c.input_id == _buckets.c.origin)))
        .where(_buckets.c.kind == "allowance", _inputs.c.kind == "change_plan")
        .order_by(_buckets.c.account_id, _buckets.c.id))
    return [(r.account_id, r.id, r.origin) for r in rows]


def _rename(conn: sa.Connection, account: int, old: str, new: str) -> None:
    conn.execute(sa.update(_buckets).where(_buckets.c.account_id == account,
                                           _buckets.c.id == old).values(id=new))
    conn.execute(sa.update(_entries).where(_entries.c.account_id == account,
                                           _entries.c.bucket_id == old).values(bucket_id=new))
    conn.execute(sa.update(_buckets).where(_buckets.c.account_id == account,
                                           _buckets.c.origin == old).values(origin=new))


def upgrade() -> None:
    conn = op.get_bind()
    for account, bucket_id, ref in _changes(conn):
        if not bucket_id.endswith(f"~{ref}"):
            _rename(conn, account, bucket_id, f"{bucket_id}~{ref}")


def downgrade() -> None:
    conn = op.get_bind()
    taken = {(r.account_id, r.id) for r in conn.execute(
        sa.select(_buckets.c.account_id, _buckets.c.id))}
    for account, bucket_id, ref in _changes(conn):
        short = bucket_id.removesuffix(f"~{ref}")
        if short != bucket_id and (account, short) not in taken:
            _rename(conn, account, bucket_id, short)
            taken.add((account, short))
