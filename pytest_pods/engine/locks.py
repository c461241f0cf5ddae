"""File locks shared by every process on one root (flock: released by the kernel if we die)."""

from __future__ import annotations

import fcntl
import os
from types import TracebackType


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
