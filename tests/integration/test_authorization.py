"""Who may call what: every caller of the default policies (the local stack's, from
``stack/tls.sh``, and the Helm chart's, as it renders) gets one allowed and one denied
call, over mTLS with real tokens, against in-process ingest, social and rank servers on
the stack's MariaDB and Redis. Ingest and rank reach social with their own tokens.

The caller shows in the request metrics' ``caller`` label and in the access log.
"""

import json
import logging
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from prometheus_client import REGISTRY

from common.authz import INTERNAL_METHODS, Policy
from common.channels import ChannelSettings, create_channel
from common.logs import JsonFormatter
from stepboard.v1 import (
    ingest_pb2,
    ingest_pb2_grpc,
    ranking_pb2,
    ranking_pb2_grpc,
    social_pb2,
    social_pb2_grpc,
)
from tests.deploy_render import CHART, render
from tests.harness import service_env, today, unique
from tests.in_process import ingest_server, rank_server
from tests.social_support import (
    STACK_MARIADB,
    ShardDatabases,
    SocialServer,
    fresh_user_base,
    upsert_request,
)
from tests.stack import ROOT

FG = "stepboard.v1.FriendGraph"
DENIED = grpc.StatusCode.PERMISSION_DENIED


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> Path:
    """Certificates, the local stack's tokens and policy (stack/tls.sh), and a client
    certificate whose identity (its DNS SAN) is the chart's ``app-backend`` caller."""
    directory = tmp_path_factory.mktemp("tls")
    subprocess.run(["bash", str(ROOT / "stack" / "tls.sh"), str(directory)], check=True)
    _leaf(directory, "app-cert", "subjectAltName=DNS:app-backend\nextendedKeyUsage=clientAuth")
    return directory


def _leaf(directory: Path, name: str, extensions: str) -> None:
    """A client certificate ``name`` signed by the directory's CA."""
    (directory / f"{name}.ext").write_text(extensions + "\n")
    for command in (
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
         "-keyout", f"{name}-key.pem", "-out", f"{name}.csr"],
        ["openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey",
         "ca-key.pem", "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
         "-out", f"{name}.pem"],
    ):
        subprocess.run(command, cwd=directory, check=True, capture_output=True)


def chart_policy() -> str:
    """The policy the chart's default values give the servers (STEPBOARD_AUTH_POLICY)."""
    result = render((CHART / "ci" / "default-values.yaml",))
    (config_map,) = [c for c in result.of_kind("ConfigMap")
                     if c["metadata"]["name"].endswith("-social")]
    return config_map["data"]["STEPBOARD_AUTH_POLICY"]


@dataclass
class Deployment:
    """Secured servers running one default policy, and its callers' tokens."""

    name: str
    policy: Policy
    tokens: dict[str, str]  # caller → token
    tls: Path
    social: SocialServer
    rank_port: int
    ingest_port: int
    app: str  # the caller that stands for an app backend (or a developer)

    def channel(self, port: int, caller: str = "", cert: str = "client") -> grpc.Channel:
        """A channel presenting ``caller``'s token (none if empty) and ``cert``."""
        return create_channel(f"localhost:{port}", ChannelSettings(
            ca_file=str(self.tls / "ca.pem"), cert_file=str(self.tls / f"{cert}.pem"),
            key_file=str(self.tls / f"{cert}-key.pem"),
            token=self.tokens[caller] if caller else "",
        ))

    def friend_graph(self, caller: str, cert: str = "client") -> social_pb2_grpc.FriendGraphStub:
        return social_pb2_grpc.FriendGraphStub(
            self.channel(self.social.built.port, caller, cert)
        )

    def ranking(self, caller: str, cert: str = "client") -> ranking_pb2_grpc.RankingStub:
        return ranking_pb2_grpc.RankingStub(self.channel(self.rank_port, caller, cert))

    def ingest(self, caller: str) -> ingest_pb2_grpc.StepIngestStub:
        return ingest_pb2_grpc.StepIngestStub(self.channel(self.ingest_port, caller))


