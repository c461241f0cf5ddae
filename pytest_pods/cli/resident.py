"""``pods``'s resident helper (issue 19): the console script is a thin launcher that hands the
request to a resident process which has the CLI imported and its parsers built, and forks a child
per request; the child takes the caller's fds 0/1/2, cwd, umask, environment and arguments and runs
``pods`` as a fresh process would.

A ``pods`` that starts Python and imports the engine pays ~45 ms before it does anything; through
the helper it pays Python's start (~11 ms), this module and one fork.

The launcher (``main``) imports only what it needs (``os``, ``sys``, ``_socket``, ``_signal``,
``zlib``). It goes to the helper only when that is safe: ``PODS_RESIDENT`` is not ``0``, stdin is
not a terminal (terminals, raw mode, ``-it`` and password prompts stay in the caller's process
and session), the verb is not ``daemon``, ``login`` or ``resident``, and fds 0, 1 and 2 are open.
Else, or when no helper answers, ``pods`` runs in its own process as before; a missing helper is
then started in the background (detached: setsid, double fork, stdio /dev/null, cwd /) for the
next call.

The helper's socket lives in a directory of the user's own (0700): ``$PODS_RESIDENT_DIR`` when set,
else ``$XDG_RUNTIME_DIR/pods-resident``, else ``/run/pods-resident`` for root, else
``/tmp/pods-resident-UID`` (not the engine's or the
daemon's ``pytest-pods`` directories there, whose modes are theirs). Its name carries a stamp of
everything a fresh process would take from its start and that a child cannot take from the
request: the interpreter and its flags, ``sys.path`` (and its directories' mtimes: a ``pip
install`` changes them), every file of the package (mtime, size, inode: an edited or upgraded
package never runs stale code) and the process's context (namespaces, cgroup, ids, groups,
capabilities, no_new_privs, seccomp, CPU affinity, rlimits, OOM score, nice, root). A caller in
another context finds another socket. The request carries the stamp in full; a helper that does
not hold the same one refuses and retires.

The helper is single-threaded (it forks, so it must be): it checks each peer's uid
(``SO_PEERCRED``), forks a child per request, reaps it through a pidfd and reports its wait status
to the caller, which exits with the child's code (or dies of the child's signal). The caller
forwards SIGHUP, SIGINT, SIGQUIT, SIGTERM and SIGWINCH to the child (SIGTSTP stops both); a caller
that dies takes its child with it (SIGKILL), as a killed ``pods`` process stops where it is. The
helper exits after ``PODS_RESIDENT_IDLE`` seconds (default 60) without a request, when its socket
is removed or replaced, and on ``pods resident stop``.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    import socket
    from collections.abc import Iterator
    from types import ModuleType
    from typing import Any, NoReturn

    from pytest_pods.cli.main import Parser
    from pytest_pods.cli.verb import Command, Subparsers

MAGIC = b"pods-resident/1"
IDLE_SECONDS = 60.0
# the verbs that always run in the caller's process: a long-lived server (its pid is the caller's
# to manage), a password prompt (/dev/tty is the caller's controlling terminal), and this one
IN_PROCESS_VERBS = ("daemon", "login", "resident")
SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGWINCH, SIGTSTP, SIGCONT = 1, 2, 3, 15, 28, 20, 18
FORWARDED = (SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGWINCH)
NSIG = 65
UNIX_PATH_MAX = 107
# the lines of /proc/self/status that a fresh process takes from its parent and keeps
STATUS_KEYS = (b"Uid:", b"Gid:", b"Groups:", b"CapInh:", b"CapPrm:", b"CapEff:", b"CapBnd:", b"CapAmb:",
               b"NoNewPrivs:", b"Seccomp:", b"Cpus_allowed_list:", b"Mems_allowed_list:")


# -- where, and which ----------------------------------------------------------------------------
def _own_dir(path: str, uid: int, create: bool) -> bool:
    """Whether ``path`` is a directory of ``uid``'s own that nobody else may enter (made 0700 when
    ``create``)."""
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return False
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (st.st_mode & 0o170000) == 0o040000 and st.st_uid == uid and st.st_mode & 0o077 == 0


def socket_dir(create: bool = True) -> str | None:
    """The user's directory of resident sockets, None when there is none that is safe to use."""
    uid = os.geteuid()
    chosen = os.environ.get("PODS_RESIDENT_DIR", "")
    if chosen:
        return chosen if chosen.startswith("/") and _own_dir(chosen, uid, create) else None
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg.startswith("/"):
        try:
            st = os.stat(xdg)
            if st.st_uid == uid and st.st_mode & 0o022 == 0:
                d = os.path.join(xdg, "pods-resident")
                if _own_dir(d, uid, create):
                    return d
        except OSError:
            pass
    d = "/run/pods-resident" if uid == 0 else f"/tmp/pods-resident-{uid}"
    return d if _own_dir(d, uid, create) else None


