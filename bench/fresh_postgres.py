#!/usr/bin/env python3
"""50 tests, each needing a fresh Postgres with a small schema loaded: the time from the start of
the test's setup to a connection that answered a query, at each of our isolation levels, next to
a plain cold container per test and testcontainers-python on Debian's docker.io (same image).

Run as root:  python3 bench/fresh_postgres.py [--rounds 2] [--tests 50] [--pools 1,2,3] [--root R]

Each level is a generated suite of --tests tests, run as `python3 -m pytest` in a subprocess;
the rounds interleave the levels (cold, warm, pool=1, pool=2, pool=3, database, tc, cold, ...).
A small pytest plugin (loaded with -p) records perf_counter at the start of each test's
setup phase; the test body records it again right after its first query has answered. It also
records where our plugin spends the time (container create/start/ready, pool waits, clones).
The dockerd for testcontainers is bench/plugin.py's (`Dockerd`: everything in a scratch dir).
See bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
_spec = importlib.util.spec_from_file_location("pods_bench_plugin", HERE / "plugin.py")
pb = importlib.util.module_from_spec(_spec)  # bench/plugin.py: sh, out, works, pods_cmd, Dockerd, ...
_spec.loader.exec_module(pb)

IMAGE = "pytest-pods/postgres:15"
RECIPE = REPO / "pytest_pods" / "plugin" / "recipes" / "postgres"
AIMS = {"pool": 0.050, "primed": 0.050, "database": 0.020}  # median, seconds
SESSION_LABEL = "pytest-pods.session"

# -- the suites -------------------------------------------------------------------------------
SCHEMA = """
create table customers (id serial primary key, name text not null unique);
create table products (id serial primary key, title text not null, price numeric(10, 2) not null);
create table orders (id serial primary key, customer_id int not null references customers,
                     product_id int not null references products, qty int not null check (qty > 0),
                     created timestamptz not null default now());
