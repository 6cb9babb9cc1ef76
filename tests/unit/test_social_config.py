"""social_svc settings: defaults, the cache switch, and errors naming the variable; the
form of the cache's entries, which rank_svc reads too."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.config import ConfigError
from common.social_cache_format import (
    CacheSettings,
    FriendList,
    decode_friends,
    decode_profile,
    encode_friends,
    encode_profile,
)
from social_svc.config import SocialConfig
from stepboard.v1 import social_pb2
from tests.stack import local_env


def test_defaults_and_overrides():
    config = SocialConfig.from_env(local_env())
    assert config.cache == CacheSettings()
    assert config.redis is not None and config.pool_wait_s == 1.0
    config = SocialConfig.from_env(local_env() | {
        "STEPBOARD_SOCIAL_CACHE_NAMESPACE": "x", "STEPBOARD_SOCIAL_CACHE_TTL_S": "30",
        "STEPBOARD_SOCIAL_CACHE_MAX_FRIENDS": "0", "STEPBOARD_SOCIAL_POOL_WAIT_S": "0.5",
    })
    assert (config.cache.namespace, config.cache.ttl_s, config.cache.max_friends) == ("x", 30, 0)
    assert config.pool_wait_s == 0.5


def test_without_cache_redis_is_not_needed():
    env = local_env() | {"STEPBOARD_SOCIAL_CACHE": "off", "STEPBOARD_REDIS_URL": ""}
    assert SocialConfig.from_env(env).redis is None
    with pytest.raises(ConfigError, match="STEPBOARD_REDIS_URL"):
        SocialConfig.from_env(env | {"STEPBOARD_SOCIAL_CACHE": "on"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STEPBOARD_SOCIAL_CACHE", "maybe"),
        ("STEPBOARD_SOCIAL_CACHE_TTL_S", "0.5"),
        ("STEPBOARD_SOCIAL_CACHE_MAX_FRIENDS", "-1"),
        ("STEPBOARD_SOCIAL_CACHE_RETRY_S", "soon"),
        ("STEPBOARD_SOCIAL_POOL_WAIT_S", "-2"),
    ],
)
def test_bad_setting_is_named(name, value):
    with pytest.raises(ConfigError, match=name):
        SocialConfig.from_env(local_env() | {name: value})


@given(st.lists(st.integers(1, 2**63 - 1), unique=True).map(sorted))
def test_a_cached_friend_list_reads_back_as_written(ids):
    assert list(decode_friends(encode_friends(FriendList(len(ids), ids))).ids) == ids
    assert decode_friends(encode_friends(FriendList(len(ids), None))) == (len(ids), None)


def test_a_cached_profile_reads_back_as_written():
    profile = social_pb2.Profile(user_id=7, nickname="Ada 🏃", avatar_url="https://a/7.png")
    assert decode_profile(encode_profile(profile)) == profile
    assert decode_profile(encode_profile(None)) is None
