"""Seeds the running local stack with a small demo (``make demo``).

Six users with profiles and friendships, and their step reports for the last 7 days up to
today (UTC dates), which cover the current ISO week up to today, all sent through the public
APIs exactly as an app backend would: through the client package (``stepboard_client``,
docs/clients.md), with its default deadlines and retries (one ``ReportStepsBatch``). It
then prints user 1's friend ranking of today and of this week, and user 1's history over
the seeded days.

The social side: every profile has a cover, Grace and Linus like Ada's day and Ada likes
Grace's (``StepIngest.Like``), so Ada's daily ranking shows like counts, which entries she
liked and its champion (the rank-1 friend, with their cover, on every page), and
``ListLikes`` lists who liked her day. Then Ken hides his steps from Ada
(``FriendGraph.SetStepsHidden``): her ranking no longer shows or counts him; the demo
prints it and shows Ken's steps to her again, so the README's examples see the same data.

The local stack accepts reports up to 7 days late (``STEPBOARD_LATE_DAYS`` in
stack/local.env); a stack with a shorter late window rejects the older days, and the demo
prints every rejected report and exits with status 1.

Running it again the same day changes nothing: profiles and friendships are upserts, a
like is a state (liking again changes nothing), the hide is undone at the end, and the
boards keep each user's best count of a day. Today's counts are fixed (the README's
example); a past day's count is today's plus a bonus derived from its date, so a day seeded
as today and again, on a later day's run, as a past day ends with the past day's count.
"""

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from stepboard.v1 import ingest_pb2, ranking_pb2, social_pb2
from stepboard_client import Client

USERS = {1: "Ada", 2: "Grace", 3: "Linus", 4: "Barbara", 5: "Ken", 6: "Margaret"}
FRIENDS = [(1, 2), (1, 3), (1, 4), (1, 5), (2, 3), (4, 6)]
# user → (steps so far today, minutes before now when that count was reached)
TODAY = {1: (8000, 30), 2: (12500, 50), 3: (8000, 90), 5: (300, 5), 6: (20000, 10)}
DAYS = 7
ME = 1
# (liker, liked) of today's likes
LIKES = [(2, 1), (3, 1), (1, 2)]
HIDER = 5  # hides his steps from ME for a moment
WAIT_S = 30.0


def past_steps(user_id: int, day: date) -> int:
    """``user_id``'s count of a finished ``day`` (0: no report): today's count so far plus
    0 to 6,000 steps that vary with the date; Barbara (4) walks every other day only."""
    bonus = (day.toordinal() * 23 + user_id * 13) % 61 * 100
    if user_id == 4:
        return 4000 + bonus if day.toordinal() % 2 == 0 else 0
    return TODAY[user_id][0] + bonus


def seeded_days(today: date) -> list[date]:
    """The days seeded: the last :data:`DAYS` days up to ``today``, oldest first."""
    return [today - timedelta(days=back) for back in range(DAYS - 1, -1, -1)]


def reports(now: datetime) -> list[ingest_pb2.StepReport]:
    """Every report of the demo at ``now``: today's counts reached some minutes ago, a past
    day's reached at 18:00 UTC that day plus a few minutes per user."""
    today = now.date()
    sent = []
    for day in seeded_days(today):
        for user_id in USERS:
            if day == today:
                if user_id not in TODAY:
                    continue
                steps, ago = TODAY[user_id]
                reached = now - timedelta(minutes=ago)
            else:
                steps = past_steps(user_id, day)
                if not steps:
                    continue
                reached = datetime(day.year, day.month, day.day, 18, tzinfo=UTC) + timedelta(
                    minutes=7 * user_id)
            sent.append(ingest_pb2.StepReport(
                user_id=user_id, day=day.isoformat(), steps=steps,
                measured_at=Timestamp(seconds=int(reached.timestamp())),
            ))
    return sent


