"""Compose files as fixtures (issue 16): ``compose("docker-compose.yml")`` in inner pytest
sessions, on the local engine and through ``pods daemon``: what a user's tests see of the stack,
the report of a failing test, and that teardown (or a failed start) leaves nothing."""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from pytest_pods import Client, ImageNotFoundError
from pytest_pods.plugin.session_daemon import rootless

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)

COMPOSE = """\
    services:
      web:
        build: ./web
        ports: ["8000"]
        volumes:
          - shared:/www/shared
          - ./static:/www/static:ro
        networks:
          front:
            aliases: [www]
          default:
        depends_on:
          api: {condition: service_healthy}
          migrate: {condition: service_completed_successfully}
      api:
        image: busybox
        env_file: api.env
        command: sh -c 'echo api starting; mkdir -p /w; echo "$$MESSAGE" > /w/index.html; sleep 0.3; touch /tmp/ready; exec httpd -f -p 8080 -h /w'
        networks:
          default:
            aliases: [api-alias]
        healthcheck:
          test: ["CMD", "test", "-f", "/tmp/ready"]
          interval: 200ms
          retries: 50
      migrate:
        image: busybox
        environment:
          GREETING: "${GREETING_WORD:?set GREETING_WORD in .env}"
        volumes: [shared:/shared]
        entrypoint: ["/bin/sh", "-c"]
        command: ['echo "$$GREETING from migrate" > /shared/data.txt; echo migrated']
      probe:
        image: busybox
        profiles: [debug]
        command: sleep 1000
        tty: true
    networks:
      front: {}
    volumes:
      shared: {}
    """


def make_project(inner: Inner) -> None:
    path = inner.pytester.path
    (path / "docker-compose.yml").write_text(textwrap.dedent(COMPOSE))
    (path / ".env").write_text("GREETING_WORD=hello\n")
    (path / "api.env").write_text("MESSAGE=from the api\n")
    (path / "web").mkdir()
    (path / "web" / "Dockerfile").write_text(
        'FROM busybox\nRUN mkdir /www && echo ok > /www/health\nCMD ["httpd", "-f", "-p", "8000", "-h", "/www"]\n')
    (path / "static").mkdir()
    (path / "static" / "page.txt").write_text("a static page\n")


def test_compose_stack_starts_in_order_and_serves_what_its_services_made(inner: Inner) -> None:
    make_project(inner)
    inner.pytester.makepyfile(test_stack='''
        import urllib.request
        from pytest_pods import compose

        stack = compose("docker-compose.yml", project="h3stack", scope="module")

        def get(url):
            return urllib.request.urlopen(url, timeout=10).read().decode()

        def test_services(stack, pods):
            assert sorted(stack.services) == ["api", "migrate", "web"]  # probe: only in profile debug
            assert stack["web"].name == "h3stack-web-1" and stack.service("api").name == "h3stack-api-1"
            # the one-shot job ran to completion before web started; its file is in the named volume
            assert stack["migrate"].status == "exited"
            assert get(stack["web"].url(8000, "/shared/data.txt")) == "hello from migrate\\n"
            assert get(stack["web"].url(8000, "/static/page.txt")) == "a static page\\n"
            # service names and aliases resolve on the project's networks
            for host in ("api", "api-alias"):
                out = stack["web"].exec(["wget", "-qO-", f"http://{host}:8080/"])
                assert out.output.decode() == "from the api\\n", out
            assert pods.client.networks.get("h3stack_default")["Name"] == "h3stack_default"
            assert pods.client.networks.get("h3stack_front")["Name"] == "h3stack_front"
            assert pods.client.volumes.get("h3stack_shared")["Name"] == "h3stack_shared"
            labels = stack["web"].labels
            assert labels["com.docker.compose.project"] == "h3stack"
            assert labels["com.docker.compose.service"] == "web"

        def test_same_stack_in_the_module(stack):
            assert "api starting" in stack.logs("api")
            assert "migrate  | migrated" in stack.logs()
    ''')
    result, sid = inner.run("-v", subprocess=True, timeout=600)
    result.assert_outcomes(passed=2)
    assert inner.left(sid) == []
    assert [v["Name"] for v in inner.client.volumes.list() if v["Name"].startswith("h3stack")] == []


