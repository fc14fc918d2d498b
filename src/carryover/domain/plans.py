"""Plans and their policies: what a line is granted and how (docs/plan-files.md;
docs/semantics.md, "Overage and QoS").

A plan is data, not code: a frozen dataclass built from a mapping (the plan-file
format of docs/plan-files.md). `plan_from_mapping` reports every problem of a
plan at once, each naming its field, because an operator fixing a plan file
wants the whole list, not the first error.

Kinds:
- `metered`: an allowance per cycle per unit, a rollover policy, an overage policy.
- `unlimited`: no cap, but a premium threshold after which the line is
  deprioritized or throttled, and a hotspot allowance after which traffic of the
  `hotspot` rating group is throttled.
- `pack`: one grant at the start of the plan with its own validity (travel eSIM).

The consumption order between bucket kinds is a table of integer priorities
(lower drains first); see buckets.consumption_key for the full order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Literal

from carryover.domain.bounds import BoundError, check_bucket
from carryover.domain.units import AmountError, Unit, parse_amount, parse_speed_kbps

# A rollover cap of one unit: an amount of that unit, or that unit's own allowance.
ALLOWANCE = "allowance"
Cap = int | Literal["allowance"]


class PlanKind(StrEnum):
    METERED = "metered"
    UNLIMITED = "unlimited"
    PACK = "pack"


class BucketKind(StrEnum):
    ALLOWANCE = "allowance"
    ROLLOVER = "rollover"
    TOPUP = "topup"
    GIFT = "gift"
    BONUS = "bonus"


class OverageAction(StrEnum):
    BLOCK = "block"
    THROTTLE = "throttle"
    CHARGE = "charge"


class TopupMode(StrEnum):
    STACK = "stack"
    MERGE = "merge"


DEFAULT_PRIORITIES: Mapping[BucketKind, int] = {
    BucketKind.BONUS: 10,
    BucketKind.ALLOWANCE: 20,
    BucketKind.ROLLOVER: 30,
    BucketKind.TOPUP: 40,
    BucketKind.GIFT: 50,
}


@dataclass(frozen=True, slots=True)
class RolloverPolicy:
    """How unused bytes cross a cycle boundary (docs/semantics.md, "Cycles and rollover at
    the boundary instant")."""

    kinds: frozenset[BucketKind] = frozenset({BucketKind.ALLOWANCE})
    # Caps are per unit (a unit absent from the mapping has no cap; None: no cap in
    # any unit). ALLOWANCE means that unit's own allowance ("at most the allowance",
    # AT&T). rollover.unit_caps reads them; a cap never applies across units.
    per_cycle_cap: Mapping[Unit, Cap] | None = None  # carried per boundary
    stash_cap: Mapping[Unit, Cap] | None = None  # what the rollover stash may hold at once
    lifetime_cycles: int | None = 1  # expires at the end of the next N cycles ...
    lifetime_months: int | None = None  # ... or N calendar months after the deposit
    rolls_again: bool = False
    forfeit_on_plan_change: bool = False


@dataclass(frozen=True, slots=True)
class OveragePolicy:
    """What happens to usage no bucket covers (docs/semantics.md, "Overage and QoS").
    Overage is always recorded."""

    action: OverageAction = OverageAction.BLOCK
    throttle_kbps: int | None = None
    price: Decimal | None = None  # per increment, in `currency`
    currency: str | None = None
    increment: int = 1024**2  # bytes (or seconds, messages) one price unit buys
    # Where the packet core sends a blocked line (Nchf final-unit action REDIRECT);
    # None: the session is terminated.
    redirect_url: str | None = None


@dataclass(frozen=True, slots=True)
class UnlimitedPolicy:
    premium_threshold: int  # bytes of high-speed data per cycle
    after_premium: str = "deprioritized"  # or "throttled"
    after_premium_kbps: int | None = None
    hotspot_allowance: int | None = None
    hotspot_kbps: int | None = None


@dataclass(frozen=True, slots=True)
class PlanPrice:
    """What a plan costs: an exact decimal in an ISO 4217 currency, per cycle (a pack:
    per pack)."""

    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    name: str
    kind: PlanKind
    allowances: Mapping[Unit, int | None]  # None = unlimited in that unit
    priorities: Mapping[BucketKind, int] = field(default_factory=lambda: dict(DEFAULT_PRIORITIES))
    prorate_first_cycle: bool = True
    rollover: RolloverPolicy | None = None
    overage: OveragePolicy = field(default_factory=OveragePolicy)
    topup_mode: TopupMode = TopupMode.STACK
    unlimited: UnlimitedPolicy | None = None
    pack_validity_days: int | None = None
    description: str = ""
    # What the plan costs per cycle (a pack: per pack), for advice; None: not given.
    price: PlanPrice | None = None
    # Whether a subscriber key may move its own line to this plan (docs/plan-files.md);
    # an operator may move a line to any plan.
    self_service: bool = False

    def priority(self, kind: BucketKind) -> int:
        return self.priorities.get(kind, DEFAULT_PRIORITIES[kind])

    def rolls(self, kind: BucketKind) -> bool:
        return self.rollover is not None and kind in self.rollover.kinds


@dataclass(frozen=True, slots=True)
class PlanProblem:
    """One thing wrong with a plan definition: the field and why."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class PlanError(ValueError):
    def __init__(self, problems: list[PlanProblem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


_PLAN_KEYS = {
    "id", "name", "kind", "allowance", "priorities", "first_cycle", "rollover",
    "overage", "topup", "unlimited", "pack", "description", "price", "self_service",
}
_ROLLOVER_KEYS = {
    "kinds", "per_cycle_cap", "stash_cap", "lifetime", "rolls_again", "forfeit_on_plan_change",
}


class _Reader:
    """Collects problems while reading a mapping, so all are reported together."""

    def __init__(self) -> None:
        self.problems: list[PlanProblem] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(PlanProblem(where, message))

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(where, f"must be a mapping, got {type(value).__name__}")
            return {}
        return value

    def unknown(self, data: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for key in sorted(set(data) - allowed, key=str):
            self.fail(f"{where}.{key}" if where else str(key), "unknown field")

    def amount(self, value: Any, where: str, unit: Unit = Unit.DATA) -> int | None:
        try:  # every amount of a plan sizes a bucket or caps one (domain/bounds.py)
            return check_bucket(where, parse_amount(value, unit)[0])
        except AmountError as exc:
            self.fail(where, str(exc))
        except BoundError as exc:
            self.fail(where, exc.reason)
        return None

    def speed(self, value: Any, where: str) -> int | None:
        try:
            return parse_speed_kbps(value)
        except AmountError as exc:
            self.fail(where, str(exc))
            return None

    def choice(self, value: Any, enum: type[StrEnum], where: str, default: Any) -> Any:
        if value is None:
            return default
        try:
            return enum(value)
        except ValueError:
            options = ", ".join(e.value for e in enum)
            self.fail(where, f"{value!r} is not one of {options}")
            return default

    def boolean(self, value: Any, where: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(where, f"{value!r} is not true or false")
            return default
        return value

    def positive_int(self, value: Any, where: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self.fail(where, f"{value!r} is not a whole number above zero")
            return None
        return value


def _read_caps(r: _Reader, raw: Any, where: str,
               allowances: Mapping[Unit, int | None]) -> dict[Unit, Cap] | None:
    """A rollover cap: `allowance` (each unit its own), one amount (its suffix names
    the one unit it caps: bytes data, seconds voice, a bare count SMS), or a mapping
    of unit to amount or `allowance`."""
    if raw is None:
        return None
    if raw == ALLOWANCE:
        return {unit: ALLOWANCE for unit in Unit}
    if isinstance(raw, Mapping):
        caps: dict[Unit, Cap] = {}
        for key, value in raw.items():
            unit = r.choice(key, Unit, f"{where}.{key}", None)
            if unit is None:
                continue
            if value == ALLOWANCE:
                caps[unit] = ALLOWANCE
            elif (amount := r.amount(value, f"{where}.{key}", unit)) is not None:
                caps[unit] = amount
        return caps
    try:
        amount, unit = parse_amount(raw)
        check_bucket(where, amount)
    except AmountError as exc:
        r.fail(where, str(exc))
        return None
    except BoundError as exc:
        r.fail(where, exc.reason)
        return None
    if unit is Unit.SMS and Unit.SMS not in allowances:
        # A bare number is a count of messages; on a plan without SMS it is almost
        # certainly bytes written without a unit, and guessing would change a bill.
        r.fail(where, f"{raw!r} has no unit, so it is an SMS count, but the plan grants no "
               f"sms; write 100MB for data, 60min for voice, or a mapping such as "
               f"{{data: 2GB, voice: 60min}}")
        return None
    return {unit: amount}


def _read_rollover(r: _Reader, raw: Any,
                   allowances: Mapping[Unit, int | None]) -> RolloverPolicy | None:
    if raw is None or raw is False:
        return None
    data = r.mapping(raw, "rollover")
    r.unknown(data, _ROLLOVER_KEYS, "rollover")
    kinds_raw = data.get("kinds", ["allowance"])
    kinds: set[BucketKind] = set()
    if not isinstance(kinds_raw, list):
        r.fail("rollover.kinds", "must be a list such as [allowance]")
    else:
        for i, k in enumerate(kinds_raw):
            kinds.add(r.choice(k, BucketKind, f"rollover.kinds[{i}]", BucketKind.ALLOWANCE))
    per_cycle_cap = _read_caps(r, data.get("per_cycle_cap"), "rollover.per_cycle_cap",
                               allowances)
    stash_cap = _read_caps(r, data.get("stash_cap"), "rollover.stash_cap", allowances)
    lifetime = r.mapping(data.get("lifetime", {"cycles": 1}), "rollover.lifetime")
    r.unknown(lifetime, {"cycles", "months"}, "rollover.lifetime")
    cycles = r.positive_int(lifetime.get("cycles"), "rollover.lifetime.cycles")
    months = r.positive_int(lifetime.get("months"), "rollover.lifetime.months")
    if (cycles is None) == (months is None) and not r.problems:
        r.fail("rollover.lifetime", "give exactly one of cycles or months")
    return RolloverPolicy(
        kinds=frozenset(kinds),
        per_cycle_cap=per_cycle_cap,
        stash_cap=stash_cap,
        lifetime_cycles=cycles,
        lifetime_months=months,
        rolls_again=r.boolean(data.get("rolls_again"), "rollover.rolls_again", False),
        forfeit_on_plan_change=r.boolean(
            data.get("forfeit_on_plan_change"), "rollover.forfeit_on_plan_change", False
        ),
    )


def _read_overage(r: _Reader, raw: Any) -> OveragePolicy:
    data = r.mapping(raw, "overage")
    r.unknown(data, {"action", "kbps", "price", "currency", "per", "redirect"}, "overage")
    action = r.choice(data.get("action"), OverageAction, "overage.action", OverageAction.BLOCK)
    kbps = None
    price = None
    increment = 1024**2
    if action is OverageAction.THROTTLE:
        if data.get("kbps") is None:
            r.fail("overage.kbps", "a throttle needs a speed such as 128kbps")
        else:
            kbps = r.speed(data["kbps"], "overage.kbps")
    if action is OverageAction.CHARGE:
        try:
            price = Decimal(str(data.get("price")))
            if price < 0 or not price.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            r.fail("overage.price", f"{data.get('price')!r} is not a price such as 0.29")
        if not data.get("currency"):
            r.fail("overage.currency", "a charge needs a currency such as USD")
        increment = r.amount(data.get("per", "1MB"), "overage.per") or increment
    redirect = data.get("redirect")
    if redirect is not None and (not isinstance(redirect, str)
                                 or not redirect.startswith(("http://", "https://"))):
        r.fail("overage.redirect", f"{redirect!r} is not an http(s) URL such as "
               "https://topup.example.com")
        redirect = None
    if redirect is not None and action is not OverageAction.BLOCK:
        r.fail("overage.redirect", "only a blocked line is redirected (action: block)")
    return OveragePolicy(
        action=action, throttle_kbps=kbps, price=price,
        currency=data.get("currency"), increment=increment, redirect_url=redirect,
    )


def _read_unlimited(r: _Reader, raw: Any) -> UnlimitedPolicy | None:
    data = r.mapping(raw, "unlimited")
    r.unknown(data, {"premium", "after_premium", "after_premium_kbps", "hotspot", "hotspot_kbps"},
              "unlimited")
    if "premium" not in data:
        r.fail("unlimited.premium", "an unlimited plan needs a premium threshold such as 100GB")
        return None
    after = data.get("after_premium", "deprioritized")
    if after not in ("deprioritized", "throttled"):
        r.fail("unlimited.after_premium", f"{after!r} is not deprioritized or throttled")
    after_kbps = None
    if after == "throttled":
        after_kbps = r.speed(data.get("after_premium_kbps", 0), "unlimited.after_premium_kbps")
    hotspot = None
    if data.get("hotspot") is not None:
        hotspot = r.amount(data["hotspot"], "unlimited.hotspot")
    hotspot_kbps = None
    if hotspot is not None:
        hotspot_kbps = r.speed(data.get("hotspot_kbps", 0), "unlimited.hotspot_kbps")
    premium = r.amount(data["premium"], "unlimited.premium")
    return UnlimitedPolicy(
        premium_threshold=premium or 0, after_premium=after, after_premium_kbps=after_kbps,
        hotspot_allowance=hotspot, hotspot_kbps=hotspot_kbps,
    )


_CURRENCY = re.compile(r"[A-Z]{3}")


def _read_price(r: _Reader, raw: Any) -> PlanPrice | None:
    if raw is None:
        return None
    data = r.mapping(raw, "price")
    r.unknown(data, {"amount", "per_cycle", "currency"}, "price")
    # `per_cycle` is the field's first name: bodies stored under it must still read
    # as the same plan (stored versions are re-validated when read).
    key = "per_cycle" if "per_cycle" in data and "amount" not in data else "amount"
    if "per_cycle" in data and "amount" in data:
        r.fail("price.per_cycle", "give the price once, as amount")
    amount = data.get(key)
    value = None
    if not isinstance(amount, str):
        # A YAML number such as 30.10 is a binary float; a price must be exact.
        r.fail(f"price.{key}", f"{amount!r} is not a decimal string such as \"30.00\" "
               "(quote it)")
    else:
        try:
            value = Decimal(amount)
            if not value.is_finite() or value < 0:
                raise InvalidOperation
        except InvalidOperation:
            r.fail(f"price.{key}", f"{amount!r} is not a price such as \"30.00\"")
            value = None
    currency = data.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        r.fail("price.currency", f"{currency!r} is not an ISO 4217 code such as USD")
        currency = None
    if value is None or currency is None:
        return None
    return PlanPrice(value, currency)


def plan_from_mapping(data: Any) -> Plan:
    """Build a Plan from the plan-file mapping, or raise PlanError listing every problem."""
    r = _Reader()
    data = r.mapping(data, "plan")
    r.unknown(data, _PLAN_KEYS, "")
    plan_id = data.get("id")
    if not isinstance(plan_id, str) or not plan_id.strip():
        r.fail("id", "a plan needs an id such as my-plan-10gb")
        plan_id = "?"
    kind = r.choice(data.get("kind"), PlanKind, "kind", PlanKind.METERED)

    allowances: dict[Unit, int | None] = {}
    for key, value in r.mapping(data.get("allowance"), "allowance").items():
        unit = r.choice(key, Unit, f"allowance.{key}", None)
        if unit is None:
            continue
        allowances[unit] = (None if value == "unlimited"
                            else r.amount(value, f"allowance.{key}", unit))
    if kind is PlanKind.UNLIMITED:
        allowances.setdefault(Unit.DATA, None)
    elif Unit.DATA not in allowances and not allowances:
        r.fail("allowance", "a metered plan or pack needs an allowance such as {data: 10GB}")

    priorities = dict(DEFAULT_PRIORITIES)
    for key, value in r.mapping(data.get("priorities"), "priorities").items():
        bucket_kind = r.choice(key, BucketKind, f"priorities.{key}", None)
        if bucket_kind is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            r.fail(f"priorities.{key}", f"{value!r} is not an integer")
            continue
        priorities[bucket_kind] = value

    first_cycle = data.get("first_cycle", "prorate")
    if first_cycle not in ("prorate", "full"):
        r.fail("first_cycle", f"{first_cycle!r} is not prorate or full")

    topup = r.mapping(data.get("topup"), "topup")
    r.unknown(topup, {"mode"}, "topup")
    pack = r.mapping(data.get("pack"), "pack")
    r.unknown(pack, {"validity_days"}, "pack")
    pack_days = r.positive_int(pack.get("validity_days"), "pack.validity_days")
    if kind is PlanKind.PACK and pack_days is None:
        r.fail("pack.validity_days", "a pack needs its validity in days")

    plan = Plan(
        id=plan_id,
        name=str(data.get("name", plan_id)),
        kind=kind,
        allowances=allowances,
        priorities=priorities,
        prorate_first_cycle=first_cycle == "prorate",
        rollover=_read_rollover(r, data.get("rollover"), allowances),
        overage=_read_overage(r, data.get("overage")),
        topup_mode=r.choice(topup.get("mode"), TopupMode, "topup.mode", TopupMode.STACK),
        unlimited=_read_unlimited(r, data["unlimited"]) if kind is PlanKind.UNLIMITED else None,
        pack_validity_days=pack_days,
        description=str(data.get("description", "")),
        price=_read_price(r, data.get("price")),
        self_service=r.boolean(data.get("self_service"), "self_service", False),
    )
    if r.problems:
        raise PlanError(r.problems)
    return plan
