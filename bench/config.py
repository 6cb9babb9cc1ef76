"""Scale presets and the run context: names, ports and environment of one bench run.

Everything a run creates is private to it: its own Kafka topics, consumer group, Redis key
namespaces and service processes on free ports. The MariaDB databases
``stepboard_bench_<scale>_p0``/``_p1`` (graph) and ``stepboard_bench_<scale>_naive`` (the
SQL baseline) are the bench's own, one set per scale, and are kept between runs, so a
re-run with the same graph skips the load; the day archive's
``stepboard_bench_<scale>_archive_p0``/``_p1`` are recreated empty by every run.
"""

import os
import socket
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from common.config import read_env_file

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LOGS = ROOT / ".stack" / "logs" / "bench"
MYSQL = "mysql://stepboard:stepboard@127.0.0.1:13306"


def _db_prefix(scale_name: str) -> str:
    safe = "".join(c if c.isalnum() else "_" for c in scale_name)
    return f"stepboard_bench_{safe}"


def graph_dbs(scale_name: str) -> tuple[str, str]:
    """The two physical graph shards of a scale (each scale keeps its own loaded graph)."""
    return (f"{_db_prefix(scale_name)}_p0", f"{_db_prefix(scale_name)}_p1")


def naive_db(scale_name: str) -> str:
    """The SQL baseline's database of a scale."""
    return f"{_db_prefix(scale_name)}_naive"


def archive_dbs(scale_name: str) -> tuple[str, str]:
    """The two physical day-archive shards of a scale (recreated empty by every run)."""
    return (f"{_db_prefix(scale_name)}_archive_p0", f"{_db_prefix(scale_name)}_archive_p1")


@dataclass(frozen=True)
class Scale:
    """How big a run is. Every field can be overridden on the command line."""

    name: str
    users: int
    avg_friends: float
    skew: float
    tail_users: int  # users with --tail-friends picks of their own (the long tail)
    tail_friends: int
    hot_friends: int  # friends of the one appended hot user (0: none)
    reports_per_user: int  # reports per user in the day's backlog
    duration_s: float  # length of each measured load phase
    freshness_s: float
    storm_s: float
    freshness_rate: int  # background reports/s while freshness is probed
    partitions: int
    board_shards: int
    consumers: int
    # The rate phase's STEPBOARD_CONSUMER_MAX_REPORTS_PER_S (reports/s per consumer): well
    # below what a consumer applies unlimited, so the storm waits in Kafka.
    consumer_max_rate: int


PRESETS = {
    "tiny": Scale("tiny", 3_000, 40, 0.6, 2, 600, 2_000, 2, 2.0, 3.0, 4.0, 500, 4, 16, 1,
                  2_000),
    "quick": Scale("quick", 50_000, 60, 0.6, 5, 5_000, 50_000, 2, 5.0, 10.0, 10.0, 5_000,
                   8, 16, 1, 10_000),
    # Three consumers at full scale: each waits on its Redis apply ~40 % of the time (two
    # ran at 56-62 % CPU each), so a third fills the two cores.
    "full": Scale("full", 1_000_000, 60, 0.6, 20, 5_000, 1_000_000, 2, 15.0, 30.0, 20.0,
                  5_000, 8, 16, 3, 10_000),
}


# Concurrent callers per ranking question, the same for stepboard (Python generator) and the
# SQL baseline (connections), so each latency is compared at the same load; the hot user's
# JOIN is so slow that one caller already saturates MariaDB.
READERS = {"global_top": 4, "global_rank": 4, "friend_ranking_200": 4,
           "friend_ranking_5000": 2, "friend_ranking_hot": 1}
# Each ranking question of stepboard and the SQL baseline's name for the same question.
QUESTIONS = {"GetGlobalTop(100)": "global_top", "GetGlobalRank": "global_rank",
             "GetFriendRanking 200": "friend_ranking_200",
             "GetFriendRanking 5000": "friend_ranking_5000",
             "GetFriendRanking hot": "friend_ranking_hot"}
