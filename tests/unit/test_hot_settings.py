"""The hot-user settings the ranking server and precompute share: one reader, one bound
derived alike in both, and combinations that could never serve a user refused at start."""

import pytest

from common.config import ConfigError
from rank_svc.config import PrecomputeConfig, RankConfig
from tests.stack import local_env


def test_both_read_the_same_bound_from_the_same_settings():
    env = local_env() | {"STEPBOARD_PRECOMPUTE_INTERVAL_S": "20"}
    rank, precompute = RankConfig.from_env(env), PrecomputeConfig.from_env(env)
    assert rank.hot == precompute.hot
    assert (rank.hot.interval_s, rank.hot.max_age_s) == (20, 60)
    set_age = env | {"STEPBOARD_HOT_MAX_AGE_S": "45"}
    assert RankConfig.from_env(set_age).hot.max_age_s == 45 == PrecomputeConfig.from_env(
        set_age).hot.max_age_s


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"STEPBOARD_PRECOMPUTE_INTERVAL_S": "60", "STEPBOARD_HOT_MAX_AGE_S": "30"},
         "STEPBOARD_HOT_MAX_AGE_S: must be >= 60"),
        ({"STEPBOARD_HOT_FRIENDS_THRESHOLD": "100", "STEPBOARD_LIVE_RANKING_MAX_USERS": "100"},
         "STEPBOARD_LIVE_RANKING_MAX_USERS: must be >= 101"),
    ],
)
def test_a_bound_that_could_never_serve_is_refused(override, named):
    with pytest.raises(ConfigError, match=named):
        RankConfig.from_env(local_env() | override)


def test_the_live_bound_follows_a_higher_threshold():
    env = local_env() | {"STEPBOARD_HOT_FRIENDS_THRESHOLD": "50000"}
    assert RankConfig.from_env(env).live_max_users == 50_001
    assert RankConfig.from_env(local_env()).live_max_users == 20_000
