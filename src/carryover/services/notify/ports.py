"""What notify needs of the store: the outbox with the state notices are decided from,
the plan catalog, the lines' alert thresholds, and the webhook endpoints and deliveries.

store.outbox.OutboxRepository, store.plan_repository.PlanRepository,
store.repository.AccountRepository and store.webhook_repository.WebhookRepository
implement them on the unit of work (`uow.outbox`, `uow.plans`, `uow.accounts`,
`uow.webhooks`); tests/unit/fakes.py implements them in memory, and
tests/unit/test_fakes_match.py checks that both have these methods, with these
parameters.

The services take the unit of work (`ThresholdUnit` for services.notify.alert_thresholds,
`WebhookUnit` for services.notify.webhooks, `DeliveryUnit` for the delivery loop of
services.notify.delivery). Each `with uow:` block is one transaction, rolled back
unless committed; `uow.reading()` is a read-only one. The delivery loop also asks
its unit of work for what is not a transaction: a unit of work per lane's thread
(`another`) and the deployment's delivery lock (`delivery_lock`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from carryover.domain.buckets import Bucket
from carryover.domain.plan_versions import PlanCatalog
from carryover.services.unit_of_work import Reading


class Outbox(Protocol):
    """What the single-event path (a book in memory) and the ingest chunk need."""

    def offer(self, rows: list[dict]) -> None:
        """Offer notification rows; each (line, cycle_start, kind) is kept once."""

    def closed_buckets(self, account_ids: list[int],
                       since: datetime | None) -> dict[int, list[Bucket]]:
        """Account id -> its closed data buckets that may count for a cycle starting at
        or after `since`."""

    def msisdns(self, account_id: int) -> dict[str, str]:
        """Line id -> MSISDN of the account's lines."""


class NoticeStore(Outbox, Protocol):
    """And the stored state, for deciding notices without a book."""

    def notice_accounts(self, account_ids: Iterable[int]) -> dict[int, Any]:
        """Account id -> row (id, name, cycle_start, cycle_end, until, pool_plan_id,
        cycle_day, timezone) of those with a current cycle."""

    def notice_lines(self, account_ids: Iterable[int]) -> list[Any]:
        """The lines of these accounts (every column), by id."""

    def cycle_counters(self, cycle: Mapping[int, str]) -> dict[tuple, int]:
        """(account, line, name) -> the `used` and `pool` data counters of each account's
        cycle (account id -> cycle_start text)."""

    def bucket_facts(self, account_ids: list[int], at: datetime,
                     expiring_within: timedelta) -> dict[tuple, dict]:
        """(account, owner) -> the facts of domain.notices at `at`."""


class Plans(Protocol):
    def all(self) -> PlanCatalog:
        """Every plan with its versions."""


class BookUnit(Protocol):
    """The unit of work of a change whose book is in memory (the change's own)."""

    outbox: Outbox


class NoticeUnit(Protocol):
    """The unit of work notices are decided in from the stored state (the change's own)."""

    outbox: NoticeStore
    plans: Plans