def seed_graph(client: Client) -> None:
    """Upserts the profiles and adds the friendships (both idempotent)."""
    for user_id, name in USERS.items():
        client.social.UpsertProfile(
            social_pb2.UpsertProfileRequest(profile=social_pb2.Profile(
                user_id=user_id,
                nickname=name,
                avatar_url=f"https://avatars.example/{name.lower()}.png",
                cover_url=f"https://covers.example/{name.lower()}.jpg",
            ))
        )
    for user_id, friend_id in FRIENDS:
        client.add_friendship(user_id, friend_id)


def send(client: Client, sent: list[ingest_pb2.StepReport]) -> bool:
    """Sends ``sent`` in one batch; prints every report not accepted and returns False if
    there was one."""
    reply = client.report_steps_batch(sent)
    refused = [result for result in reply.results if result.code]
    for result in refused:
        report = sent[result.index]
        print(f"report of user {report.user_id} for {report.day} not accepted "
              f"(code {result.code}): {result.message}", file=sys.stderr)
    return not refused


def week_totals(sent: list[ingest_pb2.StepReport], first: str, last: str) -> dict[int, int]:
    """Per user, the sum of the best count sent for each day from ``first`` to ``last``."""
    best: dict[tuple[int, str], int] = {}
    for report in sent:
        key = (report.user_id, report.day)
        best[key] = max(best.get(key, 0), report.steps)
    totals: dict[int, int] = {}
    for (user_id, day), steps in best.items():
        if first <= day <= last:
            totals[user_id] = totals.get(user_id, 0) + steps
    return totals


def wait_for(read: Callable[[], object], shows_all: Callable[[object], bool]) -> object:
    """``read()`` again until ``shows_all`` holds for its answer (the consumer applies
    reports asynchronously); exits with status 1 if it does not within :data:`WAIT_S`."""
    deadline = time.monotonic() + WAIT_S
    while True:
        answer = read()
        if shows_all(answer):
            return answer
        if time.monotonic() > deadline:
            print(f"the boards did not show every report within {WAIT_S:.0f} s: is "
                  "rank_svc.consumer running?", file=sys.stderr)
            sys.exit(1)
        time.sleep(0.2)


def ranking_at_least(expected: dict[int, int]) -> Callable[[object], bool]:
    """Whether a ranking shows each of its users with at least their ``expected`` steps."""
    return lambda answer: all(e.steps >= expected.get(e.user_id, 0) for e in answer.entries)


def send_likes(client: Client, day: str) -> None:
    """Sends :data:`LIKES` for ``day``; each is acknowledged once stored in Kafka."""
    for liker, liked in LIKES:
        client.like(liker, liked, day)


def print_ranking(title: str, answer: ranking_pb2.GetFriendRankingResponse) -> None:
    """``title``, then one line per entry: rank, nickname, steps, and for a day its likes
    (and whether the caller liked it); then the champion and its cover."""
    print(title)
    for entry in answer.entries:
        line = f"  {entry.rank}. {entry.nickname or entry.user_id:<10} {entry.steps:>6} steps"
        if entry.likes:
            line += f"  {entry.likes} like{'s' if entry.likes > 1 else ''}"
        if entry.liked_by_me:
            line += ", liked by me"
        print(line)
    champion = answer.champion
    print(f"champion: {champion.entry.nickname or champion.entry.user_id}, "
          f"cover {champion.cover_url or '-'}")


def print_likers(answer: ranking_pb2.ListLikesResponse) -> None:
    """One line per liker, newest first."""
    for liker in answer.likers:
        when = datetime.fromtimestamp(liker.liked_at.seconds, UTC).strftime("%H:%M:%S UTC")
        print(f"  {liker.nickname or liker.user_id:<10} at {when}")


def set_hidden(client: Client, hidden: bool) -> None:
    """Hides :data:`HIDER`'s steps from :data:`ME`, or shows them again."""
    client.social.SetStepsHidden(
        social_pb2.SetStepsHiddenRequest(user_id=HIDER, friend_id=ME, hidden=hidden)
    )


