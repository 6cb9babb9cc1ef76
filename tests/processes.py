"""Starting child processes with a log file, and stopping them politely: shared by the
tests and the benchmark harness."""

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def start_logged(
    command: Sequence[str], env: Mapping[str, str], log_path: Path, cwd: Path
) -> subprocess.Popen:
    """Starts ``command`` in ``cwd`` with its stdout and stderr written to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")  # noqa: SIM115 - lives with the process
    return subprocess.Popen(list(command), cwd=cwd, env=dict(env), stdout=log, stderr=log)


def stop_process(process: subprocess.Popen, timeout_s: float = 30) -> int:
    """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)
    return process.returncode
