"""eSIM orders for lines: order a profile, look it up, cancel it, move it to a new device.

An order runs as ES2+ downloadOrder, then confirmOrder with releaseFlag true, so
the profile is released for download at once and the activation code can be
handed out. The SM-DP+ is called between short transactions, never inside one:
the profile is first held by a new order row (so no other order takes it), then
each answer is recorded as it comes. An order that fails is closed with the
reason and its profile is given back.

Each use case takes a unit of work (`EsimUnit`, services.esim.ports) and opens one
short transaction on it after another (`with uow: ...`), never one across a
call to the SM-DP+.

The line owns the balance, not the profile (docs/esim.md, "Moving a line to a new
device"): nothing here touches an account's book, so a move keeps every bucket,
stash deposit and usage record.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from carryover.domain.esim import confirmation
from carryover.domain.esim.activation import ActivationCode
from carryover.domain.esim.identifiers import IdentifierError, parse_eid, parse_iccid
from carryover.domain.esim.states import LIVE, ON_DEVICE, IllegalTransition, Request, next_state
from carryover.domain.esim.states import ProfileState as S
from carryover.services.errors import NotFound, ServiceError
from carryover.services.esim.ports import (
    AVAILABLE,
    SMDP_FAILURES,
    EsimStore,
    EsimUnit,
    Smdp,
    SmdpError,
)


@dataclass(frozen=True, slots=True)
class OrderResult:
    line: str
    iccid: str
    eid: str | None
    matching_id: str
    activation_code: ActivationCode
    confirmation_code: str | None  # shown once, never stored

    def as_dict(self) -> dict:
        return {"line": self.line, "iccid": self.iccid, "eid": self.eid,
                "matching_id": self.matching_id,
                "activation_code": self.activation_code.format(),
                "qr": self.activation_code.qr_text(),
                "confirmation_code": self.confirmation_code}


def _eid(value: str | None) -> str | None:
    try:
        return None if value is None else parse_eid(value)
    except IdentifierError as exc:
        raise ServiceError(str(exc)) from exc


def _line(uow: EsimUnit, ident: str):
    row = uow.accounts.find_line(ident)
    if row is None:
        raise NotFound(f"unknown line {ident!r} (give a line id, an MSISDN or an IMSI)")
    return row


def _record(repo: EsimStore, iccid: str, request: Request, at: datetime, detail: dict,
            target: S) -> S:
    """Record that the SM-DP+ executed `request`: the profile is now in `target` there.

    The SM-DP+ is the authority on its profiles; when our copy was out of step (a
    notification not yet received) the history row says so instead of failing.
    """
    row = repo.profile(iccid, lock=True)
    before = S(row.state)
    try:
        next_state(before, request, with_eid=target is S.LINKED,
                   release=target is S.RELEASED, final=target)
    except (IllegalTransition, ValueError):
        detail = {**detail, "out_of_step": f"our copy said {before}"}
    repo.set_profile(iccid, at, state=target)
    repo.add_event(iccid, at, "es2plus", str(request), before, target, detail)
    return target


def new_confirmation_code() -> str:
    return "".join(secrets.choice(confirmation.CODE_ALPHABET)
                   for _ in range(confirmation.CODE_LENGTH))


def order(uow: EsimUnit, smdp: Smdp, line: str, at: datetime, *, eid: str | None = None,
          profile_type: str | None = None, with_confirmation_code: bool = False,
          smdp_address: str | None = None) -> OrderResult:
    """Take an available profile for `line` and have the SM-DP+ release it for download."""
    eid = _eid(eid)
    with uow:
        row = _line(uow, line)
        repo = uow.esim
        stale = _refuse_live_order(repo, row.id)
        if stale is not None:  # its profile was deleted or cancelled: close it, free the ICCID
            repo.close_order(stale.id, at, "superseded by a new order")
        profile = _pick(repo, profile_type)
        order_id = repo.create_order(row.id, profile.iccid, eid, at)
        repo.set_profile(profile.iccid, at)  # the row lock holds it until commit
        repo.add_event(profile.iccid, at, "operator", "order", profile.state, profile.state,
                       {"line": row.id, "eid": eid})
        uow.commit()
        line_id = row.id
    return _download(uow, smdp, order_id, line_id, profile.iccid, eid, at,
                     with_confirmation_code, smdp_address)


def _refuse_live_order(repo: EsimStore, line_id: str):
    """The line's open order whose profile is no longer live, if any; refuse a live one."""
    current = repo.open_order(line_id)
    if current is None:
        return None
    state = S(repo.profile(current.iccid).state)
    if state in LIVE:
        raise ServiceError(f"line {line_id!r} already has profile {current.iccid} ({state}): "
                           "cancel it, or move the line to another device")
    return current


