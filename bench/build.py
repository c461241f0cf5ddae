#!/usr/bin/env python3
"""Dockerfile builds: our builder (Python API and CLI) vs BuildKit, docker's classic builder and buildah.

Run as root:  python3 bench/build.py [--rounds 5] [--profile]

The Dockerfile is the anchors' (04-builds.sh): FROM bb, RUN echo, COPY 50 MiB random, ENV, plus one
step that COPYs a small src.txt. Three cases per builder: cold (no cache), fully cached rebuild
(nothing changed), and a rebuild after src.txt changed. Every round runs every builder once per
case, in a fixed order (all colds, then all cached, then all changed), so drift hits all alike;
one warm-up round is not counted. The timer is time.perf_counter, around the call for the Python
API and around subprocess.run (fork + exec + wait) for commands. See bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from pytest_pods import Client  # noqa: E402
from start_latency import sh, start_dockerd, stop_pid, works  # noqa: E402  (our own dockerd set-up)

PODS = Path(sys.executable).parent / "pods"  # the console script itself, not the pyenv shim
DOCKER20 = "/usr/bin/docker"  # docker.io's 20.10 client: the 28.x client on PATH has no buildx for BuildKit
TAG = "pods-bench-build"
BIG_MIB = 50
STEPS = ["RUN echo hello > /hello.txt", "COPY big.bin /big.bin", "ENV A=1", "COPY src.txt /src.txt"]
# RESULTS.md 2 (04-builds.sh, without the src.txt step), median seconds
ANCHOR_S = {("BuildKit", "cold"): 0.611, ("BuildKit", "cached"): 0.077,
            ("classic", "cold"): 1.387, ("classic", "cached"): 0.314,
            ("buildah", "cold"): 1.232, ("buildah", "cached"): 0.425}
CASES = {"cold": "cold (no cache)", "cached": "fully cached rebuild", "changed": "rebuild, src.txt changed"}
CACHED_AIM_MS = 40


# -- builders -------------------------------------------------------------------------------------
class Builder:
    """One builder: ``build(nocache)`` returns (seconds, the number of steps it reported as cached)."""

    def __init__(self, name: str, key: str, context: Path, marker: str) -> None:
        self.name, self.key, self.context, self.marker = name, key, context, marker
        self.src_n = 0

    def build(self, nocache: bool) -> tuple[float, int]:
        raise NotImplementedError

    def change_src(self) -> None:
        """A new value for src.txt, outside the timing (size changes too, now and then)."""
        self.src_n += 1
        (self.context / "src.txt").write_text(f"{self.key} change {self.src_n} {time.time_ns()}\n")


class ApiBuilder(Builder):
    def __init__(self, client: Client, context: Path) -> None:
        super().__init__("pods Python API: images.build()", "api", context, "Using cache")
        self.client = client

    def build(self, nocache: bool) -> tuple[float, int]:
        lines: list[str] = []
        t0 = time.perf_counter()
        self.client.images.build(self.context, tag=f"{TAG}:api", nocache=nocache, network="none",
                                 progress=lines.append)
        dt = time.perf_counter() - t0
        return dt, sum(self.marker in ln for ln in lines)


class CmdBuilder(Builder):
    def __init__(self, name: str, key: str, context: Path, marker: str, cmd: list[str],
                 env: dict[str, str] | None = None, nocache_flag: str = "--no-cache") -> None:
        super().__init__(name, key, context, marker)
        self.cmd, self.env, self.nocache_flag = cmd, env, nocache_flag

    def build(self, nocache: bool) -> tuple[float, int]:
        cmd = [*self.cmd, *([self.nocache_flag] if nocache else []), str(self.context)]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=self.env)
        dt = time.perf_counter() - t0
        out = p.stdout.decode(errors="replace")
        if p.returncode != 0:
            raise BuildFailed(f"{' '.join(cmd)}: exit {p.returncode}:\n{out[-2000:]}")
        if self.marker == "CACHED":  # BuildKit: "#N [k/n] COPY ..." ... "#N CACHED"; its FROM says CACHED even cold
            steps = {ln.split()[0] for ln in out.splitlines() if re.match(r"#\d+ \[(\d+)/\d+\] ", ln)
                     and not re.match(r"#\d+ \[1/\d+\] FROM ", ln)}
            return dt, sum(f"{i} CACHED" in out.splitlines() for i in steps)
        return dt, out.count(self.marker)


class BuildFailed(Exception):
    pass


# -- set-up ---------------------------------------------------------------------------------------
def make_context(work: Path, name: str, base: str, big: Path) -> Path:
    c = work / f"ctx-{name}"
    c.mkdir()
    os.link(big, c / "big.bin")  # the same 50 MiB file in every context, written once
    (c / "src.txt").write_text("initial\n")
    (c / "Dockerfile").write_text("\n".join([f"FROM {base}", *STEPS]) + "\n")
    return c


def busybox_tar(client: Client, work: Path) -> Path:
    """Our busybox image's rootfs as a tar: what docker and buildah get as `bb`."""
    tar = work / "bb.tar"
    (lower,) = client.store.lower_dirs(client.images.get("busybox"))  # one layer
    sh(["tar", "-C", str(lower), "-cf", str(tar), "."])
    return tar