create index orders_customer on orders (customer_id);
insert into customers (name) values ('ada'), ('bob');
insert into products (title, price) values ('pen', 1.50), ('ink', 4.25);
"""

# shared by every suite: the schema loader and the test itself (identical at every level)
COMMON = '''
import psycopg
import pytest
import pods_bench_timer

SCHEMA = """@SCHEMA@"""


def load_schema(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)

@FIXTURE@

@pytest.mark.parametrize("i", range(@N@))
def test_fresh(pg, i, request):
    with psycopg.connect(pg.dsn) as conn:
        pods_bench_timer.connected(request.node.nodeid)
        # the first query: the schema is there and nothing of an earlier test is
        assert conn.execute("select count(*) from orders").fetchone() == (0,)
        pods_bench_timer.ready(request.node.nodeid)
        conn.execute("insert into orders (customer_id, product_id, qty) values (1, 2, %s)", (i + 1,))
        rows = conn.execute("select c.name, p.title, o.qty from orders o join customers c on c.id = o.customer_id "
                            "join products p on p.id = o.product_id").fetchall()
        assert rows == [("ada", "ink", i + 1)]
'''

FIXTURES = {
    "cold": '''
@pytest.fixture
def pg(postgres):  # the plugin's `postgres`: a fresh container from the plain image; the schema per test
    load_schema(postgres)
    return postgres
''',
    "warm": '''
from pytest_pods import postgres_container

pg = postgres_container(warm=load_schema)
''',
    "pool": '''
from pytest_pods import postgres_container

pg = postgres_container(warm=load_schema, pool=@POOL@)
''',
    # not one of the levels: the pool, with one connection + query added to the readiness
    # wait (public API: a wait.Strategy of our own), so that the pool's thread, not the test, pays
    # the first backend of a newly started server
    "primed": '''
from pytest_pods import postgres_container, wait


class FirstQuery(wait.Strategy):
    def describe(self):
        return "a psycopg connection answered a query"

    def wait(self, t):
        host, port = t.container.address(5432)

        def attempt():
            try:
                with psycopg.connect(host=host, port=port, user="postgres", dbname="postgres",
                                     connect_timeout=2) as conn:
                    conn.execute("select count(*) from pg_class").fetchone()
                return True
            except psycopg.OperationalError:
                return False

        t.poll(attempt)


pg = postgres_container(warm=load_schema, pool=@POOL@, wait=wait.all_of(
    wait.log(r"database system is ready to accept connections"), wait.tcp(5432), FirstQuery()))
''',
    "database": '''
from pytest_pods import postgres_container

pg = postgres_container(isolation="database", warm=load_schema)
''',
    "tc": '''
import types
from testcontainers.community.postgres import PostgresContainer


@pytest.fixture
def pg():  # the image has trust auth and a database "postgres": TC's POSTGRES_* variables are ignored
    with PostgresContainer("@IMAGE@", username="postgres", password="postgres", dbname="postgres",
                           driver=None) as container:
        value = types.SimpleNamespace(dsn=container.get_connection_url())
        load_schema(value)
        yield value
''',
}

# pods_bench_timer.py, loaded with -p. Per test: perf_counter at the start of the setup phase
# (the outermost pytest_runtest_setup wrapper), at its end, at `ready()` (called by the test body
# after its first query), and the teardown phase's duration. For our suites also: each
# container's create/start/ready (a wrapper around PodsSession.create, the pool thread's too),
# every record's times at the end (pool wait, remove, warm snapshot), the session fixtures, and
# with BENCH_DIAG=database the clone wait in _PgServer.fresh, the server's set-up and each
# CREATE/DROP DATABASE (a wrapper around psycopg.Connection.execute). The wrappers cost a
# perf_counter call or two (~1 us).
TIMER = r'''
import json, os, threading, time
import pytest

_OUT = open(os.environ["BENCH_TIMES"], "a", buffering=1)
_LOCK = threading.Lock()
_t = {}
SESSION = ("pods", "postgres_image")


def _emit(**kw):
    with _LOCK:
        _OUT.write(json.dumps(kw) + "\n")


def connected(nodeid):
    """psycopg.connect has returned."""
    _t.setdefault(nodeid, {})["connected"] = time.perf_counter()


def ready(nodeid):
    """The test body has a connection that answered a query."""
    _t.setdefault(nodeid, {})["ready"] = time.perf_counter()


def _index(item):
    return item.callspec.params["i"] if hasattr(item, "callspec") else -1


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
            _emit(phase="test", i=_index(item), conn=t["ready"] - t["setup0"], setup=t["setup1"] - t["setup0"],
                  body=t["ready"] - t["setup1"],
                  connect=t["connected"] - t["setup1"], query=t["ready"] - t["connected"],
                  teardown=time.perf_counter() - t0)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    t0 = time.perf_counter()
    result = yield
    if fixturedef.argname in SESSION:
        _emit(phase="session", name=fixturedef.argname, s=time.perf_counter() - t0)
    return result


def _patch():
    if not os.environ.get("BENCH_DIAG"):
        return  # testcontainers' suite: nothing of ours to look into
    try:
        from pytest_pods.plugin.session import PodsSession
    except ImportError:
        return
    create = PodsSession.create  # every container the plugin makes (the pool thread's too)

    def _create(self, fixture, *args, **kwargs):
        rec = create(self, fixture, *args, **kwargs)
        _emit(phase="create", fixture=fixture, times=dict(rec.times))
        return rec

    PodsSession.create = _create
    if os.environ.get("BENCH_DIAG") != "database":
        return
    import psycopg
    from pytest_pods.plugin.services import _PgServer

    fresh, init, execute = _PgServer.fresh, _PgServer.__init__, psycopg.Connection.execute

    def _fresh(self):
        t0 = time.perf_counter()
        try:
            return fresh(self)
        finally:
            _emit(phase="clone-wait", s=time.perf_counter() - t0)

    def _init(self, *args, **kwargs):
        t0 = time.perf_counter()
        init(self, *args, **kwargs)
        _emit(phase="server-setup", s=time.perf_counter() - t0)

    def _execute(self, query, *args, **kwargs):
        verb = query[:13] if isinstance(query, str) else ""
        if verb not in ("CREATE DATABA", "DROP DATABASE"):
            return execute(self, query, *args, **kwargs)
        t0 = time.perf_counter()
        try:
            return execute(self, query, *args, **kwargs)
        finally:
            _emit(phase="sql", verb=verb.split()[0].lower(), s=time.perf_counter() - t0)

    _PgServer.fresh, _PgServer.__init__, psycopg.Connection.execute = _fresh, _init, _execute


_patch()


def pytest_sessionstart(session):  # after every plugin's pytest_configure: ours has made its session
    try:
        from pytest_pods.plugin.fixtures import session_of
        _emit(phase="run-id", id=session_of(session.config).run_id)
    except (ImportError, KeyError):
        pass


def pytest_unconfigure(config):  # after the plugin's session end: every record has its remove time
    try:
        from pytest_pods.plugin.fixtures import session_of
        s = session_of(config)
    except (ImportError, KeyError):
        return
    for rec in s.records:
        _emit(phase="record", fixture=rec.fixture, times=dict(rec.times))
'''


def levels(pools: list[int], primed: int) -> dict[str, dict]:
    """name -> how to run it. `kind` picks the fixture and the aim."""
    out = {"cold": {"kind": "cold", "how": "the plugin's `postgres` (plain image, a container per test); "
                                            "schema loaded by a function fixture"},
           "warm": {"kind": "warm", "how": "postgres_container(warm=load_schema): a container per test "
                                            "from the warm snapshot"}}
    for n in pools:
        out[f"pool={n}"] = {"kind": "pool", "pool": n, "how": f"postgres_container(warm=load_schema, pool={n})"}
    if primed:
        out[f"pool={primed},primed"] = {
            "kind": "primed", "pool": primed, "how": f"not an issue level: pool={primed} with wait=all_of(the default "
                                                     "log line + tcp, one psycopg connect + query) (see the README)"}
    out["database"] = {"kind": "database", "how": "postgres_container(isolation=\"database\", warm=load_schema): "
                                                  "databases cloned from the template, put back in place after each test"}
    out["tc"] = {"kind": "tc", "how": "testcontainers PostgresContainer per test (function fixture), schema "
                                      "loaded in it; docker.io, TESTCONTAINERS_RYUK_DISABLED=true, -p no:pods"}
    return out


def write_suite(d: Path, name: str, level: dict, n: int) -> Path:
    d.mkdir(parents=True)
    fixture = FIXTURES[level["kind"]].replace("@POOL@", str(level.get("pool", 0))).replace("@IMAGE@", IMAGE)
    text = (COMMON.replace("@SCHEMA@", SCHEMA).replace("@FIXTURE@", fixture.strip("\n") + "\n")
            .replace("@N@", str(n)))
    # a module name of its own per level: the warm snapshot's tag is derived from module::fixture
    (d / f"test_fresh_{re.sub(r'[^a-z0-9]', '', name)}.py").write_text(text.lstrip())
    return d


# -- helpers ----------------------------------------------------------------------------------
def load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def loads() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def wait_idle(max_load: float, patience: float) -> None:
    t0 = time.monotonic()
    if load() < max_load:
        print(f"load {loads()} (1/5/15 min): below {max_load}, measuring")
        return
    print(f"load {loads()}: waiting up to {patience:.0f} s for the 1-minute load to drop below {max_load}")
    while time.monotonic() - t0 < patience:
        time.sleep(10)
        if load() < max_load:
            print(f"load {loads()} after {time.monotonic() - t0:.0f} s: measuring")
            return
    print(f"NOTE: load still {loads()} after {patience:.0f} s; measuring anyway (figures may be inflated)")


def ensure_image(root: Path) -> str:
    root.mkdir(parents=True, exist_ok=True)
    if not pb.works(pb.pods_cmd(root, "inspect", "--type", "image", "debian:bookworm")):
        print("bootstrapping debian:bookworm with mmdebstrap (once per root)")
        pb.sh(pb.pods_cmd(root, "bootstrap", "debian:bookworm"), stdout=subprocess.DEVNULL)
    t0 = time.perf_counter()
    pb.sh(pb.pods_cmd(root, "build", "-q", "-t", IMAGE, str(RECIPE)), cwd=REPO, stdout=subprocess.DEVNULL)
    iid = pb.out(pb.pods_cmd(root, "inspect", "--type", "image", "-f", "{{.Id}}", IMAGE))
    print(f"  pods build -t {IMAGE} {RECIPE.relative_to(REPO)}: {time.perf_counter() - t0:.2f} s, {iid[:19]}")
    return iid


def remove_session_images(client, run_ids: set[str]) -> int:
    """The warm snapshots our sessions committed (labelled with their run id): tagged or not."""
    n = 0
    for img in client.images.list():
        labels = (img.config.get("config") or {}).get("Labels") or {}
        if labels.get(SESSION_LABEL) in run_ids:
            client.images.remove(img.id, force=True)
            n += 1
    return n


def session_containers(client, run_ids: set[str]) -> list[str]:
    left = []
    for c in client.containers.list(all=True):
        try:
            if (c.state.get("labels") or {}).get(SESSION_LABEL) in run_ids:
                left.append(c.id)
        except Exception:
            continue  # removed meanwhile (another test run on this root)
    return left


# -- running and measuring --------------------------------------------------------------------
def run_suite(name: str, suite: Path, args: list[str], env: dict[str, str], times: Path, n: int) -> dict:
    times.write_text("")
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "pods_bench_timer",
           *args, str(suite)]
    # the timer, then this checkout: the pytest_pods measured is the one beside this script
    env = dict(env, BENCH_TIMES=str(times), PYTHONPATH=os.pathsep.join([str(times.parent / "timer"), str(REPO)]))
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=suite, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    summary = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    if p.returncode != 0 or not re.search(rf"\b{n} passed\b", summary) or re.search(r"skipped|error|failed",
                                                                                     summary):
        raise SystemExit(f"{name}: exit {p.returncode}, expected {n} passed\n$ {' '.join(cmd)}\n"
                         f"{p.stdout[-6000:]}\n{p.stderr[-3000:]}")
    rows = [json.loads(line) for line in times.read_text().splitlines()]
    tests = sorted((r for r in rows if r["phase"] == "test"), key=lambda r: r["i"])
    if len(tests) != n or [r["i"] for r in tests] != list(range(n)):
        raise SystemExit(f"{name}: expected {n} timed tests, got {len(tests)}")
    timeline = [ln.rstrip() for ln in p.stdout.splitlines() if "(warm-up)" in ln or "(server)" in ln]
    return {"wall": wall, "summary": summary, "tests": tests, "rows": rows, "timeline": timeline,
            "run_ids": {r["id"] for r in rows if r["phase"] == "run-id"}}


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def ms(x: float) -> str:
    return f"{x * 1000:.1f}"


def cell(xs: list[float]) -> str:
    return f"{ms(med(xs))} ({ms(min(xs))}-{ms(max(xs))})" if xs else "-"


def report(lv: dict[str, dict], results: dict[str, list[dict]], rounds: int, n: int) -> None:
    def per_test(name: str, key: str, first: bool = False) -> list[float]:
        return [t[key] for r in results[name] for t in r["tests"] if (t["i"] == 0) == first]

    print(f"\nFresh Postgres per test: {rounds} rounds x {n} tests per level. Milliseconds, median (min-max) "
          f"over tests 2..{n} of every round ({rounds * (n - 1)} tests);\nthe first test of each session is "
          "shown on its own (it pays the once-per-session set-up).\n")
    cols = [("start of setup -> connection answered", "conn", 30), ("setup phase", "setup", 22),
            ("body: connect", "connect", 20), ("1st query", "query", 20), ("teardown phase", "teardown", 22)]
    w = max(len(x) for x in lv) + 1
    print(f"{'level':<{w}}" + "".join(f"{h:>{c}}" for h, _, c in cols) + f"{'first test':>12}{'suite wall, s':>20}")
    for name in lv:
        firsts = per_test(name, "conn", first=True)
        walls = [r["wall"] for r in results[name]]
        print(f"{name:<{w}}" + "".join(f"{cell(per_test(name, k)):>{c}}" for _, k, c in cols)
              + f"{ms(med(firsts)):>12}" + f"{f'{med(walls):.2f} ({min(walls):.2f}-{max(walls):.2f})':>20}")
    base = med(per_test("cold", "conn")) if "cold" in lv else None
    if base:
        print("\nratio to ours cold (start of setup -> connection): "
              + ", ".join(f"{m} {med(per_test(m, 'conn')) / base:.2f}x" for m in lv if m != "cold"))

    # once per session
    print("\nonce per session (in the first test's setup):")
    for name in lv:
        rows = [row for r in results[name] for row in r["rows"]]
        parts = [f"first test {ms(med(per_test(name, 'conn', first=True)))} ms"]
        for fx in ("pods", "postgres_image"):
            xs = [row["s"] for row in rows if row["phase"] == "session" and row["name"] == fx]
            if xs:
                parts.append(f"fixture {fx} {ms(med(xs))} ms")
        snaps = [row["times"]["snapshot"] for row in rows if row["phase"] == "record" and "snapshot" in row["times"]]
        if snaps:
            parts.append(f"warm snapshot (start + load_schema + clean stop + commit) {ms(med(snaps))} ms")
        srv = [row["s"] for row in rows if row["phase"] == "server-setup"]
        if srv:
            parts.append(f"database server + template (start, CREATE DATABASE, load_schema, ALTER) {ms(med(srv))} ms")
        print(f"  {name:<16} " + "; ".join(parts))
        for line in results[name][0]["timeline"]:
            print(f"  {'':<16}   timeline: {line.strip()}")

    # where our time goes
    print("\nwhere our time goes (medians, ms; containers of all rounds, the test's own fixture and the pool's):")
    for name, level in lv.items():
        if level["kind"] == "tc":
            continue
        rows = [row for r in results[name] for row in r["rows"]]
        made = [row["times"] for row in rows if row["phase"] == "create" and "(warm-up)" not in row["fixture"]
                and "(server)" not in row["fixture"]]
        recs = [row["times"] for row in rows if row["phase"] == "record" and "(warm-up)" not in row["fixture"]
                and "(server)" not in row["fixture"]]
        parts = []
        if made:
            slow = [t["ready"] for t in made if t["ready"] > 0.5]
            parts.append(f"{len(made)} containers: create {ms(med([t['create'] for t in made]))}, start "
                         f"{ms(med([t['start'] for t in made]))}, readiness wait {ms(med([t['ready'] for t in made]))}"
                         + (f" (over 0.5 s: {len(slow)}, up to {max(slow):.2f} s)" if slow else ""))
        pool = [t["pool"] for t in recs if "pool" in t]
        if pool:
            tk = sorted(pool)
            parts.append(f"pool wait in take() {ms(med(pool))} (0 ms in {sum(1 for x in pool if x < 0.001)}/"
                         f"{len(pool)} takes; p90 {ms(tk[int(0.9 * (len(tk) - 1))])})")
        rm = [t["remove"] for t in recs if "remove" in t]
        if rm:
            parts.append(f"remove {ms(med(rm))}")
        for verb in ("create", "drop"):
            xs = [row["s"] for row in rows if row["phase"] == "sql" and row["verb"] == verb]
            if xs:
                parts.append(f"{verb.upper()} DATABASE {cell(xs)}")
        cw = [row["s"] for row in rows if row["phase"] == "clone-wait"]
        if cw:
            parts.append(f"clone wait in fresh() {ms(med(cw))}")
        print(f"  {name:<16} " + "; ".join(parts))

    print("\nlevels:")
    for name, level in lv.items():
        print(f"  {name:<16} {level['how']}")
        print(f"  {'':<16} pytest said: {'; '.join(r['summary'].strip('= ') for r in results[name])}")

    print("\nAim: a fresh own container from the warm pool under 50 ms median, a fresh database under 20 ms median "
          "(start of setup -> connection answered, tests 2..N)")
    for name, level in lv.items():
        if level["kind"] in AIMS:
            m, aim = med(per_test(name, "conn")), AIMS[level["kind"]]
            rows = [row for r in results[name] for row in r["rows"]]
            made = [row["times"]["ready"] for row in rows if row["phase"] == "create" and row["fixture"] == "(pool)"]
            slow = sum(1 for x in made if x > 0.5)
            conn = sorted(per_test(name, "conn"))
            p90 = conn[min(len(conn) - 1, int(0.9 * len(conn)))] if conn else float("nan")
            print(f"  {name:<16} {ms(m):>6} ms (p90 {ms(p90)}) vs {ms(aim)} ms: {'MET' if m < aim else 'NOT MET'}"
                  + (f"  ({slow} of {len(made)} pool containers took over 0.5 s to be ready: see the README)"
                     if slow else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2, help="timed rounds, each level once per round (default 2)")
    ap.add_argument("--tests", type=int, default=50, help="tests per level (default 50)")
    ap.add_argument("--warmup", type=int, default=3, help="tests per level in one warm-up run, not counted "
                                                          "(default 3; 0: none)")
    ap.add_argument("--pools", default="1,2,3", help="pool sizes to run (default 1,2,3)")
    ap.add_argument("--primed", type=int, default=2, help="also a pool of this size whose readiness includes a "
                                                          "first query (default 2; 0: leave out)")
    ap.add_argument("--root", help="our engine root (default: .cache/pods-root of the repo, the Makefile's)")
    ap.add_argument("--max-load", type=float, default=1.0, help="wait for the 1-minute load to drop below this")
    ap.add_argument("--wait-idle", type=float, default=300, help="seconds to wait for that at most (default 300)")
    ap.add_argument("--no-tc", action="store_true", help="leave out testcontainers (and dockerd)")
    ap.add_argument("--only", default="", help="comma-separated level names to run (e.g. database,pool=2)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    if args.tests < 2:
        raise SystemExit("--tests: at least 2 (the first test is reported on its own)")
    root = Path(args.root).resolve() if args.root else REPO / ".cache" / "pods-root"
    pools = [int(x) for x in args.pools.split(",") if x.strip()]
    lv = levels(pools, args.primed)
    if args.no_tc:
        del lv["tc"]
    if args.only:
        wanted = [x.strip() for x in args.only.split(",") if x.strip()]
        unknown = [x for x in wanted if x not in lv]
        if unknown:
            raise SystemExit(f"--only: no level {', '.join(unknown)}; levels: {', '.join(lv)}")
        lv = {k: v for k, v in lv.items() if k in wanted}

    pb.ensure_tools()
    from pytest_pods.client.local import Client

    work = Path(tempfile.mkdtemp(prefix="pods-fresh-pg-bench-", dir="/var/tmp"))
    dockerd = pb.Dockerd(work)
    client = None
    run_ids: set[str] = set()
    try:
        from importlib.metadata import version

        print(f"root {root}; work {work}")
        print(f"python {sys.version.split()[0]}, pytest {version('pytest')}, testcontainers "
              f"{version('testcontainers')}, docker-py {version('docker')}, psycopg {version('psycopg')}; "
              f"{pb.out(['dockerd', '--version'])}; kernel {platform.release()}, {os.cpu_count()} CPUs")
        iid = ensure_image(root)
        client = Client(str(root))
        if "tc" in lv:
            dockerd.start()
            tar = work / "postgres.tar"
            pb.sh(pb.pods_cmd(root, "save", IMAGE, "-o", str(tar)))
            pb.sh(dockerd.docker("load", "-q", "-i", str(tar)), stdout=subprocess.DEVNULL)
            tar.unlink()
            did = pb.out(dockerd.docker("image", "inspect", "-f", "{{.Id}}", IMAGE))
            print(f"  docker load of pods save {IMAGE}: {did[:19]} "
                  f"({'the same ID' if did == iid else 'a DIFFERENT ID'} as ours)")

        # as plugin.py: a bytecode cache of their own for the subprocesses (filled by the warm-up)
        base = {k: v for k, v in os.environ.items()
                if k not in ("PYTHONDONTWRITEBYTECODE", "DOCKER_HOST", "PODS_ROOT", "TC_POOLING_INTERVAL",
                             "BENCH_DIAG")}
        base["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        ours = ["--pods-root", str(root), "--pods-required"]
        for level in lv.values():
            if level["kind"] == "tc":
                level["env"] = dict(base, DOCKER_HOST=f"unix://{dockerd.sock}", TESTCONTAINERS_RYUK_DISABLED="true")
                level["args"] = ["-p", "no:pods"]
            else:
                level["env"] = dict(base, BENCH_DIAG=level["kind"])
                level["args"] = ours
        (work / "timer").mkdir()
        (work / "timer" / "pods_bench_timer.py").write_text(TIMER.lstrip())
        suites = {name: write_suite(work / "suites" / re.sub(r"\W", "", name), name, level, args.tests)
                  for name, level in lv.items()}
        times = work / "times.jsonl"

        def run(name: str, suite: Path, n: int) -> dict:
            try:
                res = run_suite(name, suite, lv[name]["args"], lv[name]["env"], times, n)
            finally:  # the ids of our sessions, for the clean-up, even when a run failed
                if times.exists():
                    run_ids.update(json.loads(x)["id"] for x in times.read_text().splitlines() if '"run-id"' in x)
            removed = remove_session_images(client, run_ids)
            res["snapshots_removed"] = removed
            return res

        wait_idle(args.max_load, args.wait_idle)
        if args.warmup:
            print(f"warm-up: each level once with {args.warmup} tests (not counted)")
            for name in lv:
                run(name, write_suite(work / "warmup" / re.sub(r"\W", "", name), name, lv[name], args.warmup),
                    args.warmup)
        results: dict[str, list[dict]] = {name: [] for name in lv}
        for rnd in range(1, args.rounds + 1):
            if rnd > 1:  # other work may have started meanwhile: a shorter wait before each later round
                wait_idle(args.max_load, min(60.0, args.wait_idle))
            line = []
            for name in lv:
                res = run(name, suites[name], args.tests)
                results[name].append(res)
                rest = [t["conn"] for t in res["tests"] if t["i"] > 0]
                line.append(f"{name} {ms(med(rest))} ms ({res['wall']:.1f} s)")
            print(f"round {rnd}/{args.rounds} (load {loads()}): " + "; ".join(line))
        report(lv, results, args.rounds, args.tests)
        snaps = sum(r["snapshots_removed"] for rs in results.values() for r in rs)
        print(f"\nwarm snapshot images our sessions committed and this script removed (rmi by ID): {snaps} "
              "(the plugin keeps them in the root after the session)")
        print(f"load at the end: {loads()}")
    finally:
        dockerd.stop()
        pb.unmount_under(work)
        shutil.rmtree(work, ignore_errors=True)
        if client is not None:
            try:
                remove_session_images(client, run_ids)
            except Exception as exc:
                print(f"note: removing the warm snapshots: {exc}")
            left = session_containers(client, run_ids)
            print(f"\nleft behind: {len(left)} container(s) of this script's {len(run_ids)} sessions in {root}, "
                  f"dockerd {'stopped' if dockerd.proc is None or dockerd.proc.poll() is not None else 'RUNNING'}"
                  + (f", bridge {dockerd.bridge} deleted" if dockerd.bridge_made else "")
                  + f", {work} {'removed' if not work.exists() else 'STILL THERE'}")
            if left:
                print("  " + " ".join(sorted(left)))


if __name__ == "__main__":
    main()
