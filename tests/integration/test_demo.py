"""``make demo`` (scripts/demo.py) and the README's calls on its data, run against private
write paths (this tree's servers and consumer) with the local stack's settings: it seeds a
week, prints rankings and a history that agree with what it sent, and reruns."""

import contextlib
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import date

import pytest

from common.record_format import decode_reports, is_like
from stepboard.v1 import social_pb2
from tests.harness import unique
from tests.integration.test_readme import readme_block, run_block
from tests.social_support import STACK_MARIADB, ShardDatabases
from tests.stack import ROOT
from tests.write_path import WritePath

RANKING_LINE = re.compile(r"^  (\d+)\. (\S+) +(\d+) steps(?:  (\d+) likes?)?(, liked by me)?$")
HISTORY_LINE = re.compile(r"^  (\d{4}-\d{2}-\d{2}) +(\d+) steps")
ADAS_FRIENDS = [1, 2, 3, 4, 5]  # and herself


@contextlib.contextmanager
def demo_path(**overrides: str) -> Iterator[WritePath]:
    """A private write path (topic, boards, a social_svc on private shard databases, no
    archive: every seeded day is on a board) with one consumer."""
    databases = ShardDatabases([STACK_MARIADB, STACK_MARIADB])
    write_path = WritePath(
        {"STEPBOARD_MYSQL_SHARD_DSNS": databases.dsns,
         "STEPBOARD_SOCIAL_CACHE_NAMESPACE": unique("sg"),
         "STEPBOARD_ARCHIVE_MYSQL_SHARD_DSNS": ""} | overrides,
        own_social=True,
    )
    try:
        write_path.start_consumer()
        yield write_path
    finally:
        write_path.close()
        databases.drop()


@pytest.fixture(scope="module")
def path():
    with demo_path() as write_path:
        yield write_path


def run_demo(path: WritePath) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--ingest", path.ingest_address,
         "--social", path.env["STEPBOARD_SOCIAL_ADDR"], "--rank", path.rank_address],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )


@pytest.fixture(scope="module")
def demo_output(path) -> str:
    """What the demo printed when run a second time on ``path``."""
    first = run_demo(path)
    assert first.returncode == 0, first.stdout + first.stderr
    again = run_demo(path)
    assert again.returncode == 0, again.stdout + again.stderr
    return again.stdout


def section(stdout: str, heading: str) -> tuple[str, list[str]]:
    """The line starting with ``heading`` and the indented lines under it."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    body = []
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        body.append(line)
    return lines[start], body


def ranking(path: WritePath, lines: list[str]) -> list[tuple[int, int]]:
    """``(user id, steps)`` of printed ranking lines, in order."""
    found = [RANKING_LINE.match(line) for line in lines]
    assert all(found), lines
    profiles = path.social.GetProfiles(
        social_pb2.GetProfilesRequest(user_ids=range(1, 7)), timeout=10).profiles
    ids = {p.nickname: p.user_id for p in profiles}
    return [(ids[m[2]], int(m[3])) for m in found]


def sent_maxima(path: WritePath, records: int) -> dict[tuple[int, str], int]:
    """(user, day) → the best count among the reports written to the path's topic."""
    best: dict[tuple[int, str], int] = {}
    for message in path.read_topic(path.topic, records):
        if is_like(message.value()):
            continue
        for report in decode_reports(message.value()):
            key = (report.user_id, report.day)
            best[key] = max(best.get(key, 0), report.steps)
    return best


def week_of(demo_output: str) -> tuple[str, str]:
    """The first and last day of the week the demo printed."""
    heading, _ = section(demo_output, "weekly friend ranking of user 1 (Ada) for the week ")
    return re.search(r"week (\S+) to (\S+):$", heading).groups()


