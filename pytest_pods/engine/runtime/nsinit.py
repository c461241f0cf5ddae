"""The container side of a start or an exec: what runs in the forked child until ``execve``.

This is our runc ``init``: it reads the bundle's OCI ``config.json`` and applies it (namespaces,
overlay root, mounts, ``pivot_root``, masked paths, hostname, rlimits, user, capabilities,
``no_new_privs``), then executes the container's process. It runs in a freshly forked,
single-threaded process and never returns: success is ``execve``; failure is one JSON line on the
error pipe (``{"error": ..., "code": 125|126|127}``) and ``_exit``. Everything it needs is imported
before ``pivot_root``: after it, the host's Python library is out of reach.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import resource
import signal
import stat
import sys
import termios
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from pytest_pods.engine import linux
from pytest_pods.engine.runtime.spec import CAP_NUMBERS, DEFAULT_DEVICES, RLIM_INFINITY, SECCOMP_FILTER_KEY
from pytest_pods.errors import InitError

_NS_FLAGS = {
    "mount": linux.CLONE_NEWNS, "uts": linux.CLONE_NEWUTS, "ipc": linux.CLONE_NEWIPC,
    "network": linux.CLONE_NEWNET, "cgroup": linux.CLONE_NEWCGROUP, "pid": linux.CLONE_NEWPID,
}
_MOUNT_OPTS = {
    "ro": linux.MS_RDONLY, "nosuid": linux.MS_NOSUID, "nodev": linux.MS_NODEV, "noexec": linux.MS_NOEXEC,
    "strictatime": linux.MS_STRICTATIME, "noatime": linux.MS_NOATIME, "bind": linux.MS_BIND,
    "rbind": linux.MS_BIND | linux.MS_REC,
}
_MOUNT_OPTS.update({"sync": linux.MS_SYNCHRONOUS, "dirsync": linux.MS_DIRSYNC, "nodiratime": linux.MS_NODIRATIME,
                    "relatime": linux.MS_RELATIME})
# an option that clears a flag an earlier one set (Docker's tmpfs defaults are nosuid,nodev,noexec:
# `--tmpfs /x:exec` turns one off), as mount(8) reads them left to right
_CLEARING_OPTS = {
    "rw": linux.MS_RDONLY, "suid": linux.MS_NOSUID, "dev": linux.MS_NODEV, "exec": linux.MS_NOEXEC,
    "async": linux.MS_SYNCHRONOUS, "atime": linux.MS_NOATIME, "diratime": linux.MS_NODIRATIME,
    "norelatime": linux.MS_RELATIME, "nostrictatime": linux.MS_STRICTATIME,
}
_IGNORED_OPTS = {"rprivate", "private", "rslave", "slave", "shared", "rshared", "newinstance_ok",
                 "tmpcopyup", "notmpcopyup"}


def fail(error_fd: int, message: str, code: int = 125) -> NoReturn:
    try:
        os.write(error_fd, json.dumps({"error": message, "code": code}).encode() + b"\n")
    finally:
        os._exit(code)


def reset_signals() -> None:
    """Python ignores SIGPIPE and handles SIGINT; the container's process must start clean."""
    for sig in range(1, signal.NSIG):
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


# -- paths inside the rootfs, resolved by the kernel -----------------------------------------------
def open_in_root(root_fd: int, path: str, *, create_dir: bool = False, create_file: bool = False) -> int:
    """An O_PATH fd for ``path`` inside the root, resolving symlinks as if the root were ``/``.

    Missing components are created (directories, or an empty file as the last one), so that a
    mount target can never be redirected outside the rootfs by a symlink in the image.
    """
    rel = path.strip("/")
    if not rel:
        return os.dup(root_fd)
    try:
        return linux.openat2(root_fd, rel, os.O_PATH)
    except FileNotFoundError:
        if not (create_dir or create_file):
            raise
    parent, _, leaf = rel.rpartition("/")
    pfd = open_in_root(root_fd, parent, create_dir=True) if parent else os.dup(root_fd)
    try:
        dfd = os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_DIRECTORY)
        try:
            if create_file:
                with _suppress_exists():
                    os.close(os.open(leaf, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o644, dir_fd=dfd))
            else:
                with _suppress_exists():
                    os.mkdir(leaf, 0o755, dir_fd=dfd)
        finally:
            os.close(dfd)
    finally:
        os.close(pfd)
    return linux.openat2(root_fd, rel, os.O_PATH)


