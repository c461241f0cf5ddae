"""What testcontainers-python's own test suite (4.15, tests/core and tests/community) found when run
against ``pods daemon --image-aliases official``, each as a regression test in our own words.

- The preset served ``nginx:1.25`` but not ``nginx:alpine-slim`` or ``nginx:1.25.4-alpine-slim``
  (testcontainers' core network and image tests run those): a variant alone, which names the
  latest version's, and Alpine's ``-slim`` were not tags the preset knew.
- Its network test pings and fetches (``ping``, ``wget``) between two ``nginx:alpine-slim``
  containers: the alpine variants have busybox's tools; the recipe (Debian's nginx) had none of
  them, nor the ``curl`` that both official variants carry.
- ``registry:2`` (testcontainers' ``DockerRegistryContainer``) had a recipe with the official
  image's contract but no name in the preset.
- ``RabbitMqContainer(port=5673)`` sets ``RABBITMQ_NODE_PORT``: the official image listens there,
  the recipe kept listening on 5672 (its conf.d listener won over the variable).

The daemon of tests/compat/test_official_images.py (a root of its own, the recipes built there on
first use) runs them; testcontainers is pointed at it by tests/tc_helper.py, Ryuk off.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from base64 import b64encode
from typing import Any

import pytest

pytest.importorskip("testcontainers.core.config")
import test_official_images as official

from pytest_pods.client.aliases import ImageAliases

AliasedDaemon = official.AliasedDaemon
aliased, tc = official.aliased, official.tc


def community(module: str) -> Any:
    """testcontainers' module for a service (``testcontainers.community.X`` since 4.14)."""
    try:
        return pytest.importorskip(f"testcontainers.community.{module}")
    except pytest.skip.Exception:  # before 4.14
        return pytest.importorskip(f"testcontainers.{module}")


# -- the preset's names -----------------------------------------------------------------------
@pytest.mark.parametrize(("name", "image"), [
    ("nginx:alpine", "pytest-pods/nginx:1.22"),
    ("nginx:alpine-slim", "pytest-pods/nginx:1.22"),
    ("nginx:1.25.4-alpine-slim", "pytest-pods/nginx:1.22"),
    ("nginx:stable-alpine", "pytest-pods/nginx:1.22"),
    ("nginx:mainline", "pytest-pods/nginx:1.22"),
    ("docker.io/library/redis:bookworm", "pytest-pods/redis:7"),
    ("postgres:alpine3.20", "pytest-pods/postgres:15"),
    ("memcached:alpine", "pytest-pods/memcached:1.6"),
    ("registry:2", "pytest-pods/registry:2.8"),
    ("registry", "pytest-pods/registry:2.8"),
    ("docker.io/library/registry:2.8.3", "pytest-pods/registry:2.8"),
])
def test_the_preset_serves_variant_tags_and_the_registry(name: str, image: str) -> None:
    assert ImageAliases.parse(["official"]).target(name) == (image, False)


@pytest.mark.parametrize("name", ["nginx:alpine-perl", "nginx:perl", "postgres:16-bookworm-slim",
                                  "redis:alpine-custom", "registry:edge", "quay.io/library/registry:2"])
def test_variants_the_recipes_do_not_provide_are_not_aliased(name: str) -> None:
    assert ImageAliases.parse(["official"]).target(name) is None


# -- testcontainers, unchanged ----------------------------------------------------------------
def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_testcontainers_runs_nginx_alpine_slim_by_the_preset(tc: Any, aliased: AliasedDaemon) -> None:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import HttpWaitStrategy

    web = DockerContainer("nginx:alpine-slim").with_exposed_ports(80)
    web.waiting_for(HttpWaitStrategy(80).for_status_code(200))
    with web:
        url = f"http://{web.get_container_host_ip()}:{web.get_exposed_port(80)}/"
        status, body = http_get(url)
        assert status == 200 and b"Welcome to nginx!" in body
    assert "image alias: nginx:alpine-slim -> pytest-pods/nginx:1.22" in aliased.log_text()


def test_nginx_alpine_containers_reach_each_other_with_the_alpine_tools(tc: Any, aliased: AliasedDaemon) -> None:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    def web(alias: str, network: Any) -> Any:
        ctr = DockerContainer("nginx:alpine-slim").with_network(network).with_network_aliases(alias)
        return ctr.waiting_for(LogMessageWaitStrategy("start worker processes"))

    # testcontainers' network test pings and fetches between two of them with busybox's tools
    with Network() as net, web("front", net) as front, web("back", net) as back:
        code, out = front.exec("ping -c 1 back")
        assert code == 0 and b"64 bytes" in out, out
        code, out = back.exec("wget -qO- http://front")
        assert code == 0 and b"Welcome to nginx!" in out, out
        code, out = back.exec(["curl", "-fsS", "http://localhost/"])  # both official variants have curl
        assert code == 0 and b"Welcome to nginx!" in out, out


def test_testcontainers_registry_container_with_and_without_auth(tc: Any, aliased: AliasedDaemon) -> None:
    DockerRegistryContainer = community("registry").DockerRegistryContainer
    with DockerRegistryContainer() as open_registry:  # registry:2
        status, body = http_get(f"http://{open_registry.get_registry()}/v2/_catalog")
        assert (status, body.strip()) == (200, b'{"repositories":[]}')
    # credentials: its htpasswd file is copied in after the start, the realm and path set as variables
    with DockerRegistryContainer(username="ann", password="s3cret") as locked:
        url = f"http://{locked.get_registry()}/v2/_catalog"
        assert http_get(url)[0] == 401
        good = {"Authorization": "Basic " + b64encode(b"ann:s3cret").decode()}
        bad = {"Authorization": "Basic " + b64encode(b"ann:wrong").decode()}
        assert http_get(url, good)[0] == 200
        assert http_get(url, bad)[0] == 401
    assert "image alias: registry:2 -> pytest-pods/registry:2.8" in aliased.log_text()


def test_testcontainers_rabbitmq_on_another_node_port(tc: Any, aliased: AliasedDaemon) -> None:
    pika = pytest.importorskip("pika")
    RabbitMqContainer = community("rabbitmq").RabbitMqContainer
    with RabbitMqContainer("rabbitmq:3", port=5673) as mq:  # RABBITMQ_NODE_PORT=5673, 5673 exposed
        with pika.BlockingConnection(mq.get_connection_params()) as conn:
            ch = conn.channel()
            ch.queue_declare("q")
            ch.basic_publish("", "q", b"on 5673")
            assert ch.basic_get("q", auto_ack=True)[2] == b"on 5673"
        # inside the container, the broker listens on 5673 and no longer on 5672
        tables = mq.get_wrapped_container().exec_run(["cat", "/proc/net/tcp", "/proc/net/tcp6"]).output.decode()
        listening = {int(f[1].rsplit(":", 1)[1], 16) for f in map(str.split, tables.splitlines())
                     if len(f) > 3 and f[3] == "0A"}  # 0A: LISTEN
        assert 5673 in listening and 5672 not in listening, listening
