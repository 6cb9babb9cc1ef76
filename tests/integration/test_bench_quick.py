"""The benchmark harness runs end to end at tiny scale (no thresholds asserted)."""

import json
import subprocess
import sys
import time

import pytest

from bench.ghz import ghz_path
from tests.stack import ROOT


@pytest.mark.timeout(260)
def test_bench_harness_runs_at_tiny_scale(tmp_path):
    if ghz_path() is None:
        pytest.fail("ghz is not installed: run make install")
    out = tmp_path / "tiny.json"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--scale", "tiny", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=250, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["errors"] == {}, results["errors"]
    for phase in ("backlog", "ingest", "consumer", "memory", "ranking", "freshness", "naive",
                  "storm", "library", "windows", "archive", "history", "rss"):
        assert phase in results["phases"], phase
    phases = results["phases"]
    assert phases["consumer"]["single"]["reports_per_s"] > 0
    assert phases["consumer"]["batched"]["reports_per_s"] > 0
    assert phases["windows"]["GetFriendRanking 200, week"]["calls"] > 0
    assert phases["windows"]["week"]["entries"] > 0
    archived = phases["archive"]
    assert archived["archive"]["rows"] == archived["load_data"]["rows"] == archived["participants"]
    assert phases["history"]["calls"] > 0 and phases["history"]["errors"] == 0
    assert (tmp_path / "tiny.md").read_text().count("| target |") == 1
    assert list(tmp_path.glob("tiny-*.png"))
    assert time.monotonic() - started < 250