class _suppress_exists:
    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: object, exc: object, tb: object) -> bool:
        return isinstance(exc, FileExistsError)


def _mount_flags(options: Sequence[str]) -> tuple[int, str]:
    flags, data = 0, []
    for opt in options:
        if opt in _MOUNT_OPTS:
            flags |= _MOUNT_OPTS[opt]
        elif opt in _CLEARING_OPTS:
            flags &= ~_CLEARING_OPTS[opt]
        elif opt in _IGNORED_OPTS:
            continue
        else:
            data.append(opt)
    return flags, ",".join(data)


def _mount_at(root_fd: int, m: dict[str, Any]) -> None:
    dest = m["destination"]
    mtype = m.get("type", "bind")
    options = m.get("options", [])
    flags, data = _mount_flags(options)
    is_bind = mtype == "bind" or flags & linux.MS_BIND
    src = m.get("source", "")
    make_file = bool(is_bind and src and os.path.exists(src) and not os.path.isdir(src))
    if is_bind and not os.path.exists(src):
        raise InitError(f"mount {src} to {dest}: the host path does not exist")
    fd = open_in_root(root_fd, dest, create_dir=not make_file, create_file=make_file)
    try:
        target = f"/proc/self/fd/{fd}"
        if is_bind:
            linux.mount(src, target, None, linux.MS_BIND | (flags & linux.MS_REC))
            if flags & linux.MS_RDONLY:
                mounted = open_in_root(root_fd, dest)  # our fd points below the new mount
                try:
                    linux.mount(None, f"/proc/self/fd/{mounted}", None,
                                linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | locked_flags(mounted))
                finally:
                    os.close(mounted)
        elif mtype == "cgroup":
            _mount_cgroups(root_fd, dest, target, flags)
        else:
            linux.mount(src or mtype, target, mtype, flags, data or None)
    except OSError as exc:
        raise InitError(f"mount {mtype} on {dest}: {exc.strerror}") from exc
    finally:
        os.close(fd)


_ST_FLAGS = ((os.ST_NOSUID, linux.MS_NOSUID), (os.ST_NODEV, linux.MS_NODEV), (os.ST_NOEXEC, linux.MS_NOEXEC),
             (os.ST_NOATIME, linux.MS_NOATIME), (os.ST_NODIRATIME, 2048), (os.ST_RELATIME, 1 << 21))


def locked_flags(fd: int) -> int:
    """In a user namespace a bind remount must keep the flags the host's mount has (nosuid, nodev,
    noexec, the atime ones): the kernel locks them, and dropping one fails with EPERM."""
    if not _in_userns():
        return 0
    have = os.statvfs(f"/proc/self/fd/{fd}").f_flag
    return sum(ms for st, ms in _ST_FLAGS if have & st)


def _in_userns() -> bool:
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() != ["0", "0", "4294967295"]
    except OSError:
        return False