def _read(path: str) -> bytes:
    try:
        with open(path, "rb", buffering=0) as f:
            return f.read()
    except OSError:
        return b"-"


def _files(top: str, out: list[str]) -> None:
    """Every module under ``top``: name, mtime, size, inode. (Only code: the helper holds it; other
    files, such as the recipes' data, a child reads as a fresh process does.)"""
    with os.scandir(top) as it:
        for e in it:
            if e.is_dir(follow_symlinks=False):
                if e.name != "__pycache__":
                    _files(e.path, out)
            elif e.name.endswith(".py"):
                st = e.stat(follow_symlinks=False)
                out.append(f"{e.path} {st.st_mtime_ns} {st.st_size} {st.st_ino}")


def stamp() -> tuple[str, bytes]:
    """(a short name, the whole stamp) of this interpreter, this package's files and this process's
    context: what a request cannot carry and a helper must share with its callers."""
    import zlib  # lazy: start latency (the launcher's only extension module besides _socket)

    parts = [sys.executable, sys.version, repr(sys.flags), repr(sys.warnoptions),
             repr(sorted(sys._xoptions.items()))]
    for p in _syspath():  # an install or upgrade of a dependency changes its site-packages' mtime
        try:
            mtime = os.stat(p).st_mtime_ns if p.endswith(("site-packages", "dist-packages")) else 0
        except OSError:
            mtime = -1
        parts.append(f"path {p} {mtime}")
    _files(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), parts)
    for ns in ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts", "time"):
        try:
            parts.append(f"ns {ns} {os.stat(f'/proc/self/ns/{ns}').st_ino}")
        except OSError:
            parts.append(f"ns {ns} -")
    try:
        parts.append(f"root {os.readlink('/proc/self/root')} nice {os.getpriority(os.PRIO_PROCESS, 0)}")
    except OSError:
        parts.append("root -")
    text = "\n".join(parts).encode("utf-8", "surrogateescape")
    status = [line for line in _read("/proc/self/status").splitlines() if line.startswith(STATUS_KEYS)]
    whole = b"\n".join([text, *status, _read("/proc/self/cgroup"), _read("/proc/self/limits"),
                        _read("/proc/self/oom_score_adj")])
    return f"{zlib.crc32(whole):08x}{zlib.adler32(whole):08x}", whole


def _syspath() -> list[str]:
    """``sys.path`` with the working directory's entries ('' and relative ones) made absolute:
    where this process imports from, wherever the helper runs (a path hook's entry stays as it is)."""
    out = []
    main = sys.modules.get("__main__")
    # `python -m` and `-c` put the working directory first: it counts only when our package is
    # found there (a checkout run in place), else each directory would get a helper of its own
    from_cwd = not sys.flags.safe_path and not SERVER_STAMP and (
        getattr(main, "__spec__", None) is not None or sys.argv[:1] == ["-c"])  # (a helper's path is its caller's)
    ours = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for i, p in enumerate(sys.path):
        if not p:
            p = os.getcwd()
        elif not p.startswith("/") and os.path.exists(p):
            p = os.path.abspath(p)
        if i == 0 and from_cwd and p != ours:
            continue
        out.append(p)
    return out


def socket_path(directory: str, name: str) -> str:
    return os.path.join(directory, f"pods-{name}.sock")


# -- the launcher ----------------------------------------------------------------------------------
def _verb(argv: list[str]) -> str | None:
    """The verb: the first argument past ``--root``/``--host`` (either form, any order)."""
    i = 0
    while i < len(argv):
        if argv[i] in ("--root", "--host"):
            i += 2
        elif argv[i].startswith(("--root=", "--host=")):
            i += 1
        else:
            return argv[i]
    return None


def wanted(argv: list[str]) -> bool:
    """Whether this call may go to the helper: see the module's docstring."""
    if os.environ.get("PODS_RESIDENT", "1") == "0" or _verb(argv) in IN_PROCESS_VERBS:
        return False
    try:
        for fd in (0, 1, 2):
            os.fstat(fd)
    except OSError:
        return False
    return not os.isatty(0) and None not in (sys.stdin, sys.stdout, sys.stderr)


