"""The composition root: one Carryover builds each shared part once, and the app uses it.

The API's key cache, limiter, metrics and charging queue are the Carryover's, so a
test (or the CLI) holding the Carryover sees what the served app counted, and
the app's shutdown stops the charging queue's threads.
"""

from __future__ import annotations

import threading

import httpx

from carryover.api.app import create_app
from carryover.runtime import Carryover
from carryover.settings import get_settings
from tests.loopback import serving


def charging_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("carryover-charging-")]


def test_each_shared_part_is_built_once(db_url):
    carry = Carryover(get_settings(database_url=db_url))
    assert carry.key_cache is carry.key_cache
    assert carry.limiter is carry.limiter
    assert carry.metrics is carry.metrics
    queue = carry.charging()
    assert carry.charging() is queue
    carry.close()
    assert carry.charging() is not queue  # a use after close starts a new queue
    carry.close()


def test_the_served_metrics_are_the_carryovers(db_url):
    carry = Carryover(get_settings(database_url=db_url))
    carry.metrics.top_ups.labels("data").inc(3)
    with serving(create_app(carry)) as url:
        scraped = httpx.get(f"{url}/metrics").text
    assert 'carryover_top_ups_total{unit="data"} 3.0' in scraped


def test_closing_stops_the_charging_threads(db_url):
    carry = Carryover(get_settings(database_url=db_url))
    before = set(charging_threads())
    queue = carry.charging()
    queue._lanes[0]._start()  # a lane's thread starts with its first request
    assert set(charging_threads()) - before
    carry.close()
    assert not set(charging_threads()) - before


def test_an_smdp_factory_given_to_the_app_makes_the_clients():
    made = object()
    carry = Carryover()
    create_app(carry, smdp_factory=lambda: made)
    assert carry.smdp_client() is made