def _mount_cgroups(root_fd: int, dest: str, target: str, flags: int) -> None:
    """cgroup2 when the host is pure v2; on v1, a tmpfs with one mount per controller."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        linux.mount("cgroup", target, "cgroup2", flags)
        return
    linux.mount("tmpfs", target, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC, "mode=755")
    fd = open_in_root(root_fd, dest)  # the fd opened before the mount points below it
    try:
        mounted = f"/proc/self/fd/{fd}"
        for ctrl in ("cpu", "cpuacct", "memory", "pids"):
            if not os.path.isdir(f"/sys/fs/cgroup/{ctrl}") or os.path.islink(f"/sys/fs/cgroup/{ctrl}"):
                continue
            sub = f"{mounted}/{ctrl}"
            try:
                os.mkdir(sub)
                # each controller mount carries the ro flag itself (issue 14): a read-only tmpfs
                # above does not make the mounts on it read-only
                linux.mount("cgroup", sub, "cgroup", flags, ctrl)
            except OSError:
                continue  # a missing controller hides a file from the container, nothing worse
        linux.mount(None, mounted, None, linux.MS_REMOUNT | linux.MS_BIND | (flags & linux.MS_RDONLY)
                    | linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    finally:
        os.close(fd)


def _make_devices() -> None:
    for path, major, minor, mode in DEFAULT_DEVICES:
        node = path
        if os.path.lexists(node):
            continue  # bind-mounted from the host already (rootless: no mknod in a user namespace)
        os.mknod(node, mode | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(node, mode)  # mknod honours the umask
    for link, target in (
        ("/dev/fd", "/proc/self/fd"), ("/dev/stdin", "/proc/self/fd/0"), ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"), ("/dev/ptmx", "pts/ptmx"), ("/dev/core", "/proc/kcore"),
    ):
        os.symlink(target, link)


def _make_extra_devices(devices: Sequence[dict[str, Any]]) -> None:
    """``--device`` nodes and a privileged container's host devices (runc's mknod path); nodes
    already there were bind-mounted (rootless)."""
    for d in devices:
        path = d["path"]
        if os.path.lexists(path):
            continue
        parent = os.path.dirname(path)
        os.makedirs(parent, 0o755, exist_ok=True)
        kind = stat.S_IFCHR if d.get("type", "c") in ("c", "u") else stat.S_IFBLK
        mode = int(d.get("fileMode", 0o666)) & 0o7777
        try:
            os.mknod(path, mode | kind, os.makedev(int(d["major"]), int(d["minor"])))
        except OSError as exc:
            raise InitError(f"create device {path}: {exc.strerror}") from exc
        os.chmod(path, mode)
        os.chown(path, int(d.get("uid", 0)), int(d.get("gid", 0)))


def _set_sysctls(sysctls: dict[str, str]) -> None:
    """Namespaced sysctls (checked at create), through our own /proc before it is made read-only."""
    for key, value in sysctls.items():
        try:
            with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                f.write(value)
        except OSError as exc:
            raise InitError(f"write sysctl {key}={value}: {exc.strerror}") from exc


# -- seccomp ---------------------------------------------------------------------------------------
_pending_filter: list[tuple[int, bytes]] = []


def read_filter(path: str | None, section: dict[str, Any] | None = None) -> tuple[int, bytes] | None:
    """The compiled seccomp filter the engine cached at create: (load flags, program). Read before
    pivot_root or setns (the host path is out of reach after). If the cache was removed, compile
    it again from the config's ``linux.seccomp`` (slow, but never unconfined by accident)."""
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        if section is None:
            raise InitError(f"load the seccomp filter: {path} is missing (run pods system reap, or recreate "
                            "the container)") from None
        from pytest_pods.engine.runtime import seccomp  # lazy: only when the cache was removed

        with open(seccomp.ensure_compiled(section, Path(path).parent), "rb") as f:
            raw = f.read()
    if raw[:4] != b"PSC1" or (len(raw) - 8) % 8:
        raise InitError(f"load the seccomp filter: {path} is not a filter the engine wrote (remove it and retry)")
    return int.from_bytes(raw[4:8], "little"), raw[8:]


def _load_filter() -> None:
    """Install the pending filter (as late as possible: from here on the profile applies to us)."""
    while _pending_filter:
        flags, program = _pending_filter.pop()
        try:
            linux.seccomp_load(program, flags)
        except OSError as exc:
            raise InitError(f"load the seccomp filter: {exc.strerror}") from exc


def _pivot_root(rootfs: str) -> None:
    old = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    new = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fchdir(new)
        linux.pivot_root(".", ".")
        os.fchdir(old)
        linux.mount(None, ".", None, linux.MS_SLAVE | linux.MS_REC)
        linux.umount(".", linux.MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old)
        os.close(new)


