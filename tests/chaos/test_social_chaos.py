"""Faults around the friend graph: a MariaDB shard stopped and restarted, social_svc stopped
and restarted, and a slow then broken link between rank_svc and social_svc (fault proxy).

Friend graph reads must fail fast (``UNAVAILABLE`` within the deadline) and recover with no
restart; rankings must answer within the deadline from cached friend lists or fail fast
(``UNAVAILABLE``, or ``DEADLINE_EXCEEDED`` when social_svc hangs past the deadline).
"""

import itertools
import random
import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from stepboard.v1 import ranking_pb2, social_pb2
from tests.chaos.ledger import record_result
from tests.fault_proxy import FaultProxy
from tests.harness import start_process, unique, wait_until
from tests.integration.test_friend_ranking import as_tuple, populate, reference, renew_lists
from tests.social_support import (
    STACK_MARIADB,
    PrivateMariaDB,
    ShardDatabases,
    SocialServer,
    elapsed,
    fresh_user_base,
    users_on,
)
from tests.write_path import WritePath

DEADLINE_S = 2.0
OUTAGE_S = 4.0


def test_mariadb_shard_stopped_and_restarted_under_reads():
    mariadb = PrivateMariaDB()
    databases = ShardDatabases([STACK_MARIADB, mariadb.address])
    server = SocialServer(databases, unique("sg-chaos"), STEPBOARD_SOCIAL_CACHE="false")
    settings, base = databases.settings(), fresh_user_base()
    users = {shard: users_on(settings, shard, 6, base) for shard in (0, 1)}
    friends = {u: set() for shard in users.values() for u in shard}
    rng = random.Random(5)
    calls: list[tuple[int, float, float, grpc.StatusCode | None]] = []
    stop = threading.Event()

    def read_loop() -> None:
        while not stop.is_set():
            shard = rng.choice((0, 1))
            user = rng.choice(users[shard])
            started = time.monotonic()
            took, error = elapsed(server.stub.ListFriends,
                                  social_pb2.ListFriendsRequest(user_id=user), timeout=DEADLINE_S)
            calls.append((shard, started, took, None if error is None else error.code()))
            time.sleep(0.01)

    try:
        for shard_users in users.values():
            for a, b in itertools.pairwise(shard_users):
                server.stub.AddFriendship(social_pb2.AddFriendshipRequest(user_id=a, friend_id=b),
                                          timeout=DEADLINE_S)
                friends[a].add(b)
                friends[b].add(a)
        readers = [threading.Thread(target=read_loop) for _ in range(4)]
        for reader in readers:
            reader.start()
        time.sleep(1)
        killed_at = time.monotonic()
        mariadb.kill()
        time.sleep(OUTAGE_S)
        restarted_at = time.monotonic()
        mariadb.start()
        wait_until(lambda: any(s == 1 and t > restarted_at and c is None
                               for s, t, _, c in list(calls)), 30, 0.05)
        time.sleep(1)
        stop.set()
        for reader in readers:
            reader.join(10)
        for user, expected in friends.items():
            listed = server.stub.ListFriends(social_pb2.ListFriendsRequest(user_id=user),
                                             timeout=DEADLINE_S).friend_ids
            assert set(listed) == expected
    finally:
        stop.set()
        server.close()
        databases.drop()
        mariadb.close()

    # Calls wholly inside the outage (one that ends after the restart may rightly succeed).
    during = [c for c in calls if killed_at + 0.5 < c[1] and c[1] + c[2] < restarted_at]
    first_ok = min(t + took for s, t, took, c in calls if s == 1 and t > restarted_at and c is None)
    failed = [c for c in during if c[0] == 1]
    record_result(
        "mariadb shard stopped and restarted",
        reads=len(calls), reads_failed_on_dead_shard=len(failed),
        slowest_failed_read_s=round(max(took for _, _, took, _ in failed), 2),
        other_shard_errors=sum(1 for c in calls if c[0] == 0 and c[3] is not None),
        heal_s=round(first_ok - restarted_at, 2), lost_friendships=0,
    )
    assert failed and all(c[3] == grpc.StatusCode.UNAVAILABLE for c in failed)
    assert all(took < DEADLINE_S for _, _, took, _ in failed)
    assert all(c[3] is None for c in calls if c[0] == 0)


@pytest.fixture
def proxied() -> Iterator[tuple[WritePath, FaultProxy]]:
    """A write path with a private social_svc that rank_svc reaches through a fault proxy."""
    proxies = []

    def route(address: str) -> str:
        host, port = address.rsplit(":", 1)
        proxies.append(FaultProxy((host, int(port))))
        return proxies[0].address

    path = WritePath({}, own_social=True, social_route=route)
    yield path, proxies[0]
    proxies[0].close()
    path.close()


