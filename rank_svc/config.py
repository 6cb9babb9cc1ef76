"""Configuration of the ranking server, the board consumer, the precompute and archive jobs."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from common.channels import ChannelSettings
from common.kafka_clients import KafkaSettings
from common.mysql_pools import MySQLSettings
from common.redis_clients import RedisSettings
from common.server import ServerSettings
from common.settings import (
    HOT_MAX_AGE_INTERVALS,
    LIVE_RANKING_MAX_USERS,
    default,
    read,
)
from common.social_cache_format import CacheSettings
from common.tracing import TraceSettings
from rank_svc.board_format import BoardSettings


def default_max_age_s(interval_s: float) -> float:
    """The default of ``STEPBOARD_HOT_MAX_AGE_S``: a few precompute intervals."""
    return HOT_MAX_AGE_INTERVALS * interval_s


def default_live_max_users(threshold: int) -> int:
    """The default of ``STEPBOARD_LIVE_RANKING_MAX_USERS``: at least one more than the hot
    threshold, so that a user who is not hot can always be ranked per call."""
    return max(LIVE_RANKING_MAX_USERS, threshold + 1)


@dataclass(frozen=True)
class HotSettings:
    """Hot users, read alike by the ranking server and precompute: who is hot, how often
    precompute refreshes their rankings, and the age past which a precomputed ranking is
    no longer served as current (precompute has stopped or fallen behind)."""

    threshold: int = default("HOT_FRIENDS_THRESHOLD")
    interval_s: float = default("PRECOMPUTE_INTERVAL_S")
    max_age_s: float = default_max_age_s(default("PRECOMPUTE_INTERVAL_S"))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "HotSettings":
        """Reads ``STEPBOARD_HOT_FRIENDS_THRESHOLD``, ``STEPBOARD_PRECOMPUTE_INTERVAL_S``
        and ``STEPBOARD_HOT_MAX_AGE_S`` (default: three intervals; at least one, else
        every ranking would go stale between two rounds)."""
        interval_s = read(env, "PRECOMPUTE_INTERVAL_S")
        return cls(
            threshold=read(env, "HOT_FRIENDS_THRESHOLD"),
            interval_s=interval_s,
            max_age_s=read(env, "HOT_MAX_AGE_S", derived=default_max_age_s(interval_s),
                           minimum=interval_s),
        )


@dataclass(frozen=True)
class RankConfig:
    """Everything ``python -m rank_svc`` reads from the environment."""

    server: ServerSettings
    redis: RedisSettings
    board: BoardSettings
    social_addr: str
    client: ChannelSettings
    friends_fresh_s: float = default("FRIENDS_FRESH_S")
    friends_stale_s: float = default("FRIENDS_STALE_S")
    friends_cached_users: int = default("FRIENDS_CACHED_USERS")
    friends_cached_ids: int = default("FRIENDS_CACHED_IDS")
    hot: HotSettings = field(default_factory=HotSettings)
    live_max_users: int = default_live_max_users(default("HOT_FRIENDS_THRESHOLD"))
    social_cache: CacheSettings = field(default_factory=CacheSettings)
    archive: MySQLSettings | None = None
    archive_retention_months: int = default("ARCHIVE_RETENTION_MONTHS")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "RankConfig":
        """Reads the server, Redis, board, social_svc and hot-user
        settings, the largest ranking computed per call (at least one of a user who is not
        hot, else such a user could never be served), social_svc's cache settings
        (``STEPBOARD_SOCIAL_CACHE*``: with the cache on, cached friend lists are checked
        against its generations), and the day archive GetHistory reads (``archive`` None
        without ``STEPBOARD_ARCHIVE_MYSQL_SHARD_DSNS``)."""
        archive = MySQLSettings.from_env(env, "ARCHIVE_", required=False)
        hot = HotSettings.from_env(env)
        return cls(
            server=ServerSettings.from_env(env, "rank"),
            redis=RedisSettings.from_env(env),
            board=BoardSettings.from_env(env),
            social_addr=read(env, "SOCIAL_ADDR"),
            client=ChannelSettings.from_env(env),
            friends_fresh_s=read(env, "FRIENDS_FRESH_S"),
            friends_stale_s=read(env, "FRIENDS_STALE_S"),
            friends_cached_users=read(env, "FRIENDS_CACHED_USERS"),
            friends_cached_ids=read(env, "FRIENDS_CACHED_IDS"),
            hot=hot,
            live_max_users=read(env, "LIVE_RANKING_MAX_USERS",
                                derived=default_live_max_users(hot.threshold),
                                minimum=hot.threshold + 1),
            social_cache=CacheSettings.from_env(env),
            archive=archive if archive.shard_dsns else None,
            archive_retention_months=read(env, "ARCHIVE_RETENTION_MONTHS"),
        )


@dataclass(frozen=True)
class ConsumerConfig:
    """Everything ``python -m rank_svc.consumer`` reads from the environment."""

    kafka: KafkaSettings
    redis: RedisSettings
    board: BoardSettings
    group_id: str
    batch_size: int
    metrics_port: int | None
    rejoin_after_s: float = default("CONSUMER_REJOIN_S")
    max_reports_per_s: int = default("CONSUMER_MAX_REPORTS_PER_S")
    burst_reports: int = default("CONSUMER_BATCH")
    nice: int = default("CONSUMER_NICE")
    archive: MySQLSettings | None = None
    tracing: TraceSettings = field(default_factory=TraceSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ConsumerConfig":
        """Reads Kafka, Redis, board, group, batch size, metrics port, how
        long a group join may go without an assignment, the apply rate (its burst: one
        batch by default) and niceness, the day archive the week and month boards are
        restored from after Redis lost data (``archive`` None without
        ``STEPBOARD_ARCHIVE_MYSQL_SHARD_DSNS``), and tracing."""
        archive = MySQLSettings.from_env(env, "ARCHIVE_", required=False)
        batch_size = read(env, "CONSUMER_BATCH")
        return cls(
            kafka=KafkaSettings.from_env(env),
            redis=RedisSettings.from_env(env),
            board=BoardSettings.from_env(env),
            group_id=read(env, "CONSUMER_GROUP"),
            batch_size=batch_size,
            metrics_port=read(env, "METRICS_PORT", component="consumer") or None,
            rejoin_after_s=read(env, "CONSUMER_REJOIN_S"),
            max_reports_per_s=read(env, "CONSUMER_MAX_REPORTS_PER_S"),
            burst_reports=read(env, "CONSUMER_BURST_REPORTS", derived=batch_size),
            nice=read(env, "CONSUMER_NICE"),
            archive=archive if archive.shard_dsns else None,
            tracing=TraceSettings.from_env(env, "consumer"),
        )


@dataclass(frozen=True)
class PrecomputeConfig:
    """Everything ``python -m rank_svc.precompute`` reads from the environment."""

    redis: RedisSettings
    board: BoardSettings
    social_addr: str
    client: ChannelSettings
    hot: HotSettings
    metrics_port: int | None
    social_cache: CacheSettings = field(default_factory=CacheSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "PrecomputeConfig":
        """Reads Redis, boards, social_svc, the hot-user settings, and social_svc's cache
        settings (with the cache on, each ranking records the generation of the friend list
        it was computed from, and a change of the list refreshes it)."""
        return cls(
            redis=RedisSettings.from_env(env),
            board=BoardSettings.from_env(env),
            social_addr=read(env, "SOCIAL_ADDR"),
            client=ChannelSettings.from_env(env),
            hot=HotSettings.from_env(env),
            metrics_port=read(env, "METRICS_PORT", component="precompute") or None,
            social_cache=CacheSettings.from_env(env),
        )


@dataclass(frozen=True)
class ArchiveConfig:
    """Everything ``python -m rank_svc.archive`` reads from the environment."""

    redis: RedisSettings
    board: BoardSettings
    archive: MySQLSettings
    late_days: int
    metrics_port: int | None
    interval_s: float = default("ARCHIVE_INTERVAL_S")
    retention_months: int = default("ARCHIVE_RETENTION_MONTHS")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ArchiveConfig":
        """Reads Redis, boards, the archive shards (at least one DSN), the late window
        (a day is archived once no report can change it), the interval, the retention and
        the metrics port."""
        return cls(
            redis=RedisSettings.from_env(env),
            board=BoardSettings.from_env(env),
            archive=MySQLSettings.from_env(env, "ARCHIVE_"),
            late_days=read(env, "LATE_DAYS"),
            metrics_port=read(env, "METRICS_PORT", component="archive") or None,
            interval_s=read(env, "ARCHIVE_INTERVAL_S"),
            retention_months=read(env, "ARCHIVE_RETENTION_MONTHS"),
        )
