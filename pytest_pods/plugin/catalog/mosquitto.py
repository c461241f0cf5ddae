"""Mosquitto 2.0 (Debian 12's mosquitto), an MQTT broker fresh per test (issue 17).

The fixture ``mosquitto`` gives each test a broker of its own::

    def test_telemetry(mosquitto):
        client = mosquitto.client()             # a paho-mqtt Client, connected (pip install paho-mqtt)
        client.publish(mosquitto.topic("sensors/1"), b"21.5")
        mosquitto.pub("sensors/2", "19")         # mosquitto_pub in the container: no library needed

An MQTT broker has no namespaces to give a test: every client of a broker may subscribe to
``#`` and see every topic. ``mosquitto_container(isolation="prefix")`` shares one broker per
session (per xdist worker) and gives each test a topic prefix of its own (``mosquitto.prefix``,
``mosquitto.topic(name)``): it isolates code that builds its topics from it, no more. A broker
per test (the default, ``pool=`` to start them ahead) is the isolation that holds for any code.
"""

from __future__ import annotations

import itertools
import shlex
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

__all__ = ["Mosquitto", "mosquitto", "mosquitto_container", "mosquitto_image"]

mosquitto_image = catalogue_service("mosquitto", "pytest-pods/mosquitto:2.0")

#: What testcontainers' MosquittoContainer waits for (Mosquitto 2.x), once its listeners are open.
READY_LINE = r"mosquitto version \d+\.\d+\.\d+ running"
ISOLATION_LEVELS = ("container", "prefix")


class Mosquitto(Service):
    """A running Mosquitto broker: MQTT (3.1, 3.1.1, 5) on ``port``, anonymous access.

    ``url`` (``mqtt://host:port``) from the host, ``network_url`` from another container on its
    network; ``prefix`` is this test's topic prefix (``""`` on a broker of its own) and
    ``topic(name)`` a topic under it; ``client()`` a connected paho-mqtt ``Client``;
    ``pub()``/``sub()`` run ``mosquitto_pub``/``mosquitto_sub`` in the container (no library).
    """

    PORT = 1883

    def __init__(self, container: ContainerAPI, prefix: str = "") -> None:
        super().__init__(container)
        self.prefix = prefix
        self._clients: list[Any] = []

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def network_url(self) -> str:
        return f"mqtt://{self.network_host}:{self.network_port}"

    def topic(self, name: str) -> str:
        """``name`` (a topic or a filter with ``+``/``#``) under this test's prefix.

        :raises ValueError: an empty name, or one of the broker's own (``$SYS/...``)
        """
        if not name or name.startswith("$") or "\0" in name:
            raise ValueError(f"mosquitto topic {name!r}: give a topic such as 'sensors/1' or a filter such as "
                             "'sensors/#' (not empty, no NUL, not a $-topic of the broker's own)")
        return self.prefix + name

    def client(self, client_id: str = "", *, keepalive: int = 60, **kwargs: Any) -> Any:
        """A paho-mqtt (2.x) ``Client``, connected, its network loop started (``loop_start``);
        needs ``pip install paho-mqtt``. It does not reconnect once the broker goes, and on a
        shared broker (``isolation="prefix"``) it is disconnected after the test.

        :param kwargs: for ``paho.mqtt.client.Client`` (``protocol=MQTTProtocolVersion.MQTTv5``, ...)
        """
        from paho.mqtt.client import Client  # lazy: optional (pip install paho-mqtt)
        from paho.mqtt.enums import CallbackAPIVersion  # lazy: as above

        kwargs.setdefault("callback_api_version", CallbackAPIVersion.VERSION2)
        kwargs.setdefault("reconnect_on_failure", False)  # the loop thread ends with the broker
        c = Client(client_id=client_id, **kwargs)
        c.connect(self.host, self.port, keepalive=keepalive)
        c.loop_start()
        self._clients.append(c)
        return c

    def close(self) -> None:
        """Disconnect the clients that ``client()`` made."""
        for c in self._clients:
            c.disconnect()
            c.loop_stop()
        self._clients.clear()

    def pub(self, topic: str, payload: str = "", *, retain: bool = False, qos: int = 0) -> None:
        """Publish ``payload`` on ``topic(topic)`` with ``mosquitto_pub`` in the container.

        :raises PodsError: what ``mosquitto_pub`` says (a wildcard topic, a bad qos, ...)
        """
        self._run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.container_port), "-t", self.topic(topic),
                   "-m", payload, "-q", str(qos), *(["-r"] if retain else [])])

    def sub(self, topic: str, *, count: int = 1, timeout: int = 5) -> list[tuple[str, str]]:
        """The first ``count`` messages on ``topic(topic)`` (a filter) as (topic, payload) pairs,
        topics without the prefix, by ``mosquitto_sub`` in the container: retained ones, or
        what arrives within ``timeout`` seconds (fewer when the time is up)."""
        out = self._run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.container_port), "-t", self.topic(topic),
                         "-C", str(count), "-W", str(timeout), "-v"], ok=(0, 27))  # 27: timed out
        pairs = [line.partition(" ")[::2] for line in out.splitlines()]
        return [(t.removeprefix(self.prefix), p) for t, p in pairs]

    def _run(self, argv: list[str], ok: Sequence[int] = (0,)) -> str:
        res = self.container.exec(argv)
        if res.exit_code not in ok:
            raise PodsError(f"{argv[0]} in {self.container.name} ({shlex.join(argv[1:])}): "
                            f"{(res.stderr or res.output).decode(errors='replace').strip()}")
        return res.output.decode(errors="replace")

    def __repr__(self) -> str:
        return f"<Mosquitto {self.name} {self.url} prefix {self.prefix!r}>"


