"""Usage: one event, or a batch of up to 10,000 with the semantics of `carryover ingest`.

Both are operator-only (usage comes from the network, not from subscribers).
A single event answers 409 when its event_id was already counted. A batch is
rated as one chunk by services.ingest.values, as a file is: duplicates are counted, not repeated,
and each row that cannot be taken comes back in `rejects` with its index and
why, while the good rows go on. Batch instants must carry an offset (a batch
may span accounts in different timezones). Events rated are counted on
`/metrics` (carryover_usage_events_rated_total, by route `one` or `batch`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Request

from carryover.api.deps import EngineDep, Operator
from carryover.api.problems import responses
from carryover.api.rest.idempotent import IdempotencyKey, respond
from carryover.api.rest.schemas import UsageBatchIn, UsageBatchOut, UsageIn, UsageOut, human
from carryover.domain.units import Unit
from carryover.services.ingest import values
from carryover.services.ingest.values import UsageRow
from carryover.services.ledger import operations as ledger_ops
from carryover.store.uow import UnitOfWork

router = APIRouter(prefix="/v1/usage", tags=["usage"], responses=responses(401, 403, 422, 429))


@router.post("", status_code=201, response_model=UsageOut, summary="Record one usage event",
             responses=responses(404, 409))
def record_usage(body: UsageIn, request: Request, eng: EngineDep, who: Operator,
                 idempotency_key: IdempotencyKey = None):
    def action() -> dict:
        recorded = ledger_ops.record_usage(
            UnitOfWork(eng), body.line, body.amount, body.at,
            body.received_at or datetime.now(UTC), body.event_id, Unit(body.unit),
            body.rating_group)
        request.app.state.carry.metrics.usage_rated.labels("one").inc()
        entries = recorded.outcome.entries
        overage = sum(e.amount for e in entries if e.kind == "overage")
        return {"line": recorded.line, "event_id": body.event_id, "amount": body.amount,
                "amount_human": human(body.amount, body.unit), "unit": body.unit,
                "late": recorded.outcome.late, "corrected": recorded.outcome.replayed,
                "debits": [{"bucket": e.bucket_id, "amount": e.amount,
                            "amount_human": human(e.amount, body.unit)}
                           for e in entries if e.kind == "debit"],
                "overage": overage, "overage_human": human(overage, body.unit)}
    return respond(request, eng, who, idempotency_key, body, action)


def _rows(body: UsageBatchIn, now: datetime) -> tuple[list[tuple[int, UsageRow]], list[dict]]:
    """The rows to rate (with their index in `rows`), and those refused before rating."""
    good, bad = [], []
    for i, row in enumerate(body.rows):
        naive = [k for k in ("at", "received_at")
                 if getattr(row, k) is not None and getattr(row, k).utcoffset() is None]
        if naive:
            bad.append({"row": i, "reason": f"{naive[0]}: needs an offset (Z or ±hh:mm)"})
        elif row.received_at is not None and row.received_at < row.at:
            bad.append({"row": i, "reason": "received_at: before the event's instant"})
        else:
            good.append((i, UsageRow(row.event_id, row.line, row.at, row.amount,
                                     row.received_at or now, Unit(row.unit),
                                     row.rating_group)))
    return good, bad


@router.post("/batch", status_code=200, response_model=UsageBatchOut,
             summary="Record up to 10,000 usage events (per-row rejects)")
def record_batch(body: UsageBatchIn, request: Request, eng: EngineDep, who: Operator,
                 idempotency_key: IdempotencyKey = None):
    def action() -> dict:
        good, rejects = _rows(body, datetime.now(UTC))
        summary = values.record_batch(UnitOfWork(eng), [r for _, r in good], "api",
                                      f"api-batch-{uuid.uuid4().hex[:16]}")
        rejects += [{"row": good[k][0], "reason": reason} for k, reason in summary.rejected]
        rejects.sort(key=lambda r: r["row"])
        request.app.state.carry.metrics.usage_rated.labels("batch").inc(summary.accepted)
        return {"rows": len(body.rows), "accepted": summary.accepted,
                "duplicates": summary.duplicates, "late": summary.late,
                "rejected": len(rejects), "rejects": rejects}
    return respond(request, eng, who, idempotency_key, body, action, status=200)
