"""API key cache (setting api_key_cache_seconds): lookups saved, revocation within the TTL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event

from carryover.runtime import Carryover
from carryover.services.access import api_keys
from carryover.settings import get_settings
from carryover.store.uow import UnitOfWork

JAN = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_cached_key_is_not_looked_up_again_until_it_expires(tmp_path: Path,
                                                              monkeypatch) -> None:
    engine = Carryover(get_settings(database_url=f"sqlite:///{tmp_path / 'c.db'}")).open()
    uow = UnitOfWork(engine)
    info, token = api_keys.create_key(uow, "operator", JAN)
    lookups = []
    event.listen(engine, "before_cursor_execute",
                 lambda *args: lookups.append(1) if "api_keys" in args[2] else None)
    clock = [1000.0]
    monkeypatch.setattr(api_keys.time, "monotonic", lambda: clock[0])
    cache = api_keys.KeyCache(5)
    assert api_keys.authenticate(uow, token, cache).key_id == info["id"]
    assert api_keys.authenticate(uow, token, cache).key_id == info["id"]
    assert len(lookups) == 1
    api_keys.revoke_key(uow, info["id"], JAN)
    clock[0] += 4.9  # within the lifetime: the revocation is not seen yet
    assert api_keys.authenticate(uow, token, cache) is not None
    clock[0] += 0.2  # past it: looked up again, and refused
    assert api_keys.authenticate(uow, token, cache) is None
    assert api_keys.authenticate(uow, token, cache) is None  # refusals are not cached
    # Without a cache (the default, 0 s) every check is a lookup.
    before = len(lookups)
    api_keys.authenticate(uow, token, api_keys.KeyCache(0))
    api_keys.authenticate(uow, token, None)
    assert len(lookups) == before + 2
