"""Settings: where the data lives and how the engine behaves, read from the environment.

Every setting has an environment variable `CARRYOVER_<NAME>` and may also come
from a `.env` file in the working directory; the environment wins over the file.
docs/configuration.md documents each one, and a test keeps the two in step.

The database URL may hold a password, so it never appears in a repr or a log:
print `settings.redacted_url()` instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE_URL = "sqlite:///./carryover.db"
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
# A notification token is a shared secret: long enough that it cannot be guessed.
MIN_TOKEN_LENGTH = 32
_SECRET_QUERY_KEYS = frozenset({"password", "passfile", "sslpassword", "sslkey"})


class Settings(BaseSettings):
    """The whole configuration of one carryover process."""

    model_config = SettingsConfigDict(
        env_prefix="CARRYOVER_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,  # a rejected URL may carry a password
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL of the database: sqlite:///path or "
                    "postgresql+psycopg://user:password@host:port/dbname.",
    )
    grace_hours: int = Field(
        default=48, ge=0,
        description="Hours after a cycle boundary during which late usage is still rated "
                    'in its own cycle (docs/semantics.md, "Late usage").',
    )
    clock_skew_seconds: int = Field(
        default=300, ge=0, le=86_400,
        description="Seconds a written instant (usage at/received_at, top-ups, plan "
                    "changes, a line's start) may be ahead of the server's clock; later "
                    "is refused (docs/semantics.md, Bounds).")
    read_ahead_days: int = Field(
        default=1098, ge=0, le=36_600,
        description="Days ahead of now a balance, statement or QoS read may look "
                    "(default three years); a read past now computes in memory and "
                    "commits nothing (docs/semantics.md, Bounds).")
    statement_timeout_seconds: float = Field(
        default=30.0, ge=0,
        description="PostgreSQL statement_timeout of every connection carryover opens: "
                    "no one statement holds the database longer (0 turns it off). SQLite "
                    "has no equivalent; there the bounded window keeps each request's "
                    "work bounded, and writers wait at most sqlite_busy_timeout.")
    echo_sql: bool = Field(default=False, description="Log every SQL statement (debugging).")
    sqlite_busy_timeout: float = Field(
        default=30.0, gt=0,
        description="Seconds a SQLite writer waits for another writer before giving up.",
    )

    # eSIM provisioning (docs/esim.md) ------------------------------------------------
    es2plus_url: str = Field(
        default="http://127.0.0.1:8700",
        description="Base URL of the SM-DP+'s ES2+ interface; the default is the local "
                    "emulator (carryover smdp serve), for development only.",
    )
    es2plus_requester_id: str = Field(
        default="carryover",
        description="functionRequesterIdentifier sent in every ES2+ request header.",
    )
    es2plus_client_cert: str | None = Field(
        default=None, description="Mutual TLS: PEM file of the operator's client certificate.")
    es2plus_client_key: str | None = Field(
        default=None, description="Mutual TLS: PEM file of the client certificate's key.")
    es2plus_ca_file: str | None = Field(
        default=None, description="PEM file of the CA that signed the SM-DP+'s certificate.")
    es2plus_timeout: float = Field(
        default=10.0, gt=0, description="Seconds an ES2+ call may take before it is retried.")
    es2plus_retries: int = Field(
        default=3, ge=0, description="Retries of an ES2+ call that failed in transit.")
    es2plus_backoff: float = Field(
        default=0.5, ge=0,
        description="Seconds before the first retry; each further retry waits twice as long.")
    es2plus_notification_tokens: dict[str, SecretStr] = Field(
        default={},
        description="The SM-DP+s allowed to post handleDownloadProgressInfo: name -> the "
                    "bearer token each presents (Authorization: Bearer), as JSON, e.g. "
                    "'{\"smdp.example.net\": \"<32+ random characters>\"}'. Empty: every "
                    "notification is refused with 401.",
    )
    smdp_emulator_token: SecretStr | None = Field(
        default=None,
        description="Development only: the bearer token the SM-DP+ emulator (carryover smdp "
                    "serve) presents when it notifies the operator.",
    )
    smdp_address: str | None = Field(
        default=None,
        description="SM-DP+ FQDN for activation codes when confirmOrder returns none; "
                    "default: the host of es2plus_url.",
    )
    esim_low_stock_threshold: int = Field(
        default=10, ge=0,
        description="Warn when a profile type has fewer available profiles than this.")
    esim_new_iccid_on_move: bool = Field(
        default=False,
        description="esim move orders a fresh ICCID instead of reusing the line's own.")

    # HTTP API (docs/api.md) -----------------------------------------------------------
    api_rate_per_second: float = Field(
        default=50.0, ge=0,
        description="Requests per second each API key may make (per worker process with "
                    "the memory store, see api_rate_limit_store); 0 turns the limit off. "
                    "Over it: 429 with Retry-After.")
    api_rate_burst: int = Field(
        default=200, ge=1, description="Requests an API key may make at once before "
                                       "api_rate_per_second applies.")
    api_rate_limit_store: Literal["auto", "memory", "database"] = Field(
        default="auto",
        description="Where the rate limit of each API key lives: memory (per worker "
                    "process), database (shared by every worker and host), or auto: "
                    "database when `carryover serve --workers N` runs more than one worker, "
                    "else memory.")
    api_key_cache_seconds: float = Field(
        default=0, ge=0,
        description="Seconds a worker process may reuse an API key it has checked, instead "
                    "of looking it up again; a key revoked meanwhile keeps working that long "
                    "in that process. 0 (default): every request looks the key up.")
    portal_session_minutes: int = Field(
        default=480, ge=1, le=60 * 24 * 30,
        description="Minutes a subscriber portal session lasts after sign-in (8 hours).")
    portal_link_minutes: int = Field(
        default=15, ge=1, le=60 * 24 * 7,
        description="Minutes a one-time portal sign-in link stays usable when "
                    "`carryover portal link` is not given --ttl.")
    portal_base_url: str = Field(
        default="http://127.0.0.1:8000", max_length=500,
        description="Where subscribers reach `carryover serve`: the start of the links "
                    "`carryover portal link` prints.")
    api_access_log: bool = Field(
        default=True,
        description="Whether `carryover serve` logs a line per request (uvicorn's access "
                    "log). Off saves about a tenth of a worker's CPU per request under a "
                    "packet core's load; the /metrics counters count requests either way.")
    api_max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024,
        description="Largest request body the API accepts (413 above it); a usage batch "
                    "of 10,000 events fits in the default.")


    # Webhooks (docs/api.md, "Webhooks") ---------------------------------------------------
    webhook_backoff: float = Field(
        default=10.0, ge=0,
        description="Seconds before a failed webhook delivery is retried; each further "
                    "retry waits twice as long.")
    webhook_max_attempts: int = Field(
        default=10, ge=1,
        description="Attempts of one webhook delivery before it becomes a dead letter.")
    webhook_timeout: float = Field(
        default=10.0, gt=0, description="Seconds one webhook POST may take.")
    webhook_poll_seconds: float = Field(
        default=2.0, gt=0,
        description="Seconds the delivery worker waits between passes over the outbox.")
    webhook_worker: bool = Field(
        default=True,
        description="Run the webhook delivery worker inside `carryover serve` (in the one "
                    "worker process that holds the deployment's delivery lock).")
    webhook_concurrency: int = Field(
        default=8, ge=1, le=256,
        description="Endpoints the delivery worker sends to at once (one POST at a time "
                    "per endpoint), so a slow endpoint does not hold up the others.")
    webhook_allow_private_targets: bool = Field(
        default=False,
        description="Allow webhook URLs whose host is loopback, private, link-local, "
                    "unspecified, multicast or reserved (tests and labs only; "
                    "docs/security.md).")

    # Real-time charging, Nchf (docs/nchf.md) ----------------------------------------------
    nchf_max_grant: int = Field(
        default=100 * 1024**2, ge=1,
        description="Largest grant of one rating group in one answer, in bytes (default "
                    "100 MB); also what an unlimited plan or a request without "
                    "requestedUnit gets.")
    nchf_threshold_percent: int = Field(
        default=20, ge=0, le=100,
        description="volumeQuotaThreshold as a percentage of the grant: the packet core "
                    "asks again when this much of the grant is left (0: no threshold).")
    nchf_validity_seconds: int = Field(
        default=3600, ge=1,
        description="Longest validityTime of a grant, in seconds; a grant never outlives "
                    "the cycle or the bucket it draws from.")
    nchf_hold_margin_seconds: int = Field(
        default=60, ge=0,
        description="Seconds after validityTime during which a grant that was neither "
                    "reported nor released still holds its bytes.")
    nchf_max_batch: int = Field(
        default=64, ge=1, le=10_000,
        description="Most Nchf requests answered in one transaction (group commit): "
                    "requests that arrive while one batch commits share the next. "
                    "1 answers each request in a transaction of its own.")
    nchf_cached_accounts: int = Field(
        default=20_000, ge=0,
        description="Accounts whose books (buckets, counters, holds) a worker process "
                    "keeps between Nchf batches, checked against the account's version "
                    "under its lock so another writer's change is always seen. 0: read "
                    "every book from the database for each batch.")
    nchf_lanes: int = Field(
        default=1, ge=1, le=64,
        description="Threads per worker process answering Nchf batches on PostgreSQL, "
                    "each with its own connection, so that one's CPU work overlaps "
                    "another's waits for the database. A session's requests always go "
                    "to the same lane. SQLite uses one (it has one writer at a time). "
                    "The threads of one process share the GIL: on 2 cores one lane "
                    "answered faster than two (docs/performance.md).")
    nchf_local_sequence: Literal["session", "report"] = Field(
        default="session",
        description="How the SMF numbers used-unit containers (localSequenceNumber): "
                    "'session', once per rating group across the session (TS 32.291; a "
                    "container sent again in a later request is counted once), or "
                    "'report', afresh in every report (a container is the report's).")
    nchf_notify_poll_seconds: float = Field(
        default=0.5, gt=0, le=60,
        description="How often each serve worker looks for re-authorizations to send to "
                    "packet cores (ChargingNotifyRequest to a session's notifyUri).")
    nchf_notify_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60,
        description="Cut-off of one re-authorization attempt, in seconds.")
    nchf_notify_max_attempts: int = Field(
        default=6, ge=1, le=100,
        description="Attempts of a re-authorization before it is given up (dead); the "
                    "wait doubles from 1 s between them.")
    nchf_notify_secret: str | None = Field(
        default=None, min_length=16,
        description="Sign re-authorizations with this secret (HMAC-SHA256 headers, as "
                    "webhooks); unset: unsigned (SBI deployments secure them with TLS).")
    nchf_notify_private_targets: bool = Field(
        default=True,
        description="Allow notifyUri hosts on loopback or private networks (where packet "
                    "cores usually are); false refuses them as webhook targets are.")
    nchf_rating_groups: dict[int, str] = Field(
        default={},
        description="3GPP rating group number -> carryover rating group, as JSON, e.g. "
                    "'{\"20\": \"hotspot\"}'; unmapped rating groups are general data.")

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL; expected sqlite:///path or "
                "postgresql+psycopg://user@host/dbname") from None
        if url.get_backend_name() not in SUPPORTED_BACKENDS:
            raise ValueError(
                f"unsupported database {url.get_backend_name()!r} in "
                f"{redact_url(url)}; use sqlite or postgresql")
        return value

    @field_validator("es2plus_notification_tokens")
    @classmethod
    def _strong_tokens(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, token in value.items():
            if len(token.get_secret_value()) < MIN_TOKEN_LENGTH:
                raise ValueError(f"the token of SM-DP+ {name!r} has fewer than "
                                 f"{MIN_TOKEN_LENGTH} characters")
        return value

    def activation_address(self) -> str | None:
        """The SM-DP+ address for activation codes: smdp_address, else es2plus_url's host."""
        return self.smdp_address or urlsplit(self.es2plus_url).hostname

    def redacted_url(self) -> str:
        """The database URL with any password replaced by ***, safe to print."""
        return redact_url(self.database_url)

    @property
    def grace_seconds(self) -> int:
        return self.grace_hours * 3600

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, (self.redacted_url() if name == "database_url" else value)


def redact_url(url: str | URL) -> str:
    """Render a database URL with its password (and password-like query keys) hidden."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "<unparseable database URL>"
    secret = {key: "***" for key in parsed.query if key.lower() in _SECRET_QUERY_KEYS}
    if secret:
        parsed = parsed.update_query_dict(secret)
    return parsed.render_as_string(hide_password=True)


def get_settings(**overrides: Any) -> Settings:
    """Read the settings now (environment, then `.env`, then defaults).

    Not cached: it is cheap, and tests and the CLI runner change the environment
    between calls. Keyword overrides win over every source.
    """
    return Settings(**overrides)
