"""Receiving handleDownloadProgressInfo: the SM-DP+ reports a device's progress.

A notification moves the profile as states.next_state says (point 3 downloaded,
4 installed, 3 or 4 Failed error, 5 deleted and available again) and always
leaves a history row. The same notification twice is recognised by its key and
changes nothing. One that does not fit the profile's state (a late duplicate of
an earlier step, say) is kept in the history as not applied: the SM-DP+ has
nothing to correct, so it is still acknowledged.

One about an ICCID the inventory does not hold is refused (ES2+ 8.2.1 / 3.9) and
kept in the history under that ICCID, once however often the SM-DP+ retries it.

One that contradicts the order is refused: an EID other than the one the
profile is bound to (the EID its order was made for, or the device it was
downloaded to), no EID at all on a step that would move a bound profile, or a
profile type other than the profile's. A refused notification is kept in the
history too (outcome `refused`, with the reason), changes no state and emits no
webhook; the SM-DP+ gets the refusal as an ES2+ Failed status, again on a retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from carryover.domain.cycles import CycleCalendar
from carryover.domain.esim.download_progress import DownloadProgress
from carryover.domain.esim.states import IllegalTransition, ProfileState, Request, next_state
from carryover.domain.esim.status import StatusCode
from carryover.services.errors import NotFound
from carryover.services.esim.ports import EsimStore, EsimUnit


class UnknownProfile(NotFound):
    """A notification about an ICCID the operator does not hold."""


@dataclass(frozen=True, slots=True)
class Received:
    iccid: str
    outcome: str  # applied | duplicate | not applied | recorded | refused
    state: ProfileState
    refusal: StatusCode | None = None  # why a refused notification was refused


def contradiction(progress: DownloadProgress, profile_type: str,
                  bound_eid: str | None) -> StatusCode | None:
    """Why `progress` contradicts the profile and its order, if it does."""
    if progress.profile_type != profile_type:
        return StatusCode("8.2.5", "3.10", f"profile type {progress.profile_type!r} is not "
                          f"the profile's type {profile_type!r}", progress.iccid)
    if bound_eid is None:
        return None
    if progress.eid is None and progress.request() is not None:
        return StatusCode("8.1.1", "2.2", f"eid is missing: profile {progress.iccid} is bound "
                          f"to EID {bound_eid}", progress.iccid)
    if progress.eid is not None and progress.eid != bound_eid:
        return StatusCode("8.1.1", "3.10", f"EID {progress.eid} is not the EID profile "
                          f"{progress.iccid} is bound to", progress.eid)
    return None


def _bound_eid(repo: EsimStore, profile) -> str | None:
    """The EID the profile is downloaded to or ordered for (None: any device may take it)."""
    if profile.eid is not None:
        return profile.eid
    current = repo.open_order_for(profile.iccid)
    return None if current is None else current.eid


def _refused_again(prior) -> StatusCode | None:
    """The refusal a stored notification got, so that a retry gets the same answer."""
    if prior is None or prior.detail.get("outcome") != "refused":
        return None
    return StatusCode.from_json(prior.detail.get("refusal"))


UNKNOWN = "unknown ICCID {iccid}"


def _keep_unknown(uow: EsimUnit, repo: EsimStore, progress: DownloadProgress,
                  key: str, received_at: datetime, smdp: str | None) -> None:
    """Keep a notification about an ICCID outside the inventory as refused (once)."""
    refusal = StatusCode("8.2.1", "3.9", UNKNOWN.format(iccid=progress.iccid), progress.iccid)
    detail = {"point": progress.point_id, "point_name": progress.point_name,
              "status": progress.status, "eid": progress.eid,
              "profile_type": progress.profile_type,
              "timestamp": progress.timestamp.isoformat(), "outcome": "refused",
              "refusal": refusal.as_json()}
    if smdp is not None:
        detail["smdp"] = smdp
    if repo.add_event(progress.iccid, received_at, "notification",
                      f"point {progress.point_id} {progress.status}", None, None, detail,
                      dedupe_key=key):
        uow.commit()


def receive(uow: EsimUnit, progress: DownloadProgress, received_at: datetime,
            smdp: str | None = None) -> Received:
    """Apply (or record, or refuse) one notification; `smdp` names the authenticated sender."""
    with uow:
        repo = uow.esim
        profile = repo.profile(progress.iccid, lock=True)
        key = progress.key()
        if profile is None:
            _keep_unknown(uow, repo, progress, key, received_at, smdp)
            raise UnknownProfile(UNKNOWN.format(iccid=progress.iccid))
        before = ProfileState(profile.state)
        prior = repo.event_with_key(key)
        if prior is not None:
            again = _refused_again(prior)
            return Received(progress.iccid, "refused" if again else "duplicate", before, again)
        refusal = contradiction(progress, profile.profile_type, _bound_eid(repo, profile))
        request = None if refusal is not None else progress.request()
        after, outcome, note = before, "refused" if refusal else "recorded", None
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
        if smdp is not None:
            detail["smdp"] = smdp
        if refusal is not None:
            detail["refusal"] = refusal.as_json()
        if progress.profile_type != profile.profile_type:
            detail["profile_type"] = progress.profile_type
        if note:
            detail["note"] = note
        if not repo.add_event(progress.iccid, received_at, "notification",
                              f"point {progress.point_id} {progress.status}", before, after,
                              detail, dedupe_key=key):
            # A concurrent delivery of the same notification was stored first.
            return Received(progress.iccid, "refused" if refusal else "duplicate", before,
                            refusal)
        if after != before:
            eid = None if request is Request.DELETE else (progress.eid or profile.eid)
            repo.set_profile(progress.iccid, received_at, state=after, eid=eid)
            orders = repo.orders(iccid=progress.iccid) if after is ProfileState.INSTALLED else []
            if orders:
                uow.outbox.offer(installed_notice(repo, orders[-1].line_id, progress.iccid,
                                                  eid, received_at))
        uow.commit()
        return Received(progress.iccid, outcome, after, refusal)


def installed_notice(repo: EsimStore, line_id: str, iccid: str, eid: str | None,
                     at: datetime) -> list[dict]:
    """The outbox row saying the line's eSIM profile was installed on a device (kept
    once per line per cycle: the cycle is the account's, else the one `at` falls in)."""
    row = repo.line_account(line_id)
    if row is None:
        return []
    start = row.cycle_start
    if start is None or start > at:
        start = CycleCalendar(row.cycle_day, row.timezone).cycle_at(at)[0]
    payload = {"kind": "esim_installed", "line": line_id, "msisdn": row.msisdn,
               "account": row.name, "cycle_start": start.isoformat(), "at": at.isoformat(),
               "iccid": iccid, "eid": eid}
    return [{"account_id": row.id, "line": line_id, "cycle_start": start.isoformat(),
             "kind": "esim_installed", "at": at, "payload": payload}]
