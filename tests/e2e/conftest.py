"""Every CLI test gets its own SQLite file, never ./carryover.db of the working tree."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _own_database(tmp_path, monkeypatch):
    monkeypatch.setenv("CARRYOVER_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
