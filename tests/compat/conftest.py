"""Real clients (the docker CLI, docker-py, testcontainers) against ``pods daemon``.

One daemon per test session, on a private socket over the test root; ``docker_env`` points a
client at it (``DOCKER_HOST``) and keeps the client's config apart from the user's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon_helper import Daemon, run_dir_base

from pytest_pods import Client


@pytest.fixture
def docker_env(daemon: Daemon, tmp_path: Path) -> dict[str, str]:
    """Scope: function. The environment for a docker client pointed at the daemon."""
    cfg = tmp_path / "docker-config"
    cfg.mkdir()
    env = dict(os.environ, DOCKER_HOST=daemon.host, DOCKER_CONFIG=str(cfg), DOCKER_BUILDKIT="0")
    env.pop("DOCKER_CONTEXT", None)
    return env


class DockerCLI:
    """The real docker CLI in ``env``: ``docker("ps", "-a")`` runs it and returns what it did."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str, check: bool = True, input: str | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """:raises AssertionError: with ``check``, when it exits non-zero (with its output)."""
        proc = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True, input=input,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc


@pytest.fixture
def docker(docker_env: dict[str, str]) -> DockerCLI:
    """Scope: function. Depends on: docker_env. Run the real docker CLI against the daemon."""
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on PATH")
    return DockerCLI(docker_env)


@pytest.fixture
def docker_for(docker_env: dict[str, str]) -> Callable[[Daemon], DockerCLI]:
    """Scope: function. Depends on: docker_env. ``docker_for(d)``: the docker CLI pointed at
    another daemon ``d`` (its own config directory, as ``docker``'s)."""
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on PATH")
    return lambda d: DockerCLI(dict(docker_env, DOCKER_HOST=d.host))


@pytest.fixture
def private_daemon(release_root: Callable[[Client], None]) -> Iterator[Daemon]:
    """Scope: function. Depends on: release_root. A daemon of its own on a fresh root holding
    busybox, for tests that stop and start it; at the end the root is released and removed."""
    root = Path(tempfile.mkdtemp(prefix="pods-private-root-", dir="/var/tmp"))
    run = Path(tempfile.mkdtemp(prefix="pods-private-", dir=run_dir_base()))
    client = Client(root)
    try:
        client.images.bootstrap_busybox()
        d = Daemon(root, run / "pods.sock", run / "daemon.log")
        try:
            d.start()
            yield d
        finally:
            d.stop()
    finally:
        release_root(client)
        shutil.rmtree(run, ignore_errors=True)
        shutil.rmtree(root)
