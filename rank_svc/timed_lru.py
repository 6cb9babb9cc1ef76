"""A bounded, thread-safe LRU map that knows how old each value is (rank_svc's caches)."""

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TimedLru(Generic[K, V]):
    """A bounded, thread-safe LRU map that knows how old each value is."""

    def __init__(self, max_items: int) -> None:
        self._max_items = max_items
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
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
        """Stores ``value``, evicting the least recently used beyond the bound."""
        self.put_many([(key, value)])

    def put_many(self, items: Iterable[tuple[K, V]]) -> None:
        """Stores each ``(key, value)`` (one lock for all), evicting the least recently used
        beyond the bound."""
        now = time.monotonic()
        with self._lock:
            for key, value in items:
                self._items[key] = (now, value)
                self._items.move_to_end(key)
            while len(self._items) > self._max_items:
                self._items.popitem(last=False)
