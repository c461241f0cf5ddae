"""RabbitMQ 3.10 (Debian 12's rabbitmq-server), fresh per test (issue 17).

The fixture ``rabbitmq`` gives each test a broker of its own::

    def test_publish(rabbitmq):
        with rabbitmq.client() as conn:          # a pika BlockingConnection (pip install pika)
            conn.channel().queue_declare("jobs")

``rabbitmq_container(isolation="vhost")`` shares one broker per session and gives each test a
virtual host of its own with a user of its own that has permissions on that vhost only: the
broker refuses that user any other vhost, so two tests' queues and exchanges never meet. The
vhosts are made ahead (one ``rabbitmqctl import_definitions`` for several, about a second on
this machine) by a background thread, and deleted after their tests.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from typing import Any

from pytest_pods import wait
from pytest_pods.client.contract import ContainerAPI
from pytest_pods.errors import PodsError
from pytest_pods.plugin.fixtures import container
from pytest_pods.plugin.services import (
    Service,
    catalogue_service,
    environment_of,
    per_database,
)
from pytest_pods.plugin.session import PodsSession

__all__ = ["RabbitMQ", "rabbitmq", "rabbitmq_container", "rabbitmq_image"]

rabbitmq_image = catalogue_service("rabbitmq", "pytest-pods/rabbitmq:3.10")

#: What testcontainers-java's RabbitMQContainer waits for, printed once the listeners are up.
READY_LINE = r"Server startup complete"
ISOLATION_LEVELS = ("container", "vhost")


class RabbitMQ(Service):
    """A running RabbitMQ broker: AMQP on ``port``; ``user``/``password`` may use ``vhost``.

    ``url`` (``amqp://user:pass@host:port/vhost``) from the host, ``network_url`` from another
    container on its network; ``client()`` is a pika ``BlockingConnection``; ``ctl(ARGS)``
    runs ``rabbitmqctl ARGS`` in the container (about a second: an Erlang VM starts).
    """

    PORT = 5672

    def __init__(self, container: ContainerAPI, *, user: str = "guest", password: str = "guest",
                 vhost: str = "/") -> None:
        super().__init__(container)
        self.user, self.password, self.vhost = user, password, vhost

    def _url(self, host: str, port: int) -> str:
        from urllib.parse import quote  # lazy: only where a URL is asked for

        return (f"amqp://{quote(self.user, safe='')}:{quote(self.password, safe='')}@{host}:{port}/"
                f"{quote(self.vhost, safe='')}")

    @property
    def url(self) -> str:
        return self._url(self.host, self.port)

    @property
    def network_url(self) -> str:
        return self._url(self.network_host, self.network_port)

    def connection_params(self, **kwargs: Any) -> Any:
        """pika ``ConnectionParameters`` for this broker, vhost and user."""
        import pika  # type: ignore[import-untyped]  # lazy: optional (pip install pika); only for a client

        return pika.ConnectionParameters(host=self.host, port=self.port, virtual_host=self.vhost,
                                         credentials=pika.PlainCredentials(self.user, self.password), **kwargs)

    def client(self, **kwargs: Any) -> Any:
        """A pika ``BlockingConnection`` (use it as a context manager); needs ``pip install pika``."""
        import pika  # lazy: optional (pip install pika); only for a client

        return pika.BlockingConnection(self.connection_params(**kwargs))

    def ctl(self, *args: str) -> str:
        """Run ``rabbitmqctl ARGS`` in the container; its output, stripped."""
        res = self.container.exec(["rabbitmqctl", *args])
        if res.exit_code != 0:
            raise PodsError(f"rabbitmqctl in {self.container.name}: "
                            f"{(res.stderr or res.output).decode(errors='replace').strip()}")
        return res.output.decode().strip()

    def __repr__(self) -> str:
        return f"<RabbitMQ {self.name} {self.host}:{self.port} vhost {self.vhost!r}>"


def _identity(options: dict[str, Any]) -> dict[str, str]:
    env = environment_of(options)
    return {"user": env.get("RABBITMQ_DEFAULT_USER") or "guest",
            "password": env.get("RABBITMQ_DEFAULT_PASS") or "guest",
            "vhost": env.get("RABBITMQ_DEFAULT_VHOST") or "/"}


def rabbitmq_container(*, scope: str = "function", image: Any = "{rabbitmq_image}", isolation: str = "container",
                       warm: Callable[[RabbitMQ], None] | None = None, pool: int = 0, **options: Any) -> Any:
    """Declare a RabbitMQ fixture (its value is a :class:`RabbitMQ`).

    :param isolation: ``"container"``: each test (each scope) its own broker (from the warm
        snapshot when ``warm`` is given; ``pool`` brokers started ahead); ``"vhost"``: one
        broker per session (per xdist worker) and each test its own vhost and user, which the
        broker allows on that vhost only
    """
    if isolation not in ISOLATION_LEVELS:
        raise ValueError(f"pytest-pods: isolation={isolation!r}: use one of {', '.join(ISOLATION_LEVELS)}")
    options.setdefault("ports", [5672])
    port = int(environment_of(options).get("RABBITMQ_NODE_PORT") or 5672)
    options.setdefault("wait", wait.all_of(wait.log(READY_LINE), wait.tcp(port)))
    identity = _identity(options)
    if isolation == "container":
        return container(image=image, scope=scope, wrap=lambda c: RabbitMQ(c, **identity), warm=warm, pool=pool,
                         **options)
    if warm is not None or pool:
        raise ValueError("pytest-pods: rabbitmq_container(warm=/pool=) needs isolation='container'")
    return per_database("rabbitmq", scope, image, options,
                         lambda s, name, img, opts: _VhostBroker(s, name, img, opts))


class _VhostBroker:
    """The shared broker of vhost isolation: vhosts with their users made ``AHEAD`` at a time
    by one ``rabbitmqctl import_definitions`` (the Erlang VM's start is most of its second),
    deleted after their tests by another thread."""

    AHEAD = 4

    def __init__(self, s: PodsSession, fixture: str, image: str, options: dict[str, Any]) -> None:
        opts = {k: v for k, v in options.items() if k != "wait"}
        self._s = s
        self.rec = s.start(f"{fixture} (server)", "session", image, wait=options["wait"], options=opts)
        self.admin = RabbitMQ(self.rec.container, **_identity(opts))
        self._count = 0
        self._handed = 0  # vhosts handed to tests (self._count: asked of the maker thread)
        self._lock = threading.Lock()
        self._ready: queue.Queue[str | BaseException] = queue.Queue()
        self._batches: queue.Queue[list[str] | None] = queue.Queue()
        self._drops: queue.Queue[str | None] = queue.Queue()
        self._ask(self.AHEAD)
        self._threads = [threading.Thread(target=self._make, daemon=True, name="pods-rabbitmq-vhosts"),
                         threading.Thread(target=self._drop, daemon=True, name="pods-rabbitmq-drops")]
        for t in self._threads:
            t.start()

    def _ask(self, n: int) -> None:
        names = []
        for _ in range(n):
            self._count += 1
            names.append(f"test-{self._s.worker}-{self._count}")
        self._batches.put(names)

    def _make(self) -> None:
        while (names := self._batches.get()) is not None:
            defs = {"users": [{"name": n, "password": n, "tags": ""} for n in names],
                    "vhosts": [{"name": n} for n in names],
                    "permissions": [{"user": n, "vhost": n, "configure": ".*", "write": ".*", "read": ".*"}
                                    for n in names]}
            path = f"/tmp/pods-defs-{names[0]}.json"
            res = self.rec.container.exec(["sh", "-c", 'printf %s "$1" > "$2" && rabbitmqctl -q import_definitions "$2"'
                                           ' && rm -f "$2"', "_", json.dumps(defs), path])
            for n in names:
                if res.exit_code == 0:
                    self._ready.put(n)
                else:
                    self._ready.put(PodsError(f"rabbitmq vhost {n}: {res.output.decode(errors='replace').strip()}"))

    def _drop(self) -> None:
        while (name := self._drops.get()) is not None:
            self.rec.container.exec(["sh", "-c", 'rabbitmqctl -q delete_vhost "$1"; rabbitmqctl -q delete_user "$1"',
                                     "_", name])

    def fresh(self) -> RabbitMQ:
        with self._lock:
            self._handed += 1
            if self._count - self._handed < self.AHEAD // 2:
                self._ask(self.AHEAD)  # the next tests', made while this one runs
        got = self._ready.get(timeout=self._s.timeout)
        if isinstance(got, BaseException):
            raise got
        return RabbitMQ(self.rec.container, user=got, password=got, vhost=got)

    def done(self, value: RabbitMQ) -> None:
        self._drops.put(value.vhost)

    def close(self) -> None:
        self._batches.put(None)
        while True:  # the broker goes with its vhosts: no need to delete those still queued
            try:
                self._drops.get_nowait()
            except queue.Empty:
                break
        self._drops.put(None)
        for t in self._threads:
            t.join(timeout=60)
        self._s.release(self.rec)


rabbitmq = rabbitmq_container()
