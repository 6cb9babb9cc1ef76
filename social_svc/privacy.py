"""Privacy controls: who left the rankings, and who hides their steps from whom.

Truth is in MySQL: ``ranking_optouts`` on the user's shard; a hide as ``step_hides`` on the
viewer's shard (what rankings read) and ``steps_hidden_from`` on the hider's (what the
hider's settings list), the viewer's side written first so a hide, or its removal, takes
effect even if the second write fails (a retry completes it).

rank_svc reads two cache entries (``common/social_cache_format.py``): the set of everyone
who left (``OPTED_OUT``) and, per viewer, the users hiding from them (``VIEW``). A change
commits in MySQL, then replaces the affected generations and drops the entries: a hide
moves the viewer's ``VIEW`` generation; leaving or joining moves the ``OPTED_OUT``
generation, then the ``VIEW`` generation of every friend of the user (their precomputed
rankings hold that generation). These invalidations are required: if Redis refuses one,
the call fails ``UNAVAILABLE`` (the change is stored; a retry invalidates again). Without
the cache, reads go to MySQL every time.
"""

from collections.abc import Callable, Iterable, Sequence

from common.errors import DeadlineExceeded
from common.mysql_pools import ShardAccess
from common.redis_clients import REDIS_ERRORS
from common.social_cache_format import EVERYONE, OPTED_OUT, VIEW, decode_ids, encode_ids
from social_svc.cache import GraphCache
from social_svc.graph import SocialGraph
from stepboard.v1 import social_pb2

FAN_OUT_CHUNK = 10_000  # friends whose VIEW generation one pipeline replaces
# A hide's rows: (viewer, hider) on the viewer's shard, then (hider, viewer) on the hider's.
_HIDE_SQL = ("INSERT IGNORE INTO step_hides (viewer_id, hider_id) VALUES (%s, %s)",
             "INSERT IGNORE INTO steps_hidden_from (hider_id, viewer_id) VALUES (%s, %s)")
_SHOW_SQL = ("DELETE FROM step_hides WHERE viewer_id = %s AND hider_id = %s",
             "DELETE FROM steps_hidden_from WHERE hider_id = %s AND viewer_id = %s")


class PrivacyStore:
    """The privacy tables on the graph's shards."""

    def __init__(self, access: ShardAccess) -> None:
        self._access = access

    def _shard(self, user_id: int) -> int:
        return self._access.pools.physical_index(user_id)

    def set_opted_out(self, user_id: int, opted_out: bool) -> None:
        """Records that ``user_id`` left the rankings (or joined again)."""
        sql = ("INSERT IGNORE INTO ranking_optouts (user_id) VALUES (%s)" if opted_out
               else "DELETE FROM ranking_optouts WHERE user_id = %s")
        with self._access.cursor(self._shard(user_id), write=True) as cur:
            cur.execute(sql, (user_id,))

    def set_hidden(self, hider_id: int, viewer_id: int, hidden: bool) -> None:
        """Records (or removes) a hide of ``hider_id``'s steps from ``viewer_id``: the
        viewer's row first, then the hider's."""
        sides = (_HIDE_SQL if hidden else _SHOW_SQL)
        for (sql, first, second) in ((sides[0], viewer_id, hider_id),
                                     (sides[1], hider_id, viewer_id)):
            with self._access.cursor(self._shard(first), write=True) as cur:
                cur.execute(sql, (first, second))

    def settings(self, user_id: int) -> tuple[bool, list[int]]:
        """Whether ``user_id`` is in the rankings, and whom they hide from (ascending)."""
        with self._access.cursor(self._shard(user_id)) as cur:
            cur.execute("SELECT 1 FROM ranking_optouts WHERE user_id = %s", (user_id,))
            out = cur.fetchone() is not None
            cur.execute("SELECT viewer_id FROM steps_hidden_from WHERE hider_id = %s"
                        " ORDER BY viewer_id", (user_id,))
            return not out, [row[0] for row in cur.fetchall()]

    def opted_out(self) -> list[int]:
        """Everyone who left the rankings, ascending (every shard; one down fails it)."""
        found: list[int] = []
        for shard in range(len(self._access.pools.pools)):
            with self._access.cursor(shard) as cur:
                cur.execute("SELECT user_id FROM ranking_optouts")
                found += [row[0] for row in cur.fetchall()]
        return sorted(found)

    def hiders(self, viewer_id: int) -> list[int]:
        """The users who hide their steps from ``viewer_id``, ascending."""
        with self._access.cursor(self._shard(viewer_id)) as cur:
            cur.execute("SELECT hider_id FROM step_hides WHERE viewer_id = %s ORDER BY hider_id",
                        (viewer_id,))
            return [row[0] for row in cur.fetchall()]