def main() -> NoReturn:
    """``pods``: through the resident helper when one answers, else in this process."""
    argv = sys.argv[1:]
    if wanted(argv):
        d = socket_dir()
        if d is not None:
            name, whole = stamp()
            path = socket_path(d, name)
            if len(path) <= UNIX_PATH_MAX:
                s = _connect(path)
                if s is None:  # no helper: this call runs here, the next finds one
                    _spawn(path, name)
                else:  # a helper that declines (stale) retires itself: the next call starts another
                    code = _through(s, whole)
                    if code is not None:
                        _exit_as(code)
    cli_module().main(argv)
    sys.exit(0)  # not reached: main exits


def _request(kind: str, whole: bytes) -> bytes:
    """The request: NUL-separated fields (none of them can hold a NUL: C strings)."""
    import _signal  # type: ignore[import-not-found]  # lazy: a builtin module (signal's enum costs ~1 ms)

    old = os.umask(0o022)
    os.umask(old)
    ignored = [str(s) for s in range(1, NSIG) if _is_ignored(_signal, s)]
    mask = [str(int(s)) for s in _signal.pthread_sigmask(_signal.SIG_BLOCK, [])]
    streams = ";".join(f"{int(getattr(s, 'write_through', False))}:{getattr(s, 'encoding', 'utf-8')}:"
                       f"{getattr(s, 'errors', 'strict')}" for s in (sys.stdin, sys.stdout, sys.stderr))
    head = [kind, str(old), ",".join(ignored), ",".join(mask), streams, str(len(sys.argv))]
    fields = [f.encode() for f in head] + [os.fsencode(a) for a in sys.argv]
    fields += [k + b"=" + v for k, v in os.environb.items()]
    return whole + b"\0" + b"\0".join(fields)


def _is_ignored(_signal: Any, sig: int) -> bool:
    try:
        return bool(_signal.getsignal(sig) == _signal.SIG_IGN)
    except (ValueError, OSError):
        return False


def _connect(path: str) -> Any:
    """A connected socket to the helper at ``path`` (its peer checked to be this user), or None."""
    import _socket  # lazy: start latency (not the socket module: enum, selectors)

    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        s.connect(path)
        cred = s.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    except OSError:
        s.close()
        return None
    if int.from_bytes(cred[4:8], sys.byteorder) != os.geteuid():
        s.close()
        return None
    return s


def _send(s: Any, data: bytes, fds: list[int]) -> None:
    import _socket  # lazy: start latency (as _connect)

    rights = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)
    data = MAGIC + b"\n" + str(len(data)).encode() + b"\n" + data
    sent = s.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)] if fds else [])
    while sent < len(data):
        sent += s.send(data[sent:])


def _recv(s: Any, buf: bytearray, fds: list[int]) -> bool:
    """Append what arrives to ``buf`` and the fds passed with it to ``fds``; False at EOF."""
    import _socket  # lazy: start latency (as _connect)

    data, anc, _flags, _addr = s.recvmsg(4096, _socket.CMSG_SPACE(4 * 4))
    for level, kind, raw in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds.extend(int.from_bytes(raw[i:i + 4], sys.byteorder, signed=True) for i in range(0, len(raw) - 3, 4))
    buf += data
    return bool(data)


def _through(s: Any, whole: bytes) -> int | None:
    """Run this call in the helper connected on ``s``: the child's wait status, or None when it did
    not take it (nothing ran: the caller runs it itself)."""
    try:
        cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        s.close()
        return None
    buf, fds = bytearray(), list[int]()
    try:
        _send(s, _request("run", whole), [0, 1, 2, cwd])
        os.close(cwd)
        while not buf and _recv(s, buf, fds):
            pass
    except OSError:
        buf.clear()
    if buf[:1] != b"P" or not fds:  # refused (stale) or gone before it took the request
        s.close()
        for fd in fds:
            os.close(fd)
        return None
    return _follow(s, buf, fds[0])


