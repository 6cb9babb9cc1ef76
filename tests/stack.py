"""The local stack's configuration as the tests see it (``stack/local.env``)."""

from pathlib import Path

from common.config import read_env_file

ROOT = Path(__file__).resolve().parent.parent
LOCAL_ENV_FILE = ROOT / "stack" / "local.env"
CLUSTER_ENV_FILE = ROOT / "stack" / "cluster.env"


def local_env() -> dict[str, str]:
    """The ``STEPBOARD_*`` settings of the local stack."""
    return read_env_file(LOCAL_ENV_FILE)


# Redis deployments the write path is tested against: settings overriding stack/local.env.
REDIS_DEPLOYMENTS = {"standalone": {}, "cluster": read_env_file(CLUSTER_ENV_FILE)}

# The servers the local stack supervises, by service name: (gRPC port, full service name).
SERVERS = {
    "ingest": (50051, "stepboard.v1.StepIngest"),
    "social": (50052, "stepboard.v1.FriendGraph"),
    "rank": (50053, "stepboard.v1.Ranking"),
}
