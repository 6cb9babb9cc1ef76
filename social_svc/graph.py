"""Friend lists and profiles read through the cache, and writes that invalidate it."""

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from common.social_cache_format import (
    FRIENDS,
    PROFILE,
    FriendList,
    decode_friends,
    decode_profile,
    encode_friends,
    encode_profile,
)
from social_svc.cache import GraphCache
from social_svc.store import GraphStore, StoredProfile
from stepboard.v1 import social_pb2


class FriendPage(NamedTuple):
    """One page of a friend list."""

    friend_ids: list[int]
    total_count: int
    more: bool


class SocialGraph:
    """The graph as the servicer sees it; ``cache`` may be ``None`` (MySQL only)."""

    def __init__(self, store: GraphStore, cache: GraphCache | None, max_cached: int) -> None:
        self.store = store
        self._cache = cache
        self._max_cached = max_cached

    # -- writes ---------------------------------------------------------------------------
    def add_friendship(self, user_id: int, friend_id: int) -> None:
        """Adds the friendship, then drops both users' cached lists."""
        try:
            self.store.add_friendship(user_id, friend_id)
        finally:
            self._invalidate(FRIENDS, (user_id, friend_id))

    def remove_friendship(self, user_id: int, friend_id: int) -> None:
        """Removes the friendship, then drops both users' cached lists."""
        try:
            self.store.remove_friendship(user_id, friend_id)
        finally:
            self._invalidate(FRIENDS, (user_id, friend_id))

    def upsert_profile(self, profile: StoredProfile) -> None:
        """Stores the profile, then drops its cached copy."""
        try:
            self.store.upsert_profile(profile)
        finally:
            self._invalidate(PROFILE, (profile.user_id,))

    def _invalidate(self, kind: str, user_ids: Sequence[int]) -> None:
        # Also after a failed write: one side of a friendship may have been committed.
        if self._cache is not None:
            self._cache.invalidate(kind, user_ids)

    # -- friend lists ---------------------------------------------------------------------
    def _cached_friends(self, user_id: int) -> FriendList | None:
        """The user's list from the cache, filling it on a miss; ``None`` if no cache."""
        if self._cache is None:
            return None
        entries = self._cache.lookup(FRIENDS, [user_id])
        if entries is None:
            return None
        value, generation = entries[0]
        if value is not None:
            return decode_friends(value)
        friends = FriendList(*self.store.small_friend_list(user_id, self._max_cached))
        self._cache.fill(FRIENDS, [(user_id, generation, encode_friends(friends))])
        return friends

    def friend_page(self, user_id: int, after: int, size: int) -> FriendPage:
        """Up to ``size`` friend ids above ``after``, the total, and whether more follow."""
        friends = self._cached_friends(user_id)
        if friends is not None and friends.ids is not None:
            start = bisect_right(friends.ids, after)
            ids = list(friends.ids[start:start + size])
            return FriendPage(ids, friends.count, start + size < len(friends.ids))
        if friends is not None:
            ids = self.store.friend_page(user_id, after, size + 1)
            total = friends.count
        else:
            ids, total = self.store.friend_page_and_count(user_id, after, size + 1)
        return FriendPage(ids[:size], total, len(ids) > size)

    def are_friends(self, user_id: int, friend_id: int) -> bool:
        """Whether ``friend_id`` is on ``user_id``'s list: a one-id page starting at it
        (the cached list, else one indexed MySQL read)."""
        return self.friend_page(user_id, friend_id - 1, 1).friend_ids == [friend_id]

    def friend_chunks(self, user_id: int, size: int) -> Iterator[list[int]]:
        """The whole list in ascending chunks of ``size`` (keyset pages for long lists)."""
        friends = self._cached_friends(user_id)
        if friends is not None and friends.ids is not None:
            for start in range(0, len(friends.ids), size):
                yield list(friends.ids[start:start + size])
            return
        after = 0
        while True:
            ids = self.store.friend_page(user_id, after, size)
            if ids:
                yield ids
            if len(ids) < size:
                return
            after = ids[-1]

    # -- profiles -------------------------------------------------------------------------
    def profiles(self, user_ids: Sequence[int]) -> dict[int, social_pb2.Profile]:
        """Profiles of the distinct ``user_ids`` that have one, from the cache or MySQL."""
        found: dict[int, social_pb2.Profile] = {}
        entries = self._cache.lookup(PROFILE, user_ids) if self._cache is not None else None
        if entries is None:
            missing = {user_id: b"" for user_id in user_ids}
        else:
            missing = {}
            for user_id, (value, generation) in zip(user_ids, entries, strict=True):
                if value is None:
                    missing[user_id] = generation
                elif (profile := decode_profile(value)) is not None:
                    found[user_id] = profile
        if not missing:
            return found
        stored = self.store.profiles(missing)
        fills = []
        for user_id, generation in missing.items():
            row = stored.get(user_id)
            profile = social_pb2.Profile(**row._asdict()) if row else None
            if profile is not None:
                found[user_id] = profile
            fills.append((user_id, generation, encode_profile(profile)))
        if self._cache is not None and entries is not None:
            self._cache.fill(PROFILE, fills)
        return found
