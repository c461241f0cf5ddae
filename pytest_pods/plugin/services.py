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
shipped in ``plugin/recipes/`` on the local ``debian:bookworm`` image (bootstrapped with
mmdebstrap if the store has none), once per root: later sessions hit the layer cache.
"""

from __future__ import annotations

import itertools
import os
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_pods import wait
from pytest_pods.client.contract import ContainerAPI
from pytest_pods.errors import PodsError
from pytest_pods.plugin.fixtures import (
    Pods,
    caller_module,
    container,
    container_options,
    define_fixture,
    fail_fixture,
    fixture_name,
    session_of,
)
from pytest_pods.plugin.session import IMAGE_PROVIDERS, ImageRef, PodsSession

__all__ = [
    "SERVICE_IMAGES",
    "HttpService",
    "Postgres",
    "Redis",
    "Service",
    "http_service",
    "postgres_container",
    "redis_container",
    "service_image",
]

RECIPES = Path(__file__).parent / "recipes"
SERVICE_IMAGES = {"postgres": "pytest-pods/postgres:15", "redis": "pytest-pods/redis:7"}


def service_image(s: PodsSession, service: str, fixture: str) -> ImageRef:
    """The image of a ready-made service: from the registry if configured and reachable, else
    built from its recipe (a no-change rebuild is a cache hit of a few milliseconds)."""
    tag = SERVICE_IMAGES[service]
    with s.lock(f"service-{service}"):  # one pull or build across xdist workers
        if s.registry:
            ref = f"{s.registry.rstrip('/')}/{tag}"
            try:
                pulled = s.pull(fixture, ref)
                s.client.images.tag(ref, tag)
                return ImageRef(tag, pulled.id, pulled.seconds, pulled.how)
            except (PodsError, OSError):
                pass  # not reachable or not there: build it here
        # the recipe's FROM debian:bookworm is bootstrapped by the builder if the root has none
        # (once per root, under its lock; through a daemon too)
        if getattr(s.client, "is_docker", lambda: False)():
            return _build_for_dockers_classic_builder(s, fixture, service, tag)
        return s.build(fixture, RECIPES / service, tag=tag)


def _build_for_dockers_classic_builder(s: PodsSession, fixture: str, service: str, tag: str) -> ImageRef:
    """The recipe built on a Docker daemon, whose ``/build`` is the classic builder: from a copy
    where ``COPY --chmod=MODE SRC`` becomes the source file with that mode (the classic builder
    keeps a file's mode and refuses ``--chmod``), and, before API 1.44 (Docker 25), without
    ``HEALTHCHECK --start-interval`` (its health check then runs at its interval during the start
    period too; the plugin's own readiness does not use it)."""
    import re  # lazy: only for a Docker engine's build
    import shutil  # lazy: as above
    import tempfile  # lazy: as above

    with tempfile.TemporaryDirectory(prefix="pods-recipe-") as tmp:
        ctx = Path(tmp) / service
        shutil.copytree(RECIPES / service, ctx)
        dockerfile = ctx / "Dockerfile"
        text = dockerfile.read_text()

        def chmod(m: re.Match[str]) -> str:
            (ctx / m.group(2)).chmod(int(m.group(1), 8))
            return f"COPY {m.group(2)} "

        text = re.sub(r"^COPY --chmod=([0-7]+) (\S+) ", chmod, text, flags=re.MULTILINE)
        if s.client.api_version() < (1, 44):  # type: ignore[attr-defined]
            text = re.sub(r" --start-interval=\S+", "", text)
        dockerfile.write_text(text)
        return s.build(fixture, ctx, tag=tag)


def image_provider(service: str) -> Callable[[PodsSession, str], ImageRef]:
    return lambda s, fixture: service_image(s, service, fixture)


IMAGE_PROVIDERS.update({tag: image_provider(service) for service, tag in SERVICE_IMAGES.items()})


def catalogue_service(service: str, image: str) -> Any:
    """Register a catalogue service's recipe image (built or pulled on first use, by name from
    any fixture or the daemon's aliases) and return its session ``<service>_image`` fixture."""
    SERVICE_IMAGES[service] = image
    IMAGE_PROVIDERS[image] = image_provider(service)
    return image_fixture(service)


def image_fixture(service: str) -> Any:
    def fixture(request: pytest.FixtureRequest, pods: Pods) -> ImageRef:
        name = fixture_name(request)
        try:
            return service_image(session_of(request.config), service, name)
        except PodsError as exc:
            fail_fixture(name, exc)

    fixture.__name__ = f"{service}_image"
    fixture.__doc__ = f"Scope: session. Depends on: pods. The {service} service image ({SERVICE_IMAGES[service]})."
    return pytest.fixture(scope="session")(fixture)


postgres_image = image_fixture("postgres")
redis_image = image_fixture("redis")


class Service:
    """What every service fixture's value is besides its endpoints: the container it runs in.

    ``host``/``port`` (and ``dsn``/``url``) are the host's view, through the published port;
    ``network_host``/``network_port`` (and ``network_dsn``/``network_url``) are what other
    containers on the same network use: the container's name on a user network (its DNS name
    there, as under Docker), its address on the default bridge (which has no names).
    """

    PORT = 0  # the service's port in the container

    def __init__(self, container: ContainerAPI, port: int | None = None) -> None:
        self.container = container
        self.container_port = port or self.PORT
        self.host, self.port = container.address(self.container_port)

    @property
    def name(self) -> str:
        """The container's name (``{db.name}`` in another container's options)."""
        return self.container.name

    @property
    def id(self) -> str:
        return self.container.id

    @property
    def ip(self) -> str:
        """The container's address on its (first) network."""
        return self.container.ip

    def address(self, port: int | str | None = None) -> tuple[str, int]:
        """The host's (host, port) for a container port (default: the service's)."""
        return self.container.address(port if port is not None else self.container_port)

    @property
    def network_host(self) -> str:
        network = self.container.state.get("network", "")
        return self.ip if network in ("", "bridge", "default", "host", "none") else self.name

    @property
    def network_port(self) -> int:
        return self.container_port

    def logs(self) -> str:
        return self.container.logs().decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.host}:{self.port}>"


class Postgres(Service):
    """A running Postgres server (trust authentication: any password is accepted).

    ``dsn`` works with psycopg, asyncpg, SQLAlchemy and ``psql`` from the host; ``network_dsn``
    from another container on its network; ``psql(sql)`` runs SQL in the container with no
    client library on the host.
    """

    PORT = 5432
    user = "postgres"
    password = "postgres"

    def __init__(self, container: ContainerAPI, dbname: str | None = None, *, user: str | None = None,
                 password: str | None = None) -> None:
        super().__init__(container)
        if user:
            self.user = user
        if password:
            self.password = password
        self.dbname = dbname or (self.user if user else "postgres")

    @property
    def dsn(self) -> str:
        return self.dsn_for(self.dbname)

    @property
    def network_dsn(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.network_host}:{self.network_port}/{self.dbname}"

    def dsn_for(self, dbname: str) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str | None = None) -> str:
        """Run ``sql`` with psql in the container; its unaligned output, stripped."""
        res = self.container.exec(["psql", "-h", "127.0.0.1", "-U", self.user, "-d", dbname or self.dbname,
                                   "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        if res.exit_code != 0:
            raise PodsError(f"psql in {self.container.name}: {res.stderr.decode(errors='replace').strip()}")
        return res.output.decode().strip()

    def prime(self) -> None:
        """Open and use a first connection: a fresh server builds its catalog caches then (about
        30 ms here), so a pooled server pays it before a test takes it."""
        try:
            import psycopg  # lazy: optional (pip install psycopg); only where a test connects
        except ImportError:
            self.psql("select 1")
            return
        with psycopg.connect(self.dsn, connect_timeout=10) as conn:
            conn.execute("select count(*) from pg_class").fetchone()

    def connect(self, **kwargs: Any) -> Any:
        """A psycopg (3) connection; needs ``pip install psycopg[binary]``."""
        import psycopg  # lazy: optional (pip install psycopg); only where a test connects

        return psycopg.connect(self.dsn, **kwargs)

    def __repr__(self) -> str:
        return f"<Postgres {self.name} {self.dsn}>"


class Redis(Service):
    """A running Redis server (no password, no persistence); ``db`` is the logical database.
    ``url`` from the host, ``network_url`` from another container on its network."""

    PORT = 6379

    def __init__(self, container: ContainerAPI, db: int = 0) -> None:
        super().__init__(container)
        self.db = db

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.db}"

    @property
    def network_url(self) -> str:
        return f"redis://{self.network_host}:{self.network_port}/{self.db}"

    def prepare_snapshot(self) -> None:
        """A warm snapshot keeps the dataset: write it to disk, to be loaded at the next start."""
        self.cli("SAVE")

    def cli(self, *args: str) -> str:
        """Run ``redis-cli ARGS`` in the container (on this ``db``); its output, stripped."""
        res = self.container.exec(["redis-cli", "-h", "127.0.0.1", "-n", str(self.db), *args])
        if res.exit_code != 0:
            raise PodsError(f"redis-cli in {self.container.name}: {res.stderr.decode(errors='replace').strip()}")
        return res.output.decode().strip()

    def client(self, **kwargs: Any) -> Any:
        """A redis-py client; needs ``pip install redis``."""
        import redis  # lazy: optional (pip install redis); only for Redis.client()

        kwargs.setdefault("db", self.db)
        return redis.Redis(host=self.host, port=self.port, **kwargs)

    def __repr__(self) -> str:
        return f"<Redis {self.name} {self.url}>"


class HttpService(Service):
    """A running HTTP service: ``url(path)`` is its published address from the host,
    ``network_url(path)`` its address for other containers on its network."""

    def __init__(self, container: ContainerAPI, port: int) -> None:
        super().__init__(container, port)
        self.host_port = self.port  # the published port, as ``Container.host_port`` names it

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.host_port}/{path.lstrip('/')}"

    def network_url(self, path: str = "/") -> str:
        return f"http://{self.network_host}:{self.network_port}/{path.lstrip('/')}"

    def __repr__(self) -> str:
        return f"<HttpService {self.name} {self.url()}>"


