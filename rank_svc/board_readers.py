"""The board readers: users' scores (a friend ranking's read), the top of a board, one
user's global rank, the participant count and the boards' versions.

Every read takes a ``board``: a day, or a week or month (:class:`common.report_rules.Window`),
read alike. Keys and scores: :mod:`rank_svc.board_format`.
"""

from array import array
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from typing import NamedTuple

from redis.cluster import RedisCluster

from common.redis_clients import RedisClient, mget
from common.report_rules import Window
from common.sharding import shard_of
from common.tracing import REDIS, span
from rank_svc.board_format import BoardKeys, BoardSettings, Row, sort_key

WIRE_KEY_DAYS = 8  # days whose encoded board keys a reader keeps (see _wire_board_keys)

# KEYS: every board shard of a board, then every shard's version key, then (optional) one
# more hash. ARGV: the user's shard (1-based index into KEYS), the user id, the shard count.
# Returns nil without a report, else {rank, score, participants, each shard's version, and
# with the hash its fields <user> and by:<user>} (a missing version or field is nil); user
# ids are compared as decimal strings (length first), exact for any int64.
_RANK_LUA = """
local mine, user, n = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local own = redis.call('ZSCORE', KEYS[mine], user)
if not own then return false end
local rank, total = 1, 0
for k = 1, n do
  rank = rank + redis.call('ZCOUNT', KEYS[k], '(' .. own, '+inf')
  total = total + redis.call('ZCARD', KEYS[k])
  if redis.call('ZCOUNT', KEYS[k], own, own) > (k == mine and 1 or 0) then
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[k], own, own)) do
      if #m < #user or (#m == #user and m < user) then rank = rank + 1 end
    end
  end
end
local found = {rank, own, total}
for k = n + 1, 2 * n do found[#found + 1] = redis.call('GET', KEYS[k]) end
if #KEYS > 2 * n then
  local fields = redis.call('HMGET', KEYS[2 * n + 1], user, 'by:' .. user)
  found[#found + 1], found[#found + 2] = fields[1], fields[2]
end
return found
"""



class Members:
    """A fixed set of users prepared for repeated score reads: grouped by board shard, each
    group already in Redis wire form (RESP bulk strings). A cached friend list is read on
    every ranking of its owner and changes rarely, so grouping and encoding are paid once
    per list instead of once per read (~0.5 ms per read at 201 ids). Kept in flat arrays,
    since a rank process caches many of them: ~23 B per id plus ~0.7 KB, against ~37 B
    per id for a plain list of ints."""

    __slots__ = ("counts", "ends", "first_at", "ids", "shards", "wire")

    def __init__(self, user_ids: Iterable[int], shards: int) -> None:
        """``user_ids`` in any order; repeats are dropped. ``first_at`` is where the first
        of them went in ``ids`` (a friend ranking's owner, looked up on every read)."""
        unique = list(dict.fromkeys(user_ids))
        by_shard: dict[int, list[int]] = defaultdict(list)
        for user_id in unique:
            by_shard[shard_of(user_id, shards)].append(user_id)
        self.ids = array("q")  # grouped by shard, in shard order
        self.shards = array("I")  # per group: its shard,
        self.counts = array("I")  # how many of ``ids`` it holds,
        self.ends = array("I")  # and where its bytes end in ``wire``
        encoded: list[bytes] = []
        for shard, ids in sorted(by_shard.items()):
            self.ids.extend(ids)
            self.shards.append(shard)
            self.counts.append(len(ids))
            encoded.append(b"".join(bulk(b"%d" % user_id) for user_id in ids))
            self.ends.append((self.ends[-1] if self.ends else 0) + len(encoded[-1]))
        self.wire = b"".join(encoded)
        self.first_at = self.ids.index(unique[0]) if unique else 0


