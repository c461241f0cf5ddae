"""``pods daemon``: the Docker Engine API over the local engine, for the tools people have.

The docker CLI, docker-py and testcontainers drive it unchanged (``DOCKER_HOST=unix://...``).
A unix socket by default, mode 0660, owned by root; TCP only with TLS client certificates.
An ordinary user's daemon (the rootless engine) serves ``$XDG_RUNTIME_DIR/pods.sock`` by default,
mode 0600 in the user's 0700 run dir; it joins the engine's user namespace (by making its Client)
before it starts any thread, and on its way out releases the namespace holder when nothing of the
root runs. With ``PODS_DAEMON_LIFELINE=FD`` (the pytest plugin's session daemon) it also stops when
that pipe's write ends are all closed (pytest and its watchdog gone).
Containers belong to their monitors, not to the daemon: it can restart without losing any, and
picks their state up from the root again. One daemon per root: a second one refuses, naming the
first's pid. SIGTERM or SIGINT stop it; SIGUSR1 writes every thread's stack to its log.
"""

from __future__ import annotations

import faulthandler
import fcntl
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from pytest_pods.client.aliases import ImageAliases, Resolver, recipe_maker
from pytest_pods.client.contract import rootless_engine
from pytest_pods.client.local import Client
from pytest_pods.daemon.containers import ContainersRouter
from pytest_pods.daemon.exec import ExecRouter
from pytest_pods.daemon.http import Server, serve_in_thread, tcp_listener, tls_context, unix_listener
from pytest_pods.daemon.images import ImagesRouter
from pytest_pods.daemon.networks import NetworksRouter
from pytest_pods.daemon.router import API_VERSION, ResourceRouter, Router
from pytest_pods.daemon.ryuk import Ryuk
from pytest_pods.daemon.system import SystemRouter
from pytest_pods.daemon.volumes import VolumesRouter
from pytest_pods.errors import DaemonError

DEFAULT_SOCKET = "/run/pytest-pods/pods.sock"
LIFELINE_ENV = "PODS_DAEMON_LIFELINE"




def default_socket() -> str:
    """Root: /run/pytest-pods/pods.sock. An ordinary user: ``$XDG_RUNTIME_DIR/pods.sock``, else
    ``/tmp/pytest-pods-UID/pods.sock`` (a 0700 directory of the user's)."""
    if not rootless_engine():
        return DEFAULT_SOCKET
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isdir(xdg) and os.access(xdg, os.W_OK | os.X_OK):
        return os.path.join(xdg, "pods.sock")
    base = f"/tmp/pytest-pods-{os.getuid()}"
    try:
        os.mkdir(base, 0o700)
    except FileExistsError:
        st = os.lstat(base)
        if not os.path.isdir(base) or os.path.islink(base) or st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise DaemonError(f"{base} is not a private directory of uid {os.getuid()}: pass --socket") from None
    return os.path.join(base, "pods.sock")


def _lifeline(fd: int) -> None:
    """Read the lifeline pipe until every write end is closed, then stop the daemon (SIGTERM)."""
    while True:
        try:
            if not os.read(fd, 64):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    os.kill(os.getpid(), signal.SIGTERM)


def _namespace_peers() -> list[bytes]:
    """The command lines of the other processes in our user namespace (rootless: the holder, its
    helpers, monitors and containers of the root, joined CLIs and watchdogs)."""
    try:
        ours = os.stat("/proc/self/ns/user")
    except OSError:
        return []
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/user")
            if (st.st_dev, st.st_ino) != (ours.st_dev, ours.st_ino):
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                out.append(f.read())
        except OSError:
            continue
    return out


def _end_children() -> None:
    """End our own child processes (the engine's fork server): at the way out they would count as
    users of the namespace, and keep its holder. Monitors are detached: not our children."""
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = f.read().rpartition(")")[2].split()[1]
        except (OSError, IndexError):
            continue
        if ppid == me:
            try:
                os.kill(int(entry), signal.SIGKILL)
                os.waitpid(int(entry), 0)
            except (OSError, ChildProcessError):
                pass


def release_rootless(client: Client, log: Callable[[str], None], wait: float = 5.0) -> None:
    """On the way out of a rootless daemon: release the root's namespace holder and helpers when
    nothing of the root runs. Monitors of just-removed containers may still be exiting, and a
    watchdog may still be sweeping: they get up to ``wait`` seconds; running containers (another
    session's) keep the holder, and we go at once."""
    _end_children()
    client.short_lived = True  # on the way out: its reap may release the engine now
    deadline = time.monotonic() + wait
    while True:
        try:
            done = client.reap()
            for line in done:
                log(line)
            if any(line.startswith("released holder") for line in done):
                return
            peers = _namespace_peers()
            if not peers or (len(peers) <= 3 and all(b"pods-holder" in p or b"pasta" in p or b"slirp4netns" in p
                                                     for p in peers)):
                return  # nothing holds the namespace, or nothing but the holder and its helpers
            watchdog = any(b"pytest_pods.watchdog" in p for p in peers)
            if not watchdog and client.containers.list():
                return  # running containers keep it: their engine releases it later
        except Exception as exc:  # the way out goes on
            log(f"release: {exc}")
            return
        if time.monotonic() > deadline:
            log("release: the namespace is still in use; the next command releases it")
            return
        time.sleep(0.1)


