"""The rootless engine core (issue 13), run by root's ``make test`` as ordinary users.

Each test runs ``pods`` as ``pods-rootless`` (subordinate ids 200000-265535) or ``pods-norange``
(none) with ``runuser`` and the rootless venv's python (root's interpreter under /root is not
readable by users), and checks from the host, as root, what the kernel made of it.
"""

from __future__ import annotations

import io
import os
import pwd
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_PY = REPO / ".cache/venv-rootless/bin/python"
BASE = 200000  # pods-rootless's subordinate range, as the Makefile makes it


def _user(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "runs as root, which drives the ordinary users with runuser"
    if shutil.which("runuser") is None:
        return "runuser (util-linux) is missing"
    if shutil.which("newuidmap") is None:
        return "newuidmap is missing (apt-get install uidmap)"
    for name in ("pods-rootless", "pods-norange"):
        if _user(name) is None:
            return f"user {name} is missing (the Makefile's rootless setup makes it)"
    if not VENV_PY.exists():
        return f"{VENV_PY} is missing (the Makefile's rootless setup makes it)"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")


@pytest.fixture(autouse=True, scope="module")
def released_at_the_end() -> Iterator[None]:
    """The users' engines are released when the module ends, as a session end does: the
    namespace holder is kept between commands (a start would pay for a new one), not after."""
    yield
    for user in ("pods-rootless", "pods-norange"):
        as_user(user, "system", "reap", check=False)


def as_user(user: str, *args: str, env: dict[str, str] | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``pods ARGS`` as ``user`` (its own XDG dirs, its default root)."""
    pw = _user(user)
    assert pw is not None
    run_dir = f"/run/user/{pw.pw_uid}"
    if not os.path.isdir(run_dir):
        os.makedirs(run_dir, 0o700)
        os.chown(run_dir, pw.pw_uid, pw.pw_gid)
    envs = [f"XDG_RUNTIME_DIR={run_dir}", f"HOME={pw.pw_dir}", "PYTHONDONTWRITEBYTECODE=1",
            f"PATH={VENV_PY.parent}:/usr/bin:/bin:/usr/sbin:/sbin"]
    envs += [f"{k}={v}" for k, v in (env or {}).items()]
    cmd = ["runuser", "-u", user, "--", "env", *envs, str(VENV_PY), "-m", "pytest_pods.cli", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/")
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} as {user}: {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def _uid(user: str) -> int:
    pw = _user(user)
    assert pw is not None
    return pw.pw_uid


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def live_processes(user: str) -> list[str]:
    """The user's processes, zombies left out (this machine's pid 1 reaps late)."""
    pw = _user(user)
    assert pw is not None
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if int(status["Uid"].split()[0]) == pw.pw_uid and not status["State"].strip().startswith("Z"):
            out.append(f"{entry} {status['Name'].strip()}")
    return out


@pytest.fixture(scope="module", autouse=True)
def images() -> None:
    for user in ("pods-rootless", "pods-norange"):
        if as_user(user, "inspect", "--type", "image", "busybox:latest", check=False).returncode != 0:
            as_user(user, "bootstrap", "busybox")


def test_container_processes_are_owned_by_sub_ids() -> None:
    cid = as_user("pods-rootless", "run", "-d", "--network", "none", "--user", "1000:1000", "busybox",
                  "sleep", "60").stdout.strip()
    try:
        pid = int(as_user("pods-rootless", "inspect", "-f", "{{.State.Pid}}", cid).stdout)
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        assert status["Uid"].split()[0] == str(BASE + 999)
        assert status["Gid"].split()[0] == str(BASE + 999)
    finally:
        as_user("pods-rootless", "rm", "-f", cid)


def test_file_owners_map_to_the_range_and_setuid_gives_nothing() -> None:
    cid = as_user("pods-rootless", "run", "-d", "--network", "none", "busybox", "sh", "-c",
                  "chown 1000:1000 /etc/passwd && cp /bin/busybox /id && chmod 4755 /id && touch /done && sleep 60").stdout.strip()
    try:
        upper = Path(as_user("pods-rootless", "inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", cid).stdout.strip())
        deadline = time.monotonic() + 10
        while not (upper / "done").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        st = (upper / "etc/passwd").stat()
        assert (st.st_uid, st.st_gid) == (BASE + 999, BASE + 999)
        suid = (upper / "id").stat()
        owner = _user("pods-rootless")
        assert owner is not None
        assert suid.st_uid == owner.pw_uid and suid.st_mode & 0o4000  # setuid to the user, not host root
        # run on the host as the user: setuid to its owner, the user itself: no privilege
        done = subprocess.run(["runuser", "-u", "pods-rootless", "--", str(upper / "id"), "-u"],  # argv[0] names the applet
                              capture_output=True, text=True)
        assert done.stdout.strip() == str(owner.pw_uid)
    finally:
        as_user("pods-rootless", "rm", "-f", cid)


def test_a_root_owned_host_file_stays_read_only(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    target = tmp_path / "root-file"
    target.write_text("root's\n")
    os.chmod(target, 0o644)
    done = as_user("pods-rootless", "run", "--rm", "--network", "none", "-v", f"{target}:/f", "busybox", "sh", "-c",
                   "echo pwned >> /f", check=False)
    assert done.returncode != 0
    assert target.read_text() == "root's\n"


def test_a_limit_is_refused_in_one_line_or_dropped() -> None:
    done = as_user("pods-rootless", "run", "--rm", "--network", "none", "-m", "64m", "busybox", "true", check=False)
    assert done.returncode == 125
    line = done.stderr.strip()
    assert "\n" not in line and "memory limit refused" in line and "Delegate=yes" in line
    assert "PODS_IGNORE_LIMITS=1" in line
    done = as_user("pods-rootless", "run", "--rm", "--network", "none", "-m", "64m", "busybox", "echo", "ran",
                   env={"PODS_IGNORE_LIMITS": "1"})
    assert done.stdout.strip() == "ran"
    assert "memory limit dropped" in done.stderr


def test_single_id_user_runs_root_images_and_names_the_fix() -> None:
    assert as_user("pods-norange", "run", "--rm", "--network", "none", "busybox", "id", "-u").stdout.strip() == "0"
    done = as_user("pods-norange", "run", "--rm", "--network", "none", "--user", "1000", "busybox", "true",
                   check=False)
    assert done.returncode == 125
    assert "uid 1000 is not mapped" in done.stderr and "usermod --add-subuids" in done.stderr
    # an image with a file of uid 1000: the same one line, at unpack
    tmp_path = Path(tempfile.mkdtemp(prefix="pods-rootless-test-"))  # readable by the user, unlike pytest's
    tar = tmp_path / "img.tar"
    with tarfile.open(tar, "w") as tf:
        info = tarfile.TarInfo("owned-by-1000")
        info.uid = info.gid = 1000
        info.size = 3
        tf.addfile(info, io.BytesIO(b"hi\n"))
    os.chmod(tmp_path, 0o755)
    os.chmod(tar, 0o644)
    done = as_user("pods-norange", "import", str(tar), "uid1000:latest", check=False)
    if done.returncode == 0:
        done = as_user("pods-norange", "run", "--rm", "--network", "none", "uid1000:latest", "x", check=False)
    assert done.returncode != 0
    assert "uid 1000 is not mapped" in done.stderr and "usermod --add-subuids" in done.stderr
    shutil.rmtree(tmp_path)


def test_nothing_is_left_after_rm_and_the_store_is_private() -> None:
    cid = as_user("pods-rootless", "run", "-d", "--network", "none", "busybox", "sleep", "60").stdout.strip()
    pid = int(as_user("pods-rootless", "inspect", "-f", "{{.State.Pid}}", cid).stdout)
    home = _user("pods-rootless")
    assert home is not None
    holder_file = Path(f"/run/user/{home.pw_uid}/pytest-pods/user/holder.pid")  # one engine per user
    holder = int(holder_file.read_text().split()[0])
    as_user("pods-rootless", "rm", "-f", cid)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the monitor finishes the removal after rm -f returns
        as_user("pods-rootless", "system", "reap")  # releases the namespace holder when nothing runs
        if not _alive(holder):
            break
        time.sleep(0.2)
    assert not _alive(pid)
    assert not _alive(holder)
    # processes of the user in other roots (another suite's) may run meanwhile: none of this root
    for entry in live_processes("pods-rootless"):
        with open(f"/proc/{entry.split()[0]}/cmdline", "rb") as f:
            assert cid.encode() not in f.read()
    root = Path(home.pw_dir) / ".local/share/pytest-pods"
    assert not (root / "containers" / cid).exists()
    assert list((root / "tmp").iterdir()) == []
    assert root.stat().st_mode & 0o077 == 0
    with open("/proc/self/mountinfo") as f:
        assert str(root) not in f.read()
    other = subprocess.run(["runuser", "-u", "pods-norange", "--", "ls", str(root)], capture_output=True, text=True)
    assert other.returncode != 0
