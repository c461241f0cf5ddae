"""The demo's fixtures, declared with the plugin's factories.

`make demo` runs these tests against real containers on the local engine (no Docker daemon),
on the engine's default root (``make images`` bootstrapped busybox and Debian there).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_pods import Client, container, wait
from pytest_pods.plugin.fixtures import Pods

SITE = Path(__file__).parent / "site"


@pytest.fixture(scope="session")
def client(pods: Pods) -> Client:
    """Scope: session. Depends on: pods. The Client API over the plugin's root, for the tests
    that drive the engine directly (one-off runs, limits, builds)."""
    return pods.client


# Scope: function. busybox httpd serving examples/site read-only on a free host port; ready once
# it answers.
web = container(
    "busybox", ["httpd", "-f", "-p", "80", "-h", "/www"],
    ports=[80], volumes=[f"{SITE}:/www:ro"], memory="32m", read_only=True,
    wait=wait.http(80, "/index.html"),
)
