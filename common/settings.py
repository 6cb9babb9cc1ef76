"""The one declaration of every ``STEPBOARD_*`` setting: type, default, bounds, help, readers.

Each Settings/Config class reads its variables through :func:`read`, and its dataclass
field defaults come from :func:`default`, so a default or a bound is written only here.
``docs/configuration.md`` is generated from :data:`SETTINGS` (``make config-doc``) and the
Helm chart's value bounds are checked against it (tests/unit/test_settings_registry.py).

A default that depends on other settings or on the component is declared as
:class:`Derived` (its rule in words, for the docs) or :class:`PerComponent`; the reader
that knows the other settings computes a derived default, in one place, and passes it to
:func:`read`. A lower bound that depends on another setting works the same way: the
registry holds the static bound, the reader passes the tighter one.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from common.config import (
    REQUIRED,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_str,
)

# Who reads a setting: the three servers, the two workers, and the command-line tools
# (stack scripts, the bench, health checks).
COMPONENTS = ("ingest", "social", "rank", "consumer", "precompute", "archive", "tools")
SERVERS = ("ingest", "social", "rank")
SERVICES = ("ingest", "social", "rank", "consumer", "precompute", "archive")
KINDS = ("int", "float", "str", "bool", "list", "choice")
# A precomputed ranking is current for this many precompute intervals by default.
HOT_MAX_AGE_INTERVALS = 3
# The largest ranking (a user and their friends) the ranking server computes per call by
# default; the cost grows with the size (for 1,000,000 users: about 2 s of CPU and a 17 MB
# score read per call).
LIVE_RANKING_MAX_USERS = 20_000


@dataclass(frozen=True)
class Derived:
    """A default computed from other settings by the reader; ``rule`` says how."""

    rule: str


@dataclass(frozen=True)
class PerComponent:
    """A default that differs by component (component → value)."""

    values: Mapping[str, object]


@dataclass(frozen=True)
class Setting:
    """One ``STEPBOARD_<name>`` variable: ``kind`` (one of :data:`KINDS`) picks the parser,
    ``default`` is a value, ``REQUIRED``, :class:`Derived` or :class:`PerComponent`,
    ``minimum``/``maximum`` bound numbers and ``choices`` a ``choice``; ``components`` read
    it and ``concern`` groups it in the docs."""

    name: str
    kind: str
    default: object
    help: str
    components: tuple[str, ...]
    concern: str
    minimum: float | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()

    @property
    def env_name(self) -> str:
        """The environment variable's full name."""
        return f"STEPBOARD_{self.name}"


def _declare(concern: str, components: tuple[str, ...], *settings: tuple) -> list[Setting]:
    """Settings of one concern; each tuple is (name, kind, default, help[, bounds])."""
    return [
        Setting(name, kind, fallback, text, components, concern, **(bounds[0] if bounds else {}))
        for name, kind, fallback, text, *bounds in settings
    ]


