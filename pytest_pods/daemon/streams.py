"""Streams over a hijacked connection or a chunked response: Docker's stream frames, the pumps
between a process's pipes (or pty) and attach/exec sessions, and :class:`Job`, engine work whose
progress documents stream as they come.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import select
import socket
import struct
import termios
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

STDOUT, STDERR = 1, 2
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"

#: an attach session waiting for its container's output: the hijacked socket and which streams
#: it wants ("stdout", "stderr", "stdin", "stream", "logs"; a tty's "detach_keys")
AttachSession = tuple[socket.socket, dict[str, Any]]


def frame(stream: int, data: bytes) -> bytes:
    """One frame of a multiplexed stream: stream (1 stdout, 2 stderr), 3 zero bytes, length."""
    return struct.pack(">BxxxL", stream, len(data)) + data


def peer_closed(conn: socket.socket) -> bool:
    """Whether the client went away (readable with nothing to read)."""
    try:
        r, _, _ = select.select([conn], [], [], 0)
        if not r:
            return False
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (OSError, ValueError):
        return True


def close_socket(sock: socket.socket) -> None:
    """Shut a hijacked connection down both ways (the client sees its end) and close it."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def pump_out(out_r: int, err_r: int, waiting: list[AttachSession], tty: bool) -> None:
    """A started container's stdout and stderr pipes to every attach session that wants them,
    framed unless the container has a tty; the sessions are closed at the end."""
    readers = {out_r: STDOUT, err_r: STDERR}
    socks = list(waiting)
    try:
        while readers:
            ready, _, _ = select.select(list(readers), [], [])
            for fd in ready:
                data = os.read(fd, 65536)
                if not data:
                    os.close(fd)
                    del readers[fd]
                    continue
                kind = readers[fd]
                for sock, opts in list(socks):
                    if not opts["stdout" if kind == STDOUT else "stderr"]:
                        continue
                    try:
                        sock.sendall(data if tty else frame(kind, data))
                    except OSError:
                        socks.remove((sock, opts))
    finally:
        for fd in readers:
            os.close(fd)
        for sock, _ in waiting:
            close_socket(sock)


DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def parse_detach_keys(text: str | None) -> bytes:
    """Docker's detach key sequence (``ctrl-p,ctrl-q``, ``a,ctrl-@``...) as the bytes a terminal
    sends; an empty string turns detaching off.

    :raises ValueError: a key docker would refuse too
    """
    if text is None:
        text = DEFAULT_DETACH_KEYS
    out = bytearray()
    for key in (k.strip() for k in text.split(",") if k.strip()):
        if len(key) == 1:
            out.append(ord(key))
        elif key.lower().startswith("ctrl-") and len(key) == 6:
            c = key[5].lower()
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
            elif c in "@[\\]^_":
                out.append(ord(c.upper()) & 0x1F)
            else:
                raise ValueError(f"Invalid escape keys ({text}) provided")
        else:
            raise ValueError(f"Invalid escape keys ({text}) provided")
    return bytes(out)


class EscapeProxy:
    """Finds the detach key sequence in a client's stdin (docker's term.EscapeProxy): bytes that
    might begin it are held back until they prove not to."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(what to pass on, whether the sequence is complete)."""
        if not self.keys:
            return data, False
        out = bytearray()
        for b in data:
            cand = self.held + bytes([b])
            if self.keys.startswith(cand):
                self.held = cand
                if cand == self.keys:
                    self.held = b""
                    return bytes(out), True
            else:
                out += cand if not self.keys.startswith(bytes([b])) else self.held
                self.held = bytes([b]) if self.keys.startswith(bytes([b])) else b""
        return bytes(out), False


