"""NATS 2.9 (Debian 12's nats-server), fresh per test (issue 17).

The fixture ``nats`` gives each test a server of its own::

    async def check(nats):
        nc = await nats.client()                 # a nats-py client, connected (pip install nats-py)
        sub = await nc.subscribe("orders")
        await nc.publish("orders", b"1")
        assert (await sub.next_msg(timeout=5)).data == b"1"

    def test_orders(nats):
        asyncio.run(check(nats))
        nats.publish("orders", b"2")             # the NATS text protocol: no library needed

NATS accounts are real isolation: each account has a subject space of its own, and the server
delivers nothing across accounts unless they export and import. ``nats_container(
isolation="account")`` shares one server per session (per xdist worker) and gives each test an
account of its own with a user of its own (``nats.user``/``nats.password``, in ``nats.url``),
JetStream on: its streams, key-value and object stores are the account's own too.
The accounts are added a batch at a time by a configuration reload (SIGHUP) between two tests
(never while one runs: a login during a reload is refused), and removed by a later reload after
their tests.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

from pytest_pods import wait
from pytest_pods.client.contract import ContainerAPI
from pytest_pods.errors import PodsError
from pytest_pods.plugin.fixtures import container
from pytest_pods.plugin.services import (
    Service,
    catalogue_service,
    per_database,
)
from pytest_pods.plugin.session import PodsSession

__all__ = ["Nats", "nats", "nats_container", "nats_image"]

nats_image = catalogue_service("nats", "pytest-pods/nats:2.9")

#: What testcontainers' NatsContainer waits for, once the client listener is open.
READY_LINE = r"Server is ready"
ISOLATION_LEVELS = ("container", "account")
#: a subject as PUB takes it: tokens separated by dots, no wildcards, no whitespace
_SUBJECT = re.compile(r"[^.\s*>]+(\.[^.\s*>]+)*")


class Nats(Service):
    """A running NATS server: clients on ``port``; ``user``/``password`` (None: no
    authentication) log in to ``account`` (None: the global account).

    ``url`` (``nats://[user:pass@]host:port``) from the host, ``network_url`` from another
    container on its network; ``client()`` connects nats-py (async); ``publish()`` sends one
    message by the text protocol (no library); ``varz()`` is the monitoring endpoint's ``/varz``.
    """

    PORT = 4222

    def __init__(self, container: ContainerAPI, *, user: str | None = None, password: str | None = None,
                 account: str | None = None) -> None:
        super().__init__(container)
        self.user, self.password, self.account = user, password, account

    def _url(self, host: str, port: int) -> str:
        from urllib.parse import quote  # lazy: only where a URL is asked for

        auth = f"{quote(self.user, safe='')}:{quote(self.password or '', safe='')}@" if self.user else ""
        return f"nats://{auth}{host}:{port}"

    @property
    def url(self) -> str:
        return self._url(self.host, self.port)

    @property
    def network_url(self) -> str:
        return self._url(self.network_host, self.network_port)

    @property
    def monitor_url(self) -> str:
        """The HTTP monitoring endpoint (``http://host:port``, 8222 published)."""
        host, port = self.address(8222)
        return f"http://{host}:{port}"

    async def client(self, **kwargs: Any) -> Any:
        """A nats-py client connected to this server as this test's user (``await`` it; close
        it with ``await nc.close()``); needs ``pip install nats-py``."""
        import nats  # lazy: optional (pip install nats-py); only for a client

        return await nats.connect(self.url, **kwargs)

    def publish(self, subject: str, payload: bytes | str = b"", timeout: float = 10) -> None:
        """Publish one message (CONNECT, PUB, PING: the server's PONG says it was taken).

        :raises ValueError: not a subject to publish to (empty, a wildcard, whitespace)
        :raises PodsError: the server's ``-ERR`` (``'Authorization Violation'``, ...)
        """
        if not _SUBJECT.fullmatch(subject):
            raise ValueError(f"nats subject {subject!r}: publish to tokens separated by dots ('orders.new'), "
                             "without wildcards ('*', '>') or whitespace")
        data = payload.encode() if isinstance(payload, str) else payload
        connect = {"verbose": False, "pedantic": False, "name": "pytest-pods"}
        if self.user:
            connect |= {"user": self.user, "pass": self.password or ""}
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\n"
                         + f"PUB {subject} {len(data)}\r\n".encode() + data + b"\r\nPING\r\n")
            reply = b""
            while b"PONG\r\n" not in reply and b"-ERR" not in reply:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        err = re.search(rb"-ERR ([^\r\n]*)", reply)
        if err or b"PONG\r\n" not in reply:
            why = err.group(1).decode(errors="replace") if err else "the connection closed"
            raise PodsError(f"nats publish {subject!r} on {self.name}: {why}")

    def varz(self) -> dict[str, Any]:
        """The server's ``/varz`` (version, connections, messages in and out, ...)."""
        with urllib.request.urlopen(f"{self.monitor_url}/varz", timeout=10) as resp:
            doc: dict[str, Any] = json.load(resp)
        return doc

    def __repr__(self) -> str:
        return f"<Nats {self.name} {self.host}:{self.port} account {self.account or '$G'}>"


def nats_container(*, scope: str = "function", image: Any = "{nats_image}", isolation: str = "container",
                   command: Sequence[str] | str | None = None, pool: int = 0, **options: Any) -> Any:
    """Declare a NATS fixture (its value is a :class:`Nats`).

    :param isolation: ``"container"``: each test (each scope) its own server (``pool`` servers
        started ahead); ``"account"``: one server per session (per xdist worker) and each test
        an account of its own, with a user that logs in to it only
    :param command: nats-server's arguments, as the official image takes them (``["-js"]``,
        ``["--config", "/etc/nats/nats-server.conf", "-DV"]``)
    """
    if isolation not in ISOLATION_LEVELS:
        raise ValueError(f"pytest-pods: isolation={isolation!r}: use one of {', '.join(ISOLATION_LEVELS)}")
    if "warm" in options:
        raise ValueError("pytest-pods: nats_container(warm=...): core NATS keeps no messages (nothing to "
                         "snapshot); publish in the test or in a fixture")
    options.setdefault("ports", [4222, 8222])
    options.setdefault("wait", wait.all_of(wait.log(READY_LINE), wait.tcp(4222)))
    if isolation == "container":
        return container(image=image, command=command, scope=scope, wrap=Nats, pool=pool, **options)
    if pool:
        raise ValueError("pytest-pods: nats_container(pool=...) needs isolation='container'")
    if command is not None:
        raise ValueError("pytest-pods: nats_container(isolation='account', command=...): the account server "
                         "runs a configuration of its own; use isolation='container' for your arguments")
    return per_database("nats", scope, image, options, lambda s, name, img, opts: _AccountServer(s, name, img, opts))


#: the account server's configuration (the official image's ports) and where it lives
_CONF = "/etc/nats/pods-accounts.conf"
_RELOADED = re.compile(r"\[INF\] Reloaded server configuration|\[ERR\] Failed to reload[^\n]*")


def _config(accounts: Sequence[str]) -> str:
    """Each account with JetStream (its streams, key-value and object stores are its own)."""
    rows = "".join(f'  "{a}": {{ jetstream: enabled, users: [ {{ user: "{a}", password: "{a}" }} ] }}\n'
                   for a in accounts)
    return f'port: 4222\nmonitor_port: 8222\njetstream {{ store_dir: "/tmp/nats" }}\naccounts {{\n{rows}}}\n'


class _AccountServer:
    """The shared server of account isolation: accounts made ``AHEAD`` at a time by one
    configuration reload; the accounts of the tests that ended are left out of it (which closes
    their connections).

    A reload happens between two tests only, never while one runs: nats-server refuses a client
    that logs in during a reload ("authentication error"), and tests run one at a time on a
    worker. It starts in a thread at the end of the test that leaves fewer than ``AHEAD // 2``
    accounts, and the next test's setup waits for it if it has not finished.
    """

    AHEAD = 16

    def __init__(self, s: PodsSession, fixture: str, image: str, options: dict[str, Any]) -> None:
        opts = {k: v for k, v in options.items() if k != "wait"}
        self._s = s
        self._count = 0
        self._live: list[str] = self._names(self.AHEAD)  # in the server's configuration
        self._ready: list[str] = list(self._live)
        self._ended: list[str] = []  # accounts whose tests ended: left out of the next reload
        self._reloading: threading.Thread | None = None
        self._failed: BaseException | None = None
        script = f'printf %s "$1" > {_CONF} && exec nats-server --config {_CONF}'
        self.rec = s.start(f"{fixture} (server)", "session", image, ["sh", "-c", script, "sh", _config(self._live)],
                           wait=options["wait"], options=opts)

    def _names(self, n: int) -> list[str]:
        names = []
        for _ in range(n):
            self._count += 1
            names.append(f"test-{self._s.worker}-{self._count}")
        return names

    def _more(self) -> None:
        new = self._names(self.AHEAD)
        ended, self._ended = set(self._ended), []
        live = [a for a in self._live if a not in ended] + new
        try:
            self._reload(_config(live))
        except BaseException as exc:  # the next test fails with it
            self._failed = exc
            return
        self._live = live
        self._ready.extend(new)

    def _reload(self, text: str) -> None:
        ctr = self.rec.container
        before = len(_RELOADED.findall(ctr.logs().decode(errors="replace")))
        res = ctr.exec(["sh", "-c", f'printf %s "$1" > {_CONF}.new && mv {_CONF}.new {_CONF} && kill -HUP 1', "sh",
                        text])
        if res.exit_code != 0:
            raise PodsError(f"nats accounts on {ctr.name}: {(res.stderr or res.output).decode(errors='replace')}")
        deadline = time.monotonic() + self._s.timeout
        while time.monotonic() < deadline:
            found = _RELOADED.findall(ctr.logs().decode(errors="replace"))
            if len(found) > before:
                if found[-1].startswith("[ERR]"):
                    raise PodsError(f"nats accounts on {ctr.name}: {found[-1]}")
                return
            time.sleep(0.002)
        raise PodsError(f"nats accounts on {ctr.name}: no reload logged within {self._s.timeout:g} s")

    def _wait(self) -> None:
        if self._reloading is not None:
            self._reloading.join()
            self._reloading = None
        if self._failed is not None:
            exc, self._failed = self._failed, None
            raise PodsError(f"nats account for a test: {exc}") from exc

    def fresh(self) -> Nats:
        self._wait()
        if not self._ready:
            self._more()
            self._wait()
        name = self._ready.pop(0)
        return Nats(self.rec.container, user=name, password=name, account=name)

    def done(self, value: Nats) -> None:
        self._ended.append(str(value.account))
        if len(self._ready) < self.AHEAD // 2 and self._reloading is None:
            self._reloading = threading.Thread(target=self._more, daemon=True, name="pods-nats-accounts")
            self._reloading.start()

    def close(self) -> None:
        if self._reloading is not None:
            self._reloading.join(timeout=60)
        self._s.release(self.rec)


nats = nats_container()
