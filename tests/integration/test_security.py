"""Authentication and transport security: bearer tokens and mTLS, servers and clients.

Certificates come from ``stack/tls.sh`` (the same script ``make up TLS=1`` uses). A social
server and a rank server run with mTLS and tokens required; rank reaches social as a
client with its own certificate and token, which the friend-ranking call proves.
"""

import subprocess
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.channels import ChannelSettings, create_channel
from stepboard.v1 import ranking_pb2, ranking_pb2_grpc, social_pb2, social_pb2_grpc
from tests.harness import service_env, today, unique
from tests.in_process import rank_server
from tests.social_support import STACK_MARIADB, ShardDatabases, SocialServer, fresh_user_base
from tests.stack import ROOT


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> Path:
    """A fresh CA, server, client and untrusted-client certificates, and tokens."""
    directory = tmp_path_factory.mktemp("tls")
    subprocess.run(["bash", str(ROOT / "stack" / "tls.sh"), str(directory)], check=True)
    return directory


def secured(tls: Path, **more: str) -> dict[str, str]:
    """Server settings: TLS with client certificates required, tokens required, the local
    stack's policy (test_authorization.py covers who may call what)."""
    return {
        "STEPBOARD_TLS_CERT_FILE": str(tls / "server.pem"),
        "STEPBOARD_TLS_KEY_FILE": str(tls / "server-key.pem"),
        "STEPBOARD_TLS_CLIENT_CA_FILE": str(tls / "ca.pem"),
        "STEPBOARD_AUTH_TOKENS_FILE": str(tls / "tokens"),
        "STEPBOARD_AUTH_POLICY_FILE": str(tls / "policy.json"),
        **more,
    }


def client(tls: Path, token: str = "", cert: str = "client") -> ChannelSettings:
    """Client settings with the given certificate (or none) and token."""
    return ChannelSettings(
        ca_file=str(tls / "ca.pem"),
        cert_file=str(tls / f"{cert}.pem") if cert else "",
        key_file=str(tls / f"{cert}-key.pem") if cert else "",
        token=token,
    )


@pytest.fixture(scope="module")
def servers(tls):
    """A secured social server and a secured rank server that calls it over mTLS."""
    databases = ShardDatabases([STACK_MARIADB, STACK_MARIADB])
    social = SocialServer(databases, unique("sg"), **secured(tls))
    env = service_env(
        STEPBOARD_GRPC_PORT="0",
        STEPBOARD_BOARD_NAMESPACE=unique("ns"),
        STEPBOARD_SOCIAL_ADDR=f"localhost:{social.built.port}",
        STEPBOARD_CLIENT_TLS_CA_FILE=str(tls / "ca.pem"),
        STEPBOARD_CLIENT_TLS_CERT_FILE=str(tls / "client.pem"),
        STEPBOARD_CLIENT_TLS_KEY_FILE=str(tls / "client-key.pem"),
        STEPBOARD_CLIENT_TOKEN_FILE=str(tls / "rank.token"),
        **secured(tls),
    )
    with rank_server(env) as rank:
        yield social, rank
    social.close()
    databases.drop()


def friend_ranking(port: int, settings: ChannelSettings, user_id: int):
    with create_channel(f"localhost:{port}", settings) as channel:
        return ranking_pb2_grpc.RankingStub(channel).GetFriendRanking(
            ranking_pb2.GetFriendRankingRequest(user_id=user_id, day=today().isoformat()),
            timeout=10,
        )


def test_a_known_token_over_mtls_is_served_end_to_end(tls, servers):
    social, rank = servers
    user, friend = fresh_user_base() + 1, fresh_user_base() + 2
    cli = (tls / "cli.token").read_text().strip()
    with create_channel(f"localhost:{social.built.port}", client(tls, cli)) as channel:
        social_pb2_grpc.FriendGraphStub(channel).AddFriendship(
            social_pb2.AddFriendshipRequest(user_id=user, friend_id=friend), timeout=10
        )
    reply = friend_ranking(rank.port, client(tls, cli), user)
    assert sorted(e.user_id for e in reply.entries) == sorted([user, friend])
    assert not reply.stale_friends


def test_wrong_token_is_unauthenticated(tls, servers):
    _, rank = servers
    with pytest.raises(grpc.RpcError) as raised:
        friend_ranking(rank.port, client(tls, "not-a-token"), 1)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_without_a_token_the_client_certificate_is_the_caller(tls, servers):
    _, rank = servers
    with pytest.raises(grpc.RpcError) as raised:
        friend_ranking(rank.port, client(tls), 1)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert raised.value.details() == (
        'caller "stepboard-client" may not call stepboard.v1.Ranking/GetFriendRanking'
    )


def test_health_needs_no_token_but_still_a_client_certificate(tls, servers):
    _, rank = servers
    with create_channel(f"localhost:{rank.port}", client(tls)) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("cert", ["rogue-client", ""])
def test_client_certificate_not_signed_by_the_ca_is_refused(tls, servers, cert):
    _, rank = servers
    cli = (tls / "cli.token").read_text().strip()
    with pytest.raises(grpc.RpcError) as raised:
        friend_ranking(rank.port, client(tls, cli, cert=cert), 1)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_plaintext_client_is_refused(servers):
    _, rank = servers
    with pytest.raises(grpc.RpcError) as raised:
        friend_ranking(rank.port, ChannelSettings(token="x"), 1)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