def _follow(s: Any, buf: bytearray, pidfd: int) -> int:
    """Forward our signals to the child (``pidfd``) until the helper reports its wait status."""
    import _signal  # lazy: a builtin module (signal's enum costs ~1 ms)

    def forward(sig: int, _frame: object) -> None:
        try:
            _signal.pidfd_send_signal(pidfd, sig)
        except OSError:
            pass

    def stop(_sig: int, _frame: object) -> None:  # Ctrl-Z: stop the child, then ourselves
        forward(19, None)  # SIGSTOP
        _signal.signal(SIGTSTP, _signal.SIG_DFL)
        os.kill(os.getpid(), SIGTSTP)
        _signal.signal(SIGTSTP, stop)
        forward(SIGCONT, None)

    for sig in FORWARDED:
        if not _is_ignored(_signal, sig):
            _signal.signal(sig, forward)
    if not _is_ignored(_signal, SIGTSTP):
        _signal.signal(SIGTSTP, stop)
    del buf[:1]
    fds: list[int] = []
    try:
        while b"\n" not in buf:
            if not _recv(s, buf, fds):
                break
    except OSError:
        pass
    if buf[:1] == b"E" and b"\n" in buf:  # the child's own exit code
        return int(buf[1:buf.index(b"\n")]) << 8
    if buf[:1] == b"X" and b"\n" in buf:  # the helper's report of its wait status
        return int(buf[1:buf.index(b"\n")])
    os.write(2, b"pods: the resident helper went away before the command ended (its exit code is unknown). "
                b"Run it again with PODS_RESIDENT=0 to run it in this process.\n")
    return 125 << 8


def _exit_as(status: int) -> NoReturn:
    """Exit as the child did: its code, or its signal (128+N where the signal does not kill us)."""
    import _signal  # lazy: a builtin module (signal's enum costs ~1 ms)

    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (3, 4, 5, 6, 7, 8, 11, 24, 25, 31):  # no core of ours for the child's crash
            _signal.signal(sig, _signal.SIG_DFL)
            _signal.pthread_sigmask(_signal.SIG_UNBLOCK, [sig])
            os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status))


def _flags() -> list[str]:
    """This interpreter's command-line flags, for a helper that must be the same interpreter."""
    f = sys.flags
    out = ["-O"] * f.optimize + ["-B"] * f.dont_write_bytecode + ["-s"] * f.no_user_site + ["-S"] * f.no_site
    out += ["-E"] * f.ignore_environment + ["-b"] * f.bytes_warning + ["-I"] * f.isolated + ["-P"] * int(f.safe_path)
    out += ["-v"] * f.verbose + ["-q"] * f.quiet
    out += [f"-W{w}" for w in sys.warnoptions]
    out += [f"-X{k}" if v is True else f"-X{k}={v}" for k, v in sys._xoptions.items()]
    return out


def _spawn(path: str, name: str) -> None:
    """Start a helper for ``path`` in the background, detached; do not wait for it (nor start one
    where a helper found that it could not serve this stamp: ``.nomatch``)."""
    if os.path.exists(path[:-len(".sock")] + ".nomatch"):
        return
    code = "import sys; sys.path[:] = sys.argv[3:]; from pytest_pods.cli.resident import serve; serve()"
    argv = [sys.executable, *_flags(), "-c", code, path, name, *_syspath()]  # here, before the chdir
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        os.chdir("/")
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, 1 << 16)
        os.execv(sys.executable, argv)
    finally:
        os._exit(127)


# -- the helper ----------------------------------------------------------------------------------
def _warm() -> dict[str, Parser]:
    """Import what the verbs need and build each verb's parser, once, before any fork."""
    import importlib  # lazy: only the helper imports ahead
    import pkgutil  # lazy: as above

    cli = cli_module()

    for resource in sorted(set(cli.VERBS.values())):
        cli.verbs_of(resource)
    parsers = {v: cli.build_parser(v) for v in cli.VERBS}
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for area in ("client", "engine", "builders", "cli"):
        for mod in pkgutil.walk_packages([os.path.join(top, area)], f"pytest_pods.{area}."):
            if mod.name.endswith("__main__"):
                continue
            try:
                importlib.import_module(mod.name)
            except Exception:  # a module that does not load here fails in the child as it would in a run
                pass
    return parsers


