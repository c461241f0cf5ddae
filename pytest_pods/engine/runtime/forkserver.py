"""Forking engine processes (monitors, execs) safely from any caller.

Namespace setup needs a single-threaded process: ``fork`` in a threaded one (pytest, the daemon)
can copy a lock held by another thread, and some ``unshare`` flags refuse it. A single-threaded
caller (the CLI, a script) forks directly: about a millisecond. A threaded one hands the request
to a fork server: a helper process started once per engine, which imports the engine up front and
forks on request, receiving the caller's file descriptors over a unix socket (SCM_RIGHTS).

A request names a job (a function in ``JOBS``), a JSON payload and a list of fds; the job runs in
the forked child and must end in ``os._exit``. ``detach`` puts it in its own session, reparented
to init, so that it outlives the caller (monitors); otherwise it stays the caller's grandchild
(the fork server's child) and reports through its fds.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from pytest_pods.engine import linux

if TYPE_CHECKING:
    import socket
    import subprocess

Job = Callable[[dict[str, Any], list[int]], NoReturn]
JOBS: dict[str, Job] = {}
_MAX_FDS = 16


def job(name: str) -> Callable[[Job], Job]:
    """Register a function as a job the fork server may run."""

    def register(fn: Job) -> Job:
        JOBS[name] = fn
        return fn

    return register


def _load_jobs() -> None:
    from pytest_pods.engine.runtime import monitor  # noqa: F401  (registers its jobs)


def _run_child(name: str, payload: dict[str, Any], fds: list[int], detach: bool) -> NoReturn:
    """In the first forked child: detach if asked (double fork), then run the job."""
    gc.disable()  # a collection would touch, and so copy, every page shared with the parent
    try:
        fds = _keep_only(fds, detach)
        if detach:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
        JOBS[name](payload, fds)
    except BaseException:
        debug = os.environ.get("PODS_DEBUG_LOG")
        if debug:  # a job's own failures go to its status fd; this is for bugs in the job
            import traceback

            with open(debug, "a") as f:
                traceback.print_exc(file=f)
    os._exit(125)


def _keep_only(fds: list[int], detach: bool) -> list[int]:
    """Close every inherited descriptor but the job's own (fork copies them all, CLOEXEC or not).

    A monitor that kept its caller's stdout would hold a ``$(pods run -d ...)`` open forever,
    and one that kept a pytest worker's sockets would outlive them. Detached jobs get /dev/null
    as 0, 1 and 2; the job's fds are moved above 2 first so that a passed stdout survives that.
    """
    moved = [os.dup(fd) if fd <= 2 else fd for fd in fds]
    keep = set(moved)
    if detach:
        null = os.open("/dev/null", os.O_RDWR)
        for std in (0, 1, 2):
            os.dup2(null, std)
        os.close(null)
        keep |= {0, 1, 2}
    else:
        keep |= {0, 1, 2}
    for entry in os.listdir("/proc/self/fd"):
        fd = int(entry)
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    for fd in moved:
        os.set_inheritable(fd, False)
    return moved


def _fork_direct(name: str, payload: dict[str, Any], fds: list[int], detach: bool) -> int:
    pid = os.fork()
    if pid == 0:
        _run_child(name, payload, fds, detach)
    if detach:
        os.waitpid(pid, 0)  # the intermediate exits at once; its child lives on
        return 0
    return pid


class ForkServer:
    """A single-threaded helper process that forks jobs for a threaded caller."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def _ensure(self) -> socket.socket:
        import socket
        import subprocess

        if self._sock is not None and self._proc is not None and self._proc.poll() is None:
            return self._sock
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ)
        pkg_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._proc = subprocess.Popen(
            [sys.executable, "-c", f"from pytest_pods.engine.runtime.forkserver import _serve; _serve({theirs.fileno()})"],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
        theirs.close()
        self._sock = ours
        return ours

    def run(self, name: str, payload: dict[str, Any], fds: list[int], detach: bool) -> None:
        import array
        import socket

        data = json.dumps({"job": name, "payload": payload, "detach": detach}).encode()
        with self._lock:
            sock = self._ensure()
            sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else [])
            reply = sock.recv(64)
        if reply != b"ok":
            raise OSError(f"fork server: {reply.decode(errors='replace') or 'no reply'}")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            if self._proc is not None:
                self._proc.wait(timeout=5)
                self._proc = None


_server: ForkServer | None = None  # made on first use: the CLI, single-threaded, never needs it


def spawn(name: str, payload: dict[str, Any], fds: list[int], *, detach: bool) -> None:
    """Run job ``name`` in a forked process; the caller's copies of ``fds`` stay its own."""
    _load_jobs()
    if linux.thread_count() == 1:
        pid = _fork_direct(name, payload, fds, detach)
        if pid:
            _reap_later(pid)
    else:
        global _server
        if _server is None:
            _server = ForkServer()
        _server.run(name, payload, fds, detach)


def _reap_later(pid: int) -> None:
    """A non-detached direct child reports through its fds; reap it without blocking."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    _children.append(pid)
    for p in list(_children):
        try:
            if os.waitpid(p, os.WNOHANG)[0]:
                _children.remove(p)
        except ChildProcessError:
            _children.remove(p)


_children: list[int] = []


def _serve(fd: int) -> None:
    """The fork server's loop: one request, one fork, one reply; exit when the caller goes."""
    import array
    import signal
    import socket

    _load_jobs()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps our direct children
    sock = socket.socket(fileno=fd)
    while True:
        try:
            msg, anc, _flags, _addr = sock.recvmsg(1 << 20, socket.CMSG_SPACE(_MAX_FDS * 4))
        except OSError:
            return
        if not msg:
            return
        fds: list[int] = []
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                arr = array.array("i")
                arr.frombytes(data[: len(data) - (len(data) % arr.itemsize)])
                fds.extend(arr)
        try:
            req = json.loads(msg)
            pid = os.fork()
            if pid == 0:
                sock.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _run_child(req["job"], req["payload"], fds, bool(req["detach"]))
            sock.send(b"ok")
        except Exception as exc:  # a bad request must not end the server
            sock.send(f"error: {exc}".encode()[:64])
        finally:
            for f in fds:
                os.close(f)


if __name__ == "__main__":
    # run the imported module's copy: jobs register in pytest_pods.engine.runtime.forkserver, not __main__
    from pytest_pods.engine.runtime import forkserver as _module

    _module._serve(int(sys.argv[1]))
