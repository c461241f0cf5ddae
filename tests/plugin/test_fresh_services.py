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
