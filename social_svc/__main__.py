"""``python -m social_svc`` serves FriendGraph; ``python -m social_svc migrate`` migrates."""

import sys

from common.mysql_pools import MySQLSettings, migrate_shards
from common.runtime import load
from common.server import run_until_signal
from common.tracing import configure
from social_svc.config import SocialConfig
from social_svc.schema import migrate
from social_svc.server import SocialDeps, build_server


def main(argv: list[str]) -> None:
    """Runs the server, or the schema migration when the first argument is ``migrate``."""
    if argv and argv[0] not in ("migrate", "serve"):
        raise SystemExit(f"usage: python -m social_svc [serve|migrate], got {argv[0]!r}")
    if argv and argv[0] == "migrate":
        # Only the shards: a migration job needs no Redis or server settings.
        migrate_shards(load("social_svc", MySQLSettings.from_env), migrate)
        return
    config = load("social_svc", SocialConfig.from_env)
    configure(config.server.tracing)  # before the server and channels are made
    deps = SocialDeps.open(config)
    built = build_server(config, deps)
    run_until_signal(built, config.server, closers=[deps.close])


if __name__ == "__main__":
    main(sys.argv[1:])
