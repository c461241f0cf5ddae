"""nginx (issue 17): Debian 12's nginx 1.22 with the official image's conventions.

The fixture ``nginx`` gives each test its own server with the image's welcome page; declare
your own to serve a directory, proxy to another fixture or render your templates::

    site = nginx_container(html="site")                    # ./site as /usr/share/nginx/html
    front = nginx_container(proxy_to="http://{app.network_host}:{app.network_port}", network="{net}")
    custom = nginx_container(templates="nginx-templates", environment={"NGINX_UPSTREAM": "..."})

    def test_site(site):
        assert site.get("/index.html").status == 200

The image (``pytest-pods/nginx:1.22``) keeps the official layout: ``/etc/nginx/conf.d/*.conf``
is included, ``conf.d/default.conf`` serves ``/usr/share/nginx/html`` on port 80, and
``/etc/nginx/templates/*.template`` is rendered with the set environment variables (envsubst)
into ``conf.d`` at start, as the official entrypoint does (``NGINX_ENVSUBST_*``).
nginx holds no state a test leaves behind, so isolation is a server per test (``pool=`` keeps
some started ahead).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_pods import wait
from pytest_pods.errors import PodsError
from pytest_pods.plugin.fixtures import Pods, caller_module, container, fail_fixture, fixture_name, session_of
from pytest_pods.plugin.services import SERVICE_IMAGES, Service, service_image
from pytest_pods.plugin.session import IMAGE_PROVIDERS, ImageRef

__all__ = ["Nginx", "NginxResponse", "nginx", "nginx_container", "nginx_image"]

SERVICE_IMAGES["nginx"] = "pytest-pods/nginx:1.22"
IMAGE_PROVIDERS[SERVICE_IMAGES["nginx"]] = lambda s, fixture: service_image(s, "nginx", fixture)

HTML_DIR = "/usr/share/nginx/html"
TEMPLATE_DIR = "/etc/nginx/templates"
# the master logs this (level notice, on stderr) once its listening sockets are bound
_READY = wait.all_of(wait.log(r"start worker processes"), wait.tcp(80))


@dataclass(frozen=True)
class NginxResponse:
    """One answer of :meth:`Nginx.get`: whatever the status (a 404 or 502 is an answer too)."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Nginx(Service):
    """A running nginx: ``url`` from the host, ``network_url`` from another container on its
    network (both without a trailing slash), ``get(path)`` for a quick request, ``reload()``
    after changing its configuration in the container."""

    PORT = 80

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def network_url(self) -> str:
        return f"http://{self.network_host}:{self.network_port}"

    def url_for(self, path: str = "/") -> str:
        return f"{self.url}/{path.lstrip('/')}"

    def get(self, path: str = "/", *, headers: Mapping[str, str] | None = None, timeout: float = 10) -> NginxResponse:
        """``GET path`` from the host (urllib, no client library needed)."""
        req = urllib.request.Request(self.url_for(path), headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return NginxResponse(resp.status, dict(resp.headers.items()), resp.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return NginxResponse(exc.code, dict(exc.headers.items()), exc.read())

    def reload(self) -> None:
        """Check the configuration (``nginx -t``) and reload it (``nginx -s reload``)."""
        for cmd in (["nginx", "-t", "-q"], ["nginx", "-s", "reload"]):
            res = self.container.exec(cmd)
            if res.exit_code != 0:
                raise PodsError(f"{' '.join(cmd)} in {self.container.name}: "
                                f"{(res.stderr or res.output).decode(errors='replace').strip()}")

    def __repr__(self) -> str:
        return f"<Nginx {self.name} {self.url}>"


def _host_path(path: str | os.PathLike[str], here: str | None) -> str:
    text = os.fspath(path)
    if here and not os.path.isabs(text):
        text = os.path.join(here, text)
    if not os.path.isdir(text):
        raise ValueError(f"pytest-pods: nginx_container: {text!r} is not a directory")
    return text


def _with_env(options: dict[str, Any], name: str, value: str) -> None:
    env = options.pop("env", None) if "environment" not in options else options["environment"]
    if env is None:
        env = {}
    if isinstance(env, Mapping):
        options["environment"] = {**env, name: value}
    else:
        options["environment"] = [*env, f"{name}={value}"]


def _with_mount(options: dict[str, Any], source: str, target: str) -> None:
    vols = options.get("volumes") or []
    spec = f"{source}:{target}:ro"
    if isinstance(vols, Mapping):
        options["volumes"] = {**vols, source: {"bind": target, "mode": "ro"}}
    elif isinstance(vols, str):
        options["volumes"] = [vols, spec]
    else:
        options["volumes"] = [*vols, spec]


def nginx_container(*, scope: str = "function", image: Any = "{nginx_image}", isolation: str = "container",
                    html: str | os.PathLike[str] | None = None, proxy_to: str | None = None,
                    templates: str | os.PathLike[str] | None = None,
                    warm: Callable[[Nginx], None] | None = None, pool: int = 0, **options: Any) -> Any:
    """Declare an nginx fixture (its value is an :class:`Nginx`).

    :param html: a directory (relative to the declaring module) served as the document root
        (mounted read-only on ``/usr/share/nginx/html``)
    :param proxy_to: the default server becomes a reverse proxy to this URL; ``{fixture.attr}``
        templates make that fixture a dependency: ``"http://{app.network_host}:{app.network_port}"``
    :param templates: a directory of ``*.template`` files mounted on ``/etc/nginx/templates``,
        rendered into ``/etc/nginx/conf.d`` with the environment at start (the official contract)
    :param isolation: only ``"container"``: a server per test (per scope); nginx keeps no state
    :param pool: this many servers kept started and ready ahead of the tests
    """
    if isolation != "container":
        raise ValueError(f"pytest-pods: nginx_container(isolation={isolation!r}): nginx has only 'container' "
                         "isolation (a server per test)")
    if html is not None and proxy_to is not None:
        raise ValueError("pytest-pods: nginx_container: html= and proxy_to= both set the default server; use one")
    _, here = caller_module()
    if html is not None:
        _with_mount(options, _host_path(html, here), HTML_DIR)
    if templates is not None:
        _with_mount(options, _host_path(templates, here), TEMPLATE_DIR)
    if proxy_to is not None:
        _with_env(options, "PODS_NGINX_PROXY_PASS", proxy_to)
    options.setdefault("ports", [80])
    options.setdefault("wait", _READY)
    return container(image=image, scope=scope, wrap=Nginx, warm=warm, pool=pool, **options)


@pytest.fixture(scope="session")
def nginx_image(request: pytest.FixtureRequest, pods: Pods) -> ImageRef:
    """Scope: session. Depends on: pods. The nginx service image (pytest-pods/nginx:1.22)."""
    name = fixture_name(request)
    try:
        return service_image(session_of(request.config), "nginx", name)
    except PodsError as exc:
        fail_fixture(name, exc)


nginx = nginx_container()