def _mask_paths(masked: Sequence[str], readonly: Sequence[str]) -> None:
    for path in masked:
        try:
            if os.path.isdir(path):
                linux.mount("tmpfs", path, "tmpfs", linux.MS_RDONLY)
            else:
                linux.mount("/dev/null", path, None, linux.MS_BIND)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise InitError(f"mask {path}: {exc.strerror}") from exc
    for path in readonly:
        try:
            linux.mount(path, path, None, linux.MS_BIND | linux.MS_REC)
            linux.mount(None, path, None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY
                        | linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise InitError(f"make {path} read-only: {exc.strerror}") from exc


def find_executable(name: str, env: Sequence[str]) -> str:
    """Look ``name`` up in the container's PATH, with the exit codes docker gives (127, 126)."""
    if "/" in name:
        if not os.path.exists(name):
            raise InitError(f"exec: {name!r}: no such file or directory", 127)
        if os.path.isdir(name) or not os.access(name, os.X_OK):
            raise InitError(f"exec: {name!r}: permission denied", 126)
        return name
    # no PATH (an API Env entry "PATH" unset it): nothing is found, as under runc
    path = next((e[5:] for e in env if e.startswith("PATH=")), "")
    denied = None
    for d in path.split(":") if path else []:
        cand = os.path.join(d or ".", name)
        if os.path.isfile(cand):
            if os.access(cand, os.X_OK):
                return cand
            denied = cand
    if denied:
        raise InitError(f"exec: {name!r}: permission denied", 126)
    raise InitError(f"exec: {name!r}: executable file not found in $PATH", 127)


def _setgroups_denied() -> bool:
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() == "deny"
    except OSError:
        return False


def _apply_process(proc: dict[str, Any], *, create_cwd: bool = True,
                   seccomp: tuple[int, bytes] | None = None) -> None:
    """rlimits, cwd, user, capabilities, no_new_privs and seccomp: the last steps before execve,
    in runc's order.

    A start creates a missing working directory, as docker does; an exec does not (it fails,
    as ``docker exec -w`` does). The seccomp filter is installed here, before the user and the
    capabilities change, when no_new_privs is off (installing a filter then needs CAP_SYS_ADMIN);
    with no_new_privs it waits until just before execve (``_exec``)."""
    for rl in proc.get("rlimits", []):
        res = getattr(resource, rl["type"], None)
        if res is not None:
            soft, hard = (resource.RLIM_INFINITY if v >= RLIM_INFINITY else v for v in (rl["soft"], rl["hard"]))
            if _in_userns():  # raising a hard limit needs CAP_SYS_RESOURCE on the host: never above it
                cur = resource.getrlimit(res)[1]
                if cur != resource.RLIM_INFINITY:
                    hard = cur if hard == resource.RLIM_INFINITY else min(hard, cur)
                    soft = hard if soft == resource.RLIM_INFINITY else min(soft, hard)
            try:
                resource.setrlimit(res, (soft, hard))
            except (ValueError, OSError) as exc:
                raise InitError(f"setrlimit {rl['type']}: {exc}") from exc
    cwd = proc.get("cwd", "/")
    try:
        if create_cwd:
            os.makedirs(cwd, exist_ok=True)
        os.chdir(cwd)
    except OSError as exc:
        raise InitError(f"chdir to cwd ({cwd!r}) set in config.json failed: {exc.strerror}",
                        125 if create_cwd else 126) from exc
    if seccomp is not None:
        _pending_filter.append(seccomp)
        if not proc.get("noNewPrivileges"):
            _load_filter()
    caps = proc.get("capabilities", {})
    bounding = sum(1 << CAP_NUMBERS[c] for c in caps.get("bounding", []) if c in CAP_NUMBERS)
    effective = sum(1 << CAP_NUMBERS[c] for c in caps.get("effective", []) if c in CAP_NUMBERS)
    linux.drop_bounding_caps(bounding)
    linux.clear_ambient_caps()
    user = proc.get("user", {})
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    groups = [int(g) for g in user.get("additionalGids", [])]
    if groups or not _setgroups_denied():  # a single-id user namespace denies setgroups
        try:
            os.setgroups(groups)
        except PermissionError as exc:
            raise InitError(f"setgroups {groups}: {exc.strerror} (the rootless user namespace maps "
                            "one id and denies setgroups: add a subordinate id range)") from exc
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)  # leaving uid 0 clears permitted and effective, as for any setuid
    if uid == 0:
        linux.capset(effective, effective, 0)
    if proc.get("noNewPrivileges"):
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)


