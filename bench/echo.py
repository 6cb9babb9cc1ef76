"""``python -m bench.echo --port N``: the baseline, a bare gRPC server that answers
``StepIngest.ReportSteps`` at once (same grpcio, same thread pool size as the services,
reflection on so ghz can call it, no interceptors, no validation, no Kafka)."""

import argparse
from concurrent import futures

import grpc
from grpc_reflection.v1alpha import reflection

from common.lifecycle import stop_on_signals, wait_for
from stepboard.v1 import ingest_pb2, ingest_pb2_grpc


class Echo(ingest_pb2_grpc.StepIngestServicer):
    """Answers every report with an empty OK."""

    def ReportSteps(self, request, context):
        """Echoes the report id."""
        return ingest_pb2.ReportStepsResponse(report_id=request.report.report_id)


def main() -> None:
    """Serves until SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=32)
    args = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers))
    ingest_pb2_grpc.add_StepIngestServicer_to_server(Echo(), server)
    reflection.enable_server_reflection(
        (ingest_pb2.DESCRIPTOR.services_by_name["StepIngest"].full_name,
         reflection.SERVICE_NAME), server)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    wait_for(stop_on_signals())
    server.stop(1)


if __name__ == "__main__":
    main()
