"""The main recipe from the user's side (issue 15): an app, a database and a cache on one network,
fresh state per test, reuse between runs; every value may name another fixture."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_pods import Client

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)


def test_services_at_database_isolation_on_a_network_reach_each_other_by_name(inner: Inner) -> None:
    # the failing forms of the issue: a network fixture object and a "{network}" template given to
    # the service factories at database isolation, and "{db.name}"/"{db.network_dsn}" in an app's env
    inner.pytester.makepyfile(test_recipe='''
        from pytest_pods import container, network, postgres_container, redis_container

        backend = network(scope="session")
        db = postgres_container(isolation="database", network=backend)
        cache = redis_container(isolation="database", network="{backend}")
        app = container(image="busybox", command=["sleep", "600"], network=backend,
                        environment={"DB_HOST": "{db.name}", "DB_URL": "{db.network_dsn}",
                                     "CACHE_URL": "{cache.network_url}"})
        per_test_net = network()
        pg_here = postgres_container(isolation="database", network=per_test_net)

        def test_app_reaches_both_by_name(app, db, cache):
            env = app.exec(["env"]).output.decode()
            assert f"DB_HOST={db.name}" in env
            assert f"DB_URL=postgresql://postgres:postgres@{db.name}:5432/{db.dbname}" in env
            assert f"CACHE_URL=redis://{cache.name}:6379/{cache.db}" in env
            for host, port in ((db.network_host, db.network_port), (cache.network_host, cache.network_port)):
                assert app.exec(["sh", "-c", f"nc -w 5 {host} {port} </dev/null"]).exit_code == 0, (host, port)
            assert db.address() == (db.host, db.port) and db.ip and cache.ip

        def test_fresh_database_each_test_1(db, cache):
            db.psql("create table t (x int)")
            cache.cli("set", "k", "v")

        def test_fresh_database_each_test_2(db, cache):
            assert db.psql("select count(*) from pg_tables where tablename = 't'") == "0"
            assert cache.cli("get", "k") == ""

        def test_a_server_on_a_per_test_network_1(pg_here):
            assert pg_here.psql("select 1") == "1"

        def test_a_server_on_a_per_test_network_2(pg_here):
            assert pg_here.psql("select 1") == "1"
    ''')
    result, sid = inner.run("-v", subprocess=True, timeout=600)
    out = result.stdout.str()
    result.assert_outcomes(passed=5)
    assert "error" not in out.lower().split("short test summary")[0].split("pods timeline")[-1], out
    assert inner.left(sid) == []


def test_a_template_naming_a_missing_attribute_fails_in_one_line_listing_what_there_is(inner: Inner) -> None:
    inner.pytester.makepyfile(test_typo='''
        from pytest_pods import container

        db = container(image="busybox", command=["sleep", "60"], network="none")
        app = container(image="busybox", command=["sleep", "60"], network="none", environment={"H": "{db.nme}"})

        def test_app(app):
            pass
    ''')
    result, sid = inner.run()
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    line = next(ln for ln in out.splitlines() if "pytest-pods: fixture 'app'" in ln)
    assert "template '{db.nme}'" in line and "has no attribute 'nme'" in line, line
    assert "name" in line.split("it has:")[1].split(", ") and "address" in line, line
    assert "Traceback" not in out and "pytest_pods/" not in out, out
    assert inner.left(sid) == []


def test_a_single_port_is_a_port_and_a_bad_one_names_the_option_and_its_forms(inner: Inner) -> None:
    inner.pytester.makepyfile(test_single_port='''
        import urllib.request
        from pytest_pods import container, wait

        web = container(image="busybox", command=["sh", "-c", "echo hi > /i; exec httpd -f -p 8000 -h /"],
                        ports=8000, wait=wait.http(8000, "/i"))
        bad = container(image="busybox", command=["sleep", "60"], ports=8000.5)

        def test_single_port(web):
            assert urllib.request.urlopen(web.url(8000, "/i")).read() == b"hi\\n"

        def test_bad(bad):
            pass
    ''')
    result, sid = inner.run()
    result.assert_outcomes(passed=1, errors=1)
    out = result.stdout.str()
    assert "pytest-pods: fixture 'bad': option ports=8000.5: not a port or a list of ports; use ports=[8000]" in out
    assert inner.left(sid) == []


def test_docker_py_forms_of_volumes_and_single_items_are_taken(inner: Inner) -> None:
    # what a docker-py or testcontainers user writes: volumes as a mapping, one cap as a string
    shared = inner.pytester.path / "shared"
    shared.mkdir()
    (shared / "f").write_text("from the host\n")
    inner.pytester.makepyfile(test_forms=f'''
        from pytest_pods import container

        box = container(image="busybox", command=["sleep", "60"], network="none",
                        volumes={{"{shared}": {{"bind": "/x", "mode": "ro"}}}}, cap_drop="ALL")

        def test_mounted_read_only(box):
            assert box.exec(["cat", "/x/f"]).output == b"from the host\\n"
            assert box.exec(["touch", "/x/g"]).exit_code != 0
    ''')
    result, sid = inner.run()
    result.assert_outcomes(passed=1)
    assert inner.left(sid) == []


def test_an_image_with_a_healthcheck_is_waited_for_by_default(inner: Inner) -> None:
    # no wait=: the image's HEALTHCHECK decides, as compose's `condition: service_healthy` would
    ctx = inner.pytester.path / "slow"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nHEALTHCHECK --interval=1s CMD test -f /tmp/ready\n"
        "CMD [\"sh\", \"-c\", \"sleep 1; touch /tmp/ready; exec sleep 600\"]\n")
    inner.pytester.makepyfile(test_health='''
        from pytest_pods import container

        slow = container(build="slow", network="none")

        def test_ready(slow):
            assert slow.exec(["test", "-f", "/tmp/ready"]).exit_code == 0
    ''')
    result, sid = inner.run()
    result.assert_outcomes(passed=1)
    assert inner.left(sid) == []


def _reused(engine: Any) -> tuple[list[str], list[str]]:
    """The reused containers' ids and networks' names on ``engine`` (``inner.engine``)."""
    ctrs = sorted(c.id for c in engine.containers.list(all=True) if c.name.startswith("pods-reuse-"))
    nets = sorted(n["Name"] for n in engine.networks.list(create_default=False) if n["Name"].startswith("pods-reuse-"))
    return ctrs, nets


def _drop_reused(engine: Any) -> None:
    for c in engine.containers.list(all=True):
        if c.name.startswith("pods-reuse-"):
            c.remove(force=True)
    for n in engine.networks.list(create_default=False):
        if n["Name"].startswith("pods-reuse-"):
            engine.networks.remove(n["Name"])


def test_reuse_with_a_network_picks_both_up_run_after_run_and_leaves_only_them(
        inner: Inner, client: Client) -> None:
    _drop_reused(inner.engine)
    inner.pytester.makepyfile(test_reuse='''
        from pytest_pods import container, network

        backend = network(scope="session")
        box = container(image="busybox", command=["sleep", "600"], network=backend, scope="session")
        peer = container(image="busybox", command=["sleep", "600"], network=backend)

        def test_one(box, peer):
            assert peer.exec(["ping", "-c", "1", "-W", "3", box.name]).exit_code == 0

        def test_two(box, peer):
            pass
    ''')
    try:
        seen = []
        for run in range(3):
            result, sid = inner.run("--pods-reuse", "-v")
            out = result.stdout.str()
            result.assert_outcomes(passed=2)
            assert "error" not in out.lower().split("pods timeline")[0].split("test session starts")[1], out
            ctrs, nets = _reused(inner.engine)
            assert len(ctrs) == 1 and len(nets) == 1, (ctrs, nets)
            seen.append((ctrs, nets))
            timeline = out.split("pods timeline")[1]
            box_row = next(ln for ln in timeline.splitlines() if ln.startswith("box "))
            assert ("(reused)" in box_row) == (run > 0), box_row
            assert all("(reused)" not in ln for ln in timeline.splitlines() if ln.startswith("peer "))
            assert all("pods-reuse-" in what for what in inner.left(sid)), inner.left(sid)
        assert seen[0] == seen[1] == seen[2]
    finally:
        _drop_reused(inner.engine)


def test_reuse_of_a_database_isolated_server_gives_fresh_databases_run_after_run(
        inner: Inner, client: Client) -> None:
    _drop_reused(inner.engine)
    inner.pytester.makepyfile(test_reuse_db='''
        from pytest_pods import network, postgres_container

        backend = network(scope="session")
        db = postgres_container(isolation="database", network=backend)

        def test_one(db):
            assert db.psql("select count(*) from pg_tables where tablename = 't'") == "0"
            db.psql("create table t (x int)")

        def test_two(db):
            assert db.psql("select count(*) from pg_tables where tablename = 't'") == "0"
            db.psql("create table t (x int)")
    ''')
    try:
        servers = []
        for _ in range(2):
            result, _sid = inner.run("--pods-reuse")
            result.assert_outcomes(passed=2)
            servers.append(_reused(inner.engine))
        assert servers[0] == servers[1] and len(servers[0][0]) == 1, servers
    finally:
        _drop_reused(inner.engine)


@pytest.mark.local_only("two projects' reused containers in one root: the engine is the same either way")
def test_two_projects_with_the_same_fixture_name_keep_their_own_reused_containers(
        inner: Inner, client: Client) -> None:
    _drop_reused(client)
    for project in ("one", "two"):
        d = inner.pytester.path / project
        d.mkdir()
        (d / "pytest.ini").write_text("[pytest]\n")
        (d / "test_x.py").write_text(
            "from pytest_pods import container\n\n"
            f"box = container(image='busybox', command=['sh', '-c', 'echo {project}; sleep 600'], "
            "network='none', scope='session')\n\n"
            f"def test_it(box):\n    assert box.exec(['true']).exit_code == 0\n"
            f"    assert b'{project}' in box.logs()\n")
    try:
        ids = {}
        for project in ("one", "two", "one", "two"):
            result, _ = inner.run("--pods-reuse", f"--rootdir={inner.pytester.path / project}",
                                  str(inner.pytester.path / project), subprocess=True)
            result.assert_outcomes(passed=1)
            ctrs, _nets = _reused(client)
            ids.setdefault(project, set()).update(ctrs)
        assert len(_reused(client)[0]) == 2
        assert ids["one"] == ids["two"] and len(ids["one"]) == 2  # both stayed through both projects' runs
    finally:
        _drop_reused(client)


@pytest.mark.local_only("a fresh root of its own, on the local engine")
def test_a_shipped_service_image_named_in_container_is_made_on_a_fresh_root(
        inner: Inner, client: Client, release_root: Callable[[Client], None]) -> None:
    # the README's form (container(image="pytest-pods/redis:7")) runs first in the file, before any
    # test asked for the redis fixture; the root has only the Debian base (loaded, not bootstrapped)
    fresh = Path(tempfile.mkdtemp(prefix="pods-fresh-", dir="/var/tmp"))
    try:
        base = fresh / "base.tar"
        client.images.save(["debian:bookworm"], base)
        Client(fresh / "root").images.load(base)
        inner.pytester.makepyfile(test_fresh='''
            from pytest_pods import container

            cache = container(image="pytest-pods/redis:7", ports=[6379])

            def test_named_first(cache):
                assert cache.exec(["redis-cli", "ping"]).output.strip() == b"PONG"

            def test_fixture_after(redis):
                assert redis.cli("ping") == "PONG"
        ''')
        result = inner.pytester.runpytest_subprocess(f"--pods-root={fresh / 'root'}", "-p", "no:cacheprovider",
                                                     timeout=900)
        result.assert_outcomes(passed=2)
    finally:
        release_root(Client(fresh / "root"))
        shutil.rmtree(fresh, ignore_errors=True)
