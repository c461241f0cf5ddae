#!/usr/bin/env python3
"""Networking cost: start-to-exit with the default bridge vs none, and HTTP throughput through a published port.

Run as root:  python3 bench/network.py [--rounds 30] [--requests 10000] [--concurrency 16] [--repeats 3]

1. `true` in busybox through the Python API, network="none" vs network="bridge", interleaved
   (A B A B ...), one warm-up each not counted (the first bridge run creates the default network).
2. busybox httpd in a container with 80/tcp published on a free host port: ApacheBench (`ab`) from
   the host to 127.0.0.1:<host port> (kernel DNAT), against the same ab run inside the container's
   network namespace (`nsenter --net=/proc/<pid>/ns/net`) to 127.0.0.1:80. Interleaved, the medians
   of --repeats runs each. See bench/README.md.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pytest_pods import Client  # noqa: E402

ANCHOR_DOCKER_BRIDGE_MS = (50, 65)  # RESULTS.md 1: what docker's bridge (veth set-up) adds to a start
AIM_BRIDGE_MS = 5.0
AIM_RATIO = 0.80
PAGE_BYTES = 1024
HTTPD = ("mkdir /www && head -c {n} /dev/zero | tr '\\0' x > /www/index.html "
         "&& exec httpd -f -p 80 -h /www")


# -- 1. start-to-exit, none vs bridge ---------------------------------------------------------------
def timed_run(client: Client, network: str) -> float:
    t0 = time.perf_counter()
    res = client.containers.run("busybox", ["true"], remove=True, network=network)
    dt = time.perf_counter() - t0
    if res.exit_code != 0:
        raise SystemExit(f"run network={network}: exit {res.exit_code}: {res.stderr!r}")
    return dt * 1000


def start_latency(client: Client, rounds: int) -> None:
    cases = ("none", "bridge")
    for net in cases:  # warm-up, not counted: the first bridge run also creates the default network
        timed_run(client, net)
    times: dict[str, list[float]] = {net: [] for net in cases}
    for _ in range(rounds):
        for net in cases:
            times[net].append(timed_run(client, net))
    med = {net: statistics.median(t) for net, t in times.items()}
    paired = statistics.median(b - a for a, b in zip(times["none"], times["bridge"]))
    diff = med["bridge"] - med["none"]

    print(f"\n1. Start-to-exit of `true` in busybox, Python API containers.run(remove=True), "
          f"{rounds} rounds interleaved (+1 warm-up each), ms\n")
    w = 24
    print(f"{'network':<{w}}  {'median':>7}  {'min-max':>13}")
    for net in cases:
        t = times[net]
        print(f"{'network=' + repr(net):<{w}}  {med[net]:7.1f}  {min(t):6.1f}-{max(t):<6.1f}")
    lo, hi = ANCHOR_DOCKER_BRIDGE_MS
    print(f"{'bridge - none':<{w}}  {diff:7.1f}  (median of the {rounds} paired differences: {paired:.1f})")
    print(f"  aim: the bridge adds under {AIM_BRIDGE_MS:.0f} ms: {'MET' if diff < AIM_BRIDGE_MS else 'NOT MET'}"
          f"   (docker's bridge adds {lo}-{hi} ms to a start, RESULTS.md 1: ours is "
          f"{diff / hi:.2f}-{diff / lo:.2f}x of that)")


# -- 2. throughput through a published port ---------------------------------------------------------
def ensure_ab() -> str:
    ab = shutil.which("ab")
    if ab is None:
        subprocess.run(["apt-get", "install", "-y", "apache2-utils"], check=True, stdout=subprocess.DEVNULL)
        ab = shutil.which("ab")
        if ab is None:
            raise SystemExit("apache2-utils installed but no ab on PATH")
    return ab


def wait_http(host: str, port: int, timeout: float = 10.0) -> int:
    """Until the server answers 200; returns the body's length."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/", timeout=2) as r:
                return len(r.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def ab_run(cmd: list[str]) -> dict[str, float]:
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    out = p.stdout

    def field(name: str, default: float | None = None) -> float:
        m = re.search(rf"^{re.escape(name)}:\s+([\d.]+)", out, re.M)
        if m is None:
            if default is None:
                raise SystemExit(f"{' '.join(cmd)}: exit {p.returncode}, no '{name}':\n{out}\n{p.stderr}")
            return default
        return float(m.group(1))

    return {"rps": field("Requests per second"), "complete": field("Complete requests"),
            "failed": field("Failed requests"), "non2xx": field("Non-2xx responses", 0.0),
            "keepalive": field("Keep-Alive requests", 0.0), "doclen": field("Document Length"),
            "exit": float(p.returncode)}


def throughput(client: Client, ab: str, n: int, conc: int, repeats: int) -> None:
    web = client.containers.run("busybox", ["sh", "-c", HTTPD.format(n=PAGE_BYTES)], detach=True, remove=True,
                                network="bridge", ports={"80/tcp": None})
    try:
        host, port = web.address(80)
        pid, ip = web.state["pid"], web.ip
        body = wait_http(host, port)
        flags = ["-q", "-r", "-n", str(n), "-c", str(conc), "-k"]

        def cases(requests: int) -> dict[str, list[str]]:
            f = ["-q", "-r", "-n", str(requests), "-c", str(conc), "-k"]
            return {
                f"published {host}:{port} (DNAT)": [ab, *f, f"http://{host}:{port}/"],
                "direct, in the netns 127.0.0.1:80": ["nsenter", f"--net=/proc/{pid}/ns/net", ab, *f,
                                                      "http://127.0.0.1:80/"],
            }
        for cmd in cases(1000).values():  # warm-up, not counted
            ab_run(cmd)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in cases(n)}
        for _ in range(repeats):
            for name, cmd in cases(n).items():
                runs[name].append(ab_run(cmd))
    finally:
        web.remove(force=True)

    version = subprocess.run([ab, "-V"], capture_output=True, text=True).stdout.splitlines()[0].removeprefix("This is ")
    print(f"\n2. HTTP GET of a {body}-byte page from busybox httpd (container {web.short_id}, ip {ip}), "
          f"{n} requests per run, `ab {' '.join(flags)}` ({version}); {repeats} runs each, interleaved "
          f"(+1 warm-up of 1000 each)\n")
    w = max(len(k) for k in runs)
    print(f"{'path':<{w}}  {'req/s median':>12}  {'runs':<23}  {'complete':>8}  {'failed':>6}  {'non-2xx':>7}  "
          f"{'keep-alive':>10}")
    med = {}
    for name, rs in runs.items():
        med[name] = statistics.median(r["rps"] for r in rs)
        each = " ".join(f"{r['rps']:.0f}" for r in rs)
        print(f"{name:<{w}}  {med[name]:12.0f}  {each:<23}  {sum(r['complete'] for r in rs):8.0f}  "
              f"{sum(r['failed'] for r in rs):6.0f}  {sum(r['non2xx'] for r in rs):7.0f}  "
              f"{sum(r['keepalive'] for r in rs):10.0f}")
    pub, direct = med.values()
    ratio = pub / direct
    lost = sum(r["failed"] + r["non2xx"] + (n - r["complete"]) + (r["exit"] != 0) for rs in runs.values() for r in rs)
    doclens = {r["doclen"] for rs in runs.values() for r in rs}
    print(f"  published / direct: {ratio:.0%}   aim >= {AIM_RATIO:.0%}: {'MET' if ratio >= AIM_RATIO else 'NOT MET'}")
    print(f"  without loss (0 failed, 0 non-2xx, every run complete, ab exit 0): "
          f"{'MET' if lost == 0 else f'NOT MET ({lost:.0f} lost)'}; document length {sorted(doclens)}")
    print("  note: busybox httpd answers `Connection: close`, so -k has no effect: every GET is a new TCP "
          "connection (and on the published path a new conntrack entry + DNAT)")


# -- main -------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30, help="timed start rounds per case (default 30)")
    ap.add_argument("--requests", type=int, default=10_000, help="HTTP GETs per ab run (default 10000)")
    ap.add_argument("--concurrency", type=int, default=16, help="ab -c (default 16)")
    ap.add_argument("--repeats", type=int, default=3, help="ab runs per path (default 3)")
    args = ap.parse_args()
    import os

    if os.geteuid() != 0:
        raise SystemExit("run as root")
    ab = ensure_ab()
    work = Path(tempfile.mkdtemp(prefix="pods-net-bench-", dir="/var/tmp"))
    root = work / "root"
    client = Client(root)
    try:
        client.images.bootstrap_busybox()
        print(f"root {root}; python {sys.executable} {sys.version.split()[0]}; kernel {os.uname().release}, "
              f"{os.cpu_count()} CPUs")
        start_latency(client, args.rounds)
        throughput(client, ab, args.requests, args.concurrency, args.repeats)
    finally:
        for c in client.containers.list(all=True):
            c.remove(force=True)
        if (root / "networks").is_dir():
            client.runtime.networks.remove_all()  # bridges and rules
        client.reap()  # and the root's cgroup parents
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
