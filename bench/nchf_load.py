"""Load bench of real-time charging (Nchf_ConvergedCharging v3) over HTTP, open loop.

A packet core (SMF) opens a charging session per PDU session, reports what it
used of each grant and asks for the next one, then releases the session. This
script plays the SMF for `--sessions` simulated sessions against `carryover
serve --workers N` on loopback, on SQLite and on PostgreSQL, and reports what
the server sustained:

- provisioning: `--sessions` lines (each its own account, plan
  tmobile-data-stash-10gb, opened the day before) with `carryover line import`,
  an operator key with `carryover apikey create`, a fresh database per backend
  (a throwaway PostgreSQL database, dropped at the end);
- the schedule is fixed in advance (open loop): `--rate` updates per second
  for `--duration` seconds, dealt to `--rate` x `--gap` sessions open at once,
  each sending one request every `--gap` seconds; sessions open and close all
  through the run (create, a few updates, release), `--sessions` in all.
  Each update reports 50-100 % of the previous grant as used (a real SMF
  reports what it used of its quota); the release reports the last grant's
  usage;
- `--schedule steady` instead: rate x gap sessions, each on its own line, open
  through the whole run: created during a ramp of one gap, then each reports
  1 MiB used and asks again every `--gap` seconds until `--duration`, then
  releases; the updates all fall after the ramp (the steady window);
- server CPU: the serve processes' CPU seconds (utime + stime of every process of
  the server's process group, from /proc) over the run, per answered update and
  per answered request, beside the null server's when `--null-server` runs;
- latency is measured from each request's *scheduled* instant to its response
  (no coordinated omission: a slow server delays later requests, and the delay
  counts), with at most `--max-in-flight` requests open on one keep-alive
  connector. Percentiles are over the answered requests; the others are
  errors. `service` is from sending to the answer; `client lag` is how late the
  client itself started a request (a busy client, not a slow server);
- after the run, with the server stopped: conservation. Line by line, the bytes
  the bench reported as used in answered requests must be the line's
  `usage_events`, one event per reported container (a report whose request got
  no answer may be stored, whole, or not at all); and per line, usage
  == debits + overage in the ledger and every bucket's ledger fold == its stored
  remaining (bench/ingest.py's check). A sample of requests and responses is
  validated against the 3GPP schemas (specs/3gpp, tests/nchf_schema.py).

Targets (the issue's, on PostgreSQL with `--workers 2`): >= 1,000 updates/s
sustained for 60 s, update p99 <= 20 ms, zero errors, conservation. They are
reported PASS/FAIL and do not change the exit status; the script exits 1 if
conservation fails or a run cannot complete. Traffic goes to 127.0.0.1 only;
the run is bounded by its schedule plus `--grace` seconds.

    .venv/bin/python bench/nchf_load.py                                  # both backends
    .venv/bin/python bench/nchf_load.py --backend postgresql --rate 500 --duration 30
    .venv/bin/python bench/nchf_load.py --backend sqlite --sessions 50 --duration 3 \\
        --rate 50 --workers 1 --json                                     # smoke run

See docs/performance.md ("Real-time quota (Nchf) load") for measured numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]  # bench/ingest.py, tests/nchf_schema.py

import ingest as ingest_bench  # noqa: E402  (the sibling benchmark: PG and balance checks)

API = "/nchf-convergedcharging/v3"
PLAN = "tmobile-data-stash-10gb"  # 10 GB a month: a session's few grants never exhaust it
REQUESTED = 10_000_000  # bytes asked for in every request (requestedUnit.totalVolume)
RATING_GROUP = 1
KINDS = ("create", "update", "release")
BACKENDS = ("sqlite", "postgresql", "null")
TARGET_RATE = 1000.0
TARGET_DURATION = 60.0
TARGET_P99_MS = 20.0
TARGET_CPU_MS = 1.0  # server CPU per update on PostgreSQL (issue 23)
RATE_TOLERANCE = 0.99  # the last response's latency stretches the window slightly
SCHEMA_SAMPLE_FIRST = 20  # validate the first N bodies of each kind, then every Nth
SCHEMA_SAMPLE_EVERY = 97
LIMITS = {"sessions": 200_000, "rate": 20_000.0, "duration": 900.0}


# --------------------------------------------------------------------------- schedule


@dataclass(frozen=True, slots=True)
class Op:
    at: float  # seconds after the start of the run
    session: int
    kind: str  # create | update | release


def lanes(sessions: int, rate: float, gap: float) -> int:
    """Sessions open at once: each sends one update every `gap` s, together `rate` per s."""
    return max(1, min(sessions, round(rate * gap)))


def schedule(sessions: int, rate: float, duration: float, gap: float) -> list[Op]:
    """Every request of the run in time order; updates exactly `rate` per second.

    The rate * duration update slots, one every 1/rate s, are dealt to C =
    lanes(...) lanes (slot j to lane j mod C), so a lane has a slot every G = C /
    rate s (= `gap` unless there are fewer sessions than rate * gap). Each lane
    runs its sessions one after the other (session i in lane i mod C), splitting
    its slots among them as evenly as possible, with the session boundaries of
    lane r moved r / C of a session earlier: so after the first C creates,
    sessions start and end all through the run at a steady rate, not in bursts,
    until the last C releases. A session is created G/2 before its first update
    and released G/2 after its last one; the first create is at 0.
    """
    updates = round(rate * duration)
    c = lanes(sessions, rate, gap)
    # Instants in integer half-slots (1 / (2 rate) s): a session with no update is
    # released at the instant it is created, and in floats rounding could put its
    # release first. Ties sort create, update, release.
    ops: list[tuple[int, int, int]] = []  # (half-slots, kind, session)
    for lane in range(c):
        slots = len(range(lane, updates, c))
        members = range(lane, sessions, c)
        n = len(members)
        bounds = [0] + [((m * c - lane) * slots) // (c * n) for m in range(1, n)] + [slots]
        for m, session in enumerate(members):
            first, end = bounds[m], bounds[m + 1]
            ops.append((2 * (lane + first * c), 0, session))
            ops += [(2 * (lane + q * c) + c, 1, session) for q in range(first, end)]
            ops.append((2 * (lane + end * c), 2, session))
    ops.sort()
    return [Op(half / (2 * rate), session, KINDS[kind]) for half, kind, session in ops]


def steady_schedule(rate: float, duration: float, gap: float) -> list[Op]:
    """`--schedule steady`: lanes(...) sessions, one per line, all open at once.

    Session i is created at i * gap / n (the ramp: creates spread over the first
    gap), updates every gap after that while before `duration`, and is released
    half a gap after its last update; so every update is in the steady window
    [gap, duration) and the update rate there is `rate`."""
    n = max(1, round(rate * gap))
    ops: list[tuple[float, int, int]] = []
    for session in range(n):
        created = session * gap / n
        ops.append((created, 0, session))
        at = created + gap
        last = created
        while at < duration:
            ops.append((at, 1, session))
            last, at = at, at + gap
        ops.append((last + gap / 2, 2, session))
    ops.sort()
    return [Op(at, session, KINDS[kind]) for at, kind, session in ops]


def schedule_of(args: argparse.Namespace) -> list[Op]:
    if args.schedule == "steady":
        return steady_schedule(args.rate, args.duration, args.gap)
    return schedule(args.sessions, args.rate, args.duration, args.gap)


STEADY_USED = 1024**2  # bytes each update of the steady schedule reports


def used_share(session: int, report: int, grant: int) -> int:
    """Bytes a session reports as used of `grant`: 50-100 % of it, deterministic."""
    percent = 50 + (session * 7919 + report * 104_729) % 51
    return grant * percent // 100


def percentiles(values_ms: list[float]) -> dict:
    """p50 / p99 / max / mean of latencies in ms (nearest rank: a reported value)."""
    if not values_ms:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None, "mean_ms": None}
    ordered = sorted(values_ms)

    def rank(q: float) -> float:
        return ordered[max(0, -(-len(ordered) * q // 100) - 1)]  # ceil(n q / 100) - 1

    return {"p50_ms": rank(50), "p99_ms": rank(99), "max_ms": ordered[-1],
            "mean_ms": sum(ordered) / len(ordered)}


@dataclass
class OpStats:
    """What happened to the requests of one kind."""

    scheduled: int = 0
    ok: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # scheduled -> answered, if ok
    service_ms: list[float] = field(default_factory=list)  # sent -> answered, if ok
    # How late the client itself was to start a request: a busy client, not a slow server.
    dispatch_lag_ms: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    first_at: float | None = None  # scheduled instant of the first one (loop clock)
    last_done: float | None = None
    done_per_second: Counter = field(default_factory=Counter)  # by second of the run

    def summary(self) -> dict:
        span = (self.last_done - self.first_at) if self.ok and self.last_done else 0.0
        seconds = sorted(self.done_per_second.items())
        inner = [n for _, n in seconds[1:-1]]  # the first and last second are partial
        return {"count": self.scheduled, "ok": self.ok,
                "errors": sum(self.errors.values()), "error_kinds": dict(self.errors),
                "seconds": span, "rate": self.ok / span if span > 0 else 0.0,
                "slowest_second": min(inner) if inner else None,
                **percentiles(self.latencies_ms),
                "service": _short(percentiles(self.service_ms)),
                "dispatch_lag": _short(percentiles(self.dispatch_lag_ms))}


def _short(stats: dict) -> dict:
    return {k.removesuffix("_ms"): v for k, v in stats.items()}


# --------------------------------------------------------------------------- the client


@dataclass
class Session:
    imsi: str
    ref: str | None = None
    sequence: int = 0  # invocationSequenceNumber of the next request
    report: int = 0  # localSequenceNumber of the next usedUnitContainer
    grant: int = 0
    failed: bool = False


@dataclass
class Ledger:
    """What the bench reported as used, in answered requests (what the server must hold).

    A request that got no answer (transport error, or cut at the deadline) may or
    may not have been applied: its container is *in doubt*, kept per line so the
    check can tell whether each one is stored whole or not at all."""

    used_bytes: int = 0
    containers: int = 0
    per_imsi: Counter = field(default_factory=Counter)  # bytes
    events_per_imsi: Counter = field(default_factory=Counter)
    in_doubt: dict[str, list[int]] = field(default_factory=dict)  # imsi -> bytes per container

    def answered(self, imsi: str, used: int) -> None:
        self.used_bytes += used
        self.containers += 1
        self.per_imsi[imsi] += used
        self.events_per_imsi[imsi] += 1

    def unanswered(self, imsi: str, used: int | None) -> None:
        if used is not None:
            self.in_doubt.setdefault(imsi, []).append(used)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def request_body(s: Session, session: int, kind: str, fixed_used: int | None = None
                 ) -> tuple[dict, int | None]:
    """The ChargingDataRequest for the session's next request, and the bytes it reports
    (`fixed_used` each time, else a share of the last grant)."""
    at = _now()
    unit: dict = {"ratingGroup": RATING_GROUP}
    if kind != "release":
        unit["requestedUnit"] = {"totalVolume": REQUESTED}
    used = None
    if kind != "create":
        used = fixed_used if fixed_used is not None else used_share(session, s.report, s.grant)
        unit["usedUnitContainer"] = [{"localSequenceNumber": s.report, "totalVolume": used,
                                      "triggerTimestamp": at}]
    body = {"nfConsumerIdentification": {"nodeFunctionality": "SMF"},
            "invocationTimeStamp": at, "invocationSequenceNumber": s.sequence,
            "multipleUnitUsage": [unit]}
    if kind == "create":
        body["subscriberIdentifier"] = f"imsi-{s.imsi}"
    return body, used


class Driver:
    """Sends the schedule's requests at their instants and records what came back."""

    def __init__(self, base: str, token: str, imsis: list[str], max_in_flight: int,
                 timeout: float, fixed_used: int | None = None) -> None:
        self.base, self.token, self.timeout = base + API, token, timeout
        self.fixed_used = fixed_used
        self.sessions = [Session(imsi) for imsi in imsis]
        self.stats = {k: OpStats() for k in KINDS}
        self.ledger = Ledger()
        self.samples: list[tuple[str, str, object]] = []  # (schema, what, body)
        self.seen: Counter = Counter()
        self.gate = asyncio.Semaphore(max_in_flight)
        self.max_in_flight = max_in_flight

    def _sample(self, schema: str, what: str, body: object) -> None:
        n = self.seen[what]
        self.seen[what] += 1
        if n < SCHEMA_SAMPLE_FIRST or n % SCHEMA_SAMPLE_EVERY == 0:
            self.samples.append((schema, what, body))

    async def run(self, ops: list[Op], deadline: float) -> None:
        import aiohttp

        loop = asyncio.get_running_loop()
        connector = aiohttp.TCPConnector(limit=self.max_in_flight, keepalive_timeout=30)
        headers = {"Authorization": f"Bearer {self.token}"}
        async with aiohttp.ClientSession(
                connector=connector, headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout)) as http:
            self.start = start = loop.time() + 0.2
            last: dict[int, asyncio.Task] = {}
            tasks = []
            for op in ops:
                due = start + op.at
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                self.stats[op.kind].dispatch_lag_ms.append((loop.time() - due) * 1000)
                task = loop.create_task(self._op(http, op, due, last.get(op.session)))
                last[op.session] = task
                tasks.append(task)
            left = deadline - (loop.time() - start)
            _, pending = await asyncio.wait(tasks, timeout=max(0.0, left))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _op(self, http, op: Op, due: float, previous: asyncio.Task | None) -> None:
        stats, s = self.stats[op.kind], self.sessions[op.session]
        stats.scheduled += 1
        if stats.first_at is None:
            stats.first_at = due
        try:
            if previous is not None:  # a session's requests go one after the other
                with contextlib.suppress(Exception):  # its own error is counted already
                    await asyncio.shield(previous)
            if s.failed:
                stats.errors["skipped: the session was not created"] += 1
                return
            if op.kind != "create" and s.ref is None:  # cannot happen: the schedule orders
                stats.errors["bench: no chargingDataRef yet"] += 1
                return
            async with self.gate:
                await self._send(http, op, due, s, stats)
        except asyncio.CancelledError:
            stats.errors["not answered by the deadline"] += 1
            raise

    async def _send(self, http, op: Op, due: float, s: Session, stats: OpStats) -> None:
        import aiohttp

        loop = asyncio.get_running_loop()
        body, used = request_body(s, op.session, op.kind, self.fixed_used)
        self._sample("ChargingDataRequest", f"{op.kind} request", body)
        url = (f"{self.base}/chargingdata" if op.kind == "create"
               else f"{self.base}/chargingdata/{s.ref}/{op.kind}")
        s.sequence += 1
        if used is not None:
            s.report += 1
        sent = loop.time()
        try:
            async with http.post(url, json=body) as response:
                status = response.status
                text = await response.text()
                location = response.headers.get("Location", "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            stats.errors[f"transport: {type(exc).__name__}"] += 1
            self.ledger.unanswered(s.imsi, used)
            s.failed = s.failed or op.kind == "create"
            return
        except asyncio.CancelledError:  # cut at the deadline while in flight
            self.ledger.unanswered(s.imsi, used)
            raise
        done = loop.time()
        expected = {"create": 201, "update": 200, "release": 204}[op.kind]
        if status != expected:
            stats.errors[f"HTTP {status}"] += 1
            with contextlib.suppress(ValueError):
                self._sample("ProblemDetails", f"{op.kind} problem", json.loads(text))
            s.failed = s.failed or op.kind == "create"
            return
        problem = self._answer(op, s, text, location)
        if problem:
            stats.errors[problem] += 1
            s.failed = s.failed or op.kind == "create"
            return
        if used is not None:
            self.ledger.answered(s.imsi, used)
        stats.ok += 1
        stats.latencies_ms.append((done - due) * 1000)
        stats.service_ms.append((done - sent) * 1000)
        stats.last_done = done
        stats.done_per_second[int(done - self.start)] += 1

    def _answer(self, op: Op, s: Session, text: str, location: str) -> str | None:
        """Take the session's ref and new grant from a 2xx answer; a problem if malformed."""
        if op.kind == "release":
            return None
        try:
            answer = json.loads(text)
            unit = next(u for u in answer["multipleUnitInformation"]
                        if u.get("ratingGroup") == RATING_GROUP)
        except (ValueError, KeyError, TypeError, StopIteration):
            return "answer without multipleUnitInformation for the rating group"
        self._sample("ChargingDataResponse", f"{op.kind} response", answer)
        s.grant = int((unit.get("grantedUnit") or {}).get("totalVolume") or 0)
        if op.kind == "create":
            head, _, ref = location.rpartition("/")
            if not ref or not head.endswith(f"{API}/chargingdata"):
                return f"Location header {location!r} is not .../chargingdata/{{ref}}"
            s.ref = ref
        return None


def check_schemas(samples: list[tuple[str, str, object]]) -> dict:
    """Validate the sampled bodies against TS 32.291 / TS 29.571 (after the run: no cost)."""
    from tests.nchf_schema import COMMON, NCHF, errors

    problems = []
    for schema, what, body in samples:
        document = COMMON if schema == "ProblemDetails" else NCHF
        for problem in errors(document, schema, body)[:3]:
            problems.append(f"{what}: {problem}")
    kinds = Counter(what for _, what, _ in samples)
    return {"checked": len(samples), "by_kind": dict(kinds), "problems": problems[:20],
            "problem_count": len(problems)}


# --------------------------------------------------------------------------- one backend


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 8) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    return ""


