#!/usr/bin/env python3
"""The same 40 tests (20 with a fresh Redis each, then 20 with a fresh Postgres each): our plugin
vs testcontainers-python on Debian's docker.io, the same images on both.

Run as root:  python3 bench/plugin.py [--rounds 3] [--tests 20] [--root R] [--no-fast-poll]

It builds pytest-pods/redis:7 and pytest-pods/postgres:15 from the plugin's recipes in R, saves
them and `docker load`s them into a dockerd of its own (data root, exec root, socket, pidfile and
bridge in a scratch dir), writes two test suites there and runs each with
`python3 -m pytest -q -p no:cacheprovider` as a subprocess, interleaved (ours, tc, tc with
TC_POOLING_INTERVAL=0.05, ours, ...). A small pytest plugin times each container fixture from the
start of its setup to ready, and its teardown. See bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "pytest_pods" / "plugin" / "recipes"
IMAGES = {"redis": "pytest-pods/redis:7", "postgres": "pytest-pods/postgres:15"}
KINDS = ("redis", "postgres")
# RESULTS.md section 5 (testcontainers-python 4.15 on docker.io 20.10, other images, TC_POOLING_INTERVAL=1)
ANCHORS = [
    ("busybox: DockerContainer(...).waiting_for(LogMessageWaitStrategy).start()", 0.202),
    ("busybox: container.stop() (remove, force)", 0.083),
    ("Postgres pg:local, initdb + start, until psql works", 1.367),
    ("Postgres pg-init:local, pre-initialised, until psql works", 0.346),
]
AIM = 5.0

# -- the suites -------------------------------------------------------------------------------
# One pytest plugin for both suites (pods_bench_timer.py, loaded with -p: the hooks of a conftest
# do not see session-scoped fixtures, which are set up for the Session node). The fixtures named
# in TARGETS are timed from the start of their setup (after their dependencies: `pods` and the
# image fixture for ours) until their value is there, i.e. create + start + readiness; and their
# teardown, from the first finalizer to the last (stop + remove). Each test's whole protocol
# (setup + call + teardown) is timed as well, and for ours the once-a-session fixtures in SESSION.
TIMER = '''
import json, os, time
import pytest

TARGETS = {"redis": "redis", "postgres": "postgres", "tc_redis": "redis", "tc_postgres": "postgres"}
SESSION = ("pods", "redis_image", "postgres_image")  # ours: the engine and the two image look-ups, once
_OUT = open(os.environ["BENCH_TIMES"], "a", buffering=1)
_down = {}


def _emit(**kw):
    _OUT.write(json.dumps(kw) + "\\n")


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    kind = TARGETS.get(fixturedef.argname)
    t0 = time.perf_counter()
    result = yield
    if fixturedef.argname in SESSION:
        _emit(test=request.node.nodeid, kind=fixturedef.argname, phase="session", s=time.perf_counter() - t0)
    if kind is not None:
        _emit(test=request.node.nodeid, kind=kind, phase="ready", s=time.perf_counter() - t0)
        key = (fixturedef.argname, request.node.nodeid)
        # added after the fixture's own teardown was registered, so it runs just before it (LIFO)
        fixturedef.addfinalizer(lambda: _down.__setitem__(key, time.perf_counter()))
    return result


@pytest.hookimpl(wrapper=True)
def pytest_fixture_post_finalizer(fixturedef, request):
    t1 = time.perf_counter()
    key = (fixturedef.argname, request.node.nodeid)
    t0 = _down.pop(key, None)
    if t0 is not None:
        _emit(test=request.node.nodeid, kind=TARGETS[fixturedef.argname], phase="remove", s=t1 - t0)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    t0 = time.perf_counter()
    result = yield
    kind = "redis" if "redis" in item.name else "postgres"
    _emit(test=item.nodeid, kind=kind, phase="test", s=time.perf_counter() - t0)
    return result
'''

OURS = {
    "test_1_redis.py": '''
import pytest


@pytest.mark.parametrize("i", range({n}))
def test_redis(redis, i):
    client = redis.client()
    try:
        assert client.ping()
        assert client.set(f"key{{i}}", i)
        assert client.get(f"key{{i}}") == str(i).encode()
    finally:
        client.close()
''',
    "test_2_postgres.py": '''
import psycopg
import pytest


@pytest.mark.parametrize("i", range({n}))
def test_postgres(postgres, i):
    with psycopg.connect(postgres.dsn) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
''',
}

TC = {
    "test_1_redis.py": '''
import pytest
from testcontainers.community.redis import RedisContainer


@pytest.fixture
def tc_redis():
    with RedisContainer("{redis}") as container:
        yield container


@pytest.mark.parametrize("i", range({n}))
def test_redis(tc_redis, i):
    client = tc_redis.get_client()
    try:
        assert client.ping()
        assert client.set(f"key{{i}}", i)
        assert client.get(f"key{{i}}") == str(i).encode()
    finally:
        client.close()
''',
    "test_2_postgres.py": '''
import psycopg
import pytest
from testcontainers.community.postgres import PostgresContainer


@pytest.fixture
def tc_postgres():
    # the image has trust auth and a database "postgres": TC's POSTGRES_* variables are ignored
    with PostgresContainer("{postgres}", username="postgres", password="postgres", dbname="postgres",
                           driver=None) as container:
        yield container


@pytest.mark.parametrize("i", range({n}))
def test_postgres(tc_postgres, i):
    with psycopg.connect(tc_postgres.get_connection_url()) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
''',
}


def write_suite(d: Path, files: dict[str, str], n: int) -> Path:
    d.mkdir(parents=True)
    for name, text in files.items():
        (d / name).write_text(text.lstrip().format(n=n, **IMAGES))
    return d


# -- helpers ----------------------------------------------------------------------------------
def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


def out(cmd: list[str], **kw) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout.strip()


def works(cmd: list[str], env: dict[str, str] | None = None) -> bool:
    try:
        return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                              timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def pods_cmd(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pytest_pods.cli", "--root", str(root), *args]


def ensure_tools() -> None:
    if not works(["dpkg", "-s", "docker.io"]):
        print("installing docker.io (apt-get)")
        sh(["apt-get", "update"], stdout=subprocess.DEVNULL)
        sh(["apt-get", "install", "-y", "docker.io"], stdout=subprocess.DEVNULL,
           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    missing = [pkg for mod, pkg in (("testcontainers", "testcontainers"), ("psycopg", "psycopg[binary]"),
                                    ("redis", "redis")) if importlib.util.find_spec(mod) is None]
    if missing:
        print(f"installing {' '.join(missing)} (pip)")
        sh([sys.executable, "-m", "pip", "install", "-q", *missing])


def ensure_images(root: Path) -> dict[str, str]:
    """The two service images in our root, built from the plugin's recipes (a cache hit after the
    first time); returns their IDs."""
    root.mkdir(parents=True, exist_ok=True)
    if not works(pods_cmd(root, "inspect", "--type", "image", "debian:bookworm")):
        print("bootstrapping debian:bookworm with mmdebstrap (once per root)")
        sh(pods_cmd(root, "bootstrap", "debian:bookworm"), stdout=subprocess.DEVNULL)
    ids = {}
    for kind, tag in IMAGES.items():
        t0 = time.perf_counter()
        sh(pods_cmd(root, "build", "-q", "-t", tag, str(RECIPES / kind)), cwd=REPO, stdout=subprocess.DEVNULL)
        ids[kind] = out(pods_cmd(root, "inspect", "--type", "image", "-f", "{{.Id}}", tag))
        print(f"  pods build -t {tag} {RECIPES.relative_to(REPO) / kind}: {time.perf_counter() - t0:.2f} s, "
              f"{ids[kind][:19]}")
    return ids


def free_subnet() -> ipaddress.IPv4Network:
    used = []
    for line in out(["ip", "-4", "route", "show", "table", "all"]).splitlines():
        word = line.split()[0] if line.split() else ""
        if word in ("local", "broadcast", "unreachable"):
            word = line.split()[1]
        try:
            used.append(ipaddress.IPv4Network(word, strict=False))
        except ValueError:
            pass
    for net in ipaddress.IPv4Network("172.30.0.0/16").subnets(new_prefix=24):
        if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return net
    raise SystemExit("no free /24 in 172.30.0.0/16 for the bench's docker bridge")


class Dockerd:
    """dockerd with everything of its own under `work`: data root, exec root (containerd's socket
    and state), pidfile, API socket, daemon.json, and a bridge made for it. No iptables rules, no
    masquerade, no sysctl change: published ports go through docker-proxy (what a host client
    uses for localhost anyway). Stopped by its PID; containerd is its child and stops with it."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.sock = work / "docker.sock"
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{self.sock}")
        self.bridge = f"pbtc{os.getpid() % 0xFFFFFF:06x}"
        self.proc: subprocess.Popen | None = None
        self.bridge_made = False

    def docker(self, *args: str) -> list[str]:
        return ["docker", "-H", f"unix://{self.sock}", *args]

    def spawn(self) -> str:
        """Make its bridge and start it (not waiting for it); the bridge's address."""
        net = free_subnet()
        gw = f"{next(net.hosts())}/{net.prefixlen}"
        sh(["ip", "link", "add", self.bridge, "type", "bridge"])
        self.bridge_made = True
        sh(["ip", "addr", "add", gw, "dev", self.bridge])
        sh(["ip", "link", "set", self.bridge, "up"])
        (self.work / "daemon.json").write_text("{}\n")
        self.log = self.work / "dockerd.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["dockerd", "--config-file", str(self.work / "daemon.json"),
                 "--data-root", str(self.work / "docker"), "--exec-root", str(self.work / "exec"),
                 "--pidfile", str(self.work / "docker.pid"), "-H", f"unix://{self.sock}",
                 "--bridge", self.bridge, "--iptables=false", "--ip-masq=false", "--ip-forward=false"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        return gw

    def start(self) -> None:
        gw = self.spawn()
        assert self.proc is not None
        for _ in range(120):
            if self.proc.poll() is not None:
                raise SystemExit(f"dockerd exited ({self.proc.returncode}): see {self.log}\n"
                                 + self.log.read_text()[-2000:])
            if works(self.docker("info")):
                print(f"  dockerd pid {self.proc.pid}, {self.sock}, bridge {self.bridge} {gw}, "
                      f"iptables off (docker-proxy)")
                return
            time.sleep(0.5)
        raise SystemExit(f"dockerd did not come up: see {self.log}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            left = out(self.docker("ps", "-aq")) if works(self.docker("info")) else ""
            if left:
                print(f"note: removing {len(left.split())} container(s) testcontainers left in the bench's dockerd")
                subprocess.run(self.docker("rm", "-f", *left.split()), stdout=subprocess.DEVNULL)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.bridge_made:
            subprocess.run(["ip", "link", "del", self.bridge], stderr=subprocess.DEVNULL)


def unmount_under(path: Path) -> None:
    """Anything dockerd left mounted in our own scratch dir (it should leave nothing)."""
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for m in sorted((m for m in mounts if m.startswith(str(path) + "/")), key=len, reverse=True):
        print(f"note: unmounting {m}, left by dockerd")
        subprocess.run(["umount", "-l", m])


# -- running and measuring --------------------------------------------------------------------
def run_suite(name: str, suite: Path, args: list[str], env: dict[str, str], times: Path, n: int) -> dict:
    times.write_text("")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "pods_bench_timer", *args, str(suite)]
    env = dict(env, BENCH_TIMES=str(times), PYTHONPATH=str(times.parent / "timer"))
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=suite, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    summary = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    if p.returncode != 0 or not re.search(rf"\b{2 * n} passed\b", summary) or re.search(r"skipped|error|failed",
                                                                                           summary):
        raise SystemExit(f"{name}: exit {p.returncode}, expected {2 * n} passed\n$ {' '.join(cmd)}\n"
                         f"{p.stdout[-6000:]}\n{p.stderr[-3000:]}")
    rows = [json.loads(line) for line in times.read_text().splitlines()]
    res: dict = {"wall": wall, "summary": summary,
                 "session": {r["kind"]: r["s"] for r in rows if r["phase"] == "session"}}
    for kind in KINDS:
        for phase in ("ready", "remove", "test"):
            res[kind, phase] = [r["s"] for r in rows if r["kind"] == kind and r["phase"] == phase]
        if not (len(res[kind, "ready"]) == len(res[kind, "remove"]) == len(res[kind, "test"]) == n):
            raise SystemExit(f"{name}: expected {n} timings per phase for {kind}, got "
                             f"{[len(res[kind, ph]) for ph in ('ready', 'remove', 'test')]}")
        res[kind, "container"] = [a + b for a, b in zip(res[kind, "ready"], res[kind, "remove"])]
    return res


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def report(cases: dict[str, dict], results: dict[str, list[dict]], rounds: int, n: int) -> None:
    names = list(cases)
    ours = names[0]
    pooled = {name: {key: [x for r in results[name] for x in r[key]] for key in results[name][0]
                     if isinstance(key, tuple)} for name in names}
    walls = {name: [r["wall"] for r in results[name]] for name in names}

    def cell(xs: list[float]) -> str:
        return f"{med(xs):.3f} ({min(xs):.2f}-{max(xs):.2f})"

    w, col = 44, 22
    print(f"\nMedians over {rounds} rounds x {n} tests = {rounds * n} containers per service and suite, "
          "seconds (min-max)\n")
    print(f"{'':<{w}}" + "".join(f"{cases[m]['short']:>{col}}" for m in names)
          + "".join(f"{cases[m]['short'] + '/ours':>13}" for m in names[1:]))
    rows = [("start -> ready (fixture setup)", "ready"), ("remove (fixture teardown)", "remove"),
            ("per container (setup + teardown)", "container"), ("per test (setup + call + teardown)", "test")]
    for kind in KINDS:
        for label, phase in rows:
            xs = {m: pooled[m][kind, phase] for m in names}
            print(f"{kind + ': ' + label:<{w}}" + "".join(f"{cell(xs[m]):>{col}}" for m in names)
                  + "".join(f"{med(xs[m]) / med(xs[ours]):>12.1f}x" for m in names[1:]))
    sums = {m: n * sum(med(pooled[m][k, "container"]) for k in KINDS) for m in names}
    print(f"{f'{2 * n} containers (the medians x {n} + x {n})':<{w}}" + "".join(f"{sums[m]:>{col}.2f}" for m in names)
          + "".join(f"{sums[m] / sums[ours]:>12.1f}x" for m in names[1:]))
    print(f"{'suite wall time (python3 -m pytest ...)':<{w}}" + "".join(f"{cell(walls[m]):>{col}}" for m in names)
          + "".join(f"{med(walls[m]) / med(walls[ours]):>12.1f}x" for m in names[1:]))
    sess = {k: [r["session"][k] for r in results[ours] if k in r["session"]]
            for k in ("pods", "redis_image", "postgres_image")}
    print("ours, once per session (in the first test's setup, not in the rows above): "
          + ", ".join(f"fixture {k} {med(v):.3f} s" for k, v in sess.items() if v))
    print("\nsuites:")
    for m in names:
        print(f"  {cases[m]['short']:<8} {cases[m]['how']}")
        print(f"  {'':<8} pytest said: {'; '.join(r['summary'] for r in results[m])}")

    print(f"\nAim: {AIM:.0f}x faster than testcontainers per container (setup + teardown, medians)")
    for m in names[1:]:
        for kind in KINDS:
            a, b = med(pooled[ours][kind, "container"]), med(pooled[m][kind, "container"])
            print(f"  {kind:<9} ours {a:.3f} s vs {cases[m]['short']:<8} {b:.3f} s = {b / a:4.1f}x: "
                  f"{'MET' if b / a >= AIM else 'NOT MET'}")
    print("\nFor reference, the anchors (RESULTS.md section 5: testcontainers 4.15 on docker.io 20.10, "
          "TC_POOLING_INTERVAL=1, the anchors' own images):")
    for label, s in ANCHORS:
        print(f"  {label:<62} {s:.3f} s")
    print(f"  ours here, for scale: Redis {med(pooled[ours]['redis', 'ready']):.3f} s to ready, "
          f"Postgres {med(pooled[ours]['postgres', 'ready']):.3f} s to ready")
    print("  Our Postgres image is initialised at build time: a container start is only the server's start. So\n"
          "  1.37 s (initdb at every start) is not what to compare with, and pg-init:local is another image\n"
          "  (other settings). The fair comparison is the table: testcontainers on the SAME images.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds, each suite once per round (default 3)")
    ap.add_argument("--tests", type=int, default=20, help="tests per service in each suite (default 20)")
    ap.add_argument("--warmup", type=int, default=2,
                    help="tests per service in one warm-up run of each suite, not counted (default 2, 0: none)")
    ap.add_argument("--root", help="our engine root (default: the Makefile's, .cache/pods-root of the repo)")
    ap.add_argument("--no-fast-poll", action="store_true",
                    help="leave out the testcontainers run with TC_POOLING_INTERVAL=0.05")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    root = Path(args.root).resolve() if args.root else REPO / ".cache" / "pods-root"

    ensure_tools()
    work = Path(tempfile.mkdtemp(prefix="pods-plugin-bench-", dir="/var/tmp"))
    dockerd = Dockerd(work)
    before: set[str] = set()
    try:
        import testcontainers.core  # noqa: F401  (after ensure_tools)
        from importlib.metadata import version

        print(f"root {root}; work {work}")
        print(f"python {sys.version.split()[0]}, pytest {version('pytest')}, "
              f"testcontainers {version('testcontainers')}, "
              f"docker-py {version('docker')}, psycopg {version('psycopg')}, redis-py {version('redis')}; "
              f"{out(['dockerd', '--version'])}; kernel {platform.release()}, {os.cpu_count()} CPUs, "
              f"load {Path('/proc/loadavg').read_text().split()[:3]}")
        ids = ensure_images(root)
        before = set(out(pods_cmd(root, "ps", "-a", "-q", "--no-trunc")).split())
        dockerd.start()
        for kind, tag in IMAGES.items():
            tar = work / f"{kind}.tar"
            sh(pods_cmd(root, "save", tag, "-o", str(tar)))
            sh(dockerd.docker("load", "-q", "-i", str(tar)), stdout=subprocess.DEVNULL)
            tar.unlink()
            did = out(dockerd.docker("image", "inspect", "-f", "{{.Id}}", tag))
            same = "the same ID" if did == ids[kind] else "a DIFFERENT ID"
            print(f"  docker load of pods save {tag}: {did[:19]} ({same} as ours)")

        # Python subprocesses: a bytecode cache of their own, filled by the warm-up (the state of an
        # installed package), instead of this VM's PYTHONDONTWRITEBYTECODE=1 (as start_latency.py)
        base = {k: v for k, v in os.environ.items()
                if k not in ("PYTHONDONTWRITEBYTECODE", "DOCKER_HOST", "PODS_ROOT", "TC_POOLING_INTERVAL")}
        base["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        tc_env = dict(base, DOCKER_HOST=f"unix://{dockerd.sock}", TESTCONTAINERS_RYUK_DISABLED="true")
        cases = {
            "pytest-pods": {"short": "ours", "env": base,
                            "args": ["--pods-root", str(root), "--pods-required"],
                            "how": f"fixtures `redis`, `postgres` of the plugin, --pods-root {root} --pods-required"},
            "testcontainers": {"short": "tc", "env": tc_env, "args": ["-p", "no:pods"],
                               "how": "RedisContainer / PostgresContainer as context managers in function-scoped "
                                      "fixtures, default TC_POOLING_INTERVAL (1 s), TESTCONTAINERS_RYUK_DISABLED=true, "
                                      "-p no:pods"},
        }
        if not args.no_fast_poll:
            cases["testcontainers, TC_POOLING_INTERVAL=0.05"] = {
                "short": "tc-0.05", "env": dict(tc_env, TC_POOLING_INTERVAL="0.05"), "args": ["-p", "no:pods"],
                "how": "the same with TC_POOLING_INTERVAL=0.05"}
        (work / "timer").mkdir()
        (work / "timer" / "pods_bench_timer.py").write_text(TIMER.lstrip())
        suites = {}
        for name, case in cases.items():
            files = OURS if case["short"] == "ours" else TC
            suites[name] = write_suite(work / "suites" / case["short"], files, args.tests)
            if args.warmup:
                suites[name, "warmup"] = write_suite(work / "suites" / f"{case['short']}-warmup", files, args.warmup)
        if args.warmup:
            print(f"warm-up: each suite once with {args.warmup} tests per service (not counted)")
            for name, case in cases.items():
                run_suite(name, suites[name, "warmup"], case["args"], case["env"], work / "times.jsonl", args.warmup)
        results: dict[str, list[dict]] = {name: [] for name in cases}
        for rnd in range(1, args.rounds + 1):
            line = []
            for name, case in cases.items():
                res = run_suite(name, suites[name], case["args"], case["env"], work / "times.jsonl", args.tests)
                results[name].append(res)
                line.append(f"{case['short']} {res['wall']:.1f} s (per container: "
                            + ", ".join(f"{k} {med(res[k, 'container']):.3f}" for k in KINDS) + ")")
            print(f"round {rnd}/{args.rounds}: " + "; ".join(line))
        report(cases, results, args.rounds, args.tests)
    finally:
        dockerd.stop()
        unmount_under(work)
        shutil.rmtree(work, ignore_errors=True)
        if root.is_dir() and works(pods_cmd(root, "ps", "-a", "-q")):
            after = set(out(pods_cmd(root, "ps", "-a", "-q", "--no-trunc")).split())
            left = after - before
            print(f"\nleft behind: {len(left)} container(s) in {root} (pods ps -a), "
                  f"dockerd {'stopped' if dockerd.proc is None or dockerd.proc.poll() is not None else 'RUNNING'}, "
                  f"{work} {'removed' if not work.exists() else 'STILL THERE'}"
                  + (f", bridge {dockerd.bridge} deleted" if dockerd.bridge_made else ""))
            if left:
                print("  " + " ".join(sorted(left)))


if __name__ == "__main__":
    main()
