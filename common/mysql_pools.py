"""MySQL shard map and one DBUtils connection pool per physical shard.

Users map to a fixed number of logical shards (:func:`common.sharding.shard_of`); logical
shards map to physical databases by configuration, so adding a server moves whole logical
shards, never rows one by one.
"""

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql
from dbutils.pooled_db import PooledDB

from common.config import ConfigError
from common.errors import Unavailable
from common.settings import default, read
from common.sharding import shard_of
from common.store_tls import StoreTls


@dataclass(frozen=True)
class ShardDsn:
    """One physical shard's connection parameters, parsed from ``mysql://u:p@h:port/db``."""

    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def parse(cls, dsn: str, variable: str = "STEPBOARD_MYSQL_SHARD_DSNS") -> "ShardDsn":
        """Parses a DSN, naming ``variable`` in the error if it is malformed."""
        parts = urlsplit(dsn)
        if parts.scheme != "mysql" or not parts.hostname or len(parts.path) < 2:
            raise ConfigError(f"{variable}: expected mysql://user:password@host:port/database")
        return cls(
            host=parts.hostname,
            port=parts.port or 3306,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            database=parts.path.lstrip("/"),
        )


def _parse_shard_map(
    text: str, logical: int, physical: int, variable: str = "STEPBOARD_MYSQL_SHARD_MAP"
) -> tuple[int, ...]:
    """``"0-31:0,32-63:1"`` → physical index per logical shard; every shard must be mapped.
    Errors name ``variable``."""
    mapping: dict[int, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            span, target = item.split(":")
            first, _, last = span.partition("-")
            start, end, index = int(first), int(last or first), int(target)
        except ValueError:
            raise ConfigError(f"{variable}: bad item {item!r}") from None
        if not 0 <= index < physical or not 0 <= start <= end < logical:
            raise ConfigError(f"{variable}: {item!r} is out of range")
        mapping.update(dict.fromkeys(range(start, end + 1), index))
    if len(mapping) != logical:
        raise ConfigError(f"{variable}: must map all {logical} logical shards")
    return tuple(mapping[i] for i in range(logical))


@dataclass(frozen=True)
class MySQLSettings:
    """Physical shard DSNs, the logical → physical map, pool size, timeouts and TLS."""

    shard_dsns: tuple[ShardDsn, ...]
    logical_shards: int = default("MYSQL_LOGICAL_SHARDS")
    shard_map: tuple[int, ...] = ()
    pool_size: int = default("MYSQL_POOL_SIZE")
    connect_timeout_s: float = default("MYSQL_CONNECT_TIMEOUT_S")
    read_timeout_s: float = default("MYSQL_READ_TIMEOUT_S")
    write_timeout_s: float = default("MYSQL_WRITE_TIMEOUT_S")
    tls: StoreTls = field(default_factory=lambda: StoreTls.off("MYSQL"))

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], prefix: str = "", required: bool = True
    ) -> "MySQLSettings":
        """Reads ``STEPBOARD_<prefix>MYSQL_SHARD_DSNS``, ``_LOGICAL_SHARDS`` and ``_SHARD_MAP``
        (``prefix`` ``"ARCHIVE_"``: the day archive's own shards, mapped the same way) and
        the shared pool size, timeouts and TLS (``STEPBOARD_MYSQL_POOL_SIZE``,
        ``_*_TIMEOUT_S``, ``_TLS*``: one set for the graph's and the archive's shards).
        A ``required`` set needs at least one DSN; otherwise an empty set has no shards."""
        dsns_name = f"{prefix}MYSQL_SHARD_DSNS"
        dsns = tuple(
            ShardDsn.parse(d, f"STEPBOARD_{dsns_name}") for d in read(env, dsns_name)
        )
        if required and not dsns:
            raise ConfigError(f"STEPBOARD_{dsns_name} is required but empty")
        logical = read(env, f"{prefix}MYSQL_LOGICAL_SHARDS", minimum=max(len(dsns), 1))
        text = read(env, f"{prefix}MYSQL_SHARD_MAP")
        shard_map = (
            _parse_shard_map(text, logical, len(dsns), f"STEPBOARD_{prefix}MYSQL_SHARD_MAP")
            if text else tuple(i * len(dsns) // logical for i in range(logical))
        )
        return cls(
            shard_dsns=dsns,
            logical_shards=logical,
            shard_map=shard_map,
            pool_size=read(env, "MYSQL_POOL_SIZE"),
            connect_timeout_s=read(env, "MYSQL_CONNECT_TIMEOUT_S"),
            read_timeout_s=read(env, "MYSQL_READ_TIMEOUT_S"),
            write_timeout_s=read(env, "MYSQL_WRITE_TIMEOUT_S"),
            tls=StoreTls.from_env(env, "MYSQL"),
        )

    def tls_options(self) -> dict[str, Any]:
        """PyMySQL's ``connect`` arguments for TLS: with it on, a context that verifies the
        server (so PyMySQL requires TLS and refuses a server without it); with it off,
        none (PyMySQL's default: TLS if the server offers it, unverified)."""
        return {"ssl": self.tls.context()} if self.tls.enabled else {}


class ShardPools:
    """One pool per physical shard; finds the pool that owns a user."""

    def __init__(self, settings: MySQLSettings, local_infile: bool = False) -> None:
        """``local_infile`` lets the connections send ``LOAD DATA LOCAL INFILE`` files (the day
        archive's bulk writes); off otherwise, so a server cannot ask for a client's files."""
        self.settings = settings
        self.local_infile = local_infile
        self.pools = [self._pool(dsn) for dsn in settings.shard_dsns]

    def _pool(self, dsn: ShardDsn) -> PooledDB:
        return PooledDB(
            creator=pymysql,
            maxconnections=self.settings.pool_size,
            blocking=True,
            ping=1,
            host=dsn.host,
            port=dsn.port,
            user=dsn.user,
            password=dsn.password,
            database=dsn.database,
            charset="utf8mb4",
            autocommit=False,
            local_infile=self.local_infile,
            connect_timeout=max(1, round(self.settings.connect_timeout_s)),
            read_timeout=max(1, round(self.settings.read_timeout_s)),
            write_timeout=max(1, round(self.settings.write_timeout_s)),
            **self.settings.tls_options(),
        )

    def logical_shard(self, user_id: int) -> int:
        """The logical shard that owns ``user_id``."""
        return shard_of(user_id, self.settings.logical_shards)

    def physical_index(self, user_id: int) -> int:
        """Index of the physical shard that owns ``user_id``."""
        return self.settings.shard_map[self.logical_shard(user_id)]

    def close(self) -> None:
        """Closes every pooled connection."""
        for pool in self.pools:
            pool.close()


# What a MySQL call raises when its server is unreachable or the connection broke.
CONNECTION_ERRORS = (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError)


class ShardAccess:
    """Connections of the physical shards, with a bounded wait for a free one.

    The pools would block forever once every connection of a shard is busy (for example
    stuck connecting to a dead server); a per-shard semaphore sized like the pool turns
    that wait into ``Unavailable`` after ``wait_s``.
    """

    def __init__(self, pools: ShardPools, wait_s: float) -> None:
        self.pools = pools
        self._wait_s = wait_s
        self._slots = [threading.BoundedSemaphore(pools.settings.pool_size) for _ in pools.pools]

    @contextmanager
    def cursor(self, shard: int, write: bool = False) -> Iterator[Any]:
        """A cursor on ``shard``; a ``write`` commits when the block ends without error.

        Connection failures become ``Unavailable`` naming the shard; whatever was not
        committed is rolled back when the connection returns to the pool.
        """
        if not self._slots[shard].acquire(timeout=self._wait_s):
            raise Unavailable(f"MySQL shard {shard}: no free connection within {self._wait_s} s")
        try:
            conn = self.pools.pools[shard].connection()
            try:
                with conn.cursor() as cur:
                    if write:
                        # Row locks only, no gap locks: a delete of a missing row then
                        # blocks no unrelated insert.
                        cur.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
                    yield cur
                if write:
                    conn.commit()
            finally:
                conn.close()
        except CONNECTION_ERRORS as error:
            raise Unavailable(f"MySQL shard {shard} unavailable: {error}") from error
        finally:
            self._slots[shard].release()


def apply_migrations(
    pools: ShardPools, migrations: Sequence[tuple[int, str]], logger: logging.Logger
) -> dict[int, list[int]]:
    """Applies each ``(version, statement)`` of ``migrations`` not yet recorded in a
    shard's ``schema_migrations`` table, in order, on every physical shard; returns the
    versions each shard applied. Rerunning applies nothing (idempotent)."""
    applied: dict[int, list[int]] = {}
    for index, pool in enumerate(pools.pools):
        conn = pool.connection()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version INT NOT NULL PRIMARY KEY,"
                    " applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB"
                )
                cur.execute("SELECT version FROM schema_migrations")
                done = {row[0] for row in cur.fetchall()}
                applied[index] = [v for v, _ in migrations if v not in done]
                for version, statement in migrations:
                    if version in applied[index]:
                        cur.execute(statement)
                        cur.execute("INSERT IGNORE INTO schema_migrations (version) "
                                    "VALUES (%s)", (version,))
            conn.commit()
        finally:
            conn.close()
        logger.info("shard migrated", extra={"shard": index, "applied": applied[index]})
    return applied


def migrate_shards(settings: MySQLSettings, migrate: Callable[[ShardPools], object]) -> None:
    """Opens pools for the shards of ``settings``, runs ``migrate`` on them and closes them:
    a migration job needs nothing else."""
    pools = ShardPools(settings)
    try:
        migrate(pools)
    finally:
        pools.close()
