"""The official mariadb and mysql images' names through ``pods daemon --image-aliases official``
(issue 17): testcontainers' own ``MySqlContainer`` runs unchanged on the stand-in built from the
mariadb recipe on first use, and docker-py shows each contract variable taking effect.

The official images are not reachable here (no Docker Hub), so the expected behaviour is written
by hand from their documentation (hub.docker.com/_/mariadb, "Environment Variables" and
"Initializing the database contents"; hub.docker.com/_/mysql, the same sections)."""

from __future__ import annotations

import gzip
import socket
from typing import Any

import pytest
from daemon_helper import wait_until

pytest.importorskip("testcontainers.core.config")
import test_official_images as official

pymysql = pytest.importorskip("pymysql")

# the daemon with the preset on a root of its own (one for this module), testcontainers pointed at it
AliasedDaemon = official.AliasedDaemon
aliased, tc, dc = official.aliased, official.tc, official.dc
LABEL, name, tar_of, host_port = official.LABEL, official.name, official.tar_of, official.host_port
try:
    MySqlContainer: Any = pytest.importorskip("testcontainers.community.mysql").MySqlContainer
except pytest.skip.Exception:  # before 4.14
    MySqlContainer = pytest.importorskip("testcontainers.mysql").MySqlContainer

READY = b"ready for connections"


def test_testcontainers_mysql_8_runs_unchanged_on_the_preset_built_on_first_use(
        tc: Any, aliased: AliasedDaemon, tmp_path: Any) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "01-stuff.sql").write_text("CREATE TABLE stuff (name VARCHAR(20));\nINSERT INTO stuff VALUES ('seeded');\n")
    with MySqlContainer("mysql:8", dialect="pymysql", username="tc", password="tc-secret", dbname="tcdb",
                        seed=str(seed)) as db:
        url = db.get_connection_url()
        assert url.startswith("mysql+pymysql://tc:tc-secret@")
        host, port = db.get_container_host_ip(), int(db.get_exposed_port(3306))
        with pymysql.connect(host=host, port=port, user="tc", password="tc-secret", database="tcdb") as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT CURRENT_USER(), DATABASE(), VERSION()")
                user, database, version = cur.fetchone()
                cur.execute("SELECT name FROM stuff")  # the seed: copied in after the start, run at first init
                assert cur.fetchall() == (("seeded",),)
        assert (user, database) == ("tc@%", "tcdb")
        assert version.startswith("10.11.") and "MariaDB" in version
        with pymysql.connect(host=host, port=port, user="root", password="test"):  # MYSQL_ROOT_PASSWORD
            pass
        with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
            pymysql.connect(host=host, port=port, user="tc", password="wrong")
        assert db.get_wrapped_container().logs().count(READY) == 2  # what MySqlContainer waited for
    log = aliased.log_text()
    assert "image alias: mysql:8 -> pytest-pods/mariadb:10.11 (MariaDB 10.11 from Debian 12 (bookworm))" in log


def test_testcontainers_mariadb_as_root(tc: Any, aliased: AliasedDaemon) -> None:
    with MySqlContainer("mariadb:10.11", username="root", password="rootpw") as db:
        host, port = db.get_container_host_ip(), int(db.get_exposed_port(3306))
        with pymysql.connect(host=host, port=port, user="root", password="rootpw", database="test") as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT CURRENT_USER(), DATABASE()")
                assert cur.fetchone() == ("root@%", "test")
    assert "image alias: mariadb:10.11 -> pytest-pods/mariadb:10.11" in aliased.log_text()


# -- the contract, by docker-py -------------------------------------------------------------------
def start(dc: Any, image: str = "mariadb:10.11", *, command: Any = None, env: dict[str, str] | None = None,
          files: dict[str, tuple[bytes, int]] | None = None, user: str | None = None) -> Any:
    """A started container (files put into /docker-entrypoint-initdb.d before it starts)."""
    ctr = dc.containers.create(image, command, name=name(), environment=env or {}, labels={LABEL: "1"},
                               ports={"3306/tcp": None}, detach=True, user=user)
    if files:
        assert ctr.put_archive("/docker-entrypoint-initdb.d", tar_of(files))
    ctr.start()
    return ctr