def _exec(proc: dict[str, Any], error_fd: int) -> NoReturn:
    args = proc["args"]
    env = proc.get("env", [])
    exe = find_executable(args[0], env)
    reset_signals()
    if proc.get("terminal"):  # stdin is a pty slave: make it the controlling terminal of a new session
        try:
            os.setsid()
        except OSError:
            pass  # a session leader already (--init's child)
        try:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        except OSError:
            pass  # still runs, without job control
    environ = dict(e.split("=", 1) for e in env if "=" in e)
    try:
        _load_filter()
        os.execve(exe, args, environ)
    except InitError as exc:
        fail(error_fd, str(exc), exc.code)
    except OSError as exc:
        code = 127 if exc.errno == errno.ENOENT else 126
        fail(error_fd, f"exec {args[0]!r}: {exc.strerror}", code)


def _run_as_init(proc: dict[str, Any], error_fd: int) -> NoReturn:
    """``--init``: stay pid 1, forward signals to the process and reap every orphan (as tini)."""
    child = os.fork()
    if child == 0:
        os.setsid()
        _exec(proc, error_fd)
    os.close(error_fd)
    _load_filter()  # the init process is confined as the process it runs

    def forward(sig: int, _frame: object) -> None:
        try:
            os.kill(child, sig)
        except ProcessLookupError:
            pass

    for sig in range(1, signal.NSIG):
        if sig not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
            try:
                signal.signal(sig, forward)
            except (OSError, ValueError):
                pass
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        except InterruptedError:
            continue
        if pid == child:
            os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def join_cgroup(files: Sequence[tuple[str, str]]) -> None:
    """Move this process into its cgroup by the writes the cgroup gave (``self_join_files``)."""
    for path, value in files:
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as exc:
            raise InitError(f"join cgroup {os.path.dirname(path)}: {exc.strerror}") from exc


def container_init(config: dict[str, Any], rootfs: str, overlay: str, sync_r: int, sync_w: int,
                   error_fd: int, stdio: tuple[int, int, int], init: bool,
                   cgroup_join: Sequence[tuple[str, str]], console: int | None = None) -> NoReturn:
    """Set the container up and exec its process (we are pid 1 of the new pid namespace).

    ``console`` (a unix socket; ``process.terminal``): our stdio becomes a pty of the container's
    own devpts and its master goes to the monitor over that socket (runc's console socket)."""
    try:
        for i, fd in enumerate(stdio):
            os.dup2(fd, i)
        linux_cfg = config.get("linux", {})
        flags = 0
        for ns in linux_cfg.get("namespaces", []):
            if ns["type"] != "pid":
                flags |= _NS_FLAGS[ns["type"]] & ~linux.CLONE_NEWCGROUP
        linux.unshare(flags)
        # Namespaces made: tell the monitor (it sets up what lives outside, e.g. networks) and
        # build the root meanwhile; wait for its "go" only before the cgroup namespace.
        os.write(sync_w, b"n")
        if flags & linux.CLONE_NEWNET:
            linux.set_link_up("lo")
        linux.mount(None, "/", None, linux.MS_SLAVE | linux.MS_REC)
        try:
            linux.mount("overlay", rootfs, "overlay", 0, overlay)
        except OSError as exc:
            raise InitError(f"mount overlay on {rootfs}: {exc.strerror}") from exc
        root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY)
        mounts = config.get("mounts", [])
        for m in mounts:
            if m.get("type") != "cgroup":
                _mount_at(root_fd, m)
        join_cgroup(cgroup_join)  # the cgroup namespace and cgroup mounts must see our group
        if os.read(sync_r, 1) != b"g":
            os._exit(125)
        os.close(sync_r)
        os.close(sync_w)
        if any(ns["type"] == "cgroup" for ns in linux_cfg.get("namespaces", [])):
            linux.unshare(linux.CLONE_NEWCGROUP)
        for m in mounts:
            if m.get("type") == "cgroup":
                _mount_at(root_fd, m)
        os.close(root_fd)
        seccomp = read_filter(config.get("annotations", {}).get(SECCOMP_FILTER_KEY), linux_cfg.get("seccomp"))
        _pivot_root(rootfs)
        if any(m["destination"] == "/dev" for m in config.get("mounts", [])):
            _make_devices()  # after pivot_root: a symlinked /dev in the image cannot point outside
        _make_extra_devices(linux_cfg.get("devices", []))
        if console is not None:
            _setup_console(console, int(config["process"].get("user", {}).get("uid", 0)))
        if config.get("hostname"):
            linux.sethostname(config["hostname"])
        _set_sysctls(linux_cfg.get("sysctl", {}))  # after the hostname (as runc), before /proc/sys is read-only
        _mask_paths(linux_cfg.get("maskedPaths", []), linux_cfg.get("readonlyPaths", []))
        if config.get("root", {}).get("readonly"):
            linux.mount(None, "/", None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY)
        cpus = linux_cfg.get("resources", {}).get("cpu", {}).get("cpus")
        if cpus:  # --cpuset-cpus: every process of the container inherits this affinity
            os.sched_setaffinity(0, linux.cpu_list(cpus))
        proc = config["process"]
        _apply_process(proc, seccomp=seccomp)
        if init:
            _run_as_init(proc, error_fd)
        _exec(proc, error_fd)
    except InitError as exc:
        fail(error_fd, str(exc), exc.code)
    except OSError as exc:
        fail(error_fd, f"start container: {exc}", 125)
    except BaseException as exc:  # the child must never return into the caller's code
        fail(error_fd, f"start container: {type(exc).__name__}: {exc}", 125)


