"""The settings registry (common/settings.py) is the one source of every STEPBOARD_* setting:
the services read exactly what it declares for them, docs/configuration.md is generated
from it, and the Helm chart sets only declared variables, within the declared bounds.
Stack-free and helm-free: the chart is read as files (its rendering is checked by
tests/integration/test_chart_settings.py).
"""

import json
import re
import subprocess
import sys

import pytest

from common.config import ConfigError, LogSettings, read_env_file
from common.settings import KINDS, SERVICES, SETTINGS, Derived, default, read
from ingest_svc.config import IngestConfig
from rank_svc.config import ArchiveConfig, ConsumerConfig, PrecomputeConfig, RankConfig
from social_svc.config import SocialConfig
from tests.deploy_render import CHART, RecordingEnv
from tests.stack import ROOT

HELPERS = CHART / "templates" / "_helpers.tpl"
SCHEMA = CHART / "values.schema.json"
READERS = {
    "ingest": IngestConfig.from_env,
    "social": SocialConfig.from_env,
    "rank": RankConfig.from_env,
    "consumer": ConsumerConfig.from_env,
    "precompute": PrecomputeConfig.from_env,
    "archive": ArchiveConfig.from_env,
}
# What every reader needs to run: the required addresses (and a standalone Redis URL).
REQUIRED_ENV = {
    "STEPBOARD_KAFKA_BOOTSTRAP": "kafka:9092",
    "STEPBOARD_REDIS_URL": "redis://redis:6379/0",
    "STEPBOARD_MYSQL_SHARD_DSNS": "mysql://u:p@db:3306/s0",
    "STEPBOARD_SOCIAL_ADDR": "social:50052",
    "STEPBOARD_ARCHIVE_MYSQL_SHARD_DSNS": "mysql://u:p@db:3306/a0",
}
# Where the chart's schema is deliberately stricter than the services, and why.
CHART_NARROWS = {
    # Container ports: a pod cannot listen on "any free port", and the chart turns metrics
    # off with metrics.enabled rather than with port 0.
    "STEPBOARD_GRPC_PORT": {"minimum": 1},
    "STEPBOARD_METRICS_PORT": {"minimum": 1},
    # The chart refuses a zero timeout (librdkafka and redis-py read 0 as "no timeout").
    "STEPBOARD_KAFKA_DELIVERY_TIMEOUT_S": {"exclusiveMinimum": 0},
    "STEPBOARD_REDIS_SOCKET_TIMEOUT_S": {"exclusiveMinimum": 0},
}
SCHEMA_TYPES = {"int": "integer", "float": "number", "bool": "boolean", "str": "string",
                "choice": "string", "list": "array"}
BOUND_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum")


def test_configuration_doc_matches_the_registry():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_config_doc.py"), "--check"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_declaration_is_complete():
    for name, setting in SETTINGS.items():
        assert setting.help and setting.components, name
        assert setting.kind in KINDS, name
        assert (setting.kind == "choice") == bool(setting.choices), name
        if setting.kind == "float":
            assert setting.minimum is not None, f"{name}: a float needs a declared minimum"


@pytest.mark.parametrize("component", SERVICES)
def test_each_service_reads_exactly_what_is_declared_for_it(component):
    """The "read by" column is what the component's reader asks for, no more, no less."""
    recording = RecordingEnv(REQUIRED_ENV)
    LogSettings.from_env(recording)
    READERS[component](recording)
    declared = {s.env_name for s in SETTINGS.values() if component in s.components}
    assert recording.asked == declared


def test_a_fixed_default_cannot_be_restated_and_a_derived_one_must_be_given():
    with pytest.raises(ValueError, match="STEPBOARD_BOARD_SHARDS"):
        read({}, "BOARD_SHARDS", derived=8)
    with pytest.raises(ValueError, match="STEPBOARD_HOT_MAX_AGE_S"):
        read({}, "HOT_MAX_AGE_S")
    with pytest.raises(ValueError, match="STEPBOARD_HOT_MAX_AGE_S"):
        default("HOT_MAX_AGE_S")
    assert isinstance(SETTINGS["HOT_MAX_AGE_S"].default, Derived)


