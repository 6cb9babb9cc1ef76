"""``python -m rank_svc.precompute``: refreshes the rankings of hot users.

Users whose friend count exceeds ``STEPBOARD_HOT_FRIENDS_THRESHOLD`` (asked of social_svc
with ``ListHotUsers``) get their ranking for every day that is currently open somewhere,
and for the weeks and months of those days, computed in chunks and stored in Redis
(:mod:`rank_svc.hot_rankings`) every ``STEPBOARD_PRECOMPUTE_INTERVAL_S``. Replicas share
the work: a user is refreshed by whichever replica holds that user's lock, taken for a
little less than an interval. The lock only shares the work: two replicas that refresh one
user at once (the lock expired during a slow refresh) cannot mix their rankings, each
computation being fenced (:mod:`rank_svc.hot_rankings`). A user whose refresh fails
(social_svc or Redis) is logged and counted, and the round goes on with the next user.

Each ranking records the generation of the friend list it was computed from (social_svc's
cache replaces it on every change of the list), read before the list. Between rounds, every
``CHANGE_CHECK_S``, a replica reads the current generations of the users it refreshed and
refreshes at once those whose list changed (taking the lock again). The ranking server
does not use a ranking older than the list, or than ``STEPBOARD_HOT_MAX_AGE_S``
(:meth:`rank_svc.servicer.RankingServicer.GetFriendRanking`), unless it is too large to
compute per call; such a ranking shows a change once that refresh is done.

Each ranking leaves out the friends hidden from the user (``rank_svc/privacy_filter.py``)
and records the user's view generation, read before the friend list: the ranking server
never serves a ranking filtered under another generation, and the change check above
refreshes the users whose view generation moved too.
"""

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import grpc
from prometheus_client import Counter, Gauge, Histogram

from common.channels import create_channel
from common.errors import DeadlineExceeded, Unavailable
from common.lifecycle import stop_on_signals
from common.metrics import serve_metrics
from common.redis_clients import REDIS_ERRORS, RedisClient, create_redis
from common.report_rules import MONTH, WEEK, Window, accepted_days, window_of
from common.runtime import load
from common.social_cache_format import SocialCache
from rank_svc.board_readers import BoardReader
from rank_svc.config import PrecomputeConfig
from rank_svc.friend_ranking import order_rows
from rank_svc.hot_rankings import HotRankings
from rank_svc.privacy_filter import PrivacySource
from rank_svc.social_client import SOCIAL_CACHE_READS, stream_friends
from stepboard.v1 import social_pb2, social_pb2_grpc

log = logging.getLogger("rank_svc.precompute")