@dataclass(frozen=True, slots=True)
class Served:
    url: str
    group: int  # the server's process group (its pid: a session of its own)


def group_cpu_seconds(group: int) -> float:
    """CPU seconds (user + system) of the live processes of process group `group`."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        # After the command: state ppid pgrp session ... utime (12th) stime (13th).
        if int(fields[2]) == group:
            total += int(fields[11]) + int(fields[12])
    return total / tick


@contextlib.contextmanager
def _serve(what: str, argv: list[str], env: dict | None, folder: Path, log_name: str,
           port: int):
    """Run `argv` (a server on 127.0.0.1:`port`) until /healthz answers; yield its base
    URL; stop it by pid (its own session, so a worker left behind goes with its group)."""
    import httpx

    log_path = folder / log_name
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=folder, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise ingest_bench.BenchError(
                        f"{what} exited {proc.returncode}: {_tail(log_path)}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise ingest_bench.BenchError(f"{what} not ready in 60 s: "
                                                  f"{_tail(log_path)}")
                time.sleep(0.1)
            yield Served(base, proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@contextlib.contextmanager
def serving(url: str, workers: int, folder: Path):
    """`carryover serve` on 127.0.0.1 as a subprocess; yields its base URL."""
    import httpx

    port = _free_port()
    # A packet core's dedicated key: no rate limit, and checked once a minute per worker
    # rather than on every request (api_key_cache_seconds, docs/configuration.md); no
    # access log line per request (api_access_log), /metrics counts them.
    env = {**os.environ, "CARRYOVER_DATABASE_URL": url, "CARRYOVER_API_RATE_PER_SECOND": "0",
           "CARRYOVER_API_KEY_CACHE_SECONDS": "60", "CARRYOVER_WEBHOOK_WORKER": "false",
           "CARRYOVER_API_ACCESS_LOG": "false"}
    argv = [*ingest_bench._cli(), "serve", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers)]
    with _serve("carryover serve", argv, env, folder, "server.log", port) as served:
        paths = httpx.get(f"{served.url}/openapi.json", timeout=10).json().get("paths", {})
        if f"{API}/chargingdata" not in paths:
            raise ingest_bench.BenchError(f"the server has no {API}/chargingdata route")
        time.sleep(1.0)  # healthz answered from one worker: give the others a moment
        yield served


def provision(url: str, n: int, folder: Path) -> dict:
    """`line import` of n lines (one account each) and an operator key, through the CLI."""
    now = datetime.now(UTC)
    # The next bill-cycle boundary two weeks away: the run never crosses one.
    cycle_day = (now.day - 1 + 14) % 28 + 1
    start = (now - timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z")
    imsis = [f"00101{i:010d}" for i in range(n)]
    msisdns = [f"+4917{i:09d}" for i in range(n)]
    path = folder / "lines.csv"
    path.write_text("msisdn,imsi,account,plan,start\n" + "".join(
        f"{m},{s},nchf-{i:06d},{PLAN},{start}\n"
        for i, (m, s) in enumerate(zip(msisdns, imsis, strict=True))))
    t0 = time.perf_counter()
    run = ingest_bench.run_cli(url, ["line", "import", str(path), "--cycle-day", str(cycle_day)],
                               folder, "line-import")
    seconds = time.perf_counter() - t0
    if run.summary.get("imported") != n:
        raise ingest_bench.BenchError(f"line import: {run.summary}")
    key = ingest_bench.run_cli(url, ["apikey", "create", "--role", "operator", "--label",
                                     "nchf-bench"], folder, "apikey").summary
    return {"lines": n, "seconds": seconds, "cycle_day": cycle_day, "start": start,
            "imsis": imsis, "msisdns": msisdns, "token": key["token"]}


def explained(stored: tuple[int, int], reported: tuple[int, int], in_doubt: list[int]) -> bool:
    """Is one line's stored (bytes, events) its reported ones plus some unanswered containers?

    Each container in doubt is stored whole or not at all: the difference must be
    the (bytes, count) of one subset of them. Nothing in doubt: exact equality."""
    extra = (stored[0] - reported[0], stored[1] - reported[1])
    if len(in_doubt) > 16:  # 2**16 subsets is still cheap; beyond, bound the sum instead
        return 0 <= extra[1] <= len(in_doubt) and 0 <= extra[0] <= sum(in_doubt)
    sums = {(0, 0)}
    for amount in in_doubt:
        sums |= {(b + amount, n + 1) for b, n in sums}
    return extra in sums


def _stored_usage(url: str, imsis: list[str]) -> dict[str, tuple[int, int]]:
    """(bytes, events) of usage_events per line, for the bench's lines (by IMSI)."""
    from sqlalchemy import bindparam, create_engine, text

    from carryover.store.engine import normalize_url

    query = text("SELECT l.imsi, coalesce(sum(u.amount), 0), count(*) FROM usage_events u "
                 "JOIN lines l ON l.id = u.line AND l.account_id = u.account_id "
                 "WHERE l.imsi IN :imsis GROUP BY l.imsi").bindparams(
                     bindparam("imsis", expanding=True))
    stored = {}
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            for k in range(0, len(imsis), 5000):  # under every backend's parameter limit
                for imsi, amount, count in conn.execute(query, {"imsis": imsis[k:k + 5000]}):
                    stored[imsi] = (int(amount), int(count))
    finally:
        engine.dispose()
    return stored


