"""Wait until gRPC servers on 127.0.0.1:<port> report SERVING via grpc.health.v1.

Usage: health.py [--timeout SECONDS] PORT...   (exit 0 when all serve, 1 on timeout)
Uses raw bytes rather than the health stubs: an empty HealthCheckRequest asks about the
whole server; the reply is field 1 (status) as a varint, SERVING = 1.
"""

import argparse
import os
import sys
import time

import grpc

from common.channels import ChannelSettings, create_channel

SERVING_REPLY = b"\x08\x01"


def serving(port: int) -> bool:
    settings = ChannelSettings.from_env(os.environ)  # TLS when the stack runs with TLS=1
    with create_channel(f"127.0.0.1:{port}", settings) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        try:
            return check(b"", timeout=2) == SERVING_REPLY
        except grpc.RpcError:
            return False


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("ports", type=int, nargs="+")
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout
    pending = list(args.ports)
    while pending:
        pending = [p for p in pending if not serving(p)]
        if not pending:
            break
        if time.monotonic() > deadline:
            print(f"not SERVING after {args.timeout:.0f}s: ports {pending}", file=sys.stderr)
            return 1
        time.sleep(0.5)
    print(f"SERVING: ports {args.ports}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
