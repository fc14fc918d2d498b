"""Receiving handleDownloadProgressInfo: the SM-DP+ reports a device's progress.

A notification moves the profile as states.next_state says (point 3 downloaded,
4 installed, 3 or 4 Failed error, 5 deleted and available again) and always
leaves a history row. The same notification twice is recognised by its key and
changes nothing. One that does not fit the profile's state (a late duplicate of
an earlier step, say) is kept in the history as not applied: the SM-DP+ has
nothing to correct, so it is still acknowledged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from carryover.domain.esim.notifications import DownloadProgress
from carryover.domain.esim.states import IllegalTransition, ProfileState, Request, next_state
from carryover.services.errors import NotFound
from carryover.services.notifications import emit_esim_installed
from carryover.store.esim_repository import EsimRepository
from carryover.store.uow import UnitOfWork


class UnknownProfile(NotFound):
    """A notification about an ICCID the operator does not hold."""


@dataclass(frozen=True, slots=True)
class Received:
    iccid: str
    outcome: str  # applied | duplicate | not applied | recorded
    state: ProfileState


def receive(engine: Engine, progress: DownloadProgress, received_at: datetime) -> Received:
    with UnitOfWork(engine) as uow:
        repo = EsimRepository(uow.conn)
        profile = repo.profile(progress.iccid, lock=True)
        if profile is None:
            raise UnknownProfile(f"unknown ICCID {progress.iccid}")
        before = ProfileState(profile.state)
        key = progress.key()
        if repo.seen(key):
            return Received(progress.iccid, "duplicate", before)
        request = progress.request()
        after, outcome, note = before, "recorded", None
        if request is not None:
            try:
                after = next_state(before, request)
                outcome = "applied"
            except IllegalTransition as exc:
                outcome, note = "not applied", str(exc)
        detail = {"point": progress.point_id, "point_name": progress.point_name,
                  "status": progress.status, "eid": progress.eid,
                  "timestamp": progress.timestamp.isoformat(), "outcome": outcome}
        if progress.status_code is not None:
            detail["status_code"] = progress.status_code.as_json()
        if progress.profile_type != profile.profile_type:
            detail["profile_type"] = progress.profile_type
        if note:
            detail["note"] = note
        if not repo.add_event(progress.iccid, received_at, "notification",
                              f"point {progress.point_id} {progress.status}", before, after,
                              detail, dedupe_key=key):
            return Received(progress.iccid, "duplicate", before)
        if after != before:
            eid = None if request is Request.DELETE else (progress.eid or profile.eid)
            repo.set_profile(progress.iccid, received_at, state=after, eid=eid)
            orders = repo.orders(iccid=progress.iccid) if after is ProfileState.INSTALLED else []
            if orders:
                emit_esim_installed(uow.conn, orders[-1].line_id, progress.iccid, eid,
                                    received_at)
        uow.commit()
        return Received(progress.iccid, outcome, after)
