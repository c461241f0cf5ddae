"""The ready-made services through the plugin: real Postgres and Redis, fresh per test."""

from __future__ import annotations

from typing import Any

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)


def test_postgres_and_redis_are_fresh_per_test_and_reachable_with_real_clients(inner: Inner) -> None:
    web = inner.pytester.path / "web"
    web.mkdir()
    (web / "Dockerfile").write_text(
        "FROM busybox\nRUN mkdir /www && echo ok > /www/health && echo hello > /www/index.html\n"
        "EXPOSE 8000\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n")
    inner.pytester.makepyfile(test_services='''
        import psycopg, redis as redis_py, urllib.request
        from pytest_pods import http_service, postgres_container

        shared_pg = postgres_container(scope="module")
        site = http_service("web", 8000, health="/health")

        def test_postgres_write(postgres):
            with psycopg.connect(postgres.dsn, autocommit=True) as conn:
                conn.execute("create table t (x int)")
                conn.execute("insert into t values (42)")
            assert postgres.psql("select x from t") == "42"

        def test_postgres_is_fresh(postgres):
            assert postgres.psql("select count(*) from pg_tables where tablename = 't'") == "0"
            assert postgres.dsn.startswith("postgresql://postgres:postgres@127.0.0.1:")

        def test_redis_write(redis):
            client = redis.client()
            client.set("k", "v")
            assert redis.cli("get", "k") == "v"

        def test_redis_is_fresh(redis):
            assert redis_py.Redis.from_url(redis.url).get("k") is None

        def test_module_scoped_postgres_keeps_state_1(shared_pg):
            shared_pg.psql("create table kept (x int)")

        def test_module_scoped_postgres_keeps_state_2(shared_pg):
            assert shared_pg.psql("select count(*) from kept") == "0"

        def test_http_service(site):
            assert urllib.request.urlopen(site.url("/index.html")).read() == b"hello\\n"
    ''')
    result, sid = inner.run("-v", subprocess=True, timeout=600)
    result.assert_outcomes(passed=7)
    assert "pods timeline" in result.stdout.str()
    assert inner.left(sid) == []
