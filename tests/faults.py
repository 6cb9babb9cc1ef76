"""Fault injection on the local stack's own processes (by their pid files, never by name)."""

import os
import signal
import subprocess

from tests.stack import ROOT

RUN_DIR = ROOT / ".stack" / "run"


def kill_component(name: str) -> int:
    """SIGKILLs the stack process ``name`` (kafka, redis, mariadb) and waits until it is gone."""
    pid = int((RUN_DIR / f"{name}.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        subprocess.run(["sleep", "0.1"], check=True)
    raise AssertionError(f"{name} (pid {pid}) did not die")


def start_infra() -> None:
    """Starts whatever infrastructure is not running (Kafka, Redis, MariaDB) and waits."""
    subprocess.run(
        ["bash", str(ROOT / "stack" / "stack.sh"), "up", "--infra"],
        cwd=ROOT, check=True, capture_output=True, timeout=300,
    )