def conservation(url: str, lines: dict, ledger: Ledger, check_lines: int | None) -> dict:
    """Stored usage == reported usage, line by line; then bench/ingest.py's ledger check."""
    imsis = lines["imsis"]
    stored = _stored_usage(url, imsis)
    wrong = []
    for imsi in imsis:
        mine = stored.get(imsi, (0, 0))
        reported = (ledger.per_imsi[imsi], ledger.events_per_imsi[imsi])
        if not explained(mine, reported, ledger.in_doubt.get(imsi, [])):
            wrong.append(f"line imsi {imsi}: stored {mine[0]} bytes in {mine[1]} events, the "
                         f"bench reported {reported[0]} in {reported[1]} (in doubt: "
                         f"{ledger.in_doubt.get(imsi, [])})")
    stored_bytes = sum(b for b, _ in stored.values())
    stored_events = sum(n for _, n in stored.values())
    n = len(imsis)
    step = max(1, n // check_lines) if check_lines else 1
    sample = list(range(0, n, step))[:check_lines or n]
    t0 = time.perf_counter()
    # The totals were just checked line by line (in-doubt containers included), so the
    # ledger check gets the stored ones: what matters there is usage == debits + overage
    # and each bucket's fold == remaining.
    ledger_check = ingest_bench.check_consistency(
        url, SimpleNamespace(msisdn=lines["msisdns"]), sample, stored_events, stored_bytes)
    in_doubt = [b for amounts in ledger.in_doubt.values() for b in amounts]
    return {"ok": not wrong and ledger_check["ok"], "reported_bytes": ledger.used_bytes,
            "reported_events": ledger.containers, "stored_bytes": stored_bytes,
            "stored_events": stored_events, "in_doubt_events": len(in_doubt),
            "in_doubt_bytes": sum(in_doubt), "lines_wrong": len(wrong), "ledger": ledger_check,
            "ledger_check_seconds": time.perf_counter() - t0,
            "problems": (wrong + ledger_check["problems"])[:10]}


def run_backend(url: str, folder: Path, args: argparse.Namespace) -> dict:
    """Provision, serve, drive the schedule, stop the server, then check what was stored."""
    folder.mkdir(parents=True, exist_ok=True)
    ops = schedule_of(args)
    lines = provision(url, 1 + max(op.session for op in ops), folder)
    with serving(url, args.workers, folder) as served:
        out, driver = drive(served, lines["token"], lines["imsis"], ops, args)
    ingest_bench.forget_engines()
    out["provision"] = {k: lines[k] for k in ("lines", "seconds", "cycle_day", "start")}
    out["schema"] = check_schemas(driver.samples)
    out["conservation"] = conservation(url, lines, driver.ledger, args.check_lines)
    return out


def drive(served: Served, token: str, imsis: list[str], ops: list[Op],
          args: argparse.Namespace) -> tuple[dict, Driver]:
    """Play the schedule against `base`; the client's own numbers and the driver.

    The client is an instrument, so it is kept from adding its own delays to what it
    measures (both measured on the 2-core VM of docs/performance.md, against
    `--null-server`, which answers at once):

    - its garbage collector is off for the run (after one collection, with the heap
      frozen). Its heap grows with every request it records, and a full collection
      of it paused the client for 50-117 ms at a time: the p99 of a server that
      does nothing read 245 ms;
    - it runs on one CPU (`--client-cpu`, default the first) while the server keeps
      them all. When the client migrated between the cores the server also uses,
      its requests and answers waited 50-200 ms in bursts: with the collector off,
      the do-nothing server's p99 read 62-94 ms unpinned and 4.5 ms pinned.
    """
    import gc

    driver = Driver(served.url, token, imsis, args.max_in_flight, args.timeout,
                    STEADY_USED if args.schedule == "steady" else None)
    saved = os.sched_getaffinity(0)
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        if args.client_cpu is not None:
            os.sched_setaffinity(0, {args.client_cpu})
        t0, cpu0 = time.perf_counter(), time.process_time()
        server0 = group_cpu_seconds(served.group)
        # The standard loop, not uvloop: uvloop's loop.time() counts in whole
        # milliseconds, cached per loop iteration, too coarse for a 20 ms p99.
        asyncio.run(driver.run(ops, ops[-1].at + args.grace))
        # The client's own CPU (not the server's: another process): on a small machine
        # the two share the cores, so this is what the bench takes from the server.
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        server_cpu = group_cpu_seconds(served.group) - server0
    finally:
        os.sched_setaffinity(0, saved)
        gc.enable()
        gc.unfreeze()
    answered = sum(driver.stats[k].ok for k in KINDS)
    updates = driver.stats["update"].ok
    return {"workers": args.workers, "wall_seconds": wall, "client_cpu_seconds": cpu,
            "server_cpu_seconds": server_cpu,
            "server_cpu_ms_per_update": 1000 * server_cpu / updates if updates else None,
            "server_cpu_ms_per_request": 1000 * server_cpu / answered if answered else None,
            "client_cpu": args.client_cpu, "schedule_seconds": ops[-1].at,
            "ops": {k: driver.stats[k].summary() for k in KINDS},
            "used_bytes": driver.ledger.used_bytes,
            "containers": driver.ledger.containers}, driver


@contextlib.contextmanager
def serving_null(workers: int, folder: Path):
    """bench/nchf_null_server.py under uvicorn with `workers` workers; yields its base URL."""
    port = _free_port()
    argv = [sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "bench"),
            "nchf_null_server:app", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    with _serve("the null server", argv, None, folder, "null-server.log", port) as served:
        time.sleep(1.0)  # as for carryover serve: the other workers a moment
        yield served


def run_null(folder: Path, args: argparse.Namespace) -> dict:
    """The floor: the same client and schedule against a server that does nothing."""
    folder.mkdir(parents=True, exist_ok=True)
    ops = schedule_of(args)
    imsis = [f"0010{i:011d}" for i in range(1 + max(op.session for op in ops))]
    with serving_null(args.workers, folder) as served:
        out, driver = drive(served, "null", imsis, ops, args)
    out["schema"] = check_schemas(driver.samples)
    return out


def run_sqlite(folder: Path, args: argparse.Namespace) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'carryover.db'}"
    return {"url": url, **run_backend(url, folder, args)}


