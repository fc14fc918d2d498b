"""The HTTP application: one FastAPI app over the shared Carryover object.

`create_app(carry)` builds it around an app object (tests pass their own);
`app_from_environment` is the factory `carryover serve` gives uvicorn, so each
worker process reads the settings itself. Each resource is its own router.
"""

from __future__ import annotations

from fastapi import FastAPI

from carryover.api import es2plus
from carryover.runtime import Carryover


def create_app(carry: Carryover) -> FastAPI:
    app = FastAPI(title="carryover", summary="Exact balances for eSIM mobile plans.")
    app.state.carry = carry
    app.include_router(es2plus.router)
    return app


def app_from_environment() -> FastAPI:
    return create_app(Carryover())
