"""A built-in stand-in for testcontainers' Ryuk, so unmodified testcontainers runs here.

testcontainers starts a ``testcontainers/ryuk`` container, reads its published port 8080,
connects, and sends filter lines (``label=org.testcontainers.session-id=<id>``; several filters
of one line, ``&``-joined, must all hold); Ryuk answers ``ACK`` to each. When every connection has closed and none came back within the reconnection
timeout (``RYUK_RECONNECTION_TIMEOUT``, 10 s), it removes every container, network and volume
that matches a filter. Here that container is virtual: the daemon answers create, start,
inspect, logs, wait, kill and remove for it, and the "container" is a listener thread in the
daemon (no image to pull, no socket to mount).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from typing import Any
from urllib.parse import unquote_plus

from pytest_pods.client.local import Client
from pytest_pods.daemon.filters import labels_match
from pytest_pods.errors import ConflictError, NotFoundError, PodsError

#: the image testcontainers starts its Ryuk from (any registry, tag or digest)
RYUK_IMAGE = re.compile(r"(^|/)testcontainers/ryuk(:|@|$)")


def _duration(text: str, default: float) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", text or "")
    if not m:
        return default
    value = float(m.group(1))
    return value / 1000 if m.group(2) == "ms" else value * 60 if m.group(2) == "m" else value


class _Reaper:
    def __init__(self, ryuk: Ryuk, cid: str, name: str, env: dict[str, str]) -> None:
        self.ryuk, self.id, self.name = ryuk, cid, name
        self.timeout = _duration(env.get("RYUK_RECONNECTION_TIMEOUT", ""), 10.0)
        self.created = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
        self.filters: set[str] = set()
        self.running = False
        self.exit_code = 0
        self.done = threading.Event()
        self._conns = 0
        self._last_close = 0.0
        self._lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.port = 0

    def start(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.running = True
        threading.Thread(target=self._accept, daemon=True, name="pods-ryuk").start()
        threading.Thread(target=self._watch, daemon=True, name="pods-ryuk-watch").start()

    def _accept(self) -> None:
        assert self.sock is not None
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self._conns += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True, name="pods-ryuk-conn").start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                data = conn.recv(4096)
                if not data:
                    break
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    text = line.decode(errors="replace").strip()
                    if text:
                        with self._lock:
                            self.filters.add(text)
                        conn.sendall(b"ACK\n")
        except OSError:
            pass
        finally:
            conn.close()
            with self._lock:
                self._conns -= 1
                self._last_close = time.monotonic()

    def _watch(self) -> None:
        """Prune once nobody has been connected for the reconnection timeout (after a first
        connection; a Ryuk nobody ever connects to waits, as the real one does for a minute)."""
        first_deadline = time.monotonic() + 60
        while self.running:
            time.sleep(0.2)
            with self._lock:
                idle = self._conns == 0 and self._last_close and time.monotonic() - self._last_close >= self.timeout
                never = self._conns == 0 and not self._last_close and time.monotonic() > first_deadline
            if idle or never:
                self.prune()
                self.stop()
                return

    def matches(self, labels: dict[str, str]) -> bool:
        """Ryuk's rule: a filter line is a query string (``label=k=v&label=k2=v2``) whose
        filters all hold; an object matching any line goes."""
        return any(bool(line) and labels_match(labels, line) for line in self._label_lines())

    def _label_lines(self) -> list[list[str]]:
        return [[unquote_plus(f)[len("label="):] for f in line.split("&") if unquote_plus(f).startswith("label=")]
                for line in self.filters]

    def prune(self) -> None:
        client = self.ryuk.client
        if not any(self._label_lines()):
            return
        for st in client.containers.states(all=True):
            if self.matches(st.get("labels") or {}):
                with contextlib.suppress(Exception):
                    client.containers.remove(st["id"], force=True)
        try:
            nets = client.networks.list(create_default=False)
        except (PodsError, OSError):
            nets = []  # one vanished while listed: the next reaper's turn
        for net in nets:
            if self.matches(net.get("Labels") or {}):
                with contextlib.suppress(Exception):
                    client.networks.remove(net["Id"])
        for vol in client.volumes.list():
            if self.matches(vol.get("Labels") or {}):
                with contextlib.suppress(Exception):
                    client.volumes.remove(vol["Name"], force=True)

    def stop(self) -> None:
        self.running = False
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept thread: close alone does not
            with contextlib.suppress(OSError):
                self.sock.close()
        self.done.set()
        self.ryuk.forget(self.id)

    def inspect(self) -> dict[str, Any]:
        status = "running" if self.running else "exited"
        ports = {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(self.port)}] if self.running else None}
        return {
            "Id": self.id, "Name": "/" + self.name, "Created": self.created, "Image": "sha256:" + "0" * 64,
            "Path": "/bin/ryuk", "Args": [], "Driver": "overlay", "Platform": "linux", "RestartCount": 0,
            "State": {"Status": status, "Running": self.running, "Paused": False, "Restarting": False,
                      "OOMKilled": False, "Dead": False, "Pid": os.getpid() if self.running else 0,
                      "ExitCode": self.exit_code, "Error": "", "StartedAt": self.created,
                      "FinishedAt": "0001-01-01T00:00:00Z"},
            "Config": {"Image": "testcontainers/ryuk", "Labels": {"org.testcontainers.ryuk": "pytest-pods"},
                       "Env": [], "Cmd": None, "Tty": False, "ExposedPorts": {"8080/tcp": {}}},
            "HostConfig": {"NetworkMode": "bridge", "AutoRemove": True, "PortBindings": {"8080/tcp": [
                {"HostIp": "", "HostPort": ""}]}},
            "NetworkSettings": {"Ports": ports, "IPAddress": "127.0.0.1", "Gateway": "127.0.0.1", "IPPrefixLen": 8,
                                "Networks": _NETWORKS},
            "Mounts": [],
        }


# the listener is the daemon's, on loopback: where testcontainers believes it runs in a container
# (a /.dockerenv) it reads the bridge network's IPAddress or Gateway from the list entry
_NETWORKS = {"bridge": {"IPAddress": "127.0.0.1", "Gateway": "127.0.0.1", "IPPrefixLen": 8, "NetworkID": "",
                        "EndpointID": "", "MacAddress": "", "Aliases": None, "Links": None, "IPAMConfig": None}}


class Ryuk:
    """The virtual Ryuk containers of one daemon, over the client (what a reaper removes; the
    engine's journal has the removals' events)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._reapers: dict[str, _Reaper] = {}

    def create(self, name: str | None, doc: dict[str, Any]) -> str:
        env = dict(str(e).split("=", 1) for e in doc.get("Env") or [] if "=" in str(e))
        if name is not None:  # a name is one container's, virtual or not (testcontainers retries with it)
            other = self._find(name)
            other_id = other.id if other is not None and other.name == name.lstrip("/") else None
            if other_id is None:
                with contextlib.suppress(NotFoundError):
                    other_id = self.client.containers.get(name.lstrip("/")).id
            if other_id is not None:
                raise ConflictError(f'Conflict. The container name "/{name.lstrip("/")}" is already in use by '
                                    f'container "{other_id}". You have to remove (or rename) that container to be '
                                    "able to reuse that name.")
        cid = os.urandom(32).hex()
        reaper = _Reaper(self, cid, name or f"ryuk-{cid[:8]}", env)
        self._reapers[cid] = reaper
        reaper.start()  # listening from create on: testcontainers reads the port right after start
        return cid

    def _find(self, ref: str) -> _Reaper | None:
        ref = ref.lstrip("/")
        for r in self._reapers.values():
            if r.id == ref or r.name == ref or (len(ref) >= 3 and r.id.startswith(ref)):
                return r
        return None

    def owns(self, ref: str) -> bool:
        return self._find(ref) is not None

    def inspect(self, ref: str) -> dict[str, Any] | None:
        r = self._find(ref)
        return r.inspect() if r is not None else None

    def wait(self, ref: str) -> int:
        r = self._find(ref)
        if r is not None:
            r.done.wait()
        return 0

    def remove(self, ref: str) -> None:
        r = self._find(ref)
        if r is not None:
            r.stop()

    def forget(self, cid: str) -> None:
        self._reapers.pop(cid, None)

    def list_rows(self) -> list[dict[str, Any]]:
        return [{"Id": r.id, "Names": ["/" + r.name], "Image": "testcontainers/ryuk", "ImageID": "sha256:" + "0" * 64,
                 "Command": "/bin/ryuk", "Created": int(time.time()), "State": "running", "Status": "Up",
                 "Ports": [{"IP": "127.0.0.1", "PrivatePort": 8080, "PublicPort": r.port, "Type": "tcp"}],
                 "Labels": {"org.testcontainers.ryuk": "pytest-pods"}, "HostConfig": {"NetworkMode": "bridge"},
                 "NetworkSettings": {"Networks": _NETWORKS}, "Mounts": []}
                for r in self._reapers.values() if r.running]
