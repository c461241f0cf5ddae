"""``pods --host``: our own CLI driving an engine through the Docker Engine API (RemoteEngine)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import Any

import pytest

from pytest_pods import Client, ContainerNotFoundError
from pytest_pods.client.remote import RemoteClient


def pods_host(daemon: Any, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--host", daemon.host, *args],
                          capture_output=True, text=True, input=input, timeout=60)


def test_container_verbs_through_the_daemon(daemon: Any, client: Client) -> None:
    name = f"t-host-{uuid.uuid4().hex[:8]}"
    run = pods_host(daemon, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (run.returncode, run.stdout, run.stderr) == (3, "out\n", "err\n")
    assert pods_host(daemon, "run", "-d", "--name", name, "busybox", "sh", "-c", "echo up; sleep 60").returncode == 0
    try:
        assert name in pods_host(daemon, "ps").stdout
        assert client.containers.get(name).status == "running"  # the same engine, seen locally
        assert pods_host(daemon, "logs", name).stdout == "up\n"
        ex = pods_host(daemon, "exec", name, "sh", "-c", "echo in; exit 5")
        assert (ex.returncode, ex.stdout) == (5, "in\n")
        assert pods_host(daemon, "exec", "-i", name, "cat", input="fed\n").stdout == "fed\n"
        assert pods_host(daemon, "stop", "-t", "1", name).returncode == 0
        assert pods_host(daemon, "rm", name).returncode == 0
        with pytest.raises(ContainerNotFoundError):
            client.containers.get(name)
    finally:
        pods_host(daemon, "rm", "-f", name)


def test_local_only_verbs_and_a_dead_host_fail_cleanly(daemon: Any, tmp_path: Any) -> None:
    proc = pods_host(daemon, "network", "ls")
    assert proc.returncode == 125 and "network needs the local engine" in proc.stderr
    dead = subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--host", f"unix://{tmp_path}/none.sock", "ps"],
                          capture_output=True, text=True, timeout=30)
    assert dead.returncode == 125 and "cannot reach the engine" in dead.stderr
    assert len(dead.stderr.strip().splitlines()) == 1


def test_remote_client_errors_are_the_client_apis(daemon: Any) -> None:
    rc = RemoteClient(daemon.host)
    with pytest.raises(ContainerNotFoundError):
        rc.containers.get("no-such-" + uuid.uuid4().hex[:6])
    from pytest_pods.errors import ImageNotFoundError

    with pytest.raises(ImageNotFoundError):
        rc.images.get("no-such-image:" + uuid.uuid4().hex[:6])
