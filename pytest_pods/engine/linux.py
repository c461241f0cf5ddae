"""Thin ctypes wrappers for the Linux system calls Python's ``os`` lacks on 3.11.

Each wrapper raises ``OSError(errno, strerror, target)`` on failure, as ``os`` does. Only what the
engine needs is here: mounts, namespaces, ``pivot_root``, ``openat2``, capabilities and ``prctl``.
"""

from __future__ import annotations

import _socket  # socket.py costs ~2 ms to import; one ioctl needs only this
import ctypes
import fcntl
import os
import struct
from typing import Any


def _load_libc() -> ctypes.CDLL:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # not glibc: ask the slow way (find_library may run ldconfig)
        from ctypes import util  # lazy: only off glibc

        return ctypes.CDLL(util.find_library("c"), use_errno=True)


_libc = _load_libc()
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "capget": 125, "capset": 126, "openat2": 437, "seccomp": 317, "bpf": 321},
    "aarch64": {"pivot_root": 41, "capget": 90, "capset": 91, "openat2": 437, "seccomp": 277, "bpf": 280},
}
_NR = _SYSCALLS.get(os.uname().machine, _SYSCALLS["x86_64"])

# clone/unshare flags
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_SYNCHRONOUS = 16
MS_DIRSYNC = 128
MS_NODIRATIME = 2048
MS_RELATIME = 1 << 21
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

# openat2 resolve flags
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# prctl options
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_SET_MODE_FILTER = 1
PR_SET_CHILD_SUBREAPER = 36
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

CAP_LAST_CAP = 40  # CAP_CHECKPOINT_RESTORE; newer kernels' extra caps are dropped by probing


def _check(ret: int, target: object = None) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        if target is None:
            raise OSError(err, os.strerror(err))
        raise OSError(err, os.strerror(err), str(target))
    return ret


def _b(value: str | bytes | os.PathLike[str] | None) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return os.fsencode(value)


def mount(
    source: str | None,
    target: str | os.PathLike[str],
    fstype: str | None = None,
    flags: int = 0,
    data: str | None = None,
) -> None:
    """mount(2)."""
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), target)


def umount(target: str | os.PathLike[str], flags: int = 0) -> None:
    """umount2(2)."""
    _check(_libc.umount2(_b(target), flags), target)


def unshare(flags: int) -> None:
    """unshare(2)."""
    _check(_libc.unshare(flags))


def setns(fd: int, nstype: int = 0) -> None:
    """setns(2) on an open namespace file descriptor."""
    _check(_libc.setns(fd, nstype))


def sethostname(name: str) -> None:
    """sethostname(2) in the current UTS namespace."""
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)))


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2)."""
    _check(_libc.syscall(_NR["pivot_root"], _b(new_root), _b(put_old)), new_root)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2)."""
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5))


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_load(program: bytes, flags: int = 0) -> None:
    """Install a classic BPF seccomp filter (``struct sock_filter`` array) on the calling thread.

    Needs no_new_privs or CAP_SYS_ADMIN. ``flags`` are seccomp(2)'s (``SECCOMP_FILTER_FLAG_*``);
    without any, prctl(2) does it on every architecture."""
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.addressof(buf))
    if flags:
        _check(_libc.syscall(_NR["seccomp"], SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(prog)))
    else:
        _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0))


def bpf(cmd: int, attr: ctypes.Array[ctypes.c_char]) -> int:
    """bpf(2) with ``attr`` (a ``union bpf_attr`` packed by the caller, zero past what it sets,
    as the kernel requires); returns what the call returns (an fd for loads)."""
    return _check(_libc.syscall(_NR["bpf"], ctypes.c_int(cmd), attr, ctypes.c_uint(len(attr))))


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str | bytes, flags: int, mode: int = 0, resolve: int = RESOLVE_IN_ROOT) -> int:
    """openat2(2): open ``path`` relative to ``dirfd`` with kernel-enforced resolution rules.

    With ``RESOLVE_IN_ROOT`` every component (``..``, absolute symlinks) resolves as if ``dirfd``
    were ``/``: nothing can escape it, which is why unpacking relies on it instead of string checks.
    """
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    raw = _b(path)
    return _check(
        _libc.syscall(_NR["openat2"], dirfd, raw, ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how))),
        path,
    )


