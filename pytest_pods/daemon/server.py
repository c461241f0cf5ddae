"""``pods daemon``: the Docker Engine API over the local engine, for the tools people have.

The docker CLI, docker-py and testcontainers drive it unchanged (``DOCKER_HOST=unix://...``).
A unix socket by default, mode 0660, owned by root; TCP only with TLS client certificates.
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
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from pytest_pods.client.local import Client
from pytest_pods.daemon.containers import ContainersRouter
from pytest_pods.daemon.events import Events
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


def _claim(root: Path) -> int:
    """The root's daemon lock (flock, released by the kernel if we die); holds our pid."""
    path = root / "daemon.pid"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.read(fd, 32).decode().strip() or "?"
        os.close(fd)
        raise DaemonError(f"another pods daemon (pid {other}) is serving {root}; stop it first") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def build_router(client: Client, log: Callable[[str], None] = lambda m: None) -> Router:
    """Every resource's router over one client and one event bus, in one route table.
    ``PODS_DAEMON_TRACE=1`` logs each request."""
    events = Events()
    ryuk = Ryuk(client, events)
    routers: list[ResourceRouter] = [SystemRouter(client, events), ContainersRouter(client, events, ryuk), ExecRouter(client),
               ImagesRouter(client), NetworksRouter(client), VolumesRouter(client)]
    return Router((r for router in routers for r in router.routes()), log,
                  trace=bool(os.environ.get("PODS_DAEMON_TRACE")))


def serve(root: str | None = None, socket_path: str | None = None, tcp: str | None = None,
          tls: tuple[str, str, str] | None = None, ready: Callable[[], None] | None = None,
          log_file: str | None = None) -> None:
    """Serve until SIGTERM or SIGINT. ``tls`` is (cert, key, CA) and is required with ``tcp``."""
    client = Client(root)
    lock = _claim(client.root)
    logf = open(log_file, "a") if log_file else sys.stderr  # noqa: SIM115 (open until the daemon ends)

    def log(msg: str) -> None:
        try:
            logf.write(msg.rstrip() + "\n")
            logf.flush()
        except (OSError, ValueError):
            pass

    router = build_router(client, log)
    headers = {"Api-Version": API_VERSION, "Docker-Experimental": "false", "Ostype": "linux",
               "Server": "pytest-pods", "Builder-Version": "1"}
    servers = []
    try:
        if tcp:
            if not tls:
                raise DaemonError("--tcp needs --tlscert, --tlskey and --tlscacert: the API is root on this host")
            servers.append(Server(tcp_listener(tcp), router.dispatch, headers, tls=tls_context(*tls), log=log))
        if socket_path or not tcp:
            servers.append(Server(unix_listener(socket_path or DEFAULT_SOCKET), router.dispatch, headers, log=log))
    except OSError as exc:
        os.close(lock)
        raise DaemonError(f"listen: {exc}") from None
    threads = [serve_in_thread(s) for s in servers]
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
        if socket_path or not tcp:
            try:
                os.unlink(socket_path or DEFAULT_SOCKET)
            except FileNotFoundError:
                pass
        os.close(lock)
        del threads
