#!/usr/bin/env python3
"""The catalogue's services (issue 17, Measure): per test, the time from the start of the test's
setup to a first usable operation (a query or command answered), at our levels (a container per
test, pool=2, the service's database-level isolation) next to testcontainers-python's module for
the same service, with the same image, through `pods daemon`.

Run as root:  python3 bench/catalogue.py [--rounds N] [--tests N] [--services a,b] [--root R]

Each (service, level) is a generated suite of --tests tests run as `python3 -m pytest` in a
subprocess; the rounds interleave the levels (for each service: cold, pool=2, its database level,
tc, tc-0.05 (testcontainers polling every 50 ms); then the next service; then the next round).
One warm-up run of every suite is not counted. A small pytest plugin (loaded with -p) records
perf_counter at the start of each test's setup phase; the test body records it again right
after its first operation has answered. testcontainers runs with our plugin off (-p no:pods),
DOCKER_HOST at `pods daemon --image-aliases official` on a unix socket in the scratch dir,
serving the same engine root, so both sides start the same image IDs. At the end: the daemon
stopped by its PID, containers and images of the run removed by ID, the scratch dir (with the
scratch root) deleted. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "pytest_pods" / "plugin" / "recipes"
BASE_IMAGES = REPO / ".cache" / "base-images.tar"  # busybox + debian:bookworm, as `make images` leaves them
SESSION_LABEL = "pytest-pods.session"
AIM = 5.0  # testcontainers' median / ours, for each level
POOL = 2
FAST = "tc-0.05"  # testcontainers with TC_POOLING_INTERVAL=0.05

# -- the services -----------------------------------------------------------------------------
# Per service: our fixture's factory (import line, name), its image, its database-level isolation
# (None: it has none), the first operation (one function `first_op(v)`, the same for our levels
# and for testcontainers: `v` is our fixture's value, or a namespace with the same attributes
# made from testcontainers' container), and testcontainers' fixture as its users write it (the
# official name, served by the daemon's preset; None: no module here, or none whose API matches).
SERVICES: dict[str, dict[str, Any]] = {
    "postgres": {
        "factory": ("from pytest_pods import postgres_container", "postgres_container"),
        "image": "pytest-pods/postgres:15", "db": "database",
        "op_what": "psycopg connect + select 1",
        "op": '''
import psycopg


def first_op(v):
    with psycopg.connect(v.dsn) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
''',
        "tc": '''
from testcontainers.community.postgres import PostgresContainer


@pytest.fixture
def svc():
    with PostgresContainer("postgres:16", driver=None) as c:
        yield types.SimpleNamespace(dsn=c.get_connection_url())
''',
        "tc_what": 'PostgresContainer("postgres:16", driver=None): POSTGRES_USER/PASSWORD/DB=test, so the '
                   "image's entrypoint makes that cluster first (initdb), as the official image does",
    },
    "redis": {
        "factory": ("from pytest_pods import redis_container", "redis_container"),
        "image": "pytest-pods/redis:7", "db": "database",
        "op_what": "redis-py PING",
        "op": '''
import redis


def first_op(v):
    c = redis.Redis(host=v.host, port=int(v.port), db=getattr(v, "db", 0))
    try:
        assert c.ping()
    finally:
        c.close()
''',
        "tc": '''
from testcontainers.community.redis import RedisContainer


@pytest.fixture
def svc():
    with RedisContainer("redis:7") as c:
        yield types.SimpleNamespace(host=c.get_container_host_ip(), port=c.get_exposed_port(6379), db=0)
''',
        "tc_what": 'RedisContainer("redis:7"): waits for a PING through the published port',
    },
    "mariadb": {
        "factory": ("from pytest_pods.plugin.catalog.mariadb import mariadb_container", "mariadb_container"),
        "image": "pytest-pods/mariadb:10.11", "db": "database",
        "op_what": "PyMySQL connect + SELECT 1",
        "op": '''
import pymysql


def first_op(v):
    with pymysql.connect(host=v.host, port=int(v.port), user=v.user, password=v.password, database=v.database,
                         ssl_disabled=True) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
''',
        "tc": '''
from testcontainers.community.mysql import MySqlContainer


@pytest.fixture
def svc():
    with MySqlContainer("mariadb:10.11") as c:
        yield types.SimpleNamespace(host=c.get_container_host_ip(), port=c.get_exposed_port(3306),
                                    user=c.username, password=c.password, database=c.dbname)
''',
        "tc_what": 'MySqlContainer("mariadb:10.11"): MYSQL_ROOT_PASSWORD/USER/PASSWORD/DATABASE, so the '
                   "entrypoint initialises a data directory first (as the official image); waits for "
                   "'ready for connections' twice in the log",
    },
    "rabbitmq": {
        "factory": ("from pytest_pods.plugin.catalog.rabbitmq import rabbitmq_container", "rabbitmq_container"),
        "image": "pytest-pods/rabbitmq:3.10", "db": "vhost",
        "op_what": "pika BlockingConnection + channel + queue_declare",
        "op": '''
import pika


def first_op(v):
    params = pika.ConnectionParameters(host=v.host, port=int(v.port), virtual_host=v.vhost,
                                       credentials=pika.PlainCredentials(v.user, v.password))
    with pika.BlockingConnection(params) as conn:
        conn.channel().queue_declare("bench")
''',
        "tc": '''
from testcontainers.community.rabbitmq import RabbitMqContainer


@pytest.fixture
def svc():
    with RabbitMqContainer("rabbitmq:3") as c:
        yield types.SimpleNamespace(host=c.get_container_host_ip(), port=c.get_exposed_port(c.port),
                                    user=c.username, password=c.password, vhost=c.vhost)
''',
        "tc_what": 'RabbitMqContainer("rabbitmq:3"): retries a pika connection until one opens',
    },
    "nginx": {
        "factory": ("from pytest_pods import nginx_container", "nginx_container"),
        "image": "pytest-pods/nginx:1.22", "db": None,
        "op_what": "GET / (urllib), 200",
        "op": '''
import urllib.request


def first_op(v):
    with urllib.request.urlopen(f"http://{v.host}:{v.port}/", timeout=10) as r:
        assert r.status == 200
''',
        "tc": '''
from testcontainers.community.nginx import NginxContainer


@pytest.fixture
def svc():
    with NginxContainer("nginx:latest") as c:
        yield types.SimpleNamespace(host=c.get_container_host_ip(), port=c.get_exposed_port(80))
''',
        "tc_what": 'NginxContainer("nginx:latest"): retries GET / until it answers',
    },
    "memcached": {
        "factory": ("from pytest_pods.plugin.catalog.memcached import memcached_container", "memcached_container"),
        "image": "pytest-pods/memcached:1.6", "db": "flush",
        "op_what": "'version' on the text protocol (socket)",
        "op": '''
import socket


def first_op(v):
    with socket.create_connection((v.host, int(v.port)), timeout=10) as s:
        s.sendall(b"version\\r\\n")
        assert s.recv(256).startswith(b"VERSION ")
''',
        "tc": '''
from testcontainers.community.memcached import MemcachedContainer


@pytest.fixture
def svc():
    with MemcachedContainer("memcached:1") as c:
        host, port = c.get_host_and_port()
        yield types.SimpleNamespace(host=host, port=port)
''',
        "tc_what": 'MemcachedContainer("memcached:1"): retries a "stats" on a socket',
    },
    "mosquitto": {
        "factory": ("from pytest_pods.plugin.catalog.mosquitto import mosquitto_container", "mosquitto_container"),
        "image": "pytest-pods/mosquitto:2.0", "db": "prefix",
        "op_what": "MQTT 3.1.1 CONNECT answered by CONNACK (socket)",
        "op": '''
import socket

# CONNECT, MQTT 3.1.1, clean session, keepalive 60, an empty client id; then DISCONNECT
CONNECT = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 0])


def first_op(v):
    with socket.create_connection((v.host, int(v.port)), timeout=10) as s:
        s.sendall(CONNECT)
        assert s.recv(4) == bytes([0x20, 2, 0, 0])
        s.sendall(bytes([0xE0, 0]))
''',
        "tc": '''
from testcontainers.community.mqtt import MosquittoContainer


@pytest.fixture
def svc():
    with MosquittoContainer() as c:
        yield types.SimpleNamespace(host=c.get_container_host_ip(), port=c.get_exposed_port(c.MQTT_PORT))
''',
        "tc_what": "MosquittoContainer() (eclipse-mosquitto:latest, its config mounted, /data a tmpfs): "
                   "waits for its log line",
    },
    "nats": {
        "factory": ("from pytest_pods.plugin.catalog.nats import nats_container", "nats_container"),
        "image": "pytest-pods/nats:2.9", "db": "account",
        "op_what": "INFO, CONNECT (with the test's user), PING answered by PONG (socket)",
        "op": '''
import json
import socket


def first_op(v):
    with socket.create_connection((v.host, int(v.port)), timeout=10) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"INFO ")
        opts = {"verbose": False, "pedantic": False}
        if getattr(v, "user", None):
            opts.update(user=v.user, **{"pass": v.password})
        s.sendall(b"CONNECT " + json.dumps(opts).encode() + b"\\r\\nPING\\r\\n")
        line = f.readline()
        assert line == b"PONG\\r\\n", line
''',
        "tc": '''
from testcontainers.community.nats import NatsContainer


@pytest.fixture
def svc():
    with NatsContainer() as c:
        yield types.SimpleNamespace(host=c.get_container_host_ip(), port=c.get_exposed_port(4222), user=None)
''',
        "tc_what": "NatsContainer() (nats:latest): waits for 'Server is ready' in the log",
    },
    "etcd": {
        "factory": ("from pytest_pods.plugin.catalog.etcd import etcd_container", "etcd_container"),
        "image": "pytest-pods/etcd:3.4", "db": "prefix",
        "op_what": "put + get through the v3 JSON gateway",
        "op": '''
def first_op(v):
    v.put("bench", "1")
    assert v.get("bench") == b"1"
''',
        "tc": None, "tc_what": "testcontainers-python 4.15 has no etcd module",
    },
    "openldap": {
        "factory": ("from pytest_pods.plugin.catalog.openldap import openldap_container", "openldap_container"),
        "image": "pytest-pods/openldap:2.5", "db": "database",
        "op_what": "ldap3 connect + simple bind as the admin + a search of the base entry",
        "op": '''
import ldap3


def first_op(v):
    c = v.client()
    assert c.search(v.base_dn, "(objectClass=*)", search_scope=ldap3.BASE) and len(c.entries) == 1
''',
        "tc": None, "tc_what": "testcontainers-python has no OpenLDAP module",
    },
    "chromium": {
        "factory": ("from pytest_pods.plugin.catalog.browser import chromium_container", "chromium_container"),
        "image": "pytest-pods/chromium:bookworm", "db": "session", "per_test": 'isolation="container"',
        "op_what": "a selenium Remote driver + a data: page's title",
        "op": '''
def first_op(v):
    d = v.driver()
    try:
        d.get("data:text/html,<title>t</title>")
        assert d.title == "t"
    finally:
        d.quit()
''',
        "tc": '''
from selenium.webdriver import DesiredCapabilities
from testcontainers.selenium import BrowserWebDriverContainer


@pytest.fixture
def svc():
    with BrowserWebDriverContainer(DesiredCapabilities.CHROME) as c:
        yield types.SimpleNamespace(driver=c.get_driver)
''',
        "tc_what": "BrowserWebDriverContainer(DesiredCapabilities.CHROME): selenium/standalone-chrome:latest, "
                   "the preset's name for the recipe",
    },
    "sftp": {
        "factory": ("from pytest_pods.plugin.catalog.sftp import sftp_container", "sftp_container"),
        "image": "pytest-pods/sftp:9.2", "db": "user",
        "op_what": "paramiko SSH login (password) + SFTP listdir /",
        "op": '''
import paramiko


def first_op(v):
    t = paramiko.Transport((v.host, int(v.port)))
    try:
        t.connect(username=v.user, password=v.password)
        paramiko.SFTPClient.from_transport(t).listdir("/")
    finally:
        t.close()
''',
        "tc": '''
from testcontainers.community.sftp import SFTPContainer


@pytest.fixture
def svc():
    with SFTPContainer() as c:
        yield types.SimpleNamespace(host=c.get_container_host_ip(), port=c.get_exposed_sftp_port(),
                                    user="basic", password="password")
''',
        "tc_what": "SFTPContainer() (atmoz/sftp:alpine, users basic and keypair, a key pair made per "
                   "container): waits for 'Server listening on' in the log",
    },
    "smtp": {
        "factory": ("from pytest_pods.plugin.catalog.smtp import smtp_container", "smtp_container"),
        "image": "pytest-pods/smtp:1.4", "db": "clear",
        "op_what": "smtplib connect + NOOP",
        "op": '''
import smtplib


def first_op(v):
    with smtplib.SMTP(v.host, int(v.port), timeout=10) as s:
        assert s.noop()[0] == 250
''',
        "tc": '''
from testcontainers.community.mailpit import MailpitContainer


@pytest.fixture
def svc():
    with MailpitContainer() as c:
        yield types.SimpleNamespace(host=c.get_container_host_ip(), port=c.get_exposed_smtp_port())
''',
        "tc_what": "MailpitContainer() (axllent/mailpit, by the explicit alias axllent/mailpit=pytest-pods/"
                   "smtp:1.4; a TLS certificate made and mounted per container): waits for its log line",
        "alias": "axllent/mailpit=pytest-pods/smtp:1.4",
    },
    "s3": {
        "factory": ("from pytest_pods.plugin.catalog.s3 import s3_container", "s3_container"),
        "image": "pytest-pods/s3:5.1", "db": "bucket",
        "op_what": "a signed ListObjects of the test's bucket (no library)",
        "op": '''
def first_op(v):
    assert v.keys() == []
''',
        "tc": None, "tc_what": "no testcontainers module with moto's API: MinioContainer needs MinIO's own "
                               "command and health API, LocalStackContainer LocalStack's (see "
                               "tests/compat/test_official_s3.py)",
    },
    "registry": {
        "factory": ("from pytest_pods import registry_container", "registry_container"),
        "image": "pytest-pods/registry:2.8", "db": None,
        "op_what": "GET /v2/ (urllib), 200",
        "op": '''
import urllib.request


def first_op(v):
    with urllib.request.urlopen(f"http://{v.host}:{v.port}/v2/", timeout=10) as r:
        assert r.status == 200
''',
        "tc": '''
from testcontainers.community.registry import DockerRegistryContainer


@pytest.fixture
def svc():
    with DockerRegistryContainer() as c:  # registry:2, served by the preset
        host, port = c.get_registry().rsplit(":", 1)
        yield types.SimpleNamespace(host=host, port=port)
''',
        "tc_what": "DockerRegistryContainer() (registry:2, by the preset); retries GET /v2",
    },
}

SUITE = '''
import types

import pytest

import pods_bench_timer

@OP@

@FIXTURE@

@pytest.mark.parametrize("i", range(@N@))
def test_first_op(svc, i, request):
    first_op(svc)
    pods_bench_timer.ready(request.node.nodeid)
'''

# pods_bench_timer.py, loaded with -p. Per test: perf_counter at the start of the setup phase
# (the outermost pytest_runtest_setup wrapper), at its end, at `ready()` (called by the test body
# once its first operation answered), and the teardown phase's duration. Ours: every container's
# create/start/ready (a wrapper around PodsSession.create: the pool thread's too), and each
# session's run id (for the clean-up). testcontainers: the time in DockerContainer.start (docker
# create + start, and for modules that wait through it, the wait) and in stop().
TIMER = r'''
import json, os, threading, time
import pytest

_OUT = open(os.environ["BENCH_TIMES"], "a", buffering=1)
_LOCK = threading.Lock()
_t = {}


def _emit(**kw):
    with _LOCK:
        _OUT.write(json.dumps(kw) + "\n")


def ready(nodeid):
    _t.setdefault(nodeid, {})["ready"] = time.perf_counter()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item):
    t = _t.setdefault(item.nodeid, {})
    t["setup0"] = time.perf_counter()
    try:
        return (yield)
    finally:
        t["setup1"] = time.perf_counter()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    t0 = time.perf_counter()
    try:
        return (yield)
    finally:
        t = _t.pop(item.nodeid, {})
        if "ready" in t:
            _emit(phase="test", i=item.callspec.params["i"], total=t["ready"] - t["setup0"],
                  setup=t["setup1"] - t["setup0"], op=t["ready"] - t["setup1"], teardown=time.perf_counter() - t0)


def _patch():
    if os.environ.get("BENCH_SIDE") == "tc":
        from testcontainers.core.container import DockerContainer

        start, stop = DockerContainer.start, DockerContainer.stop

        def _start(self, *a, **kw):
            t0 = time.perf_counter()
            try:
                return start(self, *a, **kw)
            finally:
                _emit(phase="tc-start", s=time.perf_counter() - t0)

        def _stop(self, *a, **kw):
            t0 = time.perf_counter()
            try:
                return stop(self, *a, **kw)
            finally:
                _emit(phase="tc-stop", s=time.perf_counter() - t0)

        DockerContainer.start, DockerContainer.stop = _start, _stop
        return
    from pytest_pods.plugin.session import PodsSession

    create = PodsSession.create

    def _create(self, fixture, *args, **kwargs):
        rec = create(self, fixture, *args, **kwargs)
        _emit(phase="create", fixture=fixture, times={k: v for k, v in rec.times.items()
                                                      if k in ("create", "start", "ready")})
        return rec

    PodsSession.create = _create


_patch()


def pytest_sessionstart(session):
    try:
        from pytest_pods.plugin.fixtures import session_of
        _emit(phase="run-id", id=session_of(session.config).run_id)
    except (ImportError, KeyError, ValueError):
        pass
'''


# -- helpers ----------------------------------------------------------------------------------
def sh(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[Any]:
    return subprocess.run(cmd, check=True, **kw)


def pods_cmd(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pytest_pods.cli", "--root", str(root), *args]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def load_avg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def p90(xs: list[float]) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, round(0.9 * (len(s) - 1)))]


def ms(x: float) -> str:
    return "-" if x != x else f"{x * 1000:.0f}" if x >= 0.1 else f"{x * 1000:.1f}"


def levels_of(svc: dict[str, Any], with_tc: bool, fast_poll: bool) -> dict[str, dict[str, Any]]:
    """level -> the fixture's source and how it is run (side: ours or tc)."""
    imp, fn = svc["factory"]
    own = svc.get("per_test", "")  # what makes a container per test where the default shares a server
    out: dict[str, dict[str, Any]] = {
        "cold": {"side": "ours", "fixture": f"{imp}\n\nsvc = {fn}({own})\n", "how": f"{fn}({own}): a container per test"},
        f"pool={POOL}": {"side": "ours", "fixture": f"{imp}\n\nsvc = {fn}({own + ', ' if own else ''}pool={POOL})\n",
                         "how": f"{fn}({own + ', ' if own else ''}pool={POOL}): started ahead by the pool"}}
    if svc["db"]:
        out[svc["db"]] = {"side": "ours", "fixture": f'{imp}\n\nsvc = {fn}(isolation="{svc["db"]}")\n',
                          "how": f'{fn}(isolation="{svc["db"]}"): one server per session'}
    if with_tc and svc["tc"]:
        out["tc"] = {"side": "tc", "fixture": svc["tc"].strip("\n") + "\n", "how": svc["tc_what"], "env": {}}
        if fast_poll:  # the stricter comparison: testcontainers' waits polling every 50 ms, not every second
            # TC_MAX_TRIES x TC_POOLING_INTERVAL is its timeout: 2400 x 0.05 keeps the default 120 s
            out[FAST] = {"side": "tc", "fixture": out["tc"]["fixture"],
                         "env": {"TC_POOLING_INTERVAL": "0.05", "TC_MAX_TRIES": "2400"},
                         "how": "the same with TC_POOLING_INTERVAL=0.05 (its default: 1 s between two looks) "
                                "and TC_MAX_TRIES=2400 (the same 120 s timeout)"}
    return out


