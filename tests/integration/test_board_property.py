"""Properties of the board store on the real Redis: any order, batching and redelivery of
reports gives the model's board (the pure parts of the format: tests/unit/test_board_format.py)."""

import itertools
import uuid

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.report_rules import day_start
from rank_svc.board_format import BoardSettings, decode_score, encode_score
from tests.board_store import BoardStore
from tests.harness import today
from tests.model import BoardModel

# Today: the store sets each board's expiry, so a day past its retention is gone at once.
DAY = today()
START_S = int(day_start(DAY).timestamp())

reports = st.lists(
    st.tuples(
        st.integers(1, 25),                                   # user_id: few, so users repeat
        st.sampled_from([0, 1, 500, 500, 1000, 99_999]),      # steps: ties are common
        st.sampled_from([0, 1, 1, 7, 179_999]),               # second: ties are common
    ),
    min_size=1,
    max_size=60,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    first=reports,
    redelivered=st.lists(st.integers(0, 59), max_size=20),
    batch_cuts=st.lists(st.integers(1, 80), max_size=6),
    limit=st.integers(1, 30),
    shards=st.integers(1, 5),
)
def test_board_equals_model_whatever_the_delivery(
    redis_client, first, redelivered, batch_cuts, limit, shards
):
    deliveries = first + [first[i % len(first)] for i in redelivered]
    model = BoardModel()
    model.add_all((DAY, u, s, t) for u, s, t in deliveries)
    store = BoardStore(
        redis_client, BoardSettings(shards=shards, namespace=f"prop-{uuid.uuid4().hex[:8]}")
    )
    try:
        cuts = sorted({0, len(deliveries), *(c % (len(deliveries) + 1) for c in batch_cuts)})
        for start, end in itertools.pairwise(cuts):
            batch: dict = {}
            for user_id, steps, second in deliveries[start:end]:
                score = encode_score(DAY, steps, START_S + second)
                batch[(DAY, user_id)] = max(batch.get((DAY, user_id), -1), score)
            assert store.apply(batch, {}) == set()

        expected = model.ranking(DAY)
        top, total = store.top(DAY, limit)
        assert total == len(expected)
        assert [
            (r.user_id, *decode_score(DAY, r.score)) for r in top
        ] == [(u, s, START_S + t) for u, s, t in expected[:limit]]
        for position, (user_id, steps, second) in enumerate(expected, 1):
            rank, score, participants = store.rank(DAY, user_id)
            assert (rank, decode_score(DAY, score), participants) == (
                position, (steps, START_S + second), len(expected)
            )
        assert store.rank(DAY, 26) is None
        scores = {u: encode_score(DAY, s, START_S + t) for u, s, t in expected}
        assert store.scores(DAY, range(1, 27)) == {u: scores.get(u) for u in range(1, 27)}
        watched = f"{store.settings.namespace}:watched"
        redis_client.set(watched, b"token")
        members = store.members(range(1, 27))
        in_order = [scores.get(u) for u in members.ids]
        assert store.read_scores(DAY, members, watched) == (in_order, b"token")
        assert store.read_scores(DAY, members, watched + ":absent") == (in_order, None)
    finally:
        store.drop_day(DAY)
        redis_client.delete(f"{store.settings.namespace}:watched")


def test_a_failed_score_read_leaves_no_reply_behind_on_its_connection(redis_client):
    """An error reply to the first of several packed ``ZMSCORE``s fails the read and drops
    the connection: the next read on the pool gets its own replies, not the rest of these."""
    namespace = f"err-{uuid.uuid4().hex[:8]}"
    store = BoardStore(redis_client, BoardSettings(shards=4, namespace=namespace))
    scores = {u: encode_score(DAY, u, START_S + u) for u in range(1, 41)}
    try:
        assert store.apply({(DAY, u): s for u, s in scores.items()}, {}) == set()
        members = store.members(scores)
        assert len(members.shards) == 4
        broken = store.board_key(DAY, members.shards[0])
        redis_client.rename(broken, f"{namespace}:aside")
        redis_client.set(broken, "not a board")
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            store.read_scores(DAY, members)
        redis_client.rename(f"{namespace}:aside", broken)
        assert store.read_scores(DAY, members)[0] == [scores[u] for u in members.ids]
    finally:
        store.drop_day(DAY)
        redis_client.delete(f"{namespace}:aside")
