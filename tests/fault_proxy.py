"""A TCP proxy for fault injection: forwards a free local port to a target, and can add
latency, drop every open connection, or refuse new ones, switchable while it runs; it can
also record what passes and rewrite what the target says first on each connection."""

import socket
import struct
import threading
import time
from collections.abc import Callable

from tests.harness import free_port

CHUNK = 65536


class FaultProxy:
    """Listens on ``127.0.0.1:<free port>`` and forwards each connection to ``target``."""

    def __init__(
        self, target: tuple[str, int], record: bool = False,
        rewrite_greeting: Callable[[bytes], bytes] | None = None,
    ) -> None:
        """``record`` keeps every byte forwarded, both ways, in :attr:`recorded`;
        ``rewrite_greeting`` rewrites the first chunk the target sends on a connection (a
        man in the middle tampering with a server's greeting)."""
        self.target = target
        self.record = record
        self.recorded = bytearray()
        self.rewrite_greeting = rewrite_greeting
        self.port = free_port()
        self.latency_s = 0.0
        self.refusing = False
        self.accepted = 0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._closed = threading.Event()
        threading.Thread(target=self._accept_loop, daemon=True, name="proxy-accept").start()

    @property
    def address(self) -> str:
        """``host:port`` to give a client instead of the target's address."""
        return f"127.0.0.1:{self.port}"

    def set_latency(self, seconds: float) -> None:
        """Delays every chunk forwarded in either direction by ``seconds`` (0 = none)."""
        self.latency_s = seconds

    def refuse(self, on: bool) -> None:
        """While on, new connections are reset as soon as they arrive."""
        self.refusing = on

    def drop_connections(self) -> int:
        """Resets every open connection (both sides); returns how many sockets it closed."""
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            _reset(sock)
        return len(sockets)

    def heal(self) -> None:
        """Back to plain forwarding: no latency, accepting again."""
        self.set_latency(0.0)
        self.refuse(False)

    def close(self) -> None:
        """Stops listening and drops every connection."""
        self._closed.set()
        self._listener.close()
        self.drop_connections()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self.accepted += 1
                self._open.update((client, upstream))
            for source, sink, rewrite in ((client, upstream, None),
                                          (upstream, client, self.rewrite_greeting)):
                threading.Thread(
                    target=self._pump, args=(source, sink, rewrite), daemon=True,
                    name="proxy-pump",
                ).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket,
        rewrite: Callable[[bytes], bytes] | None,
    ) -> None:
        try:
            while data := source.recv(CHUNK):
                if rewrite is not None:
                    data, rewrite = rewrite(data), None
                if self.record:
                    with self._lock:
                        self.recorded += data
                if self.latency_s:
                    time.sleep(self.latency_s)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.difference_update((source, sink))
            for sock in (source, sink):
                _reset(sock)


def _reset(sock: socket.socket) -> None:
    """Closes with an RST (linger 0), as a crashed peer or a cut link would look."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Wakes the pump thread blocked in recv() on this socket; close() alone does not.
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
