#!/usr/bin/env python3
"""`pods daemon` next to Debian's dockerd, through the tools people have: the docker CLI,
testcontainers-python, and the daemons' memory.

Run as root:  python3 bench/daemon.py [--rounds 20] [--tc-rounds 20] [--ryuk-rounds 5] [--docker-cli PATH]

In one run, with a scratch dir /var/tmp/pods-daemon-bench-XXXX/ that holds everything:
- an engine root of its own (`pods bootstrap busybox`), served by `python3 -m pytest_pods.cli
  --root R daemon --socket S --log-file F`, and a dockerd of its own (data root, exec root, socket,
  pidfile and bridge in the scratch dir, as bench/plugin.py does), loaded with `pods save busybox`;
- memory of both right after their start (after one GET /_ping);
- loop 1: `docker run --rm [--network none] busybox true` with the docker CLI against each daemon,
  interleaved, whole-process wall time;
- loop 2: testcontainers-python's DockerContainer("busybox") start / wait_for_logs / stop, in one
  worker subprocess per daemon, driven step by step so that the two alternate; then one run against
  ours with Ryuk enabled;
- memory with 20 idle `docker run -d --network none busybox sleep 3600` containers on each, and
  idle again after removing them.
At the end: the 20 containers are removed, dockerd and our daemon stopped by PID, our root released
(`Client(root).cleanup()`) and the scratch dir deleted. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from plugin import Dockerd, unmount_under  # noqa: E402  (the bench dockerd's approach)

AIM_RATIO = 1 / 3
AIM_IDLE_BYTES = 40_000_000  # "under 40 MB idle": MB = 10^6 bytes (38.1 MiB), the stricter reading
IMAGE = "busybox"
TC_CMD = "sh -c 'echo ready; sleep 60'"
# RESULTS.md, for scale only (another run, the anchors' `bb` image, docker's default dockerd)
ANCHOR = {
    "loop1 bridge": 0.315, "loop1 none": 0.244,  # section 1, whole-process
    "tc start": 0.202, "tc stop": 0.083,  # section 5, perf_counter
    "dockerd fresh RSS KiB": 77_772, "containerd fresh RSS KiB": 39_264,  # section 6
    "dockerd 20 RSS KiB": 85_468, "containerd 20 RSS KiB": 43_580, "shims 20 PSS KiB": 59_738,
}

# One iteration per "run" line on stdin, one JSON line on stdout per iteration. A subprocess per
# daemon: testcontainers caches its docker client (and Ryuk) per process.
TC_WORKER = r'''
import json, sys, time, traceback, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # wait_for_logs with a string predicate
from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import wait_for_logs

print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    if line.strip() != "run":
        break
    c = None
    try:
        t0 = time.perf_counter()
        c = DockerContainer("%(image)s").with_command(%(cmd)r)
        c.start()
        t1 = time.perf_counter()
        waited = wait_for_logs(c, "ready")
        t2 = time.perf_counter()
        c.stop()
        t3 = time.perf_counter()
        res = {"start": t1 - t0, "wait": t2 - t1, "waited": waited, "stop": t3 - t2, "total": t3 - t0}
    except Exception as exc:
        frames = [f"{f.filename.split('site-packages/')[-1]}:{f.lineno} {f.name}: {f.line}"
                  for f in traceback.extract_tb(exc.__traceback__) if "testcontainers" in f.filename]
        res = {"error": f"{type(exc).__name__}: {exc}", "where": "\n".join(frames)}
        if c is not None and c._container is not None:
            try:
                c.stop()
            except Exception:
                pass
    print(json.dumps(res), flush=True)
''' % {"image": IMAGE, "cmd": TC_CMD}


# -- helpers ----------------------------------------------------------------------------------
def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


def out(cmd: list[str], **kw) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout.strip()


def ping(sock: Path, timeout: float = 2.0) -> bool:
    """One GET /_ping on the unix socket; True on a 200 with body OK."""
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return data.startswith(b"HTTP/1.1 200") and data.rstrip().endswith(b"OK")
    except OSError:
        return False


def wait_ping(sock: Path, proc: subprocess.Popen, what: str, log: Path, limit: float = 60) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited ({proc.returncode}): see {log}\n" +
                             (log.read_text()[-2000:] if log.exists() else ""))
        if sock.exists() and ping(sock):
            return time.perf_counter() - t0
        time.sleep(0.02)
    raise SystemExit(f"{what} did not answer /_ping within {limit:.0f} s: see {log}")


def stop_proc(proc: subprocess.Popen | None, timeout: float = 30) -> str:
    if proc is None or proc.poll() is not None:
        return "not running"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
        return f"stopped (SIGTERM, exit {proc.returncode})"
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return f"did NOT stop on SIGTERM within {timeout:.0f} s: SIGKILLed"


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


# -- processes and memory -----------------------------------------------------------------------
def proc_stat(pid: int) -> tuple[str, int]:
    """(comm, ppid) from /proc/PID/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    comm = text[text.index("(") + 1:text.rindex(")")]
    return comm, int(text[text.rindex(")") + 2:].split()[1])


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for p in all_pids():
        try:
            parents.setdefault(proc_stat(p)[1], []).append(p)
        except (OSError, ValueError):
            continue
    found, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def mem_kib(pid: int) -> dict[str, int]:
    """RSS, PSS, USS (private pages) from /proc/PID/smaps_rollup and peak RSS (VmHWM), KiB."""
    vals: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                vals[parts[0].rstrip(":")] = int(parts[1])
    hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return {"RSS": vals["Rss"], "PSS": vals["Pss"], "USS": vals["Private_Clean"] + vals["Private_Dirty"], "HWM": hwm}


