"""The rootless engine's ground: detection, id mappings, the holder of the user namespace, joining.

An ordinary user's engine runs inside one user namespace per engine root, held by a *holder*
process (podman's pause process): it maps container uid 0 to the user and 1..N to the user's first
subordinate range (``/etc/subuid``, ``/etc/subgid``, through Debian's ``newuidmap``/``newgidmap``),
then makes its own network namespace (the "rootless netns" where the bridges live) and sleeps.
A single-threaded process of the user :func:`join` s that namespace; it is then uid 0 there, with
full capabilities *in it*, and the rest of the engine runs as it does for root.

Run state (the holder's and the helpers' pid files, the lock) lives in :func:`run_dir`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import zlib
from pathlib import Path
from typing import NamedTuple

from pytest_pods.engine import linux
from pytest_pods.engine.locks import FileLock
from pytest_pods.errors import EngineUnavailableError

_IDENTITY = ("0", "0", "4294967295")
RANGE_FIX = "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}"
IGNORE_LIMITS_ENV = "PODS_IGNORE_LIMITS"
_MAX_RANGE = 65535


def inside() -> bool:
    """True when this process is in a user namespace other than the initial one (joined, or a
    container's): ``/proc/self/uid_map`` is not the identity ``0 0 4294967295``."""
    try:
        with open("/proc/self/uid_map") as f:
            lines = f.read().split("\n")
    except OSError:
        return False
    rows = [line.split() for line in lines if line.strip()]
    return rows != [list(_IDENTITY)]


def active() -> bool:
    """True when the rootless engine runs: euid is not 0, or we already joined a user namespace."""
    return os.geteuid() != 0 or inside()


class IdMap(NamedTuple):
    """One line of a uid_map/gid_map: ``size`` ids from ``container`` map to ``host`` (immutable;
    a NamedTuple: dataclasses would cost the CLI's start ~6 ms)."""

    container: int
    host: int
    size: int

    def to_host(self, cid: int) -> int | None:
        if self.container <= cid < self.container + self.size:
            return self.host + cid - self.container
        return None


def _own_map(kind: str) -> list[IdMap]:
    with open(f"/proc/self/{kind}_map") as f:
        return [IdMap(*(int(x) for x in line.split())) for line in f if line.strip()]


def maps_in_use() -> tuple[list[IdMap], list[IdMap]]:
    """This process's own uid and gid maps (the engine's, once joined)."""
    return _own_map("uid"), _own_map("gid")


def unmapped(uid: int, gid: int, groups: list[int] | tuple[int, ...] = ()) -> str | None:
    """None when the joined namespace maps these ids; else one line naming the id, the mapping
    and the fix."""
    uids, gids = maps_in_use()
    bad = None
    if not any(m.to_host(uid) is not None for m in uids):
        bad = f"uid {uid}"
    else:
        bad = next((f"gid {g}" for g in (gid, *groups) if not any(m.to_host(g) is not None for m in gids)), None)
    if bad is None:
        return None
    fix = (single_id_note() if len(uids) == 1
           else "ids above 65535 cannot be mapped from a 65536-id subordinate range")
    return (f"{bad} is not mapped in the rootless user namespace (uids {format_maps(uids)}, "
            f"gids {format_maps(gids)}): {fix}")


def host_ids() -> tuple[int, int]:
    """The real user's host uid and gid, also after joining (when getuid() says 0)."""
    if not inside():
        return os.getuid(), os.getgid()
    ids = []
    for kind, own in (("uid", os.getuid()), ("gid", os.getgid())):
        host = next((m.to_host(own) for m in _own_map(kind) if m.to_host(own) is not None), None)
        ids.append(own if host is None else host)
    return ids[0], ids[1]


def user_name(uid: int | None = None) -> str:
    """The login name of ``uid`` (default: the real user), or the number when it has none."""
    import pwd  # lazy: start latency (the CLI's start path stays as it was)

    uid = host_ids()[0] if uid is None else uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _sub_range(path: str, name: str, uid: int) -> tuple[int, int] | None:
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if (len(parts) == 3 and parts[0] in (name, str(uid)) and parts[1].isdigit()
                        and parts[2].isdigit() and int(parts[2]) > 0):
                    return int(parts[1]), int(parts[2])
    except OSError:
        pass
    return None


def id_maps(uid: int | None = None) -> tuple[list[IdMap], list[IdMap]]:
    """(uid maps, gid maps) for ``uid`` (default: the real user): 0 -> the user, 1..N -> the first
    subordinate range (N = min(its size, 65535)); only ``0 -> user`` without a range."""
    import pwd  # lazy: start latency (as in user_name)

    if uid is None:
        uid, gid = host_ids()
    else:
        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            gid = uid
    name = user_name(uid)
    out: list[list[IdMap]] = []
    for path, own in (("/etc/subuid", uid), ("/etc/subgid", gid)):
        maps = [IdMap(0, own, 1)]
        sub = _sub_range(path, name, uid)
        if sub is not None:
            maps.append(IdMap(1, sub[0], min(sub[1], _MAX_RANGE)))
        out.append(maps)
    return out[0], out[1]


def format_maps(maps: list[IdMap]) -> str:
    """``0:1001:1,1:200000:65535`` (container:host:size), for messages and ``pods info``."""
    return ",".join(f"{m.container}:{m.host}:{m.size}" for m in maps)


def single_id_note(uid: int | None = None) -> str:
    """What a single-id mapping cannot do and how to add a range, for ``pods info`` and errors."""
    name = user_name(uid)
    return (f"no subordinate ids for {name} in /etc/subuid and /etc/subgid: only container uid/gid 0 is mapped, "
            f"so images with files owned by other ids or a USER other than root cannot run; "
            f"add a range as root: {RANGE_FIX.format(user=name)}")


def root_tag(root: Path) -> str:
    """The short hash naming a root (the same as ``engine.network.networks.root_tag``)."""
    return f"{zlib.crc32(os.fsencode(os.path.realpath(root))) & 0xFFF:03x}"


def _private_dir(path: Path, uid: int) -> None:
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not os.path.isdir(path) or os.path.islink(path) or st.st_uid not in (uid, os.getuid()):
        raise EngineUnavailableError(f"rootless run dir {path}: not a directory of uid {uid}")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def run_dir(root: Path) -> Path:
    """``$XDG_RUNTIME_DIR/pytest-pods/user`` (else ``/tmp/pytest-pods-<uid>/user``), 0700, made on
    first use: the run state of the user's rootless engine, whatever the root.

    One user namespace (and one rootless netns) per user, not per root, as the root engine has one
    host: a process that joined it can then use any of the user's roots (a test session with private
    roots, two roots in one program). Bridges, veths and rules carry their root's tag, as on the host.
    """
    uid = host_ids()[0]
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isdir(xdg) and os.access(xdg, os.W_OK | os.X_OK):
        base = Path(xdg) / "pytest-pods"
    else:
        base = Path(f"/tmp/pytest-pods-{uid}")
    _private_dir(base, uid)
    out = base / "user"
    _private_dir(out, uid)
    return out


class Holder(NamedTuple):
    """The process that holds a root's user namespace (and the rootless netns)."""

    pid: int
    start: int

    def ns_path(self, kind: str) -> str:
        """``/proc/PID/ns/KIND``: ``user`` is the engine's user namespace, ``net`` the rootless netns."""
        return f"/proc/{self.pid}/ns/{kind}"

    def alive(self) -> bool:
        return linux.process_start_time(self.pid) == self.start


def _read_pid(path: Path) -> Holder | None:
    try:
        pid, start = path.read_text().split()[:2]
        return Holder(int(pid), int(start))
    except (OSError, ValueError):
        return None


def _write_pid(path: Path, pid: int, start: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(f"{pid} {start}\n")
    os.replace(tmp, path)


def _lock(root: Path) -> FileLock:
    return FileLock(str(run_dir(root) / "holder.lock"))


def _unavailable_reason() -> str | None:
    """Why the kernel refuses an unprivileged user namespace, naming the sysctl."""
    for path, name in (("/proc/sys/user/max_user_namespaces", "user.max_user_namespaces"),
                       ("/proc/sys/kernel/unprivileged_userns_clone", "kernel.unprivileged_userns_clone")):
        try:
            with open(path) as f:
                if f.read().strip() == "0":
                    return f"unprivileged user namespaces are off ({name} = 0; as root: sysctl -w {name}=1)"
        except OSError:
            continue
    return None


def _map_child(pid: int, uids: list[IdMap], gids: list[IdMap]) -> None:
    """Write the child's uid/gid maps: newuidmap/newgidmap for a range, the files for one id."""
    import shutil  # lazy: start latency (only when a holder is made)
    import subprocess  # lazy: start latency (as above)

    for kind, maps in (("gid", gids), ("uid", uids)):
        if len(maps) > 1:
            tool = shutil.which(f"new{kind}map") or f"/usr/bin/new{kind}map"
            if not os.path.exists(tool):
                raise EngineUnavailableError(
                    f"rootless: new{kind}map is missing (install Debian's uidmap package: apt-get install uidmap)")
            args = [tool, str(pid)] + [str(x) for m in maps for x in (m.container, m.host, m.size)]
            done = subprocess.run(args, capture_output=True, text=True)
            if done.returncode != 0:
                raise EngineUnavailableError(
                    f"rootless: new{kind}map {format_maps(maps)} failed: {done.stderr.strip() or done.returncode}")
        else:
            if kind == "gid":
                with open(f"/proc/{pid}/setgroups", "w") as f:
                    f.write("deny")
            with open(f"/proc/{pid}/{kind}_map", "w") as f:
                f.write(f"{maps[0].container} {maps[0].host} {maps[0].size}\n")


def _holder_child(ready_w: int, go_r: int, pid_w: int) -> None:
    """In the grandchild: make the user namespace, wait to be mapped, make the netns, sleep."""
    code = 1
    try:
        os.write(pid_w, str(os.getpid()).encode())
        os.close(pid_w)
        linux.unshare(linux.CLONE_NEWUSER)
        os.write(ready_w, b"u")
        if os.read(go_r, 1) != b"g":
            os._exit(1)
        linux.unshare(linux.CLONE_NEWNET)
        linux.set_link_up("lo")
        os.write(ready_w, b"n")
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.chdir("/")
        os.closerange(3, 65536)
        os.execv("/bin/sleep", ["pods-holder", "infinity"])
    except BaseException:
        code = 1
    os._exit(code)


def _spawn_holder(uids: list[IdMap], gids: list[IdMap]) -> Holder:
    """Fork the holder (detached: its own session, reparented to init) and map it."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid_r, pid_w = os.pipe()
    first = os.fork()
    if first == 0:  # the intermediate child: a session of its own, then the holder, then exit
        try:
            os.setsid()
            for fd in (ready_r, go_w, pid_r):
                os.close(fd)
            if os.fork() == 0:
                _holder_child(ready_w, go_r, pid_w)
        finally:
            os._exit(0)
    for fd in (ready_w, go_r, pid_w):
        os.close(fd)
    pid = 0
    try:
        os.waitpid(first, 0)
        raw = os.read(pid_r, 32)
        if not raw:
            raise EngineUnavailableError("rootless: the namespace holder could not be started")
        pid = int(raw)
        if os.read(ready_r, 1) != b"u":
            reason = _unavailable_reason() or "unshare(CLONE_NEWUSER) failed"
            raise EngineUnavailableError(f"rootless: cannot make a user namespace: {reason}")
        _map_child(pid, uids, gids)
        os.write(go_w, b"g")
        if os.read(ready_r, 1) != b"n":
            raise EngineUnavailableError("rootless: the namespace holder could not make its network namespace")
        start = linux.process_start_time(pid)
        if start is None:
            raise EngineUnavailableError("rootless: the namespace holder died at start")
        return Holder(pid, start)
    except BaseException:
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        raise
    finally:
        for fd in (ready_r, go_w, pid_r):
            os.close(fd)


def current(root: Path) -> Holder | None:
    """The root's live holder, if there is one (no lock, nothing started)."""
    found = _read_pid(run_dir(root) / "holder.pid")
    return found if found is not None and found.alive() else None


def holder(root: Path) -> Holder:
    """The root's holder, started under the lock if it is not running (a dead one's pid file and
    helpers are released first). Raises EngineUnavailableError with the fix."""
    rdir = run_dir(root)
    with _lock(root):
        found = _read_pid(rdir / "holder.pid")
        if found is not None and found.alive():
            return found
        if found is not None:  # a dead holder: what it kept alive goes too
            _release_helpers(rdir)
        if inside():
            raise EngineUnavailableError("rootless: no namespace holder runs for this root, and this process is "
                                         "already inside a user namespace (start the engine from outside it)")
        uids, gids = id_maps()
        made = _spawn_holder(uids, gids)
        _write_pid(rdir / "holder.pid", made.pid, made.start)
        return made


def _same_userns(path: str) -> bool:
    try:
        a, b = os.stat(path), os.stat("/proc/self/ns/user")
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def join(root: Path) -> None:
    """Enter the root's user namespace (idempotent). Only a single-threaded process can
    (setns refuses others): a threaded caller gets EngineUnavailableError naming the fix."""
    if not active():
        return
    if inside():
        found = current(root)
        if found is None or _same_userns(found.ns_path("user")):
            return
        raise EngineUnavailableError(f"rootless: this process is in another user namespace than root {root}'s")
    if linux.thread_count() > 1:
        raise EngineUnavailableError(
            "rootless: a multi-threaded process cannot join the engine's user namespace (setns refuses it); "
            "run `pods daemon` and use a RemoteClient (PODS_HOST), as the pytest plugin does")
    # inside, our uid reads as 0: getpass (pytest's tmp_path, for one) would then name the user
    # "root" and pick root's directories; the environment keeps the user's own name
    for var in ("USER", "LOGNAME"):
        os.environ.setdefault(var, user_name())
    for _ in range(3):
        found = holder(root)
        try:
            fd = os.open(found.ns_path("user"), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if not found.alive():  # the pid was reused between the check and the open
                continue
            linux.setns(fd, linux.CLONE_NEWUSER)
            # a mount namespace of our own (owned by the user namespace): the host's is not ours to
            # mount in, and the builder and commit mount views of layers; nothing propagates back
            linux.unshare(linux.CLONE_NEWNS)
            linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
            return
        finally:
            os.close(fd)
    raise EngineUnavailableError(f"rootless: cannot join the user namespace of root {root}")


def record_helper(root: Path, name: str, pid: int) -> None:
    """Record a helper (network helper, port forwarder) in ``RUN_DIR/NAME.pid``: it is ended with
    the holder by :func:`release`."""
    start = linux.process_start_time(pid)
    if start is None:
        return
    _write_pid(run_dir(root) / f"{name}.pid", pid, start)


def _helpers(rdir: Path) -> dict[str, Holder]:
    out = {}
    for path in rdir.glob("*.pid"):
        if path.name != "holder.pid":
            found = _read_pid(path)
            if found is not None:
                out[path.name[:-4]] = found
    return out


def _end(proc: Holder) -> bool:
    if not proc.alive():
        return False
    with contextlib.suppress(OSError):
        os.kill(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 2
    while proc.alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    return True


def _release_helpers(rdir: Path) -> list[str]:
    done = []
    for name, proc in _helpers(rdir).items():
        if _end(proc):
            done.append(f"{name} {proc.pid}")
        with contextlib.suppress(OSError):
            (rdir / f"{name}.pid").unlink()
    return done


def users(found: Holder, rdir: Path | None = None) -> list[int]:
    """Pids in the holder's user namespace other than the holder, this process and the recorded
    helpers: monitors, containers, joined CLIs and daemons (nothing to release while any run)."""
    try:
        ns = os.stat(found.ns_path("user"))
    except OSError:
        return []
    skip = {found.pid, os.getpid()}
    if rdir is not None:
        skip |= {h.pid for h in _helpers(rdir).values()}
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in skip:
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/user")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (ns.st_dev, ns.st_ino) and not _zombie(entry):
            out.append(int(entry))
    return out


def _zombie(pid: str) -> bool:
    """An exited process not yet reaped (a monitor that just ended) uses nothing any more."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return True


def release(root: Path, *, force: bool = False, caller_stays: bool = True) -> list[str]:
    """Stop the holder and every recorded helper when nothing else of the user's engine runs in its
    user namespace (``force``: whatever runs). Returns what was ended, e.g. ``["holder 1234"]``.

    ``caller_stays``: a joined process that goes on (a test session, a program) counts as a user,
    since it can never join again from inside; a CLI about to exit passes False.
    """
    if os.geteuid() == 0 and not inside():
        return []
    if caller_stays and inside() and not force:
        return []
    rdir = run_dir(root)
    with _lock(root):
        found = _read_pid(rdir / "holder.pid")
        if found is not None and found.alive():
            if not force and users(found, rdir):
                return []
            done = _release_helpers(rdir)
            if _end(found):
                done.append(f"holder {found.pid}")
        else:
            done = _release_helpers(rdir)
        with contextlib.suppress(OSError):
            (rdir / "holder.pid").unlink()
        return done


def delegated_cgroup() -> Path | None:
    """The user's own cgroup v2 directory when it is delegated (writable by the user and listing
    memory, pids and cpu in ``cgroup.controllers``), else None."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    if len(lines) != 1 or not lines[0].startswith("0::"):  # a v1 or hybrid hierarchy
        return None
    path = Path("/sys/fs/cgroup") / lines[0][3:].lstrip("/")
    try:
        controllers = set((path / "cgroup.controllers").read_text().split())
        st = os.stat(path)
    except OSError:
        return None
    if st.st_uid != host_ids()[0] and not os.access(path, os.W_OK):
        return None
    if not {"memory", "pids", "cpu"} <= controllers:
        return None
    return path


def limits_ignored() -> bool:
    return os.environ.get(IGNORE_LIMITS_ENV, "") not in ("", "0")


def limits_refusal(what: str) -> str | None:
    """None where limits work (root, a delegated cgroup v2) or are dropped (PODS_IGNORE_LIMITS=1);
    else the one line that refuses a ``what`` limit, with why and how to get delegation."""
    if not active() or limits_ignored() or delegated_cgroup() is not None:
        return None
    return (f"{what} limit refused: rootless containers have no cgroup here (no delegated cgroup v2 subtree "
            f"for uid {host_ids()[0]}); get one with cgroup v2 and systemd's Delegate=yes for user@.service "
            f"(systemctl edit user@.service), or set {IGNORE_LIMITS_ENV}=1 (--pods-ignore-limits) to drop limits")
