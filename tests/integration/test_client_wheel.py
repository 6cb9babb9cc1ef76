"""The stepboard-client wheel alone is enough to call stepboard: built from clients/python,
installed in a fresh virtualenv with nothing but its dependencies from PyPI, it makes every
RPC of the three services against the running local stack (plaintext, 50051-50053)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stepboard.v1 import ingest_pb2, ranking_pb2, social_pb2
from tests.social_support import fresh_user_base
from tests.stack import ROOT, SERVERS

CALLS_SCRIPT = ROOT / "tests" / "client_wheel_calls.py"
# Run in the virtualenv: what is installed, and every requirement reachable from the client.
INSTALLED = r"""
import importlib.metadata as md, json, re

def name(text):
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", text).group()).lower()

def requires(dist):
    return {name(r) for r in md.requires(dist) or [] if "extra ==" not in r}

import stepboard_client, stepboard.v1
needed, todo = set(), ["stepboard-client"]
while todo:
    dist = todo.pop()
    if dist not in needed:
        needed.add(dist)
        try:
            todo.extend(requires(dist))
        except md.PackageNotFoundError:
            pass
print(json.dumps({
    "installed": sorted(name(d.metadata["Name"]) for d in md.distributions()),
    "needed": sorted(needed),
    "client_requires": sorted(requires("stepboard-client")),
    "files": [stepboard_client.__file__, stepboard.v1.__file__],
}))
"""


def run(*command: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs ``command`` outside the repository's environment (no PYTHONPATH), checked."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh virtualenv with the client wheel installed (its dependencies from PyPI, by
    way of pip's cache)."""
    tmp = tmp_path_factory.mktemp("client-wheel")
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
        ROOT / "clients" / "python", "-w", tmp / "dist", cwd=ROOT)
    (wheel,) = (tmp / "dist").glob("stepboard_client-*.whl")
    run(sys.executable, "-m", "venv", tmp / "venv", cwd=tmp)
    run(tmp / "venv" / "bin" / "pip", "install", "-q", "--disable-pip-version-check", wheel,
        cwd=tmp)
    return tmp / "venv"


def proto_methods() -> set[str]:
    """The name of every method of the three services."""
    return {method.name
            for module in (ingest_pb2, ranking_pb2, social_pb2)
            for service in module.DESCRIPTOR.services_by_name.values()
            for method in service.methods}


def test_the_venv_holds_only_the_client_grpcio_protobuf_and_their_dependencies(venv):
    answer = json.loads(run(venv / "bin" / "python", "-c", INSTALLED, cwd=venv).stdout)
    assert answer["client_requires"] == ["grpcio", "protobuf"]
    assert {"stepboard-client", "grpcio", "protobuf"} <= set(answer["installed"])
    # pip (and setuptools on older Pythons) come with every virtualenv.
    assert set(answer["installed"]) - {"pip", "setuptools"} <= set(answer["needed"])
    assert all(Path(f).is_relative_to(venv) for f in answer["files"]), answer["files"]


def test_the_client_makes_every_call_of_the_three_services(venv):
    addresses = [f"127.0.0.1:{SERVERS[name][0]}" for name in ("ingest", "social", "rank")]
    result = run(venv / "bin" / "python", CALLS_SCRIPT, *addresses, str(fresh_user_base()),
                 cwd=venv, timeout=60)
    answered = {line.split()[1] for line in result.stdout.splitlines()
                if line.startswith("called ")}
    assert answered == proto_methods()


def test_the_readmes_python_example_runs_with_the_wheel_alone(venv):
    (example,) = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    result = run(venv / "bin" / "python", "-c", example, cwd=venv, timeout=30)
    lines = result.stdout.splitlines()
    assert any(line.split()[1:2] == ["42"] for line in lines[:-1]), result.stdout
    assert lines[-1].endswith("on today's board"), result.stdout


def test_the_wheel_types_the_messages_and_the_service_stubs(venv):
    (package,) = (venv / "lib").glob("python3*/site-packages/stepboard")
    typed = {path.name for path in (package / "v1").glob("*.pyi")}
    assert typed == {f"{name}{kind}.pyi" for name in ("ingest", "ranking", "social")
                     for kind in ("_pb2", "_pb2_grpc")}
    assert (package / "py.typed").exists()
