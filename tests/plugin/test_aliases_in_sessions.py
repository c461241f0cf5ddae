"""Image aliases in the plugin (issue 17): official names served by the recipes, never silently;
the Postgres fixture takes the official image's variables."""

from __future__ import annotations

from typing import Any

import pytest

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)

TESTS = '''
    import psycopg, redis as redis_py
    from pytest_pods import container, postgres_container, wait

    official_pg = container(image="docker.io/library/postgres:16", ports=[5432],
                            wait=wait.all_of(wait.log("ready to accept connections"), wait.tcp(5432)))
    official_redis = container(image="redis:7", ports=[6379], wait="Ready to accept connections")
    app_db = postgres_container(environment={"POSTGRES_USER": "app", "POSTGRES_PASSWORD": "app-pw",
                                             "POSTGRES_DB": "appdb"})

    def test_postgres_16_is_the_recipe(official_pg):
        host, port = official_pg.address(5432)
        with psycopg.connect(f"postgresql://postgres@{host}:{port}/postgres") as conn:
            assert conn.execute("show server_version").fetchone()[0].startswith("15.")

    def test_redis_7_is_the_recipe(official_redis):
        host, port = official_redis.address(6379)
        assert redis_py.Redis(host=host, port=port).info()["redis_version"].startswith("7.0")

    def test_the_fixture_takes_the_official_variables(app_db):
        assert (app_db.user, app_db.password, app_db.dbname) == ("app", "app-pw", "appdb")
        assert app_db.dsn.startswith("postgresql://app:app-pw@")
        with psycopg.connect(app_db.dsn) as conn:
            assert conn.execute("select current_user, current_database()").fetchone() == ("app", "appdb")
        assert app_db.psql("select current_user") == "app"
'''


def test_the_preset_serves_official_names_and_says_so_once(inner: Inner) -> None:
    inner.pytester.makepyfile(test_aliases=TESTS)
    result, sid = inner.run("-v", "--pods-image-aliases=official", subprocess=True, timeout=600)
    result.assert_outcomes(passed=3)
    out = result.stdout.str()
    assert "pods: image alias postgres, postgres:N (preset official) -> pytest-pods/postgres:15" in out
    assert "pods: image alias redis, redis:N (preset official) -> pytest-pods/redis:7" in out
    used = ("image alias: docker.io/library/postgres:16 -> pytest-pods/postgres:15 "
            "(PostgreSQL 15 from Debian 12 (bookworm))")
    assert out.count(used) == 1
    assert out.count("image alias: redis:7 -> pytest-pods/redis:7 (Redis 7.0 from Debian 12 (bookworm))") == 1
    assert inner.left(sid) == []


def test_an_explicit_alias_from_the_environment_and_no_alias_fails_as_before(
        inner: Inner, monkeypatch: pytest.MonkeyPatch) -> None:
    inner.pytester.makepyfile(test_explicit='''
        import redis as redis_py
        from pytest_pods import container

        aliased = container(image="my-registry.example/cache:6", command=["redis-server", "--port", "6379"],
                            ports=[6379], wait="Ready to accept connections")
        missing = container(image="pods-h5-none/app:1")

        def test_aliased(aliased):
            host, port = aliased.address(6379)
            assert redis_py.Redis(host=host, port=port).ping() is True

        def test_missing(missing):
            pass
    ''')
    monkeypatch.setenv("PODS_IMAGE_ALIASES", "my-registry.example/cache:6=pytest-pods/redis:7")
    result, sid = inner.run("-v", subprocess=True, timeout=600)
    result.assert_outcomes(passed=1, errors=1)
    out = result.stdout.str()
    assert "pods: image alias my-registry.example/cache:6 -> pytest-pods/redis:7" in out
    assert "image alias: my-registry.example/cache:6 -> pytest-pods/redis:7 (Redis 7.0" in out
    assert "pods-h5-none/app:1" in out and "image alias: pods-h5-none" not in out
    assert inner.left(sid) == []


def test_a_malformed_alias_is_a_usage_error(inner: Inner) -> None:
    inner.pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = inner.pytester.runpytest_subprocess(f"--pods-root={inner.root}", "-p", "no:cacheprovider",
                                                 "--pods-image-alias", "Postgres:16=x")
    assert result.ret == 4  # pytest's usage error
    assert "pytest-pods: image alias 'Postgres:16=x': invalid reference format" in result.stderr.str()
