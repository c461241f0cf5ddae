"""etcd 3.4 (Debian 12's etcd-server), a key-value store fresh per test (issue 17).

The fixture ``etcd`` gives each test a server of its own::

    def test_config(etcd):
        etcd.put("feature/x", "on")              # the v3 API's JSON gateway: no library needed
        assert etcd.get("feature/x") == b"on"
        connect_my_app(etcd.url)                 # http://127.0.0.1:PORT (client port 2379)

etcd has no namespaces a server enforces on a client without authentication.
``etcd_container(isolation="prefix")`` shares one server per session (per xdist worker) and
gives each test a key prefix of its own (``etcd.prefix``, ``etcd.key(name)``; ``put``/``get``/
``delete``/``keys`` use it), whose keys are deleted after the test by one range delete: it
isolates code that builds its keys from the prefix, no more. A server per test (the default,
``pool=`` to start them ahead) is the isolation that holds for any code.
"""

from __future__ import annotations

import base64
import itertools
import json
import urllib.error
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

__all__ = ["Etcd", "etcd", "etcd_container", "etcd_image"]

etcd_image = catalogue_service("etcd", "pytest-pods/etcd:3.4")

#: etcd's line once its client listener serves (embed: "ready to serve client requests").
READY_LINE = r"ready to serve client requests"
ISOLATION_LEVELS = ("container", "prefix")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _range_end(prefix: bytes) -> bytes:
    """The end of the range of keys that start with ``prefix`` (etcdctl's ``--prefix``)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"  # every key


class Etcd(Service):
    """A running etcd: the v3 API (gRPC and its JSON gateway ``/v3/...``) on ``port`` (2379).

    ``url`` (``http://host:port``) from the host, ``network_url`` from another container on its
    network; ``prefix`` is this test's key prefix (``""`` on a server of its own) and
    ``key(name)`` puts a key under it. ``put``/``get``/``delete``/``keys`` use the JSON gateway
    (no client library) under the prefix; ``api(path, body)`` posts any other v3 request.
    """

    PORT = 2379

    def __init__(self, container: ContainerAPI, prefix: str = "") -> None:
        super().__init__(container)
        self.prefix = prefix

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def network_url(self) -> str:
        return f"http://{self.network_host}:{self.network_port}"

    def key(self, name: str) -> str:
        """``name`` under this test's prefix."""
        return self.prefix + name

    def api(self, path: str, body: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """POST ``body`` (JSON; keys and values base64) to the gateway's ``/v3/<path>``
        (``"kv/txn"``, ``"lease/grant"``, ...) and return its JSON answer.

        :raises PodsError: etcd's error (its ``message``)
        """
        req = urllib.request.Request(f"{self.url}/v3/{path.lstrip('/')}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                doc: dict[str, Any] = json.load(resp)
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            try:
                text = json.loads(text).get("message") or text
            except ValueError:
                pass
            raise PodsError(f"etcd /v3/{path.lstrip('/')} on {self.name}: {exc.code} {text}") from None
        return doc

    def _key(self, name: str | bytes) -> bytes:
        if not name:
            raise ValueError("etcd key: an empty key cannot be stored (etcd refuses it)")
        return self.prefix.encode() + _bytes(name)

    def put(self, key: str | bytes, value: str | bytes) -> None:
        """Store ``value`` under ``key`` (under the prefix)."""
        self.api("kv/put", {"key": _b64(self._key(key)), "value": _b64(_bytes(value))})

    def get(self, key: str | bytes) -> bytes | None:
        """The value of ``key`` (under the prefix), or None."""
        kvs = self.api("kv/range", {"key": _b64(self._key(key))}).get("kvs") or []
        return base64.b64decode(kvs[0].get("value", "")) if kvs else None

    def delete(self, key: str | bytes) -> int:
        """Delete ``key`` (under the prefix); the number deleted (0 or 1)."""
        return int(self.api("kv/deleterange", {"key": _b64(self._key(key))}).get("deleted", 0))

    def keys(self, start: str = "") -> list[str]:
        """The keys under the prefix (and ``start``), without the prefix, in order."""
        first = (self.prefix + start).encode()
        body = {"key": _b64(first or b"\0"), "range_end": _b64(_range_end(first)), "keys_only": True}
        return [base64.b64decode(kv["key"]).decode(errors="replace").removeprefix(self.prefix)
                for kv in self.api("kv/range", body).get("kvs") or []]

    def __repr__(self) -> str:
        return f"<Etcd {self.name} {self.url} prefix {self.prefix!r}>"


def etcd_container(*, scope: str = "function", image: Any = "{etcd_image}", isolation: str = "container",
                   command: Sequence[str] | str | None = None, pool: int = 0, **options: Any) -> Any:
    """Declare an etcd fixture (its value is an :class:`Etcd`).

    :param isolation: ``"container"``: each test (each scope) its own server (``pool`` servers
        started ahead); ``"prefix"``: one server per session (per xdist worker) and each test a
        key prefix of its own (``test-<worker>-<n>/``), deleted after it, which isolates only code
        that uses it
    :param command: etcd's arguments, as the official images take them
        (``["--auto-compaction-retention", "1"]``); ``environment={"ETCD_...": ...}`` works too
    """
    if isolation not in ISOLATION_LEVELS:
        raise ValueError(f"pytest-pods: isolation={isolation!r}: use one of {', '.join(ISOLATION_LEVELS)}")
    if "warm" in options:
        raise ValueError("pytest-pods: etcd_container(warm=...): a snapshot of a running etcd's data "
                         "directory is not taken consistently; put the keys in the test or in a fixture")
    options.setdefault("ports", [2379])
    options.setdefault("wait", wait.all_of(wait.log(READY_LINE), wait.tcp(2379)))
    if isolation == "container":
        return container(image=image, command=command, scope=scope, wrap=Etcd, pool=pool, **options)
    if pool:
        raise ValueError("pytest-pods: etcd_container(pool=...) needs isolation='container'")
    return per_database("etcd", scope, image, options,
                         lambda s, name, img, opts: _PrefixServer(s, name, img, command, opts))


class _PrefixServer:
    """The shared server of prefix isolation: each test a new prefix, whose keys are deleted
    after it by one range delete."""

    def __init__(self, s: PodsSession, fixture: str, image: str, command: Sequence[str] | str | None,
                 options: dict[str, Any]) -> None:
        opts = {k: v for k, v in options.items() if k != "wait"}
        self._s = s
        self.rec = s.start(f"{fixture} (server)", "session", image, command, wait=options["wait"], options=opts)
        self._count = itertools.count(1)

    def fresh(self) -> Etcd:
        return Etcd(self.rec.container, prefix=f"test-{self._s.worker}-{next(self._count)}/")

    def done(self, value: Etcd) -> None:
        first = value.prefix.encode()
        try:
            value.api("kv/deleterange", {"key": _b64(first), "range_end": _b64(_range_end(first))})
        except (PodsError, OSError):
            pass  # the server is gone (stopped by the test): nothing left to delete

    def close(self) -> None:
        self._s.release(self.rec)


etcd = etcd_container()