class _Server:
    """The helper's state: one process, one thread. A spare child, forked ahead, waits in
    ``accept`` on the socket; the one that takes a request hands its connection to the helper (to
    report the child's wait status and to notice a caller that dies) and serves it, and the helper
    forks the next spare. A request thus pays no fork (~2-4 ms for the helper's ~37 MB here)."""

    def __init__(self, path: str, listener: socket.socket, lock: int) -> None:
        import select  # lazy: only the helper serves
        import socket  # lazy: as above
        import time  # lazy: as above

        self.path, self.listener, self.lock = path, listener, lock
        st = os.stat(path)
        self.ident = (st.st_dev, st.st_ino)
        self.idle = IDLE_SECONDS
        try:
            self.idle = float(os.environ.get("PODS_RESIDENT_IDLE", IDLE_SECONDS))
        except ValueError:
            pass
        self.children: dict[int, tuple[int, socket.socket | None]] = {}  # pidfd -> (pid, its caller's conn)
        self.conns: dict[int, int] = {}  # conn fd -> the pidfd of the child serving it
        self.spare: int | None = None  # the pidfd of the child waiting in accept
        self.failed = 0  # spares that died without a request, in a row
        self.ctl, self.ctl_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.ctl.setblocking(False)
        self.poll = select.poll()
        self.poll.register(self.ctl.fileno(), select.POLLIN)
        self.rdhup = select.POLLRDHUP | select.POLLHUP | select.POLLERR
        self.pollin = select.POLLIN
        self.started = self.last = time.monotonic()
        self.clock = time.monotonic
        self.served = 0
        self.retiring = False
        self.stop_r, self.stop_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.poll.register(self.stop_r, select.POLLIN)

    def ours(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self.ident

    def retire(self) -> None:
        """Take no more requests; the running children still get their answers."""
        import signal  # lazy: only the helper serves

        if self.retiring:
            return
        self.retiring = True
        if self.ours():
            try:
                os.unlink(self.path)
            except OSError:
                pass
        self.listener.close()
        if self.spare is not None:  # a spare that took a request meanwhile has told us (taken first)
            self.take()
        if self.spare is not None:
            try:
                signal.pidfd_send_signal(self.spare, signal.SIGKILL)
            except OSError:
                pass

    def busy(self) -> bool:
        return any(conn is not None for _pid, conn in self.children.values())

    def loop(self) -> None:
        import signal  # lazy: only the helper serves

        self.fork_spare()
        while self.children or not self.retiring:
            for fd, _ev in self.poll.poll(1000):
                if fd == self.stop_r:
                    self.retire()
                elif fd == self.ctl.fileno():
                    self.take()
                elif fd in self.children:
                    self.take()  # what the child said before it exited comes first
                    self.reap(fd)
                elif fd in self.conns:  # the caller died: its command dies with it, as in its own process
                    pidfd = self.conns.pop(fd)
                    self.poll.unregister(fd)
                    try:
                        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                    except OSError:
                        pass
            if not self.retiring and (not self.ours() or (not self.busy() and self.clock() - self.last > self.idle)):
                self.retire()
        try:
            os.unlink(self.path + ".lock")
        except OSError:
            pass

    def fork_spare(self) -> None:
        try:
            pid = os.fork()
        except OSError:  # no fork now (a process limit): callers queue until one is possible
            return
        if pid == 0:
            self.wait_for_request()
        pidfd = os.pidfd_open(pid)
        self.children[pidfd] = (pid, None)
        self.spare = pidfd
        self.poll.register(pidfd, self.pollin)

    def take(self) -> None:
        """The spares' messages: ``T<pid>`` with the connection it took."""
        import socket  # lazy: only the helper serves

        while True:
            try:
                msg, anc, _flags, _addr = self.ctl.recvmsg(64, socket.CMSG_SPACE(4))
            except BlockingIOError:
                return
            fds = [int.from_bytes(raw[:4], sys.byteorder, signed=True) for level, what, raw in anc
                   if level == socket.SOL_SOCKET and what == socket.SCM_RIGHTS]
            pid = int(msg[1:]) if msg[:1] == b"T" and msg[1:].isdigit() else -1
            pidfd = next((k for k, (p, _c) in self.children.items() if p == pid), None)
            if pidfd is None or not fds:
                for fd in fds:
                    os.close(fd)
                continue
            conn = socket.socket(fileno=fds[0])
            self.children[pidfd] = (pid, conn)
            self.conns[conn.fileno()] = pidfd
            self.poll.register(conn.fileno(), self.rdhup)
            self.served += 1
            self.last = self.clock()
            self.failed = 0
            if pidfd == self.spare:
                self.spare = None
                if not self.retiring:
                    self.fork_spare()

    def reap(self, pidfd: int) -> None:
        pid, conn = self.children.pop(pidfd)
        self.poll.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        if conn is None:  # a spare that died without a request (killed, or broken): another, a few times
            if pidfd == self.spare:
                self.spare = None
                self.failed += 1
                if self.failed > 3:
                    self.retire()
                elif not self.retiring:
                    self.fork_spare()
            return
        if self.conns.pop(conn.fileno(), None) is not None:
            self.poll.unregister(conn.fileno())
        try:
            conn.sendall(b"X%d\n" % status)
        except OSError:
            pass
        conn.close()
        self.last = self.clock()

    def wait_for_request(self) -> NoReturn:
        """In a spare child: take one request and serve it; never returns."""
        import signal  # lazy: only the helper serves
        import socket  # lazy: as above
        import struct  # lazy: as above

        code = 70
        try:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
            for fd in (self.lock, self.stop_r, self.stop_w, *self.children):
                os.close(fd)
            for _pid, other in self.children.values():
                if other is not None:
                    other.close()
            self.ctl.close()
            self.listener.setblocking(True)
            while True:
                conn, _ = self.listener.accept()
                cred = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
                if struct.unpack("3i", cred)[1] == os.geteuid():
                    break
                conn.close()  # another user: refused, nothing read
            self.listener.close()
            self.ctl_child.sendmsg([b"T%d" % os.getpid()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                                            conn.fileno().to_bytes(4, sys.byteorder))])
            self.ctl_child.close()
            code = _serve_one(conn, self)
        except BaseException:  # the helper's own fault: the caller sees no answer and runs it itself
            pass
        os._exit(code)