REFRESHES = Counter(
    "stepboard_precompute_refreshes_total",
    "Hot-user ranking refreshes, by outcome (done; skipped: another replica holds the user; "
    "superseded: another replica published a later computation first; failed).",
    ["outcome"],
)
REFRESH_SECONDS = Histogram(
    "stepboard_precompute_refresh_seconds", "Time to refresh one hot user's rankings.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
OLDEST_RANKING = Gauge(
    "stepboard_precompute_oldest_ranking_timestamp_seconds",
    "When the oldest hot user's rankings were computed, as of this replica's last round "
    "(a user another replica held counts as refreshed then; 0 before the first round).",
)
SCORE_CHUNK = 50_000
STREAM_TIMEOUT_S = 120.0
CHANGE_CHECK_S = 1.0

# KEYS: the user's lock. ARGV: owner, hold (ms). Takes the lock, or keeps it held, unless
# another replica holds it; returns whether this owner now holds it.
_CLAIM_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


def open_days(now: datetime) -> Iterator[date]:
    """Every day that is the current date in some time zone at ``now``."""
    day, last = accepted_days(now.timestamp(), late_days=0)
    while day <= last:
        yield day
        day += timedelta(days=1)


def open_boards(now: datetime) -> list[date | Window]:
    """The open days (:func:`open_days`), then their weeks and months, each once."""
    days = list(open_days(now))
    windows = [window_of(day, period) for period in (WEEK, MONTH) for day in days]
    return [*days, *dict.fromkeys(windows)]


class Precomputer:
    """Finds hot users and refreshes their precomputed rankings."""

    def __init__(
        self, config: PrecomputeConfig, client: RedisClient, social: social_pb2_grpc.FriendGraphStub
    ) -> None:
        self.config = config
        self.client = client
        self.social = social
        self.store = BoardReader(client, config.board)
        self.hot = HotRankings(client, config.board.namespace, config.board.retention_days)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._claim_script = client.register_script(_CLAIM_LUA)
        cache = config.social_cache
        self.social_cache = (SocialCache(client, cache.namespace, SOCIAL_CACHE_READS)
                             if cache.enabled else None)
        self.privacy = PrivacySource(social, client, self.social_cache, self.store.members)
        # users this replica refreshed in the current round -> the generations it used
        # (friend list, view)
        self.refreshed: dict[int, tuple[bytes | None, bytes]] = {}
        # hot users -> when their rankings were last computed (OLDEST_RANKING); a user
        # never refreshed counts from the round it was first seen in
        self.computed_at: dict[int, float] = {}

    def hot_users(self) -> list[int]:
        """Every user with more friends than the threshold, from social_svc."""
        users, token = [], ""
        while True:
            reply = self.social.ListHotUsers(
                social_pb2.ListHotUsersRequest(
                    min_friends=self.config.hot.threshold + 1, page_size=1000, page_token=token
                ),
                timeout=30,
            )
            users += [u.user_id for u in reply.users]
            token = reply.next_page_token
            if not token:
                return users

    def _claim(self, user_id: int) -> bool:
        """Takes (or keeps) the user's lock for a little less than an interval, so that the
        next round finds it free if this replica is gone."""
        key = f"{self.config.board.namespace}:hotlock:{{u{user_id}}}"
        hold_ms = max(100, int(self.config.hot.interval_s * 900))
        return bool(self._claim_script(keys=[key], args=[self.owner, hold_ms]))

    def refresh(self, user_id: int, now: datetime) -> bool:
        """Recomputes ``user_id``'s rankings for the open boards unless another replica
        holds the user; returns whether this replica did it. A failure (social_svc or
        Redis) is counted and logged, not raised: the other users' refreshes go on."""
        try:
            if not self._claim(user_id):
                REFRESHES.labels("skipped").inc()
                self.computed_at[user_id] = time.time()  # by the replica holding the lock
                return False
            self._recompute(user_id, now)
        except grpc.RpcError as error:
            return _failed(user_id, error.code().name)
        except (*REDIS_ERRORS, Unavailable, DeadlineExceeded) as error:
            return _failed(user_id, type(error).__name__)
        return True

    def _recompute(self, user_id: int, now: datetime) -> None:
        started, started_at = time.monotonic(), time.time()
        boards = open_boards(now)
        tokens = self.hot.fence(user_id, boards)  # before the list: a later token, a later list
        generation = (None if self.social_cache is None
                      else self.social_cache.generations([user_id])[0])
        view = self.privacy.view(user_id)
        members = {*(friend for friend in stream_friends(self.social, user_id, STREAM_TIMEOUT_S)
                     if not view.hides(friend)), user_id}
        ordered_ids = sorted(members)
        published = True
        for board, token in zip(boards, tokens, strict=True):
            computed_at = int(time.time())
            scores: dict[int, int | None] = {}
            for first in range(0, len(ordered_ids), SCORE_CHUNK):
                scores |= self.store.scores(board, ordered_ids[first:first + SCORE_CHUNK])
            published &= self.hot.save(
                user_id, board, order_rows(scores), computed_at, generation, token,
                view.generation,
            )
        self.refreshed[user_id] = (generation, view.generation)
        self.computed_at[user_id] = started_at
        REFRESHES.labels("done" if published else "superseded").inc()
        REFRESH_SECONDS.observe(time.monotonic() - started)
        log.info("refreshed", extra={"user_id": user_id, "members": len(members),
                                     "published": published})

    def run_once(self) -> int:
        """One round over all hot users; returns how many this replica refreshed. Then
        sets ``OLDEST_RANKING`` (a failed refresh keeps the user's older time)."""
        now = datetime.now(UTC)
        self.refreshed = {}
        users = self.hot_users()
        done = sum(self.refresh(user_id, now) for user_id in users)
        self.computed_at = {u: self.computed_at.get(u, now.timestamp()) for u in users}
        OLDEST_RANKING.set(min(self.computed_at.values(), default=now.timestamp()))
        return done

    def refresh_changed(self) -> int:
        """Refreshes the users this replica refreshed this round whose friend list or view
        changed since; returns how many (none without social_svc's cache: no generations)."""
        users = list(self.refreshed)
        if not users or self.social_cache is None:
            return 0
        current = zip(self.social_cache.generations(users),
                      self.social_cache.view_generations(users), strict=True)
        changed = [u for u, now in zip(users, current, strict=True) if now != self.refreshed[u]]
        now = datetime.now(UTC)
        return sum(self.refresh(user_id, now) for user_id in changed)

    def run(self, stop: threading.Event) -> None:
        """Rounds every interval until ``stop`` is set, checking for changed friend lists
        in between; failures wait for the next check or round. A round longer than
        ``STEPBOARD_HOT_MAX_AGE_S`` is logged: the ranking server then treats rankings as
        out of date before they are refreshed."""
        while not stop.is_set():
            started = time.monotonic()
            _logged(self.run_once, "precompute round failed")
            took_s = time.monotonic() - started
            if took_s > self.config.hot.max_age_s:
                log.warning("round longer than STEPBOARD_HOT_MAX_AGE_S",
                            extra={"seconds": round(took_s, 1)})
            while (left := self.config.hot.interval_s - (time.monotonic() - started)) > 0:
                if stop.wait(min(CHANGE_CHECK_S, left)):
                    return
                _logged(self.refresh_changed, "changed-list refresh failed")


def _failed(user_id: int, reason: str) -> bool:
    """Counts and logs one user's failed refresh; returns False (not refreshed)."""
    REFRESHES.labels("failed").inc()
    log.warning("refresh failed", extra={"user_id": user_id, "reason": reason})
    return False


def _logged(action: Callable[[], object], what: str) -> None:
    """Runs ``action``; a failure (social_svc or Redis down) is logged, never raised: it
    must not kill the job."""
    try:
        action()
    except Exception:
        log.exception(what)


def main() -> None:
    """Reads config and refreshes hot users until SIGTERM/SIGINT."""
    config = load("rank_svc.precompute", PrecomputeConfig.from_env)
    stop = stop_on_signals()
    serve_metrics(config.metrics_port)
    client = create_redis(config.redis)
    with create_channel(config.social_addr, config.client) as channel:
        Precomputer(config, client, social_pb2_grpc.FriendGraphStub(channel)).run(stop)
    client.close()


if __name__ == "__main__":
    main()
