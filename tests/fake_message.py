"""A stand-in for a confluent-kafka message, for the pure tests of the consumed-batch logic
and the benchmark of it (``bench/collapse_micro.py``), which need no broker."""


class FakeMessage:
    """What ``collapse`` reads from a confluent-kafka message (partition 0)."""

    def __init__(self, value: bytes | None, offset: int, millis: int) -> None:
        self._value, self._offset, self._millis = value, offset, millis

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return 1, self._millis