def write_suite(d: Path, service: str, level: str, spec: dict[str, Any], op: str, n: int) -> Path:
    d.mkdir(parents=True)
    text = (SUITE.replace("@OP@", op.strip("\n") + "\n").replace("@FIXTURE@", spec["fixture"])
            .replace("@N@", str(n)))
    # a module of its own per suite: our fixtures' names (warm snapshots, pools) derive from module::fixture
    (d / f"test_{service}_{re.sub(r'[^a-z0-9]', '', level)}.py").write_text(text.lstrip())
    return d


def ping(sock: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


class Daemon:
    """`pods daemon` on R with the official preset (and the explicit aliases given), on a unix
    socket in the scratch dir; stopped by its PID."""

    def __init__(self, root: Path, work: Path, env: dict[str, str], aliases: list[str]) -> None:
        self.sock, self.log = work / "pods.sock", work / "daemon.log"
        self.host = f"unix://{self.sock}"
        args = [a for alias in aliases for a in ("--image-alias", alias)]
        self.out = open(work / "daemon.out", "wb")  # noqa: SIM115  (closed in stop())
        self.proc = subprocess.Popen(
            pods_cmd(root, "daemon", "--socket", str(self.sock), "--log-file", str(self.log),
                     "--image-aliases", "official", *args),
            stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.out, env=env, cwd=REPO, start_new_session=True)
        t0 = time.monotonic()
        while not ping(self.sock):
            if self.proc.poll() is not None:
                raise SystemExit(f"pods daemon exited ({self.proc.returncode}): "
                                 + (work / "daemon.out").read_text()[-2000:])
            if time.monotonic() - t0 > 60:
                raise SystemExit("pods daemon did not answer /_ping within 60 s")
            time.sleep(0.05)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        return f"pid {self.proc.pid} stopped (exit {self.proc.returncode})"


def ensure_images(root: Path, services: list[str], env: dict[str, str]) -> dict[str, str]:
    """Every service's recipe image in R (a layer-cache hit after the first build); their IDs."""
    from pytest_pods import Client

    client = Client(str(root))
    try:
        client.images.get("debian:bookworm")
    except Exception:
        if BASE_IMAGES.is_file():
            print(f"  loading debian:bookworm from {BASE_IMAGES.relative_to(REPO)}")
            sh(pods_cmd(root, "load", "-q", "-i", str(BASE_IMAGES)), stdout=subprocess.DEVNULL, env=env, cwd=REPO)
        else:
            print("  bootstrapping debian:bookworm with mmdebstrap (once per root)")
            sh(pods_cmd(root, "bootstrap", "debian:bookworm"), stdout=subprocess.DEVNULL, env=env, cwd=REPO)
    ids = {}
    for name in services:
        tag = SERVICES[name]["image"]
        t0 = time.perf_counter()
        p = subprocess.run(pods_cmd(root, "build", "-q", "-t", tag, str(RECIPES / name)), env=env, cwd=REPO,
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"pods build -t {tag} {RECIPES / name}: exit {p.returncode}\n{p.stderr[-3000:]}")
        ids[name] = client.images.get(tag).id
        print(f"  {tag}: {time.perf_counter() - t0:.1f} s, {ids[name].removeprefix('sha256:')[:12]}")
    return ids


def run_suite(label: str, suite: Path, args: list[str], env: dict[str, str], times: Path, n: int,
              timeout: float) -> dict[str, Any]:
    times.write_text("")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
           "-p", "pods_bench_timer", *args, str(suite)]
    env = dict(env, BENCH_TIMES=str(times), PYTHONPATH=os.pathsep.join([str(times.parent / "timer"), str(REPO)]))
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=suite, env=env, capture_output=True, text=True, timeout=timeout)
        rc, stdout, stderr = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as exc:
        rc, stdout, stderr = -1, str(exc.stdout or ""), f"timed out after {timeout:.0f} s"
    wall = time.perf_counter() - t0
    rows = [json.loads(line) for line in times.read_text().splitlines() if line.strip()]
    summary = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    res: dict[str, Any] = {"wall": wall, "summary": summary, "rows": rows,
                           "run_ids": {r["id"] for r in rows if r["phase"] == "run-id"},
                           "tests": sorted((r for r in rows if r["phase"] == "test"), key=lambda r: r["i"])}
    if rc != 0 or not re.search(rf"\b{n} passed\b", summary) or re.search(r"skipped|error|failed", summary):
        tail = "\n".join(stdout.splitlines()[-40:])
        res["error"] = f"{label}: exit {rc}, expected {n} passed: {summary}\n{tail}\n{stderr[-1500:]}"
    return res


