"""Precompute replicas side by side: two refreshing one hot user at once, while the user's
friend list changes every second, publish consistent rankings only (the rows of one
computation, its total, the user at ``me``), never an interleaving of two; and a refresh
that fails for one user does not stop the round."""

import threading
import time
from urllib.parse import urlsplit

from prometheus_client import REGISTRY

from common.redis_clients import RedisSettings, create_redis
from rank_svc.config import PrecomputeConfig
from rank_svc.friend_ranking import next_token
from rank_svc.hot_rankings import HotRankings
from rank_svc.precompute import Precomputer
from stepboard.v1 import ranking_pb2, social_pb2
from tests.harness import service_env, start_process, today, unique, wait_until
from tests.integration.test_hot_users import hot_path, precomputed
from tests.social_support import (
    STACK_MARIADB,
    ShardDatabases,
    SocialServer,
    fresh_user_base,
    load_hot_user,
    the_hot_user,
)

HOT_FRIENDS = 25_000  # three chunks of staging writes (hot_rankings._CHUNK)
PAGE = 300  # pages at 9,900 and 19,800 straddle the chunk boundaries
READ_FOR_S = 25


def page_problem(
    reply: ranking_pb2.GetFriendRankingResponse, start: int, members: list[int], hot: int,
    extras: set[int],
) -> str | None:
    """What makes ``reply`` (the page from ``start``) other than a page of one computation
    of the ranking of ``members`` (sorted; nobody has a report, so the order is by id) plus
    any of ``extras`` (friends added and removed during the run, all after ``members``);
    None if nothing does."""
    ids = [e.user_id for e in reply.entries]
    added = reply.total - len(members)
    if not 0 <= added <= 2:
        return f"total {reply.total} for {len(members)} members and at most 2 extras"
    if len(ids) != min(PAGE, reply.total - start):
        return f"{len(ids)} rows from {start} of a ranking of {reply.total}"
    if [e.rank for e in reply.entries] != list(range(start + 1, start + 1 + len(ids))):
        return "ranks not consecutive from the page's start"
    tail = [i for i in ids if i in extras]
    head = ids[:len(ids) - len(tail)]
    if head != members[start:start + len(head)] or tail != sorted(tail):
        return f"rows {ids[:3]}..{ids[-3:]} are not the ranking's rows from {start}"
    if (reply.me.user_id, reply.me.rank) != (hot, members.index(hot) + 1):
        return f"me is {reply.me.user_id} at {reply.me.rank}"
    return None


