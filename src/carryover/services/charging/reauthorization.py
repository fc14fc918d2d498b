"""Which open charging sessions to ask for re-authorization after a change.

A change of an account (an input through the API or the CLI, or an Nchf batch)
knows the account's open sessions that gave a notifyUri (the *watched* sessions)
and the standing of their lines before it (domain/standing.py). After it, every
watched session of a line whose standing moved is owed a ChargingNotifyRequest,
written in the same transaction (uow.reauthorizations) and delivered by
services.charging.reauthorization_delivery. The session whose request made the
change is not asked (its answer is the new standing); in an Nchf batch each
request is one change, as if answered alone, so a session answered early in a
batch is asked when a later request moves its line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from carryover.domain.book import AccountBook
from carryover.domain.sessions import ChargingSession
from carryover.domain.standing import Standing, moved, standings


def before(book: AccountBook, watched: Sequence[ChargingSession]) -> dict[str, Standing]:
    """The standings to compare with after the change (none without watched sessions)."""
    if not watched or book.until is None:
        return {}
    return standings(book, {s.line for s in watched}, book.until)


def owed(book: AccountBook, watched: Sequence[ChargingSession],
         was: Mapping[str, Standing], why: str, by: str | None = None
         ) -> tuple[list[dict], dict[str, Standing]]:
    """The re-authorizations owed after the change `why` (a few words: "top-up t1")
    made by session `by` (None: not a session), and the standings now."""
    if not was or book.until is None:
        return [], dict(was)
    now = standings(book, was.keys(), book.until)
    lines = set(moved(was, now))
    created = datetime.now(UTC)
    return [{"ref": s.ref, "notify_uri": s.notify_uri, "reason": f"{s.line}: {why}"[:200],
             "rating_groups": sorted({int(rg) for rg, _ in s.last_result}),
             "created_at": created}
            for s in watched if s.line in lines and s.ref != by], now
