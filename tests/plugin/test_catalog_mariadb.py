"""The MariaDB service of the catalogue (issue 17): Debian 12's MariaDB 10.11 with the official
image's contract, a server per test or a database (and a user) per test that the server
enforces, reached by name, warm and pooled, leaving nothing."""

from __future__ import annotations

from typing import Any

import pytest

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)

TESTS = '''
import pymysql, pytest
from pytest_pods import network
from pytest_pods.plugin.catalog.mariadb import mariadb_container

net = network(scope="module")
own = mariadb_container(environment={"MARIADB_ROOT_PASSWORD": "r00t", "MYSQL_DATABASE": "shop",
                                     "MARIADB_USER": "app", "MARIADB_PASSWORD": "it's s3cret"}, network=net)
per_db = mariadb_container(isolation="database")
per_user = mariadb_container(isolation="database", own_user=True)

def seed(db):
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE items (name VARCHAR(20))")
        cur.execute("INSERT INTO items VALUES ('seeded')")
        conn.commit()

warm = mariadb_container(warm=seed)
pooled = mariadb_container(pool=1)

def test_plain_server_root_on_test(mariadb):
    assert mariadb.url.startswith("mysql://root@127.0.0.1:") and mariadb.url.endswith("/test")
    assert mariadb.sql("SELECT VERSION()").startswith("10.11.")
    assert "Debian" in mariadb.sql("SELECT @@version_comment")
    assert mariadb.sql("SELECT @@character_set_server") == "utf8mb4"
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER(), DATABASE()")
        assert cur.fetchone() == ("root@%", "test")

def test_contract_variables_and_reached_by_name(own, pods, net):
    assert own.url.startswith("mysql://app:it%27s%20s3cret@127.0.0.1:") and own.url.endswith("/shop")
    with own.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER(), DATABASE()")
        assert cur.fetchone() == ("app@%", "shop")
        cur.execute("CREATE TABLE orders (id INT)")
        with pytest.raises(pymysql.err.OperationalError, match="denied"):
            cur.execute("CREATE DATABASE other")
    root = pymysql.connect(host=own.host, port=own.port, user="root", password="r00t")
    root.close()
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        pymysql.connect(host=own.host, port=own.port, user="root", password="")
    # the first-init server logged its ready line too (port 0), as the official image's does
    assert own.logs().count("ready for connections") == 2
    # another container on the network reaches the server by its name (the MySQL handshake:
    # the server speaks first, with its version)
    box = pods.run("busybox", ["sleep", "60"], network=net)
    res = box.exec(["sh", "-c", f"nc -w 2 {own.network_host} 3306 </dev/null | head -c 60"])
    assert own.network_host == own.name
    assert b"10.11." in res.output, res
    assert own.network_url == f"mysql://app:it%27s%20s3cret@{own.name}:3306/shop"

@pytest.mark.parametrize("n", [1, 2])
def test_each_test_its_own_database(per_db, n):
    assert per_db.database.startswith("test_")
    with per_db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE same (who INT)")  # fails if another test's table were here
        cur.execute("INSERT INTO same VALUES (%s)", (n,))
        conn.commit()
        cur.execute("SELECT who FROM same")
        assert cur.fetchall() == ((n,),)

@pytest.mark.parametrize("n", [1, 2])
def test_each_test_its_own_user_allowed_on_its_database_only(per_user, n):
    assert per_user.user == per_user.database != "root"
    with per_user.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE same (who INT)")
        cur.execute("INSERT INTO same VALUES (%s)", (n,))
        conn.commit()
        cur.execute("SHOW DATABASES")
        assert {r[0] for r in cur.fetchall()} == {"information_schema", per_user.database}
        with pytest.raises(pymysql.err.OperationalError, match="denied"):
            cur.execute("CREATE DATABASE test_other")
        with pytest.raises(pymysql.err.OperationalError, match="denied"):
            cur.execute("SELECT * FROM mysql.user")

@pytest.mark.parametrize("n", [1, 2])
def test_warm_snapshot_has_the_seed_and_each_test_a_copy(warm, n):
    with warm.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT name FROM items")
        assert cur.fetchall() == (("seeded",),)
        cur.execute("INSERT INTO items VALUES (%s)", (f"test {n}",))
        conn.commit()

def test_pooled(pooled):
    assert pooled.sql("SELECT 1") == "1"
'''