_PG_READY = wait.all_of(wait.log(r"database system is ready to accept connections"), wait.tcp(5432))
# With POSTGRES_* set, a first start logs the ready line twice (the init server's, then the real
# one's, issue 17): the real server is the container's pid 1 ("[1]" by the recipe's log_line_prefix).
_PG_READY_INIT = wait.all_of(wait.log(r"\[1\] LOG:  database system is ready to accept connections"), wait.tcp(5432))


def environment_of(options: dict[str, Any]) -> dict[str, str]:
    env = options.get("environment", options.get("env")) or {}
    if isinstance(env, dict):
        return {str(k): str(v) for k, v in env.items()}
    return dict(str(e).partition("=")[::2] for e in env)


def _pg_identity(options: dict[str, Any]) -> dict[str, Any]:
    """The user, password and database the official contract's variables ask for (issue 17)."""
    env = environment_of(options)
    user = env.get("POSTGRES_USER") or None
    return {"user": user, "password": env.get("POSTGRES_PASSWORD") or None,
            "dbname": env.get("POSTGRES_DB") or user}
_REDIS_READY = wait.all_of(wait.log(r"Ready to accept connections"), wait.tcp(6379))


ISOLATION_LEVELS = ("container", "database")


def postgres_container(*, scope: str = "function", image: Any = "{postgres_image}", isolation: str = "container",
                       warm: Callable[[Postgres], None] | None = None, pool: int = 0, **options: Any) -> Any:
    """Declare a Postgres fixture (its value is a :class:`Postgres`).

    :param isolation: ``"container"``: each test (each scope) its own server, from the warm
        snapshot when ``warm`` is given; ``"database"``: one server per session (per xdist
        worker) and each test its own database, cloned from a template (``CREATE DATABASE ...
        TEMPLATE``) that ``warm`` prepared
    :param warm: ``warm(pg)`` loads the schema or data once per session
    :param pool: with ``"container"``, this many servers kept started and ready ahead of the tests
    """
    _check_isolation(isolation)
    options.setdefault("ports", [5432])
    contract = any(k.startswith("POSTGRES_") or k == "PGDATA" for k in environment_of(options))
    options.setdefault("wait", _PG_READY_INIT if contract else _PG_READY)
    if isolation == "container":
        identity = _pg_identity(options)
        return container(image=image, scope=scope, wrap=lambda c: Postgres(c, **identity), warm=warm, pool=pool,
                         **options)
    if pool:
        raise ValueError("pytest-pods: postgres_container(pool=...) needs isolation='container'")
    return per_database("postgres", scope, image, options,
                         lambda s, name, img, opts: _PgServer(s, name, img, opts, warm))


