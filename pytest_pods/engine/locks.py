"""File locks shared by every process on one root (flock: released by the kernel if we die)."""

from __future__ import annotations

import fcntl
import os
import re
from types import TracebackType

from pytest_pods.engine.linux import process_start_time


class FileLock:
    """An exclusive ``flock`` on a file, as a context manager; re-entrant within one object.

    Own code rather than the filelock package: it is ten lines, and importing filelock costs
    about 10 ms, which every ``pods run`` would pay on its start path.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._depth = 0

    def __enter__(self) -> FileLock:
        if self._depth == 0:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
        self._depth += 1
        return self

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            os.close(self._fd)
            self._fd = None


# -- leases: names that say which process made them (issue 14) ---------------------------------
# A temp file or directory, or a container a build runs, carries its maker's lease: ``p<pid>-<start
# time>``. The reaper releases what a lease marks once that process is gone, at once and without
# an age rule, and never touches what a live process is still making (a reused pid has another
# start time).
_LEASE_RE = re.compile(r"(?:^|[-.])p(\d+)-(\d+)-")
_own: tuple[int, str] | None = None


def lease() -> str:
    """This process's lease, ``p<pid>-<start time>`` (computed once per process, forks included)."""
    global _own
    pid = os.getpid()
    if _own is None or _own[0] != pid:
        _own = (pid, f"p{pid}-{process_start_time(pid) or 0}")
    return _own[1]


def lease_alive(tag: str) -> bool:
    """Whether the process a lease names still runs (a zombie counts as gone)."""
    m = _LEASE_RE.search(tag if tag.endswith("-") else tag + "-")
    if m is None:
        return False
    return process_start_time(int(m.group(1))) == int(m.group(2))


def lease_of(name: str) -> str | None:
    """The lease a file name carries (``build-p12-345-xyz``: ``p12-345``), None when it carries none."""
    m = _LEASE_RE.search(name)
    return f"p{m.group(1)}-{m.group(2)}" if m else None


def remove_dead_leased(d: os.PathLike[str] | str) -> list[str]:
    """Remove the half-written files in ``d`` (``.NAME.<lease>-...``) whose writer is gone."""
    done: list[str] = []
    try:
        entries = list(os.scandir(d))
    except OSError:
        return done
    for e in entries:
        owner = lease_of(e.name) if e.name.startswith(".") else None
        if owner is not None and not lease_alive(owner):
            try:
                os.unlink(e.path)
            except OSError:
                continue
            done.append(f"removed half-written {e.path}")
    return done


def held(path: str) -> bool:
    """Whether a process holds the ``flock`` on ``path`` (False when there is no such file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
