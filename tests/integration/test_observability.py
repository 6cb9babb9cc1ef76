"""What operators watch: every metric the Grafana dashboard and the PrometheusRule name is
exported by a stepboard process, and the write path's metrics measure what they say.

The processes of stack/services.tsv run from this tree (the stack's own run the code the
stack was started from) on a private topic, consumer group and board namespace
(:class:`tests.write_path.WritePath`), each serving metrics on a port of its own; the
consumer reaches Redis through a fault proxy, so a test can make it retry.
"""

import json
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import grpc
import pytest
from confluent_kafka import Producer

from common.kafka_clients import producer_config
from stepboard.v1 import ingest_pb2, ingest_pb2_grpc, ranking_pb2, ranking_pb2_grpc
from tests.deploy_render import CHART, render
from tests.fault_proxy import FaultProxy
from tests.harness import free_port, report, samples, scrape, start_process, today, wait_until
from tests.processes import stop_process
from tests.stack import ROOT
from tests.write_path import WritePath

DASHBOARD = CHART / "dashboards" / "stepboard.json"
RULE_VALUES = (CHART / "ci" / "sentinel-tls-values.yaml",)
# Suffixes of the series a histogram or summary family exports.
SERIES_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
# PromQL words that are not metric names.
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "offset", "bool", "inf", "nan"}
# Clauses whose parentheses hold label names, not expressions.
LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
NAME = re.compile(r"(?<![\w:.$])[A-Za-z_:][\w:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers followed by ``{`` or ``[``
    or standing bare, leaving out functions (followed by ``(``), label matchers, label
    lists, durations, strings and keywords."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values, regexes)
    expr = re.sub(r"\{[^}]*\}", "{}", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "[]", expr)  # ranges and subqueries
    expr = LABEL_LISTS.sub(" ", expr)
    names = set()
    for match in NAME.finditer(expr):
        rest = expr[match.end():].lstrip()
        if not rest.startswith("(") and match.group().lower() not in KEYWORDS:
            names.add(match.group())
    return names


def dashboard_expressions() -> list[str]:
    """Every query of the dashboard: its panels' targets (rows included) and the metric
    of each ``label_values`` variable."""
    dashboard = json.loads(DASHBOARD.read_text())

    def panels(items: list[dict]) -> Iterator[dict]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    exprs = [t["expr"] for p in panels(dashboard["panels"]) for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            exprs += re.findall(r"label_values\(\s*([\w:]+)", query["query"])
    return exprs


def alert_expressions() -> list[str]:
    """Every alert expression of the PrometheusRule the chart renders."""
    (rule,) = render(RULE_VALUES).of_kind("PrometheusRule")
    return [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]


def unexported(exprs: list[str], exported: set[str]) -> dict[str, set[str]]:
    """The names each expression reads that ``exported`` lacks (expressions reading none
    left out)."""
    missing = {expr: metric_names(expr) - exported for expr in exprs}
    return {expr: names for expr, names in missing.items() if names}


# -- the processes ----------------------------------------------------------------------

def stack_modules() -> list[tuple[str, bool]]:
    """``(module, serves gRPC)`` of every process the local stack runs."""
    rows = []
    for line in (ROOT / "stack" / "services.tsv").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            module, grpc_port, _ = line.split()
            rows.append((module, grpc_port != "-"))
    return rows


def family_names(text: str) -> set[str]:
    """The series names an exposition can hold: each ``# TYPE`` family's name, with its
    histogram or summary suffixes."""
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        names |= {name, *(name + suffix for suffix in SERIES_SUFFIXES.get(kind, ()))}
    return names


def value(port: int, name: str, **labels: str) -> float:
    """One sample's value (0 if absent)."""
    return samples(port, name).get(frozenset(labels.items()), 0.0)


@dataclass
class Stack:
    """The processes under test: metrics port by module, and what the tests drive."""

    metrics: dict[str, int]
    path: WritePath
    ingest: ingest_pb2_grpc.StepIngestStub
    ranking: ranking_pb2_grpc.RankingStub
    redis_proxy: FaultProxy


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    path = WritePath({})
    redis_url = urlsplit(path.env["STEPBOARD_REDIS_URL"])
    proxy = FaultProxy((redis_url.hostname, redis_url.port))
    ports = {module: (free_port(), free_port() if serves else None)
             for module, serves in stack_modules()}  # (metrics, gRPC)
    env = path.env | {"STEPBOARD_SOCIAL_ADDR": f"127.0.0.1:{ports['social_svc'][1]}"}
    own = {
        "rank_svc.consumer": {"STEPBOARD_REDIS_URL": f"redis://{proxy.address}/0"},
        "rank_svc.precompute": {"STEPBOARD_HOT_FRIENDS_THRESHOLD": str(10**9)},  # none hot
    }
    processes = []
    try:
        for module, (metrics, grpc_port) in ports.items():
            settings = {"STEPBOARD_METRICS_PORT": str(metrics),
                        "STEPBOARD_GRPC_PORT": str(grpc_port or 0), **own.get(module, {})}
            processes.append(start_process(module, env | settings))
        for metrics, _ in ports.values():
            wait_until(lambda port=metrics: scrape_or_none(port), 60)
        ingest, rank = (grpc.insecure_channel(f"127.0.0.1:{ports[m][1]}")
                        for m in ("ingest_svc", "rank_svc"))
        for channel in (ingest, rank):
            grpc.channel_ready_future(channel).result(timeout=60)
        yield Stack({module: metrics for module, (metrics, _) in ports.items()}, path,
                    ingest_pb2_grpc.StepIngestStub(ingest), ranking_pb2_grpc.RankingStub(rank),
                    proxy)
    finally:
        for process in processes:
            stop_process(process)
        proxy.close()
        path.close()


def scrape_or_none(port: int) -> str | None:
    try:
        return scrape(port)
    except OSError:
        return None


@pytest.fixture(scope="module")
def exported(stack: Stack) -> set[str]:
    """Every series name any of the processes exports, after a report and a ranking call
    (so labelled families have samples too)."""
    user = random.randint(10**12, 2 * 10**12)
    stack.ingest.ReportSteps(
        ingest_pb2.ReportStepsRequest(report=report(user, today(), 100, 5)), timeout=10
    )
    wait_until(lambda: stack.path.store.scores(today(), [user])[user] is not None, 30)
    stack.ranking.GetFriendRanking(
        ranking_pb2.GetFriendRankingRequest(user_id=user, day=today().isoformat()), timeout=10
    )
    return set().union(*(family_names(scrape(port)) for port in stack.metrics.values()))


# -- the checks -------------------------------------------------------------------------

def test_the_name_parser_finds_metrics_only():
    expr = ('histogram_quantile(0.99, sum by (le, grpc_code) (rate(a_seconds_bucket'
            '{namespace=~"$namespace", grpc_code!~"OK|x"}[$__rate_interval])))'
            ' / ignoring (grpc_code) group_left sum(b_total offset 5m) > 5'
            ' and time() - min(c_timestamp_seconds > 0) > 1e3 unless d')
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c_timestamp_seconds", "d"}


def test_every_metric_the_dashboard_and_the_alerts_name_is_exported(exported):
    dashboard, alerts = dashboard_expressions(), alert_expressions()
    assert len(dashboard) >= 20 and len(alerts) >= 8
    assert unexported(dashboard, exported) == {}
    assert unexported(alerts, exported) == {}


def test_an_expression_naming_a_metric_no_process_exports_is_caught(exported):
    made_up = 'sum(rate(stepboard_made_up_total{namespace="x"}[5m]))'
    assert unexported([*dashboard_expressions(), made_up], exported) == {
        made_up: {"stepboard_made_up_total"}
    }


def test_the_servers_and_their_client_count_calls_under_the_ecosystem_names(stack, exported):
    rank = stack.metrics["rank_svc"]
    handled = samples(rank, "grpc_server_handled_total")
    assert handled[frozenset({
        "grpc_type": "unary", "grpc_service": "stepboard.v1.Ranking",
        "grpc_method": "GetFriendRanking", "grpc_code": "OK", "caller": "anonymous",
    }.items())] >= 1
    to_social = samples(rank, "grpc_client_handled_total")
    assert any(dict(labels)["grpc_service"] == "stepboard.v1.FriendGraph" and count >= 1
               for labels, count in to_social.items()), to_social
    assert "stepboard_grpc_requests_total" not in exported


def lag_seconds(port: int) -> dict[str, float]:
    """``stepboard_consumer_lag_seconds`` by partition."""
    return {dict(labels)["partition"]: v
            for labels, v in samples(port, "stepboard_consumer_lag_seconds").items()}


def test_freshness_and_lag_seconds_follow_a_report_to_the_board(stack, exported):
    """Freshness is observed once per applied record and is at most the time from before
    the call to after its write; lag in seconds grows while the writer retries Redis (a
    report arriving after an idle check failed included) and falls to 0 once it caught
    up."""
    consumer = stack.metrics["rank_svc.consumer"]
    day = today()

    def caught_up() -> bool:
        lags = lag_seconds(consumer)
        return len(lags) == 3 and not any(lags.values())

    wait_until(caught_up, 30)
    count = value(consumer, "stepboard_freshness_seconds_count")
    total = value(consumer, "stepboard_freshness_seconds_sum")
    sent_at = time.time()
    stack.ingest.ReportSteps(
        ingest_pb2.ReportStepsRequest(report=report(7, day, 700, 5)), timeout=10
    )
    wait_until(lambda: value(consumer, "stepboard_freshness_seconds_count") == count + 1, 30)
    took = value(consumer, "stepboard_freshness_seconds_sum") - total
    assert 0 <= took <= time.time() - sent_at + 0.002  # ingest's timestamp is whole ms

    retries = value(consumer, "stepboard_consumer_redis_retries_total")
    stack.redis_proxy.refuse(True)
    stack.redis_proxy.drop_connections()
    try:
        # an idle check (no traffic) fails first; the report comes while Redis is down
        wait_until(lambda: value(consumer, "stepboard_consumer_redis_retries_total") > retries,
                   30)
        stack.ingest.ReportSteps(
            ingest_pb2.ReportStepsRequest(report=report(8, day, 800, 5)), timeout=10
        )
        first = wait_until(lambda: max(lag_seconds(consumer).values()) > 0.5 and
                           max(lag_seconds(consumer).values()), 30)
        wait_until(lambda: max(lag_seconds(consumer).values()) > first + 0.5, 30)
    finally:
        stack.redis_proxy.heal()
    wait_until(caught_up, 30)
    assert value(consumer, "stepboard_freshness_seconds_count") == count + 2
    assert {user for user, score in stack.path.store.scores(day, [7, 8]).items()
            if score is not None} == {7, 8}
    # librdkafka's statistics (every 5 s) give the lag in records of the partitions read
    records = wait_until(lambda: samples(consumer, "stepboard_consumer_lag_records"), 30)
    assert all(lag >= 0 for lag in records.values())


def test_dead_letters_are_counted_by_reason(stack, exported):
    consumer = stack.metrics["rank_svc.consumer"]
    before = samples(consumer, "stepboard_consumer_dead_letters_total")
    assert {dict(labels)["reason"] for labels in before} == {
        "undecodable_record", "invalid_report", "undecodable_like", "invalid_like"
    }
    producer = Producer(producer_config(stack.path.kafka))
    producer.produce(stack.path.topic, value=b"\xff\x00 poison", partition=0)
    assert producer.flush(30) == 0

    def counted() -> dict[str, float]:
        now = samples(consumer, "stepboard_consumer_dead_letters_total")
        return {dict(labels)["reason"]: now[labels] - before[labels] for labels in now}

    wait_until(lambda: counted()["undecodable_record"] == 1, 30)
    assert counted() == {"undecodable_record": 1, "invalid_report": 0,
                         "undecodable_like": 0, "invalid_like": 0}
