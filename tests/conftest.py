"""Fixtures every tier uses. Nothing here talks to the stack: the fixtures that do (clients
of Kafka, Redis, MariaDB, a write path) are in ``tests/integration/conftest.py``."""

import pytest

from tests.stack import local_env


@pytest.fixture(scope="session")
def env() -> dict[str, str]:
    """The local stack's environment (``stack/local.env``): settings only, no connection."""
    return local_env()
