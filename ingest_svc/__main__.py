"""``python -m ingest_svc``: the StepIngest gRPC server."""

from common.channels import create_channel
from common.runtime import load
from common.server import run_until_signal
from common.tracing import configure
from ingest_svc.config import IngestConfig
from ingest_svc.producer import ReportProducer
from ingest_svc.server import build_server


def main() -> None:
    """Reads config, serves until SIGTERM, drains, then flushes the producer."""
    config = load("ingest_svc", IngestConfig.from_env)
    configure(config.server.tracing)  # before the server and channels are made
    producer = ReportProducer(config.kafka)
    social = create_channel(config.social_addr, config.client)
    built = build_server(config, producer, social)
    run_until_signal(built, config.server, closers=[producer.close, social.close])


if __name__ == "__main__":
    main()