# asm-generic/ioctls.h (Python's termios lacks them): unlock a pty, open its slave through the master
_TIOCSPTLCK = 0x40045431
_TIOCGPTPEER = 0x5441


def _setup_console(sock: int, uid: int) -> None:
    """A pty on the container's devpts (after pivot_root: ``tty`` names ``/dev/pts/0``): the slave
    becomes stdin, stdout and stderr, owned by the process's user (issue 16, ``Tty``); the master
    goes to the monitor, which logs what it reads and writes attached stdin into it."""
    import socket  # lazy: start latency (only containers with a tty)

    try:
        master = os.open("/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        fcntl.ioctl(master, _TIOCSPTLCK, b"\0\0\0\0")
        slave = fcntl.ioctl(master, _TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
    except OSError as exc:
        raise InitError(f"start container: allocate a tty: {exc.strerror}") from exc
    try:
        os.fchown(slave, uid, -1)
    except OSError:
        pass  # an unmapped user still uses the open descriptors
    for i in range(3):
        os.dup2(slave, i)
    os.close(slave)
    with socket.socket(fileno=sock) as s:
        socket.send_fds(s, [b"m"], [master])
    os.close(master)


# -- exec: enter a running container ---------------------------------------------------------------
_ENTER_ORDER = ("ipc", "uts", "net", "pid", "cgroup", "mnt")


def enter_and_exec(pid: int, cgroup_join: Sequence[tuple[str, str]], proc: dict[str, Any], error_fd: int,
                   stdio: tuple[int, int, int]) -> NoReturn:
    """Join ``pid``'s cgroup and namespaces, fork into its pid namespace, exec; exit with its code."""
    try:
        for i, fd in enumerate(stdio):
            os.dup2(fd, i)
        seccomp = read_filter(proc.get(SECCOMP_FILTER_KEY))  # before setns: the path is the host's
        join_cgroup(cgroup_join)
        os.sched_setaffinity(0, os.sched_getaffinity(pid))  # the container's CPUs (--cpuset-cpus)
        fds = []
        for ns in _ENTER_ORDER:
            fds.append(os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY))
        for fd in fds:
            linux.setns(fd)
            os.close(fd)
    except InitError as exc:
        fail(error_fd, f"exec in container: {exc}", 125)
    except OSError as exc:
        fail(error_fd, f"exec in container: enter namespaces: {exc.strerror}", 125)
    child = os.fork()
    if child == 0:
        try:
            _apply_process(proc, create_cwd=False, seccomp=seccomp)
            _exec(proc, error_fd)
        except InitError as exc:
            fail(error_fd, str(exc), exc.code)
        except BaseException as exc:
            fail(error_fd, f"exec in container: {type(exc).__name__}: {exc}", 126)
    os.close(error_fd)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, lambda s, _f: os.kill(child, s))
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    sys.stdout.flush()
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
