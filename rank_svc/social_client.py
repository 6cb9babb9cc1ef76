"""rank_svc's view of social_svc: friend lists with a stale fallback, and profiles.

Both are kept in bounded in-process caches (:class:`TimedLru`). A friend list is kept in
the form its reader asked for (``prepare``: rank_svc keeps the user and their friends
grouped and encoded for the board reads), so that work is paid once per fetch, not once
per ranking. A cached list is kept with its *generation*, the token social_svc replaces in
Redis after every change of the list: the ranking reads the current generation in the
same round trip as the scores and fetches the list again only when it moved, so a list is
reused for as long as it is unchanged (up to ``lifetime_s``, social_svc's own cache TTL)
and a change shows in the very next ranking.

A list or profile this process does not hold is read first from social_svc's Redis cache
(:class:`common.social_cache_format.SocialCache`), where any replica's earlier call left
it, and asked of social_svc only when it is not there: the first ranking of a user on
this process then costs Redis reads instead of two gRPC calls (``docs/architecture.md``).

Without social_svc's cache there are no generations, and a list is reused unchecked for a
short ``lifetime_s``. Once a list is past half its lifetime, using it also refetches it in
the background, so the calls of an active user never wait for social_svc. A list past its
lifetime is refetched before answering, and if social_svc is slow or down a list up to
``stale_s`` old is served instead (counted in a metric, flagged in the answer). Profiles
are decoration: they are reused for ``PROFILE_TTL_S`` (a renamed user shows the old
nickname that long), and when they cannot be fetched, rankings go out without them.
"""

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, NamedTuple, TypeVar

import grpc
from prometheus_client import Counter

from common import call_deadline
from common.redis_clients import REDIS_ERRORS
from common.social_cache_format import SocialCache
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
SOCIAL_CACHE_READS = Counter(
    "stepboard_rank_social_cache_reads_total",
    "Friend lists and profiles rank_svc looked for in social_svc's cache, by kind and "
    "result (hit; miss: asked of social_svc).",
    ["kind", "result"],
)
# The longest a call to social_svc may take: one that takes longer is unavailable. Within a
# ranking call the wait is also bound by the caller's deadline (common.call_deadline).
SOCIAL_TIMEOUT_S = 2.0
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


class Listed(NamedTuple, Generic[Prepared]):
    """A friend list as :meth:`FriendSource.friends` gives it."""

    prepared: Prepared
    generation: bytes | None  # the list's generation when it was fetched
    stale: bool  # an old list served because social_svc failed


