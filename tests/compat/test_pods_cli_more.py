"""``pods run``'s pull of a missing image (``--pull``, ``-q``) next to the docker CLI on the same
daemon (issue 19); the registry is a real docker-registry on loopback, stopped by its PID."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from daemon_helper import Daemon, wait_until

DockerCLI = Any  # conftest's (conftest modules are not imported by name)
REGISTRY_BIN = "/usr/bin/docker-registry"


def pods(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--root", str(daemon.root), *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Scope: module. ``127.0.0.1:PORT`` of a docker-registry on a temporary config and storage."""
    if not os.path.exists(REGISTRY_BIN):
        pytest.skip(f"no {REGISTRY_BIN}: apt-get install docker-registry")
    work = tmp_path_factory.mktemp("registry")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = work / "config.yml"
    config.write_text("version: 0.1\nlog:\n  level: warn\nstorage:\n"
                      f"  filesystem:\n    rootdirectory: {work / 'data'}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    with open(work / "registry.log", "wb") as out:
        proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
    try:
        def up() -> bool:
            assert proc.poll() is None, (work / "registry.log").read_text()
            with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1) as r:
                return bool(r.status == 200)
            return False

        wait_until(up, 10, f"docker-registry on port {port}")
        yield f"127.0.0.1:{port}"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def pushed(daemon: Daemon, registry: str) -> Iterator[str]:
    """busybox pushed as ``REGISTRY/h/ID/bb:1`` and untagged here, so a run must pull it."""
    ref = f"{registry}/h/{uuid.uuid4().hex[:8]}/bb:1"
    assert pods(daemon, "push", "busybox:latest", ref).returncode == 0
    assert pods(daemon, "rmi", ref).returncode == 0
    yield ref
    pods(daemon, "rmi", ref)


def shape(stderr: str) -> list[str]:
    """The pull's lines without the per-layer ones (which layers exist depends on the order)."""
    return [line for line in stderr.splitlines() if not re.fullmatch(r"[0-9a-f]{12}: .*", line)]


def test_run_pulls_a_missing_image_as_docker_does(docker: DockerCLI, daemon: Daemon, pushed: str) -> None:
    tag, path = "1", pushed.split("/", 1)[1].rsplit(":", 1)[0]
    want = docker("run", "--rm", pushed, "echo", "hi")
    docker("rmi", pushed)
    got = pods(daemon, "run", "--rm", pushed, "echo", "hi")
    assert (got.returncode, got.stdout) == (0, want.stdout) == (0, "hi\n"), got.stderr
    lines = shape(got.stderr)
    assert lines[:2] == shape(want.stderr)[:2] == [f"Unable to find image '{pushed}' locally",
                                                   f"{tag}: Pulling from {path}"]
    assert lines[-2].startswith("Digest: sha256:") and lines[-2] == shape(want.stderr)[-2]
    assert lines[-1] == shape(want.stderr)[-1] == f"Status: Downloaded newer image for {pushed}"
    # present now: no pull, nothing on stderr; --pull always says it is up to date
    again = pods(daemon, "run", "--rm", pushed, "true")
    assert (again.returncode, again.stderr) == (0, "")
    always = pods(daemon, "run", "--rm", "--pull", "always", pushed, "true")
    assert shape(always.stderr)[-1] == f"Status: Image is up to date for {pushed}", always.stderr
    assert "Unable to find" not in always.stderr
    # -q: the pull says nothing
    pods(daemon, "rmi", pushed)
    quiet = pods(daemon, "create", "-q", pushed, "true")
    assert (quiet.returncode, quiet.stderr) == (0, ""), quiet.stderr
    assert pods(daemon, "rm", quiet.stdout.strip()).returncode == 0


def test_pull_never_and_a_bad_pull_value_are_refused(docker: DockerCLI, daemon: Daemon, pushed: str) -> None:
    want = docker("run", "--rm", "--pull", "never", pushed, "true", check=False)
    got = pods(daemon, "run", "--rm", "--pull", "never", pushed, "true")
    assert (got.returncode, want.returncode) == (125, 125)
    assert f"No such image: {pushed}" in got.stderr and f"No such image: {pushed}" in want.stderr
    assert pods(daemon, "images", "-q", pushed).stdout == ""
    bad = pods(daemon, "run", "--pull", "sometimes", "busybox", "true")
    want_bad = docker("run", "--pull", "sometimes", "busybox", "true", check=False)
    assert bad.returncode == 125 and "invalid pull option: 'sometimes'" in want_bad.stderr
    assert "invalid pull option: 'sometimes': must be one of \"always\", \"missing\" or \"never\"" in bad.stderr
