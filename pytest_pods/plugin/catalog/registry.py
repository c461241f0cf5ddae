"""A container registry (issue 17): Debian 12's docker-registry (Distribution 2.8) with the
official ``registry:2`` image's contract, so tests exercise their own push/pull code.

The fixture ``registry`` gives each test its own empty registry (filesystem storage: a start is
cheap); ``registry_container(users={"alice": "pw"})`` turns on htpasswd auth::

    def test_publish(registry, pods):
        pods.client.images.push("busybox:latest", registry.ref("tools/busybox:1"), insecure=True)
        assert registry.tags("tools/busybox") == ["1"]
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from pytest_pods import wait
from pytest_pods.errors import PodsError
from pytest_pods.plugin.fixtures import Pods, container, fail_fixture, fixture_name, session_of
from pytest_pods.plugin.services import SERVICE_IMAGES, Service, service_image
from pytest_pods.plugin.session import IMAGE_PROVIDERS, ImageRef

__all__ = ["Registry", "registry", "registry_container", "registry_image"]

SERVICE_IMAGES["registry"] = "pytest-pods/registry:2.8"
IMAGE_PROVIDERS[SERVICE_IMAGES["registry"]] = lambda s, fixture: service_image(s, "registry", fixture)

_READY = wait.all_of(wait.log(r"listening on "), wait.tcp(5000))


class Registry(Service):
    """A running registry (plain HTTP): ``address_text`` (``127.0.0.1:PORT``) and ``ref(name)``
    from the host, ``network_address`` from another container on its network, ``catalog()`` and
    ``tags(repo)`` through the Registry HTTP API v2; ``username``/``password`` when auth is on."""

    PORT = 5000

    def __init__(self, container: Any, users: Mapping[str, str] | None = None) -> None:
        super().__init__(container)
        first = next(iter((users or {}).items()), None)
        self.username: str | None = first[0] if first else None
        self.password: str | None = first[1] if first else None

    @property
    def address_text(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def network_address(self) -> str:
        return f"{self.network_host}:{self.network_port}"

    @property
    def url(self) -> str:
        return f"http://{self.address_text}"

    @property
    def network_url(self) -> str:
        return f"http://{self.network_address}"

    def ref(self, name: str) -> str:
        """``HOST:PORT/name`` for pushing and pulling from the host."""
        return f"{self.address_text}/{name.lstrip('/')}"

    def api(self, path: str) -> Any:
        """``GET /v2/path`` (as the first user when auth is on); its JSON."""
        req = urllib.request.Request(f"{self.url}/v2/{path.lstrip('/')}")
        if self.username is not None:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            with exc:
                raise PodsError(f"registry {self.name}: GET /v2/{path}: {exc.code} "
                                f"{exc.read().decode(errors='replace').strip()}") from None

    def catalog(self) -> list[str]:
        return list(self.api("_catalog").get("repositories") or [])

    def tags(self, repo: str) -> list[str]:
        """The repository's tags (empty for a repository the registry does not hold)."""
        try:
            return sorted(self.api(f"{repo}/tags/list").get("tags") or [])
        except PodsError as exc:
            if "NAME_UNKNOWN" in str(exc):
                return []
            raise

    def __repr__(self) -> str:
        return f"<Registry {self.name} {self.url}>"


def registry_container(*, scope: str = "function", image: Any = "{registry_image}", isolation: str = "container",
                       users: Mapping[str, str] | None = None, warm: Callable[[Registry], None] | None = None,
                       pool: int = 0, **options: Any) -> Any:
    """Declare a registry fixture (its value is a :class:`Registry`).

    :param users: ``{"user": "password"}``: htpasswd (bcrypt) auth for these users, as the
        official image's ``REGISTRY_AUTH=htpasswd`` (names and passwords without spaces or ``:``)
    :param isolation: only ``"container"``: an empty registry per test (per scope)
    """
    if isolation != "container":
        raise ValueError(f"pytest-pods: registry_container(isolation={isolation!r}): a registry has only "
                         "'container' isolation (an empty registry per test)")
    if users:
        bad = [u for u, p in users.items() if not u or any(c in f"{u}{p}" for c in " \t\n:")]
        if bad:
            raise ValueError(f"pytest-pods: registry_container(users=...): {bad[0]!r}: names and passwords "
                             "may not hold spaces or ':'")
        env = options.pop("environment", options.pop("env", None)) or {}
        entries = " ".join(f"{u}:{p}" for u, p in users.items())
        options["environment"] = ({**env, "PODS_REGISTRY_USERS": entries} if isinstance(env, Mapping)
                                  else [*env, f"PODS_REGISTRY_USERS={entries}"])
    options.setdefault("ports", [5000])
    options.setdefault("wait", _READY)
    return container(image=image, scope=scope, wrap=lambda c: Registry(c, users), warm=warm, pool=pool, **options)


@pytest.fixture(scope="session")
def registry_image(request: pytest.FixtureRequest, pods: Pods) -> ImageRef:
    """Scope: session. Depends on: pods. The registry service image (pytest-pods/registry:2.8)."""
    name = fixture_name(request)
    try:
        return service_image(session_of(request.config), "registry", name)
    except PodsError as exc:
        fail_fixture(name, exc)


registry = registry_container()
