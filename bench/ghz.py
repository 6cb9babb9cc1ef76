"""Driving a server with ``ghz`` (installed by ``stack/install.sh``) and reading its JSON."""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from bench.config import ROOT


def ghz_path() -> str | None:
    """The ghz binary: on PATH or in ``$(go env GOPATH)/bin``."""
    found = shutil.which("ghz")
    if found:
        return found
    gopath = os.environ.get("GOPATH") or str(Path.home() / "go")
    candidate = Path(gopath) / "bin" / "ghz"
    return str(candidate) if candidate.exists() else None


def run_ghz(
    addr: str, call: str, data: object, *, duration_s: float, concurrency: int = 16,
    connections: int = 2, rps: int = 0, timeout_s: float = 10,
) -> dict:
    """Runs ghz against ``addr`` (by reflection) and returns rates, percentiles and the
    latency of every call (for CDFs)."""
    binary = ghz_path()
    if binary is None:
        raise RuntimeError("ghz not installed (make install)")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(data, file)
    try:
        proto = {"StepIngest": "ingest.proto", "Ranking": "ranking.proto",
                 "FriendGraph": "social.proto"}[call.split(".")[2]]
        argv = [binary, "--insecure", "--call", call, "--data-file", file.name,
                "--import-paths", str(ROOT / "protos"), "--proto",
                str(ROOT / "protos" / "stepboard" / "v1" / proto),
                "-z", f"{duration_s}s", "-c", str(concurrency), "--connections", str(connections),
                "-t", f"{timeout_s}s", "-O", "json", "--skipFirst", str(concurrency)]
        if rps:
            argv += ["-r", str(rps)]
        done = subprocess.run([*argv, addr], cwd=ROOT, text=True, capture_output=True,
                              check=False, timeout=duration_s + 120)
    finally:
        os.unlink(file.name)
    if not done.stdout.strip():
        raise RuntimeError(f"ghz failed: {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    details = report.get("details") or []
    ok = [d["latency"] / 1e9 for d in details if d.get("status") == "OK"]
    lat = np.array(ok) * 1000
    errors = sum(1 for d in details if d.get("status") != "OK")
    dist = {f"p{int(p['percentage'])}": p["latency"] / 1e6
            for p in report.get("latencyDistribution") or []}
    seconds = report["total"] / 1e9
    return {
        "tool": "ghz", "calls": report["count"], "errors": errors,
        "error_kinds": {k: v for k, v in (report.get("errorDistribution") or {}).items()},
        "seconds": round(seconds, 2), "rps": round((report["count"] - errors) / seconds, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 3) if lat.size else dist.get("p50"),
        "p90_ms": round(float(np.percentile(lat, 90)), 3) if lat.size else dist.get("p90"),
        "p99_ms": round(float(np.percentile(lat, 99)), 3) if lat.size else dist.get("p99"),
        "max_ms": round(float(lat.max()), 3) if lat.size else None,
        "latencies_ms": lat,
    }
