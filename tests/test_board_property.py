"""Property: any order, batching and redelivery of reports gives the model's board."""

import itertools
import uuid
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.reports import day_start
from rank_svc.board import BoardSettings, BoardStore, decode_score, encode_score
from tests.model import BoardModel

DAY = date(2026, 11, 29)
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
    finally:
        store.drop_day(DAY)