# -- the report -------------------------------------------------------------------------------
def report(service: str, lv: dict[str, dict[str, Any]], results: dict[str, list[dict[str, Any]]],
           failed: dict[str, str]) -> list[str]:
    """Print the service's table; return its aim lines (for the summary)."""
    svc = SERVICES[service]

    def tests(level: str, first: bool = False) -> list[dict[str, Any]]:
        return [t for r in results.get(level, []) for t in r["tests"] if (t["i"] == 0) == first]

    def col(level: str, key: str, first: bool = False) -> list[float]:
        return [t[key] for t in tests(level, first)]

    print(f"\n== {service} ({svc['image']}); first operation: {svc['op_what']}")
    tc_med = med(col("tc", "total")) if results.get("tc") else float("nan")
    fast_med = med(col(FAST, "total")) if results.get(FAST) else float("nan")
    w = 10
    print(f"  {'level':<{w}}{'n':>4}{'median':>9}{'p90':>9}{'min-max':>14}{'setup':>9}{'op':>8}{'teardown':>10}"
          f"{'1st test':>10}{'tc/ours':>9}{FAST + '/ours':>14}   (ms; tests 2..N of every round, 1st test apart)")
    aims = []
    for level in lv:
        if level in failed and not results.get(level):
            print(f"  {level:<{w}}  FAILED: {failed[level].splitlines()[0][:150]}")
            continue
        xs = col(level, "total")
        ours = lv[level]["side"] == "ours"
        ratio = tc_med / med(xs) if ours and xs else float("nan")
        fast = fast_med / med(xs) if ours and xs else float("nan")
        print(f"  {level:<{w}}{len(xs):>4}{ms(med(xs)):>9}{ms(p90(xs)):>9}"
              f"{(ms(min(xs)) + '-' + ms(max(xs))) if xs else '-':>14}"
              f"{ms(med(col(level, 'setup'))):>9}{ms(med(col(level, 'op'))):>8}{ms(med(col(level, 'teardown'))):>10}"
              f"{ms(med(col(level, 'total', True))):>10}{(f'{ratio:.1f}x' if ratio == ratio else '-'):>9}"
              f"{(f'{fast:.1f}x' if fast == fast else '-'):>14}")
        if not ours:
            continue
        if ratio == ratio:
            aims.append(f"{service} {level}: {ratio:.1f}x ({ms(med(xs))} vs {ms(tc_med)} ms): "
                        + ("MET" if ratio >= AIM else "NOT MET")
                        + (f"; against {FAST} {fast:.1f}x ({ms(fast_med)} ms): "
                           + ("met" if fast >= AIM else "not met") if fast == fast else ""))
        else:
            aims.append(f"{service} {level}: {ms(med(xs))} ms; no testcontainers figure ({svc['tc_what']})")
    # where the time goes: our containers' create/start/readiness; testcontainers' start()/stop()
    parts = []
    for level in lv:
        rows = [row for r in results.get(level, []) for row in r["rows"]]
        made = [row["times"] for row in rows if row["phase"] == "create" and "(warm-up)" not in row["fixture"]
                and "(server)" not in row["fixture"]]
        made = [t for t in made if {"create", "start", "ready"} <= set(t)]
        if made:
            parts.append(f"{level}: {len(made)} containers, create {ms(med([t['create'] for t in made]))} + start "
                         f"{ms(med([t['start'] for t in made]))} + readiness {ms(med([t['ready'] for t in made]))}")
        st = [row["s"] for row in rows if row["phase"] == "tc-start"]
        sp = [row["s"] for row in rows if row["phase"] == "tc-stop"]
        if st:
            parts.append(f"{level}: DockerContainer.start {ms(med(st))} (p90 {ms(p90(st))}), stop {ms(med(sp))}")
    for p in parts:
        print(f"    {p}")
    for level, spec in lv.items():
        print(f"    {level}: {spec['how']}")
    return aims


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds, each level once per round (default 3)")
    ap.add_argument("--tests", type=int, default=10, help="tests per suite (default 10; the first is reported apart)")
    ap.add_argument("--warmup", type=int, default=2, help="tests per suite in one warm-up run, not counted "
                                                          "(default 2; 0: none)")
    ap.add_argument("--services", default="", help=f"comma-separated, of: {', '.join(SERVICES)} (default: all)")
    ap.add_argument("--root", help="our engine root (default: a scratch root in the scratch dir, removed at the "
                                   "end; the recipes are built there first)")
    ap.add_argument("--keep-images", action="store_true", help="with --root: keep the recipe images this run "
                                                               "built there (default: removed by ID)")
    ap.add_argument("--no-tc", action="store_true", help="leave out testcontainers (and the daemon)")
    ap.add_argument("--no-fast-poll", action="store_true", help=f"leave out {FAST}: testcontainers with "
                                                                 "TC_POOLING_INTERVAL=0.05")
    ap.add_argument("--timeout", type=float, default=900, help="seconds for one suite at most (default 900)")
    args = ap.parse_args()
    # SIGTERM (and SIGINT, which a shell ignores for `cmd &`) end the run through the clean-up below
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if os.geteuid() != 0:
        raise SystemExit("bench/catalogue.py: run as root (the engine makes namespaces, cgroups and bridges)")
    if args.tests < 2:
        raise SystemExit("bench/catalogue.py: --tests: at least 2 (the first test is reported on its own)")
    names = [s.strip() for s in args.services.split(",") if s.strip()] or list(SERVICES)
    unknown = [s for s in names if s not in SERVICES]
    if unknown:
        raise SystemExit(f"bench/catalogue.py: --services: no service {', '.join(unknown)}; "
                         f"choose from {', '.join(SERVICES)}")
    from importlib.metadata import version

    try:
        tc_version = version("testcontainers")
    except Exception:
        tc_version = ""
        if not args.no_tc:
            raise SystemExit("bench/catalogue.py: testcontainers is not installed for this interpreter: "
                             "pip install testcontainers (or pass --no-tc)") from None

    work = Path(tempfile.mkdtemp(prefix="pods-catalogue-bench-", dir="/var/tmp"))
    scratch_root = not args.root
    root = Path(args.root).resolve() if args.root else work / "root"
    base = {k: v for k, v in os.environ.items()
            if k not in ("PYTHONDONTWRITEBYTECODE", "DOCKER_HOST", "DOCKER_CONTEXT", "PODS_ROOT", "PODS_HOST",
                         "PODS_IMAGE_ALIASES", "TC_POOLING_INTERVAL")}
    base["PYTHONPYCACHEPREFIX"] = str(work / "pycache")  # as an installed package has (see plugin.py)
    from pytest_pods import Client

    root.mkdir(parents=True, exist_ok=True)
    client = Client(str(root))
    before_images = {img.id for img in client.images.list()}
    before_ctrs = {c.id for c in client.containers.list(all=True)}
    daemon: Daemon | None = None
    run_ids: set[str] = set()
    try:
        print(f"load before: {uptime()}")
        git = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
        print(f"work {work}; root {root}{' (scratch)' if scratch_root else ''}; python {sys.version.split()[0]}, "
              f"pytest {version('pytest')}, testcontainers {tc_version or '-'}; engine at {git.stdout.strip()[:70]}")
        print("recipe images (pods build; a cache hit once built):")
        ensure_images(root, names, base)
        aliases = sorted({SERVICES[n]["alias"] for n in names if SERVICES[n].get("alias")})
        if not args.no_tc and any(SERVICES[n]["tc"] for n in names):
            daemon = Daemon(root, work, base, aliases)
            print(f"pods daemon pid {daemon.proc.pid} on {daemon.sock}, --image-aliases official"
                  + "".join(f" --image-alias {a}" for a in aliases))
        (work / "timer").mkdir()
        (work / "timer" / "pods_bench_timer.py").write_text(TIMER.lstrip())
        (work / "docker-config").mkdir()
        ours_args = ["--pods-root", str(root), "--pods-required"]
        tc_env = dict(base, BENCH_SIDE="tc", TESTCONTAINERS_RYUK_DISABLED="true",
                      DOCKER_CONFIG=str(work / "docker-config"))
        if daemon is not None:
            tc_env["DOCKER_HOST"] = daemon.host
        if Path("/.dockerenv").exists():  # testcontainers would look for the daemon at a gateway (Docker in Docker)
            tc_env |= {"TC_HOST": "127.0.0.1", "TESTCONTAINERS_CONNECTION_MODE": "docker_host"}
        plan = {n: levels_of(SERVICES[n], daemon is not None, not args.no_fast_poll) for n in names}
        times = work / "times.jsonl"
        failed: dict[str, dict[str, str]] = {n: {} for n in names}

        def run(service: str, level: str, d: Path, n: int) -> dict[str, Any] | None:
            spec = plan[service][level]
            if level in failed[service]:
                return None
            suite = write_suite(d, service, level, spec, SERVICES[service]["op"], n)
            tc = spec["side"] == "tc"
            res = run_suite(f"{service} {level}", suite, ["-p", "no:pods"] if tc else ours_args,
                            dict(tc_env, **spec["env"]) if tc else base, times, n, args.timeout)
            run_ids.update(res["run_ids"])
            if "error" in res:
                failed[service][level] = res["error"]
                text = "\n".join(ln for ln in res["error"].splitlines() if not ln.startswith(("ERROR ", "INFO ")))
                print(f"  FAILED {text[:1500]}")
                return None
            return res

        if args.warmup:
            print(f"warm-up: every suite once with {args.warmup} tests (not counted; the daemon builds its "
                  "stand-ins' cache hits, the bytecode cache fills)")
            for n in names:
                for level in plan[n]:
                    run(n, level, work / "warmup" / n / re.sub(r"\W", "", level), args.warmup)
        results: dict[str, dict[str, list[dict[str, Any]]]] = {n: {lv: [] for lv in plan[n]} for n in names}
        for rnd in range(1, args.rounds + 1):
            print(f"round {rnd}/{args.rounds} (load {load_avg()})")
            for n in names:
                line = []
                for level in plan[n]:
                    res = run(n, level, work / f"r{rnd}" / n / re.sub(r"\W", "", level), args.tests)
                    if res is not None:
                        results[n][level].append(res)
                        rest = [t["total"] for t in res["tests"] if t["i"] > 0]
                        line.append(f"{level} {ms(med(rest))} ms")
                print(f"  {n}: " + "; ".join(line))
        print(f"\nload during the run: {uptime()}")
        print(f"Start of a test's setup -> its first operation answered; {args.rounds} rounds x {args.tests} tests "
              f"per level; ratio = testcontainers' median / ours (aim: >= {AIM:.0f}x)")
        aims = []
        for n in names:
            aims += report(n, plan[n], results[n], failed[n])
        print(f"\nAim: at least {AIM:.0f}x faster than testcontainers (same image, through pods daemon), per level")
        for a in aims:
            print(f"  {a}")
        for n in names:
            for level, err in failed[n].items():
                print(f"  {n} {level}: FAILED (see above): {err.splitlines()[0][:200]}")
    finally:
        print("\nclean-up")
        if daemon is not None:
            print(f"  pods daemon {daemon.stop()}")
        left = []
        for c in client.containers.list(all=True):
            try:
                labels = c.state.get("labels") or {}
            except Exception:
                continue  # removed meanwhile
            ours = labels.get(SESSION_LABEL) in run_ids
            theirs = c.id not in before_ctrs and any(k.startswith("org.testcontainers") for k in labels)
            if scratch_root or ours or theirs:
                left.append(c.id)
                try:
                    c.remove(force=True)
                except Exception as exc:
                    print(f"  note: rm -f {c.id[:12]}: {exc}")
        print(f"  containers removed by ID: {len(left)} (left by this run's sessions or testcontainers)")
        if scratch_root:
            done = client.cleanup(prune_networks=True)
            print(f"  Client(root).cleanup(): {len(done)} item(s) released")
        else:
            new = [img.id for img in client.images.list() if img.id not in before_images]
            if new and not args.keep_images:
                for iid in new:
                    try:
                        client.images.remove(iid, force=True)
                    except Exception as exc:
                        print(f"  note: rmi {iid[:19]}: {exc}")
                print(f"  images this run made in {root}, removed by ID: {len(new)}")
            elif new:
                print(f"  images this run made in {root}, kept (--keep-images): {len(new)}")
        mounts = [ln.split()[1] for ln in Path("/proc/self/mounts").read_text().splitlines()
                  if ln.split()[1].startswith(str(work) + "/")]
        for m in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", m])
        shutil.rmtree(work, ignore_errors=True)
        print(f"  {work}: {'STILL THERE' if work.exists() else 'removed'}"
              + (f" (with the scratch root), {len(mounts)} mount(s) left there unmounted" if scratch_root else ""))
        print(f"load after: {uptime()}")


if __name__ == "__main__":
    main()
