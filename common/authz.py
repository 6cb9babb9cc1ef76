"""Who a caller is and which methods it may call: bearer tokens, client certificates and
the per-caller policy of ``STEPBOARD_AUTH_POLICY`` / ``_POLICY_FILE``.

A call's caller is, in this order:

1. the name of the bearer token it presents (``authorization: Bearer <token>``); a token
   that is presented but unknown makes the call ``UNAUTHENTICATED`` (no fallback);
2. without a token, when the server requires client certificates (mTLS), the identity of
   the client certificate: its first DNS subject alternative name, else its first URI SAN,
   else its common name;
3. nobody: the call is ``UNAUTHENTICATED``.

The policy maps each caller to the methods it may call, as full names
(``stepboard.v1.FriendGraph/ListFriends``) or a whole service (``stepboard.v1.Ranking/*``).
A service wildcard never grants the internal methods (:data:`INTERNAL_METHODS`): only an
explicit listing does. Names are checked against every stepboard service, so one policy
serves all three servers. Health and reflection are open to every caller.
"""

import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from common.config import ConfigError
from stepboard.v1 import ingest_pb2, ranking_pb2, social_pb2

# Methods other stepboard components call and app backends must not: the hot-user list
# (every heavily connected user) and the ranking exclusions (who left the rankings, who
# hides from whom). A ``Service/*`` wildcard leaves them out.
INTERNAL_METHODS = frozenset({
    "stepboard.v1.FriendGraph/ListHotUsers",
    "stepboard.v1.FriendGraph/GetRankingExclusions",
})
# Fixed values of the ``caller`` metric label: auth off, authentication failed, and any
# certificate identity that neither a token nor the policy names.
ANONYMOUS = "anonymous"
UNAUTHENTICATED = "unauthenticated"
OTHER = "other"
RESERVED_NAMES = frozenset({ANONYMOUS, UNAUTHENTICATED, OTHER})
# Services reached without a caller check (Kubernetes probes, grpcurl's discovery).
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
_CALLER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}")


def _stepboard_methods() -> dict[str, tuple[str, ...]]:
    """Full service name → its method names, for every stepboard service."""
    services = {}
    for module in (ingest_pb2, ranking_pb2, social_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            services[service.full_name] = tuple(m.name for m in service.methods)
    return services


SERVICES = _stepboard_methods()


@dataclass(frozen=True)
class Policy:
    """Caller → the full method names (``/package.Service/Method``, as gRPC names a call)
    it may call, wildcards expanded."""

    grants: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, source: str) -> "Policy":
        """The policy in JSON ``text``; ``source`` (the variable or file) names it in every
        :class:`ConfigError`, with the caller and the entry at fault."""
        try:
            document = json.loads(text)
        except ValueError as error:
            raise ConfigError(f"{source}: not valid JSON: {error}") from None
        if not isinstance(document, dict) or not document:
            raise ConfigError(
                f"{source}: expected a JSON object of caller → list of methods, "
                'e.g. {"rank": ["stepboard.v1.FriendGraph/ListFriends"]}'
            )
        grants = {}
        for caller, entries in document.items():
            check_caller_name(caller, source)
            if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
                raise ConfigError(f"{source}: caller {caller!r}: expected a list of method names")
            grants[caller] = frozenset(
                method for entry in entries for method in _expand(entry, caller, source)
            )
        return cls(grants)

    def callers_of(self, method: str) -> frozenset[str]:
        """The callers allowed ``method`` (``/package.Service/Method``)."""
        return frozenset(caller for caller, methods in self.grants.items() if method in methods)


def _expand(entry: str, caller: str, source: str) -> Iterable[str]:
    """The full method names ``entry`` grants, or a ConfigError naming it."""
    where = f"{source}: caller {caller!r}: {entry!r}"
    service, sep, method = entry.partition("/")
    if not sep or not service or not method or "/" in method:
        raise ConfigError(f"{where}: expected package.Service/Method or package.Service/*")
    if service not in SERVICES:
        raise ConfigError(f"{where}: unknown service (known: {', '.join(sorted(SERVICES))})")
    if method == "*":
        return [f"/{service}/{m}" for m in SERVICES[service]
                if f"{service}/{m}" not in INTERNAL_METHODS]
    if method not in SERVICES[service]:
        raise ConfigError(f"{where}: {service} has no method {method}")
    return [f"/{entry}"]


def check_caller_name(caller: object, source: str) -> None:
    """Raises ConfigError unless ``caller`` is a usable caller name (it becomes a metric
    label value, so the fixed label values are reserved)."""
    if not isinstance(caller, str) or not _CALLER.fullmatch(caller):
        raise ConfigError(
            f"{source}: caller name {caller!r}: expected 1-128 letters, digits or ._:/@-"
        )
    if caller in RESERVED_NAMES:
        raise ConfigError(f"{source}: caller name {caller!r} is reserved")


def read_policy(inline: str, path: str) -> Policy | None:
    """The policy of ``STEPBOARD_AUTH_POLICY`` (``inline``) or ``_POLICY_FILE`` (``path``);
    ``None`` when neither is set."""
    if inline and path:
        raise ConfigError("set STEPBOARD_AUTH_POLICY or STEPBOARD_AUTH_POLICY_FILE, not both")
    if inline:
        return Policy.parse(inline, "STEPBOARD_AUTH_POLICY")
    if not path:
        return None
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ConfigError(f"STEPBOARD_AUTH_POLICY_FILE: cannot read {path}: {error}") from None
    return Policy.parse(text, f"STEPBOARD_AUTH_POLICY_FILE ({path})")


class Authenticator:
    """Finds a call's caller from its bearer token or, under mTLS, its client certificate."""

    def __init__(self, tokens: Mapping[str, str], client_certificates: bool) -> None:
        self._tokens = tuple((token.encode(), caller) for token, caller in tokens.items())
        self._client_certificates = client_certificates

    def caller(self, context: grpc.ServicerContext) -> str | None:
        """The caller's name, or ``None`` if the call is not authenticated."""
        header = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                header = value
        if header is not None:
            return self._token_caller(header)
        if self._client_certificates:
            return certificate_identity(context.auth_context())
        return None

    def _token_caller(self, header: str) -> str | None:
        """The name of the token in ``header``; constant-time against every known token."""
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return None
        wanted = presented.strip().encode()
        found = None
        for token, caller in self._tokens:
            if hmac.compare_digest(token, wanted):
                found = caller
        return found


def certificate_identity(auth_context: Mapping[str, list[bytes]]) -> str | None:
    """The verified client certificate's first DNS SAN, else first URI SAN, else CN."""
    for key in ("peer_dns", "peer_uri", "x509_common_name"):
        values = auth_context.get(key)
        if values:
            return values[0].decode("utf-8", "replace")
    return None
