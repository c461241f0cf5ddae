"""``pods`` through its resident helper (issue 19) behaves as ``pods`` in its own process: the same
output, exit codes, signals, environment, working directory and umask; a new helper for changed
code; the helper's lifetime (idle, stop, its socket gone); another user's requests refused; and
an ordinary user's rootless engine from the helper's child.

Each test module's helpers live in a directory of their own (``PODS_RESIDENT_DIR``) and run
a private copy of the package, so that edits to the tree while the tests run (another session's)
do not change the stamp under them; every helper is stopped at the end and checked gone.
"""

from __future__ import annotations

import os
import pty
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_pods import Client
from pytest_pods.engine import rootless

REPO = Path(__file__).resolve().parents[2]
LAUNCH = "from pytest_pods.cli import main; main()"


class Pods:
    """``pods`` as a user runs it (the console script's entry point), on a private copy of the
    package and a runtime directory of its own."""

    def __init__(self, root: Path, runtime: Path, code: Path, python: str = sys.executable) -> None:
        self.root, self.runtime, self.code, self.python = root, runtime, code, python

    def env(self, resident: bool = True, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PODS_RESIDENT")}
        env.update(PODS_RESIDENT_DIR=str(self.runtime / "pods-resident"), PYTHONPATH=str(self.code),
                   PODS_RESIDENT_IDLE="120",
                   PODS_RESIDENT="1" if resident else "0")
        env.update(extra)
        return env

    def argv(self, *args: str) -> list[str]:
        # -P: not the working directory first on sys.path (the repository's own copy, from its root)
        return [self.python, "-P", "-c", LAUNCH, "--root", str(self.root), *args]

    def __call__(self, *args: str, resident: bool = True, input: str | None = None, cwd: Path | str | None = None,
                 env: dict[str, str] | None = None, umask: int | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), input=input, stdin=None if input is not None else subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              env={**self.env(resident), **(env or {})},
                              preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)

    def helpers(self) -> list[dict[str, str]]:
        """`pods resident status`'s rows."""
        out = self("resident", "status", resident=False).stdout.splitlines()
        if not out or out[0].startswith("no resident"):
            return []
        head = out[0].split()
        return [dict(zip(head, line.split(), strict=False)) for line in out[1:]]

    def served(self) -> int:
        return sum(int(h["SERVED"]) for h in self.helpers() if h["STAMP"] == "current")

    def start(self) -> int:
        done = self("resident", "start", resident=False)
        assert done.returncode == 0, done.stderr
        return int(done.stdout.split()[2])

    def stop(self) -> None:
        done = self("resident", "stop", resident=False)
        assert done.returncode == 0, done.stderr