def group_mem(pids: list[int]) -> dict[str, int]:
    total = {"n": 0, "RSS": 0, "PSS": 0, "USS": 0, "HWM": 0}
    for pid in pids:
        try:
            m = mem_kib(pid)
        except (OSError, KeyError):
            continue  # gone meanwhile
        total["n"] += 1
        for k, v in m.items():
            total[k] += v
    return total


def ours_groups(daemon_pid: int, root: Path) -> dict[str, list[int]]:
    """Our daemon; what it forked (the fork server: monitors are detached, reparented to init);
    and one monitor per running container, from <root>/containers/<id>/state.json, checked by its
    container process's parent."""
    monitors, bad = [], []
    cdir = root / "containers"
    for d in sorted(cdir.iterdir()) if cdir.is_dir() else []:
        try:
            st = json.loads((d / "state.json").read_text())
        except (OSError, ValueError):
            continue
        if st.get("status") != "running" or not st.get("monitor_pid"):
            continue
        mpid = int(st["monitor_pid"])
        try:
            ok = proc_stat(int(st["pid"]))[1] == mpid
        except (OSError, ValueError, KeyError, TypeError):
            ok = False
        (monitors if ok else bad).append(mpid)
    if bad:
        print(f"note: {len(bad)} monitor pid(s) in state.json are not their container process's parent: "
              f"{bad}; counted anyway")
    return {"pods daemon": [daemon_pid], "fork server (daemon's children)": descendants(daemon_pid),
            "monitors (1 per container)": monitors + bad}


def docker_groups(dockerd_pid: int, exec_root: Path) -> dict[str, list[int]]:
    """dockerd; its children (containerd); the shims of *this* dockerd's containerd (their
    -address is under our exec root; they are reparented away from containerd)."""
    kids = descendants(dockerd_pid)
    containerd = [p for p in kids if proc_stat(p)[0] == "containerd"]
    other = [p for p in kids if p not in containerd]
    shims = []
    for p in all_pids():
        try:
            if proc_stat(p)[0].startswith("containerd-shim") and str(exec_root) in cmdline(p):
                shims.append(p)
        except (OSError, ValueError):
            continue
    groups = {"dockerd": [dockerd_pid], "containerd": containerd, "containerd-shim-runc-v2": shims}
    if other:
        groups["other children of dockerd"] = other
    return groups


