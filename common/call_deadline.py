"""The deadline of the gRPC call a thread is serving, for every wait on a dependency.

The server interceptor records each call's deadline here (:func:`enter`) before the
servicer runs, in the thread that runs it. Whatever that servicer waits on (Redis through
:func:`common.redis_clients.create_redis`'s connections, social_svc from rank_svc, the
broker's acknowledgement in ingest) asks :func:`wait_s` how long it may wait: never past
the caller's deadline, so a hung dependency ends the call inside its deadline with a
specific status instead of holding a worker thread after the caller gave up.

Work outside a call (background refreshes, the consumer, precompute) has no deadline and
waits up to each dependency's own cap.
"""

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar, Token

import grpc

from common.errors import DeadlineExceeded, Unavailable

# Part of what is left of a deadline kept back so the answer reaches the caller before it
# expires, even when a restarting dependency starves the process of CPU (100 ms is too
# little for ingest then), and at most a fifth of what is left.
ANSWER_MARGIN_S = 0.25

_DEADLINE: ContextVar[float | None] = ContextVar("call_deadline", default=None)


def enter(time_remaining_s: float | None) -> Token:
    """Records the deadline of the call this thread now serves (``time_remaining_s`` as
    gRPC gives it; None: no deadline). Pass the token to :func:`leave` when it ends."""
    deadline = None if time_remaining_s is None else time.monotonic() + time_remaining_s
    return _DEADLINE.set(deadline)


def leave(token: Token) -> None:
    """Forgets the deadline :func:`enter` recorded. A response stream abandoned by its
    caller may be closed by whichever thread collects it, where nothing was recorded."""
    with contextlib.suppress(ValueError):  # not the thread that entered: nothing to forget
        _DEADLINE.reset(token)


@contextlib.contextmanager
def detached() -> Iterator[None]:
    """Waits inside ignore the call's deadline (each dependency's own cap still holds): for
    work that must finish once started, such as a cache invalidation after a committed
    write, which a caller's short deadline must not cut in half."""
    token = _DEADLINE.set(None)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def wait_s(cap_s: float, share: float = 1.0) -> tuple[float, bool]:
    """How long the current call may wait for a dependency, and whether its deadline (not
    ``cap_s``) set that.

    ``share`` of what is left of the deadline less the answer's margin, at most ``cap_s``
    (the dependency's own timeout: a dependency that takes longer is unavailable). A share
    below 1 keeps time for a fallback (a stale friend list) or further work. Outside a call,
    or for a call without a deadline: ``cap_s``."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return cap_s, False
    left = deadline - time.monotonic()
    usable = (left - min(ANSWER_MARGIN_S, left * 0.2)) * share
    return (usable, True) if usable < cap_s else (cap_s, False)


def rpc_failure(
    error: grpc.RpcError, by_deadline: bool, what: str, unavailable: str
) -> DeadlineExceeded | Unavailable:
    """The error a call answers with when a dependency's gRPC call (given the timeout
    :func:`wait_s` returned with ``by_deadline``) failed: ``DeadlineExceeded`` when the
    caller's deadline cut the wait ("the call's deadline passed while <what>"), else
    ``Unavailable`` with ``unavailable`` (which may use ``{code}``, the status name)."""
    if by_deadline and error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"the call's deadline passed while {what}")
    return Unavailable(unavailable.format(code=error.code().name))
