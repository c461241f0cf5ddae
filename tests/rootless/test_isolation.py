"""Users apart (issue 13): an ordinary user reaches neither root's engine state nor another user's;
two users, each with their own root and ``pods daemon``, and root's engine run side by side and
never see each other's containers, networks or ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import VENV_PY, User

from pytest_pods import Client

ROOT_TEST_ROOT = Path(os.environ.get("PODS_TEST_ROOT") or Path(__file__).resolve().parents[2] / ".cache/pods-root")


def test_a_user_cannot_reach_roots_engine_state(users: dict[str, User]) -> None:
    u = users["pods-rootless"]
    for path in ("/var/lib/pytest-pods", str(ROOT_TEST_ROOT)):
        if not Path(path).exists():
            continue
        done = u.run("ls", path, check=False)
        assert done.returncode != 0 and "Permission denied" in done.stderr, (path, done.stdout)
        done = u.pods(Path(path), "ps", "-a", check=False)
        assert done.returncode != 0, done.stdout
    for sock in Path("/run").glob("pods-*/pods.sock"):  # root's daemons (mode 0660 root:root)
        done = u.run(str(VENV_PY), "-c", f"import socket; socket.socket(socket.AF_UNIX).connect({str(sock)!r})",
                     check=False)
        assert done.returncode != 0 and "PermissionError" in done.stderr


def test_a_user_cannot_reach_another_users_root_or_daemon(users: dict[str, User], tmp_path: Path) -> None:
    a, b = users["pods-rootless"], users["pods-rootless2"]
    root_b = b.home / ".cache/pods-isolation-root"
    b.pods(root_b, "bootstrap", "busybox")
    daemon = Daemon(b, root_b)
    try:
        assert oct(Path(daemon.sock).stat().st_mode & 0o777) == "0o600"
        assert oct(Path(daemon.sock).parent.stat().st_mode & 0o777) == "0o700"
        for path in (str(root_b), str(root_b / "images"), str(b.run_dir)):
            done = a.run("ls", path, check=False)
            assert done.returncode != 0 and "Permission denied" in done.stderr, path
        done = a.pods(root_b, "images", check=False)
        assert done.returncode != 0
        done = a.run(str(VENV_PY), "-m", "pytest_pods.cli", "--host", f"unix://{daemon.sock}", "ps", check=False)
        assert done.returncode != 0
    finally:
        daemon.stop()
        b.pods(root_b, "system", "prune", "-f", check=False)


class Daemon:
    """``pods daemon`` as ``user`` on ``root``, on the user's default socket (``$XDG_RUNTIME_DIR/pods.sock``)."""

    def __init__(self, user: User, root: Path) -> None:
        self.user, self.root = user, root
        self.sock = str(user.run_dir / "pods.sock")
        self.proc = subprocess.Popen(user.argv(str(VENV_PY), "-m", "pytest_pods.cli", "--root", str(root), "daemon"),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read().decode() if self.proc.stderr else ""
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(self.sock)
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"pods daemon of {user.name} did not listen on {self.sock}")

    @property
    def pid(self) -> int:
        return int((self.root / "daemon.pid").read_text().split()[0])

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cfg = self.user.home / ".docker-test"
        return self.user.run("docker", *args, check=check, DOCKER_HOST=f"unix://{self.sock}", DOCKER_CONFIG=str(cfg))

    def stop(self) -> None:
        try:
            self.user.end(self.pid)  # the daemon itself (runuser waits for it)
        except (OSError, ValueError):
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.mark.skipif(subprocess.run(["which", "docker"], capture_output=True).returncode != 0, reason="no docker CLI")
def test_two_users_and_root_side_by_side(users: dict[str, User]) -> None:
    a, b = users["pods-rootless"], users["pods-rootless2"]
    roots = {u.name: u.home / ".cache/pods-two-users-root" for u in (a, b)}
    for u in (a, b):
        u.pods(roots[u.name], "bootstrap", "busybox")
    root_cli = [sys.executable, "-m", "pytest_pods.cli", "--root", str(ROOT_TEST_ROOT)]
    daemons = {}
    try:
        for u in (a, b):
            daemons[u.name] = Daemon(u, roots[u.name])
        # the same names in both engines: they never meet
        ports = {}
        for name, d in daemons.items():
            d.docker("network", "create", "side-by-side")
            d.docker("run", "-d", "--name", "same-name", "--network", "side-by-side", "-p", "127.0.0.1::80",
                     "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
            out = json.loads(d.docker("inspect", "same-name").stdout)[0]
            ports[name] = int(out["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
        subprocess.run([*root_cli, "run", "-d", "--name", "root-beside", "busybox", "sleep", "60"], check=True,
                       capture_output=True)
        assert ports[a.name] != ports[b.name]
        for name, d in daemons.items():
            ps = d.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
            assert ps == ["same-name"], (name, ps)
            nets = d.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
            assert "side-by-side" in nets and "root-beside" not in ps
        root_ps = subprocess.run([*root_cli, "ps"], capture_output=True, text=True).stdout
        names = [line.split()[-1] for line in root_ps.splitlines()[1:] if line.split()]
        assert "same-name" not in names and "root-beside" in names
        # each user's published port answers with its own container's files
        for name, port in ports.items():
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                        s.sendall(b"GET /hostname HTTP/1.0\r\n\r\n")
                        assert b"200" in s.recv(4096).split(b"\r\n")[0]
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
    finally:
        subprocess.run([*root_cli, "rm", "-f", "root-beside"], capture_output=True)
        Client(ROOT_TEST_ROOT).cleanup()  # root's default bridge, made for root-beside
        for d in daemons.values():
            d.docker("rm", "-f", "same-name", check=False)
            d.docker("network", "rm", "side-by-side", check=False)
            d.stop()