def _serve_one(conn: socket.socket, server: _Server) -> int:
    """Read one request from ``conn`` and answer it (in the forked child)."""
    import signal  # lazy: only the helper serves
    import socket  # lazy: as above

    os.setpgid(0, 0)
    conn.settimeout(10)
    data, anc, flags, _addr = conn.recvmsg(1 << 16, socket.CMSG_SPACE(4 * 4))
    fds: list[int] = []
    for level, what, raw in anc:
        if level == socket.SOL_SOCKET and what == socket.SCM_RIGHTS:
            fds.extend(int.from_bytes(raw[i:i + 4], sys.byteorder, signed=True) for i in range(0, len(raw) - 3, 4))
    magic, _, rest = data.partition(b"\n")
    size, _, body = rest.partition(b"\n")
    if magic != MAGIC or flags & socket.MSG_CTRUNC:
        return 2
    while len(body) < int(size):
        more = conn.recv(1 << 16)
        if not more:
            return 2
        body += more
    whole, _, fields = body.partition(b"\0")
    kind, _, _rest = fields.partition(b"\0")
    if kind == b"stop":
        os.kill(os.getppid(), signal.SIGTERM)
        conn.sendall(b"K%d\n" % os.getppid())
        return 0
    if kind == b"status":
        state = "current" if whole == SERVER_STAMP else "stale"
        conn.sendall(f"I{os.getppid()} {state} {server.served} {server.clock() - server.started:.0f}\n".encode())
        return 0
    if whole != SERVER_STAMP or len(fds) != 4:  # not ours to run (a stamp's short name is not unique)
        conn.sendall(b"S")
        os.kill(os.getppid(), signal.SIGTERM)
        return 0
    return _run(conn, fields.split(b"\0"), fds, server)


