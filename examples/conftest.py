"""The demo's fixtures, written on the Client API (the plugin's own fixtures come with issue 6).

`make demo` runs these tests against real containers on the local engine: no Docker daemon.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_pods import Client, Container


@pytest.fixture(scope="session")
def client() -> Iterator[Client]:
    """Scope: session. The local engine over the root `make demo` prepared (busybox, Debian);
    at the end, what the session left on the host (networks, cgroup parents) is released."""
    c = Client(os.environ.get("PODS_TEST_ROOT"))
    yield c
    c.cleanup()


@pytest.fixture
def web(client: Client) -> Iterator[tuple[Container, int]]:
    """Scope: function. busybox httpd serving examples/site, published on a free host port."""
    site = Path(__file__).parent / "site"
    c = client.containers.run(
        "busybox", ["httpd", "-f", "-p", "80", "-h", "/www"],
        detach=True, ports={"80/tcp": None}, volumes=[f"{site}:/www:ro"], memory="32m", read_only=True,
    )
    try:
        yield c, c.host_port(80)
    finally:
        c.remove(force=True)