def redis_container(*, scope: str = "function", image: Any = "{redis_image}", isolation: str = "container",
                    warm: Callable[[Redis], None] | None = None, pool: int = 0, **options: Any) -> Any:
    """Declare a Redis fixture (its value is a :class:`Redis`).

    :param isolation: ``"container"``: each test its own server (from the warm snapshot when
        ``warm`` is given); ``"database"``: one server per session and each test a flushed
        logical database of its own (``redis.db``, 1 to 15)
    """
    _check_isolation(isolation)
    options.setdefault("ports", [6379])
    options.setdefault("wait", _REDIS_READY)
    if isolation == "container":
        return container(image=image, scope=scope, wrap=Redis, warm=warm, pool=pool, **options)
    if warm is not None or pool:
        raise ValueError("pytest-pods: redis_container(warm=/pool=) needs isolation='container'")
    return per_database("redis", scope, image, options, lambda s, name, img, opts: _RedisServer(s, name, img, opts))


def _check_isolation(isolation: str) -> None:
    if isolation not in ISOLATION_LEVELS:
        raise ValueError(f"pytest-pods: isolation={isolation!r}: use one of {', '.join(ISOLATION_LEVELS)}")


def per_database(kind: str, scope: str, image: Any, options: dict[str, Any],
                  make: Callable[[PodsSession, str, str, dict[str, Any]], Any]) -> Any:
    """A fixture whose value is a fresh database on a server shared by the session (one server
    per network it is put on: it is removed before that network)."""
    g, _ = caller_module()
    module = str(g.get("__name__", ""))

    def body(fixture: str, s: PodsSession, v: dict[str, Any]) -> Iterator[Any]:
        ready = v["options"].get("wait")
        opts = container_options(fixture, {k: o for k, o in v["options"].items() if k != "wait"}) | {"wait": ready}
        network = str(opts.get("network") or "")
        try:
            server = s.resource(f"{kind}-server:{module}::{fixture}@{network}",
                                lambda: make(s, fixture, str(v["image"]), opts), lambda srv: srv.close(),
                                network=network)
            value = server.fresh()
        except PodsError as exc:
            fail_fixture(fixture, exc)
        try:
            yield value
        finally:
            server.done(value)

    return define_fixture(kind, scope, {"image": image, "options": options}, body)


