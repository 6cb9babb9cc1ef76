"""The naive way: scores in one MariaDB table, answered with SQL on the same data.

``scores(day, user_id, score)`` with the same packed score as the boards, primary key
``(day, user_id)`` and an index ``(day, score DESC, user_id)`` so the global top is an index
scan in the design's order. Upserts are multi-row ``INSERT … ON DUPLICATE KEY UPDATE score =
GREATEST(…)`` of 100 rows (the max-merge), autocommit. Friend ranking joins the caller's
``friendships`` rows (in their graph shard database, same server) with ``scores``.
"""

import multiprocessing as mp
import random
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pymysql

from bench.config import READERS
from bench.dataset import connect, home_db

UPSERT_ROWS = 100


def board_rows(state) -> list[tuple[int, int]]:
    """Every ``(user, score)`` of the bench day's board."""
    rows = []
    for shard in range(state.ctx.scale.board_shards):
        key = state.store.board_key(state.ctx.day, shard)
        rows += [(int(m), int(s)) for m, s in state.redis.zrange(key, 0, -1, withscores=True)]
    return rows


def setup(state) -> dict:
    """(Re)creates the table and loads the board's current content into it."""
    rows = board_rows(state)
    started = time.monotonic()
    with connect(state.ctx.naive_db) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS scores")
        cur.execute("CREATE TABLE scores (day DATE NOT NULL, user_id BIGINT NOT NULL,"
                    " score BIGINT NOT NULL, PRIMARY KEY (day, user_id),"
                    " KEY by_score (day, score DESC, user_id)) ENGINE=InnoDB")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "scores.tsv"
            day = state.ctx.day.isoformat()
            path.write_text("".join(f"{day}\t{u}\t{s}\n" for u, s in sorted(rows)))
            cur.execute("LOAD DATA LOCAL INFILE %s INTO TABLE scores FIELDS TERMINATED BY '\\t'"
                        " (day, user_id, score)", (str(path),))
        cur.execute("ANALYZE TABLE scores")
        cur.fetchall()
    state.naive_rows = rows
    return {"rows": len(rows), "load_seconds": round(time.monotonic() - started, 2)}


def queries(state) -> dict:
    """The SQL text of each question, given a user."""
    day = state.ctx.day.isoformat()

    def global_rank(cur, user):
        cur.execute("SELECT score FROM scores WHERE day = %s AND user_id = %s", (day, user))
        (score,) = cur.fetchone()
        cur.execute("SELECT COUNT(*) FROM scores WHERE day = %s AND (score > %s OR"
                    " (score = %s AND user_id < %s))", (day, score, score, user))
        return cur.fetchone()[0] + 1

    def global_top(cur, _user):
        cur.execute("SELECT user_id, score FROM scores WHERE day = %s"
                    " ORDER BY score DESC, user_id LIMIT 100", (day,))
        return cur.fetchall()

    def friend_ranking(cur, user):
        db = home_db(state.ctx, user)
        cur.execute(
            f"SELECT u.id, s.score FROM (SELECT friend_id AS id FROM {db}.friendships"
            " WHERE user_id = %s UNION ALL SELECT %s) u LEFT JOIN scores s"
            " ON s.day = %s AND s.user_id = u.id"
            " ORDER BY s.score IS NULL, s.score DESC, u.id LIMIT 50", (user, user, day))
        return cur.fetchall()

    return {"global_rank": global_rank, "global_top": global_top,
            "friend_ranking": friend_ranking}


def _closed_loop(db: str, fn, users, threads: int, duration_s: float) -> dict:
    """Runs ``fn(cur, user)`` from ``threads`` connections for ``duration_s``."""
    latencies: list[float] = []
    count = [0]
    lock = threading.Lock()
    end = time.monotonic() + duration_s

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        with connect(db) as conn, conn.cursor() as cur:
            while time.monotonic() < end:
                started = time.monotonic()
                fn(cur, rng.choice(users))
                with lock:
                    latencies.append(time.monotonic() - started)
                    count[0] += 1

    workers = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    started = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    seconds = time.monotonic() - started
    lat = np.array(latencies) * 1000
    return {"tool": "pymysql", "calls": count[0], "seconds": round(seconds, 2),
            "rps": round(count[0] / seconds, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 3),
            "p99_ms": round(float(np.percentile(lat, 99)), 3),
            "max_ms": round(float(lat.max()), 3), "latencies_ms": lat}


