"""Per-test fresh services (warm snapshots, the warm pool, template databases): each level
isolates what it promises, the warm-up's schema is in every test's service, and nothing of a
pool or a warm-up outlives the session, also after a failure and after SIGKILL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)

SUITE = '''
import os, psycopg, pytest
from pytest_pods import postgres_container, redis_container

def schema(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute("create table items (name text); insert into items values ('from the warm-up')")

def seed(r):
    r.client().set("seeded", "yes")

pg_container = postgres_container(warm=schema)
pg_pooled = postgres_container(warm=schema, pool=2)
pg_database = postgres_container(isolation="database", warm=schema)
redis_warm = redis_container(warm=seed)
redis_database = redis_container(isolation="database")

@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("level", ["pg_container", "pg_pooled", "pg_database"])
def test_postgres_level(level, n, request):
    pg = request.getfixturevalue(level)
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        rows = [r[0] for r in conn.execute("select name from items order by name")]
        assert rows == ["from the warm-up"], rows   # the schema, and nothing of earlier tests
        conn.execute("insert into items values ('written by test %s')" % n)

@pytest.mark.parametrize("n", [1, 2])
def test_redis_warm(redis_warm, n):
    c = redis_warm.client()
    assert c.get("seeded") == b"yes" and c.get("mine") is None
    c.set("mine", n)

@pytest.mark.parametrize("n", [1, 2])
def test_redis_database(redis_database, n):
    c = redis_database.client()
    assert c.dbsize() == 0
    c.set("mine", n)

def test_fails(pg_pooled):
    if os.environ.get("FAIL_ONE"):
        assert False
'''


def test_each_level_gives_every_test_fresh_state_with_the_warm_schema(inner: Inner) -> None:
    inner.pytester.makepyfile(test_levels=SUITE)
    inner.pytester._monkeypatch.setenv("FAIL_ONE", "1")
    result, sid = inner.run("-p", "no:randomly", subprocess=True, timeout=600)
    result.assert_outcomes(passed=13, failed=1)
    out = result.stdout.str()
    assert "(warm-up)" in out and "pods timeline" in out
    assert inner.left(sid) == []  # pools drained, warm-up containers and servers removed


def test_sigkill_leaves_no_pool_or_server_behind(inner: Inner, pods_root: Path) -> None:
    inner.pytester.makepyfile(test_killed=SUITE.replace("def test_fails(pg_pooled):", '''def test_hangs(pg_pooled, pg_database):
    import time
    print("READY", flush=True)
    time.sleep(600)

def _unused(pg_pooled):'''))
    proc, sid = inner.start_until_ready("test_killed.py", "-k", "hangs")
    deadline = time.monotonic() + 30
    while len(inner.left(sid)) < 3 and time.monotonic() < deadline:  # the taken one, the pool refilling, the server
        time.sleep(0.1)
    assert len(inner.left(sid)) >= 3, inner.left(sid)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 20
    while inner.left(sid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert inner.left(sid) == []


def test_bad_isolation_levels_are_refused() -> None:
    from pytest_pods.plugin.services import postgres_container, redis_container

    with pytest.raises(ValueError, match="isolation='schema': use one of container, database"):
        postgres_container(isolation="schema")
    with pytest.raises(ValueError, match="needs isolation='container'"):
        redis_container(isolation="database", warm=lambda r: None)


RESETS = '''
import psycopg, pytest
from pytest_pods import postgres_container

def schema(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute("""
            create table customers (id serial primary key, name text not null unique);
            create table orders (id serial primary key, customer_id int not null references customers on delete cascade,
                                 qty int not null, total int generated always as (qty * 10) stored);
            create table audit (at text);
            create function note() returns trigger language plpgsql as
              $$ begin insert into audit values (tg_op); return new; end $$;
            create trigger noted after insert on orders for each row execute function note();
            insert into customers (name) values ('ada'), ('bob');
            insert into orders (customer_id, qty) values (1, 2);
        """)

db = postgres_container(isolation="database", warm=schema)
NAMES = []

def state(conn):
    return (conn.execute("select id, name from customers order by id").fetchall(),
            conn.execute("select id, customer_id, qty, total from orders order by id").fetchall(),
            conn.execute("select count(*) from audit").fetchone()[0],
            [r[0] for r in conn.execute("select table_name from information_schema.tables "
                                        "where table_schema = 'public' order by 1")])

FRESH = ([(1, "ada"), (2, "bob")], [(1, 1, 2, 20)], 1, ["audit", "customers", "orders"])

@pytest.mark.parametrize("change", [
    "insert into customers (name) values ('cy'); insert into orders (customer_id, qty) values (4, 5)",
    "update customers set name = 'eve' where id = 1",
    "delete from customers",  # cascades to orders
    "select nextval('customers_id_seq'); select nextval('orders_id_seq')",
    "insert into audit values ('x')",
    "create table extra (x int); insert into extra values (1)",  # a schema change: a new clone
    "alter table customers add column age int",
    "create temporary table scratch (x int); insert into scratch values (1); insert into customers (name) values ('t')",
    "begin; insert into customers (name) values ('open')",  # left open: its connection is ended
    "select 1",
])
def test_each_test_sees_the_template_whatever_the_last_one_did(db, change):
    NAMES.append((db.dbname, change.split()[0] in ("create", "alter") and "temporary" not in change))
    conn = psycopg.connect(db.dsn, autocommit=True)
    assert state(conn) == FRESH
    # the ids a test gets are the template's next ones: sequences are set back too
    assert conn.execute("insert into customers (name) values ('me') returning id").fetchone()[0] == 3
    for statement in change.split("; "):
        conn.execute(statement)
    if not change.startswith("begin"):
        conn.close()  # else left open, in its transaction

def test_databases_without_schema_changes_are_reused_in_place(db):
    # ten tests, two of which changed the schema: those two databases were replaced by new
    # clones, the others put back in place (four in turn)
    NAMES.append((db.dbname, False))
    names = [name for name, _ in NAMES]
    for i, (name, schema_changed) in enumerate(NAMES):
        if schema_changed:
            assert name not in names[i + 1:], NAMES
    assert len(set(names)) <= 4 + 2, NAMES
'''


def test_the_database_level_puts_back_rows_and_sequences_and_replaces_changed_schemas(inner: Inner) -> None:
    inner.pytester.makepyfile(test_resets=RESETS)
    result, sid = inner.run("-p", "no:randomly", "-s", subprocess=True, timeout=600)
    result.assert_outcomes(passed=11)
    assert inner.left(sid) == []
