"""The friend graph and profiles in the MySQL shards: every query of social_svc.

A friendship is two rows, one in each user's shard, and each user's ``friend_counts`` row
changes in the same transaction as their friendship row, so counts match rows on every
shard. Both sides are written in one global order (the lower physical shard index first,
held open until the other side commits; on one shard, the lower user id first), which
serializes concurrent changes of the same pair and never has two changes each holding the
connection the other waits for; a failure between the two commits leaves one side written,
and repeating the call converges.
"""

from collections.abc import Iterable
from typing import Any, NamedTuple

from common.mysql_pools import ShardAccess


class StoredProfile(NamedTuple):
    """A profile row."""

    user_id: int
    nickname: str
    avatar_url: str
    cover_url: str


def _add_row(cur: Any, user_id: int, friend_id: int) -> None:
    cur.execute(
        "INSERT IGNORE INTO friendships (user_id, friend_id) VALUES (%s, %s)", (user_id, friend_id)
    )
    if cur.rowcount == 1:
        cur.execute(
            "INSERT INTO friend_counts (user_id, friend_count) VALUES (%s, 1)"
            " ON DUPLICATE KEY UPDATE friend_count = friend_count + 1",
            (user_id,),
        )


def _remove_row(cur: Any, user_id: int, friend_id: int) -> None:
    cur.execute(
        "DELETE FROM friendships WHERE user_id = %s AND friend_id = %s", (user_id, friend_id)
    )
    if cur.rowcount == 1:
        cur.execute(
            "UPDATE friend_counts SET friend_count = friend_count - 1 WHERE user_id = %s",
            (user_id,),
        )


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


class GraphStore:
    """Reads and writes friendships, friend counts and profiles on their shards."""

    def __init__(self, access: ShardAccess) -> None:
        self._access = access
        self._pools = access.pools

    @property
    def shard_count(self) -> int:
        """How many physical shards there are."""
        return len(self._pools.pools)

    def shard_of(self, user_id: int) -> int:
        """The physical shard that owns ``user_id``."""
        return self._pools.physical_index(user_id)

    # -- friendships ----------------------------------------------------------------------
    def add_friendship(self, user_id: int, friend_id: int) -> None:
        """Makes both users friends of each other (idempotent)."""
        self._change(user_id, friend_id, _add_row)

    def remove_friendship(self, user_id: int, friend_id: int) -> None:
        """Removes the friendship in both directions (idempotent)."""
        self._change(user_id, friend_id, _remove_row)

    def _change(self, user_id: int, friend_id: int, apply) -> None:
        """Applies ``apply`` to both rows of the friendship, the lower shard index first.

        Every change takes its two shards in that one global order, so two changes never
        each hold one shard's connection while waiting for the other's (with one connection
        per shard they would wait until the pool gave up); on one shard, the lower user id
        first."""
        (first, near), (second, far) = sorted(
            ((self.shard_of(user_id), user_id), (self.shard_of(friend_id), friend_id))
        )
        with self._access.cursor(first, write=True) as cur:
            apply(cur, near, far)
            if first == second:
                apply(cur, far, near)
                return
            with self._access.cursor(second, write=True) as other:
                apply(other, far, near)

    def friend_page(self, user_id: int, after: int, limit: int) -> list[int]:
        """Up to ``limit`` friend ids greater than ``after``, ascending (keyset page)."""
        with self._access.cursor(self.shard_of(user_id)) as cur:
            return self._page(cur, user_id, after, limit)

    def friend_page_and_count(
        self, user_id: int, after: int, limit: int
    ) -> tuple[list[int], int]:
        """A keyset page and the user's friend count, read from one snapshot."""
        with self._access.cursor(self.shard_of(user_id)) as cur:
            return self._page(cur, user_id, after, limit), self._count(cur, user_id)

    def small_friend_list(self, user_id: int, max_friends: int) -> tuple[int, list[int] | None]:
        """``(friend count, all friend ids)``, the ids only if there are at most
        ``max_friends``; read from one snapshot."""
        with self._access.cursor(self.shard_of(user_id)) as cur:
            count = self._count(cur, user_id)
            if count > max_friends:
                return count, None
            ids = self._page(cur, user_id, 0, max_friends + 1)
            return (count, None) if len(ids) > max_friends else (len(ids), ids)

    @staticmethod
    def _page(cur: Any, user_id: int, after: int, limit: int) -> list[int]:
        cur.execute(
            "SELECT friend_id FROM friendships WHERE user_id = %s AND friend_id > %s"
            " ORDER BY friend_id LIMIT %s",
            (user_id, after, limit),
        )
        return [row[0] for row in cur.fetchall()]

    @staticmethod
    def _count(cur: Any, user_id: int) -> int:
        cur.execute("SELECT friend_count FROM friend_counts WHERE user_id = %s", (user_id,))
        row = cur.fetchone()
        return int(row[0]) if row else 0

    def hot_users(
        self, shard: int, min_friends: int, after: int, limit: int
    ) -> list[tuple[int, int]]:
        """``(user_id, friend_count)`` of ``shard``'s users with at least ``min_friends``
        friends and an id above ``after``, ascending by id."""
        with self._access.cursor(shard) as cur:
            cur.execute(
                "SELECT user_id, friend_count FROM friend_counts"
                " WHERE friend_count >= %s AND user_id > %s ORDER BY user_id LIMIT %s",
                (min_friends, after, limit),
            )
            return [(int(u), int(c)) for u, c in cur.fetchall()]

    # -- profiles -------------------------------------------------------------------------
    def upsert_profile(self, profile: StoredProfile) -> None:
        """Creates or replaces a profile."""
        with self._access.cursor(self.shard_of(profile.user_id), write=True) as cur:
            cur.execute(
                "INSERT INTO profiles (user_id, nickname, avatar_url, cover_url)"
                " VALUES (%s, %s, %s, %s)"
                " ON DUPLICATE KEY UPDATE nickname = VALUES(nickname),"
                " avatar_url = VALUES(avatar_url), cover_url = VALUES(cover_url)",
                profile,
            )

    def profiles(self, user_ids: Iterable[int]) -> dict[int, StoredProfile]:
        """The stored profiles among ``user_ids``, one query per physical shard."""
        by_shard: dict[int, list[int]] = {}
        for user_id in user_ids:
            by_shard.setdefault(self.shard_of(user_id), []).append(user_id)
        found: dict[int, StoredProfile] = {}
        for shard, ids in sorted(by_shard.items()):
            with self._access.cursor(shard) as cur:
                cur.execute(
                    "SELECT user_id, nickname, avatar_url, cover_url FROM profiles"
                    f" WHERE user_id IN ({_placeholders(len(ids))})",
                    ids,
                )
                found.update((row[0], StoredProfile(*row)) for row in cur.fetchall())
        return found
