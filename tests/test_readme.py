"""The README's grpcurl examples work as printed against the running local stack."""

import re
import subprocess
import time

from tests.stack import ROOT


def readme_block(starting_with: str) -> str:
    """The fenced shell block of README.md whose first line starts with ``starting_with``."""
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return next(b for b in blocks if b.startswith(starting_with))


def grpcurl_path() -> str:
    gopath = subprocess.run(["go", "env", "GOPATH"], capture_output=True, text=True, check=True)
    return f"{gopath.stdout.strip()}/bin"


def run_block(block: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-e", "-c", f'export PATH="$PATH:{grpcurl_path()}"\n{block}'],
        capture_output=True, text=True, timeout=60,
    )


def test_report_then_global_rank_example():
    block = readme_block("DAY=")
    for _ in range(10):  # the consumer applies the report asynchronously
        result = run_block(block)
        if result.returncode == 0:
            break
        time.sleep(0.5)
    assert result.returncode == 0, result.stderr
    assert '"user_id": "42"' in result.stdout
    assert '"total_participants"' in result.stdout


def test_list_and_health_examples():
    block = readme_block("grpcurl -plaintext localhost:50051 list")
    result = run_block(block)
    assert result.returncode == 0, result.stderr
    for service in ("stepboard.v1.StepIngest", "stepboard.v1.FriendGraph", "stepboard.v1.Ranking"):
        assert service in result.stdout
    assert '"status": "SERVING"' in result.stdout
