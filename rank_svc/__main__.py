"""``python -m rank_svc``: the Ranking gRPC server."""

from common.channels import create_channel
from common.mysql_pools import ShardPools
from common.redis_clients import create_redis, require_noeviction
from common.runtime import load
from common.server import run_until_signal
from common.tracing import configure
from rank_svc.config import RankConfig
from rank_svc.server import build_server


def main() -> None:
    """Reads config, checks Redis evicts no keys, serves until SIGTERM, drains, closes its
    clients (and the day archive's pools, with one configured)."""
    config = load("rank_svc", RankConfig.from_env)
    configure(config.server.tracing)  # before the server and channels are made
    client = create_redis(config.redis)
    require_noeviction(client, config.redis.allow_eviction)
    social = create_channel(config.social_addr, config.client)
    archive = None if config.archive is None else ShardPools(config.archive)
    built = build_server(config, client, social, archive)
    closers = [social.close, client.close] + ([archive.close] if archive else [])
    run_until_signal(built, config.server, closers=closers)


if __name__ == "__main__":
    main()