_ALL = (
    _declare(
        "Logging", SERVICES,
        ("LOG_LEVEL", "choice", "info",
         "log level; logs are JSON lines on stderr",
         {"choices": ("debug", "info", "warning", "error")}),
    )
    + _declare(
        "Servers", SERVERS,
        ("GRPC_PORT", "int", PerComponent({"ingest": 50051, "social": 50052, "rank": 50053}),
         "gRPC listen port (0 = any free port)", {"minimum": 0, "maximum": 65535}),
        ("GRPC_HOST", "str", "[::]",
         "address the gRPC port is bound on (`[::]`: every address; e.g. `127.0.0.2` to run "
         "two servers on one port)"),
        ("MAX_CONNECTION_AGE_S", "float", 0.0,
         "close each client connection after about this long (GOAWAY, ±10% jitter), so "
         "clients reconnect, re-resolve the server's name and spread over new replicas "
         "(0 = never; the chart sets 300)", {"minimum": 0.0}),
        ("MAX_CONNECTION_AGE_GRACE_S", "float", 30.0,
         "how long calls in flight on a connection closed for its age may still finish",
         {"minimum": 0.0}),
        ("MAX_WORKERS", "int", 32, "handler threads", {"minimum": 1, "maximum": 1024}),
        ("GRACE_SECONDS", "float", 10.0,
         "how long in-flight RPCs may finish on SIGTERM", {"minimum": 0.0}),
        ("MAX_MESSAGE_BYTES", "int", 4 * 1024 * 1024,
         "largest request/response", {"minimum": 1024}),
        ("AUTH_TOKENS", "list", (),
         "`caller:token,...`; when set, calls need `authorization: Bearer <token>` "
         "(health exempt)"),
        ("AUTH_TOKENS_FILE", "str", "",
         "file with one `caller:token` per line (for a mounted secret)"),
        ("AUTH_POLICY", "str", "",
         "JSON `{\"caller\": [\"stepboard.v1.Ranking/*\", \"stepboard.v1.FriendGraph/"
         "ListFriends\", ...]}`: the methods each caller (a token's name, or a client "
         "certificate's first DNS SAN, else URI SAN, else CN under mTLS) may call; others are "
         "`PERMISSION_DENIED`. `Service/*` leaves out the internal methods (FriendGraph's "
         "ListHotUsers and GetRankingExclusions). Required with tokens; health and "
         "reflection stay open"),
        ("AUTH_POLICY_FILE", "str", "",
         "file holding that JSON policy (for a mounted ConfigMap or Secret)"),
        ("ACCESS_LOG", "choice", "failed",
         "access log lines (method, code, caller, duration_ms, peer): for no call, the "
         "calls that did not end OK, or all calls",
         {"choices": ("off", "failed", "all")}),
        ("TLS_CERT_FILE", "str", "", "server certificate: serve TLS (with TLS_KEY_FILE)"),
        ("TLS_KEY_FILE", "str", "", "server private key (with TLS_CERT_FILE)"),
        ("TLS_CLIENT_CA_FILE", "str", "",
         "require client certificates signed by this CA (mTLS)"),
    )
    + _declare(
        "Metrics", SERVICES,
        ("METRICS_PORT", "int",
         PerComponent({"ingest": 9101, "social": 9102, "rank": 9103, "consumer": 9104,
               "precompute": 9105, "archive": 9106}),
         "Prometheus HTTP port (0 disables)", {"minimum": 0, "maximum": 65535}),
    )
    + _declare(
        "Tracing", ("ingest", "social", "rank", "consumer"),
        ("OTLP_ENDPOINT", "str", "",
         "OpenTelemetry collector to send spans to over OTLP/gRPC (`http://host:4317`: "
         "plaintext, `https://`: TLS); empty: tracing off, at no cost per call"),
        ("TRACE_SERVICE_NAME", "str",
         PerComponent({"ingest": "stepboard-ingest", "social": "stepboard-social",
                       "rank": "stepboard-rank", "consumer": "stepboard-consumer"}),
         "the `service.name` of this process's spans"),
        ("TRACE_SAMPLE_RATIO", "float", 0.01,
         "share of the traces this process starts (ReportSteps, GetFriendRanking, ...) that "
         "are recorded, 0 to 1; a call or record that carries a trace context follows its "
         "caller's decision", {"minimum": 0.0, "maximum": 1}),
    )
    + _declare(
        "Client of social_svc", ("ingest", "rank", "precompute", "tools"),
        ("CLIENT_TLS_CA_FILE", "str", "", "dial social_svc over TLS, trusting this CA"),
        ("CLIENT_TLS_CERT_FILE", "str", "", "client certificate for mTLS (with _KEY_FILE)"),
        ("CLIENT_TLS_KEY_FILE", "str", "", "client private key for mTLS (with _CERT_FILE)"),
        ("CLIENT_TLS_SERVER_NAME", "str", "",
         "name expected in social_svc's certificate (default: the address's host)"),
        ("CLIENT_TOKEN", "str", "", "bearer token sent to social_svc"),
        ("CLIENT_TOKEN_FILE", "str", "",
         "file holding that token (for a mounted secret; wins over CLIENT_TOKEN)"),
    )
    + _declare(
        "Address of social_svc", ("ingest", "rank", "precompute"),
        ("SOCIAL_ADDR", "str", REQUIRED,
         "`host:port` of social_svc (ingest checks a like's friendship there)"),
    )
    + _declare(
        "Kafka", ("ingest", "consumer", "tools"),
        ("KAFKA_BOOTSTRAP", "str", REQUIRED, "broker list `host:port,...`"),
        ("KAFKA_TOPIC", "str", "step-reports", "report topic"),
        ("KAFKA_DLQ_TOPIC", "str", "step-reports.dlq", "dead-letter topic"),
        ("KAFKA_SECURITY_PROTOCOL", "choice", "plaintext", "how to talk to the brokers",
         {"choices": ("plaintext", "ssl", "sasl_plaintext", "sasl_ssl")}),
        ("KAFKA_SASL_MECHANISM", "str", "", "SASL mechanism (empty: no SASL)"),
        ("KAFKA_SASL_USERNAME", "str", "", "SASL user name"),
        ("KAFKA_SASL_PASSWORD", "str", "", "SASL password"),
        ("KAFKA_SSL_CA_FILE", "str", "", "CA for broker TLS (empty: the system's)"),
        ("KAFKA_DELIVERY_TIMEOUT_S", "float", 10.0,
         "give up on a record the broker has not acknowledged (the consumer's: a dead "
         "letter)", {"minimum": 0.0}),
    )
    + _declare(
        "Consumer", ("consumer",),
        ("CONSUMER_GROUP", "str", "stepboard-board-writer", "Kafka consumer group"),
        ("CONSUMER_BATCH", "int", 5000,
         "reports per consume → apply batch (about: a record holds one call's reports)",
         {"minimum": 1, "maximum": 100_000}),
        ("CONSUMER_REJOIN_S", "float", 30.0,
         "a group join with no assignment for this long while the broker answers is "
         "stuck: the writer replaces its Kafka consumer", {"minimum": 1.0}),
        ("CONSUMER_MAX_REPORTS_PER_S", "int", 0,
         "most reports (and likes) a writer process applies per second, a token bucket: a "
         "write storm beyond it waits in Kafka (lag: excess / rate) instead of taking Redis "
         "and CPU from the readers (0 = unlimited)", {"minimum": 0}),
        ("CONSUMER_BURST_REPORTS", "int", Derived("STEPBOARD_CONSUMER_BATCH"),
         "with a max rate: how many reports may be applied at once after a quiet spell (the "
         "token bucket's size)", {"minimum": 1}),
        ("CONSUMER_NICE", "int", 0,
         "`os.nice` increment the writer applies to itself at start, so the CPU it shares "
         "goes to the readers first", {"minimum": 0, "maximum": 19}),
    )
    + _declare(
        "Report validation", ("ingest",),
        # The board score packs steps above 18 bits of time; it must stay exact in a double.
        ("MAX_STEPS_PER_DAY", "int", 100_000,
         "highest accepted cumulative count (at most a 31-day month's total stays below 2^31, "
         "the window score's step bits)",
         {"minimum": 1, "maximum": (2**31 - 1) // 31}),
        ("CLOCK_SKEW_S", "int", 120, "how far in the future `measured_at` may be",
         {"minimum": 0, "maximum": 3600}),
        ("MAX_BATCH", "int", 1000, "reports per `ReportStepsBatch`",
         {"minimum": 1, "maximum": 100_000}),
    )
    + _declare(
        "Late window", ("ingest", "archive"),
        ("LATE_DAYS", "int", 1,
         "how many days after a day ended (at UTC-12) reports for it are still accepted; "
         "the archive waits that long (set it alike for both)",
         {"minimum": 0, "maximum": 30}),
    )
    + _declare(
        "Boards", ("rank", "consumer", "precompute", "archive"),
        ("BOARD_SHARDS", "int", 16,
         "sorted sets per daily board (must be the same everywhere)",
         {"minimum": 1, "maximum": 4096}),
        ("BOARD_RETENTION_DAYS", "int", 3,
         "days a board lives after its day ended (a read of an older day is "
         "`INVALID_ARGUMENT`); keep Kafka retention longer", {"minimum": 1, "maximum": 60}),
        ("BOARD_NAMESPACE", "str", "sb", "Redis key prefix of the boards"),
    )
    + _declare(
        "Redis", ("social", "rank", "consumer", "precompute", "archive"),
        ("REDIS_MODE", "choice", "standalone", "which address setting is used",
         {"choices": ("standalone", "sentinel", "cluster")}),
        ("REDIS_URL", "str", "", "`redis://host:port/db`; required when REDIS_MODE=standalone"),
        ("REDIS_SENTINELS", "list", (),
         "`host:port,...` of the Sentinels; required when REDIS_MODE=sentinel"),
        ("REDIS_SENTINEL_MASTER", "str", "mymaster", "the Sentinels' master name"),
        ("REDIS_CLUSTER_NODES", "list", (),
         "`host:port,...` startup nodes of a Redis Cluster; required when "
         "REDIS_MODE=cluster"),
        ("REDIS_USERNAME", "str", "",
         "Redis ACL user (empty: the `default` user); sent with REDIS_PASSWORD"),
        ("REDIS_PASSWORD", "str", "", "Redis password"),
        ("REDIS_TLS", "bool", False,
         "TLS to Redis: to the Sentinels and the master, or to every Cluster node; a "
         "`rediss://` REDIS_URL turns it on too (a `redis://` one with `true` is refused)"),
        ("REDIS_TLS_CA_FILE", "str", "",
         "CA the Redis servers' certificates must chain to (empty: the system's)"),
        ("REDIS_TLS_CERT_FILE", "str", "",
         "client certificate for a Redis that requires one (`tls-auth-clients`; with "
         "_KEY_FILE)"),
        ("REDIS_TLS_KEY_FILE", "str", "", "client private key (with _CERT_FILE)"),
        ("REDIS_TLS_VERIFY_HOSTNAME", "bool", True,
         "a server certificate must name the host dialled (a Cluster's or Sentinel's "
         "announced address: their certificates need those IPs or names)"),
        ("REDIS_SOCKET_TIMEOUT_S", "float", 2.0,
         "connect/read timeout, so a dead or hung Redis fails fast (`UNAVAILABLE`; a read "
         "that times out is not retried); a call's wait also ends by its deadline "
         "(`DEADLINE_EXCEEDED`)", {"minimum": 0.0}),
        ("REDIS_ALLOW_EVICTION", "bool", False,
         "`true` lets rank and the consumer run, with a warning, on a Redis whose "
         "`maxmemory-policy` (from `INFO memory` of every server: each Cluster primary, the "
         "Sentinel master) is not `noeviction` or cannot be read; otherwise they exit at "
         "start (status 2, an error naming `maxmemory-policy`), since an evicted board keeps "
         "its watermark and is never replayed"),
    )
    + _declare(
        "MySQL shards", ("social",),
        ("MYSQL_SHARD_DSNS", "list", REQUIRED,
         "`mysql://user:pass@host:port/db,...`, one per physical shard"),
        ("MYSQL_LOGICAL_SHARDS", "int", 64,
         "fixed number of logical shards users hash into (at least the number of DSNs)",
         {"minimum": 1, "maximum": 65536}),
        ("MYSQL_SHARD_MAP", "str", "",
         "`first-last:physical,...`, e.g. `0-31:0,32-63:1` (empty: even ranges)"),
    )
    + _declare(
        "MySQL connections", ("social", "rank", "consumer", "archive"),
        ("MYSQL_POOL_SIZE", "int", 8,
         "connections per physical shard (DBUtils), of the friend graph and of the archive",
         {"minimum": 1, "maximum": 512}),
        ("MYSQL_CONNECT_TIMEOUT_S", "float", 2.0, "so a dead shard fails fast",
         {"minimum": 0.0}),
        ("MYSQL_READ_TIMEOUT_S", "float", 5.0, "so a hung shard fails fast", {"minimum": 0.0}),
        ("MYSQL_WRITE_TIMEOUT_S", "float", 5.0, "so a hung shard fails fast",
         {"minimum": 0.0}),
        ("MYSQL_TLS", "bool", False,
         "require TLS to every shard, of the friend graph and of the archive, with the "
         "server's certificate verified (off: the driver's default, TLS only if the server "
         "offers it, unverified)"),
        ("MYSQL_TLS_CA_FILE", "str", "",
         "CA the shards' certificates must chain to (empty: the system's); one file may "
         "hold several CAs"),
        ("MYSQL_TLS_CERT_FILE", "str", "",
         "client certificate for a server that requires one (`REQUIRE X509`; with "
         "_KEY_FILE)"),
        ("MYSQL_TLS_KEY_FILE", "str", "", "client private key (with _CERT_FILE)"),
        ("MYSQL_TLS_VERIFY_HOSTNAME", "bool", True,
         "a shard's certificate must name the DSN's host (ssl-mode `VERIFY_IDENTITY`; off: "
         "`VERIFY_CA`)"),
    )
    + _declare(
        "Archive shards", ("rank", "consumer", "archive"),
        ("ARCHIVE_MYSQL_SHARD_DSNS", "list", (),
         "`mysql://user:pass@host:port/db,...`, one per physical shard of the day archive "
         "(empty: no archive; rank_svc's GetHistory then serves only days whose board may "
         "exist, and the consumer and `rebuild` cannot restore a week or month board that "
         "has days whose boards expired)"),
        ("ARCHIVE_MYSQL_LOGICAL_SHARDS", "int", 64,
         "fixed number of logical archive shards users hash into (at least the number of "
         "archive DSNs)", {"minimum": 1, "maximum": 65536}),
        ("ARCHIVE_MYSQL_SHARD_MAP", "str", "",
         "`first-last:physical,...` of the archive (empty: even ranges)"),
    )
    + _declare(
        "Archive job", ("archive",),
        ("ARCHIVE_INTERVAL_S", "float", 600.0,
         "how often the archive job looks for closed days to archive", {"minimum": 1.0}),
    )
    + _declare(
        "Archive retention", ("rank", "archive"),
        ("ARCHIVE_RETENTION_MONTHS", "int", 13,
         "months of archived days kept, the current one included (older monthly partitions "
         "are dropped; GetHistory of an older day is `INVALID_ARGUMENT`)",
         {"minimum": 1, "maximum": 1200}),
    )
    + _declare(
        "Social server", ("social",),
        ("SOCIAL_POOL_WAIT_S", "float", 1.0,
         "longest wait for a free shard connection before `UNAVAILABLE`", {"minimum": 0.0}),
    )
    + _declare(
        "Social cache", ("social", "rank", "precompute"),
        ("SOCIAL_CACHE", "bool", True,
         "Redis cache of friend lists and profiles (uses the STEPBOARD_REDIS_* settings); "
         "rank_svc keeps a friend list while its generation in this cache is unchanged, and "
         "reads lists and profiles already in it instead of calling social_svc; precompute "
         "records the generation each hot ranking was computed from and refreshes it when "
         "the list changes"),
        ("SOCIAL_CACHE_NAMESPACE", "str", "sg", "key prefix of that cache"),
        ("SOCIAL_CACHE_TTL_S", "float", 300.0,
         "lifetime of a cache entry (changes invalidate at once), and of an unchanged "
         "friend list in rank_svc", {"minimum": 1.0}),
        ("SOCIAL_CACHE_MAX_FRIENDS", "int", 10_000,
         "longest friend list social_svc caches whole; longer lists cache only their count",
         {"minimum": 0, "maximum": 1_000_000}),
        ("SOCIAL_CACHE_RETRY_S", "float", 2.0,
         "after a Redis error, social_svc skips the cache for this long", {"minimum": 0.0}),
    )
    + _declare(
        "Ranking", ("rank", "precompute"),
        ("HOT_FRIENDS_THRESHOLD", "int", 5000,
         "users with more friends get precomputed rankings (rank skips the lookup for users "
         "it knows have fewer)", {"minimum": 1}),
        ("PRECOMPUTE_INTERVAL_S", "float", 60.0,
         "how often each hot user's rankings are refreshed (a user whose friend list "
         "changed: within about a second)", {"minimum": 0.1}),
        ("HOT_MAX_AGE_S", "float",
         Derived(f"{HOT_MAX_AGE_INTERVALS} times STEPBOARD_PRECOMPUTE_INTERVAL_S"),
         "a precomputed ranking older than this is not served as current: computed per call "
         "if small enough, else served with `stale_ranking`; at least "
         "STEPBOARD_PRECOMPUTE_INTERVAL_S (precompute logs a round that takes longer)",
         {"minimum": 0.1}),
    )
    + _declare(
        "Ranking server", ("rank",),
        ("FRIENDS_FRESH_S", "float", 1.0,
         "with STEPBOARD_SOCIAL_CACHE=false (no generations to check), a friend list "
         "younger than this is reused without asking social_svc (past half this age it is "
         "refetched in the background)", {"minimum": 0.0}),
        ("FRIENDS_STALE_S", "float", 600.0,
         "oldest friend list served when social_svc is unavailable", {"minimum": 0.0}),
        ("FRIENDS_CACHED_USERS", "int", 100_000,
         "friend lists kept for that fallback (LRU)", {"minimum": 0}),
        ("FRIENDS_CACHED_IDS", "int", 6_000_000,
         "friend ids those lists may hold in all (LRU; ~23 B each)", {"minimum": 0}),
        ("LIVE_RANKING_MAX_USERS", "int",
         Derived(
             f"{LIVE_RANKING_MAX_USERS}, or STEPBOARD_HOT_FRIENDS_THRESHOLD + 1 if larger"
         ),
         "largest friend ranking (friends + the user) computed per call, and longest friend "
         "list kept in memory; a larger one is served only precomputed (`UNAVAILABLE` until "
         "it is); at least STEPBOARD_HOT_FRIENDS_THRESHOLD + 1",
         {"minimum": 2}),
    )
)

SETTINGS: dict[str, Setting] = {setting.name: setting for setting in _ALL}
_UNSET = object()


def setting(name: str) -> Setting:
    """The declaration of ``STEPBOARD_<name>``."""
    return SETTINGS[name]


def default(name: str, component: str | None = None) -> object:
    """The declared default of ``STEPBOARD_<name>`` (for ``component`` when it differs by
    component); a dataclass field default reads it here instead of restating it."""
    value = _fixed_default(SETTINGS[name], component)
    if isinstance(value, Derived) or value is REQUIRED:
        raise ValueError(f"STEPBOARD_{name} has no fixed default")
    return value


def read(
    env: Mapping[str, str],
    name: str,
    *,
    component: str | None = None,
    derived: object = _UNSET,
    minimum: float | None = None,
    required: bool = False,
) -> object:
    """``STEPBOARD_<name>`` from ``env``, parsed, checked against its declared bounds.

    ``derived`` is the computed default of a :class:`Derived` setting (and only of one);
    ``component`` picks a :class:`PerComponent` default; ``minimum`` tightens the declared
    lower bound with one computed from another setting; ``required`` makes a setting with
    a default required (REDIS_URL in standalone mode). Malformed or out-of-bounds values
    raise :class:`common.config.ConfigError` naming the variable.
    """
    declared = SETTINGS[name]
    if isinstance(declared.default, Derived) != (derived is not _UNSET):
        raise ValueError(f"STEPBOARD_{name}: pass derived= exactly for a derived default")
    fallback = REQUIRED if required else (
        derived if derived is not _UNSET else _fixed_default(declared, component)
    )
    low = declared.minimum
    if minimum is not None:
        low = minimum if low is None else max(minimum, low)
    if declared.kind == "int":
        return env_int(env, name, fallback, low, declared.maximum)
    if declared.kind == "float":
        return env_float(env, name, fallback, minimum=low)
    if declared.kind == "bool":
        return env_bool(env, name, fallback)
    if declared.kind == "list":
        return env_list(env, name, fallback)
    if declared.kind == "choice":
        return env_choice(env, name, declared.choices, fallback)
    return env_str(env, name, fallback)


def _fixed_default(declared: Setting, component: str | None) -> object:
    """The declared default, picked for ``component`` when it differs by component."""
    if isinstance(declared.default, PerComponent):
        return declared.default.values[component]
    return declared.default