def _run(conn: socket.socket, fields: list[bytes], fds: list[int], server: _Server) -> int:
    """Become the caller's ``pods`` process and run it: the child's exit code."""
    import atexit  # lazy: only the helper serves
    import io  # lazy: as above
    import locale  # lazy: as above
    import signal  # lazy: as above
    import socket  # lazy: as above
    import time  # lazy: as above

    _kind, umask, ignored, mask, streams, argc = (f.decode() for f in fields[:6])
    argv = [os.fsdecode(a) for a in fields[6:6 + int(argc)]]
    env = fields[6 + int(argc):]
    for i, fd in enumerate(fds[:3]):
        os.dup2(fd, i)
    os.fchdir(fds[3])
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.umask(int(umask))
    os.environb.clear()
    for kv in env:
        k, _, v = kv.partition(b"=")
        os.environb[k] = v
    time.tzset()
    try:
        locale.setlocale(locale.LC_CTYPE, "")
    except locale.Error:
        pass
    ign = {int(s) for s in ignored.split(",") if s}
    for sig in range(1, signal.NSIG):
        if sig in (signal.SIGKILL, signal.SIGSTOP) or 32 <= sig < signal.SIGRTMIN:
            continue
        want: Any = signal.SIG_IGN if sig in ign else signal.SIG_DFL
        if sig == signal.SIGINT and sig not in ign:
            want = signal.default_int_handler
        if sig in (signal.SIGPIPE, signal.SIGXFSZ):
            want = signal.SIG_IGN  # as Python sets them at start
        try:
            signal.signal(sig, want)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [int(s) for s in mask.split(",") if s])
    sys.argv = argv
    (_, ein, rin), (wout, eout, rout), (_, eerr, rerr) = (s.split(":", 2) for s in streams.split(";"))
    through = wout == "1"  # python -u
    # as Python makes them at start: FileIO, a buffer (none under -u), text; stdout line-buffered
    # on a terminal, stderr always (its encodings and error handlers are the caller's)
    def writer(fd: int) -> io.BufferedWriter | io.FileIO:
        raw = io.FileIO(fd, "w", closefd=False)
        return raw if through else io.BufferedWriter(raw)

    sys.stdin = sys.__stdin__ = io.TextIOWrapper(  # type: ignore[misc]
        io.BufferedReader(io.FileIO(0, "r", closefd=False)), ein, rin, newline="\n")
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(  # type: ignore[misc]
        writer(1), eout, rout, newline="\n", line_buffering=os.isatty(1), write_through=through)
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(  # type: ignore[misc]
        writer(2), eerr, rerr, newline="\n", line_buffering=True, write_through=through)
    pidfd = os.pidfd_open(os.getpid())
    conn.sendmsg([b"P"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, pidfd.to_bytes(4, sys.byteorder))])
    os.close(pidfd)
    code = _main(argv[1:], server)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # as Python's own exit: a stdout that cannot be flushed makes it 120
            code = 120 if stream is sys.stdout else code
    # our end of the caller's files first (its pipes reach their end with the caller's exit), then
    # the code: the caller need not wait for this process's teardown and the helper's report
    # (which still comes, and alone tells a death by a signal)
    for fd in (0, 1, 2):
        try:
            os.close(fd)
        except OSError:
            pass
    try:
        conn.sendall(b"E%d\n" % (code & 0xFF))
    except OSError:
        pass
    return code


def _main(argv: list[str], server: _Server) -> int:
    """``pods ARGV`` as a fresh interpreter runs it: the exit code it would have."""
    cli = cli_module()
    try:
        cli.main(argv, parser_for=PARSERS.get)
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # as Python: the traceback, then death by SIGINT
        import signal  # lazy: as above
        import traceback  # lazy: as above

        traceback.print_exc()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        sys.excepthook(*sys.exc_info())
    return 1


SERVER_STAMP = b""
PARSERS: dict[str | None, Parser] = {}


def serve() -> None:
    """The helper's process (``sys.argv``: ``-c PATH NAME SYS.PATH...``): import ahead, bind, serve,
    exit when idle, replaced or stopped."""
    global SERVER_STAMP
    import fcntl  # lazy: only the helper serves
    import gc  # lazy: as above
    import signal  # lazy: as above
    import socket  # lazy: as above

    path, name = sys.argv[1], sys.argv[2]
    SERVER_STAMP = b"-"  # a helper: its sys.path is its caller's, as given
    PARSERS.update(_warm())
    name_now, SERVER_STAMP = stamp()
    if name_now != name:  # the package changed while we loaded it (the next call starts another), or
        # this process differs from its caller in something the stamp covers: then no caller would
        # ever find us, and each would start another; a mark stops that (`pods resident stop` clears it)
        with open(path[:-len(".sock")] + ".nomatch", "w") as f:
            f.write(f"{name_now}\n")
        return
    lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # another helper has it
        return
    tmp = path[:-len(".sock")] + ".new~"  # no longer than the path (a unix socket's is short); ours: the lock's
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(tmp)
    listener.listen(128)
    os.rename(tmp, path)
    server = _Server(path, listener, lock)

    def stop(_sig: int, _frame: object) -> None:
        os.write(server.stop_w, b"x")

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    gc.collect()
    gc.freeze()  # the children's garbage collections skip (and do not copy) the helper's objects
    server.loop()


# -- `pods resident start|stop|status` -------------------------------------------------------------
def _servers() -> Iterator[str]:
    """The helpers' sockets (and where a helper left only a ``.nomatch`` mark, its socket's name)."""
    d = socket_dir(create=False)
    if d is None:
        return
    names = {e[:-len(".nomatch")] + ".sock" if e.endswith(".nomatch") else e for e in os.listdir(d)}
    for entry in sorted(names):
        if entry.startswith("pods-") and entry.endswith(".sock"):
            yield os.path.join(d, entry)


