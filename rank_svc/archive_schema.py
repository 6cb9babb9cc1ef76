"""The day archive's shard schema, its migration and its monthly partitions.

Every physical archive shard holds ``day_steps`` (one row per user and archived day, in the
user's shard) and ``archived_days`` (the days archived, written last, so a day is listed
only once all its rows are in). ``day_steps`` is partitioned by month on ``day``: the
archive job adds the partitions it needs before writing (:func:`ensure_partitions`) and
retention drops whole months (:func:`drop_partitions_before`), which costs no row deletes.

Migrations are numbered and recorded in ``schema_migrations`` like the friend graph's
(:mod:`social_svc.schema`), so re-running ``python -m rank_svc.archive migrate`` is a
no-op.
"""

import logging
from datetime import date
from typing import Any

from common.mysql_pools import ShardPools, apply_migrations

log = logging.getLogger(__name__)

# The first partition holds nothing real (days before 1970); later ones are added per month.
FIRST_PARTITION = "p000000"
# The oldest month a new partition of its own is added for (older days share the first).
NEW_MONTHS_BACK = 12

MIGRATIONS: tuple[tuple[int, str], ...] = (
    # reached_at: Unix seconds; global_rank: 1-based place among the day's participants.
    (1, f"""
        CREATE TABLE IF NOT EXISTS day_steps (
            user_id     BIGINT NOT NULL,
            day         DATE NOT NULL,
            steps       INT UNSIGNED NOT NULL,
            reached_at  INT UNSIGNED NOT NULL,
            global_rank INT UNSIGNED NOT NULL,
            PRIMARY KEY (user_id, day)
        ) ENGINE=InnoDB
        PARTITION BY RANGE COLUMNS (day) (
            PARTITION {FIRST_PARTITION} VALUES LESS THAN ('1970-01-01')
        )
    """),
    # users: rows of that day on this shard; participants: on the whole board.
    (2, """
        CREATE TABLE IF NOT EXISTS archived_days (
            day          DATE NOT NULL PRIMARY KEY,
            users        BIGINT NOT NULL,
            participants BIGINT NOT NULL,
            finished_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
        ) ENGINE=InnoDB
    """),
)


def migrate(pools: ShardPools) -> dict[int, list[int]]:
    """Applies pending migrations to every physical archive shard."""
    return apply_migrations(pools, MIGRATIONS, log)


def month_start(day: date, months_later: int = 0) -> date:
    """The first day of ``day``'s month, moved ``months_later`` months (negative: back)."""
    index = day.year * 12 + day.month - 1 + months_later
    return date(index // 12, index % 12 + 1, 1)


def retention_cutoff(today: date, months: int) -> date:
    """The oldest day kept: the first of the month ``months - 1`` months before ``today``'s
    (``months`` = 1 keeps only the current month)."""
    return month_start(today, 1 - months)


def partition_name(month: date) -> str:
    """``p202612``: the partition of December 2026's days."""
    return f"p{month.year:04d}{month.month:02d}"


def partition_bounds(cur: Any) -> dict[str, date]:
    """Each partition of ``day_steps`` on ``cur``'s shard → its exclusive upper bound."""
    cur.execute(
        "SELECT PARTITION_NAME, PARTITION_DESCRIPTION FROM information_schema.PARTITIONS"
        " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'day_steps'"
    )
    return {name: date.fromisoformat(bound.strip("'")) for name, bound in cur.fetchall()}


def ensure_partitions(cur: Any, through: date) -> list[str]:
    """Adds the monthly partitions after the last one up to ``through``'s month, at most
    :data:`NEW_MONTHS_BACK` months before it (the first one added also holds any older
    days); returns their names. A day below the last bound already has a partition (the
    ranges start at the lowest value), so only later months are ever added."""
    last = max(partition_bounds(cur).values())
    added = []
    month = max(last, month_start(through, -NEW_MONTHS_BACK))
    while month <= through:
        name = partition_name(month)
        cur.execute(f"ALTER TABLE day_steps ADD PARTITION (PARTITION {name} "
                    f"VALUES LESS THAN ('{month_start(month, 1).isoformat()}'))")
        added.append(name)
        month = month_start(month, 1)
    return added


def drop_partitions_before(cur: Any, cutoff: date) -> list[str]:
    """Drops every partition whose days all precede ``cutoff`` (its upper bound is at most
    ``cutoff``), keeping at least the last one, and forgets those archived days; returns the
    partitions dropped."""
    bounds = partition_bounds(cur)
    newest = max(bounds.values())
    old = sorted(name for name, bound in bounds.items() if bound <= cutoff and bound < newest)
    if old:
        cur.execute(f"ALTER TABLE day_steps DROP PARTITION {', '.join(old)}")
    cur.execute("DELETE FROM archived_days WHERE day < %s", (cutoff,))
    return old
