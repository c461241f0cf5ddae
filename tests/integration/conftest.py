"""The integration suites' shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from network_helper import Made, Pods

from pytest_pods import Client


@pytest.fixture
def made(client: Client, pods_cli: Pods) -> Iterator[Made]:
    """Scope: function. Depends: client, pods_cli. Unique names; everything made is removed at the end."""
    m = Made(client, pods_cli)
    try:
        yield m
    finally:
        m.teardown()
