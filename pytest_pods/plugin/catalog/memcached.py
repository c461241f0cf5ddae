"""memcached 1.6 (Debian 12's memcached), fresh per test (issue 17).

The fixture ``memcached`` gives each test a server of its own::

    def test_cache(memcached):
        memcached.client().set("k", "v")         # a pymemcache Client (pip install pymemcache)
        assert memcached.command("get k") == "VALUE k 0 1\\r\\nv\\r\\nEND"  # no library needed

memcached has no databases, users or namespaces to give a test. Its natural per-test level is
``memcached_container(isolation="flush")``: one server per session (per xdist worker, whose tests
run one at a time) and ``flush_all`` before each test, which invalidates every item at once (by
CAS, so an item a test sets in the same second is its own).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

from pytest_pods import wait
from pytest_pods.errors import PodsError
from pytest_pods.plugin.fixtures import container
from pytest_pods.plugin.services import (
    Service,
    catalogue_service,
    per_database,
)
from pytest_pods.plugin.session import PodsSession

__all__ = ["Memcached", "memcached", "memcached_container", "memcached_image"]

memcached_image = catalogue_service("memcached", "pytest-pods/memcached:1.6")

ISOLATION_LEVELS = ("container", "flush")
#: the text-protocol commands whose answer is lines up to END
_MULTI_LINE = {b"get", b"gets", b"gat", b"gats", b"stats"}
_ERRORS = (b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")


class Memcached(Service):
    """A running memcached: the text and binary protocols on ``port`` (TCP).

    ``server`` (``host:port``) from the host, ``network_server`` from another container on its
    network; ``client()`` is a pymemcache ``Client``; ``command(LINE)`` sends one text-protocol
    command (no client library) and returns the reply; ``stats()`` the server's counters.
    """

    PORT = 11211

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def network_server(self) -> str:
        return f"{self.network_host}:{self.network_port}"

    def client(self, **kwargs: Any) -> Any:
        """A pymemcache ``Client`` on this server; needs ``pip install pymemcache``."""
        from pymemcache.client.base import Client  # type: ignore[import-untyped]  # lazy: optional

        return Client((self.host, self.port), **kwargs)

    def command(self, line: str | bytes, data: bytes | None = None, timeout: float = 10) -> str:
        """Send ``line`` (and ``data`` for storage commands) and return the reply, without the
        last CRLF.

        :raises PodsError: ``ERROR``, ``CLIENT_ERROR`` or ``SERVER_ERROR``
        """
        raw = line.encode() if isinstance(line, str) else line
        # retrievals and stats answer with lines up to END; every other command with one line
        multi = raw.split(b" ", 1)[0] in _MULTI_LINE
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.sendall(raw + b"\r\n" + (data + b"\r\n" if data is not None else b""))
            reply = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
                if not reply.endswith(b"\r\n"):
                    continue
                if not multi or reply == b"END\r\n" or reply.endswith(b"\r\nEND\r\n") or reply.startswith(_ERRORS):
                    break
        text = reply.decode(errors="replace").removesuffix("\r\n")
        if text.startswith(("ERROR", "CLIENT_ERROR", "SERVER_ERROR")):
            raise PodsError(f"memcached {raw.decode(errors='replace')!r} on {self.name}: {text}")
        return text

    def stats(self) -> dict[str, str]:
        """``stats``: the server's counters by name (``curr_items``, ``get_hits``, ...)."""
        return {parts[1]: parts[2] for parts in (row.split(" ", 2) for row in self.command("stats").splitlines())
                if len(parts) == 3 and parts[0] == "STAT"}

    def __repr__(self) -> str:
        return f"<Memcached {self.name} {self.server}>"


def memcached_container(*, scope: str = "function", image: Any = "{memcached_image}", isolation: str = "container",
                        command: Sequence[str] | str | None = None, pool: int = 0, **options: Any) -> Any:
    """Declare a memcached fixture (its value is a :class:`Memcached`).

    :param isolation: ``"container"``: each test (each scope) its own server (``pool`` servers
        started ahead); ``"flush"``: one server per session (per xdist worker) and
        ``flush_all`` before each test
    :param command: memcached's arguments, as the official image takes them (``["-m", "128"]``)
    """
    if isolation not in ISOLATION_LEVELS:
        raise ValueError(f"pytest-pods: isolation={isolation!r}: use one of {', '.join(ISOLATION_LEVELS)}")
    if "warm" in options:
        raise ValueError("pytest-pods: memcached_container(warm=...): memcached keeps its items in memory only, "
                         "which a snapshot does not hold; fill it in the test or in a fixture")
    options.setdefault("ports", [11211])
    # memcached logs nothing when it starts (only with -vv): ready when the port answers
    options.setdefault("wait", wait.tcp(11211))
    if isolation == "container":
        return container(image=image, command=command, scope=scope, wrap=Memcached, pool=pool, **options)
    if pool:
        raise ValueError("pytest-pods: memcached_container(pool=...) needs isolation='container'")
    return per_database("memcached", scope, image, options,
                         lambda s, name, img, opts: _FlushedServer(s, name, img, command, opts))


class _FlushedServer:
    """The shared server of flush isolation: ``flush_all`` on the admin connection before each
    test (a test of this worker ran to its end before: they run one at a time)."""

    def __init__(self, s: PodsSession, fixture: str, image: str, command: Sequence[str] | str | None,
                 options: dict[str, Any]) -> None:
        opts = {k: v for k, v in options.items() if k != "wait"}
        self._s = s
        self.rec = s.start(f"{fixture} (server)", "session", image, command, wait=options["wait"], options=opts)
        self.server = Memcached(self.rec.container)
        self._sock = socket.create_connection((self.server.host, self.server.port), timeout=10)

    def fresh(self) -> Memcached:
        self._sock.sendall(b"flush_all\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = self._sock.recv(64)
            if not chunk:
                break
            reply += chunk
        if reply != b"OK\r\n":
            raise PodsError(f"memcached flush_all on {self.server.name}: {reply.decode(errors='replace').strip()}")
        return self.server

    def done(self, value: Memcached) -> None:
        pass  # flushed when handed out next

    def close(self) -> None:
        self._sock.close()
        self._s.release(self.rec)


memcached = memcached_container()
