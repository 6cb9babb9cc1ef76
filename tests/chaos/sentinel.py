"""A private Redis Sentinel deployment: one master, two replicas, three Sentinels, all
processes of the test's own on free ports (no persistence), stopped by pid."""

import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import redis

from tests.harness import LOG_DIR, free_port, unique, wait_until
from tests.processes import stop_process

MASTER_NAME = "mymaster"


class SentinelRedis:
    """Three ``redis-server`` (the first the master) and three ``redis-server --sentinel``."""

    def __init__(self, down_after_ms: int = 1000, failover_timeout_ms: int = 5000) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sb-sentinel-"))
        self.name = unique("sentinel")
        self.redis_ports = [free_port() for _ in range(3)]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[int, subprocess.Popen] = {}
        master = self.redis_ports[0]
        for port in self.redis_ports:
            replica = [] if port == master else ["--replicaof", "127.0.0.1", str(master)]
            self._spawn(port, ["redis-server", "--bind", "127.0.0.1", "--port", str(port),
                               "--save", "", "--appendonly", "no", "--dir", str(self.dir),
                               *replica])
        for port in self.redis_ports:
            wait_until(lambda p=port: self._client(p).ping(), 10)
        for port in self.sentinel_ports:
            # A Sentinel rewrites its config file, so each gets its own.
            config = self.dir / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}\n"
                f"sentinel failover-timeout {MASTER_NAME} {failover_timeout_ms}\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            self._spawn(port, ["redis-server", str(config), "--sentinel"])
        wait_until(lambda: all(self._sees_replicas(p) for p in self.sentinel_ports), 30)

    def _spawn(self, port: int, argv: list[str]) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = open(LOG_DIR / f"{self.name}-{port}.log", "wb")  # noqa: SIM115 - lives with it
        self.processes[port] = subprocess.Popen(argv, stdout=log, stderr=log)

    @staticmethod
    def _client(port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)

    def _sees_replicas(self, port: int) -> bool:
        try:
            master = self._client(port).sentinel_master(MASTER_NAME)
        except redis.RedisError:
            return False
        return master.get("num-slaves") == 2 and master.get("num-other-sentinels") == 2

    @property
    def env(self) -> dict[str, str]:
        """``STEPBOARD_REDIS_*`` settings pointing a service at this deployment."""
        return {
            "STEPBOARD_REDIS_MODE": "sentinel",
            "STEPBOARD_REDIS_SENTINELS": ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports),
            "STEPBOARD_REDIS_SENTINEL_MASTER": MASTER_NAME,
        }

    def master_port(self) -> int | None:
        """The master's port as the first live Sentinel reports it."""
        for port in self.sentinel_ports:
            try:
                host_port = self._client(port).sentinel_get_master_addr_by_name(MASTER_NAME)
            except redis.RedisError:
                continue
            if host_port:
                return int(host_port[1])
        return None

    def kill_master(self) -> int:
        """SIGKILLs the current master; returns its port."""
        port = self.master_port()
        assert port is not None, "no Sentinel knows the master"
        self.processes[port].send_signal(signal.SIGKILL)
        self.processes[port].wait(10)
        return port

    def wait_failover(self, old_port: int, timeout_s: float = 30) -> int:
        """Waits until the Sentinels name a new, live master; returns its port."""
        def promoted() -> int | None:
            port = self.master_port()
            if port in (None, old_port):
                return None
            try:
                role = self._client(port).role()[0]
            except redis.RedisError:
                return None
            return port if role in (b"master", "master") else None

        return wait_until(promoted, timeout_s, 0.1)

    def close(self) -> None:
        """Stops every process it started and removes its directory."""
        for process in self.processes.values():
            stop_process(process, 10)
        shutil.rmtree(self.dir, ignore_errors=True)
