"""Process start-up shared by every entry point: config from the environment, logging."""

import os
import sys
from collections.abc import Callable, Mapping
from typing import TypeVar

from common.config import ConfigError, LogSettings
from common.logs import setup_logging

C = TypeVar("C")


def load(process: str, read_config: Callable[[Mapping[str, str]], C]) -> C:
    """Sets up logging and reads the config; a config error exits with its message."""
    try:
        setup_logging(LogSettings.from_env(os.environ).level, process)
        return read_config(os.environ)
    except ConfigError as error:
        print(f"{process}: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
