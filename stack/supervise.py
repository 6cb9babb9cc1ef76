"""Local-stack supervisor (stdlib only), started in the background by `stack/stack.sh up`.

Runs every service in stack/services.tsv as `.venv/bin/python -m <module>` with
stack/local.env, .stack/run/mode.env and .stack/run/mode.<module>.env (the TLS mode's
settings and the module's own token, if present) plus STEPBOARD_GRPC_PORT /
STEPBOARD_METRICS_PORT in its environment,
output appended to .stack/logs/<module>.log and pid in .stack/run/<module>.pid.
A child that exits is restarted with exponential backoff (capped at 10 s).
SIGTERM/SIGINT: SIGTERM every child, wait up to 15 s, SIGKILL leftovers, exit.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make the project's packages importable
from common.config import read_env_file  # noqa: E402  (stdlib only, like this script)

STACK = ROOT / ".stack"
PYTHON = ROOT / ".venv" / "bin" / "python"
BACKOFF_MAX = 10.0
STABLE_AFTER = 30.0  # a child that ran this long starts over at the minimum backoff
STOP_GRACE = 15.0


def log(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} supervisor: {msg}", flush=True)


class Child:
    def __init__(self, module: str, grpc_port: str, metrics_port: str, base_env: dict):
        self.module = module
        self.env = dict(base_env, STEPBOARD_METRICS_PORT=metrics_port, PYTHONUNBUFFERED="1")
        if grpc_port != "-":
            self.env["STEPBOARD_GRPC_PORT"] = grpc_port
        self.pidfile = STACK / "run" / f"{module}.pid"
        self.logfile = STACK / "logs" / f"{module}.log"
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.failures = 0
        self.restart_at = 0.0

    def start(self) -> None:
        with open(self.logfile, "ab") as out:
            self.proc = subprocess.Popen(
                [str(PYTHON), "-m", self.module],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.started = time.monotonic()
        self.pidfile.write_text(f"{self.proc.pid}\n")
        log(f"started {self.module} pid {self.proc.pid}")

    def check(self) -> None:
        """Restart the child if it exited (after its backoff delay)."""
        now = time.monotonic()
        if self.proc is not None:
            code = self.proc.poll()
            if code is None:
                return
            ran = now - self.started
            self.failures = 0 if ran >= STABLE_AFTER else self.failures + 1
            delay = min(BACKOFF_MAX, 0.5 * 2**self.failures)
            log(
                f"{self.module} exited with {code} after {ran:.1f}s; restarting in {delay:.1f}s"
                f" (log: {self.logfile.relative_to(ROOT)})"
            )
            self.proc = None
            self.pidfile.unlink(missing_ok=True)
            self.restart_at = now + delay
        if now >= self.restart_at:
            self.start()


def main() -> int:
    (STACK / "run").mkdir(parents=True, exist_ok=True)
    (STACK / "logs").mkdir(parents=True, exist_ok=True)
    base_env = dict(os.environ)
    base_env.update(read_env_file(ROOT / "stack" / "local.env"))
    mode_env = STACK / "run" / "mode.env"  # TLS settings when started with TLS=1
    if mode_env.exists():
        base_env.update(read_env_file(mode_env))
    children = []
    for line in (ROOT / "stack" / "services.tsv").read_text().splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            own = STACK / "run" / f"mode.{fields[0]}.env"  # its token, in TLS mode
            env = {**base_env, **read_env_file(own)} if own.exists() else base_env
            children.append(Child(*fields, base_env=env))

    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True
        log(f"received {signal.Signals(signum).name}, stopping children")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    log(f"pid {os.getpid()}, supervising {', '.join(c.module for c in children)}")
    while not stopping:
        for child in children:
            if not stopping:
                child.check()
        time.sleep(0.5)

    running = [c.proc for c in children if c.proc is not None and c.proc.poll() is None]
    for proc in running:
        proc.terminate()
    deadline = time.monotonic() + STOP_GRACE
    for proc in running:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log(f"pid {proc.pid} ignored SIGTERM for {STOP_GRACE:.0f}s, killing")
            proc.kill()
            proc.wait()
    for child in children:
        child.pidfile.unlink(missing_ok=True)
    pidfile = STACK / "run" / "supervisor.pid"
    if pidfile.exists() and pidfile.read_text().strip() == str(os.getpid()):
        pidfile.unlink()
    log("all children stopped, exiting")
    return 0


if __name__ == "__main__":
    sys.exit(main())
