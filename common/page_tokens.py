"""Opaque page tokens bound to what they page through.

A token carries an offset and the *scope* it was issued for (for example the user and day
of a ranking); presenting it for another scope is ``INVALID_ARGUMENT``. Tokens are not
secret: the caller could only choose another offset into data they may read anyway.
"""

import base64
import binascii

from common.errors import InvalidArgument


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


def decode_offset(token: str, scope: str, field: str = "page_token") -> int:
    """An offset token's offset (0 for an empty token)."""
    if not token:
        return 0
    position = decode_token(token, scope, field)
    if not position.isdigit():
        raise InvalidArgument(field, "is not a valid page token")
    return int(position)
