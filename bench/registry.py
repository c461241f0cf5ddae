#!/usr/bin/env python3
"""Push and pull of a ~200 MB image against a local docker-registry: ours vs skopeo (vs docker).

Run as root:  python3 bench/registry.py [--rounds 5] [--with-docker] [--profile]

The image is the anchors' (05-registry.sh, RESULTS.md section 3): busybox + 4 layers of 50 MiB
random data. One registry (/usr/bin/docker-registry, filesystem storage in the scratch dir,
127.0.0.1:<free port>) serves the whole run; it is stopped, its storage wiped and started again
(not timed) before every push to an empty registry. Every round runs every case once, in a fixed
order, so drift hits all alike; one warm-up round is not counted. os.sync() runs before each timed
operation. The timer is time.perf_counter, around the call for the Python API and around
subprocess.run (fork + exec + wait) for commands. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from pytest_pods.engine.image import archive  # noqa: E402
from pytest_pods.engine.registry import distribution as registry
from pytest_pods.engine.image.bootstrap import bootstrap_busybox, image_config  # noqa: E402
from pytest_pods.engine.image.layers import write_layer  # noqa: E402
from pytest_pods.engine.image.store import MEDIA_OCI_LAYER, Store  # noqa: E402
from start_latency import sh, start_dockerd, stop_pid, works  # noqa: E402  (our own dockerd set-up)

PODS = Path(sys.executable).parent / "pods"  # the console script itself, not the pyenv shim
REGISTRY_BIN = "/usr/bin/docker-registry"
LOCAL_TAG = "pods-bench/big:1"
LAYERS, LAYER_MIB = 4, 50
TLS = ["--src-tls-verify=false", "--dest-tls-verify=false"]
# RESULTS.md 3 (05-registry.sh, 10 rounds), median seconds; the anchor's layers were 50 MB, ours 50 MiB
ANCHOR_S = {"docker push (empty registry)": 3.940, "docker push (all blobs present)": 0.033,
            "docker pull (after rmi)": 1.701, "skopeo copy docker:// -> oci:": 0.617,
            "floor: cp -r of the registry's blobs": 0.071}
AIM = 0.5  # ours at most half of skopeo's time, for pull and for push


# -- the registry ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Registry:
    """docker-registry on 127.0.0.1:port; ``wipe()`` = stop it, delete its storage, start it again."""

    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.data = work / "registry-data"
        self.config = work / "registry.yml"
        self.log = work / "registry.log"
        self.config.write_text(
            "version: 0.1\n"
            "log:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.data}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
        )
        self.proc: subprocess.Popen | None = None

    @property
    def blobs(self) -> Path:
        return self.data / "docker/registry/v2/blobs"

    def start(self) -> None:
        self.data.mkdir(exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(self.config)], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit(f"docker-registry did not come up on {self.host}: see {self.log}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_pid(self.proc)
            self.proc = None

    def wipe(self) -> None:
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)
        self.start()


# -- the image ------------------------------------------------------------------------------------
def make_image(store: Store, work: Path) -> None:
    """busybox + 4 layers, each one file of 50 MiB from os.urandom, tagged LOCAL_TAG."""
    bb = bootstrap_busybox(store)
    layers, diff_ids = list(bb.layers), list(bb.diff_ids)
    for i in range(1, LAYERS + 1):
        d = work / f"layer{i}"
        d.mkdir()
        with open(d / f"layer{i}.bin", "wb") as f:
            for _ in range(LAYER_MIB):
                f.write(os.urandom(1 << 20))
        with store.blob_writer() as w:
            write_layer(d, w, source_date_epoch=0)  # type: ignore[arg-type]
        layers.append({"mediaType": MEDIA_OCI_LAYER, "digest": w.digest, "size": w.size})
        diff_ids.append(w.digest)  # uncompressed: the layer digest is its diff_id
        shutil.rmtree(d)
    cfg = image_config(diff_ids, config=bb.run_config,
                       history=[{"created_by": "pods bootstrap busybox"},
                                *({"created_by": f"bench layer {i}"} for i in range(1, LAYERS + 1))])
    store.create_image(cfg, layers, [LOCAL_TAG])


class NoUnpackStore(Store):
    """A store whose pull skips the unpack: ``ensure_snapshot`` does nothing (the bench's "without")."""

    def ensure_snapshot(self, diff_id: str, layer_digest: str) -> Path:
        return self.snapshot_path(diff_id)


# -- timing ---------------------------------------------------------------------------------------
def run_cmd(cmd: list[str], env: dict[str, str] | None = None) -> float:
    os.sync()
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.decode(errors='replace').strip()[-2000:]}")
    return dt


