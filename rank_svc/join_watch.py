"""When to give up on a consumer-group join and start over with a new Kafka consumer.

librdkafka can stall in a group join: a consumer that subscribed just before the broker
went down once never sent another JoinGroup after the broker came back (seen in
``test_broker_down_gives_unavailable_within_the_deadline_and_loses_nothing``; the broker's
log had no join from it), so it never consumed again. The board writer therefore watches
its own membership: subscribed (or revoked) and still without an assignment after a
limit, while the broker answers, it replaces its consumer. An assignment always ends the
wait, an empty one too (a member beyond the partition count is idle, not stuck).
"""


class JoinWatch:
    """Tracks how long a group member has waited for its assignment."""

    def __init__(self, limit_s: float, now: float) -> None:
        self._limit_s = limit_s
        self._waiting_since: float | None = now

    def waiting(self, now: float) -> None:
        """A (re)join began: subscribed, or partitions revoked. Keeps an earlier start."""
        if self._waiting_since is None:
            self._waiting_since = now

    def assigned(self) -> None:
        """The group gave this member its partitions (possibly none): the join is done."""
        self._waiting_since = None

    def overdue(self, now: float) -> bool:
        """Whether a join has been waited on for at least the limit."""
        return self._waiting_since is not None and now - self._waiting_since >= self._limit_s
