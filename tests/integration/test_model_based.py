"""A model-based test: random operations through the store match the pure fold.

A hypothesis `RuleBasedStateMachine` drives one account at a time (plain or with
a family pool, any bill-cycle day, a few timezones) through the services the CLI
and API use, on real SQLite and PostgreSQL. Beside it, the model: one in-memory
`AccountBook` fed the very same inputs in the same arrival order. Operations:
lines opened now or back-dated, usage in order, late within the grace window,
after it, and duplicated, top-ups, gifts, plan changes now and at the next
cycle (back-dated too, as an operator may), member limits set and lifted, plan
re-loads (`plan load` of a changed body under the example's own plan id, in
force now, from the next boundary or from a later instant), the clock moving
forward, and reads at now and in the past. Usage goes one event at
a time (`usage add`, `POST /v1/usage`) or as a chunk through the ingest path
(`carryover ingest`, `POST /v1/usage/batch`), duplicates within a chunk included.
Amounts are drawn up to and past the bounds (docs/semantics.md, "Bounds").

After every step:
- the store accepts, refuses or counts as duplicate exactly what the model does;
- every line's balance (the check object of docs/scenarios.md, "Output") at now
  equals the model's;
- every statement of every cycle of every line reconciles: its balance and usage
  checks are zero; opening(C) = closing(C-1); closing(C) = what the line's own
  buckets held just before C ended; the grant of C's boundary allowance = the
  allowance of the plan version in force at C's start (docs/semantics.md, "Plan
  versions"); and its totals equal those of a fresh fold of the same inputs in
  effective order (replay equivalence: the arrival order changes which entries
  say it, never what the statement adds up to);
- every stored entry is effective inside its bucket's validity;
- per line, the bytes of its accepted usage equal its debits plus its overage in
  the store's ledger (docs/semantics.md, "The ledger and conservation"), and per
  bucket the stored entries fold to what the model's bucket holds.

Examples: `CARRYOVER_MODEL_EXAMPLES` (default 12 per backend, about 20 steps
each, well under a minute); e.g. `CARRYOVER_MODEL_EXAMPLES=500` for a long run.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from carryover.domain.book import AccountBook
from carryover.domain.bounds import MAX_EVENT
from carryover.domain.buckets import POOL
from carryover.domain.cycles import CycleCalendar
from carryover.domain.ids import stamp
from carryover.domain.inputs import ChangePlan, Gift, OpenLine, SetLimit, TopUp, Usage
from carryover.domain.ledger import EntryKind, balances, usage_by_line
from carryover.domain.plans import PlanKind
from carryover.domain.statement import build_statement
from carryover.domain.units import Unit
from carryover.domain.views import check, position
from carryover.runtime import Carryover
from carryover.services.errors import Duplicate, ServiceError
from carryover.services.ingest.values import UsageRow, record_batch
from carryover.services.ledger import catalog, provisioning
from carryover.services.ledger import operations as ledger_ops
from carryover.settings import get_settings
from carryover.store.engine import dispose_engines
from carryover.store.uow import UnitOfWork

_US = timedelta(microseconds=1)
EXAMPLES = int(os.environ.get("CARRYOVER_MODEL_EXAMPLES", "12"))
# Far enough back that 20 steps of at most 40 days stay before the clock: the store
# refuses writes after now (docs/semantics.md, "Bounds"), the model has no clock.
START = datetime(2021, 1, 3, 9, 30, tzinfo=UTC)
GB = 1024 ** 3
MB = 1024 ** 2
OWN = "own"  # the example's own plan id, re-loaded by `reload_plan`
LINE_PLANS = ["tmobile-data-stash-10gb", "verizon-carryover-8gb", "china-mobile-jiezhuan-20gb",
              "tmobile-go5g", "travel-5gb-30d", OWN]
# What the statement of a cycle adds up to, whichever entries say it: a replay in
# another arrival order books rollover and expiry changes as `adjust` corrections.
TOTALS = ("opening", "closing", "grant", "transfer_in", "transfer_out", "debit", "used",
          "debited_own", "debited_pool", "overage")
PLAN_DIR = tempfile.mkdtemp(prefix="carryover-model-plans-")


def own_plan_yaml(plan_id: str, data_gb: int, sms: int | None, stash_gb: int) -> str:
    """A metered plan with a rollover stash: the body `reload_plan` varies."""
    allowance = f"{{data: {data_gb}GB{'' if sms is None else f', sms: {sms}'}}}"
    return (f"id: {plan_id}\nname: Own {plan_id}\nkind: metered\nallowance: {allowance}\n"
            f"rollover:\n  kinds: [allowance]\n  stash_cap: {stash_gb}GB\n"
            f"  lifetime: {{months: 2}}\n"
            f"overage: {{action: throttle, kbps: 128kbps}}\ntopup: {{mode: stack}}\n")
POOL_PLAN = "att-mobile-share-15gb"
ZONES = ["UTC", "Europe/Berlin", "America/New_York"]
# Up to and past the bound of one event (domain/bounds.py): both paths refuse alike.
amounts = st.one_of(st.integers(0, 3 * GB), st.sampled_from([0, 1, MB, GB, 10 * GB, 20 * GB]),
                    st.sampled_from([MAX_EVENT - 1, MAX_EVENT, MAX_EVENT + 1, 2**63, 2**64]))


def machine_for(engine):
    class StoreMatchesModel(RuleBasedStateMachine):
        """One account per example; every name is fresh, so examples share a database."""

        @initialize(day=st.integers(1, 31), zone=st.sampled_from(ZONES),
                    family=st.booleans(), grace_hours=st.sampled_from([0, 48]))
        def open_account(self, day: int, zone: str, family: bool, grace_hours: int) -> None:
            self.tag = uuid.uuid4().hex[:10]
            self.n = 0
            self.name = f"acct-{self.tag}"
            self.now = START
            self.family = family
            self.grace = timedelta(hours=grace_hours)
            self.own = f"own-{self.tag}"
            self._load_plan(own_plan_yaml(self.own, 3, None, 4), "now")
            self.model = AccountBook(CycleCalendar(day, zone), self.plans, self.grace)
            self.lines: list[str] = []
            self.opened: dict[str, datetime] = {}
            self.members: set[str] = set()
            self.usage_ids: list[str] = []
            self.accepted_usage: dict[str, int] = defaultdict(int)
            provisioning.create_account(UnitOfWork(engine), self.name, day, zone, START,
                                        POOL_PLAN if family else None, self.grace)
            if family:
                outcome = self.model.submit(OpenLine(f"open:{POOL}", POOL, START, POOL_PLAN))
                assert outcome.status == "accepted"

        def _load_plan(self, text: str, effective) -> None:
            """`carryover plan load` at now; the model folds with the stored catalog."""
            path = os.path.join(PLAN_DIR, f"{self.own}-{self.n}.yaml")
            self.n += 1
            with open(path, "w", encoding="utf-8") as out:
                out.write(text)
            with UnitOfWork(engine) as uow:
                catalog.load_plan(uow, path, self.now, effective)
                uow.commit()
                self.plans = catalog.all_plans(uow)
            if hasattr(self, "model"):
                self.model.use_plans(self.plans)

        def _plan(self, plan: str | None) -> str | None:
            return self.own if plan == OWN else plan

        def _id(self, kind: str) -> str:
            self.n += 1
            return f"{kind}-{self.tag}-{self.n}"

        def _both(self, item, call) -> None:
            """Submit `item` to the model and `call()` to the store: the same verdict."""
            outcome = self.model.submit(item)
            try:
                call()
            except Duplicate:
                assert outcome.status == "duplicate", (item, outcome)
                return
            except ServiceError as exc:
                assert outcome.status == "rejected", (item, outcome, exc)
                return
            assert outcome.status == "accepted", (item, outcome)
            if isinstance(item, Usage):
                self.accepted_usage[item.line] += item.amount

        # ---- the clock ------------------------------------------------------------
        @rule(hours=st.integers(1, 24 * 40))
        def advance(self, hours: int) -> None:
            self.now += timedelta(hours=hours)

        # ---- lines --------------------------------------------------------------
        @precondition(lambda self: len(self.lines) < 3)
        @rule(plan=st.sampled_from([*LINE_PLANS, None]), back_hours=st.integers(0, 24 * 60),
              member=st.booleans())
        def open_line(self, plan: str | None, back_hours: int, member: bool) -> None:
            member = member and self.family
            if plan is None and not member:
                plan = LINE_PLANS[0]
            plan = self._plan(plan)
            start = max(START, self.now - timedelta(hours=back_hours))
            line = f"l{len(self.lines)}-{self.tag}"
            msisdn = f"+1{int(self.tag[:8], 16) % 10**8:08d}{len(self.lines):02d}"
            item = OpenLine(f"open:{line}", line, start, plan, member=member)
            self._both(item, lambda: provisioning.create_line(
                UnitOfWork(engine), self.name, msisdn, start, plan, line_id=line, member=member))
            if line in self.model.lines:
                self.lines.append(line)
                self.opened[line] = start
                if member:
                    self.members.add(line)

        # ---- usage --------------------------------------------------------------
        @precondition(lambda self: self.lines)
        @rule(data=st.data(), amount=amounts,
              late_hours=st.sampled_from([0, 0, 0, 1, 20, 47, 49, 24 * 10, 24 * 45]),
              hotspot=st.booleans())
        def usage(self, data, amount: int, late_hours: int, hotspot: bool) -> None:
            line = data.draw(st.sampled_from(self.lines))
            at = max(self.opened[line], self.now - timedelta(hours=late_hours))
            event = self._id("ev")
            group = "hotspot" if hotspot else None
            item = Usage(event, line, at, amount, Unit.DATA, group, self.now)
            self._both(item, lambda: ledger_ops.record_usage(
                UnitOfWork(engine), line, amount, at, self.now, event, Unit.DATA, group))
            self.usage_ids.append(event)

        @precondition(lambda self: self.lines)
        @rule(data=st.data(), size=st.integers(1, 6))
        def usage_batch(self, data, size: int) -> None:
            """The ingest path (`carryover ingest`, `POST /v1/usage/batch`): one chunk."""
            rows, items = [], []
            for _ in range(size):
                line = data.draw(st.sampled_from(self.lines))
                late = data.draw(st.sampled_from([0, 0, 3, 47, 49, 24 * 12]))
                at = max(self.opened[line], self.now - timedelta(hours=late))
                amount = data.draw(amounts)
                reuse = self.usage_ids and data.draw(st.integers(0, 9)) == 0
                event = data.draw(st.sampled_from(self.usage_ids)) if reuse else self._id("ev")
                rows.append(UsageRow(event, line, at, amount, self.now))
                items.append(Usage(event, line, at, amount, Unit.DATA, None, self.now))
            result = record_batch(UnitOfWork(engine), rows)
            outcomes = [self.model.submit(item) for item in items]
            assert [n for n, o in enumerate(outcomes) if o.status == "rejected"] == [
                n for n, _ in result.rejected]
            assert result.duplicates == sum(o.status == "duplicate" for o in outcomes)
            assert result.accepted == sum(o.status == "accepted" for o in outcomes)
            for item, outcome in zip(items, outcomes, strict=True):
                if outcome.status == "accepted":
                    self.accepted_usage[item.line] += item.amount
                    self.usage_ids.append(item.id)

        @precondition(lambda self: self.usage_ids)
        @rule(data=st.data())
        def duplicate_usage(self, data) -> None:
            event = data.draw(st.sampled_from(self.usage_ids))
            line = self.lines[0]
            item = Usage(event, line, self.now, 1, Unit.DATA, None, self.now)
            self._both(item, lambda: ledger_ops.record_usage(
                UnitOfWork(engine), line, 1, self.now, self.now, event))

        # ---- grants and changes ----------------------------------------------------
        @precondition(lambda self: self.lines)
        @rule(data=st.data(), amount=st.one_of(st.integers(1, 5 * GB), amounts),
              days=st.sampled_from([None, 1, 7, 30]))
        def top_up(self, data, amount: int, days: int | None) -> None:
            line = data.draw(st.sampled_from(self.lines))
            ref = self._id("tu")
            item = TopUp(ref, line, self.now, amount, Unit.DATA, days)
            self._both(item, lambda: ledger_ops.top_up(UnitOfWork(engine), line, amount, self.now,
                                                       days, ref))

        @precondition(lambda self: len(self.lines) >= 2)
        @rule(data=st.data(), amount=st.one_of(st.integers(1, 3 * GB), amounts))
        def gift(self, data, amount: int) -> None:
            giver, taker = data.draw(st.permutations(self.lines))[:2]
            ref = self._id("gift")
            item = Gift(ref, giver, taker, self.now, amount)
            self._both(item, lambda: ledger_ops.gift(UnitOfWork(engine), giver, taker, amount,
                                                     self.now, ref))

        @precondition(lambda self: self.lines)
        @rule(data=st.data(), plan=st.sampled_from(LINE_PLANS),
              effective=st.sampled_from(["now", "next_cycle"]),
              back_hours=st.sampled_from([0, 0, 5, 24 * 20]))
        def change_plan(self, data, plan: str, effective: str, back_hours: int) -> None:
            line = data.draw(st.sampled_from(self.lines))
            at = max(self.opened[line], self.now - timedelta(hours=back_hours))
            plan = self._plan(plan)
            ref = self._id("cp")
            item = ChangePlan(ref, line, at, plan, effective)
            self._both(item, lambda: ledger_ops.change_plan(UnitOfWork(engine), line, plan,
                                                            effective, at, ref))

        @rule(data_gb=st.sampled_from([1, 3, 6]), sms=st.sampled_from([None, 50]),
              stash_gb=st.sampled_from([1, 4]),
              effective=st.sampled_from(["now", "next-cycle", "later"]),
              later_days=st.integers(1, 70))
        def reload_plan(self, data_gb: int, sms: int | None, stash_gb: int, effective: str,
                        later_days: int) -> None:
            """Re-load the own plan: a new version from its instant, or a no-op for the
            same body; nothing folded before that instant may change."""
            when = self.now + timedelta(days=later_days) if effective == "later" else effective
            self._load_plan(own_plan_yaml(self.own, data_gb, sms, stash_gb), when)

        @precondition(lambda self: self.members)
        @rule(data=st.data(), amount=st.one_of(st.none(), st.integers(0, 8 * GB), amounts))
        def member_limit(self, data, amount: int | None) -> None:
            line = data.draw(st.sampled_from(sorted(self.members)))
            ref = self._id("lim")
            item = SetLimit(ref, line, self.now, amount)
            self._both(item, lambda: ledger_ops.set_limit(UnitOfWork(engine), line, amount,
                                                          self.now, ref))

        # ---- reads ----------------------------------------------------------------
        @precondition(lambda self: self.lines)
        @rule(data=st.data(), back_hours=st.integers(0, 24 * 90))
        def read_the_past(self, data, back_hours: int) -> None:
            line = data.draw(st.sampled_from(self.lines))
            at = max(self.opened[line], self.now - timedelta(hours=back_hours))
            assert ledger_ops.balance(UnitOfWork(engine), line, at) == check(self.model, line, at)

        # ---- after every step -------------------------------------------------------
        @invariant()
        def balances_equal(self) -> None:
            if not hasattr(self, "model"):
                return
            for line in self.lines:
                stored, model = ledger_ops.balance(UnitOfWork(engine), line, self.now), check(
                    self.model, line, self.now)
                assert stored == model, (line, stored, model)

        @invariant()
        def ledger_conserves(self) -> None:
            if not hasattr(self, "model") or not self.lines:
                return
            with UnitOfWork(engine) as uow:
                account = uow.accounts.account_by_name(self.name)
                entries = list(uow.accounts.entries(account.id, before=datetime.max.replace(
                    tzinfo=UTC)))
            used = usage_by_line(entries)
            for line in self.lines:
                assert used.get((line, Unit.DATA), 0) == self.accepted_usage[line], line
            stored = balances(entries)
            for bucket in self.model.buckets.values():
                if not bucket.unlimited:
                    assert stored.get(bucket.id, 0) == bucket.remaining, bucket.id
            for e in entries:  # effective inside its bucket's validity
                if e.bucket_id is None:
                    continue
                bucket = self.model.buckets.get(e.bucket_id)
                if bucket is None:
                    # Booked, then undone by a replay (a back-dated change removed the
                    # boundary that made it): its corrections must cancel it.
                    assert stored.get(e.bucket_id, 0) == 0, e
                    continue
                assert bucket.valid_from <= e.at, (e, bucket.valid_from)
                assert bucket.valid_until is None or e.at <= bucket.valid_until, (
                    e, bucket.valid_until)

        def _fresh_fold(self) -> AccountBook:
            """The same inputs folded once, in effective order: no arrival was late."""
            fresh = AccountBook(self.model.calendar, self.plans, self.grace)
            for item in self.model.ordered_inputs():
                outcome = fresh.submit(item)
                # A gift accepted at arrival whose giver a later-arriving, earlier
                # event drained has nothing to move in effective order: refused here,
                # kept moving nothing in a replay (domain/book.py `_gift`): the same
                # balances either way.
                assert outcome.status == "accepted" or (
                    isinstance(item, Gift) and "nothing giftable" in outcome.reason), (
                        item, outcome)
            fresh.advance_to(self.now)
            return fresh

        def _boundary_grant_holds(self, line: str, start: datetime, statement) -> None:
            """grant(C) of the boundary allowance = the allowance of the version in
            force at C's start, for the plan the line was on then."""
            if start <= self.opened[line]:
                return
            state = position(self.model, start).lines.get(line)
            if state is None or state.plan_id is None:
                return
            plan = self.plans.at(state.plan_id, start, self.model.calendar)
            if plan.kind is PlanKind.PACK:
                return
            for unit, amount in plan.allowances.items():
                if amount is None:
                    continue
                bucket = f"{line}/{unit}/allowance/{stamp(start)}"
                granted = sum(e.amount for e in statement.entries
                              if e.bucket_id == bucket and e.kind is EntryKind.GRANT)
                assert granted == amount, (line, start, unit, plan.id, granted, amount)

        @invariant()
        def statements_reconcile(self) -> None:
            if not hasattr(self, "model"):
                return
            fresh = self._fresh_fold()
            unlimited = {b.id for b in fresh.buckets.values() if b.unlimited}
            for line in self.lines:
                at = self.opened[line]
                previous = None
                while at <= self.now:
                    statement = ledger_ops.statement(UnitOfWork(engine), line, at)
                    end = statement.end
                    truth = position(self.model, min(end, self.now) - _US)
                    for unit, part in statement.units.items():
                        where = (line, statement.start, unit)
                        assert part.balance_check == 0, where
                        assert part.usage_check == 0, where
                        if previous is not None and unit in previous:
                            # opening(C) = closing(C-1), whatever the arrival order
                            assert part.opening == previous[unit], where
                        if end <= self.now:  # closing(C): what the line's buckets held
                            held = sum(b.remaining or 0 for b in truth.buckets.values()
                                       if b.owner == line and b.unit == unit
                                       and not b.unlimited and b.usable_at(end - _US))
                            assert part.closing == held, (where, part.closing, held)
                    self._boundary_grant_holds(line, statement.start, statement)
                    folded = build_statement(line, statement.start, end, fresh.entries,
                                             unlimited)
                    for unit in set(statement.units) | set(folded.units):
                        ours = statement.units[unit].as_dict() if unit in statement.units \
                            else {}
                        truth_totals = folded.units[unit].as_dict() if unit in folded.units \
                            else {}
                        for name in TOTALS:
                            assert ours.get(name, 0) == truth_totals.get(name, 0), (
                                line, statement.start, unit, name, ours, truth_totals)
                    previous = {u: p.closing for u, p in statement.units.items()}
                    at = end

    return StoreMatchesModel


def test_store_matches_the_pure_fold(db_url: str) -> None:
    engine = Carryover(get_settings(database_url=db_url)).open()
    try:
        run_state_machine_as_test(machine_for(engine), settings=settings(
            max_examples=EXAMPLES, stateful_step_count=20, deadline=None, database=None,
            suppress_health_check=list(HealthCheck)))
    finally:
        engine.dispose()
        dispose_engines()
