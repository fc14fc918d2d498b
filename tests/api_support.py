"""A served API on loopback with a small world: accounts, lines and one key per role.

- `acme`: a plain account, lines `a1` (+14155550101) and `a2`, both on
  travel-5gb-30d, opened 2026-01-01T00:00Z.
- `fam`: a family account on att-mobile-share-15gb with member lines `f1`, `f2`.
- `other`: a plain account with line `o1`.
- `travel-self-5gb`: travel-5gb-30d offered for self-service (`self_service: true`),
  the one plan a subscriber key may move its lines to.
Keys: `operator`, `acme` (subscriber of acme), `other` (subscriber of other).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from carryover.api.app import create_app
from carryover.runtime import Carryover
from carryover.services.access import api_keys
from carryover.services.ledger import catalog, provisioning
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork
from tests.loopback import serving

JAN = datetime(2026, 1, 1, tzinfo=UTC)
PLAN = "travel-5gb-30d"
POOL = "att-mobile-share-15gb"
SELF_SERVICE = "travel-self-5gb"


@dataclass
class Api:
    url: str
    engine: Any
    tokens: dict[str, str]
    client: httpx.Client
    app: Any = None

    def call(self, method: str, path: str, who: str | None = "operator",
             **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return self.client.request(method, self.url + path, headers=headers, **kwargs)


def populate(engine: Any) -> dict[str, str]:
    with UnitOfWork(engine) as uow:
        body = {**catalog.preset_bodies()[PLAN], "id": SELF_SERVICE, "self_service": True}
        uow.plans.add_version(SELF_SERVICE, body, "file", JAN)
        uow.commit()
    provisioning.create_account(UnitOfWork(engine), "acme", 1, "UTC", JAN)
    provisioning.create_line(UnitOfWork(engine), "acme", "+14155550101", JAN, PLAN, line_id="a1")
    provisioning.create_line(UnitOfWork(engine), "acme", "+14155550102", JAN, PLAN, line_id="a2")
    provisioning.create_account(UnitOfWork(engine), "fam", 1, "UTC", JAN, POOL)
    provisioning.create_line(UnitOfWork(engine), "fam", "+14155550201", JAN, line_id="f1")
    provisioning.create_line(UnitOfWork(engine), "fam", "+14155550202", JAN, line_id="f2")
    provisioning.create_account(UnitOfWork(engine), "other", 1, "UTC", JAN)
    provisioning.create_line(UnitOfWork(engine), "other", "+14155550301", JAN, PLAN, line_id="o1")
    tokens = {"operator": api_keys.create_key(UnitOfWork(engine), "operator", JAN)[1]}
    for name in ("acme", "fam", "other"):
        tokens[name] = api_keys.create_key(UnitOfWork(engine), "subscriber", JAN, name)[1]
    return tokens


@contextmanager
def served_api(db_url: str, **settings: Any) -> Iterator[Api]:
    settings.setdefault("api_rate_per_second", 0)
    carry = Carryover(get_settings(database_url=db_url, **settings))
    engine = carry.open()
    tokens = populate(engine)
    app = create_app(carry)
    with serving(app) as url, httpx.Client(timeout=30) as client:
        yield Api(url, engine, tokens, client, app)
    engine.dispose()