def _pick(repo: EsimStore, profile_type: str | None, exclude: str | None = None):
    if profile_type is None:
        types = repo.available_types()
        if len(types) > 1:
            raise ServiceError(f"profiles of several types are available ({', '.join(types)}):"
                               " give --profile-type")
    profile = repo.pick_available(profile_type, exclude)
    if profile is None:
        kind = f" of type {profile_type!r}" if profile_type else ""
        raise ServiceError(f"no available profile{kind} in the inventory: import more "
                           "(carryover esim inventory import)")
    return profile


def _download(uow: EsimUnit, smdp: Smdp, order_id: int, line_id: str, iccid: str,
              eid: str | None, at: datetime, with_code: bool,
              smdp_address: str | None) -> OrderResult:
    try:
        smdp.download_order(iccid=iccid, eid=eid)
    except SMDP_FAILURES as exc:
        _give_up(uow, order_id, iccid, at, f"downloadOrder failed: {exc}")
        raise SmdpError.from_exception(exc, iccid) from exc
    with uow:
        _record(uow.esim, iccid, Request.DOWNLOAD_ORDER, at, {"eid": eid},
                S.LINKED if eid is not None else S.ALLOCATED)
        uow.commit()
    code = new_confirmation_code() if with_code else None
    try:
        confirmed = smdp.confirm_order(iccid=iccid, release=True, eid=eid,
                                       confirmation_code=code)
    except SMDP_FAILURES as exc:
        _undo_download_order(uow, smdp, order_id, iccid, eid, at, exc)
        raise SmdpError.from_exception(exc, iccid) from exc
    address = confirmed.smdp_address or smdp_address
    if not address:
        raise ServiceError("the SM-DP+ returned no address and CARRYOVER_SMDP_ADDRESS is "
                           "not set: cannot build an activation code")
    activation = ActivationCode(address, confirmed.matching_id,
                                confirmation_code_required=code is not None)
    eid = confirmed.eid or eid
    with uow:
        repo = uow.esim
        _record(repo, iccid, Request.CONFIRM_ORDER, at,
                {"matching_id": confirmed.matching_id, "release": True}, S.RELEASED)
        repo.set_profile(iccid, at, eid=eid)
        cc_hash = (confirmation.hash_for_storage(code, secrets.token_bytes(16))
                   if code is not None else None)
        repo.update_order(order_id, eid=eid, matching_id=confirmed.matching_id,
                          smdp_address=address, cc_hash=cc_hash)
        uow.commit()
    return OrderResult(line_id, iccid, eid, confirmed.matching_id, activation, code)


def _give_up(uow: EsimUnit, order_id: int, iccid: str, at: datetime, reason: str) -> None:
    with uow:
        repo = uow.esim
        repo.close_order(order_id, at, reason)
        repo.add_event(iccid, at, "operator", "order failed", detail={"reason": reason})
        uow.commit()


def _undo_download_order(uow: EsimUnit, smdp: Smdp, order_id: int, iccid: str,
                         eid: str | None, at: datetime, cause: Exception) -> None:
    """confirmOrder failed: cancel the download order so the profile is not left linked."""
    try:
        smdp.cancel_order(iccid=iccid, final_status=AVAILABLE, eid=eid)
        cancelled = True
    except SMDP_FAILURES:
        cancelled = False
    with uow:
        repo = uow.esim
        if cancelled:
            _record(repo, iccid, Request.CANCEL_ORDER, at, {"after": "confirmOrder failed"},
                    S.AVAILABLE)
        repo.close_order(order_id, at, f"confirmOrder failed: {cause}")
        uow.commit()


