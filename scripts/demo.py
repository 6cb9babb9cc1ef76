"""Seeds the running local stack with a small demo (``make demo``).

Six users with profiles, friendships and today's step reports, sent through the public
APIs exactly as an app backend would, then the friend ranking of user 1 is printed.
"""

import sys
import time
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from stepboard.v1 import (
    ingest_pb2,
    ingest_pb2_grpc,
    ranking_pb2,
    ranking_pb2_grpc,
    social_pb2,
    social_pb2_grpc,
)

USERS = {1: "Ada", 2: "Grace", 3: "Linus", 4: "Barbara", 5: "Ken", 6: "Margaret"}
FRIENDS = [(1, 2), (1, 3), (1, 4), (1, 5), (2, 3), (4, 6)]
# user → (steps, minutes before now when that count was reached)
STEPS = {1: (8000, 30), 2: (12500, 50), 3: (8000, 90), 5: (300, 5), 6: (20000, 10)}


def main() -> int:
    """Writes the demo data and prints user 1's friend ranking."""
    social = social_pb2_grpc.FriendGraphStub(grpc.insecure_channel("127.0.0.1:50052"))
    ingest = ingest_pb2_grpc.StepIngestStub(grpc.insecure_channel("127.0.0.1:50051"))
    ranking = ranking_pb2_grpc.RankingStub(grpc.insecure_channel("127.0.0.1:50053"))
    for user_id, name in USERS.items():
        social.UpsertProfile(
            social_pb2.Profile(
                user_id=user_id,
                nickname=name,
                avatar_url=f"https://avatars.example/{name.lower()}.png",
            ),
            timeout=10,
        )
    for user_id, friend_id in FRIENDS:
        social.AddFriendship(
            social_pb2.AddFriendshipRequest(user_id=user_id, friend_id=friend_id), timeout=10
        )
    now = datetime.now(UTC)
    day = now.date().isoformat()
    reports = [
        ingest_pb2.StepReport(
            user_id=user_id,
            day=day,
            steps=steps,
            measured_at=Timestamp(seconds=int((now - timedelta(minutes=ago)).timestamp())),
        )
        for user_id, (steps, ago) in STEPS.items()
    ]
    reply = ingest.ReportStepsBatch(ingest_pb2.ReportStepsBatchRequest(reports=reports), timeout=10)
    if reply.rejected:
        print(reply, file=sys.stderr)
        return 1
    request = ranking_pb2.GetFriendRankingRequest(user_id=1, day=day)
    for _ in range(50):
        answer = ranking.GetFriendRanking(request, timeout=10)
        if sum(1 for e in answer.entries if e.steps) >= 4:
            break
        time.sleep(0.2)
    print(f"demo data written for {day}; friend ranking of user 1 (Ada):")
    for entry in answer.entries:
        print(f"  {entry.rank}. {entry.nickname or entry.user_id:<10} {entry.steps:>6} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
