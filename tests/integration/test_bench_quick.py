"""The benchmark harness runs end to end at tiny scale (no thresholds asserted)."""

import json
import subprocess
import sys
import time

import pytest

from bench.ghz import ghz_path
from tests.stack import ROOT


@pytest.mark.timeout(310)
def test_bench_harness_runs_at_tiny_scale(tmp_path):
    if ghz_path() is None:
        pytest.fail("ghz is not installed: run make install")
    out = tmp_path / "tiny.json"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--scale", "tiny", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["errors"] == {}, results["errors"]
    for phase in ("backlog", "ingest", "consumer", "memory", "ranking", "freshness", "naive",
                  "storm", "rate", "library", "windows", "archive", "history", "likes",
                  "like_calls", "left_rankings", "rss"):
        assert phase in results["phases"], phase
    phases = results["phases"]
    assert phases["consumer"]["single"]["reports_per_s"] > 0
    assert phases["consumer"]["batched"]["reports_per_s"] > 0
    assert phases["rate"]["limited"]["throttled_s"] > 0
    assert phases["rate"]["unlimited"]["throttled_s"] == 0
    assert phases["windows"]["GetFriendRanking 200, week"]["calls"] > 0
    assert phases["windows"]["week"]["entries"] > 0
    archived = phases["archive"]
    assert archived["archive"]["rows"] == archived["load_data"]["rows"] == archived["participants"]
    assert phases["history"]["calls"] > 0 and phases["history"]["errors"] == 0
    likes = phases["likes"]
    for series in ("GetFriendRanking 200, no likes (beside the likes)",
                   "GetFriendRanking 200, likes shown"):
        assert likes[series]["calls"] > 0 and likes[series]["errors"] == 0, series
    assert likes["shown"]["with_likes"] > 0 and likes["shown"]["liked_by_me"] > 0
    assert likes["memory"]["likes"] == likes["seed"]["likes_sent"]
    assert likes["memory"]["bytes_per_like"] > 0
    like_calls = phases["like_calls"]
    # ghz cancels the calls in flight when its duration ends; no Like fails otherwise
    assert like_calls["calls"] > like_calls["errors"]
    assert all("transport is closing" in kind for kind in like_calls["error_kinds"])
    assert like_calls["CheckFriendship"]["calls"] > 0
    left = phases["left_rankings"]
    assert left["left"] > 0
    for series in ("GetGlobalRank, none left the rankings",
                   "GetGlobalRank, users left the rankings"):
        assert left[series]["calls"] > 0 and left[series]["errors"] == 0, series
    assert (tmp_path / "tiny.md").read_text().count("| target |") == 1
    assert list(tmp_path.glob("tiny-*.png"))
    assert time.monotonic() - started < 300
