"""The shard schema and its idempotent migration (``python -m social_svc migrate``).

Every physical shard holds the same tables; migrations are numbered, applied in order and
recorded in ``schema_migrations`` so re-running is a no-op.
"""

import logging

from common.mysql_pools import ShardPools, apply_migrations

log = logging.getLogger(__name__)

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, """
        CREATE TABLE IF NOT EXISTS friendships (
            user_id   BIGINT NOT NULL,
            friend_id BIGINT NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            PRIMARY KEY (user_id, friend_id)
        ) ENGINE=InnoDB
    """),
    (2, """
        CREATE TABLE IF NOT EXISTS profiles (
            user_id    BIGINT NOT NULL PRIMARY KEY,
            nickname   VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
            avatar_url VARCHAR(512) CHARACTER SET ascii NOT NULL,
            updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
        ) ENGINE=InnoDB
    """),
    # Per-user friend count: O(1) total_count, and the hot-user scan by count.
    (3, """
        CREATE TABLE IF NOT EXISTS friend_counts (
            user_id      BIGINT NOT NULL PRIMARY KEY,
            friend_count BIGINT NOT NULL,
            KEY by_count (friend_count, user_id)
        ) ENGINE=InnoDB
    """),
    # Shards that already held friendships before friend_counts existed.
    (4, """
        INSERT INTO friend_counts (user_id, friend_count)
        SELECT user_id, COUNT(*) FROM friendships GROUP BY user_id
        ON DUPLICATE KEY UPDATE friend_count = VALUES(friend_count)
    """),
    # The champion's cover (Profile.cover_url): existing profiles get none.
    (5, """
        ALTER TABLE profiles
        ADD COLUMN IF NOT EXISTS cover_url VARCHAR(512) CHARACTER SET ascii NOT NULL DEFAULT ''
    """),
    # Privacy (social_svc/privacy.py): users who left the rankings, on their own shard;
    (6, """
        CREATE TABLE IF NOT EXISTS ranking_optouts (
            user_id    BIGINT NOT NULL PRIMARY KEY,
            created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
        ) ENGINE=InnoDB
    """),
    # a hide of hider_id's steps from viewer_id, on the viewer's shard (what rankings read)
    (7, """
        CREATE TABLE IF NOT EXISTS step_hides (
            viewer_id BIGINT NOT NULL,
            hider_id  BIGINT NOT NULL,
            PRIMARY KEY (viewer_id, hider_id)
        ) ENGINE=InnoDB
    """),
    # and again on the hider's shard (what their settings list).
    (8, """
        CREATE TABLE IF NOT EXISTS steps_hidden_from (
            hider_id  BIGINT NOT NULL,
            viewer_id BIGINT NOT NULL,
            PRIMARY KEY (hider_id, viewer_id)
        ) ENGINE=InnoDB
    """),
)


def migrate(pools: ShardPools) -> dict[int, list[int]]:
    """Applies pending friend-graph migrations to every physical shard."""
    return apply_migrations(pools, MIGRATIONS, log)
