#!/usr/bin/env python3
"""One compose stack (examples/compose: the notes API, its worker, Postgres on a named volume with
a health check, Redis) brought up to ready and torn down, three ways (issue 16):

- `fixture`: the plugin's compose() machinery in this process (pytest_pods.plugin.compose:
  parse, networks, volume, services in dependency order, ready on health checks or ports), then
  its teardown (containers, networks, named volume);
- `docker-compose -> pods daemon`: Debian's docker-compose 1.29 `up -d`, then polled (docker-py)
  until every container runs and each one with a health check reports `healthy`; `down -v`;
- `docker-compose -> dockerd` (with --dockerd, where dockerd is installed): the same against a
  dockerd of its own (bench/daemon.py's), loaded with `pods save` of the same images.

Run as root:  python3 bench/compose.py [--rounds 5] [--root R] [--dockerd]

The first round of each is a warm-up (it builds the app image on our root) and is not counted; the
rounds are interleaved so that drift hits all alike. "ready" differs in one way: the fixture asks a
health check at once, while an engine's own health check first runs one `interval` after the start
(the app's image says 5 s) and `healthy` is what docker-compose users wait for. Everything it
starts is removed at the end (the scratch dir, the daemons by PID, the root if it made one).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from daemon import BenchDockerd, PodsDaemon, stop_proc  # noqa: E402  (bench/daemon.py's daemons)

from pytest_pods import Client, ImageNotFoundError  # noqa: E402
from pytest_pods.compose_file import load  # noqa: E402
from pytest_pods.plugin.compose import ComposeStack  # noqa: E402
from pytest_pods.plugin.session import PodsSession  # noqa: E402

FILE = REPO / "examples" / "compose" / "docker-compose.yml"
RECIPES = REPO / "pytest_pods" / "plugin" / "recipes"
IMAGES = {"pytest-pods/postgres:15": RECIPES / "postgres", "pytest-pods/redis:7": RECIPES / "redis"}
APP_IMAGE = "examples/notes-compose:latest"


def compose_cmd(host: str, project: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_CONTEXT",)}
    env["DOCKER_HOST"] = host
    return subprocess.run(["docker-compose", "-p", project, "-f", str(FILE), *args], env=env, capture_output=True,
                          text=True, timeout=900)


def all_healthy(api: Any, project: str, expected: int) -> bool:
    cs = api.containers(all=True, filters={"label": f"com.docker.compose.project={project}"})
    if len(cs) < expected:
        return False
    for c in cs:
        state = api.inspect_container(c["Id"])["State"]
        if state["Status"] != "running":
            return False
        if "Health" in state and state["Health"]["Status"] != "healthy":
            return False
    return True


def through_compose(host: str, round_no: int) -> tuple[float, float]:
    import docker  # lazy: only for the docker-compose rows

    project = f"benchc{uuid.uuid4().hex[:6]}{round_no}"
    api = docker.APIClient(base_url=host, timeout=60)
    try:
        t0 = time.perf_counter()
        up = compose_cmd(host, project, "up", "-d")
        if up.returncode:
            raise SystemExit(f"docker-compose up against {host} failed:\n{up.stdout}{up.stderr}")
        deadline = time.monotonic() + 180
        while not all_healthy(api, project, 4):
            if time.monotonic() > deadline:
                raise SystemExit(f"{project} never became healthy on {host}")
            time.sleep(0.05)
        t_up = time.perf_counter() - t0
        t1 = time.perf_counter()
        down = compose_cmd(host, project, "down", "-v")
        if down.returncode:
            raise SystemExit(f"docker-compose down -v against {host} failed:\n{down.stdout}{down.stderr}")
        return t_up, time.perf_counter() - t1
    finally:
        api.close()


def through_fixture(s: PodsSession, round_no: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    spec = load(FILE)
    stack = ComposeStack(s, "bench", spec, f"benchf{uuid.uuid4().hex[:6]}{round_no}", image_prefix="benchnotes",
                         keep_volumes=False, timeout=180)
    try:
        stack.up()
    except BaseException:
        stack.down()
        raise
    t_up = time.perf_counter() - t0
    t1 = time.perf_counter()
    stack.down()
    return t_up, time.perf_counter() - t1


def row(name: str, ups: list[float], downs: list[float]) -> str:
    def cell(xs: list[float]) -> str:
        return f"{statistics.median(xs):7.2f} s ({min(xs):.2f}-{max(xs):.2f})" if xs else "        -"
    return f"| {name:<30} | {cell(ups):>24} | {cell(downs):>24} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--root", type=Path, help="an engine root with busybox and debian:bookworm (default: a new one)")
    ap.add_argument("--dockerd", action="store_true", help="also through docker-compose against a dockerd of its own")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (the bench starts daemons and a dockerd of its own)")
    if shutil.which("docker-compose") is None:
        raise SystemExit("docker-compose is not installed (apt-get install docker-compose)")
    work = Path(tempfile.mkdtemp(prefix="pods-compose-bench-", dir="/var/tmp"))
    root = args.root or work / "root"
    base_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PODS_ROOT")}
    client = Client(root)
    if args.root is None:
        tar = REPO / ".cache" / "base-images.tar"
        subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--root", str(root), "load", "-q", "-i", str(tar)],
                       check=True, env=base_env, cwd=REPO)
    for tag, recipe in IMAGES.items():
        try:
            client.images.get(tag)
        except ImageNotFoundError:
            print(f"building {tag} from {recipe.relative_to(REPO)}")
            client.images.build(recipe, tag=tag)
    s = PodsSession(root=str(root), timeout=180, keep_on_failure=False, reuse=False, required=False, registry=None,
                    run_id=None, worker="main", controller_pid=None)
    s.project = str(REPO)
    pods = PodsDaemon(root, work, base_env)
    dockerd = BenchDockerd(work / "dockerd") if args.dockerd else None
    results: dict[str, tuple[list[float], list[float]]] = {}
    try:
        cases: dict[str, Any] = {"fixture (in process)": lambda n: through_fixture(s, n)}
        through_fixture(s, 0)  # warm-up: builds the app image
        pods.start()
        cases["docker-compose -> pods daemon"] = lambda n: through_compose(pods.host, n)
        if dockerd is not None:
            dockerd.start()
            for tag in [*IMAGES, APP_IMAGE]:
                tar = work / "image.tar"
                subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--root", str(root), "save", tag, "-o",
                                str(tar)], check=True, env=base_env, cwd=REPO)
                subprocess.run(dockerd.docker("load", "-q", "-i", str(tar)), check=True, stdout=subprocess.DEVNULL)
                tar.unlink()
            cases["docker-compose -> dockerd"] = lambda n: through_compose(dockerd.host, n)
        for name, case in cases.items():
            if name != "fixture (in process)":
                case(0)  # warm-up
            results[name] = ([], [])
        for n in range(1, args.rounds + 1):
            for name, case in cases.items():
                up, down = case(n)
                results[name][0].append(up)
                results[name][1].append(down)
            print(f"round {n}: " + ", ".join(f"{k}: up {v[0][-1]:.2f} s, down {v[1][-1]:.2f} s"
                                            for k, v in results.items()), flush=True)
    finally:
        s.finish()
        stop_proc(pods.proc)
        if dockerd is not None:
            dockerd.stop()
        if args.root is None:
            client.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{FILE.relative_to(REPO)}: 4 services up to ready, then removed with their networks and "
          f"named volume; median (min-max) of {args.rounds} rounds")
    print(f"| {'':<30} | {'up to ready':>24} | {'down (-v)':>24} |")
    print(f"|{'-' * 32}|{'-' * 26}|{'-' * 26}|")
    for name, (ups, downs) in results.items():
        print(row(name, ups, downs))


if __name__ == "__main__":
    main()