def test_two_replicas_never_interleave_a_ranking():
    databases = ShardDatabases([STACK_MARIADB, STACK_MARIADB])
    base = load_hot_user(databases, HOT_FRIENDS, seed=11)
    path = hot_path(databases, threshold=HOT_FRIENDS // 2, interval_s=0.2,
                    STEPBOARD_HOT_MAX_AGE_S="120")
    stop = threading.Event()
    try:
        hot, friends = the_hot_user(path.social, HOT_FRIENDS)
        members = sorted({*friends, hot.user_id})
        extras = {base + 10 * HOT_FRIENDS + k for k in range(READ_FOR_S * 4)}
        day = today()
        replicas = [start_process("rank_svc.precompute", path.env) for _ in range(2)]
        path.consumers += replicas  # stopped with the path

        first_page = ranking_pb2.GetFriendRankingRequest(
            user_id=hot.user_id, day=day.isoformat(), page_size=PAGE)
        wait_until(lambda: precomputed(path, first_page), 120, 0.5)

        def change_friends() -> None:
            """Every second: the last extra friend removed, the next one added."""
            previous = None
            for extra in sorted(extras):
                if stop.wait(1.0):
                    return
                if previous is not None:
                    path.social.RemoveFriendship(social_pb2.RemoveFriendshipRequest(
                        user_id=hot.user_id, friend_id=previous), timeout=10)
                path.social.AddFriendship(social_pb2.AddFriendshipRequest(
                    user_id=hot.user_id, friend_id=extra), timeout=10)
                previous = extra

        changer = threading.Thread(target=change_friends, daemon=True)
        changer.start()
        starts = [0, 9_900, 19_800, 24_900]
        problems, computed, totals, reads = [], set(), set(), 0
        deadline = time.monotonic() + READ_FOR_S
        while time.monotonic() < deadline:
            start = starts[reads % len(starts)]
            token = next_token(hot.user_id, day, start - PAGE, PAGE, len(members)) if start else ""
            reply = path.ranking.GetFriendRanking(ranking_pb2.GetFriendRankingRequest(
                user_id=hot.user_id, day=day.isoformat(), page_size=PAGE, page_token=token),
                timeout=30)
            reads += 1
            assert reply.HasField("computed_at")  # served precomputed: too large to rank
            computed.add(reply.computed_at.seconds)
            totals.add(reply.total)
            if (problem := page_problem(reply, start, members, hot.user_id, extras)):
                problems.append((start, reply.computed_at.seconds, problem))
        stop.set()
        changer.join(15)
        assert not problems, f"{len(problems)} of {reads} pages inconsistent: {problems[:5]}"
        # not vacuous: the friend list changed under the readers, and they saw many refreshes
        assert len(totals) > 1 and len(computed) >= READ_FOR_S // 3, (totals, computed)
        for replica in replicas:
            assert replica.poll() is None, replica.log_path.read_text()[-2000:]
    finally:
        stop.set()
        path.close()
        databases.drop()


def test_a_user_whose_refresh_fails_does_not_stop_the_round():
    """Redis refuses every write of one hot user's refresh (an ACL): that user's refresh
    fails, is counted, and the round goes on to refresh the next user."""
    databases = ShardDatabases([STACK_MARIADB, STACK_MARIADB])
    cache_namespace = unique("sg")
    social = SocialServer(databases, cache_namespace)
    env = service_env(
        STEPBOARD_BOARD_NAMESPACE=unique("ns"),
        STEPBOARD_SOCIAL_CACHE_NAMESPACE=cache_namespace,
        STEPBOARD_HOT_FRIENDS_THRESHOLD="3",
        STEPBOARD_SOCIAL_ADDR=f"127.0.0.1:{social.built.port}",
    )
    config = PrecomputeConfig.from_env(env)
    admin = create_redis(config.redis)
    acl_user = unique("precompute")
    try:
        base = fresh_user_base()
        for user in (base + 100, base + 200):
            for friend in range(user + 1, user + 5):
                social.stub.AddFriendship(
                    social_pb2.AddFriendshipRequest(user_id=user, friend_id=friend), timeout=10
                )
        failing, other = Precomputer(config, admin, social.stub).hot_users()
        namespace = config.board.namespace
        admin.execute_command(
            "ACL", "SETUSER", acl_user, "on", ">secret", "resetkeys", "%R~*",
            f"~{namespace}:hotlock:{{u{other}}}", f"~{namespace}:hot:{{{other}}}:*", "+@all",
        )
        address = urlsplit(config.redis.url)
        limited = RedisSettings.from_env(env | {
            "STEPBOARD_REDIS_URL": f"redis://{acl_user}:secret@{address.netloc}{address.path}"
        })
        failed_before = REGISTRY.get_sample_value(
            "stepboard_precompute_refreshes_total", {"outcome": "failed"}) or 0
        precomputer = Precomputer(config, create_redis(limited), social.stub)

        assert precomputer.run_once() == 1
        rankings = HotRankings(admin, namespace, config.board.retention_days)
        assert rankings.page(other, today(), 0, 10, None).total == 5
        assert rankings.page(failing, today(), 0, 10, None) is None
        assert REGISTRY.get_sample_value(
            "stepboard_precompute_refreshes_total", {"outcome": "failed"}) == failed_before + 1
    finally:
        admin.execute_command("ACL", "DELUSER", acl_user)
        social.close()
        databases.drop()
