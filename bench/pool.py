#!/usr/bin/env python3
"""The engine pool's own overhead (issue 20): the same suite with three xdist workers, all on one
`pods daemon`, then spread over three (`--pods-host A,B,C`: worker gwN on the Nth engine).

Run as root:  python3 bench/pool.py [--rounds 3] [--tests 30]

On one machine the pool cannot be faster (the three daemons share its cores): what this shows is
what the pool costs, i.e. the suite's wall time spread over three engines against on one, and the
median fixture setup (create + start + ready) in each. Three daemons on roots of their own, in a
scratch dir /var/tmp/pods-pool-bench-XXXX/ (busybox loaded from the base-images archive the Makefile
saves), each serving a unix socket. The rounds interleave the two layouts (one, three, one, ...),
one warm-up round is not counted. At the end the daemons are stopped by PID, their roots released
and the scratch dir deleted. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASE_IMAGES = REPO / ".cache" / "base-images.tar"
ENGINES = 3

SUITE = '''
from pytest_pods import container, wait

box = container(image="busybox", network="none", command=["sh", "-c", "echo ready; exec sleep 60"],
                wait=wait.log("ready"))


@pytest.mark.parametrize("i", range(@TESTS@))
def test_fresh(box, i):
    assert box.exec(["true"]).exit_code == 0
'''

TIMER = '''
import json, os, time
import pytest

_t = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef, request):
    t0 = time.perf_counter()
    yield
    if fixturedef.argname == "box":
        with open(os.environ["POOL_BENCH_OUT"], "a") as f:
            f.write(json.dumps(time.perf_counter() - t0) + "\\n")
'''


def serve(root: Path, sock: Path, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "pytest_pods.cli", "--root", str(root), "daemon", "--socket",
                             str(sock), "--log-file", str(log)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=REPO)
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit(f"pods daemon on {root} exited {proc.returncode}: see {log}")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(sock))
            return proc
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"pods daemon on {root} did not answer: see {log}")


def run_suite(work: Path, hosts: list[str], out: Path) -> float:
    env = dict(os.environ, POOL_BENCH_OUT=str(out), PYTHONPATH=f"{work}{os.pathsep}{REPO}")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "pool_bench_timer",
                           "-n", str(ENGINES), "--pods-host", ",".join(hosts), str(work / "test_pool_suite.py")],
                          cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"the suite failed on {hosts}:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tests", type=int, default=30)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (three daemons on roots of their own)")
    if not BASE_IMAGES.is_file():
        raise SystemExit(f"{BASE_IMAGES} is missing: run `make images rootless-images` first")
    work = Path(tempfile.mkdtemp(prefix="pods-pool-bench-", dir="/var/tmp"))
    procs: list[subprocess.Popen[bytes]] = []
    roots = [work / f"root{i}" for i in range(ENGINES)]
    try:
        (work / "test_pool_suite.py").write_text("import pytest\n" + SUITE.replace("@TESTS@", str(args.tests)))
        (work / "pool_bench_timer.py").write_text(TIMER)
        hosts = []
        for i, root in enumerate(roots):
            root.mkdir()
            subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--root", str(root), "load", "-q", "-i",
                            str(BASE_IMAGES)], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
            sock = work / f"d{i}.sock"
            procs.append(serve(root, sock, work / f"d{i}.log"))
            hosts.append(f"unix://{sock}")
        layouts = {"one engine": hosts[:1], "three engines": hosts}
        walls: dict[str, list[float]] = {k: [] for k in layouts}
        setups: dict[str, list[float]] = {k: [] for k in layouts}
        for rnd in range(args.rounds + 1):
            for name, chosen in layouts.items():
                out = work / f"setup-{rnd}-{name.replace(' ', '-')}.jsonl"
                wall = run_suite(work, chosen, out)
                if rnd == 0:
                    continue  # warm-up
                walls[name].append(wall)
                setups[name] += [json.loads(line) for line in out.read_text().splitlines()]
        print(f"{args.tests} tests, a fresh busybox container each, {ENGINES} xdist workers; "
              f"{args.rounds} rounds (+1 warm-up), interleaved; {os.cpu_count()} CPUs")
        print(f"{'layout':<16}{'suite wall (median)':>22}{'fixture setup median':>24}{'p90':>10}")
        for name in layouts:
            s = sorted(setups[name])
            print(f"{name:<16}{statistics.median(walls[name]):>20.2f} s{statistics.median(s) * 1000:>21.1f} ms"
                  f"{s[int(len(s) * 0.9)] * 1000:>7.1f} ms")
        ratio = statistics.median(walls["three engines"]) / statistics.median(walls["one engine"])
        print(f"the pool's overhead on one machine: three engines take {ratio:.2f}x the wall time of one")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        sys.path.insert(0, str(REPO))
        from pytest_pods import Client

        for root in roots:
            if root.exists():
                c = Client(root)
                for st in c.runtime.list(all=True):
                    c.runtime.remove(st["id"], force=True)
                c.cleanup(prune_networks=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
