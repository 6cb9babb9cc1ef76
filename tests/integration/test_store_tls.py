"""TLS to the stores: the project's Redis and MySQL clients over TLS, to servers of the
test's own (a Redis with a plaintext and a TLS port, a three-node Redis Cluster over TLS, a
MariaDB with its certificate loaded), with certificates from ``stack/tls.sh``.

A recording TCP relay between client and server shows the traffic is encrypted (a marker
written through the client never crosses it in the clear; the plaintext control shows it
would be seen); certificates from another CA are refused both ways; a MITM that hides the
server's TLS offer cannot downgrade a MySQL client that requires TLS.
"""

import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from common.config import ConfigError
from common.errors import Unavailable
from common.mysql_pools import MySQLSettings, ShardAccess, ShardPools
from common.redis_clients import RedisSettings, create_redis
from rank_svc.archive import Archiver
from rank_svc.archive_schema import migrate as archive_migrate
from rank_svc.board_format import BoardSettings, encode_score
from stepboard.v1 import social_pb2
from tests.board_store import BoardStore
from tests.fault_proxy import FaultProxy
from tests.harness import free_port, today, unique, wait_until
from tests.processes import start_logged, stop_process
from tests.social_support import PrivateMariaDB, ShardDatabases, SocialServer, fresh_user_base
from tests.stack import ROOT

LOGS = ROOT / ".stack" / "logs" / "tests"
ACL_USER, ACL_PASSWORD = "stepboard-app", "app-secret"
X509_USER = "stepboard_x509"
CLIENT_SSL = 0x0800  # the server greeting's "I speak TLS" capability bit


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> Path:
    """A fresh CA, server and client certificates, and a client certificate of a second,
    untrusted CA (``rogue-ca``)."""
    directory = tmp_path_factory.mktemp("tls")
    subprocess.run(["bash", str(ROOT / "stack" / "tls.sh"), str(directory)], check=True)
    return directory


def redis_server(directory: Path, lines: list[str], *args: str) -> subprocess.Popen:
    """A redis-server with ``lines`` as its configuration (a file of its own, which a
    Sentinel rewrites) and ``args``, data and log in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "redis.conf"
    config.write_text("\n".join(
        ["bind 127.0.0.1", "protected-mode no", 'save ""', "appendonly no",
         f"dir {directory}", *lines]
    ) + "\n")
    return start_logged(["redis-server", str(config), *args], {"PATH": "/usr/bin:/bin"},
                        LOGS / f"{unique('redis-tls')}.log", ROOT)


def server_tls_lines(tls: Path) -> list[str]:
    """A Redis server's TLS configuration: the stack's server certificate, clients must
    present a certificate of the CA."""
    return [f"tls-cert-file {tls / 'server.pem'}", f"tls-key-file {tls / 'server-key.pem'}",
            f"tls-ca-cert-file {tls / 'ca.pem'}", "tls-auth-clients yes"]


def tls_env(tls: Path, store: str, ca: str = "ca", cert: str = "client") -> dict[str, str]:
    """``STEPBOARD_<store>_TLS*`` settings trusting ``ca`` and presenting ``cert``."""
    return {
        f"STEPBOARD_{store}_TLS": "true",
        f"STEPBOARD_{store}_TLS_CA_FILE": str(tls / f"{ca}.pem"),
        f"STEPBOARD_{store}_TLS_CERT_FILE": str(tls / f"{cert}.pem"),
        f"STEPBOARD_{store}_TLS_KEY_FILE": str(tls / f"{cert}-key.pem"),
    }


@pytest.fixture(scope="module")
def redis_tls(tls, tmp_path_factory) -> Iterator[dict[str, int]]:
    """A Redis listening in plaintext and over TLS, with an ACL user; its ports."""
    ports = {"plain": free_port(), "tls": free_port()}
    process = redis_server(tmp_path_factory.mktemp("redis"), [
        f"port {ports['plain']}", f"tls-port {ports['tls']}", *server_tls_lines(tls),
        f"user {ACL_USER} on >{ACL_PASSWORD} ~* &* +@all",
    ])
    plain = redis.Redis(port=ports["plain"])
    wait_until(lambda: _answers(plain), 10, 0.05)
    yield ports
    plain.close()
    stop_process(process)


def _answers(client: redis.Redis) -> bool:
    try:
        return client.ping()
    except redis.exceptions.ConnectionError:
        return False


@pytest.fixture(scope="module")
def sentinel_tls(tls, redis_tls, tmp_path_factory) -> Iterator[int]:
    """A Sentinel speaking TLS only, watching ``redis_tls``'s TLS port; its port."""
    port = free_port()
    process = redis_server(tmp_path_factory.mktemp("sentinel"), [
        "port 0", f"tls-port {port}", *server_tls_lines(tls), "tls-replication yes",
        # Sentinel dials the master as a client: with a client certificate.
        f"tls-client-cert-file {tls / 'client.pem'}",
        f"tls-client-key-file {tls / 'client-key.pem'}",
        f"sentinel monitor mymaster 127.0.0.1 {redis_tls['tls']} 1",
    ], "--sentinel")
    wait_until(lambda: _sentinel_answers(tls, port), 10, 0.05)
    yield port
    stop_process(process)


