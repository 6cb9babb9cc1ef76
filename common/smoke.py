"""``python -m common.smoke``: is a deployment up? The chart's ``helm test`` runs it.

It waits until each of the three servers reports SERVING (``grpc.health.v1.Health``, the
whole server), then makes one ranking call (``GetGlobalTop`` of today, limit 1) through
the ranking server, so the Redis boards behind it answer too. Servers named by ``--tls``
are dialled over TLS as ``STEPBOARD_CLIENT_TLS_*`` say (CA, client certificate for mTLS,
server name); the others in plaintext. Calls carry the caller's bearer token:
``STEPBOARD_CLIENT_TOKEN[_FILE]``, or, with ``--caller NAME``, that caller's token in the
tokens file ``STEPBOARD_AUTH_TOKENS_FILE`` (what the servers check tokens against).

Exit status: 0 all SERVING and the ranking answered; 1 a server not SERVING within
``--timeout`` seconds, or the ranking call failed (the line on stderr says which and why);
2 bad arguments or settings.
"""

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.channels import ChannelSettings, create_channel
from common.config import ConfigError
from common.server import read_tokens
from stepboard.v1 import ranking_pb2, ranking_pb2_grpc

SERVERS = ("ingest", "social", "rank")
CALL_TIMEOUT_S = 5.0


class SmokeFailure(Exception):
    """What is not working, in one line."""


def settings_for(
    env: Mapping[str, str], caller: str | None
) -> ChannelSettings:
    """The TLS settings and token of the calls; with ``caller``, its token from the tokens
    file (ConfigError if the file does not list it)."""
    settings = ChannelSettings.from_env(env)
    if caller is None:
        return settings
    tokens = {name: token for token, name in read_tokens(env).items()}
    if caller not in tokens:
        raise ConfigError(f"--caller {caller}: not in STEPBOARD_AUTH_TOKENS[_FILE]")
    return dataclasses.replace(settings, token=tokens[caller])


def channel_to(address: str, tls: bool, settings: ChannelSettings) -> grpc.Channel:
    """A channel to one server: over TLS as ``settings`` say, or plaintext with the token."""
    if not tls:
        settings = dataclasses.replace(settings, ca_file="", cert_file="", key_file="")
    return create_channel(address, settings)


def wait_serving(name: str, channel: grpc.Channel, deadline: float) -> None:
    """Returns once the server reports SERVING; SmokeFailure with its last answer if it
    does not before ``deadline`` (monotonic)."""
    health = health_pb2_grpc.HealthStub(channel)
    while True:
        try:
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT_S).status
            last = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
            if status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError as error:
            last = f"{error.code().name}: {error.details()}"
        if time.monotonic() > deadline:
            raise SmokeFailure(f"{name}: not SERVING ({last})")
        time.sleep(1)


def rank_once(channel: grpc.Channel) -> int:
    """One GetGlobalTop of today; how many entries it returned (SmokeFailure if it fails)."""
    today = datetime.now(UTC).date().isoformat()
    try:
        reply = ranking_pb2_grpc.RankingStub(channel).GetGlobalTop(
            ranking_pb2.GetGlobalTopRequest(day=today, limit=1), timeout=CALL_TIMEOUT_S
        )
    except grpc.RpcError as error:
        raise SmokeFailure(
            f"rank: GetGlobalTop failed: {error.code().name}: {error.details()}"
        ) from None
    return len(reply.entries)


def check(
    addresses: Mapping[str, str], tls: set[str], settings: ChannelSettings, timeout_s: float
) -> None:
    """Health of every server, then one ranking call; SmokeFailure on the first problem."""
    deadline = time.monotonic() + timeout_s
    channels = {name: channel_to(addresses[name], name in tls, settings) for name in SERVERS}
    try:
        for name in SERVERS:
            wait_serving(name, channels[name], deadline)
            print(f"{name} at {addresses[name]}: SERVING", flush=True)
        entries = rank_once(channels["rank"])
        print(f"rank: GetGlobalTop answered ({entries} entries)", flush=True)
    finally:
        for channel in channels.values():
            channel.close()


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m common.smoke", description="Health of the three servers + one ranking."
    )
    for name in SERVERS:
        parser.add_argument(f"--{name}", required=True, metavar="HOST:PORT",
                            help=f"address of the {name} server")
    parser.add_argument("--tls", action="append", choices=SERVERS, default=[],
                        help="a server that serves TLS (repeatable)")
    parser.add_argument("--caller", help="call as this caller of the tokens file")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait for every server to be SERVING (default 60)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the check; exits with the status the module docstring lists."""
    args = build_parser().parse_args(argv)
    try:
        settings = settings_for(os.environ, args.caller)
    except ConfigError as error:
        print(f"common.smoke: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    addresses = {name: getattr(args, name) for name in SERVERS}
    try:
        check(addresses, set(args.tls), settings, args.timeout)
    except SmokeFailure as failure:
        print(f"common.smoke: FAILED: {failure}", file=sys.stderr)
        raise SystemExit(1) from None
    print("common.smoke: OK", flush=True)


if __name__ == "__main__":
    main()
