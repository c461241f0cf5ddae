"""Real clients (the docker CLI, docker-py, testcontainers) against ``pods daemon``.

One daemon per test session, on a private socket over the test root; ``docker_env`` points a
client at it (``DOCKER_HOST``) and keeps the client's config apart from the user's.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


class Daemon:
    def __init__(self, root: Path, sock: Path, log: Path) -> None:
        self.root, self.sock, self.log = root, sock, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    def start(self, timeout: float = 20) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_pods.cli", "--root", str(self.root), "daemon", "--socket", str(self.sock),
             "--log-file", str(self.log)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pods daemon exited {self.proc.returncode}: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(self.sock))
                    s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("pods daemon did not answer /_ping in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="session")
def daemon(pods_root: Path, client: object) -> Iterator[Daemon]:
    """Scope: session. Depends on: pods_root, client. A running ``pods daemon`` on the test root."""
    d = Path(tempfile.mkdtemp(prefix="pods-daemon-", dir="/run" if os.access("/run", os.W_OK) else None))
    daemon = Daemon(pods_root, d / "pods.sock", d / "daemon.log")
    daemon.start()
    yield daemon
    daemon.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def docker_env(daemon: Daemon, tmp_path: Path) -> dict[str, str]:
    """Scope: function. The environment for a docker client pointed at the daemon."""
    cfg = tmp_path / "docker-config"
    cfg.mkdir()
    env = dict(os.environ, DOCKER_HOST=daemon.host, DOCKER_CONFIG=str(cfg), DOCKER_BUILDKIT="0")
    env.pop("DOCKER_CONTEXT", None)
    return env


@pytest.fixture
def docker(docker_env: dict[str, str]):  # type: ignore[no-untyped-def]
    """Scope: function. Run the real docker CLI against the daemon."""
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on PATH")

    def run(*args: str, check: bool = True, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["docker", *args], env=docker_env, capture_output=True, text=True, input=input,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run
