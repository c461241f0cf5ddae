"""Shared test set-up: one engine root per run, base images built once (see the Makefile).

``PODS_TEST_ROOT`` names the root; the Makefile points it at a cache directory where busybox and
Debian images are bootstrapped once and kept between runs. Without it, a fresh root under /tmp
is made and busybox bootstrapped into it (Debian tests then build Debian, slowly, once).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_pods import Client

pytest_plugins = ["pytester"]


def engine_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the engine needs root (namespaces, overlayfs, cgroups)"
    if not os.path.exists("/proc/self/ns/pid"):
        return "no namespace support in this kernel"
    from pytest_pods.engine.runtime.cgroups import available

    return available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = engine_unavailable()
    if reason is None:
        return
    for item in items:
        if any(part in str(item.fspath) for part in ("integration", "compat", "plugin")):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def pods_root() -> Path:
    root = os.environ.get("PODS_TEST_ROOT")
    if root:
        return Path(root)
    return Path(tempfile.mkdtemp(prefix="pods-test-root-", dir="/var/tmp"))


def release(c: Client) -> None:
    """Leave nothing of a root behind on the host: containers, networks (bridges, rules), cgroups."""
    for st in c.runtime.list(all=True):
        c.runtime.remove(st["id"], force=True)
    c.cleanup()


@pytest.fixture(scope="session")
def release_root() -> Callable[[Client], None]:
    """Scope: session. The function that leaves nothing of a root behind (for private roots)."""
    return release


@pytest.fixture(scope="session")
def client(pods_root: Path) -> Iterator[Client]:
    c = Client(pods_root)
    try:
        c.images.get("busybox")
    except Exception:
        c.images.bootstrap_busybox()
    yield c
    release(c)


@pytest.fixture(scope="session")
def debian(client: Client) -> str:
    """Scope: session. The Debian image's name (bootstrapped by the Makefile, else here)."""
    try:
        client.images.get("debian:bookworm")
    except Exception:
        client.images.bootstrap_debian("bookworm")
    return "debian:bookworm"


@pytest.fixture
def name() -> str:
    """A container name no other test (or xdist worker) uses."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pods_cli(pods_root: Path, client: Client):  # type: ignore[no-untyped-def]
    """Run the real `pods` CLI in a subprocess against the test root."""

    def run(*args: str, check: bool = False, timeout: float = 60, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest_pods.cli", "--root", str(pods_root), *args],
            capture_output=True, text=True, timeout=timeout, input=input.decode() if input else None,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"pods {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    return run


@pytest.fixture(scope="session")
def daemon(pods_root: Path, client: Client) -> Iterator[Any]:
    """Scope: session. Depends on: pods_root, client. A running ``pods daemon`` on the test root
    (one per root: the compat tests and the plugin's remote-engine runs share it)."""
    import shutil

    from daemon_helper import Daemon

    d = Path(tempfile.mkdtemp(prefix="pods-daemon-", dir="/run" if os.access("/run", os.W_OK) else None))
    daemon = Daemon(pods_root, d / "pods.sock", d / "daemon.log")
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(d, ignore_errors=True)
