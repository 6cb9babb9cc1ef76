"""The gRPC service config of stepboard's channels (stepboard_client/config.py) is the one
docs/deploy.md and docs/clients.md publish for app backends, and it retries only within
the stated bounds."""

import json
import re
from pathlib import Path

import pytest

from stepboard_client.config import SERVICE_CONFIG

DOCS = Path(__file__).resolve().parents[2] / "docs"


def published(guide: str) -> dict:
    """The service config a guide publishes: its only JSON block."""
    (block,) = re.findall(r"```json\n(.*?)```", (DOCS / guide).read_text(), re.DOTALL)
    return json.loads(block)


@pytest.mark.parametrize("guide", ["deploy.md", "clients.md"])
def test_the_guides_publish_the_channels_service_config(guide):
    assert published(guide) == SERVICE_CONFIG


def test_retries_are_bounded_and_only_for_unavailable():
    (method,) = SERVICE_CONFIG["methodConfig"]
    policy = method["retryPolicy"]
    assert 2 <= policy["maxAttempts"] <= 5  # gRPC caps attempts at 5
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert {name["service"] for name in method["name"]} == {
        "stepboard.v1.StepIngest", "stepboard.v1.FriendGraph", "stepboard.v1.Ranking"
    }
    assert SERVICE_CONFIG["loadBalancingConfig"] == [{"round_robin": {}}]