class FriendSource(Generic[Prepared]):
    """A user's friend list, from social_svc's cache or social_svc or, when social_svc
    fails, from the last known list; each list as ``prepare(user_id, friend_ids)`` makes it.

    With ``social_cache``, a cached list is used for ``lifetime_s`` as long as its
    generation is unchanged: the caller reads the current generation (the key
    :meth:`generation_key` names) in the round trip of its score read, and reads the list
    again (:meth:`changed`) when it moved. Without, a list is used for ``lifetime_s``
    unchecked.
    """

    def __init__(
        self,
        stub: social_pb2_grpc.FriendGraphStub,
        lifetime_s: float,
        stale_s: float,
        max_users: int,
        max_ids: int,
        max_cached_list: int,
        prepare: Callable[[int, Sequence[int]], Prepared],
        social_cache: SocialCache | None,
    ) -> None:
        self._stub = stub
        self._lifetime_s = lifetime_s
        self._stale_s = stale_s
        self._max_cached_list = max_cached_list
        self._prepare = prepare
        self._social_cache = social_cache
        # user id -> (friend count, prepared list, its generation); at most ``max_users``
        # lists holding at most ``max_ids`` friends in all (a list costs memory per id)
        self._cache: TimedLru[int, tuple[int, Prepared, bytes | None]] = TimedLru(
            max_users, max_ids, size_of=lambda entry: entry[0]
        )
        self._refresher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="friends-ahead")
        self._refreshing: set[int] = set()
        self._refreshing_lock = threading.Lock()

    def known_count(self, user_id: int) -> int | None:
        """How many friends the cached list (of any age) holds; None if none is cached."""
        cached = self._cache.get(user_id)
        return None if cached is None else cached[1][0]

    def generation_key(self, user_id: int) -> str | None:
        """The Redis key holding the current generation of ``user_id``'s list; None when
        lists are not checked."""
        return None if self._social_cache is None else self._social_cache.generation_key(user_id)

    def friends(self, user_id: int) -> Listed[Prepared]:
        """The user's list: held if younger than ``lifetime_s``, else read again (see
        :meth:`_fetch_or_fallback` for when social_svc fails)."""
        cached = self._cache.get(user_id)
        if cached and cached[0] <= self._lifetime_s:
            count, prepared, generation = cached[1]
            if cached[0] > self._lifetime_s / 2:
                self._refresh_ahead(user_id, count)
            return Listed(prepared, generation, False)
        return self._fetch_or_fallback(user_id, cached)

    def current(self, listed: Listed[Prepared], generation: bytes | None) -> bool:
        """Whether ``listed`` is still the list of the given current generation (always
        without checks; a stale list is not checked again, social_svc just failed)."""
        return self._social_cache is None or listed.stale or listed.generation == generation

    def changed(self, user_id: int) -> Listed[Prepared]:
        """The list read again, after its generation moved."""
        return self._fetch_or_fallback(user_id, self._cache.get(user_id))

    def _fetch_or_fallback(
        self, user_id: int, cached: tuple[float, tuple[int, Prepared, bytes | None]] | None,
    ) -> Listed[Prepared]:
        """The list read (:meth:`_fetch`), or ``cached``, the entry the caller found (age,
        value), served stale if social_svc fails and it is at most ``stale_s`` old.

        With such a fallback social_svc gets half of what is left of the caller's deadline,
        so the stale list can still be ranked in time; without, all of it. A failure with
        nothing to fall back on is ``DeadlineExceeded`` when the caller's deadline cut the
        wait short, else ``Unavailable`` naming social_svc's status (down, slower than its
        timeout, or refusing this process's caller)."""
        fallback = cached[1] if cached and cached[0] <= self._stale_s else None
        timeout_s, by_deadline = call_deadline.wait_s(SOCIAL_TIMEOUT_S, 0.5 if fallback else 1.0)
        try:
            return self._fetch(user_id, timeout_s, None if cached is None else cached[1][0])
        except grpc.RpcError as error:  # any refusal: social_svc cannot give the list now
            if fallback is not None:
                STALE_FRIEND_LISTS.inc()
                _, prepared, old_generation = fallback
                return Listed(prepared, old_generation, True)
            raise call_deadline.rpc_failure(
                error, by_deadline, "reading the friend list from social_svc",
                "friend graph unavailable ({code}) and no recent friend list cached",
            ) from None

    def _fetch(self, user_id: int, timeout_s: float, last_count: int | None) -> Listed[Prepared]:
        """The list from social_svc's cache if it is there, else from social_svc, held with
        the generation read before it: a change after that read shows as a newer generation
        on the next use, never as an old list under the new generation."""
        generation, shared = (
            (None, None) if self._social_cache is None else self._social_cache.friends(user_id)
        )
        if shared is not None and shared.ids is not None:
            friends: Sequence[int] = shared.ids
        else:
            if shared is not None:  # too long for social_svc's cache: straight to the stream
                last_count = shared.count
            friends = fetch_friends(self._stub, user_id, timeout_s, last_count)
        prepared = self._prepare(user_id, friends)
        if len(friends) <= self._max_cached_list:
            self._cache.put(user_id, (len(friends), prepared, generation))
        return Listed(prepared, generation, False)

    def _refresh_ahead(self, user_id: int, last_count: int) -> None:
        """Refetches a list in use in the background, once at a time per user."""
        with self._refreshing_lock:
            if user_id in self._refreshing:
                return
            self._refreshing.add(user_id)
        self._refresher.submit(self._refresh, user_id, last_count)

    def _refresh(self, user_id: int, last_count: int) -> None:
        try:
            self._fetch(user_id, SOCIAL_TIMEOUT_S, last_count)
        except Exception as error:  # the cached list stays; a caller past lifetime_s retries
            log.info("friend list refresh failed", extra={"user_id": user_id,
                                                          "error": str(error)})
        finally:
            with self._refreshing_lock:
                self._refreshing.discard(user_id)


