"""A bounded, thread-safe LRU map that knows how old each value is (rank_svc's caches)."""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _no_size(_value: object) -> int:
    return 0


class TimedLru(Generic[K, V]):
    """A bounded, thread-safe LRU map that knows how old each value is.

    It holds at most ``max_items`` values and, with ``max_size``, values whose sizes
    (``size_of``) add up to at most ``max_size``: values of very different sizes (friend
    lists of 10 or 20,000 ids) are bounded by what they hold, not only by their number.
    """

    def __init__(
        self, max_items: int, max_size: int | None = None,
        size_of: Callable[[V], int] = _no_size,
    ) -> None:
        self._max_items = max_items
        self._max_size = max_size
        self._size_of = size_of
        self._size = 0  # the sum of the held values' sizes
        self._items: OrderedDict[K, tuple[float, V, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> tuple[float, V] | None:
        """``(age in seconds, value)``, or None if not cached."""
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
        return time.monotonic() - found[0], found[1]

    def younger_than(self, keys: Iterable[K], max_age_s: float) -> dict[K, V]:
        """The values of ``keys`` cached less than ``max_age_s`` ago (one lock for all)."""
        oldest = time.monotonic() - max_age_s
        found = {}
        with self._lock:
            for key in keys:
                item = self._items.get(key)
                if item is not None and item[0] >= oldest:
                    self._items.move_to_end(key)
                    found[key] = item[1]
        return found

    def put(self, key: K, value: V) -> None:
        """Stores ``value``, evicting the least recently used beyond the bounds."""
        self.put_many([(key, value)])

    def put_many(self, items: Iterable[tuple[K, V]]) -> None:
        """Stores each ``(key, value)`` (one lock for all), evicting the least recently used
        beyond the bounds. A value larger than ``max_size`` on its own is not stored (and
        the key's older value goes): it would only have evicted everything else."""
        now = time.monotonic()
        with self._lock:
            for key, value in items:
                size = self._size_of(value)
                replaced = self._items.pop(key, None)
                if replaced is not None:
                    self._size -= replaced[2]
                if self._max_size is None or size <= self._max_size:
                    self._items[key] = (now, value, size)
                    self._size += size
            while len(self._items) > self._max_items or (
                self._max_size is not None and self._size > self._max_size
            ):
                self._size -= self._items.popitem(last=False)[1][2]
