"""A handler's failure becomes one clear status: an upstream stepboard service's refusal is
UNAVAILABLE naming its code, never an INTERNAL error."""

import grpc
import pytest

from common.errors import InvalidArgument, status_for


class _UpstreamError(grpc.RpcError, grpc.Call):
    """A failed call to another service, as the gRPC client raises it."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self):
        return ()

    def trailing_metadata(self):
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self):
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback) -> bool:
        return False


@pytest.mark.parametrize("code", [
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.INTERNAL,
])
def test_an_upstream_failure_is_unavailable_naming_its_code(code):
    status, message = status_for(_UpstreamError(code, "refused"))
    assert status == grpc.StatusCode.UNAVAILABLE
    assert message == f"upstream service: {code.name}: refused"


def test_domain_errors_keep_their_status_and_anything_else_is_internal():
    assert status_for(InvalidArgument("day", "is not a date"))[0] == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert status_for(KeyError("x")) == (grpc.StatusCode.INTERNAL, "internal error")