# -- the two daemons --------------------------------------------------------------------------
class PodsDaemon:
    def __init__(self, root: Path, work: Path, env: dict[str, str]) -> None:
        self.root, self.sock, self.log = root, work / "pods.sock", work / "pods-daemon.log"
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.host = f"unix://{self.sock}"

    def start(self) -> float:
        out_f = open(self.log.with_suffix(".out"), "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_pods.cli", "--root", str(self.root), "daemon", "--socket", str(self.sock),
             "--log-file", str(self.log)], stdin=subprocess.DEVNULL, stdout=out_f, stderr=out_f, env=self.env,
            cwd=REPO, start_new_session=True)
        return wait_ping(self.sock, self.proc, "pods daemon", self.log.with_suffix(".out"))


class BenchDockerd(Dockerd):
    """bench/plugin.py's dockerd (everything in the scratch dir, a bridge of its own, no iptables),
    waited for with one GET /_ping instead of `docker info`, so that its first memory figure is
    taken in the same state as ours."""

    def __init__(self, work: Path) -> None:
        work.mkdir()
        super().__init__(work)
        self.host = f"unix://{self.sock}"
        self.exec_root = work / "exec"  # the base class's, named for the shim scan

    def start(self) -> float:
        self.gw = self.spawn()
        assert self.proc is not None
        return wait_ping(self.sock, self.proc, "dockerd", self.log)


# -- loop 1: the docker CLI -------------------------------------------------------------------
def cli_case(docker: str, host: str, args: list[str]):
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
    env["DOCKER_HOST"] = host
    cmd = [docker, *args]

    def run() -> tuple[float, str | None]:
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        dt = time.perf_counter() - t0
        err = None if p.returncode == 0 else f"exit {p.returncode}: {p.stderr.decode(errors='replace').strip()}"
        return dt, err
    return run


def loop1(docker: str, ours: str, theirs: str, rounds: int) -> dict:
    cases = {}
    for label, args in (("docker run --rm busybox true", ["run", "--rm", IMAGE, "true"]),
                        ("docker run --rm --network none busybox true",
                         ["run", "--rm", "--network", "none", IMAGE, "true"]),
                        ("floor: docker version", ["version"])):
        cases[label, "ours"] = cli_case(docker, ours, args)
        cases[label, "dockerd"] = cli_case(docker, theirs, args)
    times: dict = {k: [] for k in cases}
    errors: dict = {k: [] for k in cases}
    for key, run in cases.items():  # warm-up (the first bridged run also makes our default network)
        _, err = run()
        if err:
            errors[key].append(f"warm-up: {err}")
    for _ in range(rounds):
        for key, run in cases.items():
            dt, err = run()
            (errors[key].append(err) if err else times[key].append(dt))
    return {"times": times, "errors": errors}


# -- loop 2: testcontainers -------------------------------------------------------------------
class Worker:
    def __init__(self, script: Path, env: dict[str, str], name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, text=True, bufsize=1)
        first = self._read(120)
        if not first.get("ready"):
            raise SystemExit(f"testcontainers worker ({name}) did not start: {first}")

    def _read(self, timeout: float) -> dict:
        assert self.proc.stdout is not None
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if r else ""
        if not line:
            self.close()
            err = self.proc.stderr.read()[-3000:] if self.proc.stderr else ""
            return {"error": f"worker {self.name}: no answer within {timeout:.0f} s (exit {self.proc.returncode})",
                    "where": err}
        return json.loads(line)

    def run(self, timeout: float = 180) -> dict:
        if self.proc.poll() is not None:
            return {"error": f"worker {self.name} has exited ({self.proc.returncode})"}
        assert self.proc.stdin is not None
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return self._read(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # our own child, by its PID
                self.proc.wait()


def tc_env(base: dict[str, str], host: str, ryuk: bool) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith(("TESTCONTAINERS_", "TC_", "DOCKER_"))}
    env["DOCKER_HOST"] = host
    env["TESTCONTAINERS_RYUK_DISABLED"] = "false" if ryuk else "true"
    return env


def loop2(script: Path, base: dict[str, str], ours: str, theirs: str, rounds: int) -> dict:
    workers = {"ours": Worker(script, tc_env(base, ours, False), "ours"),
               "dockerd": Worker(script, tc_env(base, theirs, False), "dockerd")}
    res: dict = {k: [] for k in workers}
    errors: dict = {k: [] for k in workers}
    try:
        for k, w in workers.items():  # warm-up: one iteration each, not counted
            r = w.run()
            if "error" in r:
                errors[k].append(f"warm-up: {r['error']}")
        for _ in range(rounds):
            for k, w in workers.items():
                r = w.run()
                (errors[k].append(r["error"]) if "error" in r else res[k].append(r))
    finally:
        for w in workers.values():
            w.close()
    return {"res": res, "errors": errors}


