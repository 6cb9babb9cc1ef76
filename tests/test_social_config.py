"""social_svc settings: defaults, the cache switch, and errors naming the variable."""

import pytest

from common.config import ConfigError
from common.social_cache import CacheSettings
from social_svc.config import SocialConfig
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