def run_postgres(folder: Path, args: argparse.Namespace) -> dict:
    from sqlalchemy import create_engine, text

    with ingest_bench.pg_database(args.pg) as url:
        engine = create_engine(url)
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
        engine.dispose()
        from carryover.settings import redact_url

        return {"url": redact_url(url), "server_version": version,
                **run_backend(url, folder, args)}


# --------------------------------------------------------------------------- report


def targets(result: dict, args: argparse.Namespace) -> list[dict]:
    """The issue's targets for each backend that ran; they apply to PostgreSQL."""
    out = []
    for backend in ("sqlite", "postgresql"):
        b = result.get(backend) or {}
        if "ops" not in b:
            continue
        update = b["ops"]["update"]
        errors = sum(op["errors"] for op in b["ops"].values()) + b["schema"]["problem_count"]
        applies = backend == "postgresql"
        rows = [
            ("updates/s sustained", update["rate"], f">= {TARGET_RATE:,.0f} for "
             f"{TARGET_DURATION:.0f} s", update["rate"] >= TARGET_RATE * RATE_TOLERANCE
             and args.rate >= TARGET_RATE and args.duration >= TARGET_DURATION,
             f"offered {args.rate:,.0f}/s for {args.duration:g} s"),
            ("update p99 (ms)", update["p99_ms"], f"<= {TARGET_P99_MS:.0f}",
             update["p99_ms"] is not None and update["p99_ms"] <= TARGET_P99_MS, ""),
            ("errors (requests + schema)", errors, "0", errors == 0, ""),
            ("server CPU per update (ms)", b["server_cpu_ms_per_update"],
             f"<= {TARGET_CPU_MS:.1f}", b["server_cpu_ms_per_update"] is not None
             and b["server_cpu_ms_per_update"] <= TARGET_CPU_MS, "every serve process"),
            ("conservation", "ok" if b["conservation"]["ok"] else "broken", "ok",
             b["conservation"]["ok"], ""),
        ]
        for name, measured, goal, ok, note in rows:
            out.append({"backend": backend, "target": name, "measured": measured, "goal": goal,
                        "pass": bool(ok), "applies": applies,
                        "note": note if applies else "for information: the target is "
                                                     "PostgreSQL's"})
    return out