def _sentinel_answers(tls: Path, port: int) -> bool:
    done = subprocess.run(
        ["redis-cli", "--tls", "--cacert", str(tls / "ca.pem"), "--cert", str(tls / "client.pem"),
         "--key", str(tls / "client-key.pem"), "-p", str(port), "sentinel", "masters"],
        capture_output=True, text=True,
    )
    return "mymaster" in done.stdout


@pytest.fixture(scope="module")
def redis_cluster_tls(tls, tmp_path_factory) -> Iterator[list[int]]:
    """Three Redis Cluster masters speaking TLS only, their bus included; their ports."""
    ports = [free_port() for _ in range(3)]
    processes = [
        redis_server(tmp_path_factory.mktemp(f"node{port}"), [
            "port 0", f"tls-port {port}", f"cluster-port {free_port()}", "tls-cluster yes",
            "cluster-enabled yes", "cluster-config-file nodes.conf",
            "cluster-node-timeout 2000", *server_tls_lines(tls),
            # The bus dials the other nodes as a client: with a client certificate.
            f"tls-client-cert-file {tls / 'client.pem'}",
            f"tls-client-key-file {tls / 'client-key.pem'}",
        ])
        for port in ports
    ]
    cli = ["redis-cli", "--tls", "--cacert", str(tls / "ca.pem"), "--cert",
           str(tls / "client.pem"), "--key", str(tls / "client-key.pem")]

    def all_up() -> bool:
        return all(
            subprocess.run([*cli, "-p", str(port), "ping"], capture_output=True,
                           text=True).stdout.strip() == "PONG"
            for port in ports
        )

    wait_until(all_up, 10, 0.05)
    subprocess.run([*cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                    "--cluster-replicas", "0", "--cluster-yes"],
                   check=True, capture_output=True, timeout=30)

    def formed() -> bool:
        return all(
            "cluster_state:ok" in subprocess.run(
                [*cli, "-p", str(port), "cluster", "info"], capture_output=True, text=True
            ).stdout
            for port in ports
        )

    wait_until(formed, 20, 0.1)
    yield ports
    for process in processes:
        stop_process(process)


@pytest.fixture(scope="module")
def mariadb_tls(tls) -> Iterator[PrivateMariaDB]:
    """A MariaDB with the stack's server certificate loaded, and a user that must present
    a client certificate of the CA."""
    server = PrivateMariaDB(f"--ssl-cert={tls / 'server.pem'}",
                            f"--ssl-key={tls / 'server-key.pem'}", f"--ssl-ca={tls / 'ca.pem'}")
    server.root(f"CREATE USER '{X509_USER}'@'127.0.0.1' IDENTIFIED BY 'x' REQUIRE X509;"
                f"GRANT ALL ON `stepboard\\_%`.* TO '{X509_USER}'@'127.0.0.1';")
    yield server
    server.close()


def redis_env(url: str, **more: str) -> dict[str, str]:
    return {"STEPBOARD_REDIS_URL": url, **more}