class Privacy:
    """Privacy settings read and written through the cache (``cache`` None: MySQL only)."""

    def __init__(self, store: PrivacyStore, cache: GraphCache | None, graph: SocialGraph) -> None:
        self._store = store
        self._cache = cache
        self._graph = graph

    def set_visibility(self, user_id: int, visible: bool) -> None:
        """Takes the user out of the rankings or back in, then moves the generations of the
        set of those who left and of every friend's view (the user's own included)."""
        try:
            self._store.set_opted_out(user_id, not visible)
        finally:
            self._invalidate(OPTED_OUT, [EVERYONE])
            self._invalidate(VIEW, [user_id])
            for chunk in self._graph.friend_chunks(user_id, FAN_OUT_CHUNK):
                self._invalidate(VIEW, chunk)

    def set_hidden(self, hider_id: int, viewer_id: int, hidden: bool) -> None:
        """Hides (or shows again) ``hider_id``'s steps from ``viewer_id``, then moves the
        viewer's generation."""
        try:
            self._store.set_hidden(hider_id, viewer_id, hidden)
        finally:
            self._invalidate(VIEW, [viewer_id])

    def _invalidate(self, kind: str, user_ids: Iterable[int]) -> None:
        if self._cache is not None:
            self._cache.invalidate(kind, user_ids, required=True)

    def settings(self, user_id: int) -> social_pb2.PrivacySettings:
        """The user's settings, from MySQL."""
        in_rankings, hidden_from = self._store.settings(user_id)
        return social_pb2.PrivacySettings(
            user_id=user_id, in_rankings=in_rankings, hidden_from=hidden_from
        )

    def exclusions(self, viewer_id: int, include_opted_out: bool) -> social_pb2.RankingExclusions:
        """Who must be left out of what ``viewer_id`` sees, with the generations."""
        reply = social_pb2.RankingExclusions()
        if include_opted_out:
            ids, reply.opted_out_generation = self._read(OPTED_OUT, EVERYONE,
                                                         self._store.opted_out)
            reply.opted_out.extend(ids)
        if viewer_id:
            ids, reply.view_generation = self._read(
                VIEW, viewer_id, lambda: self._store.hiders(viewer_id)
            )
            reply.hiders.extend(ids)
        return reply

    def _read(
        self, kind: str, user_id: int, load: Callable[[], Sequence[int]]
    ) -> tuple[Sequence[int], bytes]:
        """The ids of an entry and its generation: from the cache, or from ``load()``
        (MySQL), filled in the cache if the generation did not move meanwhile. Without a
        cache, or when Redis fails, the generation is empty (rank_svc holds nothing)."""
        if self._cache is None:
            return load(), b""
        try:
            value, generation = self._cache.current(kind, user_id)
        except (*REDIS_ERRORS, DeadlineExceeded):  # answered from MySQL, held by no one
            return load(), b""
        if value is not None:
            return decode_ids(value), generation
        ids = load()
        self._cache.fill(kind, [(user_id, generation, encode_ids(ids))])
        return ids, generation