class _PgServer:
    """The shared server of database-level isolation: a few databases cloned from the template
    that ``warm`` loaded, handed to the tests in turn and put back as the template left them.

    A clone (``CREATE DATABASE ... TEMPLATE``) costs 20-250 ms here once tests write (it copies
    the template's files between two checkpoints), more than a test takes. So after a test a
    background thread ends the database's connections and, when only rows and sequences changed,
    resets it in place on an admin connection of its own: the rows of the tables the test changed
    are deleted and the template's copied back, every sequence set back (a few ms). A database
    whose schema changed (a catalog row newer than its last reset: DDL, grants, large objects,
    comments) is dropped and a new clone takes its place. Without psycopg (no COPY from the
    host) every used database is replaced, by psql execs.
    """

    TEMPLATE = "pods_template"
    ROTATION = 4  # databases handed out in turn: a used one is reset long before it is due again
    WORKERS = 2  # resets and clones, each on its own connections

    def __init__(self, s: PodsSession, fixture: str, image: str, options: dict[str, Any],
                 warm: Callable[[Postgres], None] | None) -> None:
        opts = {k: v for k, v in options.items() if k != "wait"}
        self._s = s
        self.rec = s.start(f"{fixture} (server)", "session", image, wait=options["wait"], options=opts)
        self._identity = _pg_identity(opts)
        self.server = Postgres(self.rec.container, **self._identity)
        self._count = 0
        self._count_lock = threading.Lock()
        try:
            import psycopg  # lazy: optional (pip install psycopg); only where a test connects

            self._psycopg: Any = psycopg
        except ImportError:
            self._psycopg = None
        self._clear()
        self.sql(f"CREATE DATABASE {self.TEMPLATE}")
        if warm is not None:
            try:
                warm(self._on(self.TEMPLATE))
            except Exception as exc:
                raise PodsError(f"warm-up hook {getattr(warm, '__name__', warm)!r} failed: "
                                f"{type(exc).__name__}: {exc}") from exc
        self._seed = _PgSeed.of(self._psycopg, self.server.dsn_for(self.TEMPLATE)) if self._psycopg else None
        # nobody may connect to it any more: a connection would make every clone fail
        self.sql(f"ALTER DATABASE {self.TEMPLATE} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
        self.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 f"WHERE datname = '{self.TEMPLATE}' AND pid <> pg_backend_pid()")
        self._ready: queue.Queue[str | BaseException] = queue.Queue()
        # "" for a new clone, else a used database to put back: before any clone (a reset takes
        # ms, a clone 20-600; the first tests would otherwise wait behind the set-up's clones)
        self._jobs: queue.PriorityQueue[tuple[int, int, str | None]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._admins: dict[str, _PgAdmin] = {}  # each clone's admin connection (psycopg only)
        for _ in range(self.ROTATION):
            self._job("")
        self._threads = [threading.Thread(target=self._serve, daemon=True, name="pods-pg-databases")
                         for _ in range(self.WORKERS)]
        for t in self._threads:
            t.start()

    def _job(self, name: str) -> None:
        self._jobs.put((2 if name == "" else 1, next(self._order), name))

    def _clear(self) -> None:
        """What an earlier session left on a server it reused (``--pods-reuse``): its template
        and the clones a killed run did not drop."""
        found = self.server.psql("SELECT datname FROM pg_database WHERE datname = "
                                 f"'{self.TEMPLATE}' OR datname LIKE 'test\\_%'").split()
        for name in found:
            if name == self.TEMPLATE:
                self.sql(f"ALTER DATABASE {name} WITH IS_TEMPLATE false")
            self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def _next_name(self) -> str:
        with self._count_lock:
            self._count += 1
            return f"test_{self._s.worker.replace('-', '_')}_{self._count}"

    def sql(self, statement: str) -> None:
        """One statement as the superuser, on the server's ``postgres`` database."""
        if self._psycopg is None:
            self.server.psql(statement)  # no psycopg: a psql exec (slower)
            return
        with self._psycopg.connect(self.server.dsn, autocommit=True) as conn:
            conn.execute(statement)

    def _serve(self) -> None:
        """A worker: make the clones the rotation needs and put used databases back."""
        conn: Any = None  # on the server's own database: CREATE and DROP DATABASE
        try:
            while (job := self._jobs.get()[2]) is not None:
                if conn is None and self._psycopg is not None:
                    conn = self._psycopg.connect(self.server.dsn, autocommit=True)
                run: Callable[[str], Any] = conn.execute if conn is not None else self.server.psql
                try:
                    if job and self._reset(job):
                        self._ready.put(job)
                        continue
                    if job:
                        self._forget(job)
                        run(f"DROP DATABASE IF EXISTS {job} WITH (FORCE)")
                    name = self._next_name()
                    # FILE_COPY: 22 ms a clone here against 79 for WAL_LOG (fsync is off)
                    run(f"CREATE DATABASE {name} TEMPLATE {self.TEMPLATE} STRATEGY FILE_COPY")
                    if self._seed is not None:
                        self._admins[name] = _PgAdmin(self._psycopg, self.server.dsn_for(name), name, self._seed)
                    self._ready.put(name)
                except Exception as exc:  # handed to the test that waits for this database
                    self._ready.put(PodsError(f"a fresh database (from {self.TEMPLATE}): {exc}"))
        finally:
            if conn is not None:
                conn.close()

    def _reset(self, name: str) -> bool:
        """Put a used database back in place; False where it must be replaced."""
        admin = self._admins.get(name)
        if admin is None:
            return False
        try:
            return admin.reset()
        except Exception:  # the test dropped or broke it, or its connections did not end: replace it
            return False

    def _forget(self, name: str) -> None:
        admin = self._admins.pop(name, None)
        if admin is not None:
            admin.close()

    def fresh(self) -> Postgres:
        try:
            got = self._ready.get(timeout=self._s.timeout)
        except queue.Empty:
            raise PodsError(f"no fresh database from {self.TEMPLATE} within {self._s.timeout:g}s "
                            "(the server is overloaded or stopped; see its log)") from None
        if isinstance(got, BaseException):
            self._job("")  # another try for the next test
            raise got
        return self._on(got)

    def _on(self, dbname: str) -> Postgres:
        return Postgres(self.rec.container, dbname, user=self._identity["user"], password=self._identity["password"])

    def done(self, pg: Postgres) -> None:
        self._job(pg.dbname)

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put((0, next(self._order), None))  # before the jobs left: the server goes
        for t in self._threads:
            t.join(timeout=60)
        for name in list(self._admins):
            self._forget(name)
        self._s.release(self.rec)


# the user's tables (not partitioned parents, views or another session's temporary tables) and
# the columns a COPY can write back (not generated ones)
_PG_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname),
       (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
 ORDER BY 1
"""
# the database's own catalogs a change of schema writes a row into; not the shared ones (other
# databases' creation), not the planner statistics (autovacuum's ANALYZE writes those)
_PG_CATALOGS = """
SELECT format('pg_catalog.%I', relname) FROM pg_class
 WHERE relnamespace = 'pg_catalog'::regnamespace AND relkind = 'r' AND NOT relisshared
   AND relname NOT IN ('pg_statistic', 'pg_statistic_ext_data')
 ORDER BY 1
"""


class _PgSeed:
    """What the template holds besides its schema: each table's rows (COPY text) and each
    sequence's position, read once; and the queries that find what a test changed."""

    def __init__(self, tables: list[tuple[str, str | None, int, bytes]], sequences: list[tuple[str, int, bool]],
                 catalogs: list[str]) -> None:
        self.tables = tables  # (name, columns, rows, data)
        self.sequences = sequences
        # a row newer than the baseline transaction %(b)s: written after the last reset; the
        # namespaces of temporary tables stay after their backend ends (its tables go)
        newer = "age(xmin) < age(%(b)s::text::xid)"
        tables_q = [(name.replace("%", "%%"), rows) for name, _, rows, _ in tables]  # psycopg's placeholders
        checks = [f"EXISTS (SELECT FROM {c} WHERE {newer}"
                  + (" AND nspname !~ '^pg_(toast_)?temp_'" if c == "pg_catalog.pg_namespace" else "") + ")"
                  for c in catalogs]
        self.schema_changed = "SELECT " + " OR ".join(checks)
        self.tables_changed = "SELECT ARRAY[" + ", ".join(
            f"(SELECT count(*) <> {rows} OR coalesce(bool_or({newer}), false) FROM {name})"
            for name, rows in tables_q) + "]::bool[]"
        self.sequences_back = "SELECT " + ", ".join(
            f"setval('{name.replace(chr(39), chr(39) * 2)}'::regclass, {value}, {'true' if called else 'false'})"
            for name, value, called in sequences) if sequences else ""

    @classmethod
    def of(cls, psycopg: Any, dsn: str) -> _PgSeed:
        with psycopg.connect(dsn, autocommit=True) as conn:
            tables = []
            for name, columns in conn.execute(_PG_TABLES).fetchall():
                target = f"{name} ({columns})" if columns else name
                with conn.cursor().copy(f"COPY {target} TO STDOUT") as copy:
                    data = b"".join(bytes(chunk) for chunk in copy)
                rows = conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                tables.append((name, columns, rows, data))
            sequences = [(name, value, called) for name, value, called in conn.execute(
                "SELECT format('%I.%I', schemaname, sequencename), coalesce(last_value, start_value), "
                "last_value IS NOT NULL FROM pg_sequences ORDER BY 1").fetchall()]
            catalogs = [c for (c,) in conn.execute(_PG_CATALOGS).fetchall()]
        return cls(tables, sequences, catalogs)


class _PgAdmin:
    """A clone's admin connection (the superuser, on that database) and its baseline: the
    transaction after which anything written came from a test."""

    def __init__(self, psycopg: Any, dsn: str, name: str, seed: _PgSeed) -> None:
        self.name = name
        self.seed = seed
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.baseline = self._new_baseline()

    def _new_baseline(self) -> str:
        xid = int(self.conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
        return str(xid % 2**32)  # the 32-bit xid that a row's xmin holds

    def reset(self) -> bool:
        """End the test's connections and put back what it changed; False when its schema changed."""
        conn, seed = self.conn, self.seed
        ended = conn.execute("SELECT coalesce(bool_and(pg_terminate_backend(pid, 5000)), true) "
                             "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                             [self.name]).fetchone()[0]
        b = {"b": self.baseline}
        if not ended or conn.execute(seed.schema_changed, b).fetchone()[0]:
            return False
        changed = conn.execute(seed.tables_changed, b).fetchone()[0] if seed.tables else []
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")  # no triggers, no FK checks
            for (name, columns, _, data), dirty in zip(seed.tables, changed, strict=True):
                if dirty:
                    conn.execute(f"DELETE FROM {name}")
                    if data:
                        with conn.cursor().copy(f"COPY {name} ({columns}) FROM STDIN" if columns
                                                else f"COPY {name} FROM STDIN") as copy:
                            copy.write(data)
            if seed.sequences_back:
                conn.execute(seed.sequences_back)
        self.baseline = self._new_baseline()
        return True

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # the server may be gone already
            pass


class _RedisServer:
    """The shared server of database-level isolation: logical databases 1-15, flushed on use."""

    def __init__(self, s: PodsSession, fixture: str, image: str, options: dict[str, Any]) -> None:
        opts = {k: v for k, v in options.items() if k != "wait"}
        self._s = s
        self.rec = s.start(f"{fixture} (server)", "session", image, wait=options["wait"], options=opts)
        self.host, self.port = self.rec.container.address(6379)
        self._count = 0
        self._sock = socket.create_connection((self.host, self.port), timeout=10)

    def _command(self, *args: str) -> bytes:
        """One RESP command on the admin connection (no client library needed)."""
        self._sock.sendall(f"*{len(args)}\r\n".encode() + b"".join(
            f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args))
        reply = self._sock.recv(65536)
        if reply.startswith(b"-"):
            raise PodsError(f"redis {' '.join(args)}: {reply[1:].decode(errors='replace').strip()}")
        return reply

    def fresh(self) -> Redis:
        db = self._count % 15 + 1
        self._count += 1
        self._command("SELECT", str(db))
        self._command("FLUSHDB")
        return Redis(self.rec.container, db)

    def done(self, value: Redis) -> None:
        pass  # flushed when handed out next

    def close(self) -> None:
        self._sock.close()
        self._s.release(self.rec)


def http_service(path: str | os.PathLike[str], port: int, *, health: str = "/", status: int = 200,
                 scope: str = "function", dockerfile: str | None = None, build_args: dict[str, str] | None = None,
                 **options: Any) -> Any:
    """Declare a fixture for your own HTTP service: build ``path`` (relative to the declaring
    module), run it with ``port`` published, ready when ``GET health`` answers ``status``; its
    value is an :class:`HttpService`."""
    _, here = caller_module()
    if here and not os.path.isabs(os.fspath(path)):
        path = os.path.join(here, os.fspath(path))
    options.setdefault("ports", [port])
    return container(build={"path": os.fspath(path), "dockerfile": dockerfile, "build_args": build_args},
                     scope=scope, wait=options.pop("wait", wait.http(port, health, status=status)),
                     wrap=lambda c: HttpService(c, port), **options)


postgres = postgres_container()
redis = redis_container()
