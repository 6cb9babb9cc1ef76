"""``python -m social_svc.bulkload``: loads a generated friend graph and profiles into the shards.

The graph is generated in place from a seed: user ``i`` (of ``--users``) picks ``k_i``
distinct partners at forward offsets ``d`` in ``[1, (N-1)/2]`` (mod N), so no friendship is
picked twice and nobody befriends themselves; ``k_i`` is log-normal around half the average
degree (each pick also lands in the partner's list), which gives a skewed friend-count
distribution; ``--hot-users`` users pick ``--hot-friends`` partners instead.

Both directions of every friendship are kept in memory as packed keys, bucketed by the
physical shard and id range of their ``user_id``; each bucket is sorted into primary-key
order, written as a tab-separated chunk file and loaded with ``LOAD DATA LOCAL INFILE`` by
one thread per physical shard (InnoDB appends in key order instead of inserting at random),
while the next bucket is being prepared. ``friend_counts`` comes from the same generation,
profiles are ``user <id>`` with an https avatar URL and an https cover URL. The target
tables must be empty (``--truncate`` empties them first). Memory: about 8 bytes per
directed row (~1 GB for 1M users with 100 friends on average).
"""

import argparse
import itertools
import math
import queue
import random
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql

from common.mysql_pools import MySQLSettings, ShardDsn
from common.progress import Progress
from common.runtime import load
from common.sharding import shard_of

TABLES = ("friendships", "friend_counts", "profiles")
CHUNK_ROWS = 2_000_000
_LOW = (1 << 32) - 1


@dataclass(frozen=True)
class GraphSpec:
    """What to generate."""

    users: int
    avg_friends: float
    seed: int
    first_id: int = 1
    skew: float = 1.0
    hot_users: int = 0
    hot_friends: int = 0
    profiles: bool = True

    @property
    def max_offset(self) -> int:
        """The largest forward offset a user may pick; picks never collide below it."""
        return (self.users - 1) // 2


def partner_counts(spec: GraphSpec, rng: random.Random) -> list[int]:
    """How many partners each user picks (log-normal, mean half the average degree)."""
    mean = spec.avg_friends / 2
    sigma = spec.skew
    limit = spec.max_offset
    counts = [
        min(limit, int(mean * rng.lognormvariate(-sigma * sigma / 2, sigma) + rng.random()))
        for _ in range(spec.users)
    ]
    for index in rng.sample(range(spec.users), min(spec.hot_users, spec.users)):
        counts[index] = min(limit, spec.hot_friends)
    return counts


def pick_offsets(count: int, limit: int, rng: random.Random) -> list[int]:
    """``count`` (or a few fewer) distinct offsets in ``[1, limit]``, ascending."""
    if count <= 0:
        return []
    if count >= limit:
        return list(range(1, limit + 1))
    # Gaps of 1..2^bits average (2^bits + 1) / 2, so count gaps stay within the limit.
    bits = max(0, int(math.log2(2 * limit / count - 1)))
    draw = rng.getrandbits
    offsets = list(itertools.accumulate(draw(bits) + 1 for _ in range(count))) if bits else list(
        range(1, count + 1)
    )
    while offsets and offsets[-1] > limit:
        offsets.pop()
    return offsets


