"""``python -m ingest_svc``: the StepIngest gRPC server."""

from common.runtime import load
from common.server import run_until_signal
from ingest_svc.config import IngestConfig
from ingest_svc.producer import ReportProducer
from ingest_svc.server import build_server


def main() -> None:
    """Reads config, serves until SIGTERM, drains, then flushes the producer."""
    config = load("ingest_svc", IngestConfig.from_env)
    producer = ReportProducer(config.kafka)
    built = build_server(config, producer)
    run_until_signal(built, config.server, closers=[producer.close])


if __name__ == "__main__":
    main()
