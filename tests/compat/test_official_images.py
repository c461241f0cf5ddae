"""The official images' contracts and the image-alias preset (issue 17), through ``pods daemon``.

A daemon of its own (``--image-aliases official``) on a root of its own: it holds the Postgres
recipe image (built on the test root, loaded here) and debian:bookworm, so that ``redis:7``
builds its stand-in from the recipe on first use. testcontainers' own ``PostgresContainer`` and
``RedisContainer`` run unchanged against it; docker-py shows each contract variable taking
effect as a user sees it (psql, psycopg, redis-py); the daemon's log names each substitution.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helper import run_dir_base, wait_until
from tc_helper import pointed_testcontainers

from pytest_pods import Client
from pytest_pods.client.aliases import RECIPES

docker = pytest.importorskip("docker")
psycopg = pytest.importorskip("psycopg")
redis_py = pytest.importorskip("redis")
tc_config = pytest.importorskip("testcontainers.core.config")


PG_IMAGE = "pytest-pods/postgres:15"
READY_PG = b"database system is ready to accept connections"
READY_REDIS = b"Ready to accept connections"
LABEL = "io.pytest-pods.test.official"


class AliasedDaemon:
    def __init__(self, root: Path, run: Path) -> None:
        self.root, self.sock, self.log = root, run / "pods.sock", run / "daemon.log"
        self.host = f"unix://{self.sock}"
        env = {k: v for k, v in os.environ.items() if k != "PODS_IMAGE_ALIASES"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_pods.cli", "--root", str(root), "daemon", "--socket", str(self.sock),
             "--log-file", str(self.log), "--image-aliases", "official"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)

        def answers() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pods daemon exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(self.sock))
                    s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
                    return s.recv(64).startswith(b"HTTP/1.1 200")
            except OSError:
                return False

        try:
            wait_until(answers, 20, "pods daemon --image-aliases official answering /_ping")
        except BaseException:
            self.stop()  # not yielded yet: nobody else would stop it
            raise

    def log_text(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def aliased(client: Client, debian: str, own_root: Callable[[str], Any]) -> Iterator[AliasedDaemon]:
    """Scope: module. Depends on: client, debian, own_root. The daemon with the preset on a root
    of its own (the shared test root has a daemon of its own)."""
    client.images.build(RECIPES / "postgres", tag=PG_IMAGE)  # a cache hit once built on the test root
    with own_root("pods-official-") as own, tempfile.NamedTemporaryFile(suffix=".tar", dir="/var/tmp") as tar:
        client.images.save([PG_IMAGE, debian], tar.name)
        own.images.load(tar.name)
        run = Path(tempfile.mkdtemp(prefix="pods-official-", dir=run_dir_base()))
        try:
            d = AliasedDaemon(own.root, run)
            try:
                yield d
            finally:
                d.stop()
        finally:
            shutil.rmtree(run, ignore_errors=True)


@pytest.fixture
def dc(aliased: AliasedDaemon) -> Iterator[Any]:
    """Scope: function. Depends on: aliased. docker-py on the aliased daemon; what the test made
    (labelled) is removed at the end."""
    c = docker.DockerClient(base_url=aliased.host)
    try:
        yield c
    finally:
        errors = []
        for ctr in c.containers.list(all=True):
            if LABEL in (ctr.labels or {}) or ctr.name.startswith("pods-official-"):
                try:
                    ctr.remove(force=True)
                except docker.errors.NotFound:
                    pass
                except Exception as exc:
                    errors.append(exc)
        c.close()
        assert not errors, errors


@pytest.fixture
def tc(aliased: AliasedDaemon, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Scope: function. Depends on: aliased. testcontainers pointed at the aliased daemon, Ryuk
    off (its image is not what this is about; see tests/compat/test_clients.py)."""
    with pointed_testcontainers(aliased.host, monkeypatch, ryuk=False) as c:
        yield c