def ryuk_run(script: Path, base: dict[str, str], ours: str, rounds: int) -> dict:
    w = Worker(script, tc_env(base, ours, True), "ours, Ryuk enabled")
    res, errors = [], []
    try:
        for _ in range(rounds):
            r = w.run()
            if "error" in r:
                errors.append(r)
                break  # the Reaper is made at the first start: a failure repeats identically
            res.append(r)
    finally:
        w.close()
    return {"res": res, "errors": errors}


# -- report -----------------------------------------------------------------------------------
def fmt_ms(xs: list[float]) -> str:
    return f"{med(xs) * 1000:7.1f} ({min(xs) * 1000:5.1f}-{max(xs) * 1000:<6.1f})" if xs else f"{'-':>7}{'':16}"


def print_loop1(l1: dict, rounds: int) -> dict[str, float]:
    times, errors = l1["times"], l1["errors"]
    labels = list(dict.fromkeys(k[0] for k in times))
    print(f"\nLoop 1: the docker CLI, {rounds} rounds interleaved (+1 warm-up), whole-process wall time "
          f"(perf_counter around subprocess.run), ms: median (min-max)\n")
    w = 46
    print(f"{'command':<{w}} {'ours':>24} {'dockerd':>24} {'ours/dockerd':>13} {'failed (ours, dockerd)':>24}")
    ratios = {}
    for label in labels:
        a, b = times[label, "ours"], times[label, "dockerd"]
        ratio = med(a) / med(b) if a and b else float("nan")
        ratios[label] = ratio
        nfail = f"{len(errors[label, 'ours'])}, {len(errors[label, 'dockerd'])}"
        print(f"{label:<{w}} {fmt_ms(a):>24} {fmt_ms(b):>24} {ratio:>12.2f}x {nfail:>24}")
    for key, errs in errors.items():
        if errs:
            distinct: dict[str, int] = {}
            for e in errs:
                e = re.sub(r"\b[0-9a-f]{64}\b", "<id>", e.replace("\n", " "))
                distinct[e] = distinct.get(e, 0) + 1
            for e, n in distinct.items():
                print(f"  FAILED {n}x, {key[1]}, {key[0]}: {e[:400]}")
    print(f"  (failed runs are left out of the medians; anchor, RESULTS.md 1, another run: docker run --rm bb true "
          f"{ANCHOR['loop1 bridge'] * 1000:.0f} ms, --network none {ANCHOR['loop1 none'] * 1000:.0f} ms)")
    return ratios


