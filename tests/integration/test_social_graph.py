"""FriendGraph against real MariaDB shards (two databases of the stack's server) and Redis:
symmetry and convergence, paging, replicas sharing the cache, Redis outage, validation."""

import random
import threading
from collections.abc import Iterator

import grpc
import pytest
from prometheus_client import REGISTRY

from common.social_cache_format import FRIENDS, PROFILE, CacheSettings, SocialCache, generation_key
from rank_svc.social_client import SOCIAL_CACHE_READS
from social_svc.cache import Entry, GraphCache
from stepboard.v1 import social_pb2
from tests.harness import free_port, unique
from tests.social_support import (
    ShardDatabases,
    SocialServer,
    fresh_user_base,
    home_of,
    rpc_error,
    upsert_request,
    users_on,
)

INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def namespace(redis_client) -> Iterator[str]:
    """A cache namespace of this module, emptied afterwards."""
    name = unique("sg-test")
    yield name
    for key in redis_client.scan_iter(match=f"{name}:*", count=1000):
        redis_client.delete(key)


@pytest.fixture(scope="module")
def server(databases, namespace) -> Iterator[SocialServer]:
    """A social server on the test databases with the Redis cache."""
    built = SocialServer(databases, namespace)
    yield built
    built.close()


@pytest.fixture
def split_users(databases) -> tuple[list[int], list[int]]:
    """Fresh users: five whose home is shard 0 and five on shard 1."""
    settings, base = databases.settings(), fresh_user_base()
    return users_on(settings, 0, 5, base), users_on(settings, 1, 5, base)


def friends_of(stub, user_id: int) -> list[int]:
    """The whole list through ListFriends."""
    found, token = [], ""
    while True:
        reply = stub.ListFriends(
            social_pb2.ListFriendsRequest(user_id=user_id, page_size=1000, page_token=token),
            timeout=10,
        )
        found += reply.friend_ids
        token = reply.next_page_token
        if not token:
            return found


def stored_edges(databases: ShardDatabases, users: list[int]) -> set[tuple[int, int]]:
    """Directed friendship rows of ``users`` on every shard, checked to be on their home."""
    settings = databases.settings()
    edges = set()
    for shard in range(2):
        rows = databases.query(
            shard,
            "SELECT user_id, friend_id FROM friendships WHERE user_id IN %s", (tuple(users),),
        )
        for user_id, friend_id in rows:
            edges.add((user_id, friend_id))
            assert home_of(settings, user_id) == shard, f"({user_id}, {friend_id}) off its shard"
    return edges


def stored_counts(databases: ShardDatabases, users: list[int]) -> dict[int, int]:
    """``friend_counts`` of ``users``."""
    rows = databases.query_all(
        "SELECT user_id, friend_count FROM friend_counts WHERE user_id IN %s", (tuple(users),)
    )
    return {user_id: count for user_id, count in rows if count}


def assert_consistent(databases: ShardDatabases, users: list[int]) -> set[tuple[int, int]]:
    """Every friendship is stored both ways and every count matches the rows."""
    edges = stored_edges(databases, users)
    assert edges == {(b, a) for a, b in edges}
    counts: dict[int, int] = {}
    for user_id, _ in edges:
        counts[user_id] = counts.get(user_id, 0) + 1
    assert stored_counts(databases, users) == counts
    return edges


def test_friendship_is_symmetric_across_shards_and_idempotent(server, databases, split_users):
    a, b = split_users[0][0], split_users[1][0]
    for _ in range(2):
        server.stub.AddFriendship(social_pb2.AddFriendshipRequest(user_id=a, friend_id=b))
        assert assert_consistent(databases, [a, b]) == {(a, b), (b, a)}
        assert friends_of(server.stub, a) == [b]
        assert friends_of(server.stub, b) == [a]
    for _ in range(2):
        server.stub.RemoveFriendship(social_pb2.RemoveFriendshipRequest(user_id=b, friend_id=a))
        assert assert_consistent(databases, [a, b]) == set()
        assert friends_of(server.stub, a) == friends_of(server.stub, b) == []


