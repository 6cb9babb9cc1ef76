"""The social graph of a run: the bench's own MariaDB databases, loaded with the project's
bulk loader (``python -m social_svc.bulkload``), plus one appended hot user.

The bulk loader generates a skewed (log-normal) friend-count distribution with a tail of
users who pick ``tail_friends`` partners. Its generator cannot give anyone more than
``users / 2`` friends, so the hot user with ``hot_friends`` (1M at full scale) friends is
appended here: user ``users + 1`` befriends users ``1..hot_friends``, both directions
written with ``LOAD DATA`` like the loader does. A ``bench_meta`` row remembers what was
loaded (and how long it took), so a re-run with the same graph skips the load.
"""

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pymysql

from bench.config import ROOT, Context
from bench.progress import Progress
from common.mysql_pools import MySQLSettings
from common.sharding import shard_of

SEED = 7


def connect(database: str | None = None, **kwargs) -> pymysql.Connection:
    """A connection as the stack's ``stepboard`` user."""
    return pymysql.connect(
        host="127.0.0.1", port=13306, user="stepboard", password="stepboard",
        database=database, autocommit=True, local_infile=True, **kwargs,
    )


def graph_spec(ctx: Context) -> dict:
    """What identifies a loaded graph."""
    s = ctx.scale
    return {"users": s.users, "avg_friends": s.avg_friends, "skew": s.skew, "seed": SEED,
            "tail_users": s.tail_users, "tail_friends": s.tail_friends,
            "hot_friends": min(s.hot_friends, s.users), "version": 1}


@dataclass
class Graph:
    """The loaded graph: its spec, load time and the users the ranking phases ask about."""

    spec: dict
    load_seconds: float
    rows: int
    hot_user: int
    degrees: dict

    def as_dict(self) -> dict:
        """For the results file."""
        return {"spec": self.spec, "load_seconds": self.load_seconds, "rows": self.rows,
                "hot_user": self.hot_user, "degrees": self.degrees}


def _loaded_spec(ctx: Context) -> dict | None:
    with connect(ctx.graph_dbs[0]) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bench_meta (id INT PRIMARY KEY, spec TEXT)")
        cur.execute("SELECT spec FROM bench_meta WHERE id = 1")
        row = cur.fetchone()
    return json.loads(row[0]) if row else None


def _save_spec(ctx: Context, meta: dict) -> None:
    with connect(ctx.graph_dbs[0]) as conn, conn.cursor() as cur:
        cur.execute("REPLACE INTO bench_meta (id, spec) VALUES (1, %s)", (json.dumps(meta),))


def create_databases(ctx: Context) -> None:
    """The bench's own databases (the stepboard user has ALL on ``stepboard\\_%``)."""
    with connect() as conn, conn.cursor() as cur:
        for db in (*ctx.graph_dbs, ctx.naive_db):
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {db}")


