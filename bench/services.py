"""Starting the run's own service processes and Kafka topics."""

import contextlib
import time

from confluent_kafka.admin import AdminClient, NewTopic

from bench.config import Context, free_port
from bench.procs import Processes, wait_ready

SERVERS = {"social": "social_svc", "rank": "rank_svc", "ingest": "ingest_svc"}


def create_topics(ctx: Context) -> None:
    """The run's report and dead-letter topics, ready when every partition has a leader."""
    admin = AdminClient({"bootstrap.servers": ctx.kafka})
    wanted = {ctx.topic: ctx.scale.partitions, ctx.dlq_topic: 1}
    for future in admin.create_topics(
        [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in wanted.items()]
    ).values():
        future.result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=10).topics
        if all(name in topics and len(topics[name].partitions) == n
               and all(p.leader >= 0 for p in topics[name].partitions.values())
               for name, n in wanted.items()):
            return
        time.sleep(0.2)
    raise RuntimeError("topics have no leaders")


def delete_topics(ctx: Context) -> None:
    """Drops the run's topics."""
    admin = AdminClient({"bootstrap.servers": ctx.kafka})
    for future in admin.delete_topics([ctx.topic, ctx.dlq_topic]).values():
        with contextlib.suppress(Exception):  # already gone
            future.result(30)


def start_servers(ctx: Context, procs: Processes) -> None:
    """social_svc, rank_svc, ingest_svc and the echo baseline on the run's ports."""
    for name, module in SERVERS.items():
        env = ctx.env | {"STEPBOARD_GRPC_PORT": str(ctx.ports[name])}
        procs.start(name, ["-m", module], env)
    procs.start("echo", ["-m", "bench.echo", "--port", str(ctx.ports["echo"])], ctx.env)
    for name in (*SERVERS, "echo"):
        wait_ready(ctx.addr(name), procs.started[name], procs.log(name))


def start_consumers(ctx: Context, procs: Processes, max_rate: int = 0) -> list[int]:
    """``scale.consumers`` members of the run's consumer group, in place of those running,
    each applying at most ``max_rate`` reports/s (0: unlimited); their metrics ports."""
    ports = []
    for index in range(ctx.scale.consumers):
        procs.stop(f"consumer{index}")
        ports.append(free_port())
        procs.start(f"consumer{index}", ["-m", "rank_svc.consumer"], ctx.env | {
            "STEPBOARD_CONSUMER_MAX_REPORTS_PER_S": str(max_rate),
            "STEPBOARD_METRICS_PORT": str(ports[-1])})
    return ports
