"""A storm of calls whose deadlines run out while Redis is being asked leaves rank_svc's
Redis connections in step: none goes back to its pool holding a half-done exchange (unread
replies, or a handshake cut short so the server speaks another protocol), so no later
call reads another one's reply. Every call of the storm ends with its own status or a
right answer, never INTERNAL, and every answer afterwards is exactly what the test wrote.

A real rank_svc process reads a board the test writes in its own namespace through the
project's BoardStore; friend lists come from the stack's social_svc. Sentinel, which the
stack does not run, gets a private deployment of its own."""

import random
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

import grpc
import pytest
import redis

from common import call_deadline
from common.errors import DeadlineExceeded
from common.redis_clients import RedisSettings, create_redis
from common.report_rules import day_start_s
from rank_svc.board_format import BoardSettings, encode_score
from stepboard.v1 import ranking_pb2, ranking_pb2_grpc, social_pb2, social_pb2_grpc
from tests.board_store import BoardStore
from tests.chaos.sentinel import SentinelRedis
from tests.harness import free_port, log_tail, service_env, start_process, today, unique
from tests.integration.test_friend_ranking import as_tuple, reference
from tests.model import BoardModel
from tests.processes import stop_process
from tests.social_support import fresh_user_base
from tests.stack import REDIS_DEPLOYMENTS, SERVERS, local_env

USERS = 1500  # on the board: a top of 1000 is a full page
OWNERS = 12  # users whose friend rankings are asked for
FRIENDS = 8  # each owner's friends with a report, plus one without
THREADS, CALLS = 8, 300
ROUNDS = 3  # storms, each followed by its check (one let old faults through 1 run in 10)
SHORT_DEADLINES_S = (0.0005, 0.005)
TOP_LIMITS = (10, 100, 1000)


@dataclass
class Board:
    """What the test wrote: the board's reference model and the friend lists, and the
    store that wrote it."""

    day: date
    model: BoardModel
    friends: dict[int, set[int]]
    store: BoardStore

    def rewrite(self, stop: threading.Event) -> None:
        """Writes some users' scores again until ``stop``: the board stays the same, but
        its versions change, so rank_svc builds its global tops again (as it does while
        the consumer writes) instead of answering from its cache."""
        rng = random.Random(7)
        users = [user for _, user in self.model.best]
        while not stop.wait(0.02):
            self.store.apply({(self.day, user): self.score(user)
                              for user in rng.sample(users, 20)}, {})

    def score(self, user: int) -> int:
        """``user``'s board score, from the model."""
        steps, second = self.model.best[(self.day, user)]
        return encode_score(self.day, steps, day_start_s(self.day) + second)


@pytest.fixture(scope="module", params=sorted(REDIS_DEPLOYMENTS))
def board(request) -> Iterator[tuple[Board, dict[str, str]]]:
    """A board of ``USERS`` users in a private namespace (ties included, so the id
    tie-break is exercised) on each Redis deployment, and ``OWNERS`` users with friend
    lists in social_svc; and the settings that make rank_svc read that board."""
    rng = random.Random(20)
    namespace = unique("storm")
    settings = REDIS_DEPLOYMENTS[request.param] | {"STEPBOARD_BOARD_NAMESPACE": namespace}
    client = create_redis(RedisSettings.from_env(local_env() | settings))
    store = BoardStore(client, BoardSettings(namespace=namespace))
    day, base = today(), fresh_user_base()
    users = [base + i for i in range(1, USERS + 1)]
    model = BoardModel()
    for user in users:
        model.add(day, user, rng.randrange(400), rng.choice((60, 60, 3600, rng.randrange(80_000))))
    written = Board(day, model, {}, store)
    store.apply({(day, user): written.score(user) for user in users}, {})
    owners, others = users[:OWNERS], users[OWNERS:]
    with grpc.insecure_channel(f"127.0.0.1:{SERVERS['social'][0]}") as channel:
        social = social_pb2_grpc.FriendGraphStub(channel)
        for number, owner in enumerate(owners):
            silent = base + USERS + 1 + number  # a friend without a report
            friends = written.friends[owner] = {*rng.sample(others, FRIENDS), silent}
            for friend in friends:
                social.AddFriendship(
                    social_pb2.AddFriendshipRequest(user_id=owner, friend_id=friend), timeout=10)
    yield written, settings
    store.drop_day(day)
    client.close()


@pytest.fixture(scope="module")
def rank(board) -> Iterator[tuple[ranking_pb2_grpc.RankingStub, subprocess.Popen]]:
    """A rank_svc process from this tree reading the test's board; and the process."""
    _, settings = board
    port = free_port()
    process = start_process("rank_svc", service_env(STEPBOARD_GRPC_PORT=str(port), **settings))
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=30)
        yield ranking_pb2_grpc.RankingStub(channel), process
    finally:
        channel.close()
        stop_process(process)


Ask = tuple[str, object, tuple]  # the method's name, the request, the right answer


def questions(written: Board) -> list[Ask]:
    """Every question of the storm with its right answer, worked out from the model."""
    day, start_s = written.day, day_start_s(written.day)
    ranking = written.model.ranking(day)
    entries = [(rank, user, steps, start_s + second)
               for rank, (user, steps, second) in enumerate(ranking, 1)]
    asked: list[Ask] = []
    for limit in TOP_LIMITS:
        asked.append(("GetGlobalTop",
                      ranking_pb2.GetGlobalTopRequest(day=day.isoformat(), limit=limit),
                      (len(ranking), entries[:limit])))
    for entry in entries[::50]:
        asked.append(("GetGlobalRank",
                      ranking_pb2.GetGlobalRankRequest(user_id=entry[1], day=day.isoformat()),
                      (len(ranking), entry)))
    for owner, friends in written.friends.items():
        rows = reference(written.model, day, owner, friends)
        asked.append(("GetFriendRanking",
                      ranking_pb2.GetFriendRankingRequest(user_id=owner, day=day.isoformat()),
                      (len(rows), rows)))
    return asked


