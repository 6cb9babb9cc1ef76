"""Typed configuration read from environment variables.

Every setting is an ``STEPBOARD_*`` variable. Readers take the environment as a mapping so
tests can pass a plain dict; a missing or malformed value raises :class:`ConfigError`
naming the variable, so a misconfigured process fails at start instead of at first use.
These are the parsers; common/settings.py declares each setting's type, default and bounds
and reads it with them.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

PREFIX = "STEPBOARD_"
# The default of a setting that has none: reading it unset raises ConfigError.
REQUIRED = object()
T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration variable is missing or malformed."""


def _raw(env: Mapping[str, str], name: str, default: object) -> str | None:
    value = env.get(PREFIX + name)
    if value is None or value.strip() == "":
        if default is REQUIRED:
            raise ConfigError(f"{PREFIX}{name} is required but not set")
        return None
    return value.strip()


def env_str(env: Mapping[str, str], name: str, default: object = REQUIRED) -> str:
    """A string setting; required unless a default is given."""
    value = _raw(env, name, default)
    return default if value is None else value  # type: ignore[return-value]


def env_int(
    env: Mapping[str, str],
    name: str,
    default: object = REQUIRED,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """An integer setting, checked against optional bounds."""
    value = _raw(env, name, default)
    if value is None:
        return default  # type: ignore[return-value]
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name}: expected an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{PREFIX}{name}: must be >= {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{PREFIX}{name}: must be <= {maximum}, got {number}")
    return number


def env_float(
    env: Mapping[str, str], name: str, default: object = REQUIRED, minimum: float = 0.0
) -> float:
    """A non-negative (by default) number setting, such as a timeout in seconds."""
    value = _raw(env, name, default)
    if value is None:
        return default  # type: ignore[return-value]
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name}: expected a number, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{PREFIX}{name}: must be >= {minimum}, got {number}")
    return number


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A boolean setting: 1/true/yes/on or 0/false/no/off."""
    value = _raw(env, name, default)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{PREFIX}{name}: expected true or false, got {value!r}")


def env_list(env: Mapping[str, str], name: str, default: object = REQUIRED) -> tuple[str, ...]:
    """A comma-separated list setting; empty items are dropped."""
    value = _raw(env, name, default)
    if value is None:
        return tuple(default)  # type: ignore[arg-type]
    return tuple(item.strip() for item in value.split(",") if item.strip())


def env_choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    """A setting that must be one of ``choices``."""
    value = env_str(env, name, default).lower()
    if value not in choices:
        raise ConfigError(f"{PREFIX}{name}: must be one of {', '.join(choices)}, got {value!r}")
    return value


def host_port(env: Mapping[str, str], name: str, value: str) -> tuple[str, int]:
    """Splits ``host:port``; the variable name is only used in the error."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"{PREFIX}{name}: expected host:port, got {value!r}")
    return host, int(port)


def read_env_file(path: Path) -> dict[str, str]:
    """The ``KEY=VALUE`` lines of an env file (stack/local.env and the like), as a fresh
    dict; blank lines and ``#`` comments are skipped, keys and values stripped. A line
    without ``=`` raises :class:`ConfigError` naming the file and line, so a typo in a
    stack file stops the tool that reads it instead of dropping a setting."""
    env = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        env[key.strip()] = value.strip()
    return env


@dataclass(frozen=True)
class LogSettings:
    """How a process logs."""

    level: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "LogSettings":
        """Reads ``STEPBOARD_LOG_LEVEL`` (declared in common.settings)."""
        from common.settings import read  # common.settings builds on this module's readers

        return cls(level=read(env, "LOG_LEVEL").upper())
