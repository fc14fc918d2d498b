"""The notification decision on a book in memory (domain.notices): no store, no clock.

Hand derivations: tmobile-data-stash-10gb grants 10 GB a cycle, throttles to
128 kbps past it and rolls unused allowance into the stash; January 2026, UTC.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from carryover.domain.buckets import Bucket
from carryover.domain.inputs import OpenLine, TopUp, Usage
from carryover.domain.notices import (
    ThresholdError,
    alert_thresholds,
    notices,
    owner_facts,
    plan_in_force,
)
from carryover.domain.plan_versions import PlanVersion
from carryover.domain.plans import BucketKind, OverageAction
from tests.unit.rules_support import DATA, GB, at, new_book, submit

STASH = "tmobile-data-stash-10gb"


def kinds(found) -> list[tuple[str, str]]:
    return [(line, kind) for line, kind, _ in found]


def test_thresholds_then_throttled_then_a_top_up():
    book = new_book()
    submit(book, OpenLine("o", "ann", at(1, 1), STASH), OpenLine("o2", "bob", at(1, 1), STASH))
    assert notices(book, at(1, 2)) == []
    submit(book, Usage("e1", "ann", at(1, 2), 8 * GB, DATA))
    assert kinds(notices(book, at(1, 2))) == [("ann", "usage_50"), ("ann", "usage_80")]
    submit(book, Usage("e2", "ann", at(1, 3), 3 * GB, DATA))  # 11 GB of 10: 1 GB overage
    found = notices(book, at(1, 3))
    assert kinds(found) == [("ann", "usage_50"), ("ann", "usage_80"), ("ann", "usage_100"),
                            ("ann", "throttled")]
    assert found[-1][2] == {"used": 11 * GB, "plan": STASH, "kbps": 128}
    submit(book, TopUp("t1", "ann", at(1, 4), GB, DATA, 30))
    assert ("ann", "throttled") not in kinds(notices(book, at(1, 4)))
    # `at` is a parameter: before the top-up was valid the line had nothing left.
    assert ("ann", "throttled") in kinds(notices(book, at(1, 3, 12)))


def test_a_lines_picked_thresholds_replace_the_defaults_for_it_alone():
    book = new_book()
    submit(book, OpenLine("o", "ann", at(1, 1), STASH), OpenLine("o2", "bob", at(1, 1), STASH))
    submit(book, Usage("e1", "ann", at(1, 2), 7 * GB, DATA),
           Usage("e2", "bob", at(1, 2), 7 * GB, DATA))
    found = notices(book, at(1, 2), thresholds={"ann": (10, 70, 75)})
    assert kinds(found) == [("ann", "usage_10"), ("ann", "usage_70"), ("bob", "usage_50")]
    assert found[1][2] == {"used": 7 * GB, "allowance": 10 * GB, "threshold": 70}


def test_a_choice_of_thresholds_is_checked():
    assert alert_thresholds([100, 1, 50, 50]) == (1, 50, 100)
    for bad in ([], [0], [101], [2.0], ["5"], [None], [False], [1, 2, 3, 4, 5, 6]):
        with pytest.raises(ThresholdError):
            alert_thresholds(bad)


def test_rollover_credited_in_the_new_cycle_and_expiring_near_its_end():
    book = new_book(day=1)
    submit(book, OpenLine("o", "ann", at(1, 1), STASH),
           Usage("e1", "ann", at(1, 10), 3 * GB, DATA), Usage("e2", "ann", at(2, 2), 1, DATA))
    found = dict(((line, kind), numbers) for line, kind, numbers in notices(book, at(2, 2)))
    assert found[("ann", "rollover_credited")] == {"amount": 7 * GB, "from_pool": 0}
    assert ("ann", "rollover_expiring") not in found  # the deposit lasts 12 months


def test_closed_buckets_from_the_store_still_count_for_the_cycle():
    """A book loads open buckets only: a pack that expired mid-cycle is passed in."""
    book = new_book()
    submit(book, OpenLine("o", "ann", at(1, 1), STASH))
    expired = Bucket("ann/data/pack/x", "ann", DATA, BucketKind.ALLOWANCE, 4 * GB, at(1, 1),
                     at(1, 5), 20, False, remaining=0, closed=True)
    facts = owner_facts([*book.buckets.values(), expired], book.cycle_start, book.cycle_end,
                        at(1, 6))
    assert facts["ann"]["allowance"] == 14 * GB
    submit(book, Usage("e1", "ann", at(1, 6), 6 * GB, DATA))
    assert kinds(notices(book, at(1, 6))) == [("ann", "usage_50")]  # 6 of 10 GB
    assert kinds(notices(book, at(1, 6), [expired])) == []  # 6 of 14 GB: under 50 %
    # The book's own copy of a bucket wins over a stored one with the same id.
    stale = Bucket(next(iter(book.buckets)), "ann", DATA, BucketKind.ALLOWANCE, 100 * GB,
                   at(1, 1), at(2, 1), 20, True, remaining=0, closed=True)
    assert kinds(notices(book, at(1, 6), [stale])) == [("ann", "usage_50")]


def test_throttled_or_blocked_follows_the_plan_version_in_force_at_the_notice():
    # A version that blocks instead of throttling, loaded on Jan 3 to start at the next
    # boundary (Feb 1): January's notice follows the version in force in January.
    book = new_book()
    submit(book, OpenLine("o", "ann", at(1, 1), STASH))
    submit(book, Usage("e1", "ann", at(1, 2), 11 * GB, DATA))
    current = book.plans[STASH]
    blocking = replace(current, overage=replace(current.overage, action=OverageAction.BLOCK,
                                                throttle_kbps=None))
    book.use_plans(book.plans.with_version(
        PlanVersion(blocking, 2, recorded_at=at(1, 3), next_boundary_after=at(1, 3))))
    assert book.plans[STASH] is blocking  # the latest version is the blocking one
    found = dict(((line, kind), numbers) for line, kind, numbers in notices(book, at(1, 3)))
    assert ("ann", "blocked") not in found
    assert found[("ann", "throttled")] == {"used": 11 * GB, "plan": STASH, "kbps": 128}
    # From the boundary on the new version decides.
    later = plan_in_force(book.plans, at(2, 1), book.calendar)(STASH)
    assert later is not None and later.overage.action is OverageAction.BLOCK
    assert plan_in_force(book.plans, at(2, 1), book.calendar)("no-such-plan") is None