def cancel(uow: EsimUnit, smdp: Smdp, line: str, at: datetime,
           final: str = AVAILABLE) -> dict:
    """cancelOrder for the line's current order; the SM-DP+ refuses once it is on a device."""
    with uow:
        row = _line(uow, line)
        repo = uow.esim
        current = repo.open_order(row.id)
        if current is None:
            raise ServiceError(f"line {row.id!r} has no open eSIM order to cancel")
        state = S(repo.profile(current.iccid).state)
    if state in (S.AVAILABLE, S.UNAVAILABLE):  # never reached the SM-DP+, or already gone
        _close(uow, current.id, current.iccid, at, "cancel", "cancelled")
        return {"line": row.id, "iccid": current.iccid, "state": str(state)}
    target = S.AVAILABLE if final == AVAILABLE else S.UNAVAILABLE
    try:
        smdp.cancel_order(iccid=current.iccid, final_status=final, eid=current.eid,
                          matching_id=current.matching_id)
    except SMDP_FAILURES as exc:
        raise SmdpError.from_exception(exc, current.iccid) from exc
    with uow:
        repo = uow.esim
        after = _record(repo, current.iccid, Request.CANCEL_ORDER, at, {"final": final}, target)
        repo.set_profile(current.iccid, at, eid=None)
        repo.close_order(current.id, at, "cancelled")
        uow.commit()
    return {"line": row.id, "iccid": current.iccid, "state": str(after)}


def _close(uow: EsimUnit, order_id: int, iccid: str, at: datetime, kind: str,
           reason: str) -> None:
    with uow:
        repo = uow.esim
        repo.close_order(order_id, at, reason)
        repo.add_event(iccid, at, "operator", kind, detail={"order": order_id, "reason": reason})
        uow.commit()


def move(uow: EsimUnit, smdp: Smdp, line: str, new_eid: str, at: datetime, *,
         new_iccid: bool = False, with_confirmation_code: bool = False,
         smdp_address: str | None = None) -> OrderResult:
    """Order the line's profile for a new device; the line's balance is not touched.

    Before download (or after a failed one) the old order is cancelled. A profile
    on the old device cannot be cancelled: the same ICCID can be ordered again
    once the device's deletion was notified, else `new_iccid` takes a fresh one.
    """
    eid = _eid(new_eid)
    with uow:
        row = _line(uow, line)
        repo = uow.esim
        current = repo.open_order(row.id)
        if current is None:
            raise ServiceError(f"line {row.id!r} has no eSIM to move: order one "
                               "(carryover esim order)")
        state = S(repo.profile(current.iccid).state)
        if current.eid == eid and state in LIVE:
            raise ServiceError(f"profile {current.iccid} of line {row.id!r} is already "
                               f"ordered for EID {eid}")
        if state in ON_DEVICE and not new_iccid:
            raise ServiceError(
                f"profile {current.iccid} is {state} on EID {current.eid}: delete it on the "
                "old device first (its deletion notification frees the ICCID), or set "
                "CARRYOVER_ESIM_NEW_ICCID_ON_MOVE=true to move to a fresh ICCID")
        if new_iccid or state is S.UNAVAILABLE:  # refuse before cancelling anything
            _pick(repo, repo.profile(current.iccid).profile_type, exclude=current.iccid)
        line_id, old_iccid = row.id, current.iccid
    if state in LIVE - ON_DEVICE:
        cancel(uow, smdp, line_id, at)
    else:
        reason = (f"moved to EID {eid}" + (f"; profile still {state} on EID {current.eid}"
                                           if state in ON_DEVICE else ""))
        _close(uow, current.id, old_iccid, at, "order closed", reason)
    with uow:
        repo = uow.esim
        reuse = repo.profile(old_iccid, lock=True)
        if new_iccid or reuse.state != S.AVAILABLE or repo.open_order_for(old_iccid):
            reuse = _pick(repo, reuse.profile_type, exclude=old_iccid)
        order_id = repo.create_order(line_id, reuse.iccid, eid, at)
        repo.set_profile(reuse.iccid, at)
        repo.add_event(reuse.iccid, at, "operator", "move",
                       detail={"line": line_id, "eid": eid, "from_iccid": old_iccid})
        uow.commit()
    return _download(uow, smdp, order_id, line_id, reuse.iccid, eid, at,
                     with_confirmation_code, smdp_address)