def _claim(root: Path, address: str = "") -> int:
    """The root's daemon lock (flock, released by the kernel if we die); holds our pid, and the
    address of our socket on the next line (a pytest session borrows a daemon serving its root)."""
    path = root / "daemon.pid"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.read(fd, 32).decode().strip() or "?"
        os.close(fd)
        raise DaemonError(f"another pods daemon (pid {other}) is serving {root}; stop it first") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n{address}\n".encode())
    return fd


def build_router(client: Client, log: Callable[[str], None] = lambda m: None) -> Router:
    """Every resource's router over one client, in one route table.
    ``PODS_DAEMON_TRACE=1`` logs each request."""
    ryuk = Ryuk(client)
    routers: list[ResourceRouter] = [SystemRouter(client), ContainersRouter(client, ryuk), ExecRouter(client),
               ImagesRouter(client), NetworksRouter(client), VolumesRouter(client)]
    return Router((r for router in routers for r in router.routes()), log,
                  trace=bool(os.environ.get("PODS_DAEMON_TRACE")))


def serve(root: str | None = None, socket_path: str | None = None, tcp: str | None = None,
          tls: tuple[str, str, str] | None = None, ready: Callable[[], None] | None = None,
          log_file: str | None = None, image_aliases: ImageAliases | None = None) -> None:
    """Serve until SIGTERM or SIGINT. ``tls`` is (cert, key, CA) and is required with ``tcp``.
    ``image_aliases``: official names served by local images (issue 17), each substitution logged
    once with both names."""
    rootless = rootless_engine()
    if socket_path is None and not tcp:
        socket_path = default_socket()  # before joining: after it, euid is 0
    client = Client(root)  # rootless: joins the namespace, which needs one thread (none started yet)
    lock = _claim(client.root, f"unix://{os.path.abspath(socket_path)}" if socket_path else "")
    logf = open(log_file, "a") if log_file else sys.stderr  # noqa: SIM115 (open until the daemon ends)

    def log(msg: str) -> None:
        try:
            logf.write(msg.rstrip() + "\n")
            logf.flush()
        except (OSError, ValueError):
            pass

    if image_aliases:
        Resolver(image_aliases, log, recipe_maker(client)).install(client)
        for name, image in image_aliases.table():
            log(f"image alias: {name} -> {image}")
    router = build_router(client, log)
    headers = {"Api-Version": API_VERSION, "Docker-Experimental": "false", "Ostype": "linux",
               "Server": "pytest-pods", "Builder-Version": "1"}
    servers = []
    try:
        if tcp:
            if not tls:
                raise DaemonError("--tcp needs --tlscert, --tlskey and --tlscacert: the API is root on this host")
            servers.append(Server(tcp_listener(tcp), router.dispatch, headers, tls=tls_context(*tls), log=log))
        if socket_path:
            servers.append(Server(unix_listener(socket_path, 0o600 if rootless else 0o660), router.dispatch, headers,
                                  log=log))
    except OSError as exc:
        os.close(lock)
        raise DaemonError(f"listen: {exc}") from None
    threads = [serve_in_thread(s) for s in servers]
    lifeline = os.environ.get(LIFELINE_ENV)
    if lifeline and lifeline.isdigit():
        threading.Thread(target=_lifeline, args=(int(lifeline),), name="lifeline", daemon=True).start()
    stop = {"now": False}

    def on_signal(sig: int, _frame: FrameType | None) -> None:
        stop["now"] = True  # signal.pause() returns: the servers are shut down below

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # every thread's stack into the log, as dockerd dumps its goroutines on SIGUSR1: what a hung
    # request waits on
    faulthandler.register(signal.SIGUSR1, file=logf, all_threads=True)
    if ready is not None:
        ready()
    log(f"pods daemon {os.getpid()} serving {client.root} on " +
        ", ".join(str(s.socket.getsockname()) for s in servers))
    try:
        while not stop["now"]:
            signal.pause()
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
        if socket_path:
            try:
                os.unlink(socket_path)
            except FileNotFoundError:
                pass
        if rootless:
            release_rootless(client, log)
        os.close(lock)
        del threads