def _run(ctx: Context, argv: list[str]) -> str:
    done = subprocess.run([sys.executable, *argv], cwd=ROOT, env=ctx.env, text=True,
                          stdout=subprocess.PIPE, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed with {done.returncode}")
    return done.stdout


def ensure_graph(ctx: Context, force: bool = False) -> Graph:
    """Migrates the graph shards, loads the graph of ``ctx.scale`` unless exactly that
    graph is already loaded, and clears its privacy settings."""
    create_databases(ctx)
    # every run: a graph loaded before a migration was added still gets it
    _run(ctx, ["-m", "social_svc", "migrate"])
    spec = graph_spec(ctx)
    meta = None if force else _loaded_spec(ctx)
    if meta is None or meta.get("spec") != spec:
        _save_spec(ctx, {"spec": None})
        started = time.monotonic()
        s = ctx.scale
        out = _run(ctx, [
            "-m", "social_svc.bulkload", "--users", str(s.users),
            "--avg-friends", str(s.avg_friends), "--skew", str(s.skew), "--seed", str(SEED),
            "--hot-users", str(s.tail_users), "--hot-friends", str(s.tail_friends),
            "--truncate",
        ])
        bulk_seconds = time.monotonic() - started
        print(f"  {out.strip()}", file=sys.stderr)
        hot_seconds = _append_hot_user(ctx, spec["hot_friends"])
        meta = {"spec": spec, "bulkload_seconds": round(bulk_seconds, 1),
                "hot_append_seconds": round(hot_seconds, 1), "bulkload_output": out.strip()}
        meta["rows"] = _count_rows(ctx)
        meta["degrees"] = _degrees(ctx)
        _save_spec(ctx, meta)
    _clear_privacy(ctx)
    return Graph(spec, meta["bulkload_seconds"] + meta["hot_append_seconds"], meta["rows"],
                 spec["users"] + 1, meta["degrees"] | {"bulkload_output": meta["bulkload_output"]})


def _clear_privacy(ctx: Context) -> None:
    """Everyone back in the rankings and nobody's steps hidden: what a run measures its
    rows on (a run's ``left_rankings`` phase leaves users out)."""
    for db in ctx.graph_dbs:
        with connect(db) as conn, conn.cursor() as cur:
            for table in ("ranking_optouts", "step_hides", "steps_hidden_from"):
                cur.execute(f"DELETE FROM {table}")


def _settings(ctx: Context) -> MySQLSettings:
    return MySQLSettings.from_env(ctx.env)


def _append_hot_user(ctx: Context, friends: int) -> float:
    """User ``users + 1`` befriends users ``1..friends`` (both directions, LOAD DATA)."""
    started = time.monotonic()
    settings = _settings(ctx)
    hot = ctx.scale.users + 1
    home = [settings.shard_map[shard_of(u, settings.logical_shards)] for u in range(friends + 1)]
    hot_home = settings.shard_map[shard_of(hot, settings.logical_shards)]
    bar = Progress("append hot user", friends, "friends")
    with tempfile.TemporaryDirectory(prefix="stepboard-bench-") as tmp:
        for physical, db in enumerate(ctx.graph_dbs):
            path = Path(tmp) / f"{db}.tsv"
            lines = [f"{u}\t{hot}\n" for u in range(1, friends + 1) if home[u] == physical]
            if physical == hot_home:
                lines += [f"{hot}\t{u}\n" for u in range(1, friends + 1)]
            lines.sort(key=lambda line: tuple(map(int, line.split())))
            path.write_text("".join(lines))
            with connect(db) as conn, conn.cursor() as cur:
                cur.execute(
                    "LOAD DATA LOCAL INFILE %s INTO TABLE friendships FIELDS TERMINATED BY '\\t'"
                    " LINES TERMINATED BY '\\n' (user_id, friend_id)", (str(path),))
                cur.execute("UPDATE friend_counts SET friend_count = friend_count + 1"
                            " WHERE user_id <= %s", (friends,))
                if physical == hot_home:
                    cur.execute("REPLACE INTO friend_counts VALUES (%s, %s)", (hot, friends))
                    cur.execute("REPLACE INTO profiles (user_id, nickname, avatar_url)"
                                " VALUES (%s, %s, %s)",
                                (hot, f"user {hot}", f"https://avatars.example.com/{hot}.png"))
            bar.advance(len(lines) // (2 if physical == hot_home else 1))
    bar.finish()
    return time.monotonic() - started


def _count_rows(ctx: Context) -> int:
    total = 0
    for db in ctx.graph_dbs:
        with connect(db) as conn, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM friendships")
            total += cur.fetchone()[0]
    return total


def _degrees(ctx: Context) -> dict:
    """Friend-count distribution of the loaded graph (from ``friend_counts``)."""
    counts = []
    for db in ctx.graph_dbs:
        with connect(db) as conn, conn.cursor() as cur:
            cur.execute("SELECT friend_count FROM friend_counts")
            counts += [row[0] for row in cur.fetchall()]
    a = np.array(counts)
    return {
        "users_with_friends": int(a.size),
        "mean": round(float(a.mean()), 1),
        "p10": int(np.percentile(a, 10)), "p50": int(np.percentile(a, 50)),
        "p90": int(np.percentile(a, 90)), "p99": int(np.percentile(a, 99)),
        "p99_99": int(np.percentile(a, 99.99)), "max": int(a.max()),
        "share_50_300": round(float(((a >= 50) & (a <= 300)).mean()), 3),
        "over_1000": int((a > 1000).sum()),
    }


def home_db(ctx: Context, user_id: int) -> str:
    """The graph shard database that holds ``user_id``'s friend list."""
    settings = _settings(ctx)
    return ctx.graph_dbs[settings.shard_map[shard_of(user_id, settings.logical_shards)]]


def friend_lists(ctx: Context, users: list[int]) -> dict[int, list[int]]:
    """Each of ``users`` with their friends, read from their graph shard: ``[user, *friends]``."""
    lists = {}
    for user in users:
        with connect(home_db(ctx, user)) as conn, conn.cursor() as cur:
            cur.execute("SELECT friend_id FROM friendships WHERE user_id = %s", (user,))
            lists[user] = [user, *(row[0] for row in cur.fetchall())]
    return lists


def users_near(ctx: Context, target: int, count: int, below: int) -> list[tuple[int, int]]:
    """Up to ``count`` ``(user, friends)`` with a friend count closest to ``target``
    (never the appended hot user: ids < ``below``)."""
    found = []
    for db in ctx.graph_dbs:
        with connect(db) as conn, conn.cursor() as cur:
            for op, order in ((">=", "ASC"), ("<", "DESC")):
                cur.execute(
                    f"SELECT user_id, friend_count FROM friend_counts WHERE friend_count {op} %s"
                    f" AND user_id < %s ORDER BY friend_count {order} LIMIT %s",
                    (target, below, count))
                found += list(cur.fetchall())
    found.sort(key=lambda row: (abs(row[1] - target), row[0]))
    return [(int(u), int(c)) for u, c in found[:count]]