def _cpu(b: dict) -> str:
    per_update = b.get("server_cpu_ms_per_update")
    return (f"the server used {b['server_cpu_seconds']:.1f} s of CPU, "
            f"{_ms(per_update)} ms per update answered "
            f"({_ms(b.get('server_cpu_ms_per_request'))} ms per request)")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def print_report(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=150)
    c = r["config"]
    table = Table(title=f"Nchf load: {c['sessions']:,} sessions, {c['rate']:,.0f} updates/s "
                        f"offered for {c['duration']:g} s, --workers {c['workers']}")
    for name in ("backend", "op", "count", "ok", "errors", "req/s", "p50 ms", "p99 ms",
                 "max ms", "service p99 ms", "client lag p99 ms", "slowest 1 s"):
        table.add_column(name, justify="left" if name in ("backend", "op") else "right")
    for backend in BACKENDS:
        b = r.get(backend) or {}
        for kind, op in (b.get("ops") or {}).items():
            table.add_row(backend, kind, f"{op['count']:,}", f"{op['ok']:,}",
                          f"{op['errors']:,}", f"{op['rate']:,.0f}", _ms(op["p50_ms"]),
                          _ms(op["p99_ms"]), _ms(op["max_ms"]), _ms(op["service"]["p99"]),
                          _ms(op["dispatch_lag"]["p99"]),
                          "-" if op["slowest_second"] is None else f"{op['slowest_second']:,}")
    console.print(table)
    for backend in BACKENDS:
        b = r.get(backend) or {}
        if "skipped" in b or "error" in b:
            console.print(f"[yellow]{backend}[/yellow]: {b.get('skipped') or b.get('error')}")
            continue
        if not b:
            continue
        for kind, op in b["ops"].items():
            for reason, n in op["error_kinds"].items():
                console.print(f"  {backend} {kind}: {n:,} x {reason}", markup=False)
        if "conservation" not in b:  # the null server: nothing stored, nothing to check
            console.print(
                f"{backend}: the floor (bench/nchf_null_server.py answers at once, stores "
                f"nothing). Schemas: {b['schema']['checked']} bodies checked, "
                f"{b['schema']['problem_count']} problems. Run {b['wall_seconds']:.1f} s "
                f"wall, of which the client used {b['client_cpu_seconds']:.1f} s of CPU; "
                f"{_cpu(b)}.")
            continue
        cons, schema = b["conservation"], b["schema"]
        verdict = "[green]conserved[/green]" if cons["ok"] else "[bold red]NOT conserved[/]"
        console.print(
            f"{backend}: {verdict}: {cons['reported_events']:,} reports answered, "
            f"{cons['reported_bytes']:,} bytes used ({cons['in_doubt_events']:,} reports of "
            f"{cons['in_doubt_bytes']:,} bytes unanswered), {cons['stored_events']:,} events / "
            f"{cons['stored_bytes']:,} bytes stored; ledger check of "
            f"{cons['ledger']['lines_checked']:,} lines, {cons['ledger']['buckets_checked']:,} "
            f"buckets in {cons['ledger_check_seconds']:.1f} s. Schemas: {schema['checked']} "
            f"bodies checked, {schema['problem_count']} problems. Lines provisioned in "
            f"{b['provision']['seconds']:.1f} s; run {b['wall_seconds']:.1f} s wall, of "
            f"which the client used {b['client_cpu_seconds']:.1f} s of CPU; {_cpu(b)}.")
        for problem in cons["problems"] + schema["problems"]:
            console.print(f"  {problem}", markup=False)
    tt = Table(title="Targets (the issue's: PostgreSQL, --workers 2)")
    for name in ("backend", "target", "measured", "goal", "result", "note"):
        tt.add_column(name, justify="left" if name in ("backend", "target", "note") else "right")
    for t in r["targets"]:
        m = t["measured"]
        measured = f"{m:,.1f}" if isinstance(m, float) else f"{m:,}" if isinstance(m, int) \
            else str(m)
        verdict = ("[green]PASS[/green]" if t["pass"] else "[bold red]FAIL[/bold red]") \
            if t["applies"] else ("pass" if t["pass"] else "fail")
        tt.add_row(t["backend"], t["target"], measured, t["goal"], verdict, t["note"])
    console.print(tt)
    m = r["machine"]
    pinned = "client pinned to CPU " + str(c["client_cpu"]) if c["client_cpu"] is not None \
        else "client not pinned"
    console.print(f"python {m['python']}, aiohttp {m['aiohttp']}, SQLite {m['sqlite']}, "
                  f"PostgreSQL {m.get('postgresql') or '-'}, nproc {m['nproc']} (client and "
                  f"server share them; {pinned}), load average {m['loadavg_before'][0]} before and "
                  f"{m['loadavg_after'][0]} after; Nchf code digest {r['code_sha256']}")
    if not r["consistent"]:
        console.print("[bold red]exit 1: a run failed or usage was not conserved[/bold red]")