def idle(state) -> dict:
    """Each question answered the SQL way with nothing else running."""
    q = queries(state)
    d = state.ctx.scale.duration_s
    users = [u for u, _ in state.naive_rows] or [1]
    out = {}
    plan = {
        "global_rank": (q["global_rank"], users),
        "global_top": (q["global_top"], [0]),
        "friend_ranking_200": (q["friend_ranking"], [u for u, _ in state.users_at["200"]]),
        "friend_ranking_5000": (q["friend_ranking"], [u for u, _ in state.users_at["5000"]]),
        "friend_ranking_hot": (q["friend_ranking"], [u for u, _ in state.users_at["hot"]]),
    }
    for name, (fn, who) in plan.items():
        print(f"  naive {name}", flush=True)
        result = _closed_loop(state.ctx.naive_db, fn, who, READERS[name], d)
        state.keep(f"naive {name}", result.pop("latencies_ms"))
        out[name] = result
    out["upsert_max"] = upserts(state, 0, d)
    return out


def _upsert_process(db, day, users, rate, duration_s, seed, queue) -> None:
    rng = random.Random(seed)
    done, deadlocks = 0, 0
    sql_head = "INSERT INTO scores (day, user_id, score) VALUES "
    tail = " ON DUPLICATE KEY UPDATE score = GREATEST(score, VALUES(score))"
    with connect(db) as conn, conn.cursor() as cur:
        started = time.monotonic()
        end = started + duration_s
        while time.monotonic() < end:
            if rate:
                ahead = done / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            # Sorted ids: concurrent multi-row upserts then lock in one order.
            values = ",".join(
                f"('{day}',{user},{rng.randint(100, 20000) << 18})"
                for user in sorted({rng.randint(1, users) for _ in range(UPSERT_ROWS)}))
            try:
                cur.execute(sql_head + values + tail)
                done += values.count("(")
            except pymysql.err.OperationalError as error:
                if error.args[0] != 1213:
                    raise
                deadlocks += 1
    queue.put((done, deadlocks))


def upserts(state, rate: float, duration_s: float, processes: int = 4) -> dict:
    """Upserted rows/s from ``processes`` connections (``rate`` total, 0 = max)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    day = state.ctx.day.isoformat()
    workers = [ctx.Process(target=_upsert_process, args=(
        state.ctx.naive_db, day, state.ctx.scale.users, rate / processes, duration_s, k, queue))
        for k in range(processes)]
    started = time.monotonic()
    for w in workers:
        w.start()
    got = [queue.get(timeout=duration_s + 120) for _ in workers]
    rows, deadlocks = sum(r for r, _ in got), sum(d for _, d in got)
    for w in workers:
        w.join()
    seconds = time.monotonic() - started
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds),
            "target_rate": round(rate), "connections": processes,
            "rows_per_statement": UPSERT_ROWS,
            "deadlocks_retried": deadlocks}


def storm(state, rate: float, duration_s: float) -> dict:
    """Friend ranking (200 friends) by JOIN while upserts run at ``rate`` rows/s."""
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(up=upserts(state, rate, duration_s)),
                              daemon=True)
    thread.start()
    time.sleep(1.0)
    reads = _closed_loop(state.ctx.naive_db, queries(state)["friend_ranking"],
                         [u for u, _ in state.users_at["200"]], READERS["friend_ranking_200"],
                         max(1.0, duration_s - 2))
    state.keep("storm: naive friend ranking 200", reads.pop("latencies_ms"))
    thread.join()
    return {"upserts": box["up"], "friend_ranking_200": reads}