def test_failing_test_reports_every_services_log_and_profiles_select(inner: Inner) -> None:
    make_project(inner)
    inner.pytester.makepyfile(test_fail='''
        from pytest_pods import compose

        stack = compose("docker-compose.yml", services=["probe", "api"], keep_volumes=True)
        debug = compose("docker-compose.yml", profiles=["debug"], environment={"GREETING_WORD": "hi"})

        def test_fails(stack):
            assert sorted(stack.services) == ["api", "probe"]
            assert False, "the test's own failure"

        def test_profile(debug):
            assert sorted(debug.services) == ["api", "migrate", "probe", "web"]
            assert "hi from migrate" in debug["web"].exec(["cat", "/www/shared/data.txt"]).output.decode()
    ''')
    result, sid = inner.run("-v", "-rA", subprocess=True, timeout=600)
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "the test's own failure" in out
    # a section per service, named after the fixture and the container, with the service's lines
    assert "pods: stack (" in out and "-api-1) " in out and "-probe-1) " in out
    assert "api starting" in out
    assert "ComposeWarning" in out and "tty: ignored" in out
    assert inner.left(sid) == []


def test_bad_compose_file_fails_in_one_line_and_makes_nothing(inner: Inner) -> None:
    path = inner.pytester.path
    (path / "bad.yml").write_text("services:\n  a:\n    image: busybox\n    ports: ['80:80:80:80']\n")
    (path / "unhealthy.yml").write_text(textwrap.dedent("""\
        services:
          first:
            image: busybox
            command: sleep 1000
          second:
            image: busybox
            command: sleep 1000
            depends_on: [first]
            volumes: [v:/v]
            healthcheck: {test: ["CMD", "false"], interval: 100ms, retries: 2}
        volumes:
          v:
        """))
    inner.pytester.makepyfile(test_bad='''
        from pytest_pods import compose

        bad = compose("bad.yml")
        sick = compose("unhealthy.yml", project="h3sick", timeout=20)

        def test_bad(bad):
            pass

        def test_sick(sick):
            pass
    ''')
    result, sid = inner.run("-v", subprocess=True, timeout=600)
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    assert f"pytest-pods: fixture 'bad': compose file {path / 'bad.yml'}: service 'a': key 'ports': " \
           "'80:80:80:80' is not a port" in out
    assert "pytest-pods: fixture 'sick': " in out and "service 'second'" in out
    assert "Traceback" not in out and "pytest_pods/" not in out
    assert inner.left(sid) == []
    assert [v["Name"] for v in inner.client.volumes.list() if v["Name"].startswith("h3sick")] == []


# -- a real multi-service file: examples/compose (the notes API of examples/app, its worker,
# Postgres on a named volume with a health check, Redis), through Debian's docker-compose against
# pods daemon and through the compose() fixture

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "compose"
RECIPES = Path(__file__).resolve().parents[2] / "pytest_pods" / "plugin" / "recipes"


def recipe_images(client: Client) -> None:
    """The file's Postgres and Redis images, as the plugin builds them on first use (docker-compose
    cannot: Docker Hub is not reachable, and it does not know the plugin's recipes)."""
    for name, tag in (("postgres", "pytest-pods/postgres:15"), ("redis", "pytest-pods/redis:7")):
        try:
            client.images.get(tag)
        except ImageNotFoundError:
            client.images.build(RECIPES / name, tag=tag)


NOTES_CHECK = '''
import json, time, urllib.error, urllib.request

def use_notes(base):
    """What a user of the stack sees: a note stored in Postgres, read through the Redis cache,
    its words counted by the worker."""
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(base + "/health", timeout=5)
            break
        except (urllib.error.URLError, OSError):
            assert time.monotonic() < deadline, "the app never became healthy"
            time.sleep(0.5)
    req = urllib.request.Request(base + "/notes", data=json.dumps({"text": "three little words"}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 201
        note = json.load(r)["id"]
    with urllib.request.urlopen(f"{base}/notes/{note}", timeout=10) as r:
        assert json.load(r)["text"] == "three little words" and r.headers["X-Cache"] == "miss"
    with urllib.request.urlopen(f"{base}/notes/{note}", timeout=10) as r:
        assert r.headers["X-Cache"] == "hit"
    while True:
        with urllib.request.urlopen(f"{base}/notes/{note}/words", timeout=10) as r:
            if r.status == 200:
                assert json.load(r)["words"] == 3
                return
        assert time.monotonic() < deadline, "the worker never counted the words"
        time.sleep(0.2)
'''


