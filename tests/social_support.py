"""Helpers for the social_svc tests: private shard databases, in-process servers, and a
second MariaDB server that a test may kill."""

import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import grpc
import pymysql

from common.mysql_pools import MySQLSettings, ShardPools, migrate_shards
from common.sharding import shard_of
from social_svc.config import SocialConfig
from social_svc.schema import migrate
from social_svc.server import SocialDeps, build_server
from stepboard.v1 import social_pb2, social_pb2_grpc
from tests.harness import free_port, service_env, unique, wait_until
from tests.stack import ROOT

STACK_MARIADB = ("127.0.0.1", 13306)
USER, PASSWORD = "stepboard", "stepboard"


def connect(host: str, port: int, database: str | None = None) -> pymysql.Connection:
    """An autocommit connection as the stepboard user."""
    return pymysql.connect(
        host=host, port=port, user=USER, password=PASSWORD, database=database,
        autocommit=True, connect_timeout=2,
    )


def dsn(host: str, port: int, database: str) -> str:
    """A shard DSN for ``STEPBOARD_MYSQL_SHARD_DSNS``."""
    return f"mysql://{USER}:{PASSWORD}@{host}:{port}/{database}"


class ShardDatabases:
    """Fresh, migrated shard databases (one per address given), dropped by :meth:`drop`:
    the friend graph's, or with ``prefix`` ``"ARCHIVE_"`` and the archive's ``schema``, the
    day archive's."""

    def __init__(
        self, servers: Iterable[tuple[str, int]], prefix: str = "",
        schema: Callable[[ShardPools], object] = migrate,
    ) -> None:
        self.prefix = prefix
        tag = uuid.uuid4().hex[:10]
        self.servers = list(servers)
        self.names = [f"stepboard_t{tag}_{i}" for i in range(len(self.servers))]
        for (host, port), name in zip(self.servers, self.names, strict=True):
            with connect(host, port) as conn, conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{name}`")
        self.dsns = ",".join(
            dsn(host, port, name) for (host, port), name in zip(self.servers, self.names,
                                                                strict=True)
        )
        migrate_shards(self.settings(), schema)

    def settings(self) -> MySQLSettings:
        """Shard settings for these databases (64 logical shards, spread evenly)."""
        return MySQLSettings.from_env(
            {f"STEPBOARD_{self.prefix}MYSQL_SHARD_DSNS": self.dsns}, self.prefix
        )

    def query(self, shard: int, sql: str, args: tuple = ()) -> list[tuple]:
        """Rows of ``sql`` run on physical shard ``shard``."""
        host, port = self.servers[shard]
        with connect(host, port, self.names[shard]) as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def query_all(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Rows of ``sql`` from every shard."""
        return [row for shard in range(len(self.names)) for row in self.query(shard, sql, args)]

    def drop(self) -> None:
        """Drops the databases (a dead server is skipped)."""
        for (host, port), name in zip(self.servers, self.names, strict=True):
            try:
                with connect(host, port) as conn, conn.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            except pymysql.err.OperationalError:
                pass


def home_of(settings: MySQLSettings, user_id: int) -> int:
    """The physical shard that owns ``user_id``."""
    return settings.shard_map[shard_of(user_id, settings.logical_shards)]


def users_on(settings: MySQLSettings, shard: int, count: int, start: int) -> list[int]:
    """``count`` user ids from ``start`` up whose home is physical shard ``shard``."""
    found = []
    user_id = start
    while len(found) < count:
        if home_of(settings, user_id) == shard:
            found.append(user_id)
        user_id += 1
    return found


def fresh_user_base() -> int:
    """A user-id range start no other test run uses."""
    return (uuid.uuid4().int % 10**6 + 1) * 10**9


def the_hot_user(
    social: social_pb2_grpc.FriendGraphStub, min_friends: int
) -> tuple[social_pb2.HotUser, set[int]]:
    """The one user with at least ``min_friends`` friends (as ``ListHotUsers`` lists them)
    and their friend ids, streamed."""
    (hot,) = social.ListHotUsers(
        social_pb2.ListHotUsersRequest(min_friends=min_friends), timeout=30
    ).users
    friends = {
        friend for chunk in social.StreamFriends(
            social_pb2.StreamFriendsRequest(user_id=hot.user_id, chunk_size=10_000),
            timeout=60,
        )
        for friend in chunk.friend_ids
    }
    return hot, friends


def load_hot_user(databases: "ShardDatabases", hot_friends: int, seed: int) -> int:
    """Bulk-loads into ``databases`` a graph of fresh users, one of them with
    ``hot_friends`` friends, without profiles; returns the graph's first user id."""
    base = fresh_user_base()
    loaded = subprocess.run(
        [sys.executable, "-m", "social_svc.bulkload", "--users", str(2 * hot_friends + 1),
         "--avg-friends", "2", "--hot-users", "1", "--hot-friends", str(hot_friends),
         "--first-id", str(base), "--no-profiles", "--seed", str(seed)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={"PATH": "/usr/bin:/bin", "STEPBOARD_MYSQL_SHARD_DSNS": databases.dsns},
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    return base


class SocialServer:
    """An in-process social server on a free port, with its own clients."""

    def __init__(self, databases: ShardDatabases, namespace: str, **overrides: str) -> None:
        env = service_env(
            STEPBOARD_MYSQL_SHARD_DSNS=databases.dsns,
            STEPBOARD_SOCIAL_CACHE_NAMESPACE=namespace,
            STEPBOARD_GRPC_PORT="0",
            STEPBOARD_METRICS_PORT="0",
            **overrides,
        )
        self.config = SocialConfig.from_env(env)
        self.deps = SocialDeps.open(self.config)
        self.built = build_server(self.config, self.deps)
        self.built.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.built.port}")
        self.stub = social_pb2_grpc.FriendGraphStub(self.channel)

    def close(self) -> None:
        """Stops the server and closes its clients."""
        self.built.server.stop(None)
        self.channel.close()
        self.deps.close()


def upsert_request(**fields: object) -> social_pb2.UpsertProfileRequest:
    """An UpsertProfile request for the profile of ``fields`` (``Profile``'s fields)."""
    return social_pb2.UpsertProfileRequest(profile=social_pb2.Profile(**fields))


def rpc_error(call, *args, **kwargs) -> grpc.RpcError:
    """The error a call fails with (fails the test if it succeeds)."""
    try:
        call(*args, **kwargs)
    except grpc.RpcError as error:
        return error
    raise AssertionError(f"{call} succeeded, expected an error")


class PrivateMariaDB:
    """A MariaDB server of the test's own (datadir under ``.stack/data/tests``), started as
    ``stack/stack.sh`` starts the stack's (plus ``options``, such as its TLS files), with a
    ``stepboard`` user for ``stepboard_%``."""

    def __init__(self, *options: str) -> None:
        self.options = options
        name = unique("mariadb")
        self.datadir = ROOT / ".stack" / "data" / "tests" / name
        self.log = ROOT / ".stack" / "logs" / "tests" / f"{name}.log"
        # A unix socket path must stay short.
        self.socket = Path("/tmp") / f"sb-{name}.sock"
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.datadir.parent.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={self.datadir}",
             "--auth-root-authentication-method=socket", "--skip-test-db"],
            check=True, capture_output=True, timeout=120,
        )
        self.start()
        self.root(
            "CREATE USER 'stepboard'@'127.0.0.1' IDENTIFIED BY 'stepboard';"
            "GRANT ALL ON `stepboard\\_%`.* TO 'stepboard'@'127.0.0.1';"
        )

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` of the server."""
        return "127.0.0.1", self.port

    def root(self, sql: str) -> None:
        """Runs ``sql`` as root (over the unix socket)."""
        subprocess.run(
            ["mariadb", "--no-defaults", "--protocol=socket", f"--socket={self.socket}",
             "-uroot", "-e", sql],
            check=True, capture_output=True, timeout=30,
        )

    def start(self) -> None:
        """Starts the server and waits until it accepts the stepboard user or root."""
        self.process = subprocess.Popen(
            ["mariadbd", "--no-defaults", "--user=root", f"--datadir={self.datadir}",
             f"--port={self.port}", "--bind-address=127.0.0.1", f"--socket={self.socket}",
             f"--log-error={self.log}", "--skip-name-resolve", "--skip-log-bin",
             "--innodb-buffer-pool-size=64M", *self.options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

        def ready() -> bool:
            assert self.process.poll() is None, f"mariadbd exited, see {self.log}"
            try:
                self.root("SELECT 1")
            except subprocess.CalledProcessError:
                return False
            return True

        wait_until(ready, timeout_s=60)

    def kill(self) -> None:
        """SIGKILLs the server (by its pid) and waits until it is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)
        # The next start must not find a socket left by the killed server.
        self.socket.unlink(missing_ok=True)

    def global_status(self, name: str) -> int:
        """A global status counter, read as the stepboard user."""
        with connect(*self.address) as conn, conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE %s", (name,))
            return int(cur.fetchone()[1])

    def close(self) -> None:
        """Kills the server and removes its data directory."""
        self.kill()
        shutil.rmtree(self.datadir, ignore_errors=True)


def elapsed(call, *args, **kwargs) -> tuple[float, grpc.RpcError | None]:
    """How long a call took and the error it failed with, if any."""
    started = time.monotonic()
    try:
        call(*args, **kwargs)
    except grpc.RpcError as error:
        return time.monotonic() - started, error
    return time.monotonic() - started, None