def social_client_env(tls: Path, social_port: int, token_file: Path) -> dict[str, str]:
    """Settings of a social_svc client (rank_svc, ingest) over mTLS with ``token_file``."""
    return {
        "STEPBOARD_SOCIAL_ADDR": f"localhost:{social_port}",
        "STEPBOARD_CLIENT_TLS_CA_FILE": str(tls / "ca.pem"),
        "STEPBOARD_CLIENT_TLS_CERT_FILE": str(tls / "client.pem"),
        "STEPBOARD_CLIENT_TLS_KEY_FILE": str(tls / "client-key.pem"),
        "STEPBOARD_CLIENT_TOKEN_FILE": str(token_file),
    }


@pytest.fixture(scope="module", params=["stack", "chart"])
def deployment(request, tls, tmp_path_factory):
    """Social, rank and ingest under mTLS, tokens and the named default policy."""
    directory = tmp_path_factory.mktemp(request.param)
    if request.param == "stack":
        policy_file, tokens_file, app = tls / "policy.json", tls / "tokens", "cli"
    else:
        policy_file, tokens_file, app = directory / "policy.json", directory / "tokens", \
            "app-backend"
        policy_file.write_text(chart_policy())
        tokens_file.write_text("".join(
            f"{caller}:{unique('token')}\n" for caller in json.loads(policy_file.read_text())
        ))
    policy = Policy.parse(policy_file.read_text(), str(policy_file))
    tokens = {}
    for line in tokens_file.read_text().splitlines():
        caller, _, token = line.partition(":")
        tokens[caller] = token
    for caller in ("ingest", "rank"):
        (directory / f"{caller}.token").write_text(tokens[caller])
    secured = {
        "STEPBOARD_TLS_CERT_FILE": str(tls / "server.pem"),
        "STEPBOARD_TLS_KEY_FILE": str(tls / "server-key.pem"),
        "STEPBOARD_TLS_CLIENT_CA_FILE": str(tls / "ca.pem"),
        "STEPBOARD_AUTH_TOKENS_FILE": str(tokens_file),
        "STEPBOARD_AUTH_POLICY_FILE": str(policy_file),
    }

    def client_of_social(caller: str) -> dict[str, str]:
        return social_client_env(tls, social.built.port, directory / f"{caller}.token")

    databases = ShardDatabases([STACK_MARIADB])
    social = SocialServer(databases, unique("sg"), **secured)
    rank_env = service_env(
        STEPBOARD_GRPC_PORT="0", STEPBOARD_BOARD_NAMESPACE=unique("ns"),
        **client_of_social("rank"), **secured,
    )
    ingest_env = service_env(
        STEPBOARD_GRPC_PORT="0", STEPBOARD_KAFKA_TOPIC=unique("never-written"),
        **client_of_social("ingest"), **secured,
    )
    with rank_server(rank_env) as rank, ingest_server(ingest_env) as ingest:
        yield Deployment(request.param, policy, tokens, tls, social, rank.port, ingest.port,
                         app)
    social.close()
    databases.drop()


def _code(call: Callable[[], object]) -> grpc.StatusCode:
    """The status ``call`` ends with (OK if it returns)."""
    try:
        call()
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


