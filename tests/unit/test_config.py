"""Configuration errors name the variable and stop the process at start."""

import subprocess
import sys

import pytest

from common.config import ConfigError, LogSettings
from common.mysql_pools import MySQLSettings
from common.redis_clients import RedisSettings
from ingest_svc.config import IngestConfig
from rank_svc.config import RankConfig
from social_svc.config import SocialConfig
from tests.stack import ROOT, local_env


@pytest.mark.parametrize(
    ("read", "override", "named"),
    [
        (IngestConfig.from_env, {"STEPBOARD_KAFKA_BOOTSTRAP": ""}, "STEPBOARD_KAFKA_BOOTSTRAP"),
        (IngestConfig.from_env, {"STEPBOARD_GRPC_PORT": "http"}, "STEPBOARD_GRPC_PORT"),
        (IngestConfig.from_env, {"STEPBOARD_GRPC_PORT": "70000"}, "STEPBOARD_GRPC_PORT"),
        (IngestConfig.from_env, {"STEPBOARD_GRACE_SECONDS": "-1"}, "STEPBOARD_GRACE_SECONDS"),
        (IngestConfig.from_env, {"STEPBOARD_AUTH_TOKENS": "nocolon"}, "STEPBOARD_AUTH_TOKENS"),
        (IngestConfig.from_env, {"STEPBOARD_TLS_CERT_FILE": "/x.pem"}, "STEPBOARD_TLS_KEY_FILE"),
        (RankConfig.from_env, {"STEPBOARD_SOCIAL_ADDR": ""}, "STEPBOARD_SOCIAL_ADDR"),
        (RankConfig.from_env, {"STEPBOARD_REDIS_MODE": "memcached"}, "STEPBOARD_REDIS_MODE"),
        (RankConfig.from_env, {"STEPBOARD_REDIS_URL": ""}, "STEPBOARD_REDIS_URL"),
        (SocialConfig.from_env, {"STEPBOARD_MYSQL_SHARD_DSNS": "pg://x/y"},
         "STEPBOARD_MYSQL_SHARD_DSNS"),
        (SocialConfig.from_env, {"STEPBOARD_MYSQL_SHARD_MAP": "0-10:0"},
         "STEPBOARD_MYSQL_SHARD_MAP"),
        (LogSettings.from_env, {"STEPBOARD_LOG_LEVEL": "loud"}, "STEPBOARD_LOG_LEVEL"),
    ],
)
def test_bad_setting_is_named_in_the_error(read, override, named):
    env = local_env() | override
    with pytest.raises(ConfigError, match=named):
        read(env)


def test_cluster_mode_needs_nodes_and_sentinel_mode_needs_sentinels():
    with pytest.raises(ConfigError, match="STEPBOARD_REDIS_CLUSTER_NODES"):
        RedisSettings.from_env({"STEPBOARD_REDIS_MODE": "cluster"})
    with pytest.raises(ConfigError, match="STEPBOARD_REDIS_SENTINELS"):
        RedisSettings.from_env({"STEPBOARD_REDIS_MODE": "sentinel"})
    with pytest.raises(ConfigError, match="expected host:port"):
        RedisSettings.from_env(
            {"STEPBOARD_REDIS_MODE": "cluster", "STEPBOARD_REDIS_CLUSTER_NODES": "a:1,b"}
        )


def test_shard_map_assigns_logical_shards_to_physical_databases():
    env = local_env() | {
        "STEPBOARD_MYSQL_LOGICAL_SHARDS": "8",
        "STEPBOARD_MYSQL_SHARD_MAP": "0-2:1,3-7:0",
    }
    assert MySQLSettings.from_env(env).shard_map == (1, 1, 1, 0, 0, 0, 0, 0)
    default = MySQLSettings.from_env(local_env() | {"STEPBOARD_MYSQL_LOGICAL_SHARDS": "4"})
    assert default.shard_map == (0, 0, 1, 1)


def test_process_with_missing_setting_exits_with_the_variable_named():
    env = {"PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "ingest_svc"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "STEPBOARD_KAFKA_BOOTSTRAP is required" in result.stderr
