"""``python -m social_svc.bulkload`` loads a symmetric, correctly sharded graph with counts
and profiles that FriendGraph then serves."""

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import pytest

from social_svc.servicer import check_profile
from stepboard.v1 import social_pb2
from tests.harness import service_env, unique
from tests.social_support import STACK_MARIADB, ShardDatabases, SocialServer, home_of
from tests.stack import ROOT

USERS, AVG, HOT_FRIENDS = 2000, 20, 700


@pytest.fixture(scope="module")
def loaded() -> Iterator[tuple[ShardDatabases, int, str]]:
    """Fresh shards loaded by the command; yields them, the first user id and its output."""
    databases = ShardDatabases([STACK_MARIADB, STACK_MARIADB])
    first = 5_000_000_000
    command = [
        sys.executable, "-m", "social_svc.bulkload", "--users", str(USERS),
        "--avg-friends", str(AVG), "--seed", "3", "--first-id", str(first),
        "--hot-users", "2", "--hot-friends", str(HOT_FRIENDS),
    ]
    env = service_env(STEPBOARD_MYSQL_SHARD_DSNS=databases.dsns)
    try:
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr
        yield databases, first, result.stdout
    finally:
        databases.drop()


def test_loaded_graph_is_symmetric_sharded_and_counted(loaded):
    databases, first, output = loaded
    settings = databases.settings()
    edges = []
    for shard in range(2):
        rows = databases.query(shard, "SELECT user_id, friend_id FROM friendships")
        assert all(home_of(settings, user) == shard for user, _ in rows)
        edges += rows
    assert f"loaded {USERS:,} users, {len(edges):,} friendship rows" in output
    pairs = set(edges)
    assert len(pairs) == len(edges)
    assert pairs == {(b, a) for a, b in pairs}
    assert all(a != b and first <= a < first + USERS for a, b in pairs)

    degree = Counter(a for a, _ in edges)
    counts = dict(databases.query_all("SELECT user_id, friend_count FROM friend_counts"))
    assert counts == dict(degree)
    assert AVG * 0.8 <= len(edges) / USERS - 2 * 2 * HOT_FRIENDS / USERS <= AVG * 1.2
    assert sorted(degree.values())[-2] >= HOT_FRIENDS
    # Skewed: the busiest ordinary user has several times the average.
    assert sorted(degree.values())[-3] >= 3 * AVG

    profiles = databases.query_all(
        "SELECT user_id, nickname, avatar_url, cover_url FROM profiles"
    )
    assert len(profiles) == USERS
    # Every loaded profile is one UpsertProfile would accept, cover included.
    for profile in profiles:
        assert check_profile(social_pb2.Profile(
            user_id=profile[0], nickname=profile[1], avatar_url=profile[2], cover_url=profile[3]
        )) == profile
    assert all(cover.startswith("https://") for *_, cover in profiles)


def test_loaded_graph_is_served(loaded, redis_client):
    databases, first, _ = loaded
    hot = databases.query_all(
        "SELECT user_id, friend_count FROM friend_counts WHERE friend_count >= %s",
        (HOT_FRIENDS,),
    )
    namespace = unique("sg-bulk")
    server = SocialServer(databases, namespace)
    try:
        reply = server.stub.ListHotUsers(social_pb2.ListHotUsersRequest(min_friends=HOT_FRIENDS))
        assert sorted((h.user_id, h.friend_count) for h in reply.users) == sorted(hot)
        user, count = hot[0]
        chunks = server.stub.StreamFriends(social_pb2.StreamFriendsRequest(user_id=user))
        friends = [f for c in chunks for f in c.friend_ids]
        assert len(friends) == count == len(set(friends))
        for friend in friends[:20]:
            page = server.stub.ListFriends(social_pb2.ListFriendsRequest(user_id=friend,
                                                                         page_size=1000))
            assert user in page.friend_ids
        reply = server.stub.GetProfiles(social_pb2.GetProfilesRequest(user_ids=[first, user]))
        assert [p.nickname for p in reply.profiles] == [f"user {first}", f"user {user}"]
        assert all(p.cover_url.startswith("https://") for p in reply.profiles)
    finally:
        server.close()
        for key in redis_client.scan_iter(match=f"{namespace}:*", count=1000):
            redis_client.delete(key)


def test_loading_into_a_loaded_shard_needs_truncate(loaded):
    databases, _, _ = loaded
    env = service_env(STEPBOARD_MYSQL_SHARD_DSNS=databases.dsns)
    result = subprocess.run(
        [sys.executable, "-m", "social_svc.bulkload", "--users", "10"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "not empty (use --truncate)" in result.stderr
