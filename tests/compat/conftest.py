"""Real clients (the docker CLI, docker-py, testcontainers) against ``pods daemon``.

One daemon per test session, on a private socket over the test root; ``docker_env`` points a
client at it (``DOCKER_HOST``) and keeps the client's config apart from the user's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helper import Daemon, run_dir_base

from pytest_pods import Client


@pytest.fixture
def docker_engine(request: pytest.FixtureRequest, daemon: Daemon) -> Any:
    """Scope: function. Depends on: daemon. The daemon ``docker_env``, ``docker`` and
    ``docker_client`` talk to: ``daemon`` (ours), or in a test marked ``@both_engines``
    (tests/dockerd_helper.py) each of ours and the reference dockerd in turn."""
    if getattr(request, "param", "pods") == "dockerd":
        return request.getfixturevalue("reference_docker")
    return daemon


@pytest.fixture
def docker_env(docker_engine: Any, tmp_path: Path) -> dict[str, str]:
    """Scope: function. The environment for a docker client pointed at the daemon."""
    cfg = tmp_path / "docker-config"
    cfg.mkdir()
    env = dict(os.environ, DOCKER_HOST=docker_engine.host, DOCKER_CONFIG=str(cfg), DOCKER_BUILDKIT="0")
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


# -- what the client-side tests share ------------------------------------------------------------
LABEL = "io.pytest-pods.test"
"""The label the docker-py tests put on what they make; teardown removes what carries their value."""


@pytest.fixture
def names(docker: DockerCLI) -> Iterator[list[str]]:
    """Scope: function. Depends on: docker. Container names the test made; ``rm -f`` at teardown
    (one that is already gone is fine; any other failure is raised)."""
    made: list[str] = []
    yield made
    errors = []
    for n in made:
        proc = docker("rm", "-f", n, check=False)
        if proc.returncode != 0 and "No such container" not in proc.stderr:
            errors.append(AssertionError(f"teardown: docker rm -f {n}: {proc.stderr.strip()}"))
    if errors:
        raise ExceptionGroup("teardown: remove what the test made", errors)


def remove_labelled(client: Any, key: str, value: str) -> None:
    """Remove every container, then network, then volume labelled ``key=value``; every step runs.

    Labels are matched here, not by the daemon's filters: a daemon that ignored a filter must not
    make this teardown remove what other tests own.

    :raises ExceptionGroup: if several removals failed (one alone is raised as it is).
    """
    import docker as dockerpy  # only where docker-py runs (the tests that use it import it too)

    errors: list[Exception] = []

    def remove(what: Any, **kwargs: Any) -> None:
        try:
            what.remove(**kwargs)
        except dockerpy.errors.NotFound:
            pass  # already gone
        except dockerpy.errors.APIError as exc:
            errors.append(exc)

    def mine(labels: dict[str, str] | None) -> bool:
        return (labels or {}).get(key) == value

    for ctr in client.containers.list(all=True):
        if mine(ctr.labels):
            remove(ctr, force=True)
    for net in client.networks.list():
        if mine(net.attrs.get("Labels")):
            remove(net)
    for vol in client.volumes.list():
        if mine(vol.attrs.get("Labels")):
            remove(vol, force=True)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ExceptionGroup(f"remove what carries {key}={value}", errors)


@pytest.fixture
def docker_client(docker_engine: Any) -> Iterator[Any]:
    """Scope: function. Depends on: docker_engine. A docker-py client on the daemon's socket."""
    dockerpy = pytest.importorskip("docker")
    client = dockerpy.DockerClient(base_url=docker_engine.host, timeout=60)
    yield client
    client.close()


@pytest.fixture
def labels(docker_client: Any) -> Iterator[dict[str, str]]:
    """Scope: function. Depends on: docker_client. The label this test puts on what it creates;
    teardown removes everything that carries it."""
    value = uuid.uuid4().hex
    yield {LABEL: value}
    remove_labelled(docker_client, LABEL, value)
