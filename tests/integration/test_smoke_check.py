"""``python -m common.smoke`` (the chart's ``helm test``) against the running stack: every
server SERVING and one ranking call pass; a server that does not answer, or a caller the
tokens file does not list, fail with the documented status and a line naming the cause."""

import subprocess
import sys
from pathlib import Path

from tests.harness import free_port, service_env
from tests.stack import ROOT, SERVERS


def smoke(*args: str, **env: str) -> subprocess.CompletedProcess:
    addresses = [f"--{name}=127.0.0.1:{port}" for name, (port, _) in SERVERS.items()]
    return subprocess.run(
        [sys.executable, "-m", "common.smoke", *addresses, *args],
        env=service_env(**env), cwd=ROOT, capture_output=True, text=True, timeout=60,
    )


def test_the_running_stack_passes(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("smoke-test:0123456789abcdef\nops-team:fedcba9876543210\n")
    done = smoke("--caller=smoke-test", STEPBOARD_AUTH_TOKENS_FILE=str(tokens))
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line.split(" at ")[0] for line in done.stdout.splitlines()[:3]] == [
        "ingest", "social", "rank"]
    assert "rank: GetGlobalTop answered" in done.stdout
    assert done.stdout.rstrip().endswith("common.smoke: OK")


def test_a_server_that_does_not_answer_fails_naming_it() -> None:
    done = smoke(f"--social=127.0.0.1:{free_port()}", "--timeout=2")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "common.smoke: FAILED: social: not SERVING (UNAVAILABLE" in done.stderr


def test_a_caller_missing_from_the_tokens_file_is_a_configuration_error(tmp_path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("ops-team:fedcba9876543210\n")
    done = smoke("--caller=smoke-test", STEPBOARD_AUTH_TOKENS_FILE=str(tokens))
    assert done.returncode == 2
    assert "--caller smoke-test: not in STEPBOARD_AUTH_TOKENS" in done.stderr
