"""TLS to a store (Redis or MySQL): the same five settings for each, checked at start.

``STEPBOARD_<STORE>_TLS`` turns TLS on; the server's certificate is then verified against
``_TLS_CA_FILE`` (empty: the system's CAs) and, unless ``_TLS_VERIFY_HOSTNAME`` is off,
must name the host dialled; ``_TLS_CERT_FILE`` and ``_TLS_KEY_FILE`` present a client
certificate to a server that asks for one.
"""

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.config import ConfigError
from common.settings import read


@dataclass(frozen=True)
class StoreTls:
    """TLS settings of one store; ``enabled`` False means none of the others is used."""

    enabled: bool
    ca_file: str
    cert_file: str
    key_file: str
    verify_hostname: bool

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], store: str, implied: bool = False
    ) -> "StoreTls":
        """Reads ``STEPBOARD_<store>_TLS*``; ``implied`` turns TLS on whatever
        ``STEPBOARD_<store>_TLS`` says (a ``rediss://`` URL does). A certificate without
        its key, a file that cannot be read, or a file given while TLS is off raises
        :class:`ConfigError` naming the variable: a store meant to be reached over TLS is
        never reached in plaintext because a switch was forgotten."""
        settings = cls(
            enabled=read(env, f"{store}_TLS") or implied,
            ca_file=read(env, f"{store}_TLS_CA_FILE"),
            cert_file=read(env, f"{store}_TLS_CERT_FILE"),
            key_file=read(env, f"{store}_TLS_KEY_FILE"),
            verify_hostname=read(env, f"{store}_TLS_VERIFY_HOSTNAME"),
        )
        files = {"CA_FILE": settings.ca_file, "CERT_FILE": settings.cert_file,
                 "KEY_FILE": settings.key_file}
        if bool(settings.cert_file) != bool(settings.key_file):
            raise ConfigError(f"STEPBOARD_{store}_TLS_CERT_FILE and "
                              f"STEPBOARD_{store}_TLS_KEY_FILE go together")
        for suffix, path in files.items():
            if not path:
                continue
            if not settings.enabled:
                raise ConfigError(f"STEPBOARD_{store}_TLS_{suffix} is set but TLS is off: "
                                  f"set STEPBOARD_{store}_TLS=true")
            try:
                Path(path).read_bytes()
            except OSError as error:
                raise ConfigError(
                    f"STEPBOARD_{store}_TLS_{suffix}: cannot read {path}: {error.strerror}"
                ) from None
        return settings

    @classmethod
    def off(cls, store: str) -> "StoreTls":
        """The declared defaults: TLS off."""
        return cls.from_env({}, store)

    def context(self) -> ssl.SSLContext:
        """A client context: the server's certificate verified (and its name, unless
        ``verify_hostname`` is off), the client certificate loaded if there is one."""
        context = ssl.create_default_context(cafile=self.ca_file or None)
        context.check_hostname = self.verify_hostname
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context