_CAP_V3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) for the calling thread, 64-bit masks (version 3 header)."""
    header = struct.pack("Ii", _CAP_V3, 0)
    data = struct.pack(
        "IIIIII",
        effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF,
        effective >> 32, permitted >> 32, inheritable >> 32,
    )
    hbuf = ctypes.create_string_buffer(header, len(header))
    dbuf = ctypes.create_string_buffer(data, len(data))
    _check(_libc.syscall(_NR["capset"], hbuf, dbuf))


def drop_bounding_caps(keep: int) -> None:
    """Drop every capability not in ``keep`` from the bounding set (needs CAP_SETPCAP)."""
    cap = 0
    while True:
        if not keep & (1 << cap):
            try:
                prctl(PR_CAPBSET_DROP, cap)
            except OSError as exc:
                if exc.errno == 22:  # EINVAL: past the kernel's last capability
                    break
                raise
        cap += 1
        if cap > 63:
            break


def clear_ambient_caps() -> None:
    try:
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError:
        pass


def thread_count() -> int:
    """Threads in this process: namespace setup by fork is only safe from a single-threaded one."""
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"Threads:"):
                return int(line.split()[1])
    return 1


def process_start_time(pid: int) -> int | None:
    """The start time (clock ticks since boot) of a live ``pid``, to tell it from a reused pid.

    None for a zombie: a killed monitor whose parent does not reap it is gone all the same.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # the command name may contain spaces and parentheses: split after the last ')'
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE_SELF = 0x400


_libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
_inotify_fds: dict[int, int] = {}  # thread id -> that thread's inotify instance
os.register_at_fork(after_in_child=_inotify_fds.clear)  # a child's fds are not ours to reuse


def watch(path: str | os.PathLike[str], mask: int = IN_MODIFY | IN_CLOSE_WRITE | IN_DELETE_SELF) -> tuple[int, int]:
    """``(fd, wd)``: a watch on ``path`` on this thread's inotify instance; wait on ``fd``.

    The instance is kept for the thread's next watch: closing an inotify fd waits for an SRCU
    grace period (about 8 ms here, on every readiness wait), removing a watch does not.
    """
    import threading  # lazy: start latency (only watchers need a thread id)

    tid = threading.get_ident()
    fd = _inotify_fds.get(tid)
    if fd is None:
        fd = _inotify_fds[tid] = _check(_libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
    wd = _check(_libc.inotify_add_watch(fd, _b(path), mask), path)
    return fd, wd


def unwatch(fd: int, wd: int) -> None:
    """Remove a watch made by :func:`watch` and drop its pending events."""
    _libc.inotify_rm_watch(fd, wd)  # already gone with its file: fine
    drain(fd)


def drain(fd: int) -> None:
    """Read and discard whatever a non-blocking fd (inotify, eventfd) holds."""
    try:
        while os.read(fd, 65536):
            pass
    except BlockingIOError:
        pass


def set_link_up(name: str = "lo") -> None:
    """Bring an interface up with SIOCSIFFLAGS (a netlink round trip would cost a process)."""
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sh14x", name.encode(), 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sh14x", name.encode(), flags | IFF_UP))
    finally:
        s.close()


_SOCK_DIAG_BY_FAMILY = 20
_NETLINK_SOCK_DIAG = 4
_TCP_LISTEN = 10


def diag_socket(pid: int) -> Any:
    """A sock_diag netlink socket in the network namespace of ``pid``, for
    :func:`listening_tcp_ports` (keep it for repeated checks: making one costs a thread)."""
    return netns_socket(pid, _socket.AF_NETLINK, _socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG)


def listening_tcp_ports(pid: int, sock: Any = None) -> set[int]:
    """The TCP ports something listens on in the network namespace of ``pid``.

    Asked of the kernel's socket tables with a sock_diag dump filtered to LISTEN, so nothing
    connects to the service to find out; ``/proc/PID/net/tcp`` says the same but walks every
    hash bucket (about 5 ms here even with one socket).
    """
    own = sock is None
    if own:
        sock = diag_socket(pid)
    try:
        ports: set[int] = set()
        for seq, family in enumerate((_socket.AF_INET, _socket.AF_INET6), 1):
            req = struct.pack("=BBBBI", family, 6, 0, 0, 1 << _TCP_LISTEN) + bytes(48)
            sock.send(struct.pack("=IHHII", 16 + len(req), _SOCK_DIAG_BY_FAMILY, 0x301, seq, 0) + req)
            done = False
            while not done:
                data = sock.recv(65536)
                off = 0
                while off + 16 <= len(data):
                    length, kind = struct.unpack_from("=IH", data, off)
                    if kind in (2, 3) or length < 16:  # NLMSG_ERROR, NLMSG_DONE
                        done = True
                        break
                    if kind == _SOCK_DIAG_BY_FAMILY:
                        ports.add(struct.unpack_from(">H", data, off + 16 + 4)[0])
                    off += (length + 3) & ~3
        return ports
    finally:
        if own:
            sock.close()