def answer_of(method: str, reply) -> tuple:
    """The parts of ``reply`` :func:`questions` predicts."""
    if method == "GetGlobalTop":
        return reply.total_participants, [as_tuple(e) for e in reply.entries]
    if method == "GetGlobalRank":
        return reply.total_participants, as_tuple(reply.entry)
    return reply.total, [as_tuple(e) for e in reply.entries]


def ask(stub, question: Ask, deadline_s: float) -> str:
    """``OK`` for the right answer, ``WRONG`` for another, else the status's name."""
    method, request, right = question
    try:
        reply = getattr(stub, method)(request, timeout=deadline_s)
    except grpc.RpcError as error:
        return error.code().name
    return "OK" if answer_of(method, reply) == right else "WRONG"


def in_threads(threads: int, calls: int, outcome: Callable[[random.Random], str]) -> Counter[str]:
    """The outcomes of ``calls`` calls of ``outcome`` from each of ``threads`` threads at
    once (each thread with a random generator of its own)."""
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def run(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(calls):
            found = outcome(rng)
            with lock:
                outcomes[found] += 1

    running = [threading.Thread(target=run, args=(seed,)) for seed in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    return outcomes


def storm_and_check(stub, asked: list[Ask]) -> tuple[Counter[str], Counter[str]]:
    """The outcomes of a storm of calls with short deadlines, and of 300 calls after it
    (from more threads than the storm's, so every pooled connection is used)."""
    during = in_threads(THREADS, CALLS, lambda rng: ask(
        stub, rng.choice(asked), rng.uniform(*SHORT_DEADLINES_S)))
    return during, in_threads(10, 30, lambda rng: ask(stub, rng.choice(asked), 10))


def test_short_deadlines_never_garble_later_answers(board, rank):
    written, _ = board
    stub, process = rank
    asked = questions(written)
    for question in asked:  # the model and the server agree before the storm
        assert ask(stub, question, 10) == "OK", question[1]

    stop = threading.Event()
    writer = threading.Thread(target=written.rewrite, args=(stop,))
    writer.start()
    try:
        rounds = [storm_and_check(stub, asked) for _ in range(ROUNDS)]
    finally:
        stop.set()
        writer.join()
    outcomes = [f"storm: {dict(during)}, after: {dict(after)}" for during, after in rounds]
    for during, after in rounds:
        assert during["INTERNAL"] == during["WRONG"] == 0 and after == {"OK": 300}, outcomes
        assert set(during) <= {"OK", "DEADLINE_EXCEEDED"}, outcomes
        assert sum(during.values()) == THREADS * CALLS
    log = process.log_path.read_text(errors="replace")
    assert "unhandled error" not in log, log_tail(process.log_path)


# Busy for ARGV[1] microseconds, then answers: a reply that comes after a read gave up.
_SLOW_LUA = """
local t = redis.call('TIME')
local finish = t[1] * 1000000 + t[2] + tonumber(ARGV[1])
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= finish
return 'slow'
"""


@pytest.fixture(scope="module")
def sentinel() -> Iterator[SentinelRedis]:
    """A private master, two replicas and three Sentinels."""
    deployment = SentinelRedis()
    yield deployment
    deployment.close()


def test_a_sentinel_connection_whose_read_timed_out_is_not_used_again(sentinel):
    """redis-py's Sentinel connections keep a connection whose read failed; the reply it
    missed would be the next command's."""
    client = create_redis(RedisSettings.from_env(
        local_env() | sentinel.env | {"STEPBOARD_REDIS_SOCKET_TIMEOUT_S": "0.5"}))
    client.set("mine", "mine")
    pipe = client.pipeline(transaction=False)
    pipe.eval(_SLOW_LUA, 0, 800_000)  # answers 0.3 s after the read gave up
    pipe.get("mine")
    with pytest.raises(redis.exceptions.TimeoutError):
        pipe.execute()
    assert client.get("mine") == b"mine"  # asked before the slow reply came
    client.close()


def test_short_deadlines_through_sentinel_never_garble_later_answers(sentinel):
    """The storm, in process, on a board read through Sentinel (handshakes cut short by a
    deadline are its connections' way out of step too)."""
    client = create_redis(RedisSettings.from_env(local_env() | sentinel.env))
    store = BoardStore(client, BoardSettings(namespace=unique("storm")))
    day, rng = today(), random.Random(3)
    store.apply({(day, user): encode_score(day, rng.randrange(50), day_start_s(day))
                 for user in range(1, USERS + 1)}, {})
    right = {limit: store.top(day, limit) for limit in TOP_LIMITS}

    def top(rng: random.Random, deadline_s: float | None) -> str:
        limit = rng.choice(TOP_LIMITS)
        token = call_deadline.enter(deadline_s)
        try:
            return "OK" if store.top(day, limit) == right[limit] else "WRONG"
        except DeadlineExceeded:
            return "DEADLINE_EXCEEDED"
        except Exception as error:  # a reply read as another command's
            return type(error).__name__
        finally:
            call_deadline.leave(token)

    during = in_threads(THREADS, CALLS, lambda rng: top(rng, rng.uniform(*SHORT_DEADLINES_S)))
    after = in_threads(10, 30, lambda rng: top(rng, None))
    outcomes = f"storm: {dict(during)}, after: {dict(after)}"
    assert set(during) <= {"OK", "DEADLINE_EXCEEDED"} and after == {"OK": 300}, outcomes
    client.close()
