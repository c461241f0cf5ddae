"""Clean-up on the engine's side: a session's heartbeat on each engine it uses (issue 20).

The watchdog (:mod:`pytest_pods.watchdog`) removes what a killed pytest made, but it runs beside
pytest: when the runner itself goes (a CI machine lost, the watchdog killed too), containers on
a remote engine would stay there for good. So a session also keeps a heartbeat *on the engine*,
by the Ryuk protocol that testcontainers uses: a ``testcontainers/ryuk`` container publishes
port 8080; the session connects, sends one filter line (``label=pytest-pods.owner=<owner>&
label=pytest-pods.session=<run>``: both must hold),
reads ``ACK`` and keeps the connection open for its whole life. When the connection has been
closed for the reconnection timeout (:data:`HEARTBEAT_TIMEOUT`, ``RYUK_RECONNECTION_TIMEOUT``),
the engine removes every container, network and volume carrying that label.

``pods daemon`` answers that container with a built-in stand-in (:mod:`pytest_pods.daemon.ryuk`,
no image needed); a real Docker host runs the Ryuk image when it has it. Where it has not (no
image, and Docker Hub unreachable), nothing is pulled: the report header says so, and the next
session's sweep removes what a dead one left there (owners on this host are judged by pid).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass

from pytest_pods.errors import NotFoundError, PodsError

RYUK_IMAGE_ENV = "PODS_RYUK_IMAGE"
DEFAULT_RYUK_IMAGE = "testcontainers/ryuk:0.11.0"
HEARTBEAT_TIMEOUT_ENV = "PODS_HEARTBEAT_TIMEOUT"
HEARTBEAT_TIMEOUT = 10.0
"""Seconds after the connection closed until the engine removes the session's objects (the
stand-in checks every 0.2 s, so the bound is this plus 0.2 s plus the removals)."""


def heartbeat_timeout() -> float:
    text = os.environ.get(HEARTBEAT_TIMEOUT_ENV, "")
    try:
        value = float(text.rstrip("s")) if text else HEARTBEAT_TIMEOUT
    except ValueError:
        return HEARTBEAT_TIMEOUT
    return value if value > 0 else HEARTBEAT_TIMEOUT


@dataclass
class Heartbeat:
    """One session's heartbeat on one engine: ``start()`` returns None when it beats, else why not."""

    host: str
    line: str  # the filter line ("label=k=v&label=k2=v2"): what the engine removes when the beat stops
    name: str  # the Ryuk container's name on the engine
    sock: socket.socket | None = None
    container_id: str = ""
    reason: str = ""

    def start(self) -> str | None:
        from pytest_pods.client.remote import RemoteClient  # lazy: only with a remote engine

        timeout = heartbeat_timeout()
        image = os.environ.get(RYUK_IMAGE_ENV) or DEFAULT_RYUK_IMAGE
        try:
            client = RemoteClient(self.host)
            # a real Ryuk talks to its engine through the engine's socket; ours needs none
            ctr = client.containers.create(
                image, name=self.name, ports=["8080/tcp"], privileged=True,
                volumes=["/var/run/docker.sock:/var/run/docker.sock"],
                environment={"RYUK_RECONNECTION_TIMEOUT": f"{timeout:g}s", "RYUK_PORT": "8080"},
                labels={"org.testcontainers.ryuk": "true"}, auto_remove=True)
        except NotFoundError:
            self.reason = (f"no Ryuk on {self.host} (image {image} not there): what a killed session leaves there "
                           "is removed by the next session's sweep")
            return self.reason
        except PodsError as exc:
            self.reason = f"no heartbeat on {self.host}: {exc}"
            return self.reason
        self.container_id = ctr.id
        try:
            ctr.start()
            addr = ctr.address(8080)
            if _loopback(addr[0]) and not _loopback(client.address_host):
                raise OSError(f"its Ryuk listens on {addr[0]}, the engine's own loopback, not reachable from here")
            sock = _connect(addr)
            sock.sendall(f"{self.line}\n".encode())
            if not sock.recv(16).startswith(b"ACK"):
                sock.close()
                raise OSError("Ryuk did not acknowledge the filter")
        except (PodsError, OSError) as exc:
            with contextlib.suppress(PodsError):
                ctr.remove(force=True)
            self.reason = f"no heartbeat on {self.host}: {exc}"
            return self.reason
        self.sock = sock
        return None

    def stop(self) -> None:
        """A clean end: the session removed what it made; closing lets the Ryuk go (it prunes nothing left)."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _connect(addr: tuple[str, int]) -> socket.socket:
    """Connect, retrying briefly: a real Ryuk needs a moment after its start to listen."""
    last: OSError | None = None
    for _ in range(50):
        try:
            sock = socket.create_connection(addr, timeout=5)
            sock.settimeout(10)
            # the kernel closes it when this process dies: that is the heartbeat stopping
            sock.set_inheritable(False)
            return sock
        except OSError as exc:
            last = exc
            time.sleep(0.1)
    assert last is not None
    raise last


def ryuk_note(host: str) -> str | None:
    """For the report header: None where ``host`` can keep a heartbeat (a ``pods daemon``, or a
    Docker host with the Ryuk image), else what happens instead."""
    from pytest_pods.client.remote import RemoteClient  # lazy: only with a remote engine

    image = os.environ.get(RYUK_IMAGE_ENV) or DEFAULT_RYUK_IMAGE
    try:
        client = RemoteClient(host)
        version = client.request("GET", "/version", timeout=10)
        if isinstance(version, dict) and (version.get("Platform") or {}).get("Name") == "pytest-pods":
            return None  # the daemon's Ryuk stand-in
        client.images.get(image)
        return None
    except NotFoundError:
        return (f"no Ryuk on {host} (image {image} not there): what a killed session leaves there is removed by "
                "the next session's sweep")
    except PodsError:
        return None  # unreachable: the engine check says so