def test_repeated_and_interleaved_changes_converge(server, databases, split_users):
    users = split_users[0] + split_users[1]
    pairs = [(a, b) for i, a in enumerate(users) for b in users[i + 1:]]
    rng = random.Random(4)
    operations = [(rng.choice(pairs), rng.random() < 0.6) for _ in range(400)]

    def apply(ops) -> None:
        for (a, b), add in ops:
            if rng.random() < 0.5:
                a, b = b, a
            if add:
                server.stub.AddFriendship(social_pb2.AddFriendshipRequest(user_id=a, friend_id=b))
            else:
                server.stub.RemoveFriendship(
                    social_pb2.RemoveFriendshipRequest(user_id=a, friend_id=b)
                )

    # Concurrent: whichever change of a pair lands last wins, but both sides always agree.
    threads = [threading.Thread(target=apply, args=(operations[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert_consistent(databases, users)

    # Sequential: the result is exactly the last change of every pair.
    apply(operations)
    expected: dict[tuple[int, int], bool] = {}
    for pair, add in operations:
        expected[pair] = add
    edges = assert_consistent(databases, users)
    assert edges == {e for (a, b), add in expected.items() if add for e in ((a, b), (b, a))}
    for user in users:
        assert friends_of(server.stub, user) == sorted(b for a, b in edges if a == user)


def test_retry_after_partial_cross_shard_write_converges(server, databases, split_users):
    a, b = split_users[0][1], split_users[1][1]
    # What a failure between the two commits leaves: a's side only, b's side only.
    databases.query(0, "INSERT INTO friendships (user_id, friend_id) VALUES (%s, %s)", (a, b))
    databases.query(0, "INSERT INTO friend_counts VALUES (%s, 1)", (a,))
    server.stub.AddFriendship(social_pb2.AddFriendshipRequest(user_id=b, friend_id=a))
    assert assert_consistent(databases, [a, b]) == {(a, b), (b, a)}
    assert stored_counts(databases, [a, b]) == {a: 1, b: 1}

    databases.query(1, "DELETE FROM friendships WHERE user_id = %s", (b,))
    databases.query(1, "UPDATE friend_counts SET friend_count = 0 WHERE user_id = %s", (b,))
    server.stub.RemoveFriendship(social_pb2.RemoveFriendshipRequest(user_id=a, friend_id=b))
    assert assert_consistent(databases, [a, b]) == set()
    assert friends_of(server.stub, a) == friends_of(server.stub, b) == []


def insert_friends(databases: ShardDatabases, user_id: int, friends: list[int]) -> None:
    """Stores ``user_id``'s side of many friendships directly (paging only reads that side)."""
    shard = home_of(databases.settings(), user_id)
    for start in range(0, len(friends), 2000):
        rows = [(user_id, f) for f in friends[start:start + 2000]]
        values = ", ".join(["(%s, %s)"] * len(rows))
        databases.query(
            shard, f"INSERT INTO friendships (user_id, friend_id) VALUES {values}",
            tuple(x for row in rows for x in row),
        )
    databases.query(shard, "INSERT INTO friend_counts VALUES (%s, %s)", (user_id, len(friends)))


@pytest.fixture(scope="module")
def big_user(databases) -> tuple[int, list[int]]:
    """A user with 10,000 friends (spread, not contiguous ids)."""
    user_id = fresh_user_base()
    friends = sorted(random.Random(9).sample(range(user_id + 1, user_id + 10**6), 10_000))
    insert_friends(databases, user_id, friends)
    return user_id, friends


@pytest.fixture(params=["cached list", "too long to cache", "no cache"])
def any_server(request, server, databases, namespace) -> Iterator[SocialServer]:
    """The module's server, or one that pages from MySQL (list over the cache limit or no
    cache at all)."""
    if request.param == "cached list":
        yield server
        return
    overrides = (
        {"STEPBOARD_SOCIAL_CACHE_MAX_FRIENDS": "100"} if request.param == "too long to cache"
        else {"STEPBOARD_SOCIAL_CACHE": "false"}
    )
    other = SocialServer(databases, namespace + request.param.replace(" ", "-"), **overrides)
    yield other
    other.close()


@pytest.mark.parametrize("page_size", [1000, 333])
def test_pagination_returns_each_of_10000_friends_once(any_server, big_user, page_size):
    user_id, friends = big_user
    seen, token, pages = [], "", 0
    while True:
        reply = any_server.stub.ListFriends(
            social_pb2.ListFriendsRequest(user_id=user_id, page_size=page_size, page_token=token),
            timeout=10,
        )
        assert reply.total_count == 10_000
        assert len(reply.friend_ids) == min(page_size, 10_000 - len(seen))
        seen += reply.friend_ids
        pages += 1
        token = reply.next_page_token
        if not token:
            break
    assert seen == friends
    assert pages == -(-10_000 // page_size)


def test_stream_friends_delivers_the_whole_list_in_chunks(any_server, big_user):
    user_id, friends = big_user
    chunks = list(any_server.stub.StreamFriends(
        social_pb2.StreamFriendsRequest(user_id=user_id, chunk_size=3000), timeout=10
    ))
    assert [len(c.friend_ids) for c in chunks] == [3000, 3000, 3000, 1000]
    assert [f for c in chunks for f in c.friend_ids] == friends


def test_page_token_cannot_read_another_users_list(server, big_user, split_users):
    user_id, _ = big_user
    first = server.stub.ListFriends(social_pb2.ListFriendsRequest(user_id=user_id, page_size=10))
    other = split_users[0][0]
    for token in (first.next_page_token, "not-a-token", first.next_page_token[:-2]):
        error = rpc_error(
            server.stub.ListFriends,
            social_pb2.ListFriendsRequest(user_id=other, page_token=token),
        )
        assert error.code() == INVALID
        assert error.details().startswith("page_token:")
    hot = server.stub.ListHotUsers(social_pb2.ListHotUsersRequest(min_friends=1, page_size=1))
    error = rpc_error(
        server.stub.ListFriends,
        social_pb2.ListFriendsRequest(user_id=user_id, page_token=hot.next_page_token),
    )
    assert error.code() == INVALID


def test_replicas_see_each_others_changes(databases, namespace, split_users):
    a, b, c = split_users[0][2], split_users[1][2], split_users[1][3]
    one, two = SocialServer(databases, namespace), SocialServer(databases, namespace)
    try:
        one.stub.AddFriendship(social_pb2.AddFriendshipRequest(user_id=a, friend_id=b))
        one.stub.UpsertProfile(upsert_request(user_id=c, nickname="before"))
        for stub in (one.stub, two.stub):  # both caches warm
            assert friends_of(stub, a) == [b]
            assert [p.nickname for p in stub.GetProfiles(
                social_pb2.GetProfilesRequest(user_ids=[c])).profiles] == ["before"]
        one.stub.AddFriendship(social_pb2.AddFriendshipRequest(user_id=a, friend_id=c))
        assert friends_of(two.stub, a) == sorted([b, c])
        assert friends_of(two.stub, c) == [a]
        two.stub.RemoveFriendship(social_pb2.RemoveFriendshipRequest(user_id=b, friend_id=a))
        assert friends_of(one.stub, a) == [c]
        assert friends_of(one.stub, b) == []
        one.stub.UpsertProfile(upsert_request(user_id=c, nickname="after"))
        reply = two.stub.GetProfiles(social_pb2.GetProfilesRequest(user_ids=[c]))
        assert [p.nickname for p in reply.profiles] == ["after"]
    finally:
        one.close()
        two.close()


def test_every_change_gives_both_lists_a_new_generation(server, namespace, redis_client,
                                                        split_users):
    """rank_svc keeps a friend list while its generation is unchanged, so a change must
    never leave a generation it held before: not even once the generation expired (a
    counter recreated after its expiry would start again where a reader saw it)."""
    a, b = split_users[0][4], split_users[1][0]
    keys = [generation_key(namespace, FRIENDS, user) for user in (a, b)]
    seen: set[bytes] = set()
    changes = [(server.stub.AddFriendship, social_pb2.AddFriendshipRequest),
               (server.stub.RemoveFriendship, social_pb2.RemoveFriendshipRequest)] * 2
    for change, request in changes:
        change(request(user_id=a, friend_id=b), timeout=5)
        generations = redis_client.mget(keys)
        assert None not in generations and not seen & set(generations)
        seen |= set(generations)
        redis_client.delete(*keys)  # as if they expired


def test_rank_svc_reads_what_social_svc_cached(server, namespace, redis_client, split_users):
    """rank_svc's read-only view of the cache (``SocialCache``) finds the list and profiles
    social_svc's answers cached, the list with its current generation, and nothing once a
    change dropped the list; every read is counted as a hit or a miss."""
    a, b = split_users[0][0], split_users[1][0]
    profile = social_pb2.Profile(user_id=a, nickname="Ada", avatar_url="https://a/ada.png")
    server.stub.AddFriendship(social_pb2.AddFriendshipRequest(user_id=a, friend_id=b), timeout=5)
    server.stub.UpsertProfile(social_pb2.UpsertProfileRequest(profile=profile), timeout=5)
    shared = SocialCache(redis_client, namespace, SOCIAL_CACHE_READS)

    def reads(kind: str, result: str) -> float:
        return REGISTRY.get_sample_value(
            "stepboard_rank_social_cache_reads_total", {"kind": kind, "result": result}) or 0.0

    before = {(k, r): reads(k, r) for k in (FRIENDS, PROFILE) for r in ("hit", "miss")}
    assert shared.friends(a)[1] is None  # nobody asked for the list since the change
    assert shared.profiles([a, b]) == {}
    assert friends_of(server.stub, a) == [b]
    server.stub.GetProfiles(social_pb2.GetProfilesRequest(user_ids=[a, b]), timeout=5)
    generation, listed = shared.friends(a)
    assert listed is not None and list(listed.ids) == [b]
    assert generation == redis_client.get(generation_key(namespace, FRIENDS, a))
    assert shared.profiles([a, b]) == {a: profile, b: None}  # b is known to have none
    server.stub.RemoveFriendship(social_pb2.RemoveFriendshipRequest(user_id=a, friend_id=b),
                                 timeout=5)
    changed, listed = shared.friends(a)
    assert listed is None and changed not in (None, generation)
    counted = {key: reads(*key) - value for key, value in before.items()}
    assert counted == {(FRIENDS, "hit"): 1, (FRIENDS, "miss"): 2,
                       (PROFILE, "hit"): 2, (PROFILE, "miss"): 2}


def test_a_fill_read_before_a_change_never_lands(redis_client, namespace):
    """A reader that missed fills with the generation it read; a change in between (new
    generation, entry dropped) makes that fill a no-op, the next one lands."""
    cache = GraphCache(redis_client, CacheSettings(namespace=namespace))
    user = fresh_user_base()
    (miss,) = cache.lookup(FRIENDS, [user])
    assert miss.value is None
    cache.invalidate(FRIENDS, [user])  # a write committed after the reader's rows
    cache.fill(FRIENDS, [(user, miss.generation, b"rows from before the write")])
    (again,) = cache.lookup(FRIENDS, [user])
    assert again.value is None and again.generation != miss.generation
    cache.fill(FRIENDS, [(user, again.generation, b"rows from after it")])
    assert cache.lookup(FRIENDS, [user]) == [Entry(b"rows from after it", b"")]


def test_redis_outage_falls_back_to_mysql(databases, split_users):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    down = SocialServer(databases, unique("sg-down"), STEPBOARD_REDIS_URL=closed)
    a, b = split_users[0][3], split_users[1][4]
    try:
        stub = down.stub
        for _ in range(2):
            stub.AddFriendship(social_pb2.AddFriendshipRequest(user_id=a, friend_id=b), timeout=5)
            assert friends_of(stub, a) == [b]
            stub.UpsertProfile(upsert_request(user_id=a, nickname="no cache"), timeout=5)
            reply = stub.GetProfiles(social_pb2.GetProfilesRequest(user_ids=[a, b]), timeout=5)
            assert [p.nickname for p in reply.profiles] == ["no cache"]
            chunks = stub.StreamFriends(social_pb2.StreamFriendsRequest(user_id=b), timeout=5)
            assert [f for c in chunks for f in c.friend_ids] == [a]
        stub.RemoveFriendship(social_pb2.RemoveFriendshipRequest(user_id=a, friend_id=b))
        assert friends_of(stub, b) == []
    finally:
        down.close()


def test_profiles_are_batched_in_request_order(server, split_users):
    users = split_users[0][:3] + split_users[1][:3]
    for user in users[::2]:
        server.stub.UpsertProfile(upsert_request(
            user_id=user, nickname=f"n{user} ✓", avatar_url=f"https://a.example/{user}.png"
        ))
    wanted = [*reversed(users), users[0], 999]
    for _ in range(2):  # from MySQL, then from the cache
        reply = server.stub.GetProfiles(social_pb2.GetProfilesRequest(user_ids=wanted))
        assert [(p.user_id, p.nickname, p.avatar_url) for p in reply.profiles] == [
            (u, f"n{u} ✓", f"https://a.example/{u}.png") for u in reversed(users[::2])
        ]
    replaced = server.stub.UpsertProfile(upsert_request(user_id=users[0], nickname="x")).profile
    assert (replaced.nickname, replaced.avatar_url) == ("x", "")
    reply = server.stub.GetProfiles(social_pb2.GetProfilesRequest(user_ids=[users[0]]))
    assert reply.profiles == [replaced]


def test_a_cover_is_stored_replaced_and_a_bad_one_changes_nothing(server, databases,
                                                                   split_users):
    """``cover_url`` goes with the profile (through the cache too); a bad one is
    INVALID_ARGUMENT naming ``profile.cover_url`` and leaves the stored profile, and its cached
    copy, as they were."""
    user = split_users[1][2]

    def served() -> list[social_pb2.Profile]:
        reply = server.stub.GetProfiles(social_pb2.GetProfilesRequest(user_ids=[user]))
        return list(reply.profiles)

    def upserted(profile: social_pb2.Profile) -> social_pb2.Profile:
        request = social_pb2.UpsertProfileRequest(profile=profile)
        return server.stub.UpsertProfile(request, timeout=5).profile

    first = social_pb2.Profile(user_id=user, nickname="Grace", avatar_url="https://a/g.png",
                               cover_url="https://covers.example/g.jpg")
    assert upserted(first) == first
    assert served() == served() == [first]  # from MySQL, then from the cache
    for bad in ("http://covers.example/g.jpg", "https://", "https://c/é.jpg", "ftp://c/x"):
        error = rpc_error(server.stub.UpsertProfile, upsert_request(
            user_id=user, nickname="Changed", cover_url=bad), timeout=5)
        assert error.code() == INVALID
        assert error.details().startswith("profile.cover_url: "), error.details()
        assert served() == [first]
    stored = databases.query(home_of(databases.settings(), user),
                             "SELECT nickname, cover_url FROM profiles WHERE user_id = %s",
                             (user,))
    assert stored == [("Grace", "https://covers.example/g.jpg")]
    second = social_pb2.Profile(user_id=user, nickname="Grace",
                                cover_url="https://covers.example/g2.jpg")
    assert upserted(second) == second
    assert served() == [second]
    cleared = social_pb2.Profile(user_id=user, nickname="Grace")
    assert upserted(cleared) == cleared
    assert served() == [cleared]


HOSTILE_NICKNAMES = [
    "Robert'); DROP TABLE profiles;--",
    '" OR 1=1 -- \\',
    "nul\x00inside",
    "\U0001d4e2\U0001d4fd 4-byte \U0001f3c3\u200d\u2640\ufe0f\U0001f4af",
    "%s %(user_id)s {0} ${x} `id`",
]


def test_hostile_strings_round_trip_as_data(server, split_users):
    users = split_users[0][:3] + split_users[1][:2]
    for user, nickname in zip(users, HOSTILE_NICKNAMES, strict=True):
        stored = server.stub.UpsertProfile(upsert_request(user_id=user, nickname=nickname))
        assert stored.profile.nickname == nickname
    for _ in range(2):  # from MySQL, then from the cache
        reply = server.stub.GetProfiles(social_pb2.GetProfilesRequest(user_ids=users))
        assert [p.nickname for p in reply.profiles] == HOSTILE_NICKNAMES


def test_hot_users_are_listed_page_by_page(databases, server):
    base = fresh_user_base()
    settings = databases.settings()
    counts = {}
    for shard in range(2):
        for i, user in enumerate(users_on(settings, shard, 6, base)):
            counts[user] = 10 + 100 * (i % 2)
            databases.query(shard, "INSERT INTO friend_counts VALUES (%s, %s)",
                            (user, counts[user]))
    hot = {u: c for u, c in counts.items() if c >= 100}
    listed, token = [], ""
    while True:
        reply = server.stub.ListHotUsers(
            social_pb2.ListHotUsersRequest(min_friends=100, page_size=2, page_token=token)
        )
        listed += [(h.user_id, h.friend_count) for h in reply.users]
        token = reply.next_page_token
        if not token:
            break
    mine = [(u, c) for u, c in listed if u in counts]
    assert sorted(mine) == sorted(hot.items())
    by_shard = [[u for u, _ in mine if home_of(settings, u) == s]
                for s in range(2)]
    assert [u for u, _ in mine] == sorted(by_shard[0]) + sorted(by_shard[1])
    assert all(c >= 100 for _, c in listed)


def _cases(user: int, other: int):
    longest_url = "https://a.example/" + "x" * 494
    return [
        ("AddFriendship", social_pb2.AddFriendshipRequest(user_id=0, friend_id=other), "user_id"),
        ("AddFriendship", social_pb2.AddFriendshipRequest(user_id=-user, friend_id=other),
         "user_id"),
        ("AddFriendship", social_pb2.AddFriendshipRequest(user_id=user, friend_id=0), "friend_id"),
        ("AddFriendship", social_pb2.AddFriendshipRequest(user_id=user, friend_id=user),
         "friend_id"),
        ("RemoveFriendship", social_pb2.RemoveFriendshipRequest(user_id=0, friend_id=other),
         "user_id"),
        ("RemoveFriendship", social_pb2.RemoveFriendshipRequest(user_id=user, friend_id=-1),
         "friend_id"),
        ("RemoveFriendship", social_pb2.RemoveFriendshipRequest(user_id=user, friend_id=user),
         "friend_id"),
        ("ListFriends", social_pb2.ListFriendsRequest(user_id=0), "user_id"),
        ("ListFriends", social_pb2.ListFriendsRequest(user_id=user, page_size=-1), "page_size"),
        ("ListFriends", social_pb2.ListFriendsRequest(user_id=user, page_size=1001), "page_size"),
        ("ListFriends", social_pb2.ListFriendsRequest(user_id=user, page_token="@@"),
         "page_token"),
        ("StreamFriends", social_pb2.StreamFriendsRequest(user_id=0), "user_id"),
        ("StreamFriends", social_pb2.StreamFriendsRequest(user_id=user, chunk_size=10_001),
         "chunk_size"),
        ("UpsertProfile", social_pb2.UpsertProfileRequest(), "profile"),
        ("UpsertProfile", upsert_request(user_id=0, nickname="a"), "profile.user_id"),
        ("UpsertProfile", upsert_request(user_id=user, nickname=""), "profile.nickname"),
        ("UpsertProfile", upsert_request(user_id=user, nickname="é" * 65), "profile.nickname"),
        ("UpsertProfile", upsert_request(user_id=user, nickname="a",
                                         avatar_url="http://a.example/x.png"),
         "profile.avatar_url"),
        ("UpsertProfile", upsert_request(user_id=user, nickname="a", avatar_url="https://"),
         "profile.avatar_url"),
        ("UpsertProfile", upsert_request(user_id=user, nickname="a",
                                         avatar_url=longest_url + "x"), "profile.avatar_url"),
        ("UpsertProfile", upsert_request(user_id=user, nickname="a",
                                         avatar_url="https://a.example/é.png"),
         "profile.avatar_url"),
        ("UpsertProfile", upsert_request(user_id=user, nickname="a",
                                         cover_url="http://a.example/c.jpg"), "profile.cover_url"),
        ("UpsertProfile", upsert_request(user_id=user, nickname="a", cover_url="https://"),
         "profile.cover_url"),
        ("UpsertProfile", upsert_request(user_id=user, nickname="a",
                                         cover_url=longest_url + "x"), "profile.cover_url"),
        ("UpsertProfile", upsert_request(user_id=user, nickname="a",
                                         cover_url="https://a.example/a b.jpg"),
         "profile.cover_url"),
        ("GetProfiles", social_pb2.GetProfilesRequest(user_ids=[user, 0]), "user_ids"),
        ("GetProfiles", social_pb2.GetProfilesRequest(user_ids=range(1, 1002)), "user_ids"),
        ("ListHotUsers", social_pb2.ListHotUsersRequest(min_friends=0), "min_friends"),
        ("ListHotUsers", social_pb2.ListHotUsersRequest(min_friends=5, page_size=1001),
         "page_size"),
        ("ListHotUsers", social_pb2.ListHotUsersRequest(min_friends=5, page_token="bad"),
         "page_token"),
    ]


def test_every_invalid_request_names_its_field_and_writes_nothing(server, databases, split_users):
    user, other = split_users[0][4], split_users[1][0]
    for method, request, field in _cases(user, other):
        call = getattr(server.stub, method)
        if method == "StreamFriends":
            error = rpc_error(lambda c=call, r=request: list(c(r, timeout=5)))
        else:
            error = rpc_error(call, request, timeout=5)
        assert error.code() == INVALID, (method, request)
        assert error.details().startswith(f"{field}:"), (method, field, error.details())
    ids = (user, other, -user)
    for table in ("friendships", "friend_counts", "profiles"):
        rows = databases.query_all(f"SELECT user_id FROM {table} WHERE user_id IN %s", (ids,))
        assert rows == [], table


def test_limits_are_inclusive(server, split_users):
    user = split_users[1][1]
    longest = social_pb2.Profile(
        user_id=user, nickname="👍" * 64, avatar_url="https://a.example/" + "x" * 494,
        cover_url="https://c.example/" + "y" * 494,
    )
    assert len(longest.avatar_url) == len(longest.cover_url) == 512
    request = social_pb2.UpsertProfileRequest(profile=longest)
    assert server.stub.UpsertProfile(request).profile == longest
    batch = social_pb2.GetProfilesRequest(user_ids=range(user, user + 1000))
    reply = server.stub.GetProfiles(batch)
    assert list(reply.profiles) == [longest]
    reply = server.stub.ListFriends(social_pb2.ListFriendsRequest(user_id=user, page_size=1000))
    assert (list(reply.friend_ids), reply.next_page_token) == ([], "")
