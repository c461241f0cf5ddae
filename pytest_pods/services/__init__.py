"""Ready-made services: Postgres, Redis, and an HTTP service from your own Dockerfile.

The fixtures ``postgres`` and ``redis`` give each test its own fresh, ready server::

    def test_orders(postgres):
        with psycopg.connect(postgres.dsn) as conn: ...
        assert postgres.psql("select 1") == "1"

    def test_cache(redis):
        assert redis.cli("ping") == "PONG"

For another scope declare your own: ``pg = postgres_container(scope="session")``.

The images (``pytest-pods/postgres:15``, ``pytest-pods/redis:7``) are pulled from
``--pods-registry`` when one is set and reachable; otherwise they are built from the recipes
shipped in ``services/recipes/`` on the local ``debian:bookworm`` image (bootstrapped with
mmdebstrap if the store has none), once per root: later sessions hit the layer cache.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from .. import wait
from ..client import Container
from ..errors import ImageNotFoundError, PodsError
from ..fixtures import Pods, _fail, container
from ..fixtures.session import ImageRef, PodsSession

__all__ = ["Postgres", "Redis", "HttpService", "postgres_container", "redis_container", "http_service",
           "service_image", "SERVICE_IMAGES"]

RECIPES = Path(__file__).parent / "recipes"
SERVICE_IMAGES = {"postgres": "pytest-pods/postgres:15", "redis": "pytest-pods/redis:7"}
BASE_IMAGE = "debian:bookworm"


def service_image(s: PodsSession, service: str, fixture: str) -> ImageRef:
    """The image of a ready-made service: from the registry if configured and reachable, else
    built from its recipe (a no-change rebuild is a cache hit of a few milliseconds)."""
    tag = SERVICE_IMAGES[service]
    with s._lock(f"service-{service}"):  # one pull or build across xdist workers
        if s.registry:
            ref = f"{s.registry.rstrip('/')}/{tag}"
            try:
                pulled = s.pull(fixture, ref)
                s.client.images.tag(ref, tag)
                return ImageRef(tag, pulled.id, pulled.seconds, pulled.how)
            except (PodsError, OSError):
                pass  # not reachable or not there: build it here
        try:
            s.client.images.get(BASE_IMAGE)
        except ImageNotFoundError:
            s.client.images.bootstrap_debian("bookworm", tag=BASE_IMAGE)
        return s.build(fixture, RECIPES / service, tag=tag)


def _image_fixture(service: str) -> Any:
    def fixture(request: pytest.FixtureRequest, pods: Pods) -> ImageRef:
        try:
            return service_image(pods._s, service, request.fixturename)
        except PodsError as exc:
            _fail(request.fixturename, exc)
            raise  # not reached: _fail raises

    fixture.__name__ = f"{service}_image"
    fixture.__doc__ = f"Scope: session. Depends on: pods. The {service} service image ({SERVICE_IMAGES[service]})."
    return pytest.fixture(scope="session")(fixture)


postgres_image = _image_fixture("postgres")
redis_image = _image_fixture("redis")


class Postgres:
    """A running Postgres server (trust authentication: any password is accepted).

    ``dsn`` works with psycopg, asyncpg, SQLAlchemy and ``psql``; ``psql(sql)`` runs SQL in the
    container with no client library on the host.
    """

    user = "postgres"
    password = "postgres"
    dbname = "postgres"

    def __init__(self, container: Container) -> None:
        self.container = container
        self.host, self.port = container.address(5432)

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.dbname}"

    def dsn_for(self, dbname: str) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str | None = None) -> str:
        """Run ``sql`` with psql in the container; its unaligned output, stripped."""
        res = self.container.exec(["psql", "-h", "127.0.0.1", "-U", self.user, "-d", dbname or self.dbname,
                                   "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        if res.exit_code != 0:
            raise PodsError(f"psql in {self.container.name}: {res.stderr.decode(errors='replace').strip()}")
        return res.output.decode().strip()

    def connect(self, **kwargs: Any) -> Any:
        """A psycopg (3) connection; needs ``pip install psycopg[binary]``."""
        import psycopg

        return psycopg.connect(self.dsn, **kwargs)

    def __repr__(self) -> str:
        return f"<Postgres {self.dsn}>"


class Redis:
    """A running Redis server (no password, no persistence)."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.host, self.port = container.address(6379)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def cli(self, *args: str) -> str:
        """Run ``redis-cli ARGS`` in the container; its output, stripped."""
        res = self.container.exec(["redis-cli", "-h", "127.0.0.1", *args])
        if res.exit_code != 0:
            raise PodsError(f"redis-cli in {self.container.name}: {res.stderr.decode(errors='replace').strip()}")
        return res.output.decode().strip()

    def client(self, **kwargs: Any) -> Any:
        """A redis-py client; needs ``pip install redis``."""
        import redis

        return redis.Redis(host=self.host, port=self.port, **kwargs)

    def __repr__(self) -> str:
        return f"<Redis {self.url}>"


class HttpService:
    """A running HTTP service: ``url(path)`` is its published address."""

    def __init__(self, container: Container, port: int) -> None:
        self.container = container
        self.port = port
        self.host, self.host_port = container.address(port)

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.host_port}/{path.lstrip('/')}"

    def __repr__(self) -> str:
        return f"<HttpService {self.url()}>"


_PG_READY = wait.all_of(wait.log(r"database system is ready to accept connections"), wait.tcp(5432))
_REDIS_READY = wait.all_of(wait.log(r"Ready to accept connections"), wait.tcp(6379))


def postgres_container(*, scope: str = "function", image: Any = "{postgres_image}", **options: Any) -> Any:
    """Declare a Postgres fixture of another scope (its value is a :class:`Postgres`)."""
    options.setdefault("ports", [5432])
    options.setdefault("wait", _PG_READY)
    return container(image=image, scope=scope, wrap=Postgres, **options)


def redis_container(*, scope: str = "function", image: Any = "{redis_image}", **options: Any) -> Any:
    """Declare a Redis fixture of another scope (its value is a :class:`Redis`)."""
    options.setdefault("ports", [6379])
    options.setdefault("wait", _REDIS_READY)
    return container(image=image, scope=scope, wrap=Redis, **options)


def http_service(path: str | os.PathLike[str], port: int, *, health: str = "/", status: int = 200,
                 scope: str = "function", dockerfile: str | None = None, build_args: dict[str, str] | None = None,
                 **options: Any) -> Any:
    """Declare a fixture for your own HTTP service: build ``path`` (relative to the declaring
    module), run it with ``port`` published, ready when ``GET health`` answers ``status``; its
    value is an :class:`HttpService`."""
    from ..fixtures import _caller_module

    _, here = _caller_module()
    if here and not os.path.isabs(os.fspath(path)):
        path = os.path.join(here, os.fspath(path))
    options.setdefault("ports", [port])
    return container(build={"path": os.fspath(path), "dockerfile": dockerfile, "build_args": build_args},
                     scope=scope, wait=options.pop("wait", wait.http(port, health, status=status)),
                     wrap=lambda c: HttpService(c, port), **options)


postgres = postgres_container()
redis = redis_container()
