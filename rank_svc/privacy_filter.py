"""Who a viewer may not see in a ranking: users who left the rankings, and users who hide
their steps from the viewer (``social_svc/privacy.py`` keeps both).

Every ranking call reads the current generations first: the set of everyone who left is
kept in this process (prepared for board reads) under its generation and read again only
when that moved; a viewer's hiders are read with their generation in the same round trip.
An entry missing from social_svc's cache (expired, or the cache was wiped) is asked of
social_svc, which refills it. When neither can be read the call fails ``UNAVAILABLE`` (or
``DEADLINE_EXCEEDED``): a ranking is never answered unfiltered. Without social_svc's cache
every call asks social_svc.

The view generation of a viewer moves with every change of what they may see (a hide, a
friend leaving or joining): a precomputed ranking records the one it was computed under and
is served only while it is unchanged (``rank_svc/hot_rankings.py``).
"""

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import grpc

from common import call_deadline
from common.errors import Unavailable
from common.redis_clients import REDIS_ERRORS, RedisClient
from common.social_cache_format import EVERYONE, OPTED_OUT, VIEW, SocialCache, decode_ids
from rank_svc.board_readers import Members
from stepboard.v1 import social_pb2, social_pb2_grpc

SOCIAL_TIMEOUT_S = 2.0


class OptedOut(NamedTuple):
    """Everyone who left the rankings, as a set and prepared for board reads."""

    ids: frozenset[int]
    members: Members
    generation: bytes


class View(NamedTuple):
    """What one viewer may not see."""

    opted_out: OptedOut
    hiders: frozenset[int]
    generation: bytes  # the viewer's view generation (empty: none, never current)

    def hides(self, user_id: int) -> bool:
        """Whether ``user_id`` must be left out (left the rankings, or hides from the
        viewer); the caller keeps the viewer themself in their own friend ranking."""
        return user_id in self.opted_out.ids or user_id in self.hiders

    def excluded(self, viewer_id: int) -> list[int]:
        """The hiders of the viewer who did not leave the rankings (not the viewer)."""
        return sorted(u for u in self.hiders if u not in self.opted_out.ids and u != viewer_id)


class PrivacySource:
    """Reads :class:`View` s, from social_svc's cache or social_svc (see module doc)."""

    def __init__(
        self, stub: social_pb2_grpc.FriendGraphStub, client: RedisClient,
        social_cache: SocialCache | None, prepare: Callable[[Iterable[int]], Members],
    ) -> None:
        self._stub = stub
        self._client = client
        self._cache = social_cache
        self._prepare = prepare
        self._held: OptedOut | None = None
        self._lock = threading.Lock()

    def view(self, viewer_id: int) -> View:
        """What ``viewer_id`` (0: nobody in particular) may not see, as it is now."""
        keys = self.keys(viewer_id)
        try:
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
            found = pipe.execute() if keys else []
        except REDIS_ERRORS as error:
            raise Unavailable(f"privacy settings unreadable (Redis: {error})") from None
        return self.view_of(viewer_id, found)

    def keys(self, viewer_id: int) -> list[str]:
        """The keys :meth:`view_of` needs the values of, read in this order (a caller may
        read them with its own reads): the generation of the set of everyone who left,
        then the viewer's view generation and entry (none without social_svc's cache)."""
        if self._cache is None:
            return []
        opted = self._cache.privacy_keys(OPTED_OUT, EVERYONE)[:1]
        # the generation first: the entry is never older than it
        return opted + (self._cache.privacy_keys(VIEW, viewer_id) if viewer_id else [])

    def view_of(self, viewer_id: int, found: Sequence[bytes | None]) -> View:
        """The :class:`View` of ``viewer_id`` from ``found``, the values of :meth:`keys`;
        what they lack is read again or asked of social_svc."""
        if self._cache is None:
            reply = self._ask(viewer_id, True)
            return View(self._opted_out(reply), frozenset(reply.hiders), b"")
        opted_out = self._current_opted_out(
            found[0], self._cache.privacy_keys(OPTED_OUT, EVERYONE))
        if not viewer_id:
            return View(opted_out, frozenset(), b"")
        generation, value = found[1:]
        if generation and value is not None:
            return View(opted_out, frozenset(decode_ids(value)), generation)
        reply = self._ask(viewer_id, False)
        return View(opted_out, frozenset(reply.hiders), reply.view_generation)

    def _current_opted_out(self, generation: bytes | None, keys: list[str]) -> OptedOut:
        """The held set if its generation is ``generation``, else the set read again."""
        held = self._held
        if held is not None and generation and held.generation == generation:
            return held
        with self._lock:
            try:
                pipe = self._client.pipeline(transaction=False)
                for key in keys:  # the generation first: the entry is never older than it
                    pipe.get(key)
                generation, value = pipe.execute()
            except REDIS_ERRORS as error:
                raise Unavailable(f"privacy settings unreadable (Redis: {error})") from None
            if generation and value is not None:
                held = OptedOut(frozenset(decode_ids(value)), self._prepare(decode_ids(value)),
                                generation)
            else:
                held = self._opted_out(self._ask(0, True))
            if held.generation:
                self._held = held
            return held

    def _opted_out(self, reply: social_pb2.RankingExclusions) -> OptedOut:
        ids: Sequence[int] = reply.opted_out
        return OptedOut(frozenset(ids), self._prepare(ids), reply.opted_out_generation)

    def _ask(self, viewer_id: int, include_opted_out: bool) -> social_pb2.RankingExclusions:
        """The exclusions from social_svc, which refills its cache; ``Unavailable`` (or
        ``DeadlineExceeded`` when the caller's deadline cut the wait) if it fails."""
        timeout_s, by_deadline = call_deadline.wait_s(SOCIAL_TIMEOUT_S)
        try:
            return self._stub.GetRankingExclusions(
                social_pb2.GetRankingExclusionsRequest(
                    viewer_id=viewer_id, include_opted_out=include_opted_out),
                timeout=timeout_s,
            )
        except grpc.RpcError as error:
            raise call_deadline.rpc_failure(
                error, by_deadline, "reading privacy settings from social_svc",
                "friend graph unavailable ({code}) and the privacy settings the ranking "
                "needs are not cached",
            ) from None
