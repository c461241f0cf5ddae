"""The route table of the Docker Engine API (a documented subset, v1.24 to v1.47), its version
prefix, dispatch, and the mapping of our errors to Docker's texts and codes.

Each resource has its router (moby's ``api/server/router/<resource>``): an object built from the
backend it needs whose ``routes()`` lists its paths. :class:`Router` puts them in one table;
``dispatch(request)`` is the HTTP server's entry point. Errors are Docker's texts and codes
(docker-py picks its exception class from "No such image: ..."); nothing a client sends can end
the daemon (see http.py). The small readers of query parameters and body fields live here too,
as moby's ``httputils`` do, so that every router reads them alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol

from pytest_pods.daemon.http import Request
from pytest_pods.errors import (
    ConflictError,
    ContainerNotFoundError,
    HTTPError,
    ImageNotFoundError,
    InvalidArgumentError,
    NotFoundError,
    PodsError,
)

API_VERSION = "1.47"
MIN_API_VERSION = "1.24"
ENGINE_VERSION = "28.0.0-pods"
VERSIONED = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")

#: a handler answers through the request; the path's named groups come as keyword arguments
Handler = Callable[..., None]


class Route(NamedTuple):
    """One path of the API: ``methods`` as ``"GET|HEAD"``, a pattern matched against the whole
    path (a trailing slash allowed), and the handler."""

    methods: str
    pattern: re.Pattern[str]
    handler: Handler


class ResourceRouter(Protocol):
    """What each resource's router offers: its routes, handlers bound to its backend."""

    def routes(self) -> list[Route]: ...


def route(methods: str, pattern: str, handler: Handler) -> Route:
    return Route(methods, re.compile(f"^{pattern}/?$"), handler)


class Router:
    """The routers' routes in one table, in the order given (the first match wins)."""

    def __init__(self, routes: Iterable[Route], log: Callable[[str], None] = lambda m: None,
                 trace: bool = False) -> None:
        self.routes = list(routes)
        self.log = log
        self.trace = trace

    def dispatch(self, req: Request) -> None:
        path = req.path
        if self.trace:
            self.log(f"{req.method} {req.path} {req.query}")
        m = VERSIONED.match(path)
        if m:
            version = (int(m.group(1)), int(m.group(2)))
            path = m.group(3)
            if version < (1, 24):
                raise HTTPError(400, f"client version {m.group(1)}.{m.group(2)} is too old. Minimum supported "
                                     f"API version is {MIN_API_VERSION}, please upgrade your client to a newer version")
            if version > tuple(int(x) for x in API_VERSION.split(".")):
                raise HTTPError(400, f"client version {m.group(1)}.{m.group(2)} is too new. Maximum supported "
                                     f"API version is {API_VERSION}")
        allowed = False
        for methods, regex, handler in self.routes:
            match = regex.match(path)
            if not match:
                continue
            if req.method not in methods.split("|"):
                allowed = True
                continue
            try:
                handler(req, **match.groupdict())
            except HTTPError:
                raise
            except (ContainerNotFoundError, ImageNotFoundError, NotFoundError) as exc:
                raise HTTPError(404, str(exc)) from None
            except ConflictError as exc:
                raise HTTPError(409, str(exc)) from None
            except (InvalidArgumentError, ValueError, TypeError) as exc:
                raise HTTPError(400, str(exc)) from None
            except PodsError as exc:
                raise HTTPError(500, str(exc)) from None
            return
        if allowed:
            raise HTTPError(405, f"method {req.method} not allowed for {path}")
        raise HTTPError(404, "page not found")


# -- query parameters and body fields ---------------------------------------------------------
def query_bool(value: str | None, default: bool = False) -> bool:
    """docker-py sends ``True``/``False``, the CLI ``1``/``0`` or ``true``."""
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def query_int(value: str | None, default: int, name: str = "value") -> int:
    """An integer parameter; ``default`` when absent; a 400 naming ``name`` when not a number."""
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise HTTPError(400, f"invalid {name}: {value!r}") from None


def query_optional_int(value: str | None, name: str = "value") -> int | None:
    """As :func:`query_int`, None when absent (a stop timeout: the container's own)."""
    if value is None or value == "":
        return None
    return query_int(value, 0, name)


def query_float(value: str | None) -> float:
    """A time parameter (``since``, ``until``): unix seconds, ``"1733000000.000000000"``."""
    try:
        return float(value) if value else 0.0
    except ValueError:
        raise HTTPError(400, f"invalid time value {value!r}") from None


def query_all(req: Request, key: str) -> list[str]:
    """Every non-empty value of a repeated parameter (``build?t=a&t=b``)."""
    return [v for k, v in req.query_pairs if k == key and v]


def api_version(req: Request) -> tuple[int, int]:
    """The API version the request names in its path (``/v1.41/...``); the newest without one."""
    m = VERSIONED.match(req.path)
    if m:
        return int(m.group(1)), int(m.group(2))
    major, minor = API_VERSION.split(".")
    return int(major), int(minor)


def json_object(req: Request, what: str) -> dict[str, Any]:
    """The body as a JSON object; a 400 that says whose config (``what``) otherwise."""
    doc = req.json()
    if not isinstance(doc, dict):
        raise HTTPError(400, f"the {what} config must be a JSON object")
    return doc
