"""Wait until gRPC servers on 127.0.0.1:<port> report SERVING via grpc.health.v1.

Usage: health.py [--timeout SECONDS] PORT...   (exit 0 when all serve, 1 on timeout)
The wait is the smoke check's (:func:`common.smoke.wait_serving`), over TLS when the
stack runs with TLS=1 (``STEPBOARD_CLIENT_TLS_*`` from the environment).
"""

import argparse
import os
import sys
import time

from common.channels import ChannelSettings, create_channel
from common.smoke import SmokeFailure, wait_serving


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("ports", type=int, nargs="+")
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout
    settings = ChannelSettings.from_env(os.environ)
    for port in args.ports:
        with create_channel(f"127.0.0.1:{port}", settings) as channel:
            try:
                wait_serving(f"port {port}", channel, deadline)
            except SmokeFailure as failure:
                print(f"not SERVING after {args.timeout:.0f}s: {failure}", file=sys.stderr)
                return 1
    print(f"SERVING: ports {args.ports}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