def test_demo_seeds_the_last_7_days_and_prints_what_it_sent(path, demo_output):
    """The printed day ranking, week ranking (each total the sum of the user's daily best
    counts sent in the week) and history equal the reports on the topic: two runs, one
    ``ReportStepsBatch`` record and three likes each."""
    best = sent_maxima(path, 8)
    days = sorted({day for _, day in best})
    assert len(days) == 7
    assert (date.fromisoformat(days[-1]) - date.fromisoformat(days[0])).days == 6

    heading, lines = section(demo_output, "friend ranking of user 1 (Ada) for ")
    today = heading.split(" for ")[1].rstrip(":")
    assert today == days[-1]
    assert lines[0] == "  1. Grace       12500 steps  1 like, liked by me"
    assert dict(ranking(path, lines)) == {u: best.get((u, today), 0) for u in ADAS_FRIENDS}
    likes = {m[2]: (m[4], m[5]) for m in map(RANKING_LINE.match, lines)}
    assert likes["Ada"] == ("2", None) and likes["Linus"] == (None, None)
    assert "champion: Grace, cover https://covers.example/grace.jpg" in demo_output

    first, last = week_of(demo_output)
    assert date.fromisoformat(first).weekday() == 0 and date.fromisoformat(last).weekday() == 6
    assert days[0] <= first <= today <= last
    weekly = ranking(path, section(demo_output, "weekly friend ranking of user 1")[1])
    assert dict(weekly) == {
        u: sum(steps for (user, day), steps in best.items()
               if user == u and first <= day <= last)
        for u in ADAS_FRIENDS
    }
    assert [steps for _, steps in weekly] == sorted((s for _, s in weekly), reverse=True)

    _, lines = section(demo_output, "history of user 1 (Ada) from ")
    history = [HISTORY_LINE.match(line) for line in lines]
    assert all(history), lines
    assert [(m[1], int(m[2])) for m in history] == [(d, best.get((1, d), 0)) for d in days]


def test_demo_shows_who_liked_and_a_friend_hiding_for_a_moment(path, demo_output):
    """The likers of Ada's day are listed; while Ken hides his steps from her, her ranking
    neither shows nor counts him; afterwards he shows them again."""
    heading, lines = section(demo_output, "who liked Ada's day, newest first")
    assert heading.endswith("(2):")
    assert sorted(line.split()[0] for line in lines) == ["Grace", "Linus"]
    heading, lines = section(demo_output, "Ken hides his steps from Ada; her ranking now")
    assert heading.endswith("(4 in it):")
    assert [user for user, _ in ranking(path, lines)] == [2, 3, 1, 4]
    settings = path.social.GetPrivacySettings(
        social_pb2.GetPrivacySettingsRequest(user_id=5), timeout=10)
    assert list(settings.hidden_from) == []


def test_readme_week_month_and_history_calls_on_demo_data(path, demo_output):
    """The README's calls after ``make demo``, sent to the path's rank server: the week
    answer's window and totals are the demo's, the month's window is the calendar month,
    and the history lists the 7 seeded days."""
    block = readme_block("PERIOD_MONTH").replace("localhost:50053", path.rank_address)
    result = run_block(block)
    assert result.returncode == 0, result.stderr
    answers = re.split(r"\n(?=\{)", result.stdout.strip())
    assert len(answers) == 3, result.stdout
    week, month, history = answers
    first, last = week_of(demo_output)
    assert f'"window_first_day": "{first}"' in week and f'"window_last_day": "{last}"' in week
    printed = ranking(path, section(demo_output, "weekly friend ranking of user 1")[1])
    entries = week.split('"me"')[0]  # grpcurl leaves out 0 steps
    assert re.findall(r'"user_id": "(\d+)",\s+"steps": "(\d+)"', entries) == [
        (str(user), str(steps)) for user, steps in printed if steps]
    today = section(demo_output, "friend ranking of user 1 (Ada) for ")[0][-11:-1]
    assert f'"window_first_day": "{today[:8]}01"' in month
    assert len(re.findall(r'"day": "\d{4}-\d{2}-\d{2}"', history)) == 7


def test_demo_on_a_stack_with_a_one_day_late_window_prints_the_rejected_reports():
    with demo_path(STEPBOARD_LATE_DAYS="1") as short:
        result = run_demo(short)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "older than the late window" in result.stderr
    assert "friend ranking" not in result.stdout

