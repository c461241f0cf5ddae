"""Helpers for the tests that drive the daemon: a ``pods daemon`` subprocess (started on a private
socket, stopped by its pid) and a poll for what clients see only eventually."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def run_dir_base() -> str | None:
    """Where a test's daemon socket goes: /run as root, the user's runtime dir rootless (else /tmp)."""
    if os.access("/run", os.W_OK):
        return "/run"
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    return xdg if xdg and os.access(xdg, os.W_OK) else None


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
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"pods daemon exited {self.proc.returncode}: {err}")
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


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """``predicate()``'s first truthy value, polled for up to ``timeout`` seconds.

    :raises TimeoutError: naming what was awaited and for how long.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"wait for {what}: not within {timeout:g} s")
        time.sleep(interval)


def make_pki(d: Path) -> Path:
    """In ``d``: a CA, a server certificate for 127.0.0.1 and a client certificate, both signed by
    it (``pods daemon --tls*`` takes them); returns the client's cert dir (ca.pem, cert.pem, key.pem),
    as docker clients read it from ``DOCKER_CERT_PATH``."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=pods-test-ca",
            "-keyout", "ca-key.pem", "-out", "ca.pem")
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (d / "client.cnf").write_text("extendedKeyUsage=clientAuth\n")
    for name, ext in (("server", "san.cnf"), ("client", "client.cnf")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}-key.pem",
                "-out", f"{name}.csr")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                "-days", "1", "-extfile", ext, "-out", f"{name}.pem")
    certs = d / "client-certs"
    certs.mkdir()
    for src, dst in (("ca.pem", "ca.pem"), ("client.pem", "cert.pem"), ("client-key.pem", "key.pem")):
        shutil.copy(d / src, certs / dst)
    return certs
