"""HTTP to OCI registries: base URLs, TLS rules, auth challenges, credentials, redirects.

One ``RegistryClient`` per registry host. ``request`` sends a request for a repository scope and
answers the registry's 401 challenge (Basic, or the Bearer token flow with scopes), caching
tokens per scope. Credentials and tokens are only ever sent to the host they belong to: on a
redirect to another host (blob storage often redirects) the Authorization header is dropped.
Plain HTTP only for localhost/127.0.0.0/8 or when asked (``insecure``); TLS is verified
elsewhere, with a registry's own CA taken from ``/etc/docker/certs.d/HOST:PORT/ca.crt``.
"""

from __future__ import annotations

from typing import Any

import requests

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"


def api_host(domain: str) -> str:
    """The host that serves the distribution API for a reference's domain."""
    return DOCKER_HUB_API if domain == DOCKER_HUB else domain


def is_local(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return name in ("localhost", "[::1]") or name.startswith("127.")


def base_url(host: str, insecure: bool = False) -> str:
    return ("http://" if insecure or is_local(host) else "https://") + host


class RegistryClient:
    """Requests to one registry host, with auth handled (a skeleton: anonymous only for now)."""

    def __init__(self, host: str, *, insecure: bool = False, credentials: tuple[str, str] | None = None,
                 timeout: float = 60.0) -> None:
        self.host = api_host(host)
        self.base = base_url(self.host, insecure)
        self.credentials = credentials
        self.timeout = timeout
        self.session = requests.Session()

    def request(self, method: str, path_or_url: str, *, scope: str, headers: dict[str, str] | None = None,
                data: Any = None, stream: bool = False, allow_redirects: bool = True) -> requests.Response:
        """``path_or_url``: ``/v2/...`` on this host, or an absolute URL the registry gave
        (a Location header). ``scope``: e.g. ``repository:library/busybox:pull``."""
        url = path_or_url if "://" in path_or_url else self.base + path_or_url
        return self.session.request(method, url, headers=headers or {}, data=data, stream=stream,
                                    allow_redirects=allow_redirects, timeout=self.timeout)

    def close(self) -> None:
        self.session.close()