def pump_in(sock: socket.socket, fd: int, is_pty: bool = False, detach_keys: bytes = b"") -> bool:
    """Client to process: the hijacked socket's bytes into stdin until the client half-closes, or
    (with ``detach_keys``, tty containers) types the detach sequence: then True, and the caller
    lets the client go while the container runs on."""
    escape = EscapeProxy(detach_keys)
    detached = False
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            data, detached = escape.feed(data)
            if data:
                os.write(fd, data)
            if detached:
                break
    except OSError:
        pass
    finally:
        if not is_pty:
            with contextlib.suppress(OSError):
                os.close(fd)
        elif not detached:
            with contextlib.suppress(OSError):
                os.write(fd, b"\x04")  # EOF for a terminal's reader
    return detached


def copy_out(readers: dict[int, int], sock: socket.socket | None, tty: bool, framed: bool | None = None) -> None:
    """A process's output fds (fd -> stream) to the hijacked socket until each reaches its end.
    With a tty, the one fd is the pty's master, which its owner closes. The output goes in frames
    unless ``framed`` is false (by default: without a tty); a pty's in frames is all stdout."""
    if framed is None:
        framed = not tty
    readers = dict(readers)
    try:
        while readers:
            ready, _, _ = select.select(list(readers), [], [])
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: the pty's last slave closed
                    data = b""
                if not data:
                    if not tty:
                        os.close(fd)
                    del readers[fd]
                    continue
                if sock is not None:
                    try:
                        sock.sendall(frame(readers[fd], data) if framed else data)
                    except OSError:
                        sock = None
    finally:
        if not tty:
            for fd in readers:
                with contextlib.suppress(OSError):
                    os.close(fd)


# asm-generic/ioctls.h (Python's termios lacks them): unlock a pty, and open its slave through
# the master (no path lookup: the slave is in the container's devpts, not ours)
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441


def container_pty(pid: int, size: Any = None) -> tuple[int, int]:
    """A pty pair on the container's own devpts (``/dev/pts`` is a new instance there), so that
    ``tty`` in the container names it (``/dev/pts/0``), as under docker; the host's devpts when the
    container's cannot be reached. ``size`` is the exec's ConsoleSize as sent: [height, width]."""
    try:
        master = os.open(f"/proc/{pid}/root/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        master, slave = pty.openpty()
    else:
        try:
            fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
            slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            os.close(master)
            master, slave = pty.openpty()
    if isinstance(size, list) and len(size) == 2 and all(isinstance(n, int) and n > 0 for n in size):
        with contextlib.suppress(OSError):  # ConsoleSize: [height, width], the CLI's terminal
            resize_pty(master, size[0], size[1])
    return master, slave


def resize_pty(master: int, height: int, width: int) -> None:
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


R = TypeVar("R")


class Job(Generic[R]):
    """Engine work (a pull, push or build) in a thread, whose progress documents a chunked
    response streams as they come; the last lines say how it ended."""

    def __init__(self) -> None:
        self._lines: list[bytes] = []
        self._cond = threading.Condition()
        self.done = False
        self.error: str | None = None
        self.value: R | None = None

    def emit(self, doc: dict[str, Any]) -> None:
        with self._cond:
            self._lines.append(json.dumps(doc).encode() + b"\r\n")
            self._cond.notify()

    def start(self, name: str, work: Callable[[], R]) -> None:
        def run() -> None:
            try:
                self.value = work()
            except Exception as exc:  # reported in the stream, as docker does
                self.error = str(exc)
            finally:
                with self._cond:
                    self.done = True
                    self._cond.notify()

        threading.Thread(target=run, name=name, daemon=True).start()

    def stream(self, finish: Callable[[R], list[dict[str, Any]]]) -> Iterator[bytes]:
        """The progress lines as they come; then the error, or ``finish(result)``'s lines."""
        while True:
            with self._cond:
                while not self._lines and not self.done:
                    self._cond.wait(timeout=1.0)
                batch, self._lines[:] = list(self._lines), []
                done = self.done
            yield from batch
            if done and not self._lines:
                break
        if self.error is not None:
            msg = self.error
            yield json.dumps({"errorDetail": {"message": msg}, "error": msg}).encode() + b"\r\n"
            return
        assert self.value is not None  # done without an error: the work returned it
        for doc in finish(self.value):
            yield json.dumps(doc).encode() + b"\r\n"
