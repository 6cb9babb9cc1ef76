"""The measured phases. Each takes the run state and returns a dict for the results file;
latency samples go to ``state.samples`` (for the CDF plots)."""

import random
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import grpc
import numpy as np
from confluent_kafka import Consumer, TopicPartition

from bench import dataset, naive
from bench import likes as bench_likes
from bench.config import (
    COLD,
    COLD_USERS,
    DAY_BESIDE_WEEK,
    ECHO_FLOOR,
    FRIEND_CHECKS,
    HISTORY,
    LEFT_USERS,
    LIKE_CALLS,
    LIKED_FRIENDS,
    LIST_FRIENDS,
    PLAIN_FRIENDS,
    QUESTIONS,
    RANK_NONE_LEFT,
    RANK_SOME_LEFT,
    READERS,
    SATURATED,
    SATURATION_READERS,
    TOP_WITH_GHZ,
    WEEK_FRIENDS,
    Context,
)
from bench.dataset import Graph
from bench.ghz import run_ghz
from bench.loadgen import LoadResult, accepted_items, run_load
from bench.past import archived_days, history_range
from bench.procs import Processes
from bench.progress import Progress, timed_wait
from bench.services import start_consumers
from bench.traffic import batch_request, day_records, raw_produce
from common.kafka_clients import KafkaSettings, consumer_config
from common.record_format import REPORTS_PER_RECORD
from common.redis_clients import RedisSettings, create_redis
from common.report_rules import MONTH, WEEK, Window, window_of
from rank_svc.board_format import BoardSettings
from rank_svc.social_client import UNARY_PAGE
from stepboard.v1 import (
    ingest_pb2,
    ingest_pb2_grpc,
    ranking_pb2,
    ranking_pb2_grpc,
    social_pb2,
    social_pb2_grpc,
)
from tests.board_store import BoardStore
from tests.harness import metric

INGEST = "stepboard.v1.StepIngest"
RANKING = "stepboard.v1.Ranking"
SOCIAL = "stepboard.v1.FriendGraph"
WARM_UP_CALLS = 32


@dataclass
class State:
    """What phases share."""

    ctx: Context
    procs: Processes
    graph: Graph
    redis: object = None
    store: BoardStore | None = None
    samples: dict = field(default_factory=dict)
    users_at: dict = field(default_factory=dict)
    cold_users: list[int] = field(default_factory=list)  # the COLD series' users
    storm_rate: float = 0.0
    backlog_end: dict = field(default_factory=dict)  # log end offsets after the backlog
    history_users: list[int] = field(default_factory=list)  # the HISTORY series' users

    def __post_init__(self) -> None:
        self.redis = create_redis(RedisSettings.from_env(self.ctx.env))
        self.store = BoardStore(self.redis, BoardSettings.from_env(self.ctx.env), self.ctx.topic)

    def keep(self, name: str, latencies_ms) -> None:
        """Keeps a latency sample (ms) for the plots."""
        self.samples[name] = np.asarray(latencies_ms, dtype=float)


def _ghz_result(state: State, name: str, result: dict) -> dict:
    state.keep(name, result.pop("latencies_ms"))
    return result


def _load_result(state: State, name: str, result: LoadResult, tool: str) -> dict:
    state.keep(name, result.latencies_s * 1000)
    return {"tool": tool, **result.summary()}


def _measured_at(ctx: Context) -> str:
    """Noon UTC of the bench day, as ghz JSON (inside the day's span, in the past)."""
    return f"{ctx.day.isoformat()}T12:00:00Z"


def report_steps_data(ctx: Context) -> dict:
    """ghz data for ReportSteps: a random user each call."""
    return {"report": {"user_id": "{{randomInt 1 " + str(ctx.scale.users) + "}}", "day":
                       ctx.day.isoformat(), "steps": "{{randomInt 100 20000}}",
                       "measured_at": _measured_at(ctx)}}


def _echo_request(ctx: Context) -> bytes:
    """A serialized ReportStepsRequest for the echo server."""
    return ingest_pb2.ReportStepsRequest(report=ingest_pb2.StepReport(
        user_id=1, day=ctx.day.isoformat(), steps=1000)).SerializeToString()


# -- backlog and raw producer ------------------------------------------------------------
def backlog(state: State) -> dict:
    """A day's reports for every user (and the hot user), one record per report as
    ``ReportSteps`` writes them, through a raw producer loop: the ReportStepsBatch baseline
    and the consumer's first backlog."""
    ctx = state.ctx
    records = day_records(ctx.day, ctx.scale.users + 1, ctx.scale.reports_per_user, 1)
    result = raw_produce(ctx.env, records)
    state.backlog_end = _log_span(ctx)[1]
    return result


