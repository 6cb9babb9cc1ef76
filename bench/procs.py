"""Service processes of a run: started with the run's environment, stopped by pid."""

import subprocess
import sys
import time
from pathlib import Path

import grpc

from bench.config import LOGS, ROOT
from tests.processes import start_logged, stop_process


class Processes:
    """Every process this run started, so each is stopped by its own pid at the end."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.started: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        """Starts ``argv`` (a ``python -m`` module when it starts with ``-m``) as ``name``."""
        command = [sys.executable, *argv] if argv[0] == "-m" else argv
        process = start_logged(command, env, self.log(name), ROOT)
        self.started[name] = process
        return process

    def stop(self, name: str, timeout_s: float = 30) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        process = self.started.pop(name, None)
        if process is not None:
            stop_process(process, timeout_s)

    def stop_all(self) -> None:
        """Stops every process still running, newest first."""
        for name in reversed(list(self.started)):
            self.stop(name)

    def log(self, name: str) -> Path:
        """Where ``name`` writes its output."""
        return LOGS / f"{self.run_id}-{name}.log"

    def rss_mib(self) -> dict[str, float]:
        """Resident set size of each running process, in MiB (from /proc)."""
        sizes = {}
        for name, process in self.started.items():
            try:
                status = Path(f"/proc/{process.pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    sizes[name] = round(int(line.split()[1]) / 1024, 1)
        return sizes


def wait_ready(addr: str, process: subprocess.Popen, log: Path, timeout_s: float = 60) -> None:
    """Waits until a gRPC server accepts connections; fails with its log if it died."""
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(addr) as channel:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{addr} exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                grpc.channel_ready_future(channel).result(timeout=1)
                return
            except grpc.FutureTimeoutError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{addr} not ready in {timeout_s} s") from None