def write_and_read_board(client) -> None:
    """A day board written through ``client`` and read back."""
    store = BoardStore(client, BoardSettings(shards=4, namespace=unique("tls")))
    day = today()
    scores = {(day, user): encode_score(day, 1000 * user, 60) for user in (1, 2, 3)}
    assert store.apply(scores, {}) == set()
    top, total = store.top(day, 10)
    assert total == 3
    assert [row.user_id for row in top] == [3, 2, 1]


# ---------------------------------------------------------------------------- Redis


def test_redis_board_over_tls_as_an_acl_user(tls, redis_tls):
    settings = RedisSettings.from_env(redis_env(
        f"rediss://127.0.0.1:{redis_tls['tls']}/0", STEPBOARD_REDIS_USERNAME=ACL_USER,
        STEPBOARD_REDIS_PASSWORD=ACL_PASSWORD, **tls_env(tls, "REDIS"),
    ))
    client = create_redis(settings)
    try:
        write_and_read_board(client)
        assert client.acl_whoami() == ACL_USER
    finally:
        client.close()


def test_redis_wrong_acl_password_is_refused(tls, redis_tls):
    client = create_redis(RedisSettings.from_env(redis_env(
        f"rediss://127.0.0.1:{redis_tls['tls']}/0", STEPBOARD_REDIS_USERNAME=ACL_USER,
        STEPBOARD_REDIS_PASSWORD="wrong", **tls_env(tls, "REDIS"),
    )))
    with pytest.raises(redis.exceptions.AuthenticationError):
        client.ping()
    client.close()


@pytest.mark.parametrize("secure", [True, False], ids=["tls", "plaintext-control"])
def test_redis_traffic_is_encrypted(tls, redis_tls, secure):
    relay = FaultProxy(("127.0.0.1", redis_tls["tls" if secure else "plain"]), record=True)
    url = f"{'rediss' if secure else 'redis'}://{relay.address}/0"
    env = redis_env(url, **(tls_env(tls, "REDIS") if secure else {}))
    client = create_redis(RedisSettings.from_env(env))
    marker = f"marker-{uuid.uuid4().hex}"
    try:
        client.set(marker, marker, ex=60)
        assert client.get(marker) == marker.encode()
    finally:
        client.close()
        relay.close()
    assert len(relay.recorded) > 100
    assert (marker.encode() in relay.recorded) is not secure


def test_redis_cluster_board_over_tls(tls, redis_cluster_tls):
    settings = RedisSettings.from_env({
        "STEPBOARD_REDIS_MODE": "cluster",
        "STEPBOARD_REDIS_CLUSTER_NODES": f"127.0.0.1:{redis_cluster_tls[0]}",
        **tls_env(tls, "REDIS"),
    })
    client = create_redis(settings)
    try:
        write_and_read_board(client)
        assert len(client.get_primaries()) == 3
    finally:
        client.close()


def test_redis_sentinel_and_master_over_tls(tls, sentinel_tls):
    """The Sentinel has no plaintext port: asking it for the master needs TLS too."""
    client = create_redis(RedisSettings.from_env({
        "STEPBOARD_REDIS_MODE": "sentinel",
        "STEPBOARD_REDIS_SENTINELS": f"127.0.0.1:{sentinel_tls}",
        **tls_env(tls, "REDIS"),
    }))
    try:
        write_and_read_board(client)
    finally:
        client.close()


def test_redis_server_certificate_of_another_ca_is_refused(tls, redis_tls):
    client = create_redis(RedisSettings.from_env(redis_env(
        f"rediss://127.0.0.1:{redis_tls['tls']}/0", **tls_env(tls, "REDIS", ca="rogue-ca"),
    )))
    with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
        client.ping()
    client.close()


@pytest.mark.parametrize("cert", ["rogue-client", ""])
def test_redis_client_certificate_of_another_ca_or_none_is_refused(tls, redis_tls, cert):
    env = tls_env(tls, "REDIS", cert=cert or "client")
    if not cert:
        del env["STEPBOARD_REDIS_TLS_CERT_FILE"], env["STEPBOARD_REDIS_TLS_KEY_FILE"]
    client = create_redis(RedisSettings.from_env(
        redis_env(f"rediss://127.0.0.1:{redis_tls['tls']}/0", **env)
    ))
    with pytest.raises(redis.exceptions.ConnectionError):
        client.ping()
    client.close()