def bulk(value: bytes) -> bytes:
    """``value`` as a RESP bulk string."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


class Command(NamedTuple):
    """A Redis command for :meth:`BoardReader.read_scores_with`: its arguments (for a
    Cluster's pipeline) and the same in wire form (for a single server)."""

    args: tuple
    wire: bytes


def command(name: bytes, key: bytes, wire_args: bytes, args: Sequence, count: int) -> Command:
    """``name key args...`` as a :class:`Command`, its ``count`` arguments after the key
    already in wire form as ``wire_args``."""
    wire = b"*%d\r\n%s%s%s" % (count + 2, bulk(name), bulk(key), wire_args)
    return Command((name.decode(), key.decode(), *args), wire)


class RankRead(NamedTuple):
    """What :meth:`BoardReader.rank_with` read."""

    found: tuple[int, int, int] | None  # (rank, score, participants); None: no report
    versions: tuple | None  # the shards' versions read with the rank (None: not read so)
    like_fields: list | None  # the user's count and ``by:`` field (None: not asked, or no report)
    values: list  # the values of the keys asked for, in that order


class BoardReader(BoardKeys):
    """Reads the sharded day, week and month boards through one Redis client."""

    def __init__(
        self, client: RedisClient, settings: BoardSettings, topic: str = "", staging: bool = False
    ) -> None:
        """``staging`` readers read the separate board keys a rebuild fills."""
        BoardKeys.__init__(self, settings, topic, staging)
        self.client = client
        self._rank_body = bulk(_RANK_LUA.encode())  # sent with EVAL (Redis caches it)
        # A Cluster spreads shards over nodes, so multi-shard scripts cannot run there;
        # the global rank then pipelines its commands per shard instead.
        self._one_server = not isinstance(client, RedisCluster)
        self._wire_keys: dict[date | Window, list[bytes]] = {}

    def versions(self, day: date | Window) -> tuple[int | None, ...]:
        """Every shard's version of ``day``'s board: equal tuples mean an unchanged board."""
        keys = [self.version_key(day, shard) for shard in range(self.settings.shards)]
        found = mget(self.client, keys)
        return tuple(None if v is None else int(v) for v in found)

    def members(self, user_ids: Iterable[int]) -> Members:
        """``user_ids`` prepared for :meth:`read_scores`."""
        return Members(user_ids, self.settings.shards)

    def scores(self, day: date | Window, user_ids: Iterable[int]) -> dict[int, int | None]:
        """Each user's score on ``day`` (None: no report)."""
        members = self.members(user_ids)
        return dict(zip(members.ids, self.read_scores(day, members)[0], strict=True))

    def read_scores(
        self, day: date | Window, members: Members, watch: str | None = None
    ) -> tuple[list[int | None], bytes | None]:
        """The score on ``day`` of each of ``members.ids``, in that order (None: no report),
        and the value of the key ``watch``, read in the same round trip (a friend ranking
        checks that its friend list is current; None without ``watch``)."""
        scores, watched, _ = self.read_scores_with(day, members, watch, ())
        return scores, watched

    def read_scores_with(
        self, day: date | Window, members: Members, watch: str | None,
        extra: Sequence[Command],
    ) -> tuple[list[int | None], bytes | None, list]:
        """:meth:`read_scores`, with the replies of the ``extra`` commands sent in the same
        round trip (a day's ranking reads its like counts so, :mod:`rank_svc.likes`).

        One ``ZMSCORE`` per shard, all in one round trip (measured: as fast end to end as
        one script call, at half the Redis CPU). On a single server the commands go out as
        the prepared bytes; a Cluster routes them through redis-py's cluster pipeline."""
        with span("redis read scores", REDIS):
            replies = self._round_trip(day, members, watch, extra)
        watched = replies.pop() if watch is not None else None
        extra_replies = replies[len(replies) - len(extra):]
        del replies[len(replies) - len(extra):]
        scores = [None if value is None else int(value) for reply in replies for value in reply]
        return scores, watched, extra_replies

    def _round_trip(
        self, day: date | Window, members: Members, watch: str | None,
        extra: Sequence[Command],
    ) -> list:
        """The replies of :meth:`read_scores_with`'s commands, in the order sent."""
        groups = zip(members.shards, members.counts, members.ends, strict=True)
        if self._one_server:
            keys = self._wire_board_keys(day)
            commands, start = [], 0
            for shard, count, end in groups:
                commands += [b"*%d\r\n$7\r\nZMSCORE\r\n" % (count + 2), keys[shard],
                             members.wire[start:end]]
                start = end
            commands += [command.wire for command in extra]
            if watch is not None:
                commands += [b"*2\r\n$3\r\nGET\r\n", bulk(watch.encode())]
            return self._send_packed(b"".join(commands),
                                     len(members.shards) + len(extra) + (watch is not None))
        else:
            pipe = self.client.pipeline(transaction=False)
            start = 0
            for shard, count, _ in groups:
                pipe.zmscore(self.board_key(day, shard), list(members.ids[start:start + count]))
                start += count
            for command in extra:
                pipe.execute_command(*command.args)
            if watch is not None:
                pipe.get(watch)
            return pipe.execute()

    def _wire_board_keys(self, day: date | Window) -> list[bytes]:
        """Every shard's board key of ``day``, then every shard's version key, as RESP bulk
        strings; kept for a few days, since every friend ranking and global rank sends
        them."""
        keys = self._wire_keys.get(day)
        if keys is None:
            shards = range(self.settings.shards)
            keys = [bulk(self.board_key(day, shard).encode()) for shard in shards]
            keys += [bulk(self.version_key(day, shard).encode()) for shard in shards]
            if len(self._wire_keys) >= WIRE_KEY_DAYS:
                self._wire_keys.clear()
            self._wire_keys[day] = keys
        return keys

    def _send_packed(self, commands: bytes, replies: int) -> list:
        """Sends commands already in wire form on one pooled connection and reads their
        ``replies``, with the client's retry on connection errors. A connection that failed
        midway (an error reply, a timeout) may hold unread replies, so it is dropped."""
        pool = self.client.connection_pool
        connection = pool.get_connection()

        def round_trip() -> list:
            connection.send_packed_command([commands])
            return [connection.read_response() for _ in range(replies)]

        try:
            return connection.retry.call_with_retry(
                round_trip, lambda _error: connection.disconnect()
            )
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)

    def participants(self, day: date | Window) -> int:
        """How many users reported on ``day``."""
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.settings.shards):
            pipe.zcard(self.board_key(day, shard))
        return sum(pipe.execute())

    def top(self, day: date | Window, limit: int) -> tuple[list[Row], int]:
        """The best ``limit`` users of ``day`` in the design's order, and the participant count.

        Each shard gives its ``limit + 1`` best by score; where the cut falls inside a run
        of equal scores, that whole run is fetched so the user-id tie-break stays exact.
        """
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.settings.shards):
            pipe.zrevrange(self.board_key(day, shard), 0, limit, withscores=True)
            pipe.zcard(self.board_key(day, shard))
        replies = pipe.execute()
        candidates: list[Row] = []
        ties = self.client.pipeline(transaction=False)
        tied_shards = []
        for shard in range(self.settings.shards):
            rows = [Row(int(m), int(s)) for m, s in replies[2 * shard]]
            if len(rows) > limit and rows[limit].score == rows[limit - 1].score:
                cut = rows[limit - 1].score
                candidates += [r for r in rows if r.score > cut]
                ties.zrangebyscore(self.board_key(day, shard), cut, cut, withscores=True)
                tied_shards.append(shard)
            else:
                candidates += rows[:limit]
        if tied_shards:
            for rows in ties.execute():
                candidates += [Row(int(m), int(s)) for m, s in rows]
        candidates.sort(key=sort_key)
        return candidates[:limit], sum(replies[1::2])

    def rank(self, day: date | Window, user_id: int) -> tuple[int, int, int] | None:
        """``(rank, score, participants)`` of ``user_id`` on ``day``; None if no report.

        Rank is 1 + the users with a higher score + the users with the same score and a
        lower id, summed over shards: in one script call on a single server.
        """
        return self.rank_with(day, user_id, (), None).found

    def rank_with(
        self, day: date | Window, user_id: int, gets: Sequence[str], like_hash: str | None,
    ) -> RankRead:
        """:meth:`rank`, with the values of the keys ``gets`` and, given ``like_hash`` (a
        day's like counts of the user's shard, :mod:`rank_svc.likes`), the user's fields of
        it: on a single server all in one round trip (the ``gets`` before the script), with
        the shards' versions the script read beside the rank. On a Cluster, whose shards
        live on several nodes, the reads are separate and no versions are given."""
        mine = self.shard(user_id)
        if not self._one_server:
            values = self._gets(gets)
            found = self._rank_by_shard(day, user_id, mine)
            fields = None
            if found is not None and like_hash is not None:
                fields = self.client.hmget(like_hash, [user_id, f"by:{user_id}"])
            return RankRead(found, None, fields, values)
        shards = self.settings.shards
        keys = self._wire_board_keys(day) + ([] if like_hash is None else [
            bulk(like_hash.encode())])
        args = [b"%d" % (mine + 1), b"%d" % user_id, b"%d" % shards]
        wire = [b"*2\r\n$3\r\nGET\r\n" + bulk(key.encode()) for key in gets]
        wire.append(b"*%d\r\n$4\r\nEVAL\r\n" % (len(keys) + len(args) + 3) + self._rank_body
                    + bulk(b"%d" % len(keys)) + b"".join(keys)
                    + b"".join(bulk(arg) for arg in args))
        with span("redis global rank", REDIS):
            *values, found = self._send_packed(b"".join(wire), len(wire))
        if found is None:
            return RankRead(None, None, None, values)
        rank, score, total = found[:3]
        versions = tuple(found[3:3 + shards])
        fields = None if like_hash is None else found[3 + shards:]
        return RankRead((int(rank), int(float(score)), int(total)), versions, fields, values)

    def _gets(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys``, in one pipeline (a Cluster splits it by node)."""
        if not keys:
            return []
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        return pipe.execute()

    def _rank_by_shard(
        self, day: date | Window, user_id: int, mine: int,
    ) -> tuple[int, int, int] | None:
        """:meth:`rank` on a Cluster: the user's score, then the counts of every shard in
        one pipeline, then the runs of equal scores that hold other users."""
        own = self.client.zscore(self.board_key(day, mine), user_id)
        if own is None:
            return None
        score = int(own)
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.settings.shards):
            key = self.board_key(day, shard)
            pipe.zcount(key, f"({score}", "+inf")
            pipe.zcount(key, score, score)
            pipe.zcard(key)
        replies = pipe.execute()
        better = sum(replies[0::3])
        ties = self.client.pipeline(transaction=False)
        tied = 0
        for shard in range(self.settings.shards):
            if replies[3 * shard + 1] > (1 if shard == mine else 0):
                ties.zrangebyscore(self.board_key(day, shard), score, score)
                tied += 1
        if tied:
            for members in ties.execute():
                better += sum(1 for m in members if int(m) < user_id)
        return better + 1, score, sum(replies[2::3])

    def user_scores(self, user_id: int, days: Sequence[date]) -> list[int | None]:
        """``user_id``'s score on each of ``days`` (None: no report): one pipeline of
        ``ZSCORE`` over the user's board shard (a history's live days)."""
        shard = self.shard(user_id)
        pipe = self.client.pipeline(transaction=False)
        for day in days:
            pipe.zscore(self.board_key(day, shard), user_id)
        return [None if score is None else int(score) for score in pipe.execute()]