def name() -> str:
    return f"pods-official-{uuid.uuid4().hex[:10]}"


def tar_of(files: dict[str, tuple[bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for path, (data, mode) in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def host_port(ctr: Any, port: int) -> int:
    ctr.reload()
    return int(ctr.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]["HostPort"])


def start_pg(dc: Any, image: str = "postgres:16", *, command: Any = None, env: dict[str, str] | None = None,
             files: dict[str, tuple[bytes, int]] | None = None, user: str | None = None) -> Any:
    """A started Postgres container (files put into /docker-entrypoint-initdb.d before it starts)."""
    ctr = dc.containers.create(image, command, name=name(), environment=env or {}, labels={LABEL: "1"},
                               ports={"5432/tcp": None}, detach=True, user=user)
    if files:
        assert ctr.put_archive("/docker-entrypoint-initdb.d", tar_of(files))
    ctr.start()
    return ctr


def ready_pg(ctr: Any, times: int, timeout: float = 60) -> None:
    """Until the ready line was logged ``times`` times and the published port answers."""
    def ready() -> bool:
        ctr.reload()
        if ctr.status == "exited":
            raise AssertionError(f"postgres exited: {ctr.logs().decode(errors='replace')}")
        if ctr.logs().count(READY_PG) < times:
            return False
        try:
            with socket.create_connection(("127.0.0.1", host_port(ctr, 5432)), timeout=1):
                return True
        except OSError:
            return False

    wait_until(ready, timeout, f"postgres in {ctr.name} ready ({times}x the ready line)")


def psql(ctr: Any, sql: str, user: str = "postgres", db: str = "postgres") -> str:
    """psql in the container, over 127.0.0.1, as a user there would run it."""
    res = ctr.exec_run(["psql", "-h", "127.0.0.1", "-U", user, "-d", db, "-XAtqc", sql])
    assert res.exit_code == 0, res.output.decode(errors="replace")
    return str(res.output.decode().strip())


def dsn(ctr: Any, user: str, password: str, db: str) -> str:
    return f"postgresql://{user}:{password}@127.0.0.1:{host_port(ctr, 5432)}/{db}"


# -- testcontainers, unchanged --------------------------------------------------------------------
def test_testcontainers_postgres_16_runs_unchanged_on_the_preset(tc: Any, aliased: AliasedDaemon) -> None:
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # before 4.14
        from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16", username="tcuser", password="tc-secret", dbname="tcdb",
                           driver=None) as pg:
        url = pg.get_connection_url()
        assert url.startswith("postgresql://tcuser:tc-secret@")
        with psycopg.connect(url, connect_timeout=10) as conn:
            user, db, version = conn.execute("select current_user, current_database(), version()").fetchone()
            conn.execute("create table t (x int)")
            conn.execute("insert into t values (7)")
            assert conn.execute("select x from t").fetchone() == (7,)
        assert (user, db) == ("tcuser", "tcdb")
        assert version.startswith("PostgreSQL 15.") and "Debian" in version
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(url.replace("tc-secret", "wrong"), connect_timeout=10)
    assert ("image alias: postgres:16 -> pytest-pods/postgres:15 (PostgreSQL 15 from Debian 12 (bookworm))"
            in aliased.log_text())


def test_testcontainers_redis_7_runs_unchanged_on_the_preset_built_on_first_use(
        tc: Any, aliased: AliasedDaemon) -> None:
    try:
        from testcontainers.community.redis import RedisContainer
    except ImportError:  # before 4.14
        from testcontainers.redis import RedisContainer

    with RedisContainer("redis:7") as r:  # the stand-in is built here, from the recipe
        client = r.get_client()
        assert client.ping() is True
        client.set("k", "v")
        assert client.get("k") == b"v"
    with RedisContainer("redis:7", password="tc-pw") as r:
        assert r.get_client().ping() is True
        unauthenticated = redis_py.Redis(host=r.get_container_host_ip(), port=int(r.get_exposed_port(6379)))
        with pytest.raises(redis_py.exceptions.AuthenticationError):
            unauthenticated.get("k")
    log = aliased.log_text()
    assert "image alias: redis:7 -> pytest-pods/redis:7 (Redis 7.0 from Debian 12 (bookworm))" in log
    assert log.count("image alias: redis:7 ->") == 1  # once per name: not per container or request


# -- the aliases ----------------------------------------------------------------------------------
def test_official_long_names_and_pull_resolve_to_the_recipe_and_leave_no_tag(dc: Any, aliased: AliasedDaemon) -> None:
    pulled = dc.images.pull("docker.io/library/postgres", tag="15")
    assert PG_IMAGE in pulled.tags
    assert dc.images.get("postgres").id == pulled.id  # postgres:latest
    assert dc.api.inspect_image("postgres:16-bookworm")["Id"] == pulled.id
    tags = {t for img in dc.images.list() for t in img.tags}
    assert not {"postgres:15", "postgres:latest", "postgres:16"} & tags  # an alias is never a tag
    assert "image alias: docker.io/library/postgres:15 -> pytest-pods/postgres:15" in aliased.log_text()


def test_a_users_dockerfile_from_an_official_name_builds_on_the_preset(dc: Any, aliased: AliasedDaemon,
                                                                       tmp_path: Path) -> None:
    """A project's own ``FROM postgres:16`` image with its seed script: the build takes the
    stand-in as ``run`` does (and ``COPY --from``), and no ``postgres:16`` tag appears."""
    (tmp_path / "seed.sql").write_text("create table seeded (x int); insert into seeded values (42);\n")
    (tmp_path / "Dockerfile").write_text(
        "FROM postgres:16\nCOPY seed.sql /docker-entrypoint-initdb.d/\n"
        "COPY --from=postgres:16-bookworm /usr/local/bin/docker-entrypoint.sh /copied-entrypoint.sh\n")
    tag = f"pods-official-app-{uuid.uuid4().hex[:8]}:1"
    img, _logs = dc.images.build(path=str(tmp_path), tag=tag, rm=True)
    try:
        base_layers = dc.images.get(PG_IMAGE).attrs["RootFS"]["Layers"]
        assert img.attrs["RootFS"]["Layers"][:len(base_layers)] == base_layers  # on the stand-in
        ctr = start_pg(dc, tag, env={"POSTGRES_PASSWORD": "pw"})
        ready_pg(ctr, 2)
        assert psql(ctr, "select x from seeded") == "42"
        assert ctr.exec_run(["test", "-s", "/copied-entrypoint.sh"]).exit_code == 0
        tags = {t for i in dc.images.list() for t in i.tags}
        assert "postgres:16" not in tags and "postgres:16-bookworm" not in tags
        assert "image alias: postgres:16 -> pytest-pods/postgres:15" in aliased.log_text()
    finally:
        for ctr in dc.containers.list(all=True, filters={"ancestor": tag}):
            ctr.remove(force=True)
        dc.images.remove(tag, force=True)


def test_a_name_without_alias_or_image_still_fails_as_before(dc: Any) -> None:
    with pytest.raises(docker.errors.ImageNotFound, match="No such image: pods-official-none/app:1"):
        dc.containers.create("pods-official-none/app:1", name=name(), labels={LABEL: "1"})
    digest = "postgres@sha256:" + "1" * 64  # a digest names content: no preset stands in for it
    with pytest.raises(docker.errors.ImageNotFound, match="No such image: postgres@sha256:"):
        dc.containers.create(digest, name=name(), labels={LABEL: "1"})
    with pytest.raises(docker.errors.ImageNotFound, match="No such image: mongo:7"):  # no recipe for MongoDB
        dc.containers.create("mongo:7", name=name(), labels={LABEL: "1"})


# -- the Postgres contract ------------------------------------------------------------------------
def test_postgres_user_password_db_make_the_cluster_and_log_ready_twice(dc: Any) -> None:
    ctr = start_pg(dc, env={"POSTGRES_USER": "alice", "POSTGRES_PASSWORD": "s3cret", "POSTGRES_DB": "shop"})
    ready_pg(ctr, 2)
    logs = ctr.logs()
    assert logs.count(READY_PG) == 2  # the init server's and the real one's, as the official image
    assert b"PostgreSQL init process complete; ready for start up." in logs
    with psycopg.connect(dsn(ctr, "alice", "s3cret", "shop"), connect_timeout=10) as conn:
        assert conn.execute("select current_user, current_database(), rolsuper from pg_roles "
                            "where rolname = current_user").fetchone() == ("alice", "shop", True)
        assert conn.execute("select count(*) from pg_roles where rolname = 'postgres'").fetchone() == (0,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(dsn(ctr, "alice", "nope", "shop"), connect_timeout=10)
    # the server runs as the postgres user
    assert ctr.exec_run(["stat", "-c", "%U", "/proc/1"]).output.strip() == b"postgres"


def test_postgres_db_defaults_to_the_user_and_host_auth_method_trust_needs_no_password(dc: Any) -> None:
    ctr = start_pg(dc, env={"POSTGRES_USER": "bob", "POSTGRES_HOST_AUTH_METHOD": "trust"})
    ready_pg(ctr, 2)
    with psycopg.connect(f"postgresql://bob@127.0.0.1:{host_port(ctr, 5432)}/bob", connect_timeout=10) as conn:
        assert conn.execute("select current_database()").fetchone() == ("bob",)
    assert psql(ctr, "select auth_method from pg_hba_file_rules where 'all' = any(database) "
                     "and address = 'all'", user="bob", db="bob") == "trust"


def test_postgres_started_as_root_runs_the_server_as_postgres(dc: Any) -> None:
    ctr = start_pg(dc, env={"POSTGRES_PASSWORD": "pw"}, user="root")
    ready_pg(ctr, 2)
    assert ctr.exec_run(["stat", "-c", "%U", "/proc/1"]).output.strip() == b"postgres"
    assert psql(ctr, "select current_user") == "postgres"


def test_postgres_without_password_refuses_to_initialise_like_the_official_image(dc: Any) -> None:
    ctr = start_pg(dc, env={"POSTGRES_USER": "carol"})
    assert ctr.wait(timeout=60)["StatusCode"] == 1
    assert b"superuser password is not specified" in ctr.logs()


def test_postgres_initdb_args_pgdata_and_server_arguments(dc: Any) -> None:
    ctr = start_pg(dc, command=["-c", "max_connections=42", "-c", "work_mem=3MB"],
                   env={"POSTGRES_PASSWORD": "pw", "POSTGRES_INITDB_ARGS": "--data-checksums --locale=C",
                        "PGDATA": "/var/lib/postgresql/data/pgdata"})
    ready_pg(ctr, 2)
    assert psql(ctr, "show data_checksums") == "on"
    assert psql(ctr, "show lc_collate") == "C"
    assert psql(ctr, "show data_directory") == "/var/lib/postgresql/data/pgdata"
    assert psql(ctr, "show max_connections") == "42"
    assert psql(ctr, "show work_mem") == "3MB"
    assert psql(ctr, "select auth_method from pg_hba_file_rules where address = 'all'") == "scram-sha-256"


def test_postgres_plain_start_uses_the_ready_cluster_and_takes_server_arguments(dc: Any) -> None:
    ctr = start_pg(dc, command=["postgres", "-c", "max_connections=21"])
    ready_pg(ctr, 1)
    assert ctr.logs().count(READY_PG) == 1  # no variables: no init, the server starts at once
    assert psql(ctr, "show max_connections") == "21"
    assert psql(ctr, "select current_user") == "postgres"


def test_postgres_initdb_d_scripts_run_once_at_first_init(dc: Any) -> None:
    files = {
        "01-schema.sql": (b"create table seen (what text);\n", 0o644),
        "02-data.sql.gz": (gzip.compress(b"insert into seen values ('sql.gz');\n"), 0o644),
        "03-sourced.sh": (b'psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" '
                          b"-c \"insert into seen values ('sourced sh')\"\n", 0o644),
        "04-run.sh": (b'#!/bin/sh\nset -e\npsql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" '
                      b"-c \"insert into seen values ('executable sh')\"\n", 0o755),
        "05-ignored.txt": (b"not a script\n", 0o644),
    }
    ctr = start_pg(dc, env={"POSTGRES_USER": "app", "POSTGRES_PASSWORD": "pw", "POSTGRES_DB": "appdb"}, files=files)
    ready_pg(ctr, 2)
    rows = psql(ctr, "select what from seen order by what", user="app", db="appdb")
    assert rows.splitlines() == ["executable sh", "sourced sh", "sql.gz"]
    logs = ctr.logs().decode()
    assert "running /docker-entrypoint-initdb.d/01-schema.sql" in logs
    assert "ignoring /docker-entrypoint-initdb.d/05-ignored.txt" in logs

    ctr.stop(timeout=20)
    ctr.start()  # the same cluster: no second init, the scripts do not run again
    wait_until(lambda: ctr.logs().count(READY_PG) >= 3, 60, "the restarted server's ready line")
    ready_pg(ctr, 3)
    assert psql(ctr, "select count(*) from seen", user="app", db="appdb") == "3"
    assert ctr.logs().decode().count("running /docker-entrypoint-initdb.d/01-schema.sql") == 1


# -- the Redis contract ---------------------------------------------------------------------------
def start_redis(dc: Any, command: Any = None, files: dict[str, tuple[bytes, int]] | None = None) -> Any:
    ctr = dc.containers.create("redis:7", command, name=name(), labels={LABEL: "1"}, ports={"6379/tcp": None})
    if files:
        assert ctr.put_archive("/usr/local/etc", tar_of(files))
    ctr.start()
    wait_until(lambda: READY_REDIS in ctr.logs(), 30, f"{READY_REDIS!r} in the logs of {ctr.name}")
    return ctr


def test_redis_server_arguments_requirepass_and_appendonly(dc: Any) -> None:
    ctr = start_redis(dc, ["--requirepass", "r-pw", "--appendonly", "yes"])
    port = host_port(ctr, 6379)
    with pytest.raises(redis_py.exceptions.AuthenticationError):
        redis_py.Redis(port=port).get("k")
    r = redis_py.Redis(port=port, password="r-pw")
    assert r.config_get("appendonly") == {"appendonly": "yes"}
    r.set("k", "v")
    assert r.get("k") == b"v"
    assert b"appendonlydir" in ctr.exec_run(["ls", "/data"]).output  # the official image's working dir
    assert ctr.exec_run(["stat", "-c", "%U", "/proc/1"]).output.strip() == b"redis"


def test_redis_config_file_path_and_the_default_port_without_protected_mode(dc: Any) -> None:
    conf = b"port 6379\nrequirepass conf-pw\nmaxmemory 5mb\n"
    ctr = start_redis(dc, ["/usr/local/etc/redis/redis.conf"], files={"redis/redis.conf": (conf, 0o644)})
    r = redis_py.Redis(port=host_port(ctr, 6379), password="conf-pw")
    assert r.config_get("maxmemory") == {"maxmemory": str(5 * 1024 * 1024)}
    plain = start_redis(dc, ["redis-server"])  # no password: reachable from the host, as the official image
    p = redis_py.Redis(port=host_port(plain, 6379))
    assert p.ping() is True
    assert p.config_get("protected-mode") == {"protected-mode": "no"}
