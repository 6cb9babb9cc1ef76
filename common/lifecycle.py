"""Signal handling shared by servers and background workers."""

import signal
import threading


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, for a main loop to watch."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


STOP_POLL_S = 0.2  # how often a main thread waiting for a stop signal wakes


def wait_for(stop: threading.Event) -> None:
    """Blocks until ``stop`` is set, waking every ``STOP_POLL_S``.

    Python runs a signal's handler in the main thread the next time that thread runs
    Python code. The kernel may hand SIGTERM to any thread (gRPC's, Kafka's), and then a
    main thread blocked in a bare ``wait()`` never wakes: a CI run saw ingest ignore
    SIGTERM for minutes. Waking now and then lets the handler run."""
    while not stop.wait(STOP_POLL_S):
        pass
