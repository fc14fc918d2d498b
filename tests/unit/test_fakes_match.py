"""The fake unit of work and the store implement the same protocols the services declare.

Each protocol method must exist on the store's class and on the fake's with the
protocol's parameters (names and kinds, in order), so a service unit test on the
fakes exercises the calls production makes.
"""

from __future__ import annotations

import inspect
import typing

import pytest

from carryover.services import unit_of_work
from carryover.services.access import ports as access_ports
from carryover.services.charging import ports as charging_ports
from carryover.services.esim import ports as esim_port
from carryover.services.ingest import ports as ingest_ports
from carryover.services.ingest.total_bounds import StoredTotals
from carryover.services.ledger import ports as ledger_ports
from carryover.services.notify import ports as notify_ports
from carryover.services.ops import business_metrics
from carryover.store.api_repository import ApiRepository, IdempotencyRepository, KeyRepository
from carryover.store.charging_repository import ChargingRepository
from carryover.store.esim_repository import EsimRepository
from carryover.store.ingest_repository import IngestRepository
from carryover.store.line_import_repository import LineImportRepository
from carryover.store.metrics_repository import MetricsRepository
from carryover.store.outbox import OutboxRepository
from carryover.store.plan_repository import PlanRepository
from carryover.store.repository import AccountRepository
from carryover.store.totals import UsageTotals
from carryover.store.uow import UnitOfWork
from carryover.store.wal_checkpoints import BackgroundCheckpoints
from carryover.store.webhook_repository import WebhookRepository
from tests.unit import fakes

PAIRS = [
    (charging_ports.ChargingStore, ChargingRepository, fakes.FakeCharging),
    (charging_ports.Outbox, OutboxRepository, fakes.FakeOutbox),
    (esim_port.EsimStore, EsimRepository, fakes.FakeEsim),
    (esim_port.Lines, AccountRepository, fakes.FakeAccounts),
    (esim_port.Outbox, OutboxRepository, fakes.FakeOutbox),
    (access_ports.KeyStore, KeyRepository, fakes.FakeKeys),
    (access_ports.IdempotencyStore, IdempotencyRepository, fakes.FakeIdempotency),
    (access_ports.Accounts, AccountRepository, fakes.FakeAccounts),
    (notify_ports.Outbox, OutboxRepository, fakes.FakeOutbox),
    (notify_ports.NoticeStore, OutboxRepository, fakes.FakeNoticeOutbox),
    (notify_ports.Plans, PlanRepository, fakes.FakePlans),
    (notify_ports.WebhookStore, WebhookRepository, fakes.FakeWebhooks),
    (notify_ports.LineSettings, AccountRepository, fakes.FakeNoticeAccounts),
    (ledger_ports.AccountStore, AccountRepository, fakes.FakeAccounts),
    (ledger_ports.PlanStore, PlanRepository, fakes.FakePlans),
    (ledger_ports.DirectoryStore, ApiRepository, fakes.FakeDirectory),
    (ledger_ports.LineImportStore, LineImportRepository, fakes.FakeLineImport),
    # Protocols the service tests implement in the test itself, or not at all.
    (business_metrics.MetricsStore, MetricsRepository, None),
    (StoredTotals, UsageTotals, None),
    (ingest_ports.IngestStore, IngestRepository, None),
    (ingest_ports.Books, AccountRepository, None),
    (ingest_ports.Checkpoints, BackgroundCheckpoints, None),
]
UNITS = [unit_of_work.Transaction, unit_of_work.Reading, charging_ports.ChargingUnit,
         esim_port.EsimUnit, access_ports.KeysUnit,
         access_ports.IdempotencyUnit, business_metrics.MetricsUnit, notify_ports.BookUnit,
         notify_ports.NoticeUnit, notify_ports.ThresholdUnit, notify_ports.WebhookUnit,
         notify_ports.DeliveryUnit, ledger_ports.LedgerUnit, ledger_ports.PlansUnit]
# Units of work with no fake (the ingest chunk's columns are tested on the database).
STORE_UNITS = [ingest_ports.IngestUnit]


def _methods(protocol: type) -> list[str]:
    return [name for name, value in vars(protocol).items()
            if callable(value) and not name.startswith("_")]


def _shape(function) -> list[tuple[str, object]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize(("protocol", "store", "fake"), PAIRS,
                         ids=[f"{p.__name__}-{s.__name__}" for p, s, _ in PAIRS])
def test_store_and_fake_have_the_protocol_methods(protocol, store, fake) -> None:
    methods = _methods(protocol)
    assert methods, protocol
    for name in methods:
        expected = _shape(getattr(protocol, name))
        for implementation in (store, fake) if fake is not None else (store,):
            assert hasattr(implementation, name), f"{implementation.__name__}.{name}"
            assert _shape(getattr(implementation, name)) == expected, \
                f"{implementation.__name__}.{name}"


@pytest.mark.parametrize("unit", UNITS, ids=[u.__name__ for u in UNITS])
def test_units_of_work_carry_the_repositories(unit) -> None:
    repositories = typing.get_type_hints(unit)
    store = typing.get_type_hints(UnitOfWork)
    probe = fakes.FakeUnitOfWork(fakes.FakeDatabase({}))
    with probe:
        for name in repositories:
            assert name in store, f"UnitOfWork.{name}"
            if name != "metrics":  # the figures have no fake (their test is integration)
                assert hasattr(probe, name), f"FakeUnitOfWork.{name}"
    for name in _methods(unit):
        assert hasattr(UnitOfWork, name) and hasattr(fakes.FakeUnitOfWork, name), name


@pytest.mark.parametrize("unit", STORE_UNITS, ids=[u.__name__ for u in STORE_UNITS])
def test_the_store_unit_of_work_carries_the_repositories(unit) -> None:
    store = typing.get_type_hints(UnitOfWork)
    for name in typing.get_type_hints(unit):
        assert name in store, f"UnitOfWork.{name}"
    for name in _methods(unit):
        assert hasattr(UnitOfWork, name), name
        assert _shape(getattr(UnitOfWork, name)) == _shape(getattr(unit, name)), name


def test_properties_of_the_protocols_are_the_stores() -> None:
    # `_methods` leaves properties out: each one a protocol declares is one on the store's
    # class (and the fake's) too.
    for protocol, store, fake in PAIRS:
        for name, value in vars(protocol).items():
            if isinstance(value, property):
                for implementation in (store, fake) if fake is not None else (store,):
                    assert isinstance(getattr(implementation, name, None), property), (
                        f"{implementation.__name__}.{name}")