def docker_images() -> set[str]:
    out = subprocess.run([DOCKER20, "images", "-aq", "--no-trunc"], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def buildah_images() -> set[str]:
    out = subprocess.run(["buildah", "images", "-aq", "--no-trunc"], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def buildah_import_bb(tar: Path) -> None:
    """buildah has no `import`: a scratch container, the rootfs added, committed as bb."""
    ctr = subprocess.run(["buildah", "from", "scratch"], capture_output=True, text=True, check=True).stdout.strip()
    try:
        sh(["buildah", "add", ctr, str(tar), "/"], stdout=subprocess.DEVNULL)
        sh(["buildah", "config", "--cmd", "/bin/sh", "--env", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", ctr],
           stdout=subprocess.DEVNULL)
        sh(["buildah", "commit", "-q", ctr, "localhost/bb:latest"], stdout=subprocess.DEVNULL)
    finally:
        subprocess.run(["buildah", "rm", ctr], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ensure_buildah(notes: list[str]) -> bool:
    if shutil.which("buildah"):
        return True
    p = subprocess.run(["apt-get", "install", "-y", "buildah"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode != 0 or not shutil.which("buildah"):
        notes.append(f"buildah: apt-get install failed ({p.stderr.decode(errors='replace').strip()[-200:]}): left out")
        return False
    notes.append("buildah was installed with apt-get for this run")
    return True


# -- report ---------------------------------------------------------------------------------------
def profile_one(b: ApiBuilder, nocache: bool, change: bool, top: int) -> str:
    """cProfile of one in-process build: the top functions by own time and by cumulative time, in ms."""
    if change:
        b.change_src()
    os.sync()
    pr = cProfile.Profile()
    t0 = time.perf_counter()
    pr.enable()
    b.client.images.build(b.context, tag=f"{TAG}:api", nocache=nocache, network="none")
    pr.disable()
    wall = time.perf_counter() - t0
    rows = pstats.Stats(pr).stats  # type: ignore[attr-defined]  # {(file, line, fn): (cc, nc, tt, ct, callers)}

    repo = Path(__file__).resolve().parent.parent

    def name(k: tuple[str, int, str]) -> str:
        f, line, fn = k
        if f == "~":  # a built-in
            return fn
        where = os.path.relpath(f, repo) if f.startswith(str(repo)) else Path(f).name
        return f"{where}:{line}({fn})"

    out = [f"  wall {wall * 1000:.1f} ms under the profiler; {sum(v[1] for v in rows.values())} calls"]
    for title, idx in (("own time", 2), ("cumulative", 3)):
        out.append(f"  top {top} by {title}:   ncalls   own ms   cum ms")
        for k, v in sorted(rows.items(), key=lambda kv: -kv[1][idx])[:top]:
            out.append(f"    {name(k)[:60]:<60} {v[1]:6d} {v[2] * 1000:8.2f} {v[3] * 1000:8.2f}")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds per case (default 5)")
    ap.add_argument("--profile", action="store_true",
                    help="at the end, cProfile one in-process cached build and one after src.txt changed")
    ap.add_argument("--settle", type=float, default=0.0,
                    help="seconds of pause before each build, after os.sync() (default 0)")
    ap.add_argument("--samples", action="store_true", help="also print every timed sample")
    ap.add_argument("--top", type=int, default=12, help="functions shown per --profile listing")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    if not PODS.exists():
        raise SystemExit(f"{PODS}: the pods console script is not installed for {sys.executable}")

    work = Path(tempfile.mkdtemp(prefix="pods-build-bench-", dir="/var/tmp"))
    root = work / "root"
    notes: list[str] = []
    dockerd = None
    docker_before: set[str] | None = None
    buildah_before: set[str] | None = None
    try:
        sh([str(PODS), "--root", str(root), "bootstrap", "busybox"], stdout=subprocess.DEVNULL)
        client = Client(root)
        print(f"root {root}; python {sys.executable} {sys.version.split()[0]}; pods {PODS}")
        big = work / "big.bin"
        with open(big, "wb") as f:
            for _ in range(BIG_MIB):
                f.write(os.urandom(1 << 20))

        # as in start_latency.py: a bytecode cache of the CLI's own, filled by the warm-up round
        py_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        py_env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        api = ApiBuilder(client, make_context(work, "api", "busybox", big))
        builders: list[Builder] = [
            api,
            CmdBuilder("pods CLI: pods build --network none", "cli", make_context(work, "cli", "busybox", big),
                       "Using cache", [str(PODS), "--root", str(root), "build", "--network", "none",
                                       "-t", f"{TAG}:cli"], py_env),
        ]

        tar = busybox_tar(client, work)
        if not works([DOCKER20, "info"]):
            dockerd = start_dockerd(work)
            notes.append("dockerd was started for this run (own data root, --bridge=none --iptables=false) "
                         "and stopped at the end")
        docker_before = docker_images()
        if not works([DOCKER20, "image", "inspect", "bb"]):
            sh([DOCKER20, "import", "-c", 'CMD ["/bin/sh"]', "-c", "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                str(tar), "bb:latest"], stdout=subprocess.DEVNULL)
            notes.append("imported bb:latest into docker from our busybox rootfs")
        for key, name, flag, marker in (("buildkit", "BuildKit: DOCKER_BUILDKIT=1 docker(20.10) build", "1", "CACHED"),
                                      ("classic", "classic: DOCKER_BUILDKIT=0 docker(20.10) build", "0",
                                       "Using cache")):
            env = {**os.environ, "DOCKER_BUILDKIT": flag}
            if flag == "1":
                env["BUILDKIT_PROGRESS"] = "plain"
            builders.append(CmdBuilder(name, key, make_context(work, key, "bb", big), marker,
                                       [DOCKER20, "build", "--network", "none", "-t", f"{TAG}:{key}"], env))

        if ensure_buildah(notes):
            try:
                buildah_before = buildah_images()
                if not works(["buildah", "inspect", "--type", "image", "localhost/bb:latest"]):
                    buildah_import_bb(tar)
                    notes.append("committed localhost/bb:latest in buildah from our busybox rootfs")
                bah = CmdBuilder("buildah bud --runtime runc --layers", "buildah",
                                 make_context(work, "buildah", "bb", big), "Using cache",
                                 ["buildah", "bud", "--runtime", "runc", "--layers", "--network", "none",
                                  "-t", f"localhost/{TAG}:buildah"])
                bah.build(nocache=True)  # does it work on this machine at all?
                builders.append(bah)
            except (BuildFailed, subprocess.CalledProcessError) as exc:
                notes.append(f"buildah does not build on this machine: left out ({str(exc).strip()[-300:]})")

        # the floors of the CLI row, with its interpreter and environment
        floors = {"python3 -c pass": [sys.executable, "-c", "pass"],
                  "python3 -c 'import pytest_pods.cli'": [sys.executable, "-c", "import pytest_pods.cli"]}
        floor_t: dict[str, list[float]] = {k: [] for k in floors}

        # one warm-up round (also fills every cache), then the timed rounds
        times: dict[tuple[str, str], list[float]] = {(b.key, c): [] for b in builders for c in CASES}
        hits: dict[tuple[str, str], set[int]] = {(b.key, c): set() for b in builders for c in CASES}
        for rnd in range(args.rounds + 1):
            for case in CASES:
                for b in builders:
                    if case == "changed":
                        b.change_src()
                    os.sync()  # no build pays for writing back the previous one's dirty pages
                    time.sleep(args.settle)  # nor for a daemon's work left over from the previous build
                    dt, n = b.build(nocache=case == "cold")
                    if rnd:
                        times[(b.key, case)].append(dt)
                        hits[(b.key, case)].add(n)
            for fname, cmd in floors.items():
                os.sync()
                t0 = time.perf_counter()
                sh(cmd, env=py_env, stdin=subprocess.DEVNULL)
                if rnd:
                    floor_t[fname].append(time.perf_counter() - t0)

        print(f"\nDockerfile: FROM bb|busybox; {'; '.join(STEPS)}  ({BIG_MIB} MiB random big.bin, "
              f"RUN with --network none everywhere)")
        print(f"{args.rounds} rounds interleaved (+1 warm-up), seconds (perf_counter; commands timed around "
              f"subprocess.run)\n")
        w = max(len(b.name) for b in builders)
        bk = {c: statistics.median(times[("buildkit", c)]) for c in CASES}
        print(f"{'builder':<{w}}  {'case':<24}  {'median':>7}  {'min-max':>13}  {'x BuildKit':>10}  "
              f"{'cached steps':>12}  {'anchor':>6}")
        for case, label in CASES.items():
            for b in builders:
                t = times[(b.key, case)]
                med = statistics.median(t)
                anchor = ANCHOR_S.get((b.key, case))
                print(f"{b.name:<{w}}  {label:<24}  {med:7.3f}  {min(t):6.3f}-{max(t):<6.3f}  "
                      f"{med / bk[case]:10.2f}  {'/'.join(map(str, sorted(hits[(b.key, case)]))):>12}  "
                      f"{f'{anchor:.3f}' if anchor else '':>6}")
            print()
        for fname, t in floor_t.items():
            print(f"{'floor of the CLI: ' + fname:<{w + 26}}  {statistics.median(t):7.3f}  "
                  f"{min(t):6.3f}-{max(t):<6.3f}")
        print()
        if args.samples:
            for (key, case), t in times.items():
                print(f"samples {key:<8} {case:<8} " + " ".join(f"{x * 1000:.1f}" for x in t))
            print()
        print("cached steps: the steps each builder reported as taken from its cache, per build "
              "(of RUN, COPY, ENV, COPY;\n  BuildKit lists no ENV step and ours reports ENV, a config-only "
              "step, as done, not cached)")
        print("anchor: RESULTS.md section 2, another run, without the src.txt step")
        for note in notes:
            print(f"note: {note}")

        print("\nAims")
        for b in builders[:2]:
            ok = all(statistics.median(times[(b.key, c)]) < bk[c] for c in CASES)
            parts = ", ".join(f"{c} {statistics.median(times[(b.key, c)]) * 1000:.0f} vs "
                              f"{bk[c] * 1000:.0f} ms" for c in CASES)
            print(f"  {b.name}: ahead of BuildKit in every case: {'MET' if ok else 'NOT MET'} ({parts})")
        cached_api = statistics.median(times[("api", "cached")]) * 1000
        print(f"  fully cached rebuild under {CACHED_AIM_MS} ms through the Python API: {cached_api:.1f} ms: "
              f"{'MET' if cached_api < CACHED_AIM_MS else 'NOT MET'}")

        if args.profile:
            print("\ncProfile: one in-process fully cached build (Python API)\n")
            print(profile_one(api, nocache=False, change=False, top=args.top))
            print("\ncProfile: one in-process build after src.txt changed (Python API)\n")
            print(profile_one(api, nocache=False, change=True, top=args.top))
    finally:
        if docker_before is not None:
            mine = docker_images() - docker_before  # our tags, the classic builder's intermediates, bb if imported
            if mine:
                subprocess.run([DOCKER20, "rmi", "-f", *mine], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subprocess.run([DOCKER20, "builder", "prune", "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if buildah_before is not None:
            mine = buildah_images() - buildah_before  # --layers intermediates, our tag, bb if committed here
            if mine:
                subprocess.run(["buildah", "rmi", "-f", *mine], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if dockerd is not None:
            stop_pid(dockerd)  # containerd is its child: dockerd stops it
        if root.exists():
            leftover = Client(root)
            if (root / "networks").is_dir():
                leftover.runtime.networks.remove_all()
            leftover.reap()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
