"""How a stepboard call is made: the channel's service config and each method's deadline.

This module is the single definition of both. The client package (``stepboard_client``)
applies them to a backend's calls, and stepboard's own services (``common.channels``)
open their channels to one another with the same :data:`SERVICE_CONFIG`.
"""

import json

# round_robin over every address, skipping servers whose health (grpc.health.v1, the whole
# server: "") is not SERVING, such as one draining after SIGTERM. Every stepboard call is
# safe to retry (docs/design.md, "Retries"): reads, max-merged reports, like states, and
# idempotent upserts and deletes. gRPC retries a call only within its deadline, at most
# ``maxAttempts`` times in all, and only while the channel's retry tokens last
# (``retryThrottling``: a failure takes 1 of 100, a success gives 0.1 back, retries stop
# below 50), so an outage of every server is not multiplied by the retries.
SERVICE_CONFIG: dict = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "healthCheckConfig": {"serviceName": ""},
    "methodConfig": [
        {
            "name": [
                {"service": "stepboard.v1.StepIngest"},
                {"service": "stepboard.v1.FriendGraph"},
                {"service": "stepboard.v1.Ranking"},
            ],
            "retryPolicy": {
                "maxAttempts": 4,
                "initialBackoff": "0.05s",
                "maxBackoff": "1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
    "retryThrottling": {"maxTokens": 100, "tokenRatio": 0.1},
}

# The channel options that apply SERVICE_CONFIG: retries on, and the config above, never
# one published in DNS TXT records.
CHANNEL_OPTIONS: list[tuple[str, str | int]] = [
    ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
    ("grpc.enable_retries", 1),
    ("grpc.service_config_disable_resolution", 1),
]

# The default deadline, in seconds, of every method ("/<service>/<method>", as gRPC names
# it), used when a call sets none. Each is longer than the server's own bound on the
# dependencies it waits for (Redis 2 s, a MySQL shard 2 s to connect and 5 s to answer,
# social_svc from rank_svc 2 s), so a failing dependency is answered as
# UNAVAILABLE (and retried) before the deadline cuts the call; the retries of
# SERVICE_CONFIG happen within it. A write that waits for Kafka's acknowledgement gets
# more. docs/clients.md explains the table.
DEADLINES: dict[str, float] = {
    "/stepboard.v1.StepIngest/ReportSteps": 5.0,
    "/stepboard.v1.StepIngest/ReportStepsBatch": 10.0,
    "/stepboard.v1.StepIngest/Like": 5.0,
    "/stepboard.v1.Ranking/GetFriendRanking": 5.0,
    "/stepboard.v1.Ranking/GetGlobalTop": 3.0,
    "/stepboard.v1.Ranking/GetGlobalRank": 3.0,
    "/stepboard.v1.Ranking/GetHistory": 5.0,
    "/stepboard.v1.Ranking/ListLikes": 3.0,
    "/stepboard.v1.FriendGraph/AddFriendship": 5.0,
    "/stepboard.v1.FriendGraph/RemoveFriendship": 5.0,
    "/stepboard.v1.FriendGraph/ListFriends": 3.0,
    "/stepboard.v1.FriendGraph/StreamFriends": 30.0,
    "/stepboard.v1.FriendGraph/UpsertProfile": 5.0,
    "/stepboard.v1.FriendGraph/GetProfiles": 3.0,
    "/stepboard.v1.FriendGraph/ListHotUsers": 10.0,
    "/stepboard.v1.FriendGraph/CheckFriendship": 3.0,
    "/stepboard.v1.FriendGraph/SetRankingVisibility": 5.0,
    "/stepboard.v1.FriendGraph/SetStepsHidden": 5.0,
    "/stepboard.v1.FriendGraph/GetPrivacySettings": 3.0,
    "/stepboard.v1.FriendGraph/GetRankingExclusions": 3.0,
}
