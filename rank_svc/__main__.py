"""``python -m rank_svc``: the Ranking gRPC server."""

from common.redis_clients import create_redis
from common.runtime import load
from common.server import run_until_signal
from rank_svc.board import BoardStore
from rank_svc.config import RankConfig
from rank_svc.server import build_server


def main() -> None:
    """Reads config, serves until SIGTERM, drains, closes the Redis client."""
    config = load("rank_svc", RankConfig.from_env)
    client = create_redis(config.redis)
    built = build_server(config, BoardStore(client, config.board))
    run_until_signal(built, config.server, closers=[client.close])


if __name__ == "__main__":
    main()
