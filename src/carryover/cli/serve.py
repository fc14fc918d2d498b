"""`carryover serve`: the HTTP API (REST, docs/api.md; ES2+ callbacks) under uvicorn.

The database is migrated before the server starts, so a database carryover
cannot use is refused with one line instead of a traceback per worker. Each
worker builds its own app from the settings (carryover.api.app), and runs the
webhook delivery worker unless `webhook_worker` is off (carryover.api.worker).
With more than one worker, `api_rate_limit_store=auto` means the database, so
the workers share each key's rate limit.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from carryover.cli import app
from carryover.cli.common import app_object, console, engine

_STORE_VARIABLE = "CARRYOVER_API_RATE_LIMIT_STORE"


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1,
                                         help="Worker processes.")] = 1,
) -> None:
    """Run the HTTP API: REST with API keys (docs/api.md) and the SM-DP+'s ES2+ callbacks."""
    import uvicorn

    engine()
    console.print(f"carryover API on http://{host}:{port} "
                  f"({app_object().settings.redacted_url()})", highlight=False)
    previous = os.environ.get(_STORE_VARIABLE)
    if workers > 1 and app_object().settings.api_rate_limit_store == "auto":
        # Each worker reads its settings from the environment it inherits: one budget
        # per key for all of them, not one per worker (carryover.api.deps).
        os.environ[_STORE_VARIABLE] = "database"
    try:
        uvicorn.run("carryover.api.app:app_from_environment", factory=True, host=host,
                    port=port, workers=workers,
                    access_log=app_object().settings.api_access_log)
    finally:  # leave the environment as it was (tests run serve in-process)
        if previous is None:
            os.environ.pop(_STORE_VARIABLE, None)
        else:
            os.environ[_STORE_VARIABLE] = previous
