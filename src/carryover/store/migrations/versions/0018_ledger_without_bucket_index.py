"""The ledger loses its index on (account_id, bucket_id): `ix_ledger_account_bucket`.

No query looks a ledger entry up by its bucket: the ledger is read one account at a
time (its entries in booking order, or summed per bucket within the account), which
`ix_ledger_account_effective` serves by its account_id prefix, or scanned whole by
kind. The index only cost writes: an ingest inserts every entry into it, a key of a
bucket id of about 50 characters (about 16 MB per 230,000 entries on SQLite). No
row changes. See carryover.store.tables.ledger_entries.

The downgrade creates the index again.
"""

from __future__ import annotations

from alembic import op

revision: str = "carryover_0018"
down_revision: str | None = "carryover_0017"

INDEX = "ix_ledger_account_bucket"


def upgrade() -> None:
    op.drop_index(INDEX, table_name="ledger_entries")


def downgrade() -> None:
    op.create_index(INDEX, "ledger_entries", ["account_id", "bucket_id"])