class Buckets:
    """Friendship rows by physical shard and user range, as packed ``(user, friend)`` keys.

    A key is ``user_index << 32 | friend_index``, so sorting a bucket puts its rows in
    primary-key order: InnoDB then appends to the B-tree instead of inserting at random
    (which, once a shard outgrows the buffer pool, is what makes a big load slow).
    """

    def __init__(self, spec: GraphSpec, home: bytes, shards: int) -> None:
        self.span = max(1, int(CHUNK_ROWS * shards / max(spec.avg_friends, 1.0)))
        ranges = (spec.users + self.span - 1) // self.span
        self.arrays = [[array("q") for _ in range(ranges)] for _ in range(shards)]
        # The bucket of every user's rows, looked up once per row.
        self.of_user = [self.arrays[home[i]][i // self.span] for i in range(spec.users)]

    def in_key_order(self) -> Iterator[tuple[int, array]]:
        """``(shard, bucket)`` pairs, each shard's buckets in ascending user range."""
        for index in range(len(self.arrays[0])):
            for shard, buckets in enumerate(self.arrays):
                yield shard, buckets[index]


def generate(spec: GraphSpec, home: bytes, shards: int) -> tuple[Buckets, array]:
    """The graph as buckets of both directions of every friendship, and each user's count."""
    rng = random.Random(spec.seed)
    counts = partner_counts(spec, rng)
    n, limit = spec.users, spec.max_offset
    buckets = Buckets(spec, home, shards)
    of_user = buckets.of_user
    degree = array("q", bytes(8 * n))
    progress = Progress("generate", n, "users")
    for index in range(n):
        partners = [(index + d) % n for d in pick_offsets(counts[index], limit, rng)]
        if partners:
            base = index << 32
            of_user[index].extend([base | partner for partner in partners])
            degree[index] += len(partners)
            for partner in partners:
                of_user[partner].append(partner << 32 | index)
                degree[partner] += 1
        if index % 10_000 == 9_999:
            progress.advance(10_000)
    progress.advance(n % 10_000)
    progress.finish()
    return buckets, degree


def friendship_lines(keys: array, first_id: int) -> str:
    """A bucket's rows as ``user\tfriend`` lines in primary-key order."""
    return "".join([f"{(k >> 32) + first_id}\t{(k & _LOW) + first_id}\n" for k in sorted(keys)])


def user_lines(spec: GraphSpec, home: bytes, shard: int, degree: array) -> Iterator[tuple]:
    """Profile and friend-count lines of ``shard``'s users, in chunks, by ascending id."""
    users = [i for i in range(spec.users) if home[i] == shard]
    step = CHUNK_ROWS // 4
    for start in range(0, len(users), step):
        chunk = [i + spec.first_id for i in users[start:start + step]]
        if spec.profiles:
            yield "profiles", "".join(
                [f"{u}\tuser {u}\thttps://avatars.example.com/{u}.png"
                 f"\thttps://covers.example.com/{u}.jpg\n" for u in chunk]
            ), len(chunk)
        counted = [(u, degree[u - spec.first_id]) for u in chunk]
        yield "friend_counts", "".join([f"{u}\t{c}\n" for u, c in counted if c]), 0


def connect(dsn: ShardDsn, settings: MySQLSettings) -> pymysql.Connection:
    """A loader connection: LOCAL INFILE on, no read timeout (statements run for minutes),
    TLS as the settings say."""
    return pymysql.connect(
        host=dsn.host, port=dsn.port, user=dsn.user, password=dsn.password,
        database=dsn.database, charset="utf8mb4", autocommit=False, local_infile=True,
        connect_timeout=max(1, round(settings.connect_timeout_s)), **settings.tls_options(),
    )


LOAD_SQL = {
    "friendships": (
        "LOAD DATA LOCAL INFILE %s INTO TABLE friendships"
        " FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' (user_id, friend_id)"
    ),
    "friend_counts": (
        "LOAD DATA LOCAL INFILE %s INTO TABLE friend_counts"
        " FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' (user_id, friend_count)"
    ),
    "profiles": (
        "LOAD DATA LOCAL INFILE %s INTO TABLE profiles CHARACTER SET utf8mb4"
        " FIELDS TERMINATED BY '\\t' ESCAPED BY '' LINES TERMINATED BY '\\n'"
        " (user_id, nickname, avatar_url, cover_url)"
    ),
}


class ShardLoader(threading.Thread):
    """Loads one physical shard's chunk files as they come; each file commits on its own.

    Committing per chunk keeps undo logs small; a failed load leaves a partial graph, which
    ``--truncate`` clears before the next attempt.
    """

    def __init__(self, dsn: ShardDsn, settings: MySQLSettings, progress: Progress) -> None:
        super().__init__(daemon=True)
        self.conn = connect(dsn, settings)
        self.chunks: queue.Queue = queue.Queue(maxsize=2)
        self.progress = progress
        self.error: BaseException | None = None

    def put(self, table: str, path: Path, rows: int) -> None:
        """Queues a chunk file (waits while two are pending); raises if loading failed."""
        if self.error is not None:
            raise RuntimeError(f"loading {self.conn.db!r} failed: {self.error}") from self.error
        self.chunks.put((table, path, rows))

    def run(self) -> None:
        """Loads queued chunks until ``None``; the first error stops it (and is kept)."""
        try:
            with self.conn.cursor() as cur:
                while (item := self.chunks.get()) is not None:
                    table, path, rows = item
                    cur.execute(LOAD_SQL[table], (str(path),))
                    self.conn.commit()
                    path.unlink()
                    self.progress.advance(rows)
        except BaseException as error:  # reported to the generating thread
            self.error = error
            while self.chunks.get() is not None:
                pass
        finally:
            self.conn.close()


def check_empty(settings: MySQLSettings, truncate: bool) -> None:
    """Empties the tables (``truncate``) or fails unless they are empty on every shard."""
    for dsn in settings.shard_dsns:
        conn = connect(dsn, settings)
        try:
            with conn.cursor() as cur:
                for table in TABLES:
                    if truncate:
                        cur.execute(f"TRUNCATE TABLE {table}")
                        continue
                    cur.execute(f"SELECT 1 FROM {table} LIMIT 1")
                    if cur.fetchone():
                        raise SystemExit(
                            f"bulkload: {dsn.database}.{table} is not empty (use --truncate)"
                        )
        finally:
            conn.close()


@dataclass(frozen=True)
class LoadReport:
    """What a load did and how long it took."""

    users: int
    directed_rows: int
    seconds: float


def bulk_load(
    settings: MySQLSettings, spec: GraphSpec, workdir: str | None = None, truncate: bool = False
) -> LoadReport:
    """Generates ``spec`` and loads it into the shards of ``settings``."""
    started = time.monotonic()
    check_empty(settings, truncate)
    shards = len(settings.shard_dsns)
    home = bytes(
        settings.shard_map[shard_of(spec.first_id + i, settings.logical_shards)]
        for i in range(spec.users)
    )
    buckets, degree = generate(spec, home, shards)
    rows = sum(len(bucket) for _, bucket in buckets.in_key_order())
    progress = Progress("load", rows + (spec.users if spec.profiles else 0), "rows")
    loaders = [ShardLoader(dsn, settings, progress) for dsn in settings.shard_dsns]
    for loader in loaders:
        loader.start()
    try:
        with tempfile.TemporaryDirectory(prefix="stepboard-bulkload-", dir=workdir) as tmp:
            files = (Path(tmp) / f"chunk-{i:06d}.tsv" for i in itertools.count())
            for shard, bucket in buckets.in_key_order():
                if bucket:
                    path = next(files)
                    path.write_text(friendship_lines(bucket, spec.first_id))
                    loaders[shard].put("friendships", path, len(bucket))
                del bucket[:]
            for shard in range(shards):
                for table, text, count in user_lines(spec, home, shard, degree):
                    path = next(files)
                    path.write_text(text)
                    loaders[shard].put(table, path, count)
            for loader in loaders:
                loader.chunks.put(None)
            for loader in loaders:
                loader.join()
    finally:
        for loader in loaders:
            if loader.is_alive():
                loader.chunks.put(None)
    for loader in loaders:
        if loader.error is not None:
            raise RuntimeError(f"loading failed: {loader.error}") from loader.error
    progress.finish()
    return LoadReport(spec.users, rows, time.monotonic() - started)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m social_svc.bulkload", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, required=True, help="number of users")
    parser.add_argument("--avg-friends", type=float, default=100.0,
                        help="average friend count (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--first-id", type=int, default=1, help="id of the first user")
    parser.add_argument("--skew", type=float, default=1.0,
                        help="sigma of the log-normal friend-count distribution (default 1)")
    parser.add_argument("--hot-users", type=int, default=0,
                        help="users that get --hot-friends friends on top of the rest")
    parser.add_argument("--hot-friends", type=int, default=0,
                        help="friends picked by each hot user")
    parser.add_argument("--no-profiles", action="store_true", help="load no profiles")
    parser.add_argument("--truncate", action="store_true",
                        help="empty friendships, friend_counts and profiles first")
    parser.add_argument("--workdir", help="directory for the chunk files (default: $TMPDIR)")
    args = parser.parse_args(argv)
    if args.users < 2 or args.first_id < 1 or args.avg_friends < 0 or args.skew < 0:
        parser.error("need --users >= 2, --first-id >= 1, --avg-friends >= 0, --skew >= 0")
    if args.hot_users < 0 or args.hot_friends < 0:
        parser.error("--hot-users and --hot-friends must be >= 0")
    return args


def main(argv: list[str]) -> None:
    """Runs a load from the command line and prints its numbers."""
    args = parse_args(argv)
    settings = load("social_svc.bulkload", MySQLSettings.from_env)
    spec = GraphSpec(
        users=args.users, avg_friends=args.avg_friends, seed=args.seed, first_id=args.first_id,
        skew=args.skew, hot_users=args.hot_users, hot_friends=args.hot_friends,
        profiles=not args.no_profiles,
    )
    report = bulk_load(settings, spec, args.workdir, args.truncate)
    print(
        f"loaded {report.users:,} users, {report.directed_rows:,} friendship rows "
        f"({report.directed_rows // 2:,} friendships) in {report.seconds:.1f} s "
        f"({report.directed_rows / max(report.seconds, 1e-9):,.0f} rows/s)"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