# Result names of the ranking phase's other series, shared by the phase and the report.
SATURATED = "GetFriendRanking 200, saturated"  # SATURATION_READERS callers: the max RPS
ECHO_FLOOR = "echo, 4 callers"  # a bare gRPC call at the ranking questions' load
RANK_BESIDE_ECHO = "GetGlobalRank vs echo RPS at the same callers"  # issue 26's target row
TOP_WITH_GHZ = "GetGlobalTop(100), ghz"  # the load-tool comparison
# Callers for the saturation run that finds a rank process's maximum RPS.
SATURATION_READERS = 16
# 200-friend rankings of users whose friend list the rank process does not hold: the first
# ranking of a user routed to this process (rank_svc keeps a list while it is unchanged, so
# only such calls read one, and the page's profiles with it). Each of up to COLD_USERS
# users nearest 200 friends (not those of the other 200-friend series) is asked at most
# once in the run; social_svc's Redis cache holds their lists and profiles (the warm-up
# asks social_svc for them), as for users active within its TTL, and rank_svc reads them
# there. The other 200-friend series ask 20 users round robin: lists held.
COLD = "GetFriendRanking 200, list not held by the rank process"
COLD_USERS = 10_000
# social_svc answering those users' ListFriends from its Redis cache: what a call costs
# the social tier when asked (rank_svc reads lists in that cache itself).
LIST_FRIENDS = "ListFriends of the same users (social_svc)"
# The past days a run seeds (bench/past.py): the HISTORY_DAYS days that end on the bench
# day, the older ARCHIVED_DAYS of them archived, so a GetHistory of all of them crosses
# the seam between the archive and the live boards. The newest archived day holds every
# user (the archive's throughput is timed on it); the other seeded days hold the users
# whose week is ranked (the 200-friend users and their friends) and HISTORY_USERS users
# whose history is asked, each reporting on a day with probability REPORT_SHARE.
HISTORY_DAYS = 30
ARCHIVED_DAYS = 15
HISTORY_USERS = 1_000
REPORT_SHARE = 0.85
# Days a board lives after its day ended: the bench's boards of the whole history range
# must still exist (the default, 3, would expire the seeded days at once).
BOARD_RETENTION_DAYS = 40
# Result names of the windows and history phases' series.
DAY_BESIDE_WEEK = "GetFriendRanking 200, day (beside the week)"
WEEK_FRIENDS = "GetFriendRanking 200, week"
HISTORY = f"GetHistory {HISTORY_DAYS} days"
# GetHistory's target (the issue names none): a page's load, the order of the 5,000-friend
# ranking's p99 target (60 ms).
HISTORY_P99_MS = 50
# Likes of the bench day (bench/likes.py), seeded through BoardWriter.apply as the consumer
# applies them, for the 200-friend users' rankings: LIKED_SHARE of the users their rankings
# show (the callers and their friends) are liked, each by 1 + Poisson(LIKERS_PER_LIKED - 1)
# users drawn from the whole graph, and each caller likes CALLER_LIKE_SHARE of its friends
# among those liked (so its rankings have liked_by_me entries). Asked right after the same
# users' ranking of the same day with no likes yet (PLAIN_FRIENDS), at the same callers.
LIKED_SHARE = 0.5
LIKERS_PER_LIKED = 3
CALLER_LIKE_SHARE = 0.25
PLAIN_FRIENDS = "GetFriendRanking 200, no likes (beside the likes)"
LIKED_FRIENDS = "GetFriendRanking 200, likes shown"
LIKES_P50_RATIO = 1.2
LIKE_CALLS = "Like"  # StepIngest.Like with ghz, the caller liking one of its friends
FRIEND_CHECKS = "CheckFriendship"  # the same pairs asked of social_svc alone, with ghz
# GetGlobalRank with none and then LEFT_USERS users out of the rankings
# (FriendGraph.SetRankingVisibility), a tenth of the users at most (tiny scale).
LEFT_USERS = 10_000
RANK_NONE_LEFT = "GetGlobalRank, none left the rankings"
RANK_SOME_LEFT = "GetGlobalRank, users left the rankings"


def scale_with(name: str, **overrides) -> Scale:
    """A preset with some fields replaced (None values are ignored)."""
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_day(now: datetime | None = None) -> date:
    """The day the bench reports for: yesterday (UTC), so a whole day of realistic
    timestamps lies in the past and inside the accepted window (late window 1 day)."""
    return ((now or datetime.now(UTC)) - timedelta(days=1)).date()


class Context:
    """Names, ports and the service environment of one run."""

    def __init__(self, scale: Scale, tag: str | None = None) -> None:
        self.scale = scale
        self.run_id = tag or uuid.uuid4().hex[:8]
        self.day = bench_day()
        self.topic = f"bench-{self.run_id}-reports"
        self.dlq_topic = self.topic + ".dlq"
        self.namespace = f"bench-{self.run_id}"
        self.social_namespace = f"bench-{self.run_id}-sg"
        self.group = f"bench-{self.run_id}-writer"
        self.ports = {name: free_port() for name in ("ingest", "rank", "social", "echo")}
        self.graph_dbs = graph_dbs(scale.name)
        self.naive_db = naive_db(scale.name)
        self.graph_dsns = [f"{MYSQL}/{db}" for db in self.graph_dbs]
        self.archive_dbs = archive_dbs(scale.name)
        stack = read_env_file(ROOT / "stack" / "local.env")
        self.env = dict(os.environ) | stack | {
            "STEPBOARD_METRICS_PORT": "0",
            "STEPBOARD_LOG_LEVEL": "WARNING",
            "STEPBOARD_KAFKA_TOPIC": self.topic,
            "STEPBOARD_KAFKA_DLQ_TOPIC": self.dlq_topic,
            "STEPBOARD_CONSUMER_GROUP": self.group,
            "STEPBOARD_BOARD_NAMESPACE": self.namespace,
            "STEPBOARD_BOARD_SHARDS": str(scale.board_shards),
            "STEPBOARD_SOCIAL_CACHE_NAMESPACE": self.social_namespace,
            "STEPBOARD_MYSQL_SHARD_DSNS": ",".join(self.graph_dsns),
            "STEPBOARD_ARCHIVE_MYSQL_SHARD_DSNS": ",".join(
                f"{MYSQL}/{db}" for db in self.archive_dbs),
            "STEPBOARD_BOARD_RETENTION_DAYS": str(BOARD_RETENTION_DAYS),
            "STEPBOARD_SOCIAL_ADDR": f"127.0.0.1:{self.ports['social']}",
            "STEPBOARD_HOT_FRIENDS_THRESHOLD": "100000",
            "STEPBOARD_PRECOMPUTE_INTERVAL_S": "3600",
        }
        self.redis_port = int(self.env["STEPBOARD_REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
        self.kafka = self.env["STEPBOARD_KAFKA_BOOTSTRAP"]

    def addr(self, service: str) -> str:
        """``host:port`` of one of this run's servers."""
        return f"127.0.0.1:{self.ports[service]}"

    def describe(self) -> dict:
        """What goes into the results file about this run."""
        return {
            "run_id": self.run_id,
            "day": self.day.isoformat(),
            "scale": asdict(self.scale),
            "topic": self.topic,
            "namespace": self.namespace,
        }
