"""The session watchdog: what a killed pytest started is removed within seconds.

testcontainers runs Ryuk, a container that needs a Docker daemon. Ours is a small process started
beside each pytest process that makes containers, in a session of its own (so Ctrl-C in the
terminal does not reach it). It holds the read end of a pipe whose write end only pytest holds.
When pytest ends, however it ends (SIGKILL included), the kernel closes that end and the read
returns; unless pytest wrote ``done`` first (a clean end, its fixtures already tore everything
down) the watchdog removes every container and network labelled with that pytest's owner key,
except the ones ``--pods-keep-on-failure`` kept, and releases the root's idle host state.

    python -m pytest_pods.watchdog ROOT OWNER_KEY        (stdin: the pipe)
"""

from __future__ import annotations

import os
import sys

OWNER_LABEL = "pytest-pods.owner"


def owner_key(pid: int | None = None) -> str:
    """``pid-starttime`` of a process: unique for its lifetime, never reused by another."""
    from .engine.linux import process_start_time

    pid = os.getpid() if pid is None else pid
    return f"{pid}-{process_start_time(pid)}"


def owner_alive(key: str) -> bool:
    from .engine.linux import process_start_time

    pid, _, start = key.partition("-")
    try:
        return str(process_start_time(int(pid))) == start
    except ValueError:
        return False


def kept_dir(root: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(root), "pytest-pods", "kept")


def sweep(root: str | os.PathLike[str], *, owner: str | None = None) -> list[str]:
    """Remove containers and networks of ``owner`` (or of every owner no longer alive), except
    kept containers of a live owner, and the root's idle host state once nothing else runs on it.
    Returns what was removed."""
    from .client import Client

    client = Client(root)
    kept = set(os.listdir(kept_dir(root))) if os.path.isdir(kept_dir(root)) else set()
    done: list[str] = []
    rt = client.runtime
    for st in rt.list(all=True):
        key = (st.get("labels") or {}).get(OWNER_LABEL)
        if not key:
            continue
        if owner is not None and (key != owner or st["id"] in kept):
            continue
        if owner is None and owner_alive(key):
            continue
        try:
            rt.remove(st["id"], force=True)
            done.append(st["id"])
        except Exception:  # another sweeper got it first
            continue
        try:
            os.unlink(os.path.join(kept_dir(root), st["id"]))
        except FileNotFoundError:
            pass
    for rec in rt.networks.records():
        key = (rec.get("labels") or {}).get(OWNER_LABEL)
        if key and (key == owner if owner is not None else not owner_alive(key)):
            try:
                rt.networks.remove(rec["id"])
                done.append(rec["id"])
            except Exception:  # still in use (a kept container), or gone
                continue
    if not rt.list(all=True):
        client.cleanup()  # the default bridge and its rules: only when no session uses this root
    return done


def main(argv: list[str]) -> int:
    root, owner = argv[0], argv[1]
    data = b""
    while True:
        try:
            chunk = os.read(0, 64)
        except InterruptedError:
            continue
        if not chunk:
            break
        data += chunk
    if data.endswith(b"done\n"):
        return 0
    sweep(root, owner=owner)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