# -- ingest -------------------------------------------------------------------------------
def ingest(state: State) -> dict:
    """ReportSteps vs the echo server (same tool, same settings); ReportStepsBatch."""
    ctx, d = state.ctx, state.ctx.scale.duration_s
    out = {}
    data = report_steps_data(ctx)
    print("  echo / ReportSteps with ghz", flush=True)
    out["echo_ghz"] = _ghz_result(state, "echo", run_ghz(
        ctx.addr("echo"), f"{INGEST}.ReportSteps", data, duration_s=d, concurrency=32,
        connections=4))
    out["report_steps_ghz"] = _ghz_result(state, "ReportSteps", run_ghz(
        ctx.addr("ingest"), f"{INGEST}.ReportSteps", data, duration_s=d, concurrency=32,
        connections=4))
    print("  echo with the Python generator (tool comparison)", flush=True)
    out["echo_python"] = _load_result(state, "echo (python gen)", run_load(
        ctx.addr("echo"), f"/{INGEST}/ReportSteps", [_echo_request(ctx)], processes=2,
        concurrency=16, duration_s=d), "python")
    print("  ReportStepsBatch with the Python generator", flush=True)
    batches = [batch_request(ctx.day, ctx.scale.users, REPORTS_PER_RECORD, seed)
               for seed in range(8)]
    out["report_steps_batch"] = _load_result(state, "ReportStepsBatch", run_load(
        ctx.addr("ingest"), f"/{INGEST}/ReportStepsBatch", batches, processes=2,
        concurrency=4, duration_s=d, count_items=accepted_items, timeout_s=30), "python")
    return out


# -- consumer -----------------------------------------------------------------------------
def _log_span(ctx: Context) -> tuple[dict[int, int], dict[int, int]]:
    consumer = Consumer(consumer_config(KafkaSettings.from_env(ctx.env), ctx.group + "-probe"))
    try:
        parts = consumer.list_topics(ctx.topic, timeout=10).topics[ctx.topic].partitions
        marks = {p: consumer.get_watermark_offsets(TopicPartition(ctx.topic, p), timeout=10)
                 for p in parts}
    finally:
        consumer.close()
    return {p: lo for p, (lo, _) in marks.items()}, {p: hi for p, (_, hi) in marks.items()}


def _applied(state: State, low: dict[int, int], end: dict[int, int] | None = None) -> int:
    """Records applied from ``low`` (up to, not past, ``end``), summed over partitions."""
    marks = state.store.watermarks(low)
    return sum(0 if w is None else min(w + 1, (end or {}).get(p, w + 1)) - low[p]
               for p, w in marks.items())


