"""A container's state file (``containers/<id>/state.json``): one JSON document, always whole.

Written by the engine (create, rename, remove) and by the container's monitor (running, exited),
possibly from different processes: every change is read-modify-write under the container's
``flock`` and lands by rename. No fsync: the state describes processes, which a power loss ends
anyway, and an fsync would cost milliseconds on every start.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, cast

from pytest_pods.engine.locks import lease

if TYPE_CHECKING:  # the network package is off the CLI's start path
    from pytest_pods.engine.network.networks import EndpointRecord
    from pytest_pods.engine.network.ports import PortRecord
    from pytest_pods.engine.runtime.health import HealthConfig, HealthState

STATE = "state.json"


class NetworkRef(TypedDict):
    """A network the container joins at each start (``networks`` in the state, and in the monitor's job)."""

    name: str
    id: str
    aliases: list[str]
    endpoint_config: NotRequired[dict[str, Any]]  # the Engine API's EndpointSettings as given (fixed addresses)


class ContainerLimits(TypedDict):
    """``--memory``, ``--memory-swap``, ``--pids-limit``, ``--cpus`` as given (None: not limited)."""

    memory: int | None
    memory_swap: int | None
    pids: int | None
    cpus: float | None
    cpu_shares: NotRequired[int | None]


class ContainerState(TypedDict):
    """``containers/<id>/state.json``.

    Keys written at create are always there; ``networks`` and ``port_specs`` came later (a state
    file of an older version may lack them); the rest is written by the monitor at the first start
    (``ports`` are the bindings as bound, ``endpoints`` by network name) or by ``rm -f``.
    """

    id: str
    name: str
    created: str                 # RFC 3339 (now_iso)
    image: str                   # the image ID
    image_name: str              # as the user named it
    status: str                  # created | starting | running | restarting | exited | removing (dead: unreadable)
    pid: int                     # the container's pid 1 on the host; 0 when not running
    exit_code: int
    oom_killed: bool
    error: str
    started_at: str
    finished_at: str
    labels: dict[str, str]
    lower_dirs: list[str]        # the overlay's lower dirs, image snapshots
    overlay: str                 # the overlay mount options
    stop_signal: int
    stop_timeout: int
    auto_remove: bool
    init: bool
    network: str                 # the mode: none, host, or the first network's name
    limits: ContainerLimits
    stdin_open: bool
    restart_count: int
    hostname: str
    binds: list[str]             # SOURCE:TARGET[:ro]
    tmpfs: list[str]
    read_only: bool
    user: str
    networks: NotRequired[list[NetworkRef]]
    port_specs: NotRequired[list[PortRecord]]        # as asked (host port 0: any free one)
    # from the first start on
    pid_start: NotRequired[int | None]                # with pid: is that process still ours?
    monitor_pid: NotRequired[int]
    monitor_start: NotRequired[int | None]
    endpoints: NotRequired[dict[str, EndpointRecord]]  # by network name
    ports: NotRequired[list[PortRecord]]             # as bound
    remove_requested: NotRequired[bool]              # rm -f asked the monitor to remove it
    limits_dropped: NotRequired[list[str]]           # rootless, PODS_IGNORE_LIMITS=1: limits not applied
    starter: NotRequired[str]                        # the lease of the process starting it (engine.locks)
    healthcheck: NotRequired[HealthConfig]           # merged at create (image + container), issue 16
    health: NotRequired[HealthState]                 # State.Health, written by the monitor's prober
    paused: NotRequired[bool]                        # frozen (docker pause); status stays "running"
    restart_policy: NotRequired[dict[str, Any]]      # HostConfig.RestartPolicy: {Name, MaximumRetryCount}
    stop_requested: NotRequired[bool]                # stopped or killed through the engine: no restart
    host_config: NotRequired[dict[str, Any]]         # HostConfig fields kept as given (inspect shows them)
    log_config: NotRequired[dict[str, Any]]          # HostConfig.LogConfig: {Type, Config}
    group_add: NotRequired[list[str]]                # --group-add as given
    start_error: NotRequired[str]                    # what fails its every start (a --group-add not found)
    env_bare: NotRequired[list[str]]                 # API Env entries without "=": unset, shown in Config.Env
    links: NotRequired[list[dict[str, str]]]         # legacy links: {name, alias} (set up at each start)
    link_env: NotRequired[list[str]]                 # the env names the last start's links set
    link_hosts: NotRequired[list[str]]               # the extra_hosts entries the last start's links added
    extra_hosts: NotRequired[list[str]]              # NAME:IP for /etc/hosts (the network code writes them)
    exposed: NotRequired[list[str]]                  # --expose PORT/PROTO, not published
    publish_all: NotRequired[bool]                   # -P
    volumes_from: NotRequired[list[str]]             # --volumes-from as given


def now_iso() -> str:
    """RFC 3339 with nanoseconds, as Docker prints times."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"


@contextlib.contextmanager
def locked(cdir: Path) -> Iterator[None]:
    fd = os.open(cdir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class BrokenStateError(ValueError):
    """A container's state file that cannot be read: not JSON, empty, or a key of the wrong type.

    A ValueError, as a JSON error is, so that every caller that skips an unreadable state skips
    this too; the message names the file and what is wrong with it (issue 14)."""


# the keys every state has from create on, with their types: a state without one is broken
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "id": str, "name": str, "created": str, "image": str, "image_name": str, "status": str,
    "pid": int, "exit_code": int, "labels": dict, "lower_dirs": list, "overlay": str,
}
_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "oom_killed": bool, "error": str, "started_at": str, "finished_at": str, "stop_signal": int,
    "stop_timeout": int, "auto_remove": bool, "init": bool, "network": str, "limits": dict,
    "restart_count": int, "hostname": str, "binds": list, "tmpfs": list, "networks": list,
    "port_specs": list, "endpoints": dict, "ports": list, "monitor_pid": int,
}
STATUSES = ("created", "starting", "running", "restarting", "exited", "removing")


def read_state(cdir: Path) -> ContainerState:
    """The state of the container in ``cdir``.

    :raises FileNotFoundError: there is no state file (a container being created, or removed)
    :raises BrokenStateError: there is one, but it is not a container's state
    """
    path = cdir / STATE
    with open(path, "rb") as f:
        data = f.read()
    try:
        doc = json.loads(data)
    except ValueError as exc:
        why = "empty file" if not data.strip() else f"not JSON ({exc})"
        raise BrokenStateError(f"{path}: {why}") from None
    check_state(doc, path)
    return cast(ContainerState, doc)


def check_state(doc: object, path: Path) -> None:
    """Refuse a document that is not a container's state (wrong types, a missing key, another ID)."""
    if not isinstance(doc, dict):
        raise BrokenStateError(f"{path}: a JSON {type(doc).__name__}, not an object")
    for key, typ in _REQUIRED.items():
        if key not in doc:
            raise BrokenStateError(f"{path}: no {key!r}")
        if not isinstance(doc[key], typ) or (typ is int and isinstance(doc[key], bool)):
            raise BrokenStateError(f"{path}: {key!r} is a {type(doc[key]).__name__}")
    for key, typ in _OPTIONAL.items():
        if key in doc and doc[key] is not None and not isinstance(doc[key], typ):
            raise BrokenStateError(f"{path}: {key!r} is a {type(doc[key]).__name__}")
    if doc["status"] not in STATUSES:
        raise BrokenStateError(f"{path}: unknown status {doc['status']!r}")
    if doc["id"] != path.parent.name:
        raise BrokenStateError(f"{path}: the state of another container ({doc['id'][:12]!r})")


def dead_state(cdir: Path, error: str, name: str | None = None) -> ContainerState:
    """What ``ps -a`` and ``inspect`` show of a container whose state cannot be read: status
    ``dead`` (Docker's word), the error naming the file, and what the directory still tells."""
    try:
        created = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime(cdir.stat().st_mtime))
    except OSError:
        created = "0001-01-01T00:00:00Z"
    cid = cdir.name
    never = "0001-01-01T00:00:00Z"
    return {
        "id": cid, "name": name or cid[:12], "created": created, "image": "", "image_name": "",
        "status": "dead", "pid": 0, "exit_code": 0, "oom_killed": False, "error": error,
        "started_at": never, "finished_at": never, "labels": {}, "lower_dirs": [], "overlay": "",
        "stop_signal": 15, "stop_timeout": 10, "auto_remove": False, "init": False, "network": "none",
        "limits": {"memory": None, "memory_swap": None, "pids": None, "cpus": None}, "stdin_open": False,
        "restart_count": 0, "hostname": cid[:12], "binds": [], "tmpfs": [], "read_only": False, "user": "",
    }


def write_state(cdir: Path, state: ContainerState) -> None:
    tmp = cdir / f".{STATE}.{lease()}-"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.rename(tmp, cdir / STATE)


def update_state(cdir: Path, change: Callable[[ContainerState], object]) -> ContainerState:
    """Apply ``change`` to the state under the lock; returns the new state."""
    with locked(cdir):
        state = read_state(cdir)
        change(state)
        write_state(cdir, state)
    return state
