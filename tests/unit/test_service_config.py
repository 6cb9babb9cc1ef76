"""The gRPC service config of stepboard's channels (stepboard_client/config.py) is the one
docs/deploy.md publishes for app backends, and it retries only within the stated bounds."""

import json
import re
from pathlib import Path

from stepboard_client.config import SERVICE_CONFIG

DEPLOY_GUIDE = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


def published() -> dict:
    """The JSON block of docs/deploy.md's app-backend paragraph (its only JSON block)."""
    (block,) = re.findall(r"```json\n(.*?)```", DEPLOY_GUIDE.read_text(), re.DOTALL)
    return json.loads(block)


def test_the_deploy_guide_publishes_the_channels_service_config():
    assert published() == SERVICE_CONFIG


def test_retries_are_bounded_and_only_for_unavailable():
    (method,) = SERVICE_CONFIG["methodConfig"]
    policy = method["retryPolicy"]
    assert 2 <= policy["maxAttempts"] <= 5  # gRPC caps attempts at 5
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert {name["service"] for name in method["name"]} == {
        "stepboard.v1.StepIngest", "stepboard.v1.FriendGraph", "stepboard.v1.Ranking"
    }
    assert SERVICE_CONFIG["loadBalancingConfig"] == [{"round_robin": {}}]
