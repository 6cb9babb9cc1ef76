"""``python -m rank_svc.precompute``: refreshes the rankings of hot users.

Users whose friend count exceeds ``STEPBOARD_HOT_FRIENDS_THRESHOLD`` (asked of social_svc
with ``ListHotUsers``) get their ranking for every day that is currently open somewhere
computed in chunks and stored in Redis (:mod:`rank_svc.hot_rankings`) every
``STEPBOARD_PRECOMPUTE_INTERVAL_S``. Replicas share the work: a user is refreshed by
whichever replica first takes that user's lock, which expires just before the next round.

Each ranking records the generation of the friend list it was computed from (social_svc's
cache replaces it on every change of the list), read before the list. Between rounds, every
``CHANGE_CHECK_S``, a replica reads the current generations of the users it refreshed and
refreshes at once those whose list changed. The ranking server does not use a ranking older
than the list (:meth:`rank_svc.servicer.RankingServicer.GetFriendRanking`) unless it is too
large to compute per call; such a ranking shows a change once that refresh is done.
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
from prometheus_client import Counter, Histogram

from common.channels import create_channel
from common.lifecycle import stop_on_signals
from common.metrics import serve_metrics
from common.redis_clients import RedisClient, create_redis
from common.reports import accepted_days
from common.runtime import load
from rank_svc.board import BoardStore
from rank_svc.config import PrecomputeConfig
from rank_svc.friend_ranking import order_rows
from rank_svc.hot_rankings import HotRankings
from rank_svc.social_client import SocialCache, stream_friends
from stepboard.v1 import social_pb2, social_pb2_grpc

log = logging.getLogger("rank_svc.precompute")

REFRESHES = Counter(
    "stepboard_precompute_refreshes_total", "Hot-user ranking refreshes, by outcome.", ["outcome"]
)
REFRESH_SECONDS = Histogram(
    "stepboard_precompute_refresh_seconds", "Time to refresh one hot user's rankings.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
SCORE_CHUNK = 50_000
STREAM_TIMEOUT_S = 120.0
CHANGE_CHECK_S = 1.0


def open_days(now: datetime) -> Iterator[date]:
    """Every day that is the current date in some time zone at ``now``."""
    day, last = accepted_days(now.timestamp(), late_days=0)
    while day <= last:
        yield day
        day += timedelta(days=1)


class Precomputer:
    """Finds hot users and refreshes their precomputed rankings."""

    def __init__(
        self, config: PrecomputeConfig, client: RedisClient, social: social_pb2_grpc.FriendGraphStub
    ) -> None:
        self.config = config
        self.client = client
        self.social = social
        self.store = BoardStore(client, config.board)
        self.hot = HotRankings(client, config.board.namespace, config.board.retention_days)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        cache = config.social_cache
        self.social_cache = SocialCache(client, cache.namespace) if cache.enabled else None
        # users this replica refreshed in the current round -> the generation it used
        self.refreshed: dict[int, bytes | None] = {}

    def hot_users(self) -> list[int]:
        """Every user with more friends than the threshold, from social_svc."""
        users, token = [], ""
        while True:
            reply = self.social.ListHotUsers(
                social_pb2.ListHotUsersRequest(
                    min_friends=self.config.hot_threshold + 1, page_size=1000, page_token=token
                ),
                timeout=30,
            )
            users += [u.user_id for u in reply.users]
            token = reply.next_page_token
            if not token:
                return users

    def _claim(self, user_id: int) -> bool:
        key = f"{self.config.board.namespace}:hotlock:{{u{user_id}}}"
        hold_ms = max(100, int(self.config.interval_s * 900))
        return bool(self.client.set(key, self.owner, nx=True, px=hold_ms))

    def refresh(self, user_id: int, now: datetime, claimed: bool = False) -> bool:
        """Recomputes ``user_id``'s rankings for the open days unless another replica
        holds the user this round (``claimed``: this replica does); returns whether this
        replica did it. A failed call to social_svc is counted and logged, not raised."""
        if not claimed and not self._claim(user_id):
            REFRESHES.labels("skipped").inc()
            return False
        try:
            self._recompute(user_id, now)
        except grpc.RpcError as error:
            REFRESHES.labels("failed").inc()
            log.warning("refresh failed", extra={"user_id": user_id, "code": error.code().name})
            return False
        return True

    def _recompute(self, user_id: int, now: datetime) -> None:
        started = time.monotonic()
        generation = (None if self.social_cache is None
                      else self.social_cache.generations([user_id])[0])
        members = {*stream_friends(self.social, user_id, STREAM_TIMEOUT_S), user_id}
        ordered_ids = sorted(members)
        for day in open_days(now):
            computed_at = int(time.time())
            scores: dict[int, int | None] = {}
            for first in range(0, len(ordered_ids), SCORE_CHUNK):
                scores |= self.store.scores(day, ordered_ids[first:first + SCORE_CHUNK])
            self.hot.save(user_id, day, order_rows(scores), computed_at, generation)
        self.refreshed[user_id] = generation
        REFRESHES.labels("done").inc()
        REFRESH_SECONDS.observe(time.monotonic() - started)
        log.info("refreshed", extra={"user_id": user_id, "members": len(members)})

    def run_once(self) -> int:
        """One round over all hot users; returns how many this replica refreshed."""
        now = datetime.now(UTC)
        self.refreshed = {}
        return sum(self.refresh(user_id, now) for user_id in self.hot_users())

    def refresh_changed(self) -> int:
        """Refreshes the users this replica refreshed this round whose friend list changed
        since; returns how many (none without social_svc's cache: no generations)."""
        users = list(self.refreshed)
        if not users or self.social_cache is None:
            return 0
        current = self.social_cache.generations(users)
        changed = [u for u, g in zip(users, current, strict=True) if g != self.refreshed[u]]
        now = datetime.now(UTC)
        return sum(self.refresh(user_id, now, claimed=True) for user_id in changed)

    def run(self, stop: threading.Event) -> None:
        """Rounds every interval until ``stop`` is set, checking for changed friend lists
        in between; failures wait for the next check or round."""
        while not stop.is_set():
            started = time.monotonic()
            _logged(self.run_once, "precompute round failed")
            while (left := self.config.interval_s - (time.monotonic() - started)) > 0:
                if stop.wait(min(CHANGE_CHECK_S, left)):
                    return
                _logged(self.refresh_changed, "changed-list refresh failed")


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
