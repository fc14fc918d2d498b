"""`carryover serve --workers N`: with more than one worker the rate limit moves to the database."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from carryover.cli import app


@pytest.mark.parametrize(("workers", "store", "expected"), [
    (1, None, None), (2, None, "database"), (4, "memory", "memory"),
    (2, "database", "database")])
def test_workers_pick_the_shared_store(tmp_path, monkeypatch, workers, store, expected):
    import uvicorn

    monkeypatch.setenv("CARRYOVER_DATABASE_URL", f"sqlite:///{tmp_path / 'serve.db'}")
    # setenv first, so the variable serve sets is removed again after the test.
    monkeypatch.setenv("CARRYOVER_API_RATE_LIMIT_STORE", store or "auto")
    if store is None:
        monkeypatch.delenv("CARRYOVER_API_RATE_LIMIT_STORE")
    seen = {}

    def run(*args, **kwargs):
        seen["store"] = os.environ.get("CARRYOVER_API_RATE_LIMIT_STORE")
        seen["workers"] = kwargs["workers"]
    monkeypatch.setattr(uvicorn, "run", run)
    result = CliRunner().invoke(app, ["serve", "--workers", str(workers)])
    assert result.exit_code == 0, result.output
    assert seen == {"store": expected, "workers": workers}