def ready(ctr: Any, times: int = 2, timeout: float = 60) -> int:
    """Until the ready line was logged ``times`` times and the published port answers; the port."""
    def check() -> bool:
        ctr.reload()
        if ctr.status == "exited":
            raise AssertionError(f"mariadb exited: {ctr.logs().decode(errors='replace')}")
        if ctr.logs().count(READY) < times:
            return False
        try:
            with socket.create_connection(("127.0.0.1", host_port(ctr, 3306)), timeout=1):
                return True
        except OSError:
            return False

    wait_until(check, timeout, f"mariadb in {ctr.name} ready ({times}x the ready line)")
    return host_port(ctr, 3306)


def query(port: int, sql: str, user: str = "root", password: str = "", database: str | None = None) -> Any:
    with pymysql.connect(host="127.0.0.1", port=port, user=user, password=password, database=database) as conn:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()


def test_without_a_root_password_option_it_refuses_to_start_like_the_official_image(dc: Any) -> None:
    # the docs: "MARIADB_ROOT_PASSWORD ... one of MARIADB_RANDOM_ROOT_PASSWORD,
    # MARIADB_ROOT_PASSWORD_HASH or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD is required"
    ctr = start(dc, "mysql:8", env={"MYSQL_DATABASE": "x"})
    assert ctr.wait(timeout=60)["StatusCode"] == 1
    logs = ctr.logs().decode()
    assert "[ERROR] [Entrypoint]: Database is uninitialized and password option is not specified" in logs
    assert "You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and " \
           "MARIADB_RANDOM_ROOT_PASSWORD" in logs


def test_mariadb_variables_make_root_database_and_user(dc: Any) -> None:
    # the docs: MARIADB_USER/MARIADB_PASSWORD "will be granted all access (corresponding to GRANT
    # ALL) to the MARIADB_DATABASE database"; root's password applies to root@'%' by MARIADB_ROOT_HOST
    ctr = start(dc, env={"MARIADB_ROOT_PASSWORD": "r'oot\\pw", "MARIADB_DATABASE": "my_shop",
                         "MARIADB_USER": "app", "MARIADB_PASSWORD": "app-pw"})
    port = ready(ctr)
    assert query(port, "SELECT CURRENT_USER()", "root", "r'oot\\pw") == (("root@%",),)
    assert query(port, "SELECT DATABASE()", "app", "app-pw", "my_shop") == (("my_shop",),)
    grants = {g for (g,) in query(port, "SHOW GRANTS", "app", "app-pw")}
    assert "GRANT ALL PRIVILEGES ON `my\\_shop`.* TO `app`@`%`" in grants
    dbs = {d for (d,) in query(port, "SHOW DATABASES", "root", "r'oot\\pw")}
    assert dbs == {"information_schema", "mysql", "performance_schema", "sys", "my_shop"}  # no "test"
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        query(port, "SELECT 1", "root", "")


def test_mysql_variables_allow_empty_password_and_files(dc: Any) -> None:
    # the docs: MYSQL_* are read where MARIADB_* are unset; VAR_FILE reads the value from a file
    ctr = dc.containers.create("mysql:8.0", name=name(), labels={LABEL: "1"}, ports={"3306/tcp": None},
                               environment={"MYSQL_ALLOW_EMPTY_PASSWORD": "yes", "MYSQL_DATABASE": "one",
                                            "MYSQL_USER": "u1", "MYSQL_PASSWORD_FILE": "/tmp/pw"})
    assert ctr.put_archive("/tmp", tar_of({"pw": (b"from-a-file", 0o644)}))
    ctr.start()
    port = ready(ctr)
    assert query(port, "SELECT CURRENT_USER()") == (("root@%",),)  # root, no password
    assert query(port, "SELECT DATABASE()", "u1", "from-a-file", "one") == (("one",),)


