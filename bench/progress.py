"""Progress bars of the benchmark phases: the shared bar, and a timed wait drawn with it."""

import time

from common.progress import Progress


def timed_wait(label: str, seconds: float, stop=None) -> None:
    """Sleeps ``seconds`` with a bar (ends early when ``stop()`` is true)."""
    bar = Progress(label, seconds, "s")
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if stop is not None and stop():
            break
        time.sleep(min(0.25, left))
        bar.update(seconds - max(0.0, end - time.monotonic()))
    bar.finish()
