#!/usr/bin/env python3
"""The rootless engine next to the root engine and rootless podman, in one run (issue 13's figures).

Run as root:  python3 bench/rootless.py [--rounds 8] [--per-round 5] [--pg-tests 6] [--install]

Three measures, the modes interleaved round by round so that drift hits all of them alike:

- **start**: ``Client(root).containers.run("busybox", ["true"], remove=True)`` on the default network
  and with ``network="none"`` (the Python API, timed in a worker process of its own after one
  warm-up; the latter is podman's peer, which runs with ``--network none``) and ``pods run --rm --network none busybox true``
  (the CLI, fork + exec + wait), as root on root's engine and as the ordinary user on the rootless
  engine;
- **podman**: ``podman run --rm --network none bb true`` as the same ordinary user (rootless podman,
  a busybox image imported from a tar of Debian's busybox-static), if podman runs here (``--install``
  installs it from Debian);
- **postgres**: a generated suite whose tests each take the plugin's ``postgres`` fixture (a fresh
  container per test): the time from the start of a test's setup to the answer of its first query,
  as root and as the user (whose limits are dropped with ``--pods-ignore-limits``: no delegation here).

The user is ``pods-rootless`` with its test root and venv as the Makefile's ``rootless-setup`` makes
them (run ``make test-rootless`` or ``make rootless-setup rootless-images`` once first).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
USER_PYTHON = REPO / ".cache" / "venv-rootless" / "bin" / "python"
ROOT_ROOT = REPO / ".cache" / "pods-root"

WORKER = r'''
import json, os, subprocess, sys, time
from pytest_pods import Client
root, n = sys.argv[1], int(sys.argv[2])
cli = [sys.executable, "-m", "pytest_pods.cli", "--root", root, "run", "--rm", "--network", "none", "busybox", "true"]
client = Client(root)
client.containers.run("busybox", ["true"], remove=True)   # warm-up: the engine, the image's snapshot
subprocess.run(cli, check=True, stdout=subprocess.DEVNULL)
client.containers.run("busybox", ["true"], remove=True, network="none")
api, api_none, cmd = [], [], []
for _ in range(n):
    t = time.perf_counter(); client.containers.run("busybox", ["true"], remove=True); api.append(time.perf_counter() - t)
    t = time.perf_counter(); client.containers.run("busybox", ["true"], remove=True, network="none")
    api_none.append(time.perf_counter() - t)
    t = time.perf_counter(); subprocess.run(cli, check=True, stdout=subprocess.DEVNULL); cmd.append(time.perf_counter() - t)
print(json.dumps({"api": api, "api_none": api_none, "cli": cmd}))
'''

PG_CONFTEST = r'''
import json, os, time
import pytest

OUT = os.environ["PODS_BENCH_OUT"]
_t0 = {}

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _t0[item.nodeid] = time.perf_counter()

@pytest.fixture
def first_query_answered(request):
    def mark():
        with open(OUT, "a") as f:
            f.write(json.dumps(time.perf_counter() - _t0[request.node.nodeid]) + "\n")
    return mark
'''

PG_TEST = r'''
import psycopg
import pytest

@pytest.mark.parametrize("i", range({n}))
def test_fresh(postgres, first_query_answered, i):
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        first_query_answered()
'''


def as_user(user: str, argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    pw = pwd.getpwnam(user)
    env = ["env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", f"HOME={pw.pw_dir}", f"USER={user}",
           f"LOGNAME={user}", f"XDG_RUNTIME_DIR=/run/user/{pw.pw_uid}", "LANG=C.UTF-8"]
    extra = kw.pop("env", {})
    assert isinstance(extra, dict)
    env += [f"{k}={v}" for k, v in extra.items()]
    return subprocess.run(["runuser", "-u", user, "--", *env, *argv], text=True, **kw)  # type: ignore[call-overload]


def user_root(user: str) -> str:
    return f"{pwd.getpwnam(user).pw_dir}/.cache/pods-test-root"


def start_round(user: str, n: int) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {}
    root = subprocess.run([sys.executable, "-c", WORKER, str(ROOT_ROOT), str(n)], text=True, check=True,
                          capture_output=True, cwd=REPO)
    out["root"] = json.loads(root.stdout)
    rl = as_user(user, [str(USER_PYTHON), "-c", WORKER, user_root(user), str(n)], capture_output=True, cwd=REPO)
    if rl.returncode:
        raise SystemExit(f"the rootless worker failed:\n{rl.stderr}")
    out["rootless"] = json.loads(rl.stdout)
    return out


def podman_ready(user: str, work: Path, install: bool) -> list[str] | None:
    """The podman command that runs busybox rootless as ``user``, or None (and why, printed)."""
    if not shutil.which("podman"):
        if not install:
            print("podman: not installed (--install installs Debian's podman)")
            return None
        subprocess.run(["apt-get", "install", "-y", "-qq", "podman"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, stdout=subprocess.DEVNULL)
    if as_user(user, ["podman", "image", "exists", "bb"], capture_output=True).returncode:
        rootfs = work / "bb"
        (rootfs / "bin").mkdir(parents=True)
        shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
        os.symlink("busybox", rootfs / "bin" / "true")
        tar = work / "bb.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
        os.chmod(work, 0o755)
        os.chmod(tar, 0o644)
        as_user(user, ["podman", "import", str(tar), "bb"], check=True, capture_output=True)
    base = ["podman", "run", "--rm", "--network", "none"]
    for extra in ([], ["--cgroups", "disabled"], ["--runtime", "runc"], ["--runtime", "runc", "--cgroups", "disabled"]):
        cmd = [*base, *extra, "bb", "true"]
        if as_user(user, cmd, capture_output=True).returncode == 0:
            return cmd
    print("podman: installed but runs no rootless container here: left out")
    return None


def podman_pause_pid(user: str) -> int | None:
    """The pid of rootless podman's pause process for ``user`` (it outlives every podman command)."""
    pw = pwd.getpwnam(user)
    try:
        pid = int(Path(f"/run/user/{pw.pw_uid}/libpod/tmp/pause.pid").read_text())
        return pid if os.stat(f"/proc/{pid}").st_uid == pw.pw_uid else None
    except (OSError, ValueError):
        return None


