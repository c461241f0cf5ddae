"""MariaDB 10.11 (Debian 12's mariadb-server), the MySQL protocol, fresh per test (issue 17).

The fixture ``mariadb`` gives each test a server of its own::

    def test_orders(mariadb):
        with mariadb.connect() as conn:          # a PyMySQL connection (pip install pymysql)
            conn.cursor().execute("CREATE TABLE orders (id INT)")
        assert mariadb.sql("SELECT 1") == "1"   # the mariadb client in the container

Its server starts from the data directory made when the image was built (root without a
password, the database ``test``): no initialisation at start. With the official image's
variables (``environment={"MARIADB_ROOT_PASSWORD": ..., "MARIADB_DATABASE": ...}``, or the
``MYSQL_*`` ones) the server is initialised as the official image does it, then started.

``mariadb_container(isolation="database")`` shares one server per session and gives each test
a database of its own (``CREATE DATABASE``: a directory, a few milliseconds), dropped after the
test; with ``own_user=True`` each test also gets a user of its own, allowed on that database
only, so that the server refuses it any other test's tables.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Sequence
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

__all__ = ["MariaDB", "mariadb", "mariadb_container", "mariadb_image"]

mariadb_image = catalogue_service("mariadb", "pytest-pods/mariadb:10.11")

#: The line after "mariadbd: ready for connections." that names the port: the first-init server
#: listens on the socket only and says "port: 0", so this is the real server's.
READY_LINE = r"^Version: '.*'\s+socket: '.*'\s+port: [1-9]"
ISOLATION_LEVELS = ("container", "database")
#: The image's ready-made data directory (root without a password, the database "test"); an
#: initialised directory is started as it is.
READY_DATADIR = "/var/lib/mysql-ready"
#: Where a fixture with the official variables initialises its server: in the container's layer,
#: not in the image's VOLUME /var/lib/mysql, so that a ``warm=`` snapshot keeps the data.
CONTRACT_DATADIR = "/var/lib/mysql-pods"
_CONTRACT = re.compile(r"(MARIADB|MYSQL)_")


class MariaDB(Service):
    """A running MariaDB server: the MySQL protocol on ``port``; ``user``/``password`` may use
    ``database``.

    ``url`` (``mysql://user:pass@host:port/database``) from the host, ``network_url`` from
    another container on its network; ``connect()`` is a PyMySQL connection; ``sql(STATEMENTS)``
    runs the ``mariadb`` client in the container and returns its rows, tab separated.
    """

    PORT = 3306

    def __init__(self, container: ContainerAPI, *, user: str = "root", password: str = "",
                 database: str | None = "test") -> None:
        super().__init__(container)
        self.user, self.password, self.database = user, password, database

    def _url(self, host: str, port: int) -> str:
        from urllib.parse import quote  # lazy: only where a URL is asked for

        auth = quote(self.user, safe="") + (f":{quote(self.password, safe='')}" if self.password else "")
        return f"mysql://{auth}@{host}:{port}/{quote(self.database or '', safe='')}"

    @property
    def url(self) -> str:
        return self._url(self.host, self.port)

    @property
    def network_url(self) -> str:
        return self._url(self.network_host, self.network_port)

    def connect(self, **kwargs: Any) -> Any:
        """A PyMySQL connection as ``user`` to ``database`` (use it as a context manager);
        needs ``pip install pymysql``. ``kwargs`` go to ``pymysql.connect``.

        Without TLS unless ``kwargs`` ask for it: the server has no certificate, and PyMySQL 1.2+
        would otherwise build a TLS context (load the system's CA bundle) for each connection,
        about 25 ms here, to find that out."""
        import pymysql  # type: ignore[import-untyped]  # lazy: optional (pip install pymysql)

        params: dict[str, Any] = {"host": self.host, "port": self.port, "user": self.user,
                                  "password": self.password, "database": self.database}
        if not any(k.startswith("ssl") for k in kwargs):
            params["ssl_disabled"] = True
        return pymysql.connect(**(params | kwargs))

    def sql(self, statements: str, database: str | None = None) -> str:
        """Run ``statements`` with the ``mariadb`` client in the container, as ``user`` over TCP;
        the rows, tab separated, without column names.

        :raises PodsError: the client's error
        """
        db = database if database is not None else self.database
        cmd = ["mariadb", "--protocol=tcp", "-h127.0.0.1", f"-P{self.PORT}", f"-u{self.user}", "-NB",
               "-e", statements]
        res = self.container.exec(cmd + ([db] if db else []), environment=[f"MYSQL_PWD={self.password}"])
        if res.exit_code != 0:
            raise PodsError(f"mariadb in {self.container.name}: "
                            f"{(res.stderr or res.output).decode(errors='replace').strip()}")
        return res.output.decode().strip()

    def __repr__(self) -> str:
        return f"<MariaDB {self.name} {self.host}:{self.port} {self.user}@{self.database}>"


def _identity(env: dict[str, str]) -> dict[str, Any]:
    """Who connects to what by the official variables (issue 17): the regular user on its database
    when one is made, else root."""
    def var(name: str) -> str:
        return env.get(f"MARIADB_{name}") or env.get(f"MYSQL_{name}") or ""

    if not any(_CONTRACT.match(k) for k in env):
        return {"user": "root", "password": "", "database": "test"}
    if var("USER"):
        return {"user": var("USER"), "password": var("PASSWORD"), "database": var("DATABASE") or None}
    return {"user": "root", "password": var("ROOT_PASSWORD"), "database": var("DATABASE") or None}


def _command(env: dict[str, str], command: Sequence[str] | str | None) -> Sequence[str] | str | None:
    if command is not None:
        return command
    datadir = CONTRACT_DATADIR if any(_CONTRACT.match(k) for k in env) else READY_DATADIR
    return ["mariadbd", f"--datadir={datadir}"]


def mariadb_container(*, scope: str = "function", image: Any = "{mariadb_image}", isolation: str = "container",
                      own_user: bool = False, command: Sequence[str] | str | None = None,
                      warm: Callable[[MariaDB], None] | None = None, pool: int = 0, **options: Any) -> Any:
    """Declare a MariaDB fixture (its value is a :class:`MariaDB`).

    :param isolation: ``"container"``: each test (each scope) its own server (from the warm
        snapshot when ``warm`` is given; ``pool`` servers started ahead); ``"database"``: one
        server per session (per xdist worker) and each test its own database, dropped after it
    :param own_user: with ``"database"``, each test also its own user, allowed on its database
        only (else tests connect as the server's user, root by default)
    :param command: the server's command (default: ``mariadbd`` on the image's ready-made data
        directory, or on an empty one initialised by the official variables when they are set)
    """
    if isolation not in ISOLATION_LEVELS:
        raise ValueError(f"pytest-pods: isolation={isolation!r}: use one of {', '.join(ISOLATION_LEVELS)}")
    env = environment_of(options)
    random_root = not (env.get("MARIADB_ROOT_PASSWORD") or env.get("MYSQL_ROOT_PASSWORD")) and bool(
        env.get("MARIADB_RANDOM_ROOT_PASSWORD") or env.get("MYSQL_RANDOM_ROOT_PASSWORD"))
    if random_root and (isolation == "database" or not (env.get("MARIADB_USER") or env.get("MYSQL_USER"))):
        raise ValueError("pytest-pods: mariadb_container(): a random root password is one the fixture cannot "
                         "connect with: set MARIADB_USER (and MARIADB_PASSWORD) too, or MARIADB_ROOT_PASSWORD")
    options.setdefault("ports", [3306])
    options.setdefault("wait", wait.all_of(wait.log(READY_LINE), wait.tcp(3306)))
    identity = _identity(env)
    cmd = _command(env, command)
    if isolation == "container":
        if own_user:
            raise ValueError("pytest-pods: mariadb_container(own_user=True) needs isolation='database'")
        return container(image=image, command=cmd, scope=scope, wrap=lambda c: MariaDB(c, **identity), warm=warm,
                         pool=pool, **options)
    if warm is not None or pool:
        raise ValueError("pytest-pods: mariadb_container(warm=/pool=) needs isolation='container'")
    if identity["user"] != "root":  # the admin that makes the tests' databases
        root_password = env.get("MARIADB_ROOT_PASSWORD") or env.get("MYSQL_ROOT_PASSWORD") or ""
        identity = {"user": "root", "password": root_password, "database": None}
    return per_database("mariadb", scope, image, options,
                         lambda s, name, img, opts: _DatabaseServer(s, name, img, cmd, opts, identity, own_user))


class _DatabaseServer:
    """The shared server of database-level isolation. ``CREATE DATABASE`` is a directory and a
    file here (a few milliseconds), so a test's database is made when the test asks for it, on
    the admin connection; used ones are dropped by a thread on a connection of its own (a
    database with tables takes longer to drop)."""

    def __init__(self, s: PodsSession, fixture: str, image: str, command: Sequence[str] | str | None,
                 options: dict[str, Any], admin: dict[str, Any], own_user: bool) -> None:
        opts = {k: v for k, v in options.items() if k != "wait"}
        self._s = s
        self.rec = s.start(f"{fixture} (server)", "session", image, command, wait=options["wait"], options=opts)
        self.admin = MariaDB(self.rec.container, **admin)
        self.own_user = own_user
        self._count = 0
        self._prefix = f"test_{re.sub(r'[^A-Za-z0-9_]', '_', s.worker)}_"
        self._run = self._runner()
        self._clear()
        self._drops: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._drop, daemon=True, name="pods-mariadb-drops")
        self._thread.start()

    def _runner(self) -> Callable[[str], list[tuple[Any, ...]]]:
        """Statements as the admin: on a PyMySQL connection, else the client in the container."""
        try:
            import pymysql  # lazy: optional (pip install pymysql)
        except ImportError:
            return lambda sql: [tuple(row.split("\t")) for row in self.admin.sql(sql, "").splitlines()]
        conn = self.admin.connect(autocommit=True)

        def run(sql: str) -> list[tuple[Any, ...]]:
            try:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    return list(cur.fetchall())
            except pymysql.MySQLError as exc:
                raise PodsError(f"mariadb {sql!r}: {exc}") from None

        return run

    def _clear(self) -> None:
        """What an earlier session left on a server it reused (``--pods-reuse``): the databases
        and users of a killed run."""
        for (name,) in self._run(f"SHOW DATABASES LIKE '{self._prefix}%'"):
            self._run(f"DROP DATABASE IF EXISTS `{name}`")
        for (name,) in self._run(f"SELECT User FROM mysql.user WHERE User LIKE '{self._prefix}%'"):
            self._run(f"DROP USER IF EXISTS '{name}'@'%'")

    def fresh(self) -> MariaDB:
        self._count += 1
        name = f"{self._prefix}{self._count}"
        self._run(f"CREATE DATABASE `{name}`")
        if not self.own_user:
            return MariaDB(self.rec.container, user=self.admin.user, password=self.admin.password, database=name)
        # the database's name has "_", a wildcard in a GRANT's database name: escaped
        escaped = name.replace("_", "\\_")
        self._run(f"CREATE USER '{name}'@'%' IDENTIFIED BY '{name}'")
        self._run(f"GRANT ALL ON `{escaped}`.* TO '{name}'@'%'")
        return MariaDB(self.rec.container, user=name, password=name, database=name)

    def _drop(self) -> None:
        run = self._runner()
        while (name := self._drops.get()) is not None:
            try:
                if self.own_user:
                    run(f"DROP USER IF EXISTS '{name}'@'%'")
                run(f"DROP DATABASE IF EXISTS `{name}`")
            except PodsError:
                pass  # the server goes at the end of the session, with what is left on it

    def done(self, value: MariaDB) -> None:
        assert value.database is not None
        self._drops.put(value.database)

    def close(self) -> None:
        self._drops.put(None)
        self._thread.join(timeout=60)
        self._s.release(self.rec)


mariadb = mariadb_container()
