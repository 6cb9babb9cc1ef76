"""Stopping child processes politely: shared by the tests and the benchmark harness."""

import subprocess


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