# Per caller of the default policies: (method, call) pairs it is allowed and denied. An
# allowed call passes the caller check and is answered by the servicer (a like between
# non-friends: FAILED_PRECONDITION, after ingest asked social with its own token).
def _cases(d: Deployment, caller: str, user: int) -> tuple[list, list]:
    graph, ranking, ingest = d.friend_graph(caller), d.ranking(caller), d.ingest(caller)
    day = today().isoformat()
    friends = social_pb2.CheckFriendshipRequest(user_id=user, friend_id=user + 1)
    add = social_pb2.AddFriendshipRequest(user_id=user, friend_id=user + 1)
    hot = social_pb2.ListHotUsersRequest(min_friends=1_000_000)
    report = ingest_pb2.ReportStepsRequest(report=ingest_pb2.StepReport(
        user_id=user, day=day, steps=10, measured_at={"seconds": 1}))
    like = ingest_pb2.LikeRequest(liker_id=user, liked_id=user + 1, day=day, liked=True)
    cases = {
        "ingest": (
            [(f"{FG}/CheckFriendship", lambda: graph.CheckFriendship(friends, timeout=10))],
            [(f"{FG}/AddFriendship", lambda: graph.AddFriendship(add, timeout=10)),
             ("stepboard.v1.StepIngest/ReportSteps",
              lambda: ingest.ReportSteps(report, timeout=10))],
        ),
        "rank": (
            [(f"{FG}/ListFriends", lambda: graph.ListFriends(
                social_pb2.ListFriendsRequest(user_id=user), timeout=10))],
            [("stepboard.v1.StepIngest/ReportSteps",
              lambda: ingest.ReportSteps(report, timeout=10)),
             (f"{FG}/AddFriendship", lambda: graph.AddFriendship(add, timeout=10)),
             (f"{FG}/ListHotUsers", lambda: graph.ListHotUsers(hot, timeout=10))],
        ),
        "precompute": (
            [(f"{FG}/ListHotUsers", lambda: graph.ListHotUsers(hot, timeout=10))],
            [(f"{FG}/UpsertProfile", lambda: graph.UpsertProfile(
                upsert_request(user_id=user, nickname="x"), timeout=10)),
             ("stepboard.v1.Ranking/GetGlobalTop", lambda: ranking.GetGlobalTop(
                 ranking_pb2.GetGlobalTopRequest(day=day), timeout=10))],
        ),
        d.app: (
            [("stepboard.v1.StepIngest/Like", lambda: ingest.Like(like, timeout=10)),
             ("stepboard.v1.Ranking/GetFriendRanking", lambda: ranking.GetFriendRanking(
                 ranking_pb2.GetFriendRankingRequest(user_id=user, day=day), timeout=10)),
             (f"{FG}/AddFriendship", lambda: graph.AddFriendship(add, timeout=10))],
            [(f"{FG}/ListHotUsers", lambda: graph.ListHotUsers(hot, timeout=10)),
             (f"{FG}/GetRankingExclusions", lambda: graph.GetRankingExclusions(
                 social_pb2.GetRankingExclusionsRequest(viewer_id=user), timeout=10))],
        ),
    }
    return cases[caller]


def test_every_caller_of_the_default_policy_is_allowed_its_methods_and_denied_others(
    deployment,
):
    assert set(deployment.policy.grants) == {"ingest", "rank", "precompute", deployment.app}
    for caller in deployment.policy.grants:
        user = fresh_user_base()
        allowed, denied = _cases(deployment, caller, user)
        for method, call in allowed:
            assert caller in deployment.policy.callers_of(f"/{method}"), (caller, method)
            assert _code(call) not in (DENIED, grpc.StatusCode.UNAUTHENTICATED), (caller, method)
        for method, call in denied:
            with pytest.raises(grpc.RpcError) as raised:
                call()
            assert raised.value.code() == DENIED, (caller, method)
            assert raised.value.details() == f'caller "{caller}" may not call {method}'


def test_an_app_is_not_granted_internal_methods_by_its_wildcard(deployment):
    for method in INTERNAL_METHODS:
        assert deployment.app not in deployment.policy.callers_of(f"/{method}")
    error = _error(lambda: deployment.friend_graph(deployment.app).ListHotUsers(
        social_pb2.ListHotUsersRequest(min_friends=1), timeout=10))
    assert error.code() == DENIED
    assert error.details() == f'caller "{deployment.app}" may not call {FG}/ListHotUsers'


