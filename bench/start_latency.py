#!/usr/bin/env python3
"""Start-to-exit latency of `true` in a busybox container: our engine vs bare runc (vs docker/podman).

Run as root:  python3 bench/start_latency.py [--rounds 20] [--memory] [--with-docker] [--root R]

Every round runs each case once, in the same order (A B C A B C ...), so drift hits all alike;
one warm-up round is not counted. Each case is timed with time.perf_counter around the call
(for commands: around subprocess.run, i.e. fork + exec + wait). See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pytest_pods import Client  # noqa: E402
from pytest_pods.engine.runtime import forkserver as _spawn  # noqa: E402  (to find a fork server, if any)

PODS = Path(sys.executable).parent / "pods"  # the console script itself, not the pyenv shim
PODMAN_ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]  # RESULTS.md, Failures 2
CLI_CASE = "pods CLI: pods run --rm --network none"  # the default: through the resident helper (issue 19)
ANCHOR_DOCKER_MS = 244  # RESULTS.md 1: docker run --rm --network none bb true (median)
ANCHOR_RUNC_MS = 17  # RESULTS.md 1: bare runc on the bundle, measured in the same pass
# RESULTS.md 6, 20 idle containers (--network none): dockerd RSS + containerd RSS + 20 shims' PSS, KiB
ANCHOR_MEM_KIB = {"dockerd (RSS)": 85_468, "containerd (RSS)": 43_580, "20 shims (PSS)": 59_738}


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


def works(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# -- set-up ---------------------------------------------------------------------------------------
def make_bundle(client: Client, bundle: Path) -> Path:
    """An OCI bundle for runc from the image's rootfs, as the anchors' 02-bb-image.sh does."""
    (lower,) = client.store.lower_dirs(client.images.get("busybox"))  # one layer
    bundle.mkdir()
    sh(["cp", "-a", str(lower), str(bundle / "rootfs")])
    sh(["runc", "spec"], cwd=bundle)
    cfg_path = bundle / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["process"]["args"] = ["true"]
    cfg["process"]["terminal"] = False
    cfg["root"]["readonly"] = True
    cfg_path.write_text(json.dumps(cfg, indent=1))
    return bundle


def rootfs_tar(bundle: Path, work: Path) -> Path:
    tar = work / "bb.tar"
    if not tar.exists():
        sh(["tar", "-C", str(bundle / "rootfs"), "-cf", str(tar), "."])
    return tar


def import_bb(tool: str, tar: Path) -> None:
    sh([tool, "import", "-c", 'CMD ["/bin/sh"]', "-c", "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin", str(tar), "bb:latest"],
       stdout=subprocess.DEVNULL)


def start_dockerd(work: Path) -> subprocess.Popen:
    """--with-docker: install docker.io if needed and start dockerd with a data root of its own."""
    if not shutil.which("dockerd"):
        sh(["apt-get", "update"], stdout=subprocess.DEVNULL)
        sh(["apt-get", "install", "-y", "docker.io"], stdout=subprocess.DEVNULL)
    Path("/var/lib/docker-anchor").mkdir(exist_ok=True)
    log = open(work / "dockerd.log", "wb")
    # no bridge and no iptables rules: the rows compare --network none, and nothing is left behind
    proc = subprocess.Popen(["dockerd", "--data-root", "/var/lib/docker-anchor", "--bridge=none",
                             "--iptables=false", "--ip-masq=false"], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, start_new_session=True)
    for _ in range(60):
        if works(["docker", "info"]):
            return proc
        time.sleep(0.5)
    raise SystemExit(f"dockerd did not come up: see {work / 'dockerd.log'}")


def stop_pid(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- timing ---------------------------------------------------------------------------------------
def timed_cmd(cmd: list[str], env: dict[str, str] | None = None):
    def run() -> float:
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.decode(errors='replace').strip()}")
        return dt
    return run


def timed_api(client: Client):
    def run() -> float:
        t0 = time.perf_counter()
        res = client.containers.run("busybox", ["true"], remove=True)
        dt = time.perf_counter() - t0
        if res.exit_code != 0:
            raise SystemExit(f"Python API run: exit {res.exit_code}: {res.stderr!r}")
        return dt
    return run


def timed_engine(client: Client, security_opt: tuple[str, ...] = ()):
    """The engine's own create + start + wait + remove with a ContainerSpec: the seccomp filter's
    cost is the difference between the default and ``seccomp=unconfined`` (issue 14)."""
    from pytest_pods.engine.runtime.spec import ContainerSpec

    image = client.store.get_image("busybox")
    spec = ContainerSpec(image="busybox", command=["true"], network="none", security_opt=security_opt)

    def run() -> float:
        t0 = time.perf_counter()
        cid = client.runtime.create(spec, image)
        client.runtime.start(cid).close()
        code = client.runtime.wait(cid)
        client.runtime.remove(cid, force=True)
        dt = time.perf_counter() - t0
        if code != 0:
            raise SystemExit(f"engine run {security_opt}: exit {code}")
        return dt
    return run


def runc_case(bundle: Path):
    n = [0]

    def run() -> float:
        n[0] += 1  # a fresh container id each time (`runc run` deletes it when it exits)
        return timed_cmd(["runc", "run", "--bundle", str(bundle), f"bench-{os.getpid()}-{n[0]}"])()
    return run


def user_install(work: Path) -> tuple[Path, Path]:
    """A fresh venv with a plain (non-editable) install of this tree: the `pods` a user gets.

    The development interpreter carries .pth files (the editable-install finder, this machine's
    sandbox hooks) that cost ~25 ms at every interpreter start and are no part of pytest-pods.
    """
    venv = work / "venv"
    sh([sys.executable, "-m", "venv", str(venv)])
    repo = Path(__file__).resolve().parent.parent
    sh([str(venv / "bin/pip"), "install", "-q", "--no-deps", str(repo)], stdout=subprocess.DEVNULL)
    return venv / "bin/python", venv / "bin/pods"


def latency(args, client: Client, root: Path, bundle: Path, work: Path, with_docker: bool) -> None:
    # Python subprocesses get a bytecode cache of their own (filled by the warm-up round), as an
    # installed package has: in a dev tree being edited with PYTHONDONTWRITEBYTECODE set (as here)
    # the .pyc go stale, and compiling the engine's modules costs ~14 ms on every run.
    py_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PODS_RESIDENT")}
    py_env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    # the resident helper (issue 19) of this run only: its socket in a runtime directory of the run's
    # own, started before the warm-up (as the first `pods` call would start it) and stopped at the end
    runtime = work / "run"
    runtime.mkdir(mode=0o700)
    py_env["XDG_RUNTIME_DIR"] = str(runtime)
    own_env = {**py_env, "PODS_RESIDENT": "0"}
    python, pods = (Path(sys.executable), PODS) if args.dev_install else user_install(work)
    run_rm = [str(pods), "--root", str(root), "run", "--rm", "--network", "none", "busybox", "true"]
    cases: dict[str, Callable[[], float]] = {
        "pods Python API: containers.run(remove=True)": timed_api(client),
        "engine: create+start+wait+rm (default seccomp)": timed_engine(client),
        "engine: create+start+wait+rm, seccomp=unconfined": timed_engine(client, ("seccomp=unconfined",)),
        CLI_CASE: timed_cmd(run_rm, py_env),
        CLI_CASE + ", PODS_RESIDENT=0": timed_cmd(run_rm, own_env),
        "bare runc run --bundle": runc_case(bundle),
        "floor: python3 -c pass": timed_cmd([str(python), "-c", "pass"], py_env),
        "floor: python3 -c 'import pytest_pods.cli'": timed_cmd([str(python), "-c", "import pytest_pods.cli"],
                                                                 py_env),
        "floor: python3 -c 'import pytest_pods.cli.main' (all the CLI)": timed_cmd(
            [str(python), "-c", "import pytest_pods.cli.main"], py_env),
    }
    print(f"CLI timed: {pods} ({'this interpreter' if args.dev_install else 'a fresh venv, plain pip install'})")
    sh([str(pods), "resident", "start"], env=py_env, stdout=subprocess.DEVNULL)
    notes = [f"Python subprocesses ran with PYTHONPYCACHEPREFIX={py_env['PYTHONPYCACHEPREFIX']} "
             "(a fresh bytecode cache, filled by the warm-up)"]
    if works(["docker", "info"]):
        if not works(["docker", "image", "inspect", "bb"]):
            import_bb("docker", rootfs_tar(bundle, work))
            notes.append("imported bb:latest into docker from the same busybox rootfs")
        cases["docker run --rm --network none bb true"] = timed_cmd(["docker", "run", "--rm", "--network", "none",
                                                                     "bb", "true"])
    elif with_docker:
        raise SystemExit("--with-docker: docker does not work")
    if shutil.which("podman"):
        if not works(["podman", "image", "exists", "bb"]):
            import_bb("podman", rootfs_tar(bundle, work))
        podman = ["podman", "run", "--rm", "--network", "none", *PODMAN_ULIMITS, "bb", "true"]
        if not works(podman):  # crun refuses this VM's hybrid cgroups (RESULTS.md, Failures 1)
            podman[1:1] = ["--runtime", "runc"]
        if works(podman):
            cases[" ".join(podman).replace(" ".join(PODMAN_ULIMITS), "$U")] = timed_cmd(podman)
        else:
            notes.append("podman is installed but does not run a container: left out")

    for run in cases.values():  # warm-up round, not counted
        run()
    times: dict[str, list[float]] = {name: [] for name in cases}
    # each round in its own shuffled order (seeded): a case must not always follow the same one, as
    # the engine's default-seccomp case followed the API's run on a bridge, whose network release
    # finishes in the background and was billed to it (~1 ms, read as the seccomp filter's cost)
    order = random.Random(14).sample
    for _ in range(args.rounds):
        for name in order(list(cases), len(cases)):
            times[name].append(cases[name]() * 1000)

    med = {name: statistics.median(t) for name, t in times.items()}
    runc = med["bare runc run --bundle"]
    print(f"\nStart-to-exit of `true` in busybox, {args.rounds} rounds interleaved (+1 warm-up), ms "
          f"(perf_counter; commands timed around subprocess.run)\n")
    w = max(len(n) for n in cases)
    print(f"{'case':<{w}}  {'median':>7}  {'min-max':>13}  {'x runc':>6}")
    for name, t in times.items():
        print(f"{name:<{w}}  {med[name]:7.1f}  {min(t):6.1f}-{max(t):<6.1f}  {med[name] / runc:6.2f}")
    for n in notes:
        print(f"note: {n}")
    status = subprocess.run([str(pods), "resident", "status"], env=py_env, capture_output=True, text=True).stdout
    rows = [line.split() for line in status.splitlines()[1:]]
    helpers = [r for r in rows if len(r) >= 6 and r[1] == "current"]
    if helpers:
        pid, _stamp, served, _up, pss, rss = helpers[0][:6]
        print(f"note: the resident helper (pid {pid}) served {served} requests; its memory now: PSS {pss}, RSS {rss}")
    else:
        print("note: no resident helper answered at the end: the default CLI row ran in its own process")
    subprocess.run([str(pods), "resident", "stop"], env=py_env, stdout=subprocess.DEVNULL)

    api = med["pods Python API: containers.run(remove=True)"]
    cli = med[CLI_CASE]
    docker_name = "docker run --rm --network none bb true"
    print("\nAims")
    print(f"  Python API within 1.5x of bare runc: {api:.1f} ms = {api / runc:.2f}x runc ({runc:.1f} ms): "
          f"{'MET' if api <= 1.5 * runc else 'NOT MET'}")
    if docker_name in med:
        docker, source = med[docker_name], "measured in this run"
    else:
        docker, source = ANCHOR_DOCKER_MS, "docker absent: the anchor figure from RESULTS.md, another run"
    print(f"  pods run --rm --network none at most a quarter of docker's: {cli:.1f} ms = {cli / docker:.2f}x docker "
          f"({docker:.0f} ms, {source}): {'MET' if cli <= docker / 4 else 'NOT MET'}")
    own = med[CLI_CASE + ", PODS_RESIDENT=0"]
    print(f"    (the default path: through the resident helper; in its own process, PODS_RESIDENT=0, and so the "
          f"first call before a helper runs: {own:.1f} ms = {own / docker:.2f}x docker)")
    if docker_name not in med:
        print(f"    (for scale: bare runc took {runc:.1f} ms in this run, {ANCHOR_RUNC_MS} ms in the anchor's pass)")


# -- memory ---------------------------------------------------------------------------------------
def smaps_kib(pid: int) -> dict[str, int]:
    """PSS, RSS and USS (private pages) of one process in KiB, from /proc/PID/smaps_rollup."""
    vals = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                vals[parts[0].rstrip(":")] = int(parts[1])
    return {"PSS": vals["Pss"], "RSS": vals["Rss"], "USS": vals["Private_Clean"] + vals["Private_Dirty"]}


def mib(kib: int) -> float:
    return kib / 1024


def memory(client: Client, root: Path, n: int = 20) -> None:
    containers = [client.containers.run("busybox", ["sleep", "3600"], detach=True) for _ in range(n)]
    try:
        time.sleep(2)
        pids = [json.loads((root / "containers" / c.id / "state.json").read_text())["monitor_pid"]
                for c in containers]
        fork_server = _spawn._server._proc if _spawn._server is not None else None
        if fork_server is not None and fork_server.poll() is None:
            pids.append(fork_server.pid)
        total = {"PSS": 0, "RSS": 0, "USS": 0}
        for pid in pids:
            for k, v in smaps_kib(pid).items():
                total[k] += v
        me = smaps_kib(os.getpid())
        anchor = sum(ANCHOR_MEM_KIB.values())
        print(f"\nMemory with {n} idle containers (busybox sleep 3600, detached, via the Python API), MiB\n")
        print(f"  ours: {len(pids)} processes ({n} monitors"
              f"{' + fork server' if len(pids) > n else ', no fork server'}); no daemon")
        for k, why in (("PSS", ""), ("USS", "  (private pages only)"), ("RSS", "  (shared pages counted in each)")):
            print(f"    {k} total {mib(total[k]):6.1f}   per container {mib(total[k]) / n:5.2f}{why}")
        print(f"    not counted: this benchmark process (the monitors' parent, whose pages they share): "
              f"PSS {mib(me['PSS']):.1f}, RSS {mib(me['RSS']):.1f}")
        print(f"  anchor (RESULTS.md 6: docker, {n} idle containers, --network none):")
        print("    " + " + ".join(f"{k} {mib(v):.1f}" for k, v in ANCHOR_MEM_KIB.items())
              + f" = {mib(anchor):.1f}   per container {mib(anchor) / n:.2f}")
        print(f"    (one shim alone: {mib(ANCHOR_MEM_KIB['20 shims (PSS)']) / n:.2f} PSS, 13.0 RSS)")
        print(f"  ours / anchor (PSS): {total['PSS'] / anchor:.2f}")
    finally:
        for c in containers:
            c.remove(force=True)


# -- main -----------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20, help="timed rounds per case (default 20)")
    ap.add_argument("--memory", action="store_true", help="measure memory with 20 idle containers instead")
    ap.add_argument("--root", help="engine root to use (default: a fresh one under /var/tmp, removed at the end)")
    ap.add_argument("--dev-install", action="store_true",
                    help="time this interpreter's pods script instead of a fresh venv's plain install")
    ap.add_argument("--with-docker", action="store_true",
                    help="apt-get install docker.io podman if missing and start dockerd for this run")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    if not PODS.exists():
        raise SystemExit(f"{PODS}: the pods console script is not installed for {sys.executable}")

    work = Path(tempfile.mkdtemp(prefix="pods-bench-", dir="/var/tmp"))
    root = Path(args.root) if args.root else work / "root"
    dockerd = None
    try:
        sh([str(PODS), "--root", str(root), "bootstrap", "busybox"], stdout=subprocess.DEVNULL)
        client = Client(root)
        print(f"root {root}; python {sys.executable} {sys.version.split()[0]}; pods {PODS}")
        if args.memory:
            memory(client, root)
        else:
            if args.with_docker and not works(["docker", "info"]):
                dockerd = start_dockerd(work)
            latency(args, client, root, make_bundle(client, work / "bundle"), work, args.with_docker)
    finally:
        if dockerd is not None:
            stop_pid(dockerd)  # containerd is its child: dockerd stops it
        if not args.root:  # a --root given is the caller's: left as it is (our containers are gone)
            subprocess.run([str(PODS), "--root", str(root), "system", "prune", "-f"], stdout=subprocess.DEVNULL)
            leftover = Client(root)
            if (root / "networks").is_dir():
                leftover.runtime.networks.remove_all()  # bridges and rules
            leftover.reap()  # and the root's cgroup parents
        shutil.rmtree(work, ignore_errors=True)  # bundle, tar, bytecode cache and the default root


if __name__ == "__main__":
    main()
