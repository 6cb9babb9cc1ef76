"""FriendGraph with a MariaDB server of the test's own: cached reads never reach MySQL (its
query counter stays still), and a dead shard fails fast for its users only. And on the
stack's MariaDB, with one connection per shard: changes of friendships across two shards
never wait on each other."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from stepboard.v1 import social_pb2
from tests.harness import unique
from tests.social_support import (
    STACK_MARIADB,
    PrivateMariaDB,
    ShardDatabases,
    SocialServer,
    elapsed,
    fresh_user_base,
    upsert_request,
    users_on,
)

DEADLINE_S = 3.0


@pytest.fixture(scope="module")
def private_mariadb() -> Iterator[PrivateMariaDB]:
    """A second MariaDB server, removed with its data afterwards."""
    server = PrivateMariaDB()
    yield server
    server.close()


def test_repeated_reads_are_served_from_the_cache(private_mariadb, redis_client):
    # Both shards on the private server: its Com_select counts every query social_svc makes.
    databases = ShardDatabases([private_mariadb.address, private_mariadb.address])
    namespace = unique("sg-count")
    server = SocialServer(databases, namespace)
    try:
        settings, base = databases.settings(), fresh_user_base()
        user, *friends = users_on(settings, 0, 3, base) + users_on(settings, 1, 3, base)
        stub = server.stub
        for friend in friends:
            stub.AddFriendship(social_pb2.AddFriendshipRequest(user_id=user, friend_id=friend))
            stub.UpsertProfile(upsert_request(user_id=friend, nickname=f"f{friend}"))
        everyone = [user, *friends]

        def read_all() -> None:
            for someone in everyone:
                reply = stub.ListFriends(social_pb2.ListFriendsRequest(user_id=someone))
                assert len(reply.friend_ids) == reply.total_count > 0
                chunks = stub.StreamFriends(social_pb2.StreamFriendsRequest(user_id=someone))
                assert sum(len(c.friend_ids) for c in chunks) == reply.total_count
            reply = stub.GetProfiles(social_pb2.GetProfilesRequest(user_ids=everyone))
            assert sorted(p.user_id for p in reply.profiles) == sorted(friends)

        read_all()  # fills the cache
        before = private_mariadb.global_status("Com_select")
        for _ in range(20):
            read_all()
        assert private_mariadb.global_status("Com_select") == before

        # A change drops the entries it affects, and only those are read again.
        removed = social_pb2.RemoveFriendshipRequest(user_id=user, friend_id=friends[0])
        stub.RemoveFriendship(removed)
        assert friends[0] not in stub.ListFriends(
            social_pb2.ListFriendsRequest(user_id=user)).friend_ids
        assert private_mariadb.global_status("Com_select") > before
    finally:
        server.close()
        for key in redis_client.scan_iter(match=f"{namespace}:*", count=1000):
            redis_client.delete(key)


def test_dead_shard_fails_fast_for_its_users_only(private_mariadb):
    # Shard 0 is the stack's MariaDB, shard 1 the private server; no cache, so every read
    # needs its shard.
    databases = ShardDatabases([STACK_MARIADB, private_mariadb.address])
    server = SocialServer(databases, unique("sg-dead"), STEPBOARD_SOCIAL_CACHE="false")
    settings, base = databases.settings(), fresh_user_base()
    (a, b), (c, d) = users_on(settings, 0, 2, base), users_on(settings, 1, 2, base)
    # Above a: the add locks a's side on shard 0 first, then fails on shard 1.
    (e,) = users_on(settings, 1, 1, a + 1)
    stub = server.stub

    def shard0_works() -> None:
        stub.AddFriendship(social_pb2.AddFriendshipRequest(user_id=a, friend_id=b),
                           timeout=DEADLINE_S)
        assert b in stub.ListFriends(social_pb2.ListFriendsRequest(user_id=a),
                                     timeout=DEADLINE_S).friend_ids
        stub.UpsertProfile(upsert_request(user_id=a, nickname="a"), timeout=DEADLINE_S)
        reply = stub.GetProfiles(social_pb2.GetProfilesRequest(user_ids=[a]), timeout=DEADLINE_S)
        assert [p.nickname for p in reply.profiles] == ["a"]

    shard1_calls = [
        (stub.AddFriendship, social_pb2.AddFriendshipRequest(user_id=c, friend_id=d)),
        (stub.AddFriendship, social_pb2.AddFriendshipRequest(user_id=a, friend_id=e)),
        (stub.ListFriends, social_pb2.ListFriendsRequest(user_id=c)),
        (stub.UpsertProfile, upsert_request(user_id=d, nickname="d")),
        (stub.GetProfiles, social_pb2.GetProfilesRequest(user_ids=[c])),
    ]
    try:
        shard0_works()
        for call, request in shard1_calls[2:]:
            call(request, timeout=DEADLINE_S)

        private_mariadb.kill()
        # Many at once, more than the pool holds: none may wait past the deadline.
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(
                lambda item: elapsed(item[0], item[1], timeout=DEADLINE_S), shard1_calls * 6
            ))
        for took, error in results:
            assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE, error
            assert took < DEADLINE_S
        shard0_works()
        # The cross-shard add failed on shard 1, so shard 0 kept nothing of it.
        assert databases.query(0, "SELECT friend_id FROM friendships WHERE user_id = %s",
                               (a,)) == [(b,)]
        assert databases.query(0, "SELECT friend_count FROM friend_counts WHERE user_id = %s",
                               (a,)) == [(1,)]

        private_mariadb.start()
        for call, request in shard1_calls:
            call(request, timeout=DEADLINE_S)
        assert sorted(stub.ListFriends(social_pb2.ListFriendsRequest(user_id=a)).friend_ids) \
            == sorted([b, e])
        shard0_works()
    finally:
        server.close()
        databases.drop()


def crossed_pairs(settings, count: int, base: int) -> list[tuple[int, int]]:
    """``count`` friendships whose lower user id lives on shard 0, and ``count`` whose
    lower user id lives on shard 1: ordered by user id, they would take the two shards in
    opposite orders."""
    pairs, start = [], base
    for _ in range(count):
        for low_shard in (0, 1):
            (low,) = users_on(settings, low_shard, 1, start)
            (high,) = users_on(settings, 1 - low_shard, 1, low + 1)
            pairs.append((low, high))
            start = high + 1
    return pairs


def test_cross_shard_changes_take_the_shards_in_one_order_and_never_wait_on_each_other():
    # One connection per shard: two changes that each held one shard while waiting for the
    # other would wait until the pool gives up (UNAVAILABLE) or the deadline passes.
    databases = ShardDatabases([STACK_MARIADB, STACK_MARIADB])
    server = SocialServer(databases, unique("sg-order"), STEPBOARD_SOCIAL_CACHE="false",
                          STEPBOARD_MYSQL_POOL_SIZE="1")
    stub = server.stub
    pairs = crossed_pairs(databases.settings(), 4, fresh_user_base())
    calls = [
        (change, request(user_id=a, friend_id=b))
        for low, high in pairs
        for a, b in ((low, high), (high, low))
        for change, request in ((stub.AddFriendship, social_pb2.AddFriendshipRequest),
                                (stub.RemoveFriendship, social_pb2.RemoveFriendshipRequest))
    ] * 10
    try:
        with ThreadPoolExecutor(16) as workers:
            results = list(workers.map(
                lambda item: elapsed(item[0], item[1], timeout=DEADLINE_S), calls))
        failed = [error.code().name for _, error in results if error is not None]
        assert not failed, f"{len(failed)} of {len(calls)} calls failed: {sorted(set(failed))}"
        # Both sides of every friendship agree, and every count matches its rows.
        for low, high in pairs:
            stub.AddFriendship(social_pb2.AddFriendshipRequest(user_id=high, friend_id=low),
                               timeout=DEADLINE_S)
        rows = sorted(databases.query_all("SELECT user_id, friend_id FROM friendships"))
        assert rows == sorted([*pairs, *((high, low) for low, high in pairs)])
        counts = databases.query_all("SELECT user_id, friend_count FROM friend_counts")
        assert sorted(counts) == sorted((user, 1) for pair in pairs for user in pair)
    finally:
        server.close()
        databases.drop()