def stop_podman_pause(user: str, before: int | None) -> None:
    """End the pause process podman started during this run (one that ran before is left alone)."""
    pid = podman_pause_pid(user)
    if pid is not None and pid != before:
        os.kill(pid, 15)


def podman_round(user: str, cmd: list[str], n: int) -> list[float]:
    script = ("import subprocess, sys, time, json\ncmd = sys.argv[1:]\nts = []\n"
              f"for _ in range({n}):\n"
              "    t = time.perf_counter(); subprocess.run(cmd, check=True); ts.append(time.perf_counter() - t)\n"
              "print(json.dumps(ts))\n")
    res = as_user(user, ["/usr/bin/python3", "-c", script, *cmd], capture_output=True, check=True)
    return [float(x) for x in json.loads(res.stdout)]


def pg_round(user: str | None, suite: Path, out: Path, tests: int) -> list[float]:
    out.write_text("")
    os.chmod(out, 0o666)
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--rootdir", str(suite), str(suite)]
    if user is None:
        res = subprocess.run([sys.executable, *args, "--pods-root", str(ROOT_ROOT)], text=True, capture_output=True,
                             cwd=suite, env={**os.environ, "PODS_BENCH_OUT": str(out)})
    else:
        res = as_user(user, [str(USER_PYTHON), *args, "--pods-root", user_root(user), "--pods-ignore-limits"],
                      capture_output=True, cwd=suite, env={"PODS_BENCH_OUT": str(out)})
    if res.returncode:
        raise SystemExit(f"the postgres suite failed ({user or 'root'}):\n{res.stdout[-3000:]}\n{res.stderr[-2000:]}")
    times = [float(x) for x in out.read_text().split()]
    assert len(times) == tests, times
    return times


