"""The chart's TLS probes keep gRPC health semantics: the exec probe it renders for a
server in tls.servers, run with the grpc_health_probe the image carries (same version,
installed by stack/install.sh), passes while a TLS server with client certificates
required is SERVING and fails once it reports NOT_SERVING (draining), though its port still
accepts TCP connections (all the TCP probe it replaces checked).

Certificates come from ``stack/tls.sh``: the chart's files map onto them (the pod's
certificate onto the client certificate, the server name onto the name the server's
certificate holds).
"""

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.server import BuiltServer
from tests.deploy_render import CHART, go_tool, render
from tests.harness import service_env, unique
from tests.in_process import rank_server
from tests.stack import ROOT, SERVERS

MTLS_VALUES = CHART / "ci" / "sentinel-tls-values.yaml"


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> Path:
    """A fresh CA, server and client certificates."""
    directory = tmp_path_factory.mktemp("tls")
    subprocess.run(["bash", str(ROOT / "stack" / "tls.sh"), str(directory)], check=True)
    return directory


@pytest.fixture
def server(tls: Path) -> Iterator[BuiltServer]:
    """A ranking server serving TLS that requires client certificates."""
    env = service_env(
        STEPBOARD_GRPC_PORT="0",
        STEPBOARD_BOARD_NAMESPACE=unique("ns"),
        STEPBOARD_TLS_CERT_FILE=str(tls / "server.pem"),
        STEPBOARD_TLS_KEY_FILE=str(tls / "server-key.pem"),
        STEPBOARD_TLS_CLIENT_CA_FILE=str(tls / "ca.pem"),
    )
    with rank_server(env) as built:
        yield built


def local_probe(tls: Path, port: int) -> list[str]:
    """rank's rendered readiness probe (mTLS value set), pointed at the local server and
    certificates."""
    command = render((MTLS_VALUES,)).pod("rank")["containers"][0]["readinessProbe"]["exec"][
        "command"]
    files = {"ca.crt": "ca.pem", "tls.crt": "client.pem", "tls.key": "client-key.pem"}
    local = [go_tool("grpc-health-probe")]
    for flag in command[1:]:
        flag = re.sub(r"^-addr=localhost:\d+$", f"-addr=localhost:{port}", flag)
        flag = re.sub(r"^-tls-server-name=.*$", "-tls-server-name=localhost", flag)
        flag = re.sub(r"=/etc/stepboard/tls/(.+)$", lambda m: f"={tls / files[m.group(1)]}", flag)
        local.append(flag)
    return local


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


def test_tls_probe_follows_health_not_the_open_port(tls: Path, server: BuiltServer) -> None:
    command = local_probe(tls, server.port)
    assert command[1:4] == [f"-addr=localhost:{server.port}", "-tls",
                            f"-tls-ca-cert={tls / 'ca.pem'}"]
    assert f"-tls-client-cert={tls / 'client.pem'}" in command
    serving = run(command)
    assert serving.returncode == 0, serving.stdout + serving.stderr
    assert "SERVING" in serving.stdout + serving.stderr

    server.health.enter_graceful_shutdown()  # what a SIGTERM does first
    draining = run(command)
    assert draining.returncode != 0, draining.stdout + draining.stderr
    assert "NOT_SERVING" in draining.stdout + draining.stderr
    with socket.create_connection(("localhost", server.port), timeout=5):
        pass  # a TCP probe would still pass


def test_tls_probe_without_the_pod_certificate_is_refused(tls: Path, server: BuiltServer) -> None:
    """Under mTLS the probe needs the client certificate the chart passes."""
    command = [f for f in local_probe(tls, server.port) if not f.startswith("-tls-client-")]
    refused = run(command)
    assert refused.returncode != 0, refused.stdout + refused.stderr


def test_the_helm_test_check_calls_a_tls_server_with_the_pod_certificate(
    tls: Path, server: BuiltServer
) -> None:
    """common.smoke as the test Pod runs it for a server in tls.servers under mTLS: the
    stack's plaintext ingest and social, this TLS ranking server."""
    env = service_env(
        STEPBOARD_CLIENT_TLS_CA_FILE=str(tls / "ca.pem"),
        STEPBOARD_CLIENT_TLS_CERT_FILE=str(tls / "client.pem"),
        STEPBOARD_CLIENT_TLS_KEY_FILE=str(tls / "client-key.pem"),
        STEPBOARD_CLIENT_TLS_SERVER_NAME="localhost",
    )
    args = [sys.executable, "-m", "common.smoke", f"--rank=127.0.0.1:{server.port}",
            "--tls=rank", "--timeout=10"]
    args += [f"--{name}=127.0.0.1:{port}" for name, (port, _) in SERVERS.items()
             if name != "rank"]
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rank: GetGlobalTop answered" in done.stdout
    plaintext = subprocess.run([*(a for a in args if a != "--tls=rank"), "--timeout=2"],
                               env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert plaintext.returncode == 1
    assert "FAILED: rank: not SERVING" in plaintext.stderr


def test_the_installed_probe_is_the_version_the_image_builds() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    install = (ROOT / "stack" / "install.sh").read_text()
    pinned = re.search(r"ARG GRPC_HEALTH_PROBE_VERSION=(\S+)", dockerfile).group(1)
    assert f"GRPC_HEALTH_PROBE_VERSION={pinned}\n" in install
    info = run(["go", "version", "-m", go_tool("grpc-health-probe")]).stdout
    assert re.search(rf"mod\s+github.com/grpc-ecosystem/grpc-health-probe\s+{pinned}\s", info)
