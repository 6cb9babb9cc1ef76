"""rank_svc's view of social_svc: friend lists with a stale fallback, and profiles.

Both are kept in bounded in-process caches (:class:`TimedLru`). A friend list is kept in
the form its reader asked for (``prepare``: rank_svc keeps the user and their friends
grouped and encoded for the board reads), so that work is paid once per fetch, not once
per ranking. A friend list younger than
``fresh_s`` is used as is; once it is past half that age, using it also refetches it in the
background, so the calls of an active user never wait for social_svc (before, every
refresh sat inside some caller's request: at 5,000 friends a streamed list, the slowest
1-2 % of calls). A list older than ``fresh_s`` is refetched before answering, and if
social_svc is slow or down a list up to ``stale_s`` old is served instead (counted in a
metric, flagged in the answer). Profiles are decoration: they are reused for
``PROFILE_TTL_S`` (a renamed user shows the old nickname that long), and when they cannot
be fetched, rankings go out without them.
"""

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

import grpc
from prometheus_client import Counter

from common.errors import Unavailable
from rank_svc.timed_lru import TimedLru
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
UNARY_PAGE = 1000  # social_svc's largest ListFriends page
PROFILE_TTL_S = 30.0
PROFILES_CACHED = 200_000

Prepared = TypeVar("Prepared")


def stream_friends(
    stub: social_pb2_grpc.FriendGraphStub, user_id: int, timeout_s: float
) -> list[int]:
    """The whole friend list straight from social_svc, in chunks (no cache)."""
    chunks = stub.StreamFriends(
        social_pb2.StreamFriendsRequest(user_id=user_id, chunk_size=STREAM_CHUNK),
        timeout=timeout_s,
    )
    return [friend for chunk in chunks for friend in chunk.friend_ids]


def fetch_friends(
    stub: social_pb2_grpc.FriendGraphStub, user_id: int, timeout_s: float,
    last_count: int | None = None,
) -> list[int]:
    """The whole friend list: one unary page when it fits (most users; a unary call costs
    far less than a stream), else the stream; straight to the stream when the user's last
    known list (``last_count``) did not fit."""
    if last_count is not None and last_count > UNARY_PAGE:
        return stream_friends(stub, user_id, timeout_s)
    page = stub.ListFriends(
        social_pb2.ListFriendsRequest(user_id=user_id, page_size=UNARY_PAGE), timeout=timeout_s
    )
    if not page.next_page_token:
        return list(page.friend_ids)
    return stream_friends(stub, user_id, timeout_s)


class FriendSource(Generic[Prepared]):
    """A user's friend list, from social_svc or, when it fails, from the last known list;
    each list as ``prepare(user_id, friend_ids)`` makes it."""

    def __init__(
        self,
        stub: social_pb2_grpc.FriendGraphStub,
        fresh_s: float,
        stale_s: float,
        max_users: int,
        max_cached_list: int,
        prepare: Callable[[int, list[int]], Prepared],
    ) -> None:
        self._stub = stub
        self._fresh_s = fresh_s
        self._stale_s = stale_s
        self._max_cached_list = max_cached_list
        self._prepare = prepare
        # user id -> (friend count, prepared list)
        self._cache: TimedLru[int, tuple[int, Prepared]] = TimedLru(max_users)
        self._refresher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="friends-ahead")
        self._refreshing: set[int] = set()
        self._refreshing_lock = threading.Lock()

    def known_count(self, user_id: int) -> int | None:
        """How many friends the cached list (of any age) holds; None if none is cached."""
        cached = self._cache.get(user_id)
        return None if cached is None else cached[1][0]

    def friends(self, user_id: int, timeout_s: float) -> tuple[Prepared, bool]:
        """``(prepared friend list, stale)``; ``Unavailable`` if social_svc fails and nothing
        is cached."""
        cached = self._cache.get(user_id)
        if cached and cached[0] <= self._fresh_s:
            count, prepared = cached[1]
            if cached[0] > self._fresh_s / 2:
                self._refresh_ahead(user_id, count, timeout_s)
            return prepared, False
        try:
            last_count = None if cached is None else cached[1][0]
            prepared = self._fetch(user_id, timeout_s, last_count)
        except grpc.RpcError as error:
            if error.code() not in _RETRYABLE:
                raise
            if cached and cached[0] <= self._stale_s:
                STALE_FRIEND_LISTS.inc()
                return cached[1][1], True
            raise Unavailable(
                f"friend graph unavailable ({error.code().name}) and no recent friend list cached"
            ) from None
        return prepared, False

    def _fetch(self, user_id: int, timeout_s: float, last_count: int | None) -> Prepared:
        friends = fetch_friends(self._stub, user_id, timeout_s, last_count)
        prepared = self._prepare(user_id, friends)
        if len(friends) <= self._max_cached_list:
            self._cache.put(user_id, (len(friends), prepared))
        return prepared

    def _refresh_ahead(self, user_id: int, last_count: int, timeout_s: float) -> None:
        """Refetches a list in use in the background, once at a time per user."""
        with self._refreshing_lock:
            if user_id in self._refreshing:
                return
            self._refreshing.add(user_id)
        self._refresher.submit(self._refresh, user_id, last_count, timeout_s)

    def _refresh(self, user_id: int, last_count: int, timeout_s: float) -> None:
        try:
            self._fetch(user_id, timeout_s, last_count)
        except Exception as error:  # the cached list stays; a caller past fresh_s retries
            log.info("friend list refresh failed", extra={"user_id": user_id,
                                                          "error": str(error)})
        finally:
            with self._refreshing_lock:
                self._refreshing.discard(user_id)


class ProfileSource:
    """Nicknames and avatars: recent ones from memory, the rest in one batch per answer."""

    def __init__(self, stub: social_pb2_grpc.FriendGraphStub) -> None:
        self._stub = stub
        self._cache: TimedLru[int, social_pb2.Profile | None] = TimedLru(PROFILES_CACHED)

    def profiles(self, user_ids: Iterable[int], timeout_s: float) -> dict[int, social_pb2.Profile]:
        """Profiles by user id; without the missing ones (counted, logged) if social_svc fails."""
        ids = set(user_ids)
        recent = self._cache.younger_than(ids, PROFILE_TTL_S)
        found = {user_id: p for user_id, p in recent.items() if p is not None}
        wanted = [user_id for user_id in ids if user_id not in recent]
        if not wanted:
            return found
        try:
            reply = self._stub.GetProfiles(
                social_pb2.GetProfilesRequest(user_ids=sorted(wanted)), timeout=timeout_s
            )
        except grpc.RpcError as error:
            PROFILES_MISSING.labels(error.code().name).inc()
            log.warning("profiles unavailable", extra={"code": error.code().name})
            return found
        fetched = {p.user_id: p for p in reply.profiles}
        for user_id in wanted:
            self._cache.put(user_id, fetched.get(user_id))
        return found | fetched