# ---------------------------------------------------------------------------- MySQL


def mysql_settings(
    server: PrivateMariaDB, database: str, user: str = "stepboard:stepboard",
    address: str = "", **env: str,
) -> MySQLSettings:
    host, port = server.address
    dsn = f"mysql://{user}@{address or f'{host}:{port}'}/{database}"
    return MySQLSettings.from_env({"STEPBOARD_MYSQL_SHARD_DSNS": dsn, **env})


def session_cipher(settings: MySQLSettings) -> str:
    """The TLS cipher of a connection the project's pools open ("" if plaintext)."""
    pools = ShardPools(settings)
    try:
        with ShardAccess(pools, 5).cursor(0) as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            return cur.fetchone()[1]
    finally:
        pools.close()


@pytest.fixture(scope="module")
def graph(mariadb_tls) -> Iterator[ShardDatabases]:
    databases = ShardDatabases([mariadb_tls.address])
    yield databases
    databases.drop()


def test_friend_graph_and_archive_over_tls(tls, mariadb_tls, graph, redis_tls):
    social = SocialServer(graph, unique("sg"), **tls_env(tls, "MYSQL"))
    try:
        user = fresh_user_base() + 1
        social.stub.AddFriendship(
            social_pb2.AddFriendshipRequest(user_id=user, friend_id=user + 1), timeout=10
        )
        reply = social.stub.ListFriends(social_pb2.ListFriendsRequest(user_id=user), timeout=10)
        assert list(reply.friend_ids) == [user + 1]
        assert session_cipher(social.config.mysql)
    finally:
        social.close()

    archive = ShardDatabases([mariadb_tls.address], "ARCHIVE_", archive_migrate)
    board = create_redis(RedisSettings.from_env(redis_env(
        f"rediss://127.0.0.1:{redis_tls['tls']}/0", **tls_env(tls, "REDIS"))))
    pools = ShardPools(mysql_settings(mariadb_tls, archive.names[0], **tls_env(tls, "MYSQL")),
                       local_infile=True)
    try:
        store = BoardStore(board, BoardSettings(shards=2, namespace=unique("tls")))
        day = today() - timedelta(days=1)
        store.apply({(day, u): encode_score(day, 100 * u, 60) for u in range(1, 51)}, {})
        archiver = Archiver(store, pools)
        assert archiver.archive_day(day) == 50
        assert not archiver._refused  # written by LOAD DATA LOCAL INFILE, over TLS
        assert archive.query(0, "SELECT COUNT(*) FROM day_steps WHERE day = %s",
                             (day,)) == [(50,)]
    finally:
        pools.close()
        board.close()
        archive.drop()


def strip_tls_offer(greeting: bytes) -> bytes:
    """The server's greeting packet with its TLS capability cleared."""
    at = greeting.index(b"\0", 5) + 1 + 4 + 9  # version string, thread id, salt, filler
    flags = int.from_bytes(greeting[at:at + 2], "little") & ~CLIENT_SSL
    return greeting[:at] + flags.to_bytes(2, "little") + greeting[at + 2:]


def select_marker(settings: MySQLSettings, marker: str) -> None:
    pools = ShardPools(settings)
    try:
        with ShardAccess(pools, 5).cursor(0) as cur:
            cur.execute("SELECT %s", (marker,))
            assert cur.fetchone() == (marker,)
    finally:
        pools.close()


@pytest.mark.parametrize("secure", [True, False], ids=["tls", "plaintext-control"])
def test_mysql_traffic_is_encrypted(tls, mariadb_tls, graph, secure):
    """The control turns TLS off and hides the server's offer (else PyMySQL would take it
    unasked), so its marker crosses the relay in the clear."""
    relay = FaultProxy(mariadb_tls.address, record=True,
                       rewrite_greeting=None if secure else strip_tls_offer)
    marker = f"marker-{uuid.uuid4().hex}"
    env = tls_env(tls, "MYSQL") if secure else {}
    try:
        select_marker(mysql_settings(mariadb_tls, graph.names[0], address=relay.address,
                                     **env), marker)
    finally:
        relay.close()
    assert len(relay.recorded) > 100
    assert (marker.encode() in relay.recorded) is not secure


