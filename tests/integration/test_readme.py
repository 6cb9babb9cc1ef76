"""The README's grpcurl examples work as printed against the running local stack."""

import re
import subprocess
import sys
import time

from tests.stack import ROOT


def readme_block(containing: str) -> str:
    """The fenced shell block of README.md that contains ``containing``."""
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return next(b for b in blocks if containing in b)


def grpcurl_path() -> str:
    gopath = subprocess.run(["go", "env", "GOPATH"], capture_output=True, text=True, check=True)
    return f"{gopath.stdout.strip()}/bin"


def run_block(block: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-e", "-c", f'export PATH="$PATH:{grpcurl_path()}"\n{block}'],
        capture_output=True, text=True, timeout=60,
    )


def test_report_then_global_rank_example():
    block = readme_block("StepIngest/ReportSteps")
    for _ in range(10):  # the consumer applies the report asynchronously
        result = run_block(block)
        if result.returncode == 0:
            break
        time.sleep(0.5)
    assert result.returncode == 0, result.stderr
    assert '"user_id": "42"' in result.stdout
    assert '"total_participants"' in result.stdout


def test_likes_example_shows_the_like():
    """Needs the stack running this tree's ingest, social and rank servers (Like)."""
    friends = run_block(readme_block("FriendGraph/AddFriendship"))
    assert friends.returncode == 0, friends.stderr
    liked_by_me = re.compile(r'"liked_?[bB]y_?[mM]e": true')
    for _ in range(60):  # the consumer applies the like asynchronously: the block's ranking
        result = run_block(readme_block("StepIngest/Like"))  # may be read before it is
        if result.returncode == 0 and '"total": "1"' in result.stdout \
                and liked_by_me.search(result.stdout):
            break
        time.sleep(0.5)
    assert result.returncode == 0, result.stderr
    assert '"total": "1"' in result.stdout
    assert liked_by_me.search(result.stdout)


def test_history_example_lists_every_day_of_the_range():
    """Needs the stack running this tree's rank_svc (GetHistory) and archive databases."""
    result = run_block(readme_block("Ranking/GetHistory"))
    assert result.returncode == 0, result.stderr
    assert len(re.findall(r'"day": "\d{4}-\d{2}-\d{2}"', result.stdout)) == 3


def test_weekly_top_example_names_its_week():
    result = run_block(readme_block("PERIOD_WEEK"))
    assert result.returncode == 0, result.stderr
    assert '"windowFirstDay"' in result.stdout or '"window_first_day"' in result.stdout


def test_friend_ranking_example_on_demo_data():
    demo = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")],
        capture_output=True, text=True, timeout=120,
    )
    assert demo.returncode == 0, demo.stderr
    assert "1. Grace" in demo.stdout
    result = run_block(readme_block('\\"page_size\\": 3}'))
    assert result.returncode == 0, result.stderr
    ranked = [(m[0], m[1]) for m in re.findall(r'"user_id": "(\d+)",\s+"steps": "(\d+)"',
                                                  result.stdout)]
    assert ranked[:3] == [("2", "12500"), ("3", "8000"), ("1", "8000")]
    assert '"nickname": "Grace"' in result.stdout
    assert '"total": 5' in result.stdout
    champion = re.search(r'"champion": \{\s+"entry": \{\s+"rank": 1,\s+"user_id": "(\d+)"',
                         result.stdout)
    assert champion and champion.group(1) == "2", result.stdout


def test_friend_graph_example():
    result = run_block(readme_block("FriendGraph/AddFriendship"))
    assert result.returncode == 0, result.stderr
    assert re.search(r'"friend_ids": \[\s+"7"\s+\]', result.stdout)
    assert '"nickname": "Ada"' in result.stdout
    assert result.stdout.count('"cover_url": "https://example.com/a-cover.jpg"') == 2


def test_privacy_example():
    """Needs the stack running this tree's social_svc and rank_svc (privacy RPCs)."""
    result = run_block(readme_block("FriendGraph/SetStepsHidden"))
    assert result.returncode == 0, result.stderr
    assert re.search(r'"hidden_from": \[\s+"7"\s+\]', result.stdout)
    assert '"in_rankings": true' not in result.stdout and '"inRankings": true' not in result.stdout


def test_list_and_health_examples():
    block = readme_block("grpcurl -plaintext localhost:50051 list")
    result = run_block(block)
    assert result.returncode == 0, result.stderr
    for service in ("stepboard.v1.StepIngest", "stepboard.v1.FriendGraph", "stepboard.v1.Ranking"):
        assert service in result.stdout
    assert '"status": "SERVING"' in result.stdout