def row(name: str, xs: list[float], base: float | None) -> str:
    med = statistics.median(xs)
    ratio = f"{med / base:5.2f}x" if base else "      "
    return f"  {name:<44} {med * 1000:8.1f} ms  ({min(xs) * 1000:.1f}-{max(xs) * 1000:.1f})  {ratio}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--per-round", type=int, default=5)
    ap.add_argument("--pg-tests", type=int, default=6, help="tests per postgres suite run (0: leave it out)")
    ap.add_argument("--pg-rounds", type=int, default=3)
    ap.add_argument("--user", default="pods-rootless")
    ap.add_argument("--install", action="store_true", help="apt-get install podman if it is missing")
    opts = ap.parse_args()
    if os.getuid() != 0:
        raise SystemExit("run as root: it runs the root engine itself and the rootless one as --user")
    pause_before = podman_pause_pid(opts.user)
    work = Path(tempfile.mkdtemp(prefix="pods-bench-rootless-", dir="/var/tmp"))
    os.chmod(work, 0o755)
    try:
        podman = podman_ready(opts.user, work, opts.install)
        start: dict[str, list[float]] = {k: [] for k in ("root api", "root api none", "root cli", "rootless api",
                                                          "rootless api none", "rootless cli", "podman")}
        for _ in range(opts.rounds):
            r = start_round(opts.user, opts.per_round)
            start["root api"] += r["root"]["api"]
            start["root api none"] += r["root"]["api_none"]
            start["rootless api none"] += r["rootless"]["api_none"]
            start["root cli"] += r["root"]["cli"]
            start["rootless api"] += r["rootless"]["api"]
            start["rootless cli"] += r["rootless"]["cli"]
            if podman:
                start["podman"] += podman_round(opts.user, podman, opts.per_round)
        print(f"start to exit of `true` ({opts.rounds} rounds x {opts.per_round}; ratio to root's same path):")
        print(row("root: Client.containers.run", start["root api"], None))
        print(row("rootless: Client.containers.run", start["rootless api"], statistics.median(start["root api"])))
        print(row("root: Client.containers.run(network='none')", start["root api none"], None))
        print(row("rootless: Client.containers.run(network='none')", start["rootless api none"],
                  statistics.median(start["root api none"])))
        print(row("root: pods run --rm --network none", start["root cli"], None))
        print(row("rootless: pods run --rm --network none", start["rootless cli"],
                  statistics.median(start["root cli"])))
        if start["podman"]:
            pm = statistics.median(start["podman"])
            print(row("rootless podman: " + " ".join(podman or []), start["podman"], None))
            # like with like: podman runs with --network none, so the API with network="none" is
            # its peer; the API's default network (a bridge endpoint) is shown for scale
            print(f"  rootless API (network none) / rootless podman (--network none): "
                  f"{statistics.median(start['rootless api none']) / pm:.2f}x (aim: at most 0.25x);"
                  f" rootless CLI / rootless podman: {statistics.median(start['rootless cli']) / pm:.2f}x;"
                  f" rootless API on its default network / podman: {statistics.median(start['rootless api']) / pm:.2f}x")
        if opts.pg_tests:
            suite = work / "pg"
            suite.mkdir()
            (suite / "conftest.py").write_text(textwrap.dedent(PG_CONFTEST))
            (suite / "test_pg.py").write_text(PG_TEST.replace("{n}", str(opts.pg_tests)))
            os.chmod(suite, 0o755)
            out = work / "pg.out"
            pg: dict[str, list[float]] = {"root": [], "rootless": []}
            pg_round(None, suite, out, opts.pg_tests)  # warm-up: the image, the snapshot, page cache
            pg_round(opts.user, suite, out, opts.pg_tests)
            for _ in range(opts.pg_rounds):
                pg["root"] += pg_round(None, suite, out, opts.pg_tests)
                pg["rootless"] += pg_round(opts.user, suite, out, opts.pg_tests)
            print(f"postgres fixture, setup start to first query ({opts.pg_rounds} rounds x {opts.pg_tests}):")
            print(row("root", pg["root"], None))
            print(row("rootless (aim: within 1.3x)", pg["rootless"], statistics.median(pg["root"])))
        print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        stop_podman_pause(opts.user, pause_before)


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"({time.monotonic() - started:.0f} s)")