def _apply_rate(state: State, label: str, low: dict[int, int], end: dict[int, int],
                reports: int) -> dict:
    """Waits until the writers have applied the records from ``low`` up to ``end`` (which
    hold ``reports`` reports); their rate from the first applied record on. Progress is
    read in records (the offsets the writers store)."""
    total = sum(end[p] - low[p] for p in low)
    started = time.monotonic()
    first = None
    samples = []
    bar = Progress(label, total, "records")
    while (applied := _applied(state, low, end)) < total:
        now = time.monotonic()
        if applied and first is None:
            first = (now, applied)
        samples.append((now - started, applied))
        bar.update(applied)
        if now - started > 1800:
            raise RuntimeError("consumer did not catch up in 30 min")
        time.sleep(0.2)
    bar.update(total)
    bar.finish()
    done = time.monotonic()
    t0, a0 = first or (started, 0)
    return {"records": total, "reports": reports,
            "seconds_from_start": round(done - started, 2),
            "seconds_applying": round(done - t0, 2),
            "reports_per_s": round((total - a0) * (reports / max(total, 1))
                                   / max(done - t0, 1e-9)),
            "progress": samples[:: max(1, len(samples) // 100)]}


def consumer(state: State) -> dict:
    """The consumer group applying backlogs of the same size in both record shapes ingest
    writes: one report per record (the backlog phase's, as ``ReportSteps`` writes them),
    then another draw of the day's reports in records of ``REPORTS_PER_RECORD`` (as
    ``ReportStepsBatch`` writes them; about half of them raise a user's score). Then
    redis-benchmark pipelined ZADD. The records the ingest phase appended between the two
    are applied untimed."""
    ctx = state.ctx
    users, per_user = ctx.scale.users + 1, ctx.scale.reports_per_user
    low, high = _log_span(ctx)
    end = state.backlog_end or high
    start_consumers(ctx, state.procs)
    single = _apply_rate(state, "consumer, 1 report/record", low, end, users * per_user)
    _apply_rate(state, "consumer, the ingest phase's records", end, high, 0)
    produced = raw_produce(
        ctx.env, day_records(ctx.day, users, per_user, REPORTS_PER_RECORD, seed=12))
    batched = _apply_rate(state, f"consumer, {REPORTS_PER_RECORD:,} reports/record", high,
                          _log_span(ctx)[1], users * per_user)
    zadd = redis_benchmark_zadd(ctx, max(200_000, min(users * per_user, 2_000_000)))
    return {"consumers": ctx.scale.consumers, "single": single,
            "batched": batched | {"produced": produced}, "zadd_pipelined": zadd}


def redis_benchmark_zadd(ctx: Context, n: int) -> dict:
    """``redis-benchmark`` pipelined ZADD (-P 100) on a key of this run, then deleted."""
    key = f"{ctx.namespace}:zaddbench"
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(ctx.redis_port), "-n", str(n),
            "-r", "1000000", "-P", "100", "-c", "4", "--csv", "ZADD", key, "__rand_int__",
            "__rand_int__"]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600)
    subprocess.run(["redis-cli", "-p", str(ctx.redis_port), "DEL", key], capture_output=True,
                   check=False)
    numbers = re.findall(r'"([0-9.]+)"', done.stdout.strip().splitlines()[-1])
    return {"commands": n, "pipeline": 100, "clients": 4, "zadd_per_s": round(float(numbers[0]))}


# -- memory -------------------------------------------------------------------------------
def memory(state: State, board: date | Window | None = None) -> dict:
    """Bytes of Redis per member of ``board`` (a day or a window; the bench day by
    default): MEMORY USAGE (exact, ``SAMPLES 0``) of every board shard over its members."""
    ctx, store = state.ctx, state.store
    pipe = state.redis.pipeline(transaction=False)
    for shard in range(ctx.scale.board_shards):
        key = store.board_key(ctx.day if board is None else board, shard)
        pipe.execute_command("MEMORY", "USAGE", key, "SAMPLES", "0")
        pipe.zcard(key)
    replies = pipe.execute()
    used, entries = sum(r or 0 for r in replies[0::2]), sum(replies[1::2])
    return {"board_bytes": used, "entries": entries,
            "bytes_per_entry": round(used / max(entries, 1), 1)}


# -- hot user precompute ------------------------------------------------------------------
def precompute_hot(state: State) -> dict:
    """The hot user's ranking precomputed for the bench day with the project's precompute
    code (:class:`rank_svc.precompute.Precomputer`'s steps, for that one day)."""
    from rank_svc.friend_ranking import order_rows
    from rank_svc.hot_rankings import HotRankings
    from rank_svc.social_client import stream_friends
    from stepboard.v1 import social_pb2, social_pb2_grpc

    ctx, hot = state.ctx, state.graph.hot_user
    started = time.monotonic()
    rankings = HotRankings(state.redis, ctx.namespace, 3)
    (token,) = rankings.fence(hot, [ctx.day])
    with grpc.insecure_channel(ctx.addr("social"),
                               options=[("grpc.max_receive_message_length", 64 << 20)]) as ch:
        social = social_pb2_grpc.FriendGraphStub(ch)
        # The view the ranking is computed under: rank_svc serves no page of another.
        view = social.GetRankingExclusions(
            social_pb2.GetRankingExclusionsRequest(viewer_id=hot), timeout=30
        ).view_generation
        members = {*stream_friends(social, hot, 300), hot}
    listed = time.monotonic()
    ordered = sorted(members)
    scores = {}
    for first in range(0, len(ordered), 50_000):
        scores |= state.store.scores(ctx.day, ordered[first:first + 50_000])
    # No generation recorded: the bench's graph does not change while it runs.
    rankings.save(hot, ctx.day, order_rows(scores), int(time.time()), None, token, view)
    return {"user": hot, "members": len(members), "list_seconds": round(listed - started, 2),
            "seconds": round(time.monotonic() - started, 2)}


# -- ranking ------------------------------------------------------------------------------
def pick_users(state: State) -> dict:
    """Users with about 200 and 5,000 friends (from ``friend_counts``), and the hot user;
    the ``COLD`` series' users are the next nearest 200 friends after the first 20."""
    users = state.ctx.scale.users
    near_200 = dataset.users_near(state.ctx, 200, 20 + COLD_USERS, users + 1)
    state.users_at = {
        "200": near_200[:20],
        "5000": dataset.users_near(state.ctx, 5000, 5, users + 1),
        "hot": [(state.graph.hot_user, min(state.ctx.scale.hot_friends, users))],
    }
    state.cold_users = [user for user, _ in near_200[20:]]
    return {k: v[:5] for k, v in state.users_at.items()} | {"cold": len(state.cold_users)}


def _friend_ranking_requests(state: State, users: list[int],
                             period: int = ranking_pb2.PERIOD_UNSPECIFIED) -> list[bytes]:
    """Pre-serialized first pages (50 rows) of ``users``' friend rankings of ``period``."""
    day = state.ctx.day.isoformat()
    return [ranking_pb2.GetFriendRankingRequest(user_id=u, day=day, page_size=50,
                                                period=period).SerializeToString()
            for u in users]


def _ranking_requests(state: State, question: str) -> tuple[str, list[bytes]]:
    """The method and pre-serialized requests of one ranking question of ``QUESTIONS``."""
    ctx, day = state.ctx, state.ctx.day.isoformat()
    if question == "GetGlobalTop(100)":
        return "GetGlobalTop", [
            ranking_pb2.GetGlobalTopRequest(day=day, limit=100).SerializeToString()]
    if question == "GetGlobalRank":
        rng = random.Random(7)
        return "GetGlobalRank", [
            ranking_pb2.GetGlobalRankRequest(user_id=rng.randint(1, ctx.scale.users), day=day)
            .SerializeToString() for _ in range(10_000)]
    kind = question.removeprefix("GetFriendRanking ")
    return "GetFriendRanking", _friend_ranking_requests(
        state, [u for u, _ in state.users_at[kind]])


def _closed_loop(addr: str, path: str, requests: list[bytes], callers: int,
                 duration_s: float) -> LoadResult:
    """``requests`` round robin from ``callers`` concurrent callers of the Python generator
    (two processes when there are two callers or more), each asking again when answered."""
    processes = min(2, callers)
    return run_load(addr, path, requests, processes=processes,
                    concurrency=callers // processes, duration_s=duration_s, timeout_s=30)


def _ask_each_once(addr: str, path: str, requests: list[bytes]) -> None:
    """Every one of ``requests`` once, unmeasured, 8 at a time (a warm-up)."""
    with grpc.insecure_channel(addr) as channel, ThreadPoolExecutor(8) as pool:
        call = channel.unary_unary(path)
        list(pool.map(lambda request: call(request, timeout=30), requests))


def _warm_social(addr: str, users: list[int]) -> None:
    """social_svc's Redis cache filled for ``users`` as for users active within its TTL:
    each one's friend list, and the profiles of the user and their friends (a ranking page
    shows up to 50 of them), 8 users at a time."""
    with grpc.insecure_channel(addr) as channel, ThreadPoolExecutor(8) as pool:
        stub = social_pb2_grpc.FriendGraphStub(channel)

        def warm(user: int) -> None:
            listed = stub.ListFriends(
                social_pb2.ListFriendsRequest(user_id=user, page_size=UNARY_PAGE), timeout=30)
            stub.GetProfiles(social_pb2.GetProfilesRequest(
                user_ids=[user, *listed.friend_ids]), timeout=30)

        list(pool.map(warm, users))


def _read(state: State, name: str, method: str, requests: list[bytes], callers: int,
          duration_s: float, warm_up: int = WARM_UP_CALLS) -> dict:
    """``requests`` of a Ranking ``method`` asked by ``callers`` closed-loop callers, after
    each of the first ``warm_up`` was asked once unmeasured (as ghz's ``--skipFirst``)."""
    path = f"/{RANKING}/{method}"
    _ask_each_once(state.ctx.addr("rank"), path, requests[:warm_up])
    result = _closed_loop(state.ctx.addr("rank"), path, requests, callers, duration_s)
    return _load_result(state, name, result, "python") | {"callers": callers}


def ranking(state: State) -> dict:
    """GetGlobalTop(100), GetGlobalRank, GetFriendRanking at 200 / 5,000 / hot, each with as
    many concurrent callers as its SQL baseline gets (``READERS``); then friend ranking at
    200 friends with ``SATURATION_READERS`` callers, for the rank process's maximum RPS;
    social_svc's ListFriends for the users of ``COLD`` (``LIST_FRIENDS``), after its cache
    was filled for them; 200 friends for those users, whose lists the rank process does
    not hold (``COLD``, at ``SATURATION_READERS`` callers, beside the saturated held
    list); the bare echo server at 4
    callers (what any call costs at that load); and GetGlobalTop(100) once more with ghz,
    the comparison behind the choice of tool."""
    ctx, d = state.ctx, state.ctx.scale.duration_s
    out = {"participants": state.store.participants(ctx.day)}
    for name, question in QUESTIONS.items():
        print(f"  {name} ({READERS[question]} callers)", flush=True)
        out[name] = _read(state, name, *_ranking_requests(state, name), READERS[question], d)
    name = SATURATED
    print(f"  {name} ({SATURATION_READERS} callers)", flush=True)
    out[name] = _read(state, name, *_ranking_requests(state, "GetFriendRanking 200"),
                      SATURATION_READERS, d)
    callers = READERS["friend_ranking_200"]
    users = state.cold_users
    print(f"  {LIST_FRIENDS} ({callers} callers, {len(users):,} users)", flush=True)
    _warm_social(ctx.addr("social"), users)
    lists = [social_pb2.ListFriendsRequest(user_id=u, page_size=UNARY_PAGE).SerializeToString()
             for u in users]
    listed = _closed_loop(ctx.addr("social"), f"/{SOCIAL}/ListFriends", lists, callers, d)
    out[LIST_FRIENDS] = _load_result(state, LIST_FRIENDS, listed, "python") | {
        "callers": callers}
    print(f"  {COLD} ({SATURATION_READERS} callers)", flush=True)
    out[COLD] = _read(state, COLD, "GetFriendRanking", _friend_ranking_requests(state, users),
                      SATURATION_READERS, d, warm_up=0) | {"users": len(users)}
    name = ECHO_FLOOR
    print(f"  {name} (the floor of any call at that load)", flush=True)
    out[name] = _load_result(state, name, _closed_loop(
        ctx.addr("echo"), f"/{INGEST}/ReportSteps", [_echo_request(ctx)], 4, d),
        "python") | {"callers": 4}
    name = TOP_WITH_GHZ
    callers = READERS["global_top"]
    print(f"  {name} ({callers} callers, load tool comparison)", flush=True)
    out[name] = _ghz_result(state, name, run_ghz(
        ctx.addr("rank"), f"{RANKING}.GetGlobalTop", {"day": ctx.day.isoformat(),
                                                      "limit": 100},
        duration_s=d, concurrency=callers, connections=2, timeout_s=30)) | {"callers": callers}
    return out


# -- week and month ---------------------------------------------------------------------
def windows(state: State) -> dict:
    """The 200-friend users' friend ranking of the bench day's week beside the same
    users' day (same callers, same duration, one after the other), and Redis bytes per
    member of the bench day's week and month boards (MEMORY USAGE over ZCARD)."""
    ctx, d = state.ctx, state.ctx.scale.duration_s
    callers = READERS["friend_ranking_200"]
    users = [u for u, _ in state.users_at["200"]]
    out = {}
    for name, period in ((DAY_BESIDE_WEEK, ranking_pb2.PERIOD_DAY),
                         (WEEK_FRIENDS, ranking_pb2.PERIOD_WEEK)):
        print(f"  {name} ({callers} callers)", flush=True)
        out[name] = _read(state, name, "GetFriendRanking",
                          _friend_ranking_requests(state, users, period), callers, d)
    for period in (WEEK, MONTH):
        window = window_of(ctx.day, period)
        out[period] = memory(state, window) | {
            "window": window.label, "days_seeded": sum(
                window.first <= day <= window.last for day in history_range(ctx))}
    return out


# -- history ------------------------------------------------------------------------------
def history(state: State) -> dict:
    """GetHistory of the whole seeded range for ``state.history_users``, round robin, at
    the 200-friend ranking's callers: the older days come from the archive, the others
    from the boards. One answer is checked for its length and its archived days first."""
    ctx, d = state.ctx, state.ctx.scale.duration_s
    days = history_range(ctx)
    requests = [ranking_pb2.GetHistoryRequest(
        user_id=user, from_day=days[0].isoformat(), to_day=days[-1].isoformat())
        .SerializeToString() for user in state.history_users]
    with grpc.insecure_channel(ctx.addr("rank")) as channel:
        answer = ranking_pb2_grpc.RankingStub(channel).GetHistory(
            ranking_pb2.GetHistoryRequest.FromString(requests[0]), timeout=30)
    archived = sum(day.archived for day in answer.days)
    if len(answer.days) != len(days) or archived != len(archived_days(ctx)):
        raise RuntimeError(f"GetHistory listed {len(answer.days)} days, {archived} archived;"
                           f" wanted {len(days)}, {len(archived_days(ctx))} archived")
    callers = READERS["friend_ranking_200"]
    print(f"  {HISTORY} ({callers} callers, {len(requests):,} users)", flush=True)
    return _read(state, HISTORY, "GetHistory", requests, callers, d) | {
        "users": len(requests), "days": len(days), "archived_days": archived,
        "from_day": days[0].isoformat(), "to_day": days[-1].isoformat()}


# -- freshness ----------------------------------------------------------------------------
def freshness(state: State) -> dict:
    """Report acknowledged → visible in GetGlobalRank, while ``freshness_rate`` reports/s of
    other users stream in through ReportStepsBatch."""
    ctx = state.ctx
    rate = ctx.scale.freshness_rate
    batch = 50
    requests = [batch_request(ctx.day, ctx.scale.users, batch, 100 + s) for s in range(20)]
    background: dict = {}

    def load() -> None:
        background["result"] = run_load(
            ctx.addr("ingest"), f"/{INGEST}/ReportStepsBatch", requests, processes=1,
            concurrency=8, duration_s=ctx.scale.freshness_s + 2, rate=rate / batch,
            count_items=accepted_items)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    time.sleep(1.5)
    probe_user = ctx.scale.users + 2
    ingest_stub = ingest_pb2_grpc.StepIngestStub(grpc.insecure_channel(ctx.addr("ingest")))
    rank_stub = ranking_pb2_grpc.RankingStub(grpc.insecure_channel(ctx.addr("rank")))
    measured = int(datetime(ctx.day.year, ctx.day.month, ctx.day.day, 12,
                            tzinfo=UTC).timestamp())
    delays, misses = [], 0
    end = time.monotonic() + ctx.scale.freshness_s
    bar = Progress("freshness probes", ctx.scale.freshness_s, "s")
    steps = 50_000
    while time.monotonic() < end:
        steps += 1
        report = ingest_pb2.StepReport(user_id=probe_user, day=ctx.day.isoformat(), steps=steps)
        report.measured_at.seconds = measured
        ingest_stub.ReportSteps(ingest_pb2.ReportStepsRequest(report=report), timeout=10)
        acked = time.monotonic()
        while True:
            try:
                reply = rank_stub.GetGlobalRank(ranking_pb2.GetGlobalRankRequest(
                    user_id=probe_user, day=ctx.day.isoformat()), timeout=5)
                if reply.entry.steps >= steps:
                    delays.append(time.monotonic() - acked)
                    break
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            if time.monotonic() - acked > 10:
                misses += 1
                break
            time.sleep(0.002)
        bar.update(ctx.scale.freshness_s - (end - time.monotonic()))
        time.sleep(random.uniform(0.05, 0.15))
    bar.finish()
    thread.join()
    lat = np.array(delays) * 1000
    state.keep("freshness", lat)
    bg = background["result"]
    return {"probes": len(delays), "not_visible_within_10s": misses,
            "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1),
            "max_ms": round(float(lat.max()), 1),
            "background_reports_per_s": round(bg.items_per_s), "target_rate": rate}


# -- write storm --------------------------------------------------------------------------
def storm(state: State) -> dict:
    """Friend ranking (200 friends) while ReportStepsBatch runs at its maximum; then the
    same for the naive way at the same report rate (upserts)."""
    ctx = state.ctx
    s = ctx.scale.storm_s
    batches = [batch_request(ctx.day, ctx.scale.users, REPORTS_PER_RECORD, 200 + k)
               for k in range(8)]
    box: dict = {}

    def load() -> None:
        box["ingest"] = run_load(
            ctx.addr("ingest"), f"/{INGEST}/ReportStepsBatch", batches, processes=2,
            concurrency=4, duration_s=s, count_items=accepted_items, timeout_s=30)

    thread = threading.Thread(target=load, daemon=True)
    low, _ = _log_span(ctx)
    applied_before = _applied(state, low)
    thread.start()
    time.sleep(1.0)
    print("  stepboard: GetFriendRanking 200 under the ingest storm", flush=True)
    reads = _read(state, "storm: stepboard GetFriendRanking 200",
                  *_ranking_requests(state, "GetFriendRanking 200"),
                  READERS["friend_ranking_200"], max(1.0, s - 2))
    thread.join()
    # each full batch is one record
    applied_during = (_applied(state, low) - applied_before) * REPORTS_PER_RECORD
    ingest_rate = box["ingest"].items_per_s
    state.storm_rate = ingest_rate
    out = {"stepboard": {"ingest": {"tool": "python", **box["ingest"].summary()},
                         "consumer_applied_per_s": round(applied_during / (s + 1)),
                         "friend_ranking_200": reads}}
    print(f"  naive: JOIN friend ranking under {ingest_rate:,.0f} upserts/s", flush=True)
    out["naive"] = naive.storm(state, ingest_rate, s)
    return out


# -- controlled apply rate ----------------------------------------------------------------
# Probe reports during a storm's drain are sent this often; after it, this many.
PROBE_EVERY_S = 0.25
PROBES_AFTER = 5


def apply_rate(state: State) -> dict:
    """The same storm of reports, appended straight to the topic in records of
    ``REPORTS_PER_RECORD`` (one and a half ``storm_s`` of the limited consumers' rate),
    applied by the consumers unlimited, then each held to ``consumer_max_rate``
    reports/s (``STEPBOARD_CONSUMER_MAX_REPORTS_PER_S``): the rate absorbed, the time to
    drain, and the freshness (ack → on the board) of probe reports sent through ingest
    during the drain and after it."""
    ctx = state.ctx
    rate, consumers = ctx.scale.consumer_max_rate, ctx.scale.consumers
    per_user = max(1, round(1.5 * ctx.scale.storm_s * rate * consumers / ctx.scale.users))
    storm_records = day_records(ctx.day, ctx.scale.users, per_user, REPORTS_PER_RECORD, seed=31)
    probe = _Probes(ctx, state.store, first_user=ctx.scale.users + 10)
    out = {"max_reports_per_s": rate, "consumers": consumers,
           "storm_reports": ctx.scale.users * per_user}
    for label, limit in (("unlimited", 0), ("limited", rate)):
        print(f"  consumers {label}: a storm of {out['storm_reports']:,} reports", flush=True)
        ports = start_consumers(ctx, state.procs, limit)
        probe.after(1)  # the group has joined and applies
        out[label] = _drain(state, probe, storm_records) | {
            "throttled_s": round(sum(metric(port, "stepboard_consumer_throttled_seconds_total")
                                     or 0.0 for port in ports), 1)}
    start_consumers(ctx, state.procs)  # unlimited again for the phases after
    return out


def _drain(state: State, probe: "_Probes", records: list) -> dict:
    """Appends ``records`` and probes freshness until the consumers applied them all, then
    probes ``PROBES_AFTER`` times more."""
    low, _ = _log_span(state.ctx)
    started = time.monotonic()
    raw_produce(state.ctx.env, records)
    end = _log_span(state.ctx)[1]
    total = sum(end[p] - low[p] for p in low)
    during = []
    while _applied(state, low, end) < total:
        if time.monotonic() - started > 600:
            raise RuntimeError("the storm was not applied in 10 min")
        probe.send()
        probe.seen(during, wait_s=PROBE_EVERY_S)
    drained_s = time.monotonic() - started
    probe.seen(during, wait_s=120, all_of_them=True)
    after = probe.after(PROBES_AFTER)
    reports = len(records) * REPORTS_PER_RECORD
    return {"seconds_to_apply": round(drained_s, 2),
            "reports_per_s": round(reports / drained_s),
            "freshness_during_ms": _spread(during), "freshness_after_ms": _spread(after)}


def _spread(seconds: list[float]) -> dict:
    """p50, p99 and max, in ms, of freshness samples."""
    if not seconds:
        return {"probes": 0}
    ms = np.array(seconds) * 1000
    return {"probes": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "max_ms": round(float(ms.max()), 1)}


class _Probes:
    """Reports of fresh users through ingest, and when each appears on the board."""

    def __init__(self, ctx: Context, store: BoardStore, first_user: int) -> None:
        self.ctx = ctx
        self.store = store
        self.next_user = first_user
        self.pending: dict[int, float] = {}  # user -> when ingest acknowledged the report
        self.ingest = ingest_pb2_grpc.StepIngestStub(grpc.insecure_channel(ctx.addr("ingest")))

    def send(self) -> None:
        """One report of a user not on the board yet."""
        report = ingest_pb2.StepReport(user_id=self.next_user, day=self.ctx.day.isoformat(),
                                       steps=1000)
        report.measured_at.FromDatetime(datetime(self.ctx.day.year, self.ctx.day.month,
                                                 self.ctx.day.day, 12, tzinfo=UTC))
        self.ingest.ReportSteps(ingest_pb2.ReportStepsRequest(report=report), timeout=10)
        self.pending[self.next_user] = time.monotonic()
        self.next_user += 1

    def seen(self, delays: list[float], wait_s: float, all_of_them: bool = False) -> None:
        """Adds to ``delays`` the freshness of each pending report that is on the board
        within ``wait_s``; ``all_of_them``: each must be."""
        deadline = time.monotonic() + wait_s
        while self.pending and time.monotonic() < deadline:
            now = time.monotonic()
            scores = self.store.scores(self.ctx.day, list(self.pending))
            for user in [u for u, score in scores.items() if score is not None]:
                delays.append(now - self.pending.pop(user))
            time.sleep(0.005)
        if all_of_them and self.pending:
            raise RuntimeError(f"probe reports not applied in {wait_s} s: {self.pending}")

    def after(self, count: int) -> list[float]:
        """The freshness of ``count`` reports sent one after the other."""
        delays: list[float] = []
        for _ in range(count):
            self.send()
            self.seen(delays, wait_s=120, all_of_them=True)
        return delays


def rss(state: State) -> dict:
    """Resident memory of each process of the run (MiB)."""
    return state.procs.rss_mib()


def precompute_rss(state: State) -> dict:
    """The precompute job's peak RSS during one round (it refreshes the open days' hot
    rankings; the hot user's friend list is the big item)."""
    ctx, procs = state.ctx, state.procs
    procs.start("precompute", ["-m", "rank_svc.precompute"], ctx.env)
    peak = 0.0
    end = time.monotonic() + min(60, max(5, ctx.scale.duration_s * 3))
    while time.monotonic() < end and procs.started["precompute"].poll() is None:
        peak = max(peak, procs.rss_mib().get("precompute", 0.0))
        time.sleep(0.5)
    procs.stop("precompute")
    return {"precompute_peak_mib": peak}


def wait(label: str, seconds: float) -> None:
    """A pause with a progress bar (lets the machine settle between phases)."""
    timed_wait(label, seconds)


# -- likes --------------------------------------------------------------------------------
def _first_pages(state: State, requests: list[bytes]) -> list:
    """The answers to ``requests`` (GetFriendRanking), asked once each."""
    with grpc.insecure_channel(state.ctx.addr("rank")) as channel:
        stub = ranking_pb2_grpc.RankingStub(channel)
        return [stub.GetFriendRanking(ranking_pb2.GetFriendRankingRequest.FromString(request),
                                      timeout=30) for request in requests]


def _shown_likes(pages: list) -> dict:
    """How many entries of ``pages`` show likes, and how many show the caller's like."""
    entries = [entry for page in pages for entry in page.entries]
    return {"entries": len(entries), "with_likes": sum(e.likes > 0 for e in entries),
            "liked_by_me": sum(e.liked_by_me for e in entries)}


def likes(state: State) -> dict:
    """The 200-friend users' friend ranking of the bench day with no likes (checked on
    their first pages), then likes seeded for them (:func:`bench.likes.seed`) and the same
    rankings asked again, at the same callers, right after: the likes' cost is the p50's
    ratio. Then Redis bytes per like (:func:`bench.likes.memory`)."""
    d, callers = state.ctx.scale.duration_s, READERS["friend_ranking_200"]
    users = [u for u, _ in state.users_at["200"]]
    requests = _friend_ranking_requests(state, users, ranking_pb2.PERIOD_DAY)
    before = _shown_likes(_first_pages(state, requests))
    if before["with_likes"]:
        raise RuntimeError(f"the bench day shows likes before they are seeded: {before}")
    print(f"  {PLAIN_FRIENDS} ({callers} callers)", flush=True)
    out = {PLAIN_FRIENDS: _read(state, PLAIN_FRIENDS, "GetFriendRanking", requests, callers, d)}
    out["seed"] = bench_likes.seed(state, users)
    out["shown"] = _shown_likes(_first_pages(state, requests))
    if not out["shown"]["with_likes"] or not out["shown"]["liked_by_me"]:
        raise RuntimeError(f"the seeded likes do not show: {out['shown']}")
    print(f"  {LIKED_FRIENDS} ({callers} callers)", flush=True)
    out[LIKED_FRIENDS] = _read(state, LIKED_FRIENDS, "GetFriendRanking", requests, callers, d)
    out["memory"] = bench_likes.memory(state)
    return out


def like_calls(state: State) -> dict:
    """``StepIngest.Like`` with ghz at the ReportSteps row's settings: each 200-friend user
    liking each of its friends in turn, on the bench day, so every call passes the
    friendship check. Repeats change no like but each is checked, produced and
    acknowledged like the first. Then ``FriendGraph.CheckFriendship`` of the same pairs
    alone, the same way: the social_svc call each Like makes first."""
    ctx, d = state.ctx, state.ctx.scale.duration_s
    lists = dataset.friend_lists(ctx, [u for u, _ in state.users_at["200"]])
    pairs = [(caller, friend) for caller, members in lists.items() for friend in members[1:]]
    likes = [{"liker_id": liker, "liked_id": liked, "day": ctx.day.isoformat(), "liked": True}
             for liker, liked in pairs]
    print(f"  {LIKE_CALLS} with ghz ({len(pairs):,} friend pairs)", flush=True)
    out = _ghz_result(state, LIKE_CALLS, run_ghz(
        ctx.addr("ingest"), f"{INGEST}.Like", likes, duration_s=d, concurrency=32,
        connections=4)) | {"pairs": len(pairs)}
    checks = [{"user_id": liker, "friend_id": liked} for liker, liked in pairs]
    print(f"  {FRIEND_CHECKS} with ghz (the same pairs, social_svc)", flush=True)
    out[FRIEND_CHECKS] = _ghz_result(state, FRIEND_CHECKS, run_ghz(
        ctx.addr("social"), f"{SOCIAL}.CheckFriendship", checks, duration_s=d,
        concurrency=32, connections=4))
    return out


# -- users who left the rankings ---------------------------------------------------------
def _set_visible(ctx: Context, users: list[int], visible: bool) -> None:
    """FriendGraph.SetRankingVisibility of each of ``users``, 8 at a time."""
    with grpc.insecure_channel(ctx.addr("social")) as channel, ThreadPoolExecutor(8) as pool:
        stub = social_pb2_grpc.FriendGraphStub(channel)
        list(pool.map(lambda user: stub.SetRankingVisibility(
            social_pb2.SetRankingVisibilityRequest(user_id=user, visible=visible), timeout=30),
            users))


def _participants_seen(ctx: Context, user: int) -> int:
    with grpc.insecure_channel(ctx.addr("rank")) as channel:
        return ranking_pb2_grpc.RankingStub(channel).GetGlobalRank(
            ranking_pb2.GetGlobalRankRequest(user_id=user, day=ctx.day.isoformat()),
            timeout=30).total_participants


def left_rankings(state: State) -> dict:
    """GetGlobalRank (the ranking phase's requests, 4 callers) with nobody out of the
    rankings, then with ``LEFT_USERS`` users (a tenth of the users at most, drawn at
    random) out through FriendGraph.SetRankingVisibility: each call then also reads the
    set of those who left and subtracts those above the user. The second series starts
    once a GetGlobalRank counts them out. The graph databases keep the opt-outs until
    the next run's start (:func:`bench.dataset.ensure_graph` clears them)."""
    ctx, d, callers = state.ctx, state.ctx.scale.duration_s, READERS["global_rank"]
    method, requests = _ranking_requests(state, "GetGlobalRank")
    rng = random.Random(11)
    left = rng.sample(range(1, ctx.scale.users + 1), min(LEFT_USERS, ctx.scale.users // 10))
    probe = min(set(range(1, len(left) + 2)) - set(left))
    print(f"  {RANK_NONE_LEFT} ({callers} callers)", flush=True)
    out = {RANK_NONE_LEFT: _read(state, RANK_NONE_LEFT, method, requests, callers, d)}
    started = time.monotonic()
    _set_visible(ctx, left, False)
    set_s = time.monotonic() - started
    on_board = sum(score is not None for score in state.store.scores(ctx.day, left).values())
    deadline = time.monotonic() + 10
    while (seen := _participants_seen(ctx, probe)) != (
            wanted := state.store.participants(ctx.day) - on_board):
        if time.monotonic() > deadline:
            raise RuntimeError(f"GetGlobalRank counts {seen:,} participants with "
                               f"{on_board:,} left; wanted {wanted:,}")
        time.sleep(0.1)
    print(f"  {RANK_SOME_LEFT}: {len(left):,} ({callers} callers)", flush=True)
    out[RANK_SOME_LEFT] = _read(state, RANK_SOME_LEFT, method, requests, callers, d)
    return out | {"left": len(left), "left_on_board": on_board,
                  "participants": state.store.participants(ctx.day),
                  "set_visibility_per_s": round(len(left) / set_s)}