def _ask(path: str, kind: str) -> str | None:
    s = _connect(path)
    if s is None:
        return None
    buf = bytearray()
    try:
        _send(s, _request(kind, stamp()[1]), [])
        while b"\n" not in buf and _recv(s, buf, []):
            pass
    except OSError:
        return None
    finally:
        s.close()
    return buf.partition(b"\n")[0].decode(errors="replace").strip() if buf else None


def _kib(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def add_resident(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="the resident helper that starts pods commands faster (start, stop, status)",
                       description="The resident helper: a process with pods loaded that runs each pods command "
                       "in a forked child, so commands start faster. The first pods command starts it; it exits "
                       "after PODS_RESIDENT_IDLE seconds (default 60) without work. PODS_RESIDENT=0 runs every "
                       "command in its own process instead.")
    p.add_argument("action", choices=("start", "stop", "status"),
                   help="start one for this interpreter and package; stop all of this user's; list them")


def resident(args: argparse.Namespace) -> int:
    import time  # lazy: only this verb

    if args.action == "status":
        rows = []
        for path in _servers():
            answer = _ask(path, "status")
            if answer and answer.startswith("I"):
                pid, state, served, age = answer[1:].split()
                pss, rss = _kib(int(pid), "Pss"), _kib(int(pid), "Rss")
                rows.append((pid, state, served, f"{age}s", f"{(pss or 0) / 1024:.1f}MiB", f"{(rss or 0) / 1024:.1f}MiB",
                             path))
        if not rows:
            print("no resident helper running")
            return 0
        head = ("PID", "STAMP", "SERVED", "UP", "PSS", "RSS", "SOCKET")
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        for r in [head, *rows]:
            print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        return 0
    if args.action == "stop":
        stopped = []
        for path in _servers():
            answer = _ask(path, "stop")
            if answer and answer.startswith("K"):
                stopped.append(int(answer[1:]))
            elif answer is None:  # nobody listens (a helper killed): its socket and lock go
                for leftover in (path, path + ".lock", path[:-len(".sock")] + ".nomatch"):
                    try:
                        os.unlink(leftover)
                    except OSError:
                        pass
        deadline = time.monotonic() + 10
        for helper in stopped:
            while time.monotonic() < deadline and os.path.exists(f"/proc/{helper}"):
                time.sleep(0.02)
            print(f"stopped resident helper {helper}")
        return 0
    d = socket_dir()
    if d is None:
        print("pods: resident start: no private directory for its socket ($XDG_RUNTIME_DIR/pods-resident, "
              "/run/pods-resident or /tmp/pods-resident-UID must be a directory of yours, mode 0700). "
              "Fix this and try again.", file=sys.stderr)
        return 125
    name, _whole = stamp()
    path = socket_path(d, name)
    answer = _ask(path, "status")
    if answer is None:
        _spawn(path, name)
        deadline = time.monotonic() + 30
        while answer is None and time.monotonic() < deadline:
            time.sleep(0.05)
            answer = _ask(path, "status")
    if answer is None:
        print(f"pods: resident start: the helper did not answer on {path} within 30 s", file=sys.stderr)
        return 125
    print(f"resident helper {answer[1:].split()[0]} on {path}")
    return 0


def verb_table() -> dict[str, Command]:
    """``pods resident``'s entry for the CLI's table of verbs."""
    from pytest_pods.cli.verb import Command  # lazy: start latency (typing, argparse)

    return {"resident": Command(add_resident, resident)}


def cli_module() -> ModuleType:
    """:mod:`pytest_pods.cli.main`, loaded on first use. Its first load binds the package's
    ``main`` to the module (the import system's own step); the launcher's ``main`` is put back."""
    import importlib  # lazy: start latency (the in-process run and the helper only)

    module = importlib.import_module("pytest_pods.cli.main")
    sys.modules["pytest_pods.cli"].main = main  # type: ignore[attr-defined]
    return module


def lazy_cli_attribute(name: str) -> Any:
    """``pytest_pods.cli.VERBS``/``build_parser``: the CLI's names, loaded on first use."""
    if name in ("VERBS", "build_parser"):
        return getattr(cli_module(), name)
    raise AttributeError(f"module 'pytest_pods.cli' has no attribute {name!r}")