INIT = '''
import os
from pytest_pods.plugin.catalog.mariadb import mariadb_container

HERE = os.path.dirname(__file__)
inited = mariadb_container(environment={"MYSQL_ALLOW_EMPTY_PASSWORD": "yes", "MYSQL_DATABASE": "app"},
                           volumes={os.path.join(HERE, "initdb"): {"bind": "/docker-entrypoint-initdb.d", "mode": "ro"}})
args = mariadb_container(environment={"MARIADB_ROOT_PASSWORD": "pw"},
                         command=["mariadbd", "--character-set-server=latin1", "--collation-server=latin1_swedish_ci",
                                  "--max-connections=42"])
refused = mariadb_container(environment={"MARIADB_DATABASE": "x"}, timeout=30)

def test_initdb_scripts_run_once_in_order_into_the_database(inited):
    assert inited.user == "root" and inited.password == "" and inited.database == "app"
    assert inited.sql("SELECT GROUP_CONCAT(what ORDER BY n) FROM seen") == "sql,gz,sh"
    logs = inited.logs()
    for f in ("10-first.sql", "20-second.sql.gz"):
        assert f"running /docker-entrypoint-initdb.d/{f}" in logs
    assert "sourcing /docker-entrypoint-initdb.d/30-third.sh" in logs  # not executable: sourced
    assert "ignoring /docker-entrypoint-initdb.d/40-readme.txt" in logs

def test_server_arguments_reach_mariadbd(args):
    assert args.sql("SELECT @@character_set_server, @@collation_server, @@max_connections") == \
        "latin1\\tlatin1_swedish_ci\\t42"

def test_no_root_password_option_refuses_to_start(refused):
    pass  # never runs: the fixture fails
'''


def _initdb(inner: Inner) -> None:
    import gzip

    d = inner.pytester.path / "initdb"
    d.mkdir()
    (d / "10-first.sql").write_text("CREATE TABLE seen (n INT, what VARCHAR(8));\nINSERT INTO seen VALUES (1, 'sql');\n")
    (d / "20-second.sql.gz").write_bytes(gzip.compress(b"INSERT INTO seen VALUES (2, 'gz');\n"))
    (d / "30-third.sh").write_text('echo "INSERT INTO seen VALUES (3, \'sh\');" | docker_process_sql\n')
    (d / "40-readme.txt").write_text("not run\n")


def test_mariadb_contract_isolation_warm_pool_and_network(inner: Inner) -> None:
    if inner.kind != "local":
        pytest.skip("one engine is enough for the server's own behaviour (the image build is the slow part)")
    inner.pytester.makepyfile(test_maria=TESTS)
    result, sid = inner.run("-v", subprocess=True, timeout=600)
    result.assert_outcomes(passed=9)
    assert inner.left(sid) == []


def test_mariadb_initdb_scripts_server_arguments_and_the_missing_password_error(inner: Inner) -> None:
    if inner.kind != "local":
        pytest.skip("one engine is enough for the server's own behaviour (the image build is the slow part)")
    _initdb(inner)
    inner.pytester.makepyfile(test_init=INIT)
    result, sid = inner.run("-v", subprocess=True, timeout=600)
    result.assert_outcomes(passed=2, errors=1)
    text = result.stdout.str()
    assert "Database is uninitialized and password option is not specified" in text
    assert "You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and " \
           "MARIADB_RANDOM_ROOT_PASSWORD" in text
    assert inner.left(sid) == []

NO_CLIENT = '''
import sys
sys.modules["pymysql"] = None  # not installed: the fixtures fall back to the client in the container
import pytest
from pytest_pods.plugin.catalog.mariadb import mariadb_container

per_db = mariadb_container(isolation="database", own_user=True)

@pytest.mark.parametrize("n", [1, 2])
def test_database_per_test_without_pymysql(per_db, n):
    per_db.sql(f"CREATE TABLE same (who INT); INSERT INTO same VALUES ({n})")
    assert per_db.sql("SELECT who FROM same") == str(n)
    assert per_db.sql("SHOW DATABASES").split() == ["information_schema", per_db.database]
'''


def test_mariadb_database_isolation_without_pymysql(inner: Inner) -> None:
    if inner.kind != "local":
        pytest.skip("one engine is enough for the server's own behaviour (the image build is the slow part)")
    inner.pytester.makepyfile(test_noclient=NO_CLIENT)
    result, sid = inner.run("-v", subprocess=True, timeout=600)
    result.assert_outcomes(passed=2)
    assert inner.left(sid) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"isolation": "table"}, "isolation='table': use one of container, database"),
    ({"own_user": True}, r"own_user=True\) needs isolation='database'"),
    ({"isolation": "database", "pool": 2}, r"warm=/pool=\) needs isolation='container'"),
    ({"environment": {"MARIADB_RANDOM_ROOT_PASSWORD": "1"}}, "a random root password is one the fixture cannot"),
])
def test_mariadb_container_refuses_what_it_cannot_do_by_name(kwargs: dict[str, Any], message: str) -> None:
    from pytest_pods.plugin.catalog.mariadb import mariadb_container

    with pytest.raises(ValueError, match=message):
        mariadb_container(**kwargs)