def test_a_tighter_minimum_from_another_setting_is_enforced_with_the_same_message():
    assert read({}, "MYSQL_LOGICAL_SHARDS", minimum=4) == default("MYSQL_LOGICAL_SHARDS")
    with pytest.raises(ConfigError, match="STEPBOARD_MYSQL_LOGICAL_SHARDS: must be >= 4, got 2"):
        read({"STEPBOARD_MYSQL_LOGICAL_SHARDS": "2"}, "MYSQL_LOGICAL_SHARDS", minimum=4)


def test_env_file_parser(tmp_path):
    path = tmp_path / "x.env"
    path.write_text("# comment\n\n  STEPBOARD_A = 1 \nSTEPBOARD_B=x=y\n   # indented comment\n")
    assert read_env_file(path) == {"STEPBOARD_A": "1", "STEPBOARD_B": "x=y"}
    path.write_text("STEPBOARD_A=1\nSTEPBOARD_B\n")
    with pytest.raises(ConfigError, match=r"x\.env:2: expected KEY=VALUE"):
        read_env_file(path)


def test_every_variable_the_chart_mentions_is_declared():
    mentioned = {
        name
        for path in (CHART / "templates").iterdir()
        for name in re.findall(r"STEPBOARD_[A-Z0-9_]+", path.read_text())
    }
    assert len(mentioned) > 40
    assert not mentioned - {s.env_name for s in SETTINGS.values()}


def _chart_values_of_settings() -> dict[str, str]:
    """STEPBOARD_X → the dotted values path the chart's helpers set it from, for every
    variable set directly from one value (not composed with printf)."""
    paths = {}
    for line in HELPERS.read_text().splitlines():
        match = re.search(r'"(STEPBOARD_[A-Z0-9_]+)" \((.*)', line)
        if not match or "printf" in match.group(2):
            continue
        value = re.search(r"\$(c?v)\.([\w.]+)", match.group(2))
        if value:
            prefix = "{component}." if value.group(1) == "cv" else ""
            paths[match.group(1)] = prefix + value.group(2)
    return paths


def _schema_node(schema: dict, path: str) -> dict:
    node = schema
    for key in path.split("."):
        node = node["properties"][key]
    return node


def _expected_bounds(name: str) -> dict:
    setting = SETTINGS[name.removeprefix("STEPBOARD_")]
    bounds = {"minimum": setting.minimum, "maximum": setting.maximum,
              "enum": list(setting.choices) or None}
    narrowed = CHART_NARROWS.get(name, {})
    if narrowed:
        floor = narrowed.get("minimum", narrowed.get("exclusiveMinimum"))
        assert floor >= setting.minimum, f"{name}: CHART_NARROWS must narrow, not widen"
        bounds["minimum"] = None
    return {k: v for k, v in (bounds | narrowed).items() if v is not None}


def test_chart_value_bounds_equal_the_registry():
    """The schema bound of each value the chart turns into a STEPBOARD_* variable (minimum,
    maximum, enum) and its type are the registry's, save the narrowings in CHART_NARROWS."""
    schema = json.loads(SCHEMA.read_text())
    paths = _chart_values_of_settings()
    assert len(paths) > 40, sorted(paths)
    mismatches = []
    for name, path in sorted(paths.items()):
        setting = SETTINGS[name.removeprefix("STEPBOARD_")]
        for where in sorted({path.format(component=c) for c in ("ingest", "social", "rank")}):
            node = _schema_node(schema, where)
            found = {k: node[k] for k in BOUND_KEYS if k in node}
            expected = _expected_bounds(name)
            if found != expected:
                mismatches.append(f"{name} ({where}): schema {found}, registry {expected}")
            if SCHEMA_TYPES[setting.kind] not in (node["type"], *node["type"]):
                mismatches.append(f"{name} ({where}): type {node['type']}, kind {setting.kind}")
    assert not mismatches, "\n".join(mismatches)
