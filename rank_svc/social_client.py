"""rank_svc's view of social_svc: friend lists with a stale fallback, and profiles.

Friend lists are kept in a bounded in-process cache. A list younger than ``fresh_s`` is
used as is; an older one is refreshed from social_svc, and if social_svc is slow or down a
list up to ``stale_s`` old is served instead (counted in a metric, flagged in the answer).
Profiles are decoration: when they cannot be fetched, rankings go out without them.
"""

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

import grpc
from prometheus_client import Counter

from common.errors import Unavailable
from stepboard.v1 import social_pb2, social_pb2_grpc

log = logging.getLogger(__name__)

STALE_FRIEND_LISTS = Counter(
    "stepboard_rank_stale_friend_lists_total",
    "Rankings served from a cached friend list because social_svc was unavailable.",
)
PROFILES_MISSING = Counter(
    "stepboard_rank_profiles_unavailable_total",
    "Rankings served without nicknames because GetProfiles failed, by status code.",
    ["code"],
)
_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
STREAM_CHUNK = 5000


def stream_friends(
    stub: social_pb2_grpc.FriendGraphStub, user_id: int, timeout_s: float
) -> list[int]:
    """The whole friend list straight from social_svc, in chunks (no cache)."""
    chunks = stub.StreamFriends(
        social_pb2.StreamFriendsRequest(user_id=user_id, chunk_size=STREAM_CHUNK),
        timeout=timeout_s,
    )
    return [friend for chunk in chunks for friend in chunk.friend_ids]


class FriendSource:
    """Friend ids of a user, from social_svc or, when it fails, from the last known list."""

    def __init__(
        self,
        stub: social_pb2_grpc.FriendGraphStub,
        fresh_s: float,
        stale_s: float,
        max_users: int,
        max_cached_list: int,
    ) -> None:
        self._stub = stub
        self._fresh_s = fresh_s
        self._stale_s = stale_s
        self._max_users = max_users
        self._max_cached_list = max_cached_list
        self._cache: OrderedDict[int, tuple[float, list[int]]] = OrderedDict()
        self._lock = threading.Lock()

    def _cached(self, user_id: int) -> tuple[float, list[int]] | None:
        with self._lock:
            found = self._cache.get(user_id)
            if found is not None:
                self._cache.move_to_end(user_id)
            return found

    def _remember(self, user_id: int, friends: list[int]) -> None:
        if len(friends) > self._max_cached_list:
            return
        with self._lock:
            self._cache[user_id] = (time.monotonic(), friends)
            self._cache.move_to_end(user_id)
            while len(self._cache) > self._max_users:
                self._cache.popitem(last=False)

    def friends(self, user_id: int, timeout_s: float) -> tuple[list[int], bool]:
        """``(friend ids, stale)``; ``Unavailable`` if social_svc fails and nothing is cached."""
        cached = self._cached(user_id)
        age = time.monotonic() - cached[0] if cached else None
        if cached and age <= self._fresh_s:
            return cached[1], False
        try:
            friends = stream_friends(self._stub, user_id, timeout_s)
        except grpc.RpcError as error:
            if error.code() not in _RETRYABLE:
                raise
            if cached and age <= self._stale_s:
                STALE_FRIEND_LISTS.inc()
                return cached[1], True
            raise Unavailable(
                f"friend graph unavailable ({error.code().name}) and no recent friend list cached"
            ) from None
        self._remember(user_id, friends)
        return friends, False


class ProfileSource:
    """Nicknames and avatars, fetched in one batch per answer."""

    def __init__(self, stub: social_pb2_grpc.FriendGraphStub) -> None:
        self._stub = stub

    def profiles(self, user_ids: Iterable[int], timeout_s: float) -> dict[int, social_pb2.Profile]:
        """Profiles by user id; empty (counted and logged) if social_svc fails."""
        ids = sorted(set(user_ids))
        if not ids:
            return {}
        try:
            reply = self._stub.GetProfiles(
                social_pb2.GetProfilesRequest(user_ids=ids), timeout=timeout_s
            )
        except grpc.RpcError as error:
            PROFILES_MISSING.labels(error.code().name).inc()
            log.warning("profiles unavailable", extra={"code": error.code().name})
            return {}
        return {p.user_id: p for p in reply.profiles}
