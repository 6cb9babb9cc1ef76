"""Configuration of the ranking server, the board consumer and the precompute job."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from common.channels import ChannelSettings
from common.config import env_float, env_int, env_str
from common.kafka_clients import KafkaSettings
from common.redis_clients import RedisSettings
from common.server import ServerSettings
from common.social_cache_format import CacheSettings
from rank_svc.board_format import BoardSettings

# Users with more friends than this get precomputed rankings (precompute writes them,
# the ranking server looks them up).
HOT_FRIENDS_THRESHOLD = 5000
# The largest ranking (a user and their friends) the ranking server computes per call by
# default; the cost grows with the size (for 1,000,000 users: about 2 s of CPU and a 17 MB
# score read per call).
LIVE_RANKING_MAX_USERS = 20_000


@dataclass(frozen=True)
class HotSettings:
    """Hot users, read alike by the ranking server and precompute: who is hot, how often
    precompute refreshes their rankings, and the age past which a precomputed ranking is
    no longer served as current (precompute has stopped or fallen behind)."""

    threshold: int = HOT_FRIENDS_THRESHOLD
    interval_s: float = 60.0
    max_age_s: float = 180.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "HotSettings":
        """Reads ``STEPBOARD_HOT_FRIENDS_THRESHOLD``, ``STEPBOARD_PRECOMPUTE_INTERVAL_S``
        and ``STEPBOARD_HOT_MAX_AGE_S`` (default: three intervals; at least one, else
        every ranking would go stale between two rounds)."""
        interval_s = env_float(env, "PRECOMPUTE_INTERVAL_S", 60.0, minimum=0.1)
        return cls(
            threshold=env_int(env, "HOT_FRIENDS_THRESHOLD", HOT_FRIENDS_THRESHOLD, 1),
            interval_s=interval_s,
            max_age_s=env_float(env, "HOT_MAX_AGE_S", 3 * interval_s, minimum=interval_s),
        )


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
    hot: HotSettings = field(default_factory=HotSettings)
    live_max_users: int = LIVE_RANKING_MAX_USERS
    social_cache: CacheSettings = field(default_factory=CacheSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "RankConfig":
        """Reads the server (default port 50053), Redis, board, social_svc and hot-user
        settings, the largest ranking computed per call (at least one of a user who is not
        hot, else such a user could never be served), and social_svc's cache settings
        (``STEPBOARD_SOCIAL_CACHE*``: with the cache on, cached friend lists are checked
        against its generations)."""
        hot = HotSettings.from_env(env)
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
            hot=hot,
            live_max_users=env_int(env, "LIVE_RANKING_MAX_USERS",
                                   max(LIVE_RANKING_MAX_USERS, hot.threshold + 1),
                                   hot.threshold + 1),
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
            social_addr=env_str(env, "SOCIAL_ADDR"),
            client=ChannelSettings.from_env(env),
            hot=HotSettings.from_env(env),
            metrics_port=env_int(env, "METRICS_PORT", 9105, 0, 65535) or None,
            social_cache=CacheSettings.from_env(env),
        )
