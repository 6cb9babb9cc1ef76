"""Global-top answers reused while the day's board is unchanged.

Merging every shard's best ``limit`` users costs milliseconds, and many callers ask for the
same top. An answer is kept with the board's versions (:meth:`BoardStore.versions`, bumped
by every write) and served again while they are equal, so it is never staler than the board;
``MAX_AGE_S`` bounds how long the nicknames in it may be reused.
"""

import threading
from collections.abc import Callable, Hashable
from datetime import date
from typing import Generic, TypeVar

from rank_svc.board import BoardStore
from rank_svc.timed_lru import TimedLru

MAX_AGE_S = 5.0
MAX_ANSWERS = 64
T = TypeVar("T")


class TopCache(Generic[T]):
    """One built answer per (day, question), checked against the board's versions."""

    def __init__(self, store: BoardStore) -> None:
        self._store = store
        self._answers: TimedLru[tuple[date, Hashable], tuple[tuple, T]] = TimedLru(
            MAX_ANSWERS
        )
        self._building = threading.Lock()

    def _unchanged(self, key: tuple[date, Hashable], versions: tuple) -> T | None:
        found = self._answers.get(key)
        if found is None:
            return None
        age, (seen, answer) = found
        return answer if age <= MAX_AGE_S and seen == versions else None

    def answer(self, day: date, question: Hashable, build: Callable[[], T]) -> T:
        """The cached answer to ``question`` about ``day``'s board, or ``build()``'s.

        Versions are read before building, so a write that lands meanwhile makes the next
        call build again. Callers that miss together wait for one build.
        """
        key = (day, question)
        versions = self._store.versions(day)
        answer = self._unchanged(key, versions)
        if answer is None:
            with self._building:
                answer = self._unchanged(key, versions)
                if answer is None:
                    answer = build()
                    self._answers.put(key, (versions, answer))
        return answer