def netns_socket(pid: int, family: int = _socket.AF_INET, kind: int = _socket.SOCK_STREAM, proto: int = 0) -> Any:
    """A socket that lives in the network namespace of ``pid``.

    A socket belongs to the namespace it was made in, whatever thread uses it later; so a helper
    thread enters the namespace, makes the socket and ends, and the caller's threads stay put.
    """
    import socket  # lazy: start latency (only readiness probes make sockets in a namespace)
    import threading  # lazy: start latency (as above)

    ns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    made: list[Any] = []

    def enter() -> None:
        try:
            setns(ns, CLONE_NEWNET)
            made.append(socket.socket(family, kind, proto))
        except BaseException as exc:  # handed to the caller
            made.append(exc)

    try:
        t = threading.Thread(target=enter, name="pods-netns")
        t.start()
        t.join()
    finally:
        os.close(ns)
    if isinstance(made[0], BaseException):
        raise made[0]
    return made[0]


def namespace_pids(pid: int) -> list[int]:
    """The host pids of every process in ``pid``'s pid namespace (a container without a cgroup:
    the rootless engine where none is delegated). Empty once it is gone."""
    try:
        ns = os.stat(f"/proc/{pid}/ns/pid")
    except OSError:
        return []
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                st = os.stat(f"/proc/{entry}/ns/pid")
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (ns.st_dev, ns.st_ino):
                out.append(int(entry))
    return sorted(out)


def resident_bytes(pids: list[int]) -> int:
    """The summed resident memory of ``pids`` (what ``stats`` shows without a cgroup)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total



def cpu_list(text: str) -> set[int]:
    """``0-2,4``, the kernel's (and ``--cpuset-cpus``') list form, as CPU numbers.

    :raises ValueError: not that form
    """
    out: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError(text)
        lo, hi = int(first), int(last) if dash else int(first)
        if hi < lo:
            raise ValueError(text)
        out.update(range(lo, hi + 1))
    return out

def cpu_time_ns(pids: list[int]) -> int:
    """The CPU time (user + system) ``pids`` have used, in ns, from ``/proc/PID/stat``: what
    ``stats`` counts where no cgroup does (rootless without a delegated one)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except (OSError, IndexError, ValueError):
            continue
    return total * 10**9 // tick


def net_bytes(pid: int) -> dict[str, tuple[int, int]]:
    """(received, sent) bytes per interface of ``pid``'s network namespace, loopback left out:
    docker's NET I/O. Empty when the process is gone."""
    try:
        with open(f"/proc/{pid}/net/dev", "rb") as f:
            lines = f.read().decode().splitlines()[2:]  # two header lines
    except OSError:
        return {}
    out = {}
    for line in lines:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if name.strip() != "lo" and len(fields) >= 9:
            out[name.strip()] = (int(fields[0]), int(fields[8]))
    return out


def io_bytes(pids: list[int]) -> tuple[int, int]:
    """The summed (read, written) bytes that ``pids`` made the block layer move (``/proc/PID/io``):
    docker's BLOCK I/O where no blkio controller counts it. A process that ended no longer counts."""
    read = written = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/io", "rb") as f:
                fields = dict(line.split(b":", 1) for line in f.read().splitlines() if b":" in line)
            read += int(fields.get(b"read_bytes", b"0"))
            written += int(fields.get(b"write_bytes", b"0"))
        except (OSError, ValueError):
            continue
    return read, written


TIOCSWINSZ = 0x5414  # asm-generic/ioctls.h; termios is not imported on the start path


def set_winsize(fd: int, height: int, width: int) -> None:
    """A terminal's window size (its foreground process group gets SIGWINCH)."""
    fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
