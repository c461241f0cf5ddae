"""``pods daemon --tcp`` speaks TLS only and requires a client certificate signed by its CA."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from daemon_helper import make_pki

from pytest_pods import Client
from pytest_pods.client.remote import RemoteClient
from pytest_pods.errors import PodsError

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tls_daemon(release_root: Callable[[Client], None]) -> Iterator[tuple[str, Path]]:
    """Scope: function. A TLS daemon on a private root (one daemon per root): (host, cert dir)."""
    root = Path(tempfile.mkdtemp(prefix="pods-tls-root-", dir="/var/tmp"))
    pki = Path(tempfile.mkdtemp(prefix="pods-tls-pki-"))
    client = Client(root)
    client.images.bootstrap_busybox()
    make_pki(pki)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pytest_pods.cli", "--root", str(root), "daemon", "--tcp",
                             f"127.0.0.1:{port}", "--tlscert", str(pki / "server.pem"), "--tlskey",
                             str(pki / "server-key.pem"), "--tlscacert", str(pki / "ca.pem")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        yield f"tcp://127.0.0.1:{port}", pki / "client-certs"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        release_root(client)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(pki, ignore_errors=True)


def test_a_client_with_a_certificate_drives_the_engine(tls_daemon: tuple[str, Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    host, certs = tls_daemon
    monkeypatch.setenv("PODS_CERT_PATH", str(certs))
    rc = RemoteClient(host)
    assert rc.ping()
    res = rc.containers.run("busybox", ["sh", "-c", "echo over-tls"], network="none", remove=True)
    assert (res.exit_code, res.output) == (0, b"over-tls\n")


def test_a_client_without_a_certificate_is_refused(tls_daemon: tuple[str, Path]) -> None:
    host, certs = tls_daemon
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    ctx.check_hostname = False
    port = int(host.rsplit(":", 1)[1])
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            if not s.recv(64):
                raise ConnectionResetError("closed without an answer")
    plain = RemoteClient(host.replace("tcp://", "http://"))
    with pytest.raises(PodsError):
        plain.ping()


def test_tcp_without_tls_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--root", str(tmp_path), "daemon", "--tcp",
                           f"127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 125 and "--tcp needs --tlscert" in proc.stderr
