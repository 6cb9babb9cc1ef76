"""The one user → shard function, used by the Redis boards and the MySQL shard map."""

_MIX = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1


def shard_of(user_id: int, shard_count: int) -> int:
    """A stable shard index in ``range(shard_count)`` that spreads sequential ids evenly."""
    mixed = ((user_id & _MASK) * _MIX) & _MASK
    return (mixed >> 32) % shard_count