def eventually(check: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def private_copy(parent: Path) -> Path:
    code = parent / "code"
    shutil.copytree(REPO / "pytest_pods", code / "pytest_pods", ignore=shutil.ignore_patterns("__pycache__"))
    return code


@pytest.fixture(scope="module")
def pods(pods_root: Path, client: Client) -> Iterator[Pods]:
    """Scope: module. Depends: pods_root, client (rootless, the session's engine runs the user's
    namespace holder). The CLI on a private copy of the package, its helpers in a runtime directory
    of their own; they are stopped and checked gone at the end."""
    base = Path(tempfile.mkdtemp(prefix="pods-resident-", dir="/var/tmp"))
    os.chmod(base, 0o755)  # the copy is read by a test user too (the rootless test)
    runtime = base / "run"
    runtime.mkdir(mode=0o700)
    p = Pods(pods_root, runtime, private_copy(base))
    try:
        yield p
    finally:
        pids = [int(h["PID"]) for h in p.helpers()]
        p.stop()
        try:
            assert all(eventually(lambda pid=pid: not alive(pid)) for pid in pids), "a helper outlived stop"
        finally:
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path (a unix socket's path has at most 107 bytes; tmp_path's, as a
    test user's, may be longer: a socket that cannot be made there means no helper)."""
    d = Path(tempfile.mkdtemp(prefix="pr-", dir="/var/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def helper(pods: Pods) -> int:
    """A running helper for the module's CLI (its pid)."""
    return pods.start()


# -- the same as in its own process ---------------------------------------------------------------
CASES = {
    "run-rm-streams-exit-3": (["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"], None),
    "ps": (["ps", "-a", "--filter", "name=no-such-container-resident"], None),
    "images": (["images", "busybox"], None),
    "inspect-format": (["inspect", "-f", "{{.Os}}/{{.Architecture}} {{json .Config.Cmd}}", "busybox"], None),
    "bad-flag": (["run", "--nam", "x", "busybox", "true"], None),
    "unknown-image": (["run", "--rm", "--pull", "never", "no-such-image-resident:1", "true"], None),
    "stdin-piped-run-i": (["run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done"], "line one\nline two\n"),
    "help": (["--help"], None),
    "env-from-host": (["run", "--rm", "-e", "RESIDENT_T", "busybox", "sh", "-c", 'echo "[$RESIDENT_T]"'], None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_output_and_exit_code_match_its_own_process(pods: Pods, helper: int, case: str) -> None:
    args, stdin = CASES[case]
    env = {"RESIDENT_T": f"value {case}"}
    own = pods(*args, resident=False, input=stdin, env=env)
    before = pods.served()
    via = pods(*args, input=stdin, env=env)
    assert pods.served() == before + 2, "the call did not go through the helper"  # it and the status request
    assert (via.returncode, via.stdout, via.stderr) == (own.returncode, own.stdout, own.stderr)
    if case == "run-rm-streams-exit-3":
        assert (via.returncode, via.stdout, via.stderr) == (3, "out\n", "err\n")
    if case == "env-from-host":
        assert via.stdout == f"[value {case}]\n"


def test_environment_cwd_and_umask_are_the_callers(pods: Pods, helper: int, tmp_path: Path) -> None:
    # $PODS_HOST read per call (a parser built ahead keeps no default of its own)
    env = {"PODS_HOST": f"unix://{tmp_path}/nowhere.sock"}
    own, via = (pods("ps", resident=r, env=env) for r in (False, True))
    assert via.returncode == own.returncode != 0 and via.stderr == own.stderr and "nowhere.sock" in via.stderr
    # a relative path from the caller's directory, a file made with the caller's umask
    work = tmp_path / "work"
    work.mkdir()
    (work / "in.txt").write_text("from the caller's cwd\n")
    name = f"resident-{uuid.uuid4().hex[:8]}"
    assert pods("create", "--name", name, "busybox", "true", cwd=work).returncode == 0
    try:
        done = pods("cp", "in.txt", f"{name}:/in.txt", cwd=work)
        assert done.returncode == 0, done.stderr
        done = pods("cp", f"{name}:/in.txt", "back.txt", cwd=work)
        assert done.returncode == 0, done.stderr
        assert (work / "back.txt").read_text() == "from the caller's cwd\n"
    finally:
        pods("rm", "-f", name)
    # a fresh root's directories and files, made with the caller's umask (both ways alike)
    trees = {}
    for mask in (0o077, 0o022):
        for resident in (False, True):
            root = work / f"root-{mask:o}-{resident}"
            done = subprocess.run([pods.python, "-P", "-c", LAUNCH, "--root", str(root), "images", "-q"], cwd=work,
                                  capture_output=True, text=True, env=pods.env(resident), timeout=60,
                                  stdin=subprocess.DEVNULL, preexec_fn=lambda mask=mask: os.umask(mask))
            assert done.returncode == 0, done.stderr
            trees[mask, resident] = {str(p.relative_to(root)): p.stat().st_mode & 0o777 for p in root.rglob("*")}
    assert trees[0o077, True] == trees[0o077, False] != trees[0o022, False] == trees[0o022, True]
    assert trees[0o077, True]["containers"] == 0o700


def test_sigint_to_the_caller_reaches_run_as_in_its_own_process(pods: Pods, helper: int) -> None:
    script = 'trap "echo got INT; exit 7" INT; echo ready; sleep 30 & wait'
    results = []
    for resident in (False, True):
        name = f"resident-{uuid.uuid4().hex[:8]}"
        proc = subprocess.Popen(pods.argv("run", "--rm", "--name", name, "busybox", "sh", "-c", script),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=pods.env(resident))
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        time.sleep(1.5)  # `run` has its signal forwarding in place (a SIGINT before it ends the CLI: 130)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        results.append((proc.returncode, out, err))
        assert pods("ps", "-a", "-q", "--filter", f"name={name}").stdout == "", "--rm left the container"
    assert results[0] == results[1] == (7, "got INT\n", "")


def test_a_killed_caller_takes_its_command_with_it(pods: Pods, helper: int) -> None:
    """SIGKILL to ``pods run``: in its own process the CLI is gone at once and the container stays
    (nobody is left to remove it); through the helper, the same."""
    for resident in (False, True):
        name = f"resident-{uuid.uuid4().hex[:8]}"
        proc = subprocess.Popen(pods.argv("run", "--rm", "--name", name, "busybox", "sh", "-c", "echo ready; sleep 30"),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, env=pods.env(resident))
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.kill()
        proc.wait()
        try:
            # the helper's children: its spare (waiting for the next request) only
            assert eventually(lambda: len(Path(f"/proc/{helper}/task/{helper}/children").read_text().split()) == 1)
            assert pods("ps", "-q", "--filter", f"name={name}").stdout.strip(), resident
        finally:
            pods("rm", "-f", name)


def test_a_terminal_or_pods_resident_0_runs_in_its_own_process(pods: Pods, helper: int) -> None:
    before = pods.served()
    assert pods("inspect", "-f", "{{.Os}}", "busybox", resident=False).stdout == "linux\n"
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(pods.argv("inspect", "-f", "{{.Os}}", "busybox"), stdin=follower, capture_output=True,
                              text=True, env=pods.env(), timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    assert done.stdout == "linux\n"
    assert pods.served() == before + 1  # the status request only


# -- which helper, and how long -------------------------------------------------------------------
def test_changed_code_gets_a_new_helper(pods: Pods, helper: int, tmp_path: Path) -> None:
    code = private_copy(tmp_path)
    other = Pods(pods.root, pods.runtime, code)
    first = other.start()
    try:
        os.utime(code / "pytest_pods" / "errors.py")  # an edit: a new mtime
        done = other("inspect", "-f", "{{.Os}}", "busybox")  # no helper for this code yet: in its own process
        assert done.stdout == "linux\n"
        assert eventually(lambda: any(h["STAMP"] == "current" for h in other.helpers()), 30), other.helpers()
        rows = {int(h["PID"]): h["STAMP"] for h in other.helpers()}
        assert rows[first] == "stale" and "current" in rows.values()
        assert other("inspect", "-f", "{{.Os}}", "busybox").stdout == "linux\n"
    finally:
        for h in other.helpers():
            if int(h["PID"]) != helper:
                os.kill(int(h["PID"]), signal.SIGTERM)
        assert eventually(lambda: [int(h["PID"]) for h in other.helpers()] == [helper])


def test_the_first_call_runs_itself_and_starts_a_helper(pods: Pods, short_dir: Path) -> None:
    runtime = short_dir / "run"
    runtime.mkdir(mode=0o700)
    fresh = Pods(pods.root, runtime, pods.code)
    done = fresh("inspect", "-f", "{{.Os}}", "busybox")
    assert done.stdout == "linux\n"
    try:
        assert eventually(lambda: len(fresh.helpers()) == 1, 30)
        assert fresh.helpers()[0]["SOCKET"].startswith(f"{runtime}/pods-resident/pods-")
        assert (runtime / "pods-resident").stat().st_mode & 0o777 == 0o700
    finally:
        fresh.stop()
    assert fresh.helpers() == []


def test_no_helper_is_started_where_one_could_not_serve(pods: Pods, short_dir: Path) -> None:
    """A helper that finds it could not serve its callers' stamp leaves a mark, so that callers do
    not start one each; `pods resident stop` clears it."""
    runtime = short_dir / "run"
    runtime.mkdir(mode=0o700)
    fresh = Pods(pods.root, runtime, pods.code)
    assert fresh.start()
    (sock,) = (runtime / "pods-resident").glob("*.sock")
    fresh.stop()
    mark = sock.with_suffix(".nomatch")
    mark.write_text("another\n")
    assert fresh("inspect", "-f", "{{.Os}}", "busybox").stdout == "linux\n"
    time.sleep(3)
    assert fresh.helpers() == [] and not sock.exists()
    fresh.stop()
    assert not mark.exists()


def test_idle_helper_exits(pods: Pods, short_dir: Path) -> None:
    runtime = short_dir / "run"
    runtime.mkdir(mode=0o700)
    fresh = Pods(pods.root, runtime, pods.code)
    done = subprocess.run(fresh.argv("resident", "start"), capture_output=True, text=True,
                          env=fresh.env(PODS_RESIDENT_IDLE="1"), timeout=60)
    pid = int(done.stdout.split()[2])
    assert alive(pid)
    assert eventually(lambda: not alive(pid), 15), "the helper did not exit when idle"
    assert list((runtime / "pods-resident").iterdir()) == []


def test_stop_and_a_removed_socket_end_the_helper(pods: Pods, short_dir: Path) -> None:
    runtime = short_dir / "run"
    runtime.mkdir(mode=0o700)
    fresh = Pods(pods.root, runtime, pods.code)
    pid = fresh.start()
    done = fresh("resident", "stop", resident=False)
    assert done.stdout == f"stopped resident helper {pid}\n" and not alive(pid)
    assert fresh("resident", "status", resident=False).stdout == "no resident helper running\n"
    pid = fresh.start()
    (sock,) = (runtime / "pods-resident").glob("*.sock")
    sock.unlink()
    assert eventually(lambda: not alive(pid), 10), "the helper outlived its socket"


# -- other users ----------------------------------------------------------------------------------
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0 or rootless.active(),
                               reason="root makes the other user (useradd) and acts as it")
SYSTEM_PYTHON = "/usr/bin/python3"  # a python the test user may run (root's own may sit under /root)


class OtherUser:
    """A user made for one test (useradd), removed after with everything it ran."""

    def __init__(self, subids: bool) -> None:
        self.name = f"podsres{uuid.uuid4().hex[:6]}"
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", self.name],
                       check=True, capture_output=True)
        pw = pwd.getpwnam(self.name)
        self.uid, self.home = pw.pw_uid, Path(pw.pw_dir)
        if subids:  # a range of its own, far from the Makefile's users' (200000, 300000)
            base = 2_000_000 + (self.uid % 1000) * 65536
            subprocess.run(["usermod", "--add-subuids", f"{base}-{base + 65535}", "--add-subgids",
                            f"{base}-{base + 65535}", self.name], check=True, capture_output=True)
        self.run_dir = Path(f"/run/user/{self.uid}")
        self.run_dir.mkdir(parents=True, mode=0o700)
        os.chown(self.run_dir, self.uid, pw.pw_gid)

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        base = {"HOME": str(self.home), "USER": self.name, "XDG_RUNTIME_DIR": str(self.run_dir),
                "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}
        argv = ["runuser", "-u", self.name, "--", "env", "-i", *(f"{k}={v}" for k, v in {**base, **env}.items()), *args]
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180, cwd="/")

    def processes(self) -> list[int]:
        return [int(p) for p in os.listdir("/proc") if p.isdigit() and _owner(p) == self.uid]

    def remove(self) -> None:
        for pid in self.processes():  # what this test's user still runs (it started them all)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        eventually(lambda: not self.processes(), 10)
        subprocess.run(["userdel", "-r", self.name], capture_output=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)


def _owner(pid: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


REFUSED = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(10)
try:
    s.sendall(b"pods-resident/1\\n5\\nhello")
    answer = s.recv(100)
except (BrokenPipeError, ConnectionResetError):  # closed, our request unread
    answer = b""
print("refused" if answer == b"" else "answered")
"""


@ROOT_ONLY
def test_another_users_request_is_refused(pods: Pods, helper: int) -> None:
    """The socket's directory is the user's own (0700); were it opened to others, the helper still
    takes no request of another uid (SO_PEERCRED): the connection is closed unread."""
    user = OtherUser(subids=False)
    d = pods.runtime / "pods-resident"
    (sock,) = (h["SOCKET"] for h in pods.helpers() if int(h["PID"]) == helper)
    served = pods.served()
    try:
        os.chmod(pods.runtime, 0o711)
        os.chmod(d, 0o711)
        os.chmod(sock, 0o777)
        done = user.run(SYSTEM_PYTHON, "-c", REFUSED, sock)
        assert done.stdout == "refused\n", done.stderr
        # and its own pods, pointed at this directory, does not take it for its own
        done = user.run(SYSTEM_PYTHON, "-P", "-c", LAUNCH, "resident", "status", PODS_RESIDENT_DIR=str(d),
                        PYTHONPATH=str(pods.code))
        assert done.stdout == "no resident helper running\n", done.stderr
    finally:
        os.chmod(sock, 0o755)
        os.chmod(d, 0o700)
        os.chmod(pods.runtime, 0o700)
        user.remove()
    assert pods.served() == served + 1  # the status request only


@ROOT_ONLY
def test_an_ordinary_users_rootless_engine_runs_from_the_helper(pods: Pods) -> None:
    """As an ordinary user the CLI enters a user namespace (rootless); from the helper's child too,
    with the same output; `pods resident stop` and `pods system reap` leave no process of the user."""
    user = OtherUser(subids=True)
    try:
        root = f"{user.home}/pods-root"

        def as_user(*args: str, resident: bool = True) -> subprocess.CompletedProcess[str]:
            return user.run(SYSTEM_PYTHON, "-P", "-c", LAUNCH, "--root", root, *args, PYTHONPATH=str(pods.code),
                            PODS_RESIDENT="1" if resident else "0")

        done = as_user("bootstrap", "busybox", resident=False)
        assert done.returncode == 0, done.stderr
        done = as_user("resident", "start")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("resident helper ") and f"/run/user/{user.uid}/pods-resident/" in done.stdout
        args = ("run", "--rm", "--network", "none", "busybox", "sh", "-c",
                "id -u; cat /proc/self/uid_map | wc -l; echo err >&2; exit 5")
        own = as_user(*args, resident=False)
        via = as_user(*args)
        assert (via.returncode, via.stdout, via.stderr) == (own.returncode, own.stdout, own.stderr)
        assert (own.returncode, own.stdout.splitlines()[0], own.stderr) == (5, "0", "err\n")
        status = as_user("resident", "status").stdout.splitlines()
        assert len(status) == 2 and status[1].split()[1:3] == ["current", "2"], status  # the run, this status
        assert as_user("system", "reap").returncode == 0
        assert as_user("resident", "stop").returncode == 0  # the last: a pods command after it starts one again
        assert eventually(lambda: not user.processes(), 15), [Path(f"/proc/{p}/cmdline").read_bytes() for p in user.processes()]
    finally:
        user.remove()