def test_mysql_client_requiring_tls_is_not_downgraded(tls, mariadb_tls, graph):
    relay = FaultProxy(mariadb_tls.address, record=True, rewrite_greeting=strip_tls_offer)
    marker = f"marker-{uuid.uuid4().hex}"
    try:
        with pytest.raises(Unavailable, match="SSL is required"):
            select_marker(mysql_settings(mariadb_tls, graph.names[0], address=relay.address,
                                         **tls_env(tls, "MYSQL")), marker)
    finally:
        relay.close()
    assert marker.encode() not in relay.recorded


def test_mysql_server_certificate_of_another_ca_is_refused(tls, mariadb_tls, graph):
    settings = mysql_settings(mariadb_tls, graph.names[0], **tls_env(tls, "MYSQL", ca="rogue-ca"))
    with pytest.raises(Unavailable, match="certificate verify failed"):
        session_cipher(settings)


def test_mysql_user_requiring_a_client_certificate(tls, mariadb_tls, graph):
    user = f"{X509_USER}:x"
    assert session_cipher(mysql_settings(mariadb_tls, graph.names[0], user,
                                         **tls_env(tls, "MYSQL")))
    for env in (tls_env(tls, "MYSQL", cert="rogue-client"),
                {"STEPBOARD_MYSQL_TLS": "true",
                 "STEPBOARD_MYSQL_TLS_CA_FILE": str(tls / "ca.pem")}):
        with pytest.raises(Unavailable):
            session_cipher(mysql_settings(mariadb_tls, graph.names[0], user, **env))


# ---------------------------------------------------------------------------- settings


def test_redis_tls_settings_are_checked(tls):
    url = "rediss://127.0.0.1:1/0"
    with pytest.raises(ConfigError, match="STEPBOARD_REDIS_TLS_CERT_FILE and "
                                          "STEPBOARD_REDIS_TLS_KEY_FILE go together"):
        RedisSettings.from_env(redis_env(url, STEPBOARD_REDIS_TLS_CERT_FILE=str(tls / "ca.pem")))
    with pytest.raises(ConfigError, match="STEPBOARD_REDIS_TLS_CA_FILE: cannot read"):
        RedisSettings.from_env(redis_env(url, STEPBOARD_REDIS_TLS_CA_FILE=str(tls / "none")))
    with pytest.raises(ConfigError, match="STEPBOARD_REDIS_TLS_CA_FILE is set but TLS"):
        RedisSettings.from_env(redis_env("redis://127.0.0.1:1/0",
                                         STEPBOARD_REDIS_TLS_CA_FILE=str(tls / "ca.pem")))
    with pytest.raises(ConfigError, match="STEPBOARD_REDIS_URL: use a rediss:// URL"):
        RedisSettings.from_env(redis_env("redis://127.0.0.1:1/0", STEPBOARD_REDIS_TLS="true"))
    assert RedisSettings.from_env(redis_env(url)).tls.enabled


def test_mysql_tls_settings_are_checked(tls):
    env = {"STEPBOARD_MYSQL_SHARD_DSNS": "mysql://u:p@db:3306/s0"}
    with pytest.raises(ConfigError, match="STEPBOARD_MYSQL_TLS_KEY_FILE: cannot read"):
        MySQLSettings.from_env(env | tls_env(tls, "MYSQL", cert="missing")
                               | {"STEPBOARD_MYSQL_TLS_CERT_FILE": str(tls / "client.pem")})
    with pytest.raises(ConfigError, match="STEPBOARD_MYSQL_TLS_CA_FILE is set but TLS is off"):
        MySQLSettings.from_env(env | tls_env(tls, "MYSQL") | {"STEPBOARD_MYSQL_TLS": "false"})
    assert not MySQLSettings.from_env(env).tls_options()
    pymysql_ssl = MySQLSettings.from_env(env | tls_env(tls, "MYSQL")).tls_options()["ssl"]
    assert pymysql_ssl.check_hostname