def run_api(fn: Callable[[], object]) -> float:
    os.sync()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


class Bench:
    def __init__(self, args, work: Path, reg: Registry, src: Store, oci: Path, docker_tar: Path | None) -> None:
        self.args, self.work, self.reg, self.src, self.oci, self.docker_tar = args, work, reg, src, oci, docker_tar
        self.ref = f"{reg.host}/bench/big:1"  # what ours pushes and every puller pulls
        self.py_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.py_env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")  # as an installed package has
        self.docker_names = [LOCAL_TAG, f"{reg.host}/bench/docker:1", self.ref]
        self.n = 0  # rounds run, for the rotation of the pull cases

    def forget_sources(self) -> None:
        """Our store's record of which repositories hold which blobs (for mounts): a cold push has none."""
        shutil.rmtree(self.src.root / "registry", ignore_errors=True)

    def rmi_docker(self) -> None:
        for name in self.docker_names:
            subprocess.run(["docker", "rmi", "-f", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def round(self) -> dict[str, float]:
        t: dict[str, float] = {}
        reg, w = self.reg, self.work
        # -- push (ours) --
        reg.wipe()
        self.forget_sources()
        t["pods API: push (empty registry)"] = run_api(lambda: registry.push(self.src, LOCAL_TAG, self.ref))
        t["pods API: push (all blobs present)"] = run_api(lambda: registry.push(self.src, LOCAL_TAG, self.ref))
        reg.wipe()
        self.forget_sources()
        t["pods CLI: push (empty registry)"] = run_cmd(
            [str(PODS), "--root", str(self.src.root), "push", "-q", LOCAL_TAG, self.ref], self.py_env)
        # -- pull (everyone pulls what ours pushed), and the floor. Their order rotates by one each
        # round: a pull written late in a round ran slower here (the disk's state after the writes
        # before it), so no case always goes first or last.
        def api_pull() -> float:
            st = Store(fresh(w / "pull-api"))
            return run_api(lambda: registry.pull(st, self.ref))

        def api_pull_nounpack() -> float:
            nst = NoUnpackStore(fresh(w / "pull-api-nounpack"))
            return run_api(lambda: registry.pull(nst, self.ref))

        def cli_pull() -> float:
            cli_root = fresh(w / "pull-cli")
            Store(cli_root)  # the store exists, empty (as for the API rows)
            return run_cmd([str(PODS), "--root", str(cli_root), "pull", "-q", self.ref], self.py_env)

        def skopeo_pull() -> float:
            return run_cmd(["skopeo", "copy", *TLS, f"docker://{self.ref}", f"oci:{fresh(w / 'skopeo-oci')}:big"])

        def docker_pull() -> float:
            self.rmi_docker()  # no image in docker shares these layers
            return run_cmd(["docker", "pull", "-q", self.ref])

        def floor() -> float:
            return run_cmd(["cp", "-r", str(reg.blobs), str(fresh(w / "cp-floor"))])

        pulls = [("pods API: pull (empty store, incl. unpack)", api_pull),
                 ("pods API: pull (empty store, no unpack)", api_pull_nounpack),
                 ("pods CLI: pull (empty store, incl. unpack)", cli_pull),
                 ("skopeo copy docker:// -> oci: (pull-like)", skopeo_pull),
                 *([("docker pull (after rmi)", docker_pull)] if self.args.with_docker else []),
                 ("floor: cp -r of the registry's blobs", floor)]
        k = self.n % len(pulls)
        self.n += 1
        for name, fn in pulls[k:] + pulls[:k]:
            t[name] = fn()
        # -- push (skopeo, docker) --
        reg.wipe()
        t["skopeo copy oci: -> docker:// (push-like)"] = run_cmd(
            ["skopeo", "copy", *TLS, f"oci:{self.oci}", f"docker://{reg.host}/bench/skopeo:1"])
        if self.args.with_docker:
            self.rmi_docker()
            sh(["docker", "load", "-q", "-i", str(self.docker_tar)], stdout=subprocess.DEVNULL)
            sh(["docker", "tag", LOCAL_TAG, f"{reg.host}/bench/docker:1"])
            reg.wipe()
            t["docker push (empty registry)"] = run_cmd(["docker", "push", "-q", f"{reg.host}/bench/docker:1"])
            t["docker push (all blobs present)"] = run_cmd(["docker", "push", "-q", f"{reg.host}/bench/docker:1"])
            self.rmi_docker()
        for p in ("pull-api", "pull-api-nounpack", "pull-cli", "skopeo-oci", "cp-floor"):
            shutil.rmtree(w / p, ignore_errors=True)
        return t


# -- profile --------------------------------------------------------------------------------------
@contextlib.contextmanager
def thread_profiles(out: list[cProfile.Profile]):
    """Profile pull's worker threads too: cProfile sees only the thread that enabled it."""
    orig = registry._Puller.blob
    lock = threading.Lock()

    def blob(self, desc, *, layer):
        if threading.current_thread() is threading.main_thread():
            return orig(self, desc, layer=layer)
        prof = cProfile.Profile()
        with lock:
            out.append(prof)
        prof.enable()
        try:
            return orig(self, desc, layer=layer)
        finally:
            prof.disable()

    registry._Puller.blob = blob
    try:
        yield
    finally:
        registry._Puller.blob = orig


def show_profile(title: str, profs: list[cProfile.Profile], wall: float, n: int = 22) -> None:
    s = io.StringIO()
    st = pstats.Stats(profs[0], stream=s)
    for p in profs[1:]:
        st.add(p)
    st.strip_dirs().sort_stats("tottime").print_stats(n)
    print(f"\n== cProfile: {title}: {wall:.3f} s wall under the profiler; {len(profs)} thread profile(s) merged, "
          f"top {n} by tottime ==")
    lines = s.getvalue().splitlines()
    start = next(i for i, ln in enumerate(lines) if "ncalls" in ln)
    print("\n".join(lines[start:start + n + 1]))


def profile(bench: Bench) -> None:
    import hashlib

    data = os.urandom(64 << 20)
    t0 = time.perf_counter()
    h = hashlib.sha256()
    for _ in range(4):
        h.update(data)
    sha = time.perf_counter() - t0
    print(f"\nfor scale: hashlib.sha256 of 256 MiB in memory took {sha:.3f} s ({256 / sha:.0f} MiB/s)")
    del data

    bench.reg.wipe()
    bench.forget_sources()
    prof = cProfile.Profile()
    os.sync()
    t0 = time.perf_counter()
    prof.runcall(registry.push, bench.src, LOCAL_TAG, bench.ref)
    show_profile("one push to an empty registry (API)", [prof], time.perf_counter() - t0)

    st = Store(fresh(bench.work / "pull-prof"))
    threads: list[cProfile.Profile] = []
    prof = cProfile.Profile()
    with thread_profiles(threads):
        os.sync()
        t0 = time.perf_counter()
        prof.runcall(registry.pull, st, bench.ref)
        wall = time.perf_counter() - t0
    show_profile("one pull into an empty store (API, incl. unpack): the main thread", [prof], wall)
    show_profile("the same pull: its 4 download threads together", threads, wall, n=14)
    shutil.rmtree(bench.work / "pull-prof", ignore_errors=True)


# -- main -----------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    ap.add_argument("--with-docker", action="store_true", help="also docker push/pull (starts dockerd if needed)")
    ap.add_argument("--profile", action="store_true", help="then cProfile one push and one pull of ours")
    ap.add_argument("--samples", action="store_true", help="print every timed sample")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    for tool in (REGISTRY_BIN, "skopeo", str(PODS)):
        if not shutil.which(tool):
            raise SystemExit(f"{tool}: not installed")

    work = Path(tempfile.mkdtemp(prefix="pods-registry-bench-", dir="/var/tmp"))
    reg = Registry(work)
    dockerd = None
    bench = None
    try:
        src = Store(work / "root")
        make_image(src, work)
        oci = work / "oci-layout"
        archive.save(src, [LOCAL_TAG], oci, format="oci-dir")
        docker_tar = None
        if args.with_docker:
            if not works(["docker", "info"]):
                dockerd = start_dockerd(work)
            docker_tar = work / "docker-archive.tar"
            archive.save(src, [LOCAL_TAG], docker_tar, format="docker-archive")
        img = src.get_image(LOCAL_TAG)
        total = sum(int(d["size"]) for d in img.layers) + int(img.manifest["config"]["size"])
        reg.start()
        bench = Bench(args, work, reg, src, oci, docker_tar)
        print(f"image {LOCAL_TAG}: busybox + {LAYERS} x {LAYER_MIB} MiB random, {len(img.layers)} layers "
              f"(uncompressed tar), {total / 1e6:.1f} MB of blobs; registry {REGISTRY_BIN} on {reg.host}; "
              f"scratch {work}")

        bench.round()  # warm-up, not counted
        times: dict[str, list[float]] = {}
        order = ["pods API: push (empty registry)", "pods API: push (all blobs present)", "pods CLI: push (empty registry)",
                 "pods API: pull (empty store, incl. unpack)", "pods API: pull (empty store, no unpack)",
                 "pods CLI: pull (empty store, incl. unpack)", "skopeo copy docker:// -> oci: (pull-like)",
                 "docker pull (after rmi)", "floor: cp -r of the registry's blobs",
                 "skopeo copy oci: -> docker:// (push-like)", "docker push (empty registry)",
                 "docker push (all blobs present)"]
        for _ in range(args.rounds):
            for name, dt in bench.round().items():
                times.setdefault(name, []).append(dt)

        times = {n: times[n] for n in order if n in times}
        med = {n: statistics.median(t) for n, t in times.items()}
        sk_pull, sk_push = med["skopeo copy docker:// -> oci: (pull-like)"], med["skopeo copy oci: -> docker:// (push-like)"]
        ratio_to = {n: (sk_push if "push" in n else sk_pull) for n in med}
        print(f"\nPush and pull of {total / 1e6:.0f} MB, {args.rounds} rounds interleaved (+1 warm-up; the pull rows' order "
              f"rotates each round), seconds (perf_counter; commands around subprocess.run; os.sync() before each)\n")
        w = max(len(n) for n in med)
        print(f"{'case':<{w}}  {'median':>7}  {'min-max':>13}  {'/skopeo':>7}  {'anchor':>6}")
        for n, t in times.items():
            anchor = f"{ANCHOR_S[n]:6.3f}" if n in ANCHOR_S else ""
            r = f"{med[n] / ratio_to[n]:7.2f}" if n.startswith(("pods", "docker")) else ""
            print(f"{n:<{w}}  {med[n]:7.3f}  {min(t):6.3f}-{max(t):<6.3f}  {r:>7}  {anchor:>6}")
            if args.samples:
                print("    " + " ".join(f"{x:.3f}" for x in t))
        print("/skopeo: pushes over skopeo's push (oci: -> docker://), pulls over skopeo's pull (docker:// -> oci:)")
        print("notes:")
        print("  - ours' pull includes the unpack: after the download it unpacks every layer into a snapshot "
              "(store.ensure_snapshot), as docker does before 'Pull complete'. The 'no unpack' row is the same "
              "pull into a store whose ensure_snapshot does nothing (download, verify, fsync, index only).")
        print("  - skopeo to oci: and the cp floor do not unpack; docker pull does (into overlay2).")
        print("  - every pull pulls what ours pushed (OCI manifest, uncompressed layers, no gunzip). "
              "Cold pushes: registry stopped, storage wiped, started again before each (not timed); "
              "ours also forgets its record of which repositories hold the blobs (no mount attempts).")
        if not args.with_docker:
            print("  - docker: not run (give --with-docker); anchor figures from RESULTS.md section 3 "
                  "(another run, docker's own gzipped image): "
                  + ", ".join(f"{k} {v:.3f} s" for k, v in ANCHOR_S.items() if k.startswith("docker")))
        else:
            print("  - docker push gzips each layer (random data: no gain); docker pull pulls our uncompressed image")

        api_push, api_pull = med["pods API: push (empty registry)"], med["pods API: pull (empty store, incl. unpack)"]
        nounpack = med["pods API: pull (empty store, no unpack)"]
        cli_push, cli_pull = med["pods CLI: push (empty registry)"], med["pods CLI: pull (empty store, incl. unpack)"]
        print(f"\nAim: pull and push each at most half of skopeo's time")
        for what, ours, sk in (("push, API", api_push, sk_push), ("push, CLI", cli_push, sk_push),
                               ("pull, API (incl. unpack)", api_pull, sk_pull),
                               ("pull, CLI (incl. unpack)", cli_pull, sk_pull),
                               ("pull, API without the unpack", nounpack, sk_pull)):
            print(f"  {what:<30} {ours:6.3f} s = {ours / sk:.2f}x skopeo ({sk:.3f} s): "
                  f"{'MET' if ours <= AIM * sk else 'NOT MET'}")
        if args.profile:
            profile(bench)
    finally:
        reg.stop()
        if bench is not None and args.with_docker and works(["docker", "info"]):
            bench.rmi_docker()
        if dockerd is not None:
            stop_pid(dockerd)  # containerd is its child: dockerd stops it
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
