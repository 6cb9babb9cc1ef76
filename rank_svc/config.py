"""Configuration of the ranking server, the board consumer and the precompute job."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from common.channels import ChannelSettings
from common.config import env_float, env_int, env_str
from common.kafka_clients import KafkaSettings
from common.redis_clients import RedisSettings
from common.server import ServerSettings
from common.social_cache import CacheSettings
from rank_svc.board import BoardSettings

# Users with more friends than this get precomputed rankings (precompute writes them,
# the ranking server looks them up).
HOT_FRIENDS_THRESHOLD = 5000


@dataclass(frozen=True)
class RankConfig:
    """Everything ``python -m rank_svc`` reads from the environment."""

    server: ServerSettings
    redis: RedisSettings
    board: BoardSettings
    social_addr: str
    client: ChannelSettings
    friends_fresh_s: float = 1.0
    friends_stale_s: float = 600.0
    friends_cached_users: int = 100_000
    friends_cached_ids: int = 6_000_000
    hot_threshold: int = HOT_FRIENDS_THRESHOLD
    social_cache: CacheSettings = field(default_factory=CacheSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "RankConfig":
        """Reads the server (default port 50053), Redis, board, social_svc and hot-user
        settings, and social_svc's cache settings (``STEPBOARD_SOCIAL_CACHE*``: with the
        cache on, cached friend lists are checked against its generations)."""
        return cls(
            server=ServerSettings.from_env(env, default_port=50053, default_metrics_port=9103),
            redis=RedisSettings.from_env(env),
            board=BoardSettings.from_env(env),
            social_addr=env_str(env, "SOCIAL_ADDR"),
            client=ChannelSettings.from_env(env),
            friends_fresh_s=env_float(env, "FRIENDS_FRESH_S", 1.0),
            friends_stale_s=env_float(env, "FRIENDS_STALE_S", 600.0),
            friends_cached_users=env_int(env, "FRIENDS_CACHED_USERS", 100_000, 0),
            friends_cached_ids=env_int(env, "FRIENDS_CACHED_IDS", 6_000_000, 0),
            hot_threshold=env_int(env, "HOT_FRIENDS_THRESHOLD", HOT_FRIENDS_THRESHOLD, 1),
            social_cache=CacheSettings.from_env(env),
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
    rejoin_after_s: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ConsumerConfig":
        """Reads Kafka, Redis, board, group, batch size, metrics port and how
        long a group join may go without an assignment."""
        return cls(
            kafka=KafkaSettings.from_env(env),
            redis=RedisSettings.from_env(env),
            board=BoardSettings.from_env(env),
            group_id=env_str(env, "CONSUMER_GROUP", "stepboard-board-writer"),
            batch_size=env_int(env, "CONSUMER_BATCH", 5000, 1, 100_000),
            metrics_port=env_int(env, "METRICS_PORT", 9104, 0, 65535) or None,
            rejoin_after_s=env_float(env, "CONSUMER_REJOIN_S", 30.0, minimum=1.0),
        )


@dataclass(frozen=True)
class PrecomputeConfig:
    """Everything ``python -m rank_svc.precompute`` reads from the environment."""

    redis: RedisSettings
    board: BoardSettings
    social_addr: str
    client: ChannelSettings
    hot_threshold: int
    interval_s: float
    metrics_port: int | None
    social_cache: CacheSettings = field(default_factory=CacheSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "PrecomputeConfig":
        """Reads Redis, boards, social_svc, the hot-user threshold and refresh interval, and
        social_svc's cache settings (with the cache on, each ranking records the generation
        of the friend list it was computed from, and a change of the list refreshes it)."""
        return cls(
            redis=RedisSettings.from_env(env),
            board=BoardSettings.from_env(env),
            social_addr=env_str(env, "SOCIAL_ADDR"),
            client=ChannelSettings.from_env(env),
            hot_threshold=env_int(env, "HOT_FRIENDS_THRESHOLD", HOT_FRIENDS_THRESHOLD, 1),
            interval_s=env_float(env, "PRECOMPUTE_INTERVAL_S", 60.0, minimum=0.1),
            metrics_port=env_int(env, "METRICS_PORT", 9105, 0, 65535) or None,
            social_cache=CacheSettings.from_env(env),
        )