def mosquitto_container(*, scope: str = "function", image: Any = "{mosquitto_image}", isolation: str = "container",
                        command: Sequence[str] | str | None = None, pool: int = 0, **options: Any) -> Any:
    """Declare a Mosquitto fixture (its value is a :class:`Mosquitto`).

    :param isolation: ``"container"``: each test (each scope) its own broker (``pool`` brokers
        started ahead); ``"prefix"``: one broker per session (per xdist worker) and each test a
        topic prefix of its own (``test-<worker>-<n>/``), which isolates only code that uses it
    :param command: the broker's command, as the official image takes it
        (``["mosquitto", "-c", "/mosquitto/config/mosquitto.conf"]``); mount your own config
        there with ``volumes=``
    """
    if isolation not in ISOLATION_LEVELS:
        raise ValueError(f"pytest-pods: isolation={isolation!r}: use one of {', '.join(ISOLATION_LEVELS)}")
    if "warm" in options:
        raise ValueError("pytest-pods: mosquitto_container(warm=...): the recipe keeps no state between starts "
                         "(persistence false); publish retained messages in the test or in a fixture")
    options.setdefault("ports", [1883])
    options.setdefault("wait", wait.all_of(wait.log(READY_LINE), wait.tcp(1883)))
    if isolation == "container":
        return container(image=image, command=command, scope=scope, wrap=Mosquitto, pool=pool, **options)
    if pool:
        raise ValueError("pytest-pods: mosquitto_container(pool=...) needs isolation='container'")
    return per_database("mosquitto", scope, image, options,
                         lambda s, name, img, opts: _PrefixBroker(s, name, img, command, opts))


class _PrefixBroker:
    """The shared broker of prefix isolation: each test a new prefix; its clients are
    disconnected after it (nothing to clean on the broker: retained messages stay under the
    old prefix, which no later test uses)."""

    def __init__(self, s: PodsSession, fixture: str, image: str, command: Sequence[str] | str | None,
                 options: dict[str, Any]) -> None:
        opts = {k: v for k, v in options.items() if k != "wait"}
        self._s = s
        self.rec = s.start(f"{fixture} (server)", "session", image, command, wait=options["wait"], options=opts)
        self._count = itertools.count(1)

    def fresh(self) -> Mosquitto:
        return Mosquitto(self.rec.container, prefix=f"test-{self._s.worker}-{next(self._count)}/")

    def done(self, value: Mosquitto) -> None:
        value.close()

    def close(self) -> None:
        self._s.release(self.rec)


mosquitto = mosquitto_container()