def _error(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def test_a_denied_write_changes_nothing(deployment):
    user = fresh_user_base()
    rank = deployment.friend_graph("rank")
    error = _error(lambda: rank.AddFriendship(
        social_pb2.AddFriendshipRequest(user_id=user, friend_id=user + 1), timeout=10))
    assert error.code() == DENIED
    listed = deployment.friend_graph(deployment.app).ListFriends(
        social_pb2.ListFriendsRequest(user_id=user), timeout=10)
    assert list(listed.friend_ids) == []


def test_an_unknown_token_is_unauthenticated_even_with_a_client_certificate(deployment):
    stub = social_pb2_grpc.FriendGraphStub(create_channel(
        f"localhost:{deployment.social.built.port}", ChannelSettings(
            ca_file=str(deployment.tls / "ca.pem"), cert_file=str(deployment.tls / "client.pem"),
            key_file=str(deployment.tls / "client-key.pem"), token="not-a-token")))
    error = _error(lambda: stub.ListFriends(social_pb2.ListFriendsRequest(user_id=1), timeout=10))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_without_a_token_the_client_certificate_names_the_caller(deployment):
    # The stack's shared client certificate (CN stepboard-client) is granted nothing.
    error = _error(lambda: deployment.friend_graph("").ListFriends(
        social_pb2.ListFriendsRequest(user_id=1), timeout=10))
    assert error.code() == DENIED
    assert error.details() == f'caller "stepboard-client" may not call {FG}/ListFriends'
    if deployment.name == "chart":  # a certificate for DNS:app-backend is that caller
        reply = deployment.friend_graph("", cert="app-cert").ListFriends(
            social_pb2.ListFriendsRequest(user_id=1), timeout=10)
        assert list(reply.friend_ids) == []


def test_the_caller_labels_the_request_metrics_and_the_access_log(deployment, caplog):
    method = f"/{FG}/AddFriendship"

    def count(caller: str, code: str) -> float:
        labels = {"grpc_type": "unary", "grpc_service": FG, "grpc_method": "AddFriendship",
                  "grpc_code": code, "caller": caller}
        return REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0.0

    before = {c: count(c, "PERMISSION_DENIED") for c in ("rank", "other")}
    caplog.set_level(logging.INFO, logger="stepboard.access")
    request = social_pb2.AddFriendshipRequest(user_id=1, friend_id=2)
    _error(lambda: deployment.friend_graph("rank").AddFriendship(request, timeout=10))
    _error(lambda: deployment.friend_graph("").AddFriendship(request, timeout=10))
    assert count("rank", "PERMISSION_DENIED") == before["rank"] + 1
    # A certificate identity no token or policy names is counted as "other".
    assert count("other", "PERMISSION_DENIED") == before["other"] + 1
    assert count("stepboard-client", "PERMISSION_DENIED") == 0
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records
             if r.name == "stepboard.access"]
    (line,) = [entry for entry in lines if entry["caller"] == "rank"]
    assert line["method"] == method.lstrip("/") and line["code"] == "PERMISSION_DENIED"
    assert line["peer"].startswith(("ipv4:", "ipv6:")) and line["duration_ms"] >= 0


@pytest.mark.parametrize("token", ["ingest", "precompute"])
def test_a_component_refused_by_social_fails_its_call_unavailable_naming_why(
    deployment, tmp_path, token
):
    # rank_svc presenting another component's token: ingest's is refused the privacy
    # exclusions, precompute's the friend list (it streams friends instead). The ranking says
    # so as UNAVAILABLE naming social's refusal, never as an INTERNAL error.
    (tmp_path / "client.token").write_text(deployment.tokens[token])
    env = service_env(
        STEPBOARD_GRPC_PORT="0", STEPBOARD_BOARD_NAMESPACE=unique("ns"),
        **social_client_env(deployment.tls, deployment.social.built.port,
                            tmp_path / "client.token"),
    )
    with rank_server(env) as rank, grpc.insecure_channel(f"localhost:{rank.port}") as channel:
        error = _error(lambda: ranking_pb2_grpc.RankingStub(channel).GetFriendRanking(
            ranking_pb2.GetFriendRankingRequest(user_id=fresh_user_base(),
                                                day=today().isoformat()), timeout=10))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "PERMISSION_DENIED" in error.details()
