"""Opaque page tokens bound to what they page through.

A token carries a position (an offset, or the numbers of a key) and the *scope* it was
issued for (for example the user and day of a ranking); presenting it for another scope is
``INVALID_ARGUMENT``. Tokens are not secret: the caller could only choose another position
in data they may read anyway, so each number is checked (ASCII digits, within its range).
"""

import base64
import binascii
import re

from common.errors import InvalidArgument

# A number in a token: ASCII digits only (``str.isdigit`` and ``int`` also take "²" or
# "٣"), at most as many as an int64 has, so nothing crafted reaches ``int`` or a query.
_NUMBER = re.compile(r"[0-9]{1,19}")
MAX_INT64 = 2**63 - 1
# Offsets index answers whose sizes and ranks the API gives as int32.
MAX_OFFSET = 2**31 - 1


def encode_token(scope: str, position: str) -> str:
    """A token resuming at ``position`` (an offset or a key) within ``scope``."""
    return base64.urlsafe_b64encode(f"{scope}|{position}".encode()).decode().rstrip("=")


def decode_token(token: str, scope: str, field: str = "page_token") -> str:
    """The position a token resumes at; ``InvalidArgument`` naming ``field`` if it is not
    a token issued for ``scope``."""
    try:
        padded = token + "=" * (-len(token) % 4)
        issued_for, sep, position = (
            base64.urlsafe_b64decode(padded.encode()).decode().rpartition("|")
        )
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidArgument(field, "is not a valid page token") from None
    if not sep or issued_for != scope:
        raise InvalidArgument(field, "was issued for another request (user, day or list)")
    return position


def decode_numbers(
    token: str, scope: str, count: int, maximum: int = MAX_INT64, field: str = "page_token"
) -> list[int]:
    """The ``count`` ``:``-separated numbers, each at most ``maximum``, of a token issued
    for ``scope``; ``InvalidArgument`` naming ``field`` if it holds anything else."""
    parts = decode_token(token, scope, field).split(":")
    if len(parts) != count or not all(_NUMBER.fullmatch(part) for part in parts):
        raise InvalidArgument(field, "is not a valid page token")
    numbers = [int(part) for part in parts]
    if max(numbers) > maximum:
        raise InvalidArgument(field, f"holds a position beyond {maximum}")
    return numbers


def decode_offset(token: str, scope: str, field: str = "page_token") -> int:
    """An offset token's offset, at most ``MAX_OFFSET`` (0 for an empty token)."""
    if not token:
        return 0
    return decode_numbers(token, scope, 1, MAX_OFFSET, field)[0]
