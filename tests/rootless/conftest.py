"""The rootless checks that root drives (issue 13): it acts as the test users with ``runuser``
(the Makefile makes them: ``pods-rootless`` and ``pods-rootless2`` with subordinate ranges,
``pods-norange`` without) and looks, as root, at what their engines made and left.

``make test`` runs this directory after the rootless suites ran as ``pods-rootless``, so the leak
checks see what those suites left. A session-end check here also fails the run if anything of a
test user is still running after these tests.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_PY = REPO / ".cache/venv-rootless/bin/python"
USERS = ("pods-rootless", "pods-rootless2", "pods-norange")


def why_not() -> str | None:
    if os.geteuid() != 0:
        return "runs as root, which acts as the test users with runuser"
    for tool, pkg in (("runuser", "util-linux"), ("newuidmap", "uidmap")):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install {pkg})"
    for name in USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            return f"user {name} is missing (make rootless-setup makes it)"
    if not VENV_PY.exists():
        return f"{VENV_PY} is missing (make rootless-setup makes it)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = why_not()
    if reason is None:
        return
    for item in items:
        if "rootless" in str(item.fspath):
            item.add_marker(pytest.mark.skip(reason=reason))


class User:
    """A test user: ``run(...)`` runs a command as it (its own HOME and XDG_RUNTIME_DIR, Debian's
    python venv first on PATH), ``pods(...)`` the CLI."""

    def __init__(self, name: str) -> None:
        pw = pwd.getpwnam(name)
        self.name, self.uid, self.gid, self.home = name, pw.pw_uid, pw.pw_gid, Path(pw.pw_dir)
        self.run_dir = Path(f"/run/user/{self.uid}")
        if not self.run_dir.is_dir():
            os.makedirs(self.run_dir, 0o700)
            os.chown(self.run_dir, self.uid, self.gid)

    def env(self, **extra: str) -> list[str]:
        return [f"HOME={self.home}", f"USER={self.name}", f"XDG_RUNTIME_DIR={self.run_dir}",
                "PYTHONDONTWRITEBYTECODE=1", f"PATH={VENV_PY.parent}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                "PODS_RESIDENT=0",  # a `pods` here starts no resident helper: these tests count the user's processes
                *(f"{k}={v}" for k, v in extra.items())]

    def argv(self, *args: str, **env: str) -> list[str]:
        return ["runuser", "-u", self.name, "--", "env", "-i", *self.env(**env), *args]

    def run(self, *args: str, check: bool = True, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.argv(*args, **env), capture_output=True, text=True, timeout=timeout, cwd="/")
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} as {self.name}: exit {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done

    def pods(self, root: Path, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.run(str(VENV_PY), "-m", "pytest_pods.cli", "--root", str(root), *args, check=check,
                        timeout=timeout)

    def processes(self) -> list[str]:
        """``PID COMMAND`` of every process of this user (zombies included: a leak is a leak)."""
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if os.stat(f"/proc/{entry}").st_uid != self.uid:
                    continue
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                if not cmd:
                    with open(f"/proc/{entry}/comm") as f:
                        cmd = f"[{f.read().strip()}]"
            except OSError:
                continue
            out.append(f"{entry} {cmd}")
        return out

    def end(self, pid: int) -> None:
        """End one process of this user that a test started (by its pid), and reap nothing else."""
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="session")
def users() -> dict[str, User]:
    """Scope: session. The test users by name."""
    return {name: User(name) for name in USERS}


def wait_gone(user: User, timeout: float = 10) -> list[str]:
    """The user's processes, once none is left or ``timeout`` passed (what a release is still ending)."""
    deadline = time.monotonic() + timeout
    while True:
        left = user.processes()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@pytest.fixture(scope="session", autouse=True)
def nothing_left_at_the_end() -> Iterator[None]:
    """Scope: session. After these tests, no process of a test user runs (daemons, holders,
    network helpers, monitors, containers)."""
    yield
    if why_not() is not None:
        return
    left = {name: wait_gone(User(name)) for name in USERS}
    left = {k: v for k, v in left.items() if v}
    assert not left, f"processes of the test users left after tests/rootless: {left}"