def print_loop2(l2: dict, ry: dict, rounds: int) -> float:
    res, errors = l2["res"], l2["errors"]
    print(f"\nLoop 2: testcontainers-python, DockerContainer({IMAGE!r}).with_command({TC_CMD!r}); start(); "
          f"wait_for_logs(c, 'ready'); stop().\n{rounds} rounds interleaved (+1 warm-up each), one worker "
          "process per daemon, TESTCONTAINERS_RYUK_DISABLED=true, perf_counter, ms: median (min-max)\n")
    w = 36
    print(f"{'phase':<{w}} {'ours':>24} {'dockerd':>24} {'ours/dockerd':>13}")
    ratio = float("nan")
    for phase, label in (("start", "start() (create + start)"), ("wait", "wait_for_logs(c, 'ready')"),
                         ("stop", "stop() (remove, force)"), ("total", "start + wait + stop")):
        a = [r[phase] for r in res["ours"]]
        b = [r[phase] for r in res["dockerd"]]
        r = med(a) / med(b) if a and b else float("nan")
        if phase == "total":
            ratio = r
        print(f"{label:<{w}} {fmt_ms(a):>24} {fmt_ms(b):>24} {r:>12.2f}x")
    for k in res:
        slept = sum(1 for r in res[k] if r["waited"] > 0.5)
        print(f"  {k}: {len(res[k])} ok, {len(errors[k])} failed; wait_for_logs found the line at its first look in "
              f"{len(res[k]) - slept} of {len(res[k])} (else it sleeps its 1 s interval)")
        for e in errors[k][:3]:
            print(f"    FAILED: {e[:600]}")
    print(f"  (anchor, RESULTS.md 5, another run and image: start + log wait {ANCHOR['tc start'] * 1000:.0f} ms, "
          f"stop {ANCHOR['tc stop'] * 1000:.0f} ms)")

    print("\nLoop 2 with Ryuk enabled, against ours only (TESTCONTAINERS_RYUK_DISABLED=false; our daemon answers the "
          "testcontainers/ryuk image with a built-in stand-in; dockerd cannot pull it here)")
    if ry["res"]:
        first, rest = ry["res"][0], ry["res"][1:]
        print(f"  first iteration (makes the Reaper): start {first['start'] * 1000:.1f} ms, total "
              f"{first['total'] * 1000:.1f} ms")
        if rest:
            print(f"  the other {len(rest)}: total {fmt_ms([r['total'] for r in rest]).strip()} ms, "
                  f"start {fmt_ms([r['start'] for r in rest]).strip()} ms")
    for e in ry["errors"]:
        print(f"  FAILED at iteration {len(ry['res']) + 1}: {e['error'][:700]}")
        where = [ln for ln in e.get("where", "").splitlines() if ln.strip()]
        if where:
            print("    testcontainers frames:\n      " + "\n      ".join(where[-8:]))
    return ratio


def print_memory(mem: dict) -> None:
    states = list(mem)
    print("\nMemory, MiB, from /proc/PID/smaps_rollup: RSS / PSS (n processes)")
    print("  PSS splits shared pages among the processes sharing them; RSS counts them in each.\n")
    w, col = 38, 26
    print(f"{'':<{w}}" + "".join(f"{s:>{col}}" for s in states))
    names = list(dict.fromkeys(g for s in states for side in ("ours", "dockerd") for g in mem[s][side]))
    for side in ("ours", "dockerd"):
        gnames = [g for g in names if any(g in mem[s][side] for s in states)]
        for g in gnames + ["total"]:
            cells = []
            for s in states:
                groups = mem[s][side]
                m = groups.get(g) if g != "total" else {k: sum(x[k] for x in groups.values())
                                                         for k in ("n", "RSS", "PSS")}
                cells.append(f"{m['RSS'] / 1024:6.1f} / {m['PSS'] / 1024:5.1f} ({m['n']:>2})" if m and m["n"] else
                             f"{'-':>{col - 2}}")
            label = f"{'ours' if side == 'ours' else 'docker'}: {g}"
            print(f"{label:<{w}}" + "".join(f"{c:>{col}}" for c in cells))
        print()
    base = states[1] if len(states) > 3 else states[0]  # without containers, just before they start
    for side, label in (("ours", "ours"), ("dockerd", "docker")):
        f = sum(x["PSS"] for x in mem[base][side].values())
        print(f"{label + ': PSS added per container':<{w}}" + "".join(
            f"{(sum(x['PSS'] for x in mem[s][side].values()) - f) / 1024 / n_ctr:>{col}.2f}" if n_ctr else f"{'-':>{col}}"
            for s in states for n_ctr in [sum(x["n"] for g, x in mem[s][side].items()
                                              if g.startswith(("monitors", "containerd-shim")))]))
    print(f"  ('PSS added per container': total PSS minus the total of '{base}', divided by the containers)")
    print(f"{'ours / docker (total PSS)':<{w}}" + "".join(
        f"{sum(x['PSS'] for x in mem[s]['ours'].values()) / sum(x['PSS'] for x in mem[s]['dockerd'].values()):>{col}.2f}"
        for s in states))
    d = mem[states[-1]]
    print(f"\n  peak RSS (VmHWM) over the run: pods daemon {d['ours']['pods daemon']['HWM'] / 1024:.1f} MiB, "
          f"dockerd {d['dockerd']['dockerd']['HWM'] / 1024:.1f} MiB, containerd "
          f"{d['dockerd']['containerd']['HWM'] / 1024:.1f} MiB")
    a = ANCHOR
    print(f"  anchor (RESULTS.md 6, another run, default dockerd): fresh dockerd {a['dockerd fresh RSS KiB'] / 1024:.1f} + "
          f"containerd {a['containerd fresh RSS KiB'] / 1024:.1f} MiB RSS; with 20: dockerd "
          f"{a['dockerd 20 RSS KiB'] / 1024:.1f} + containerd {a['containerd 20 RSS KiB'] / 1024:.1f} MiB RSS + "
          f"20 shims {a['shims 20 PSS KiB'] / 1024:.1f} MiB PSS")