class ProfileSource:
    """Nicknames and avatars: recent ones from memory, then those in social_svc's cache,
    the rest in one batch per answer."""

    def __init__(
        self, stub: social_pb2_grpc.FriendGraphStub, social_cache: SocialCache | None
    ) -> None:
        self._stub = stub
        self._social_cache = social_cache
        self._cache: TimedLru[int, social_pb2.Profile | None] = TimedLru(PROFILES_CACHED)

    def profiles(self, user_ids: Iterable[int]) -> dict[int, social_pb2.Profile]:
        """Profiles by user id; without the missing ones (counted, logged) if social_svc
        fails. social_svc gets half of what is left of the caller's deadline, so the
        answer still goes out in time without them."""
        ids = set(user_ids)
        recent = self._cache.younger_than(ids, PROFILE_TTL_S)
        wanted = [user_id for user_id in ids if user_id not in recent]
        if wanted:
            recent |= self._read(wanted)
        return _present(recent)

    def cache_key(self, user_id: int) -> str | None:
        """The key of ``user_id``'s profile in social_svc's cache, for a caller to read with
        its own reads and give to :meth:`profile`; None when this process holds a recent
        one, or without that cache."""
        if self._social_cache is None or self._cache.younger_than([user_id], PROFILE_TTL_S):
            return None
        return self._social_cache.profile_key(user_id)

    def profile(
        self, user_id: int, read: bool, value: bytes | None,
    ) -> dict[int, social_pb2.Profile]:
        """:meth:`profiles` of ``user_id`` alone; ``read``: the caller read the key
        :meth:`cache_key` named, which held ``value`` (None: not cached there)."""
        if not read:
            return self.profiles([user_id])
        return _present(self._read([user_id], [value]))

    def _read(
        self, user_ids: list[int], values: Sequence[bytes | None] | None = None,
    ) -> dict[int, social_pb2.Profile | None]:
        """The profiles of ``user_ids`` (None: the user has none) from social_svc's cache
        (``values``: their values there, already read; None: read here), then social_svc;
        kept here. Users whose profile could not be read are left out."""
        timeout_s = call_deadline.wait_s(SOCIAL_TIMEOUT_S, 0.5)[0]
        found: dict[int, social_pb2.Profile | None] = {}
        if self._social_cache is not None:
            try:
                found = (self._social_cache.profiles(user_ids) if values is None
                         else self._social_cache.profiles_of(user_ids, values))
            except REDIS_ERRORS as error:  # social_svc may still answer
                log.warning("social cache unavailable for profiles", extra={"error": str(error)})
        wanted = [user_id for user_id in user_ids if user_id not in found]
        if wanted:
            try:
                reply = self._stub.GetProfiles(
                    social_pb2.GetProfilesRequest(user_ids=sorted(wanted)), timeout=timeout_s
                )
            except grpc.RpcError as error:
                PROFILES_MISSING.labels(error.code().name).inc()
                log.warning("profiles unavailable", extra={"code": error.code().name})
            else:
                fetched = {p.user_id: p for p in reply.profiles}
                found |= {user_id: fetched.get(user_id) for user_id in wanted}
        self._cache.put_many(found.items())
        return found


def _present(found: dict[int, social_pb2.Profile | None]) -> dict[int, social_pb2.Profile]:
    """``found`` without the users known to have no profile."""
    return {user_id: profile for user_id, profile in found.items() if profile is not None}
