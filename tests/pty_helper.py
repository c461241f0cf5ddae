"""A command on a pseudo-terminal, as a user at a shell runs it: the tests of ``docker run -it``,
``docker exec -it`` and ``pods run -it`` drive the real CLIs through one."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time


class Terminal:
    """A command on a pseudo-terminal, as a user at a shell runs it: ``expect`` what it prints,
    ``send`` what the user types."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, rows: int = 24, cols: int = 80) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.output = b""
        self._seen = 0

    def _read(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False at the end of the output."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the command closed the terminal's last slave
            return False
        self.output += data
        return bool(data)

    def expect(self, pattern: bytes, timeout: float = 20) -> re.Match[bytes]:
        """The first match of ``pattern`` in what came since the last match.

        :raises TimeoutError: with all the output so far.
        """
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            m = regex.search(self.output, self._seen)
            if m:
                self._seen = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(min(left, 0.2)) and not regex.search(self.output, self._seen):
                raise TimeoutError(f"wait for {pattern!r} on the terminal: not within {timeout:g} s; "
                                   f"the output was {self.output!r}")

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.1)
        code = self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        while self._read(0.05):  # what it printed last, still in the terminal when it exited
            if not select.select([self.master], [], [], 0)[0]:
                break
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
