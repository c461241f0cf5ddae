"""The plugin as users meet it: inner pytest sessions (pytester) against the real engine."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from dockerd_helper import privileged_unavailable

from pytest_pods import Client, ContainerNotFoundError

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)

HOOKS_CONFTEST = '''
import json, os
LOG = os.path.join(os.path.dirname(__file__), "events.jsonl")

def _log(**kw):
    with open(LOG, "a") as f:
        f.write(json.dumps(kw) + "\\n")

def pytest_pods_container_created(container, fixture):
    _log(event="created", fixture=fixture, name=container.name)

def pytest_pods_container_ready(container, fixture, seconds):
    _log(event="ready", fixture=fixture, name=container.name)

def pytest_pods_container_stopping(container, fixture):
    _log(event="stopping", fixture=fixture, name=container.name)

def pytest_pods_image_built(image, fixture, seconds):
    _log(event="built", fixture=fixture, image=image)
'''


def events(pytester: pytest.Pytester) -> list[dict[str, str]]:
    path = pytester.path / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_dependencies_start_first_and_stop_last_and_nothing_is_left(inner: Inner) -> None:
    inner.pytester.makeconftest(HOOKS_CONFTEST)
    inner.pytester.makepyfile(test_order='''
        from pytest_pods import container, network, wait

        net = network(scope="module")
        db = container(image="busybox", command=["sh", "-c", "echo db up; exec httpd -f -p 5432"],
                       network=net, wait=wait.all_of(wait.log("db up"), wait.tcp(5432)), scope="module")
        app = container(image="busybox", command=["sleep", "60"], network=net,
                        environment={"DB": "{db.name}"}, wait=wait.command("test -n $DB"))

        def test_app_reaches_db_by_name(app, db):
            res = app.exec(["sh", "-c", "echo x | nc $DB 5432 >/dev/null && echo reached"])
            assert res.output.strip() == b"reached", res

        def test_second(app):
            assert app.status == "running"
    ''')
    result, sid = inner.run("-v")
    result.assert_outcomes(passed=2)
    ev = [(e["event"], e["fixture"]) for e in events(inner.pytester)]
    assert ev[:4] == [("created", "db"), ("ready", "db"), ("created", "app"), ("ready", "app")]
    # each test's own app stops before the module's db, which stops once, last
    assert [e for e in ev if e[0] == "stopping"] == [("stopping", "app"), ("stopping", "app"), ("stopping", "db")]
    assert "pods timeline" in result.stdout.str()
    assert inner.left(sid) == []


@pytest.mark.parametrize("case", ["failing-test", "fixture-error", "exit-first"])
def test_nothing_is_left_after_failures(inner: Inner, case: str) -> None:
    inner.pytester.makepyfile(test_fail='''
        import pytest
        from pytest_pods import container

        box = container(image="busybox", command=["sleep", "60"], network="none", scope="module")

        @pytest.fixture
        def half_made(pods):
            pods.run("busybox", ["sleep", "60"], network="none")
            raise RuntimeError("fixture setup fails half-way")

        def test_fails(box, pods):
            pods.run("busybox", ["sleep", "60"], network="none")
            assert False, "this test fails"

        def test_fixture_error(half_made):
            pass

        def test_after(box):
            pass
    ''')
    args = {"failing-test": ["-k", "test_fails"], "fixture-error": ["-k", "test_fixture_error"],
            "exit-first": ["-x"]}[case]
    result, sid = inner.run(*args)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) >= 1
    assert inner.left(sid) == []


def test_ctrl_c_tears_everything_down(inner: Inner, pods_root: Path) -> None:
    inner.pytester.makepyfile(test_sigint='''
        import time
        from pytest_pods import container

        box = container(image="busybox", command=["sleep", "60"], network="none", scope="session")

        def test_waits(box, pods):
            pods.run("busybox", ["sleep", "60"], network="none")
            print("READY", flush=True)
            time.sleep(60)
    ''')
    proc, sid = inner.start_until_ready("test_sigint.py")
    assert len(inner.left(sid)) == 2
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=60)[0]
    assert "KeyboardInterrupt" in out
    assert inner.left(sid) == []


def test_sigkill_of_pytest_is_cleaned_up_by_the_watchdog_within_seconds(inner: Inner, pods_root: Path) -> None:
    inner.pytester.makepyfile(test_killed='''
        import time
        from pytest_pods import container, network

        net = network(scope="session")
        box = container(image="busybox", command=["sleep", "600"], network=net, scope="session")

        def test_waits(box, pods):
            pods.run("busybox", ["sleep", "600"], network="none")
            print("READY", flush=True)
            time.sleep(600)
    ''')
    proc, sid = inner.start_until_ready("test_killed.py")
    assert len(inner.left(sid)) == 3  # two containers and the network
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while inner.left(sid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert inner.left(sid) == []


def test_report_has_the_logs_of_the_failing_tests_containers(inner: Inner) -> None:
    inner.pytester.makepyfile(test_report='''
        from pytest_pods import container

        noisy = container(image="busybox", network="none",
                          command=["sh", "-c", "for i in $(seq 1 80); do echo line-$i; done; sleep 0.2; "
                                               "echo err-line >&2; sleep 60"],
                          wait="err-line")  # last: dockerd stamps each stream as it copies it (a burst of
                                          # stdout may be stamped after a stderr line written later)

        def test_fails(noisy):
            assert False

        def test_passes(noisy):
            pass
    ''')
    result, sid = inner.run("-rA")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "pods: noisy (pods-" in out and "last 50 log lines" in out
    assert "line-80" in out and "err-line" in out
    assert "line-30\n" not in out  # only the last 50 lines
    assert out.count("pods: noisy (") == 1  # the passing test's report has no section
    assert inner.left(sid) == []


def test_readiness_timeout_names_the_fixture_strategy_time_and_shows_the_logs(inner: Inner) -> None:
    inner.pytester.makepyfile(test_timeout='''
        from pytest_pods import container, wait

        slow = container(image="busybox", network="none", command=["sh", "-c", "echo starting up; sleep 60"],
                         wait=wait.log("never printed"), timeout=0.5)

        def test_slow(slow):
            pass
    ''')
    result, sid = inner.run()
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "fixture 'slow'" in out
    assert "not ready after 0.5 s: log line /never printed/" in out
    assert "last 30 log lines" in out and "starting up" in out
    assert inner.left(sid) == []


def test_a_container_exiting_during_the_wait_fails_at_once_with_its_code_and_logs(inner: Inner) -> None:
    inner.pytester.makepyfile(test_exit='''
        from pytest_pods import container, wait

        broken = container(image="busybox", network="none",
                           command=["sh", "-c", "echo config invalid >&2; sleep 0.3; exit 3"],
                           wait=wait.command("false"), timeout=60)
        dies_early = container(image="busybox", network="none", command=["sh", "-c", "exit 4"],
                               wait=wait.tcp(80), timeout=60)

        def test_dies_early(dies_early):
            pass

        def test_broken(broken):
            pass
    ''')
    t0 = time.monotonic()
    result, sid = inner.run()
    assert time.monotonic() - t0 < 20
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    assert "fixture 'broken'" in out and "exited with code 3" in out and "config invalid" in out
    assert "fixture 'dies_early'" in out and "exited with code 4" in out
    assert inner.left(sid) == []


#: where the engine, not the plugin, refuses a value, dockerd's words for it
DOCKERD_SAYS = {"sysctl 'kernel.panic' is not allowed": 'sysctl "kernel.panic" is not in a separate kernel namespace'}


@pytest.mark.parametrize("definition, needle", [
    ('container(image="no-such-image:1")', "No such image"),
    ('container(image="{exposing}", wait=wait.tcp(9999))', "neither exposes nor publishes port 9999"),
    ('container(image="busybox", wait=wait.log("(unclosed"))', "bad regular expression"),
    ('container(image="busybox", imagee="x")', "unknown container option 'imagee' (did you mean 'image'"),
    ('container(image="busybox", environmnet={"A": "1"})', "did you mean 'environment'"),
    ('container(image="busybox", wait=wait.healthcheck())', "the image has none"),
    ('container(build="no-such-dir")', "is not a directory"),
    ('container(image="busybox", ulimits=["nofile=abc"])', "invalid ulimit nofile=abc"),
    ('container(image="busybox", sysctls={"kernel.panic": "1"})', "sysctl 'kernel.panic' is not allowed"),
    ('container(image="busybox", security_opt=["seccomp=/no/such.json"])', "/no/such.json"),
    ('container(image="busybox", tmpfs={"/x": "frob=1"})', "invalid tmpfs option 'frob=1'"),
    ('container(image="busybox", shm_size="lots")', "invalid --shm-size value 'lots'"),
    # issue 15: a value of the wrong kind names the option and the forms it takes
    ('container(image="busybox", environment="A=1")', "option environment='A=1' (str) is not a value it takes; "
                                                      "use environment={'KEY': 'VALUE'} or environment=['KEY=VALUE']"),
    ('container(image="busybox", labels=["a"])', "option labels=['a'] (list) is not a value it takes"),
    ('container(image="busybox", network=5)', "option network=5 (int) is not a value it takes; use network='NAME'"),
    ('container(image="busybox", command=5)', "option command=5 is not a command; use command=['prog', 'arg']"),
    ('container(image="busybox", ports=8000.5)', "option ports=8000.5: not a port or a list of ports; use ports=[8000]"),
    ('container(image="busybox", ports={"80/tcp": "abc"})', "invalid port binding 80/tcp: 'abc'"),
])
def test_bad_configuration_fails_at_setup_naming_the_fixture(
        inner: Inner, client: Client, definition: str, needle: str) -> None:
    exposing = "test/exposes-5432:1"
    inner.engine.images.build(_context(inner.pytester.path, "FROM busybox\nEXPOSE 5432\n"), tag=exposing)
    definition = definition.replace("{exposing}", exposing)
    needle = DOCKERD_SAYS.get(needle, needle) if inner.kind == "dockerd" else needle
    inner.pytester.makepyfile(test_bad=f'''
        from pytest_pods import container, wait

        bad = {definition}

        def test_uses_it(bad):
            pass
    ''')
    result, sid = inner.run()
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "pytest-pods: fixture 'bad':" in out, out
    assert needle in out, out
    assert inner.left(sid) == []


def test_confinement_options_reach_fixture_and_pods_run_containers(inner: Inner) -> None:
    # issue 14: the factory and pods.run take the Client API's confinement keywords, in docker-py's forms
    inner.pytester.makepyfile(test_confined='''
        import os
        import pytest
        from pytest_pods import container

        confined = container(image="busybox", command=["sleep", "60"], network="none", read_only=True,
                             tmpfs={"/x": "size=1m"}, cap_drop=["ALL"], ulimits=[{"Name": "nofile", "Soft": 1024,
                             "Hard": 2048}], shm_size="128m", sysctls={"net.ipv4.ip_forward": "1"},
                             security_opt=["no-new-privileges"], devices=["/dev/zero:/dev/myzero"])

        def out(ctr, script):
            r = ctr.exec(["sh", "-c", script])
            assert r.exit_code == 0, r
            return r.output.decode().split()

        def test_fixture(confined):
            assert out(confined, "grep -E '^(CapEff|NoNewPrivs):' /proc/self/status") == [
                "CapEff:", "0000000000000000", "NoNewPrivs:", "1"]
            # the container's own limits (dockerd 20.10 gives an exec'd process the hard limit as its soft one)
            assert out(confined, "grep 'open files' /proc/1/limits; cat /proc/sys/net/ipv4/ip_forward; "
                       "df -k /dev/shm | tail -1")[3:8] == ["1024", "2048", "files", "1", "shm"]
            assert out(confined, "df -k /dev/shm | tail -1")[1] == "131072"
            assert out(confined, "touch /y 2>&1 || echo refused; touch /x/f && echo wrote; ls /dev/myzero") == [
                "touch:", "/y:", "Read-only", "file", "system", "refused", "wrote", "/dev/myzero"]

        def test_pods_run(pods):
            if os.environ.get("NO_PRIVILEGED"):
                pytest.skip(os.environ["NO_PRIVILEGED"])
            ctr = pods.run("busybox", ["sleep", "60"], network="none", privileged=True,
                           security_opt=["seccomp=unconfined"])
            assert out(ctr, "grep Seccomp: /proc/self/status") == ["Seccomp:", "0"]
    ''')
    no_privileged = privileged_unavailable() if inner.kind == "dockerd" else None
    if no_privileged:
        inner.pytester._monkeypatch.setenv("NO_PRIVILEGED", no_privileged)
    result, sid = inner.run()
    result.assert_outcomes(passed=1, skipped=1) if no_privileged else result.assert_outcomes(passed=2)
    assert inner.left(sid) == []


def _context(base: Path, dockerfile: str) -> Path:
    ctx = base / f"ctx-{uuid.uuid4().hex[:6]}"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def test_unknown_command_line_value_is_a_usage_error(inner: Inner) -> None:
    inner.pytester.makepyfile(test_x="def test_x(): pass")
    result = inner.pytester.runpytest_inprocess("--pods-timeout", "soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--pods-timeout: 'soon' is not a positive number" in result.stderr.str()


@pytest.mark.local_only("simulates a host that cannot run the local engine")
def test_engine_unavailable_skips_with_one_reason_or_fails_when_required(
        inner: Inner, monkeypatch: pytest.MonkeyPatch) -> None:
    # a seam fake: this host can run the engine, so "cannot" is simulated at the one check
    import pytest_pods.engine.preflight as check

    monkeypatch.setattr(check, "unavailable", lambda: "the engine needs root (simulated)")
    inner.pytester.makepyfile(test_needs='''
        from pytest_pods import container
        box = container(image="busybox")
        def test_a(box): pass
        def test_b(pods): pass
        def test_c(): pass
    ''')
    result, _ = inner.run("-rs")
    result.assert_outcomes(passed=1, skipped=2)
    assert "the engine cannot run here: the engine needs root (simulated)" in result.stdout.str()
    result, _ = inner.run("--pods-required")
    result.assert_outcomes(passed=1, errors=2)
    assert "Traceback" not in result.stdout.str()


def test_pods_run_in_a_module_fixture_lasts_the_module_and_in_a_test_only_the_test(inner: Inner) -> None:
    inner.pytester.makeconftest(HOOKS_CONFTEST)
    inner.pytester.makepyfile(test_scopes='''
        import pytest

        @pytest.fixture(scope="module")
        def shared_box(pods):
            return pods.run("busybox", ["sleep", "60"], network="none")

        def test_one(shared_box, pods):
            pods.run("busybox", ["sleep", "60"], network="none")

        def test_two(shared_box):
            assert shared_box.status == "running"
    ''')
    result, sid = inner.run()
    result.assert_outcomes(passed=2)
    ev = [(e["event"], e["fixture"]) for e in events(inner.pytester) if e["event"] in ("created", "stopping")]
    assert ev == [("created", "shared_box"), ("created", "test_one"), ("stopping", "test_one"),
                  ("stopping", "shared_box")]
    assert inner.left(sid) == []


def test_keep_on_failure_keeps_the_failing_tests_containers_and_says_how_to_reach_them(
        inner: Inner, client: Client) -> None:
    inner.pytester.makepyfile(test_keep='''
        from pytest_pods import container

        box = container(image="busybox", command=["sleep", "600"], network="none")

        def test_fails(box):
            assert False

        def test_passes(box):
            pass
    ''')
    result, sid = inner.run("--pods-keep-on-failure")
    result.assert_outcomes(passed=1, failed=1)
    left = inner.left(sid)
    try:
        assert len(left) == 1 and "(running)" in left[0]
        out = result.stdout.str()
        assert "pods: kept containers" in out and "exec -it pods-" in out
    finally:
        for st in client.runtime.list(all=True):
            if (st.get("labels") or {}).get("pytest-pods.session") == sid:
                client.runtime.remove(st["id"], force=True)


def test_reuse_picks_the_container_up_again_and_replaces_it_when_the_config_changes(
        inner: Inner, client: Client) -> None:
    tag = uuid.uuid4().hex[:8]
    inner.pytester.makepyfile(test_reuse=f'''
        import os
        from pytest_pods import container

        svc = container(image="busybox", command=["sleep", "600"], network="none", scope="session",
                        environment={{"FLAVOUR": os.environ.get("FLAVOUR", "a"), "TAG": "{tag}"}})

        def test_it(svc):
            with open(os.path.join(os.path.dirname(__file__), "cid.txt"), "w") as f:
                f.write(svc.id)
    ''')

    def cid(result: object) -> str:
        result.assert_outcomes(passed=1)  # type: ignore[attr-defined]
        return (inner.pytester.path / "cid.txt").read_text()

    first = cid(inner.run("--pods-reuse")[0])
    second = cid(inner.run("--pods-reuse")[0])
    engine = inner.engine
    try:
        assert first == second
        assert engine.containers.get(first).status == "running"
        os.environ["FLAVOUR"] = "b"
        try:
            third = cid(inner.run("--pods-reuse")[0])
        finally:
            del os.environ["FLAVOUR"]
        assert third != first
        with pytest.raises(ContainerNotFoundError):
            engine.containers.get(first)
    finally:
        for ctr in engine.containers.list(all=True):
            if ctr.labels.get("pytest-pods.fixture") == "svc" and tag in json.dumps(ctr.inspect()["Config"]["Env"]):
                ctr.remove(force=True)


def test_xdist_workers_share_one_build_and_one_session_container(inner: Inner, pods_root: Path) -> None:
    nonce = uuid.uuid4().hex
    ctx = inner.pytester.path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM busybox\nARG NONCE={nonce}\nRUN date +%s%N > /built-at\n")
    inner.pytester.makepyfile(test_xdist='''
        import os, time, pytest
        from pytest_pods import container, image

        img = image(path="ctx")
        svc = container(image=img, command=["sleep", "600"], network="none", scope="session")

        @pytest.mark.parametrize("n", range(8))
        def test_shared(svc, n):
            time.sleep(0.2)  # both workers get tests
            built = svc.exec(["cat", "/built-at"]).output.decode().strip()
            with open(os.path.join(os.path.dirname(__file__), "seen.txt"), "a") as f:
                f.write(f"{os.environ['PYTEST_XDIST_WORKER']} {svc.id} {built}\\n")
    ''')
    result, sid = inner.run("-n", "2", "-s", "-v", subprocess=True)
    result.assert_outcomes(passed=8)
    seen = {tuple(line.split()) for line in (inner.pytester.path / "seen.txt").read_text().splitlines()}
    workers = {s[0] for s in seen}
    assert len({s[1] for s in seen}) == 1, seen  # one container
    assert len({s[2] for s in seen}) == 1, seen  # one build
    assert inner.left(sid) == []
    assert workers == {"gw0", "gw1"}, seen


def test_container_object_copy_restart_url_logs(inner: Inner) -> None:
    inner.pytester.makepyfile(test_obj='''
        import urllib.request
        from pytest_pods import container, wait

        web = container(image="busybox", command=["sh", "-c", "mkdir -p /www; echo booted; exec httpd -f -p 8080 -h /www"],
                        ports=[8080], wait=wait.http(8080, "/", status=404))

        def test_object(web, tmp_path):
            (tmp_path / "index.html").write_text("hello from the host")
            web.copy_in(tmp_path / "index.html", "/www/")
            assert urllib.request.urlopen(web.url(8080, "/index.html")).read() == b"hello from the host"
            web.exec("echo made inside > /www/inside.txt")
            web.copy_out("/www/inside.txt", tmp_path / "out.txt")
            assert (tmp_path / "out.txt").read_text() == "made inside\\n"
            assert web.address(8080)[0] == "127.0.0.1"
            web.restart(timeout=1)
            web.wait_ready(wait.all_of(wait.log("booted", times=2), wait.http(8080, "/index.html")))
            assert web.logs().count(b"booted") == 2
            assert web.inspect()["State"]["Running"] is True
    ''')
    result, sid = inner.run()
    result.assert_outcomes(passed=1)
    assert inner.left(sid) == []
