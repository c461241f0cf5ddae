"""The session watchdog: what a killed pytest started is removed within seconds.

testcontainers runs Ryuk, a container that needs a Docker daemon. Ours is a small process started
beside each pytest process that makes containers, in a session of its own (so Ctrl-C in the
terminal does not reach it). It holds the read end of a pipe whose write end only pytest holds.
When pytest ends, however it ends (SIGKILL included), the kernel closes that end and the read
returns; unless pytest wrote ``done`` first (a clean end, its fixtures already tore everything
down) the watchdog removes every container and network labelled with that pytest's owner key,
except the ones ``--pods-keep-on-failure`` kept, and releases the root's idle host state.

    python -m pytest_pods.watchdog ROOT OWNER_KEY [HOST...]     (stdin: the pipe)

With several HOSTs (an engine pool, issue 20: a worker's own engine and the home engine of the
run's shared containers) it sweeps each; the engines' heartbeats cover the case where this
process is killed too.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import TYPE_CHECKING

from pytest_pods.engine.linux import process_start_time

if TYPE_CHECKING:
    from pytest_pods.client.contract import ClientAPI, ContainerAPI

OWNER_LABEL = "pytest-pods.owner"


def owner_key(pid: int | None = None) -> str:
    """``host:pid-starttime`` of a process: unique for its lifetime, never reused by another;
    the host name keeps the sessions of several machines on one remote engine apart."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}-{process_start_time(pid)}"


def owner_alive(key: str) -> bool:
    """Whether the owner still runs; an owner on another machine is not ours to judge (alive)."""
    host, sep, rest = key.rpartition(":")
    if sep and host != socket.gethostname():
        return True
    pid, _, start = rest.partition("-")
    try:
        return str(process_start_time(int(pid))) == start
    except ValueError:
        return False


def kept_dir(root: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(root), "pytest-pods", "kept")


def make_client(root: str | os.PathLike[str], host: str | None = None) -> ClientAPI:
    """The local engine on ``root``, or the remote one at ``host``."""
    if host:
        from pytest_pods.client.remote import RemoteClient  # lazy: only with a remote engine (http, ssl)

        return RemoteClient(host)
    from pytest_pods.client.local import Client  # lazy: a clean session end (``done``) needs no engine

    return Client(root, short_lived=True)  # it exits after its sweep: may release a rootless engine


def sweep(root: str | os.PathLike[str], *, owner: str | None = None, host: str | None = None) -> list[str]:
    """Remove containers and networks of ``owner`` (or of every owner no longer alive), except
    kept containers of a live owner, and the root's idle host state once nothing else runs on it.
    Returns what was removed. Owners are pytest processes on this host, local engine or not.

    Only what carries :data:`OWNER_LABEL` is removed (issue 15): the user's own containers,
    networks and volumes in the same root, and the networks ``--pods-reuse`` keeps, are not ours."""
    client = make_client(root, host)
    kept = set(os.listdir(kept_dir(root))) if os.path.isdir(kept_dir(root)) else set()
    done: list[str] = []
    containers = client.containers.list(all=True)
    for ctr in containers:
        try:
            key = ctr.labels.get(OWNER_LABEL)
        except Exception:  # removed meanwhile
            continue
        if not key:
            continue
        if owner is not None and (key != owner or ctr.id in kept):
            continue
        if owner is None and owner_alive(key):
            continue
        try:
            ctr.remove(force=True)
            done.append(ctr.id)
        except Exception:  # another sweeper got it first
            continue
        try:
            os.unlink(os.path.join(kept_dir(root), ctr.id))
        except FileNotFoundError:
            pass
    for net in client.networks.list(create_default=False):
        key = (net.get("Labels") or {}).get(OWNER_LABEL)
        if key and (key == owner if owner is not None else not owner_alive(key)):
            try:
                client.networks.remove(net["Id"])
                done.append(net["Id"])
            except Exception:  # still in use (a kept container), or gone
                continue
    if not host and not any(_running(ctr) for ctr in containers if ctr.id not in done):
        # the default bridge and its rules, when no container runs on this root; a stopped
        # container of the user's does not hold it (nor does cleanup touch user networks)
        client.cleanup()
    return done


def _running(ctr: ContainerAPI) -> bool:
    try:
        return ctr.status not in ("created", "exited", "dead")
    except Exception:  # removed meanwhile
        return False


def main(argv: list[str]) -> int:
    root, owner = argv[0], argv[1]
    hosts = argv[2:]
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
    for host in hosts or [""]:
        try:
            sweep(root, owner=owner, host=host or None)
        except Exception:  # one engine unreachable: the others are still swept
            continue
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