# -- main -------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20, help="loop 1 rounds (default 20)")
    ap.add_argument("--tc-rounds", type=int, default=20, help="loop 2 rounds (default 20)")
    ap.add_argument("--ryuk-rounds", type=int, default=5, help="iterations of the Ryuk-enabled run (default 5)")
    ap.add_argument("--containers", type=int, default=20, help="idle containers for the memory figure (default 20)")
    ap.add_argument("--docker-cli", default=shutil.which("docker") or "docker",
                    help="the docker CLI for both daemons (default: the first on PATH)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    for tool in ("dockerd", args.docker_cli):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found (apt-get install docker.io)")
    from importlib.metadata import version

    try:
        tc_version = version("testcontainers")
    except Exception:
        raise SystemExit("testcontainers is not installed for this interpreter (pip install testcontainers)")

    print(f"load before: {out(['uptime']).strip()}")
    work = Path(tempfile.mkdtemp(prefix="pods-daemon-bench-", dir="/var/tmp"))
    root = work / "root"
    # Python processes (our daemon, its fork server and monitors, the testcontainers workers): a
    # bytecode cache of their own, filled before the daemon starts, as an installed package has
    # (this VM sets PYTHONDONTWRITEBYTECODE=1, and the dev tree's .pyc may be stale)
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PODS_ROOT")}
    base["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    pods = PodsDaemon(root, work, base)
    dockerd = BenchDockerd(work / "dockerd")
    notes: list[str] = []
    mem: dict = {}
    n = args.containers
    started: dict[str, list[str]] = {"ours": [], "dockerd": []}
    try:
        print(f"work {work}; python {sys.version.split()[0]}; testcontainers {tc_version}, docker-py "
              f"{version('docker')}; CLI {args.docker_cli}: "
              f"{out([args.docker_cli, '--version'])}; {out(['dockerd', '--version'])}; kernel {platform.release()}, "
              f"{os.cpu_count()} CPUs")
        git = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--short", "pytest_pods"], capture_output=True,
                               text=True)
        print(f"engine: {REPO} at {git.stdout.strip()[:80] or '?'}; uncommitted in pytest_pods/: "
              f"{' '.join(dirty.stdout.split()) or 'none'}")
        sh([sys.executable, "-m", "pytest_pods.cli", "--root", str(root), "bootstrap", IMAGE],
           stdout=subprocess.DEVNULL, env=base, cwd=REPO)
        sh([sys.executable, "-m", "compileall", "-q", str(REPO / "pytest_pods")], env=base, stdout=subprocess.DEVNULL)
        script = work / "tc_worker.py"
        script.write_text(TC_WORKER.lstrip())

        t_ours = pods.start()
        mem_ours_fresh = {g: group_mem(p) for g, p in ours_groups(pods.proc.pid, root).items()}
        t_docker = dockerd.start()
        mem_docker_fresh = {g: group_mem(p) for g, p in docker_groups(dockerd.proc.pid, dockerd.exec_root).items()}
        mem["fresh (1 /_ping)"] = {"ours": mem_ours_fresh, "dockerd": mem_docker_fresh}
        print(f"pods daemon pid {pods.proc.pid}, {pods.sock}: first /_ping answered {t_ours:.2f} s after the spawn")
        print(f"dockerd pid {dockerd.proc.pid}, {dockerd.sock}, bridge {dockerd.bridge} {dockerd.gw}, iptables off: "
              f"first /_ping answered {t_docker:.2f} s after the spawn")

        docker = args.docker_cli
        tar = work / "busybox.tar"
        sh([sys.executable, "-m", "pytest_pods.cli", "--root", str(root), "save", IMAGE, "-o", str(tar)],
           env=base, cwd=REPO)
        sh([docker, "-H", dockerd.host, "load", "-q", "-i", str(tar)], stdout=subprocess.DEVNULL)
        tar.unlink()
        ids = {side: out([docker, "-H", host, "image", "inspect", "-f", "{{.Id}}", IMAGE])
               for side, host in (("ours", pods.host), ("dockerd", dockerd.host))}
        print(f"image {IMAGE}: ours {ids['ours'][:19]}, dockerd (docker load of pods save) {ids['dockerd'][:19]}: "
              f"{'the same ID' if ids['ours'] == ids['dockerd'] else 'DIFFERENT IDs'}")
        if ids["ours"] != ids["dockerd"]:
            notes.append("the two daemons' busybox image IDs differ")

        l1 = loop1(docker, pods.host, dockerd.host, args.rounds)
        left = out([docker, "-H", pods.host, "ps", "-aq"]).split()
        if left:
            notes.append(f"loop 1 left {len(left)} container(s) in ours (docker ps -a)")
        print(f"loop 1 done; load {out(['uptime']).split('load average:')[-1].strip()}")
        l2 = loop2(script, base, pods.host, dockerd.host, args.tc_rounds)
        print(f"loop 2 done; load {out(['uptime']).split('load average:')[-1].strip()}")
        ry = ryuk_run(script, base, pods.host, args.ryuk_rounds)

        # memory with n idle containers on each, started alternately; first once more without them
        mem["idle, after loops 1-2"] = {
            "ours": {g: group_mem(p) for g, p in ours_groups(pods.proc.pid, root).items()},
            "dockerd": {g: group_mem(p) for g, p in docker_groups(dockerd.proc.pid, dockerd.exec_root).items()}}
        runs: dict[str, list[float]] = {"ours": [], "dockerd": []}
        run_err: dict[str, list[str]] = {"ours": [], "dockerd": []}
        for _ in range(n):
            for side, host in (("ours", pods.host), ("dockerd", dockerd.host)):
                t0 = time.perf_counter()
                p = subprocess.run([docker, "-H", host, "run", "-d", "--network", "none", IMAGE, "sleep", "3600"],
                                   capture_output=True, text=True)
                runs[side].append(time.perf_counter() - t0)
                if p.returncode == 0:
                    started[side].append(p.stdout.strip())
                else:
                    run_err[side].append(p.stderr.strip())
        time.sleep(3)
        key20 = f"{n} idle containers"
        mem[key20] = {"ours": {g: group_mem(p) for g, p in ours_groups(pods.proc.pid, root).items()},
                      "dockerd": {g: group_mem(p) for g, p in
                                  docker_groups(dockerd.proc.pid, dockerd.exec_root).items()}}
        for side, host in (("ours", pods.host), ("dockerd", dockerd.host)):
            if started[side]:
                sh([docker, "-H", host, "rm", "-f", *started[side]], stdout=subprocess.DEVNULL)
            started[side] = []
        time.sleep(2)
        mem["idle again (removed)"] = {
            "ours": {g: group_mem(p) for g, p in ours_groups(pods.proc.pid, root).items()},
            "dockerd": {g: group_mem(p) for g, p in docker_groups(dockerd.proc.pid, dockerd.exec_root).items()}}

        # -- report
        print(f"\nload during the run: {out(['uptime']).strip()}")
        ratios = print_loop1(l1, args.rounds)
        tc_ratio = print_loop2(l2, ry, args.tc_rounds)
        print_memory(mem)
        print(f"  `docker run -d --network none {IMAGE} sleep 3600` x{n}, interleaved: ours {fmt_ms(runs['ours']).strip()}"
              f" ms, dockerd {fmt_ms(runs['dockerd']).strip()} ms per run; ran {n - len(run_err['ours'])} and "
              f"{n - len(run_err['dockerd'])} of {n}")
        for side, errs in run_err.items():
            for e in errs[:3]:
                print(f"    FAILED ({side}): {e[:300]}")

        idle = mem["fresh (1 /_ping)"]["ours"]["pods daemon"]
        print("\nAims")
        for label, r in ratios.items():
            if label.startswith("floor"):
                continue
            print(f"  loop 1, {label}: ours/dockerd {r:.2f} (aim <= 0.33): {'MET' if r <= AIM_RATIO else 'NOT MET'}")
        print(f"  loop 2, testcontainers start + wait + stop: ours/dockerd {tc_ratio:.2f} (aim <= 0.33): "
              f"{'MET' if tc_ratio <= AIM_RATIO else 'NOT MET'}")
        print(f"  pods daemon idle (fresh, after one /_ping): RSS {idle['RSS'] / 1024:.1f} MiB = "
              f"{idle['RSS'] * 1024 / 1e6:.1f} MB, PSS {idle['PSS'] * 1024 / 1e6:.1f} MB (aim: under 40 MB): "
              f"{'MET' if idle['RSS'] * 1024 < AIM_IDLE_BYTES else 'NOT MET'}")
        again = mem["idle again (removed)"]["ours"]
        tot = sum(g["RSS"] for g in again.values())
        print(f"    (idle again after all of the above, daemon + fork server: RSS {tot * 1024 / 1e6:.1f} MB, "
              f"PSS {sum(g['PSS'] for g in again.values()) * 1024 / 1e6:.1f} MB; daemon alone RSS "
              f"{again['pods daemon']['RSS'] * 1024 / 1e6:.1f} MB)")
        for note in notes:
            print(f"note: {note}")
    finally:
        print("\nclean-up")
        for side, host in (("ours", pods.host), ("dockerd", dockerd.host)):
            if started[side]:
                subprocess.run([args.docker_cli, "-H", host, "rm", "-f", *started[side]], stdout=subprocess.DEVNULL)
        ours_left = []
        if pods.proc is not None and pods.proc.poll() is None and ping(pods.sock):
            p = subprocess.run([args.docker_cli, "-H", pods.host, "ps", "-aq", "--no-trunc"], capture_output=True,
                               text=True)
            ours_left = p.stdout.split()
            if ours_left:
                subprocess.run([args.docker_cli, "-H", pods.host, "rm", "-f", *ours_left], stdout=subprocess.DEVNULL)
        dockerd.stop()  # removes its leftovers first; containerd and the shims go with it
        print(f"  dockerd (pid {dockerd.proc.pid if dockerd.proc else '-'}): "
              f"{'stopped' if dockerd.proc is None or dockerd.proc.poll() is not None else 'STILL RUNNING'}; "
              f"bridge {dockerd.bridge} deleted")
        print(f"  pods daemon (pid {pods.proc.pid if pods.proc else '-'}): {stop_proc(pods.proc)}; "
              f"{len(ours_left)} container(s) were left in it and removed")
        if root.is_dir():
            from pytest_pods import Client

            client = Client(root)
            for st in client.runtime.list(all=True):
                client.runtime.remove(st["id"], force=True)
            done = client.cleanup()
            print(f"  Client(root).cleanup(): {len(done)} item(s) released" + (f": {'; '.join(done)}" if done else ""))
        unmount_under(work)
        tag = f"{zlib.crc32(os.fsencode(os.path.realpath(root))) & 0xFFF:03x}"
        cg = f"pytest-pods-{zlib.crc32(os.fsencode(os.path.realpath(root))):08x}"
        shutil.rmtree(work, ignore_errors=True)
        links = [ln.split()[0] for ln in out(["ip", "-br", "link"]).splitlines()
                 if ln.split() and (ln.split()[0].startswith((f"podsb{tag}", f"podsv{tag}"))
                                    or ln.split()[0].startswith(dockerd.bridge))]
        cgroups = [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{cg}")]
        procs = [p for p in all_pids() if str(work) in cmdline(p)]
        print(f"  left behind: {work} {'STILL THERE' if work.exists() else 'removed'}; links {links or 'none'}; "
              f"cgroup parents {cgroups or 'none'}; processes naming the scratch dir {procs or 'none'}")
        print(f"load after: {out(['uptime']).strip()}")


if __name__ == "__main__":
    main()
