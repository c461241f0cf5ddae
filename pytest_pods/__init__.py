"""pytest-pods: real containers for pytest, on an engine of its own (no Docker daemon).

Every public name is loaded on first use: the Client API and the errors, the fixture factories
(``container``, ``image``, ``pulled``, ``network``), the readiness strategies (``wait``) and the
services. ``pods`` imports this package first, and its launcher needs none of them (issue 19);
the CLI never imports pytest.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's own costs the launcher ~2 ms; type checkers know this name

__all__ = [
    "Client",
    "ComposeStack",
    "ComposeWarning",
    "ConflictError",
    "Container",
    "ContainerNotFoundError",
    "ContainerStartError",
    "ExecResult",
    "HttpService",
    "ImageNotFoundError",
    "InvalidArgumentError",
    "LayerError",
    "Nginx",
    "Pods",
    "PodsError",
    "Postgres",
    "Redis",
    "Registry",
    "RunResult",
    "Service",
    "UnsafeLayerError",
    "compose",
    "container",
    "http_service",
    "image",
    "network",
    "nginx_container",
    "postgres_container",
    "pulled",
    "redis_container",
    "registry_container",
    "wait",
]

if TYPE_CHECKING:  # what __getattr__ loads, for type checkers
    from pytest_pods import wait
    from pytest_pods.client import Client, Container, ExecResult, RunResult
    from pytest_pods.errors import (
        ConflictError,
        ContainerNotFoundError,
        ContainerStartError,
        ImageNotFoundError,
        InvalidArgumentError,
        LayerError,
        PodsError,
        UnsafeLayerError,
    )
    from pytest_pods.plugin.catalog.nginx import Nginx, nginx_container
    from pytest_pods.plugin.catalog.registry import Registry, registry_container
    from pytest_pods.plugin.compose import ComposeStack, ComposeWarning, compose
    from pytest_pods.plugin.fixtures import Pods, container, image, network, pulled
    from pytest_pods.plugin.services import (
        HttpService,
        Postgres,
        Redis,
        Service,
        http_service,
        postgres_container,
        redis_container,
    )

_LAZY = {
    "Client": "client", "Container": "client", "ExecResult": "client", "RunResult": "client",
    "ConflictError": "errors", "ContainerNotFoundError": "errors", "ContainerStartError": "errors",
    "ImageNotFoundError": "errors", "InvalidArgumentError": "errors", "LayerError": "errors", "PodsError": "errors",
    "UnsafeLayerError": "errors",
    "container": "plugin.fixtures", "image": "plugin.fixtures", "pulled": "plugin.fixtures", "network": "plugin.fixtures",
    "Pods": "plugin.fixtures",
    "postgres_container": "plugin.services", "redis_container": "plugin.services", "http_service": "plugin.services",
    "Postgres": "plugin.services", "Redis": "plugin.services", "HttpService": "plugin.services",
    "Service": "plugin.services",
    "Nginx": "plugin.catalog.nginx", "nginx_container": "plugin.catalog.nginx",
    "Registry": "plugin.catalog.registry", "registry_container": "plugin.catalog.registry",
    "compose": "plugin.compose", "ComposeStack": "plugin.compose", "ComposeWarning": "plugin.compose",
}


def __getattr__(name: str) -> object:
    import importlib  # lazy: start latency (not loaded by a plain install's interpreter start)

    if name == "wait":
        return importlib.import_module(".wait", __name__)
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