def test_random_root_password_is_printed_and_root_host_limits_root(dc: Any) -> None:
    # the docs: MARIADB_RANDOM_ROOT_PASSWORD prints "GENERATED ROOT PASSWORD: ..."; MARIADB_ROOT_HOST
    # is the host part of root's account ("%" by default): localhost keeps root inside the container
    ctr = start(dc, env={"MARIADB_RANDOM_ROOT_PASSWORD": "1", "MARIADB_ROOT_HOST": "localhost"})
    port = ready(ctr)
    logs = ctr.logs().decode()
    assert "GENERATED ROOT PASSWORD: " in logs
    pw = logs.split("GENERATED ROOT PASSWORD: ", 1)[1].split()[0]
    assert len(pw) == 32
    with pytest.raises(pymysql.err.OperationalError, match="is not allowed to connect"):
        query(port, "SELECT 1", "root", pw)  # not from outside: no account but root@localhost
    res = ctr.exec_run(["mariadb", "-uroot", f"-p{pw}", "-NBe", "SELECT CURRENT_USER()"])
    assert res.exit_code == 0 and res.output.decode().strip() == "root@localhost", res.output


def test_initdb_d_scripts_run_once_in_order_into_the_database(dc: Any) -> None:
    # the docs: "*.sh, *.sql, *.sql.gz, *.sql.xz and *.sql.zst found in /docker-entrypoint-initdb.d
    # ... executed in alphabetical order"; .sh files without the executable bit are sourced; SQL
    # files go to MARIADB_DATABASE when it is set; only at the first start
    files = {"1-schema.sql": (b"CREATE TABLE t (n INT, what VARCHAR(9));\nINSERT INTO t VALUES (1, 'sql');\n", 0o644),
             "2-data.sql.gz": (gzip.compress(b"INSERT INTO t VALUES (2, 'gz');\n"), 0o644),
             "3-run.sh": (b"#!/bin/sh\nmariadb -uroot -ppw app -e \"INSERT INTO t VALUES (3, 'run')\"\n", 0o755),
             "4-source.sh": (b"echo \"INSERT INTO t VALUES (4, 'source')\" | docker_process_sql\n", 0o644),
             "5-readme.txt": (b"ignored\n", 0o644)}
    ctr = start(dc, env={"MARIADB_ROOT_PASSWORD": "pw", "MARIADB_DATABASE": "app"}, files=files)
    port = ready(ctr)
    rows = query(port, "SELECT what FROM t ORDER BY n", "root", "pw", "app")
    assert [r[0] for r in rows] == ["sql", "gz", "run", "source"]
    assert "ignoring /docker-entrypoint-initdb.d/5-readme.txt" in ctr.logs().decode()
    ctr.restart(timeout=20)  # an initialised data directory: nothing runs again, once ready
    port = ready(ctr, times=3)
    assert query(port, "SELECT COUNT(*) FROM t", "root", "pw", "app") == ((4,),)


def test_server_arguments_and_started_as_root_runs_as_mysql(dc: Any) -> None:
    # the docs: "--character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci" after the
    # image name go to mariadbd; the image starts as root and runs the server as mysql
    ctr = start(dc, command=["--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci"],
                env={"MARIADB_ALLOW_EMPTY_ROOT_PASSWORD": "1"}, user="root")
    port = ready(ctr)
    assert query(port, "SELECT @@character_set_server, @@collation_server") == (("utf8mb4", "utf8mb4_unicode_ci"),)
    status = ctr.exec_run(["cat", "/proc/1/status"]).output.decode()
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    passwd = ctr.exec_run(["id", "-u", "mysql"]).output.decode().strip()
    assert uid == passwd != "0"
    assert "mariadbd" in ctr.exec_run(["cat", "/proc/1/comm"]).output.decode()
