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
from typing import TYPE_CHECKING, NotRequired, TypedDict, cast

if TYPE_CHECKING:  # the network package is off the CLI's start path
    from pytest_pods.engine.network.networks import EndpointRecord
    from pytest_pods.engine.network.ports import PortRecord

STATE = "state.json"


class NetworkRef(TypedDict):
    """A network the container joins at each start (``networks`` in the state, and in the monitor's job)."""

    name: str
    id: str
    aliases: list[str]


class ContainerLimits(TypedDict):
    """``--memory``, ``--memory-swap``, ``--pids-limit``, ``--cpus`` as given (None: not limited)."""

    memory: int | None
    memory_swap: int | None
    pids: int | None
    cpus: float | None


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
    status: str                  # created | starting | running | exited | removing
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


def read_state(cdir: Path) -> ContainerState:
    with open(cdir / STATE, "rb") as f:
        return cast(ContainerState, json.load(f))


def write_state(cdir: Path, state: ContainerState) -> None:
    tmp = cdir / f".{STATE}.{os.getpid()}"
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
