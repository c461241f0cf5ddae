"""Forking engine processes (monitors, execs) safely from any caller.

Namespace setup needs a single-threaded process: ``fork`` in a threaded one (pytest, the daemon)
can copy a lock held by another thread, and some ``unshare`` flags refuse it. A single-threaded
caller (the CLI, a script) forks directly: about a millisecond. A threaded one hands the request
to a fork server: a helper process started once per engine, which imports the engine up front and
forks on request, receiving the caller's file descriptors over a unix socket (SCM_RIGHTS).

A request is a job (a function), a JSON payload and a list of fds; the job runs in the forked
child and must end in ``os._exit``. As with multiprocessing's forkserver, the function crosses to
the server by its module and qualified name, and the server imports that module on first use (so
later forks find it loaded): this module needs to know no job. ``detach`` puts the job in its own
session, reparented to init, so that it outlives the caller (monitors); otherwise it stays the
caller's grandchild (the fork server's child) and reports through its fds.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from pytest_pods.engine import linux

if TYPE_CHECKING:
    import socket
    import subprocess

P = TypeVar("P", bound=Mapping[str, Any])
Job = Callable[[P, list[int]], NoReturn]
"""A job: its payload (JSON) and its fds; it ends the process it runs in (``os._exit``)."""
_MAX_FDS = 16
_found: dict[tuple[str, str], Callable[[Any, list[int]], NoReturn]] = {}


def job_name(job: Callable[..., Any]) -> tuple[str, str]:
    """(module, qualified name): how a job crosses to the fork server."""
    return job.__module__, job.__qualname__


def find_job(module: str, qualname: str) -> Callable[[Any, list[int]], NoReturn]:
    """The function named so, importing its module on first use."""
    key = (module, qualname)
    if key not in _found:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        if not callable(obj):
            raise TypeError(f"fork server: {module}.{qualname} is not a function")
        _found[key] = obj
    return _found[key]


def _run_child(job: Callable[[P, list[int]], NoReturn], payload: P, fds: list[int], detach: bool) -> NoReturn:
    """In the first forked child: detach if asked (double fork), then run the job."""
    gc.disable()  # a collection would touch, and so copy, every page shared with the parent
    try:
        fds = _keep_only(fds, detach)
        if detach:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
        job(payload, fds)
    except BaseException:
        debug = os.environ.get("PODS_DEBUG_LOG")
        if debug:  # a job's own failures go to its status fd; this is for bugs in the job
            import traceback  # lazy: only with PODS_DEBUG_LOG, in a dying child

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


def _fork_direct(job: Callable[[P, list[int]], NoReturn], payload: P, fds: list[int], detach: bool) -> int:
    pid = os.fork()
    if pid == 0:
        _run_child(job, payload, fds, detach)
    if detach:
        os.waitpid(pid, 0)  # the intermediate exits at once; its child lives on
        return 0
    return pid


class ForkServer:
    """A single-threaded helper process that forks jobs for a threaded caller."""

    def __init__(self) -> None:
        import threading  # lazy: start latency (only threaded callers make a fork server)

        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def _ensure(self) -> socket.socket:
        import socket  # lazy: start latency (only threaded callers make a fork server)
        import subprocess  # lazy: start latency (as above)

        if self._sock is not None and self._proc is not None and self._proc.poll() is None:
            return self._sock
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ)
        pkg_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._proc = subprocess.Popen(
            [sys.executable, "-c", f"from pytest_pods.engine.runtime.forkserver import serve; serve({theirs.fileno()})"],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
        theirs.close()
        self._sock = ours
        return ours

    def run(self, job: Callable[[P, list[int]], NoReturn], payload: P, fds: list[int], detach: bool) -> None:
        import array  # lazy: start latency (as in _ensure)
        import socket  # lazy: start latency (as in _ensure)

        module, qualname = job_name(job)
        data = json.dumps({"module": module, "job": qualname, "payload": payload, "detach": detach}).encode()
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


def spawn(job: Callable[[P, list[int]], NoReturn], payload: P, fds: list[int], *, detach: bool) -> None:
    """Run ``job(payload, fds)`` in a forked process; the caller's copies of ``fds`` stay its own.

    ``job`` is a module-level function (a threaded caller's crosses to the fork server by name).
    """
    if linux.thread_count() == 1:
        pid = _fork_direct(job, payload, fds, detach)
        if pid:
            _reap_later(pid)
    else:
        global _server
        if _server is None:
            _server = ForkServer()
        _server.run(job, payload, fds, detach)


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


def serve(fd: int) -> None:
    """The fork server's loop (in its own process): one request, one fork, one reply; exit when
    the caller goes."""
    import array  # lazy: start latency (only the fork server's process serves)
    import signal  # lazy: start latency (as above)
    import socket  # lazy: start latency (as above)

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
            job = find_job(req["module"], req["job"])  # imported here, before the fork: once
            pid = os.fork()
            if pid == 0:
                sock.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _run_child(job, req["payload"], fds, bool(req["detach"]))
            sock.send(b"ok")
        except Exception as exc:  # a bad request must not end the server
            sock.send(f"error: {exc}".encode()[:64])
        finally:
            for f in fds:
                os.close(f)