def status(uow: EsimUnit, ident: str) -> dict:
    """A profile by ICCID, or a line's current (else latest) profile, with its history."""
    with uow:
        repo = uow.esim
        profile, iccid = None, None
        with contextlib.suppress(IdentifierError):
            iccid = parse_iccid(ident)
            profile = repo.profile(iccid)
        if profile is not None:
            orders = repo.orders(iccid=profile.iccid)
            history = repo.events(profile.iccid)
        elif iccid is not None and (refused := repo.events(iccid)):
            return _outside_inventory(iccid, refused)
        else:
            profile, orders, history = _line_profile(uow, repo, ident)
    return _view(profile, orders, history)


def line_status(uow: EsimUnit, line: str) -> dict:
    """The line's current (else latest) profile with its history; never read as an ICCID."""
    with uow:
        return _view(*_line_profile(uow, uow.esim, line))


def activation_code(uow: EsimUnit, line: str) -> ActivationCode:
    """The activation code of the line's open order, released for download; else NotFound."""
    with uow:
        _, orders, _ = _line_profile(uow, uow.esim, line)
    activation = _activation(orders[-1] if orders else None)
    if activation is None:
        raise NotFound(f"line {line!r} has no open eSIM order with an activation code")
    return activation


def _line_profile(uow: EsimUnit, repo: EsimStore, ident: str) -> tuple:
    """The line's current (else latest) profile, its orders and its history."""
    row = _line(uow, ident)
    orders = repo.orders(line_id=row.id)
    if not orders:
        raise NotFound(f"line {row.id!r} has no eSIM order")
    current = next((o for o in reversed(orders) if o.closed_at is None), orders[-1])
    profile = repo.profile(current.iccid)
    return (profile, [o for o in orders if o.iccid == profile.iccid],
            repo.events(profile.iccid))


def _activation(latest) -> ActivationCode | None:
    if latest is None or latest.closed_at is not None or not latest.matching_id:
        return None
    return ActivationCode(latest.smdp_address, latest.matching_id,
                          confirmation_code_required=latest.cc_hash is not None)


def _view(profile, orders: list, history: list) -> dict:
    latest = orders[-1] if orders else None
    activation = _activation(latest)
    return {
        "iccid": profile.iccid, "imsi": profile.imsi, "profile_type": profile.profile_type,
        "state": profile.state, "eid": profile.eid,
        "line": latest.line_id if latest is not None and latest.closed_at is None else None,
        "matching_id": latest.matching_id if activation else None,
        "activation_code": activation.format() if activation else None,
        "confirmation_code_required": bool(latest is not None and latest.cc_hash),
        "orders": [{"line": o.line_id, "eid": o.eid, "created_at": _iso(o.created_at),
                    "closed_at": _iso(o.closed_at), "closed_reason": o.closed_reason}
                   for o in orders],
        "history": _history(history),
    }


def _outside_inventory(iccid: str, history: list) -> dict:
    """The view of an ICCID the inventory does not hold: only what SM-DP+s said of it."""
    return {"iccid": iccid, "imsi": None, "profile_type": None, "state": None, "eid": None,
            "line": None, "matching_id": None, "activation_code": None,
            "confirmation_code_required": False, "orders": [],
            "history": _history(history)}


def _history(history: list) -> list[dict]:
    return [{"at": _iso(e.at), "source": e.source, "kind": e.kind, "from": e.from_state,
             "to": e.to_state, "detail": e.detail} for e in history]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