def ranking_call(path: WritePath, user: int, day) -> tuple[float, object]:
    """``(seconds, reply or RpcError)`` of one GetFriendRanking with the chaos deadline."""
    request = ranking_pb2.GetFriendRankingRequest(user_id=user, day=day.isoformat(),
                                                  page_size=500)
    started = time.monotonic()
    try:
        reply = path.ranking.GetFriendRanking(request, timeout=DEADLINE_S)
    except grpc.RpcError as error:
        return time.monotonic() - started, error
    return time.monotonic() - started, reply


def check_degraded(path, friends, model, day, cached: list[int], uncached: int,
                   uncached_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> float:
    """Cached users (whose lists changed since, see ``warmed_up``) get their exact ranking
    from the list rank_svc holds, flagged stale; an uncached one ``uncached_code``; all
    within the deadline. Returns the slowest answer."""
    slowest = 0.0
    for user in cached:
        took, reply = ranking_call(path, user, day)
        assert not isinstance(reply, grpc.RpcError), reply
        assert reply.stale_friends
        assert [as_tuple(e) for e in reply.entries] == reference(model, day, user, friends[user])
        slowest = max(slowest, took)
    took, error = ranking_call(path, uncached, day)
    assert isinstance(error, grpc.RpcError) and error.code() == uncached_code, error
    return max(slowest, took)


def wait_fresh(path: WritePath, user: int, day, since: float) -> float:
    """Seconds from ``since`` until the user's ranking is served fresh again."""
    def fresh() -> bool:
        _, reply = ranking_call(path, user, day)
        return not isinstance(reply, grpc.RpcError) and not reply.stale_friends

    wait_until(fresh, 60, 0.1)
    return round(time.monotonic() - since, 2)


def warmed_up(path: WritePath, seed: int):
    """A populated graph whose five best-connected users have cached friend lists in
    rank_svc, and the sixth, which has none: ``(friends, model, day, cached, uncached)``.
    Each cached list then changes (and changes back), so the user's next ranking must ask
    social_svc for it again (an unchanged list would be reused without asking; the change
    also drops social_svc's cached copy, which rank_svc would read without asking)."""
    friends, model, day = populate(path, random.Random(seed), users=60)
    by_degree = sorted(friends, key=lambda u: -len(friends[u]))
    cached, uncached = by_degree[:5], by_degree[5]
    for user in cached:
        assert not ranking_call(path, user, day)[1].stale_friends
    renew_lists(path, cached)
    return friends, model, day, cached, uncached


def test_slow_then_broken_link_between_rank_and_social(proxied):
    path, proxy = proxied
    friends, model, day, cached, uncached = warmed_up(path, 47)

    proxy.set_latency(3 * DEADLINE_S)
    # social_svc does not answer, but is not known to be down: DEADLINE_S is shorter than
    # its own timeout (rank_svc.social_client.SOCIAL_TIMEOUT_S), so the deadline ran out first
    slow = check_degraded(path, friends, model, day, cached, uncached,
                          grpc.StatusCode.DEADLINE_EXCEEDED)
    proxy.set_latency(0)
    proxy.refuse(True)
    proxy.drop_connections()
    # The slow link still delivered the calls late: social_svc answered them and refilled
    # its cache, where rank_svc would now read the lists without the link. Once those are
    # done, change the lists again so that the broken link is what the next calls meet.
    time.sleep(0.5)
    renew_lists(path, [*cached, uncached])
    broken = check_degraded(path, friends, model, day, cached, uncached)
    healed_at = time.monotonic()
    proxy.heal()
    heal_s = wait_fresh(path, cached[0], day, healed_at)
    record_result("rank→social link: latency beyond deadline, then drops and refusals",
                  slowest_answer_slow_link_s=round(slow, 2),
                  slowest_answer_broken_link_s=round(broken, 2), heal_s=heal_s)
    assert max(slow, broken) < DEADLINE_S


def test_social_svc_stopped_and_restarted(proxied):
    path, _ = proxied
    friends, model, day, cached, uncached = warmed_up(path, 53)

    port = path.env["STEPBOARD_SOCIAL_ADDR"].rsplit(":", 1)[1]
    path.social_process.terminate()
    path.social_process.wait(30)
    slowest = check_degraded(path, friends, model, day, cached, uncached)
    restarted_at = time.monotonic()
    path.social_process = start_process("social_svc", path.env | {"STEPBOARD_GRPC_PORT": port})
    heal_s = wait_fresh(path, cached[0], day, restarted_at)
    record_result("social_svc stopped and restarted", slowest_answer_while_down_s=round(slowest, 2),
                  heal_s=heal_s)
    assert slowest < DEADLINE_S
