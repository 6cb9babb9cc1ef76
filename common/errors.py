"""Domain errors and their gRPC status codes.

Servicers raise these instead of calling ``context.abort`` so that the mapping to status
codes lives in one place (:func:`status_for`), shared by the server interceptor and by the
per-item results of batch RPCs.
"""

import grpc
import pymysql
import redis


class DomainError(Exception):
    """An error with a specific gRPC status; the message is shown to the caller."""

    code = grpc.StatusCode.INTERNAL


class InvalidArgument(DomainError):
    """A request field is invalid; the message names the field."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class NotFound(DomainError):
    """The requested entity does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(DomainError):
    """The request is valid but the system is not in a state that allows it (for example
    a like between users who are not friends); the message names the reason."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(DomainError):
    """A dependency (Kafka, Redis, MySQL, another service) cannot be reached in time."""

    code = grpc.StatusCode.UNAVAILABLE


class ResourceExhausted(DomainError):
    """The server is overloaded (for example the producer queue is full)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class DeadlineExceeded(DomainError):
    """The caller's deadline passed before the work could finish."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


# Dependency failures that are not the caller's fault and may succeed on retry.
_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    pymysql.err.OperationalError,
    pymysql.err.InterfaceError,
)


def status_for(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and caller-facing message for an exception raised by a handler."""
    if isinstance(error, DomainError):
        return error.code, str(error)
    if isinstance(error, _UNAVAILABLE_ERRORS):
        return grpc.StatusCode.UNAVAILABLE, f"dependency unavailable: {type(error).__name__}"
    if isinstance(error, grpc.Call):  # another stepboard service failed or refused
        return grpc.StatusCode.UNAVAILABLE, (
            f"upstream service: {error.code().name}: {error.details()}"
        )
    return grpc.StatusCode.INTERNAL, "internal error"
