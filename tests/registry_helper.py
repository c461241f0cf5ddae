"""A real docker-registry (Debian's ``docker-registry``) for a test: on a free loopback port, on its
own storage, stopped by its PID. ``with serve_registry(workdir) as host:`` gives ``127.0.0.1:PORT``."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REGISTRY_BIN = "/usr/bin/docker-registry"


@contextlib.contextmanager
def serve_registry(work: Path, wait_for_install: float = 180) -> Iterator[str]:
    """Skips the test, with the reason, where the binary is missing (apt may still be
    installing it when a run starts: it is waited for ``wait_for_install`` seconds)."""
    deadline = time.monotonic() + wait_for_install
    while not os.path.exists(REGISTRY_BIN) and time.monotonic() < deadline:
        time.sleep(2)
    if not os.path.exists(REGISTRY_BIN):
        pytest.skip(f"{REGISTRY_BIN} is missing: apt-get install docker-registry")
    work.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = work / "config.yml"
    config.write_text("version: 0.1\nlog:\n  level: warn\nstorage:\n"
                      f"  filesystem:\n    rootdirectory: {work / 'data'}\n  delete:\n    enabled: true\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    log = work / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError(f"docker-registry exited {proc.returncode}: {log.read_text()}") from None
                time.sleep(0.1)
        else:
            raise AssertionError(f"docker-registry did not answer on port {port}: {log.read_text()}")
        yield f"127.0.0.1:{port}"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