class WebhookStore(Protocol):
    def last_outbox_id(self) -> int:
        """The id of the newest outbox row (0 when none)."""

    def add_endpoint(self, endpoint_id: str, url: str, secret: str, kinds: list[str] | None,
                     since_outbox_id: int, at: datetime) -> None:
        """Store an endpoint for the outbox rows after `since_outbox_id`."""

    def endpoints(self) -> list[Any]:
        """Every endpoint, in the order they were added."""

    def endpoints_after(self, after: str | None, limit: int) -> list[Any]:
        """Up to `limit` endpoints by id after `after`."""

    def endpoint(self, endpoint_id: str) -> Any:
        """The endpoint's row, or None."""

    def disable_endpoint(self, endpoint_id: str, at: datetime) -> None:
        """No more deliveries to the endpoint from `at`."""

    def delivery_counts(self, endpoint_ids: list[str]) -> dict[str, dict[str, int]]:
        """Endpoint id -> status -> how many deliveries."""

    def fan_out(self, at: datetime) -> None:
        """A pending delivery per (enabled endpoint, outbox row it wants) lacking one."""

    def due_endpoints(self, now: datetime) -> list[str]:
        """Enabled endpoints with deliveries due at `now`."""

    def claim(self, endpoint_id: str, now: datetime, until: datetime) -> Any:
        """Lease the endpoint's first due delivery until `until`; its row, or None."""

    def record(self, delivery_id: int, attempts: int, lease_until: datetime,
               values: dict) -> bool:
        """Store an outcome if the delivery is still under that lease; whether it was."""

    def dead_letters(self, after: int | None, limit: int | None) -> list[Any]:
        """Dead deliveries by id."""

    def delivery(self, delivery_id: int) -> Any:
        """A delivery's id, status and its endpoint's disabled_at, or None."""

    def requeue(self, delivery_id: int, at: datetime) -> None:
        """The delivery pending again from `at`, no attempts made."""

    def backlog(self) -> list[tuple[int, datetime | None]]:
        """(count, oldest written_at) of fanned-out pending deliveries, then of pairs
        not fanned out yet."""


class LineSettings(Protocol):
    """The lines' alert thresholds, on `uow.accounts`."""

    def find_line(self, ident: str) -> Any:
        """A line (`id`, `account_id`, ...) by id, MSISDN or IMSI, or None."""

    def lock_account(self, account_id: int) -> Any:
        """The account's row, locked for this transaction (PostgreSQL)."""

    def set_alert_thresholds(self, account_id: int, line_id: str,
                             thresholds: list[int] | None) -> None:
        """Store the line's alert thresholds (None: the defaults); the account's version
        moves too."""

    def alert_thresholds(self, line_id: str) -> list[int] | None:
        """The line's stored alert thresholds; None where it picked none."""


class ThresholdUnit(Reading, Protocol):
    """The unit of work of a line's alert thresholds: the line, and the notices that
    hold with the new ones."""

    accounts: LineSettings
    outbox: NoticeStore
    plans: Plans


class WebhookUnit(Reading, Protocol):
    """The unit of work of webhook endpoints, deliveries and dead letters."""

    webhooks: WebhookStore


class HeldLock(Protocol):
    """The deployment's delivery-loop lock while held (store.delivery_lock.DeliveryLock)."""

    release: Callable[[], None]


class DeliveryUnit(WebhookUnit, Protocol):
    """The unit of work the delivery loop starts from."""

    def another(self) -> DeliveryUnit:
        """A new unit of work on the same database, for a thread of its own (the loop's
        lanes run at once; one unit of work runs one transaction at a time)."""

    def delivery_lock(self) -> HeldLock | None:
        """Take the deployment's delivery-loop lock (held outside any transaction), or
        None when another loop holds it."""


class ChunkNoticeReads(Protocol):
    """The stored state an ingest chunk's notices are decided from, read for the many
    accounts of a chunk at once (store.notice_reads)."""

    def accounts(self, ids: list[int]) -> list[tuple]:
        """Name `ids` for the reads below; (id, name, cycle_start, until, pool_plan_id,
        cycle_day, timezone) of those with a current cycle, instants aware in UTC."""

    def lines(self) -> Iterator[tuple]:
        """(id, account_id, msisdn, plan_id, member, limits, alert_thresholds) of the
        named accounts' lines, by id."""

    def name_instants(self, when: Mapping[int, datetime], expiring_within: timedelta) -> None:
        """Each named account's instant (and that plus `expiring_within`) for bucket_facts."""

    def cycle_counters(self, cycle: Mapping[int, str]) -> dict[tuple, int]:
        """(account, line, name) -> the `used` and `pool` data counters of each cycle."""

    def bucket_facts(self) -> dict[tuple, dict]:
        """(account, owner) -> the facts domain/notices.py decides from."""
