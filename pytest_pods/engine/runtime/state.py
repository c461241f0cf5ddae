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
from typing import Any

STATE = "state.json"


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


def read_state(cdir: Path) -> dict[str, Any]:
    with open(cdir / STATE, "rb") as f:
        result: dict[str, Any] = json.load(f)
    return result


def write_state(cdir: Path, state: dict[str, Any]) -> None:
    tmp = cdir / f".{STATE}.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.rename(tmp, cdir / STATE)


def update_state(cdir: Path, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Apply ``change`` to the state under the lock; returns the new state."""
    with locked(cdir):
        state = read_state(cdir)
        change(state)
        write_state(cdir, state)
    return state