def print_history(answer: ranking_pb2.GetHistoryResponse) -> None:
    """One line per day: steps, when reached (UTC), and once archived the global rank at
    close."""
    for day in answer.days:
        reached = (datetime.fromtimestamp(day.reached_at.seconds, UTC).strftime("%H:%M UTC")
                   if day.steps else "-")
        if not day.archived:
            rank = "live, not archived yet"
        else:
            rank = f"archived, global rank {day.global_rank}" if day.steps else "archived"
        print(f"  {day.day} {day.steps:>6} steps  reached {reached:<9}  {rank}")


def main() -> int:
    """Runs the demo with one client of the three addresses given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ingest", default="127.0.0.1:50051", help="StepIngest address")
    parser.add_argument("--social", default="127.0.0.1:50052", help="FriendGraph address")
    parser.add_argument("--rank", default="127.0.0.1:50053", help="Ranking address")
    args = parser.parse_args()
    with Client(args.ingest, args.social, args.rank) as client:
        return run(client)


def run(client: Client) -> int:
    """Writes the demo data and prints user 1's rankings and history."""
    seed_graph(client)
    now = datetime.now(UTC)
    sent = reports(now)
    days = seeded_days(now.date())
    first, today = days[0].isoformat(), days[-1].isoformat()
    if not send(client, sent):
        return 1
    send_likes(client, today)
    print(f"demo data written for the last {DAYS} days, {first} to {today} (UTC): "
          f"{len(sent)} reports")

    def friends(period: ranking_pb2.Period) -> ranking_pb2.GetFriendRankingResponse:
        return client.friend_ranking(ME, today, period)

    liked = {liked: sum(1 for _, other in LIKES if other == liked) for _, liked in LIKES}
    daily = wait_for(
        lambda: friends(ranking_pb2.PERIOD_DAY),
        lambda answer: ranking_at_least(week_totals(sent, today, today))(answer)
        and all(e.likes == liked.get(e.user_id, 0) for e in answer.entries),
    )
    print_ranking(f"friend ranking of user {ME} ({USERS[ME]}) for {today}:", daily)
    likers = client.ranking.ListLikes(ranking_pb2.ListLikesRequest(user_id=ME, day=today))
    print(f"who liked {USERS[ME]}'s day, newest first ({likers.total}):")
    print_likers(likers)
    set_hidden(client, True)
    try:
        hidden = friends(ranking_pb2.PERIOD_DAY)
        print_ranking(f"{USERS[HIDER]} hides his steps from {USERS[ME]}; her ranking now "
                      f"({hidden.total} in it):", hidden)
    finally:
        set_hidden(client, False)
    print(f"{USERS[HIDER]} shows his steps to {USERS[ME]} again.")
    weekly = friends(ranking_pb2.PERIOD_WEEK)
    expected = week_totals(sent, weekly.window_first_day, weekly.window_last_day)
    weekly = wait_for(lambda: friends(ranking_pb2.PERIOD_WEEK), ranking_at_least(expected))
    print_ranking(f"weekly friend ranking of user {ME} ({USERS[ME]}) for the week "
                  f"{weekly.window_first_day} to {weekly.window_last_day}:", weekly)
    mine = {r.day: r.steps for r in sent if r.user_id == ME}
    history = wait_for(
        lambda: client.ranking.GetHistory(ranking_pb2.GetHistoryRequest(
            user_id=ME, from_day=first, to_day=today)),
        # An archived day is answered from the archive, final once written.
        lambda answer: all(d.archived or d.steps >= mine.get(d.day, 0) for d in answer.days),
    )
    print(f"history of user {ME} ({USERS[ME]}) from {first} to {today}:")
    print_history(history)
    return 0


if __name__ == "__main__":
    sys.exit(main())