# --------------------------------------------------------------------------- main


def code_digest() -> str:
    """A digest of the Nchf code measured (read before the runs: it may change under one)."""
    import hashlib

    digest = hashlib.sha256()
    src = ROOT / "src" / "carryover"
    for path in sorted([src / "api" / "nchf.py", src / "domain" / "quota.py",
                        *src.glob("services/charging*.py"), *src.glob("store/charging*.py")]):
        with contextlib.suppress(OSError):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def run(args: argparse.Namespace) -> dict:
    import aiohttp

    load_before = os.getloadavg()
    result: dict = {"code_sha256": code_digest(), "config": {k: getattr(args, k) for k in (
        "backend", "schedule", "sessions", "rate", "duration", "gap", "workers", "max_in_flight",
        "timeout", "grace", "check_lines", "client_cpu", "null_server")}}
    errors: list[str] = []
    with contextlib.ExitStack() as stack:
        if args.workdir:
            work = Path(args.workdir).resolve()
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-nchf-")))
        for backend, runner in (("sqlite", run_sqlite), ("postgresql", run_postgres),
                                ("null", run_null)):
            if (backend == "null") != args.null_server or \
                    (backend != "null" and args.backend not in (backend, "both")):
                continue
            if backend == "postgresql" and not args.pg:
                result[backend] = {"skipped": "--pg none"}
                continue
            try:
                result[backend] = runner(work / backend, args)
            except ingest_bench.PgUnavailable as exc:
                result[backend] = {"skipped": str(exc)}
            except ingest_bench.BenchError as exc:
                errors.append(f"{backend}: {exc}")
                result[backend] = {"error": str(exc)}
    ran = [b for b in (result.get("sqlite"), result.get("postgresql"), result.get("null"))
           if b and "ops" in b]
    result["errors"] = errors
    result["consistent"] = bool(ran) and not errors and all(
        b["conservation"]["ok"] for b in ran if "conservation" in b)
    result["targets"] = targets(result, args)
    applying = [t for t in result["targets"] if t["applies"]]
    result["pass"] = bool(applying) and all(t["pass"] for t in applying)
    pg = result.get("postgresql") or {}
    result["machine"] = {**ingest_bench.machine(pg.get("server_version")),
                         "aiohttp": aiohttp.__version__,
                         "loadavg_before": [round(x, 2) for x in load_before],
                         "loadavg_after": [round(x, 2) for x in os.getloadavg()]}
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--workers", type=int, default=2, help="carryover serve --workers (2)")
    p.add_argument("--rate", type=float, default=TARGET_RATE,
                   help="updates per second offered (1000); creates and releases too")
    p.add_argument("--duration", type=float, default=TARGET_DURATION,
                   help="seconds of updates (60)")
    p.add_argument("--sessions", type=int, default=10_000, help="charging sessions (10,000)")
    p.add_argument("--schedule", choices=("mixed", "steady"), default="mixed",
                   help="mixed: sessions open and close all through the run; steady: "
                        "rate x gap sessions, one per line, open all through it, each "
                        "reporting 1 MiB every --gap s after a ramp (--sessions unused)")
    p.add_argument("--gap", type=float, default=1.0,
                   help="seconds between two requests of one session (1.0): rate x gap "
                        "sessions are open at once")
    p.add_argument("--max-in-flight", type=int, default=256,
                   help="requests open at once, at most (256)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds one request may take")
    p.add_argument("--grace", type=float, default=30.0,
                   help="seconds after the last scheduled request before the rest are dropped")
    p.add_argument("--check-lines", type=int, default=None, metavar="N",
                   help="lines the ledger check folds (default: all)")
    p.add_argument("--pg", default=ingest_bench.DEFAULT_PG, metavar="URL",
                   help="PostgreSQL server for a throwaway database; 'none' to skip")
    p.add_argument("--client-cpu", default="first", metavar="N|none",
                   help="the CPU the client runs on while it drives the schedule (the "
                        "first it may use); 'none' lets it move (the server has them all)")
    p.add_argument("--null-server", action="store_true",
                   help="the floor: drive bench/nchf_null_server.py, which answers at once "
                        "and stores nothing, instead of carryover (no database, no check)")
    p.add_argument("--workdir", default=None,
                   help="keep databases, CSV and server logs here; default: a temp dir")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--save", metavar="PATH", default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    if not 1 <= args.sessions <= LIMITS["sessions"]:
        p.error(f"--sessions must be 1..{LIMITS['sessions']:,}")
    if not 0 < args.rate <= LIMITS["rate"] or not 0 < args.duration <= LIMITS["duration"]:
        p.error(f"--rate must be in (0, {LIMITS['rate']:,.0f}] and --duration in "
                f"(0, {LIMITS['duration']:.0f}]")
    if min(args.workers, args.max_in_flight) < 1 or min(args.timeout, args.gap) <= 0 \
            or args.grace < 0:
        p.error("--workers, --max-in-flight, --timeout and --gap must be positive")
    if args.client_cpu.strip().lower() in ("", "none"):
        args.client_cpu = None
    else:
        cpus = sorted(os.sched_getaffinity(0))
        if args.client_cpu == "first":
            args.client_cpu = str(cpus[0])
        if not args.client_cpu.isdigit() or int(args.client_cpu) not in cpus:
            p.error(f"--client-cpu must be one of {cpus} or 'none'")
        args.client_cpu = int(args.client_cpu)
    if args.pg.strip().lower() in ("", "none"):
        args.pg = None
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=2, default=str)
    if args.save:
        Path(args.save).write_text(text + "\n")
    if args.json:
        print(text)
    else:
        print_report(result)
    return 0 if result["consistent"] else 1


if __name__ == "__main__":
    sys.exit(main())