def test_notes_stack_through_docker_compose_against_pods_daemon(daemon: Any, client: Client, tmp_path: Path) -> None:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (Debian's docker-compose 1.29: apt-get install docker-compose)")
    recipe_images(client)
    project = f"h3notes{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "DOCKER_HOST": daemon.host, "HOME": str(tmp_path), "DOCKER_CONFIG": str(tmp_path / "cfg")}

    def dc(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker-compose", "-p", project, *args], cwd=EXAMPLE, env=env, capture_output=True,
                              text=True, timeout=timeout)

    namespace: dict[str, Any] = {}
    exec(NOTES_CHECK, namespace)
    try:
        up = dc("up", "-d", "--build", timeout=900)  # the app's image through the daemon's build API
        assert up.returncode == 0, up.stdout + up.stderr
        ps = dc("ps")
        assert ps.returncode == 0 and "shell" not in ps.stdout  # the debug profile is off
        assert "healthy" in ps.stdout, ps.stdout
        port = dc("port", "app", "8080").stdout.strip().rsplit(":", 1)[1]
        namespace["use_notes"](f"http://127.0.0.1:{port}")
        logs = dc("logs", "--no-color", "worker")
        assert logs.returncode == 0 and "counted the words of note" in logs.stdout, logs.stdout + logs.stderr
        db = dc("exec", "-T", "db", "psql", "-U", "postgres", "-tAc", "select count(*) from notes")
        assert db.stdout.strip() == "1", db.stdout + db.stderr
        assert f"{project}_pgdata" in [v["Name"] for v in client.volumes.list()]
    finally:
        down = dc("down", "-v")
    assert down.returncode == 0, down.stdout + down.stderr
    assert [st["name"] for st in client.runtime.list(all=True) if st["name"].startswith(project)] == []
    assert [n["name"] for n in client.runtime.networks.list() if n["name"].startswith(project)] == []
    assert [v["Name"] for v in client.volumes.list() if v["Name"].startswith(project)] == []


PROFILE_FILE = """\
services:
  app:
    image: busybox:latest
    command: ["httpd", "-f", "-p", "8080", "-h", "/"]
    networks: [front, back]
  db:
    image: busybox:latest
    command: ["httpd", "-f", "-p", "5432", "-h", "/"]
    networks:
      back:
        aliases: [postgres]
  shell:
    image: busybox:latest
    profiles: [debug]
    command: ["sleep", "3600"]
    networks: [back]
networks:
  front: {}
  back: {}
"""


def test_docker_compose_profile_service_joins_a_running_stack(daemon: Any, client: Client, tmp_path: Path) -> None:
    """A second ``up`` on a running project (here: a profile's service added to it), as users do.
    The same steps pass against Debian's dockerd (checked with bench/daemon.py's dockerd), whose
    inspect of these networks shows ``"Options": {}``."""
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (Debian's docker-compose 1.29: apt-get install docker-compose)")
    project = f"h3prof{uuid.uuid4().hex[:6]}"
    (tmp_path / "docker-compose.yml").write_text(PROFILE_FILE)
    env = {**os.environ, "DOCKER_HOST": daemon.host, "HOME": str(tmp_path), "DOCKER_CONFIG": str(tmp_path / "cfg")}

    def dc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker-compose", "-p", project, *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)

    try:
        up = dc("up", "-d")
        assert up.returncode == 0, up.stdout + up.stderr
        running = [st["name"] for st in client.runtime.list(all=True) if st["name"].startswith(project)]
        assert len(running) == 2 and not [n for n in running if "shell" in n], running  # the profile is off
        second = dc("--profile", "debug", "up", "-d", "shell")
        assert second.returncode == 0, second.stdout + second.stderr
        # on the back network only, the app (on two networks) and the db's alias answer
        probe = dc("--profile", "debug", "exec", "-T", "shell", "sh", "-c",
                   "wget -qO /dev/null http://app:8080/etc/passwd && wget -qO /dev/null http://postgres:5432/etc/passwd "
                   "&& echo reached")
        assert probe.stdout.rstrip().endswith("reached"), probe.stdout + probe.stderr
    finally:
        down = dc("--profile", "debug", "down", "-v")
    assert down.returncode == 0, down.stdout + down.stderr
    assert [st["name"] for st in client.runtime.list(all=True) if st["name"].startswith(project)] == []
    assert [n["name"] for n in client.runtime.networks.list() if n["name"].startswith(project)] == []


@pytest.mark.pods_engine("the plugin's recipes say HEALTHCHECK --start-interval, which the classic builder of "
                        "Debian's dockerd does not know")
def test_notes_stack_through_the_compose_fixture(inner: Inner, client: Client) -> None:
    recipe_images(client)
    inner.pytester.makepyfile(test_notes=NOTES_CHECK + f'''
from pytest_pods import compose

notes = compose({str(EXAMPLE / "docker-compose.yml")!r}, project="h3notesfx", scope="module")

def test_notes(notes):
    assert sorted(notes.services) == ["app", "cache", "db", "worker"]
    use_notes(notes["app"].url(8080).rstrip("/"))
    assert "counted the words of note" in notes.logs("worker")
    assert notes["db"].exec(["psql", "-U", "postgres", "-tAc", "select count(*) from notes"]).output.strip() == b"1"
''')
    result, sid = inner.run("-v", subprocess=True, timeout=900)
    result.assert_outcomes(passed=1)
    assert inner.left(sid) == []
    assert [v["Name"] for v in inner.client.volumes.list() if v["Name"].startswith("h3notesfx")] == []


@pytest.mark.local_only("extra_hosts and restart policies reach the local engine's create; the remote client takes neither yet")
def test_extra_hosts_and_restart_policy_reach_the_engine(inner: Inner, client: Client) -> None:
    if rootless():
        pytest.skip("rootless: the plugin's engine is its session daemon, through the remote client, which takes "
                    "no extra_hosts/restart_policy yet")
    takes = inspect.signature(client.containers.create).parameters
    if "extra_hosts" not in takes or "restart_policy" not in takes:
        pytest.skip("this engine's create takes no extra_hosts/restart_policy yet")
    (inner.pytester.path / "docker-compose.yml").write_text(textwrap.dedent("""\
        services:
          flaky:
            image: busybox
            command: sh -c 'grep example.test /etc/hosts; exit 3'
            extra_hosts: ["example.test:10.1.2.3"]
            restart: on-failure:2
        """))
    inner.pytester.makepyfile(test_hosts='''
        import time
        from pytest_pods import compose

        stack = compose("docker-compose.yml")

        def test_hosts_and_restarts(stack):
            ctr = stack["flaky"]
            deadline = time.monotonic() + 30
            while ctr.inspect()["RestartCount"] < 2 or ctr.status != "exited":
                assert time.monotonic() < deadline, ctr.inspect()["State"]
                time.sleep(0.1)
            assert ctr.logs().decode().count("10.1.2.3\\texample.test") == 3  # the first run and 2 restarts
    ''')
    result, sid = inner.run("-v", subprocess=True, timeout=300)
    result.assert_outcomes(passed=1)
    assert inner.left(sid) == []


@pytest.mark.pods_engine("looks for the kept volume in our engine's store")
def test_keep_volumes_keeps_the_named_volume_and_the_next_stack_finds_its_data(inner: Inner) -> None:
    (inner.pytester.path / "docker-compose.yml").write_text(textwrap.dedent("""\
        services:
          store:
            image: busybox
            command: sh -c 'cat /data/count 2>/dev/null; echo x >> /data/count; touch /tmp/done; exec sleep 1000'
            volumes: [data:/data]
            healthcheck: {test: ["CMD", "test", "-f", "/tmp/done"], interval: 100ms}
        volumes:
          data:
        """))
    project = f"h3keep{uuid.uuid4().hex[:6]}"
    inner.pytester.makepyfile(test_keep=f'''
        import time
        from pytest_pods import compose

        first = compose("docker-compose.yml", project={project!r}, keep_volumes=True)
        second = compose("docker-compose.yml", project={project!r})

        def wait_log(ctr, text):
            deadline = time.monotonic() + 10
            while text not in ctr.logs().decode():
                assert time.monotonic() < deadline, ctr.logs()
                time.sleep(0.05)

        def test_1(first):
            assert first.volumes == {{"data": "{project}_data"}}

        def test_2(second):
            wait_log(second["store"], "x")  # the first stack's line, in the kept volume
    ''')
    try:
        result, sid = inner.run("-v", subprocess=True, timeout=300)
        result.assert_outcomes(passed=2)
        assert inner.left(sid) == []
        # the second stack (without keep_volumes) removed it, as down -v does
        assert [v["Name"] for v in inner.client.volumes.list() if v["Name"].startswith(project)] == []
    finally:
        for v in inner.client.volumes.list():
            if v["Name"].startswith(project):
                inner.client.volumes.remove(v["Name"], force=True)


def test_a_job_that_never_completes_fails_its_dependant_in_one_line(inner: Inner) -> None:
    (inner.pytester.path / "docker-compose.yml").write_text(textwrap.dedent("""\
        services:
          job:
            image: busybox
            command: sleep 1000
          app:
            image: busybox
            command: sleep 1000
            depends_on:
              job: {condition: service_completed_successfully}
        """))
    inner.pytester.makepyfile(test_job='''
        from pytest_pods import compose

        stack = compose("docker-compose.yml", timeout=2)

        def test_never(stack):
            pass
    ''')
    result, sid = inner.run("-v", subprocess=True, timeout=300)
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert ("service 'app': key 'depends_on.job': condition service_completed_successfully, but service 'job' "
            "still runs after 2 s") in out
    assert "Traceback" not in out
    assert inner.left(sid) == []
