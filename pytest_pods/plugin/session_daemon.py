"""The session's own ``pods daemon``, for an ordinary user (the rootless engine, issue 13).

The rootless engine runs inside a user namespace that only a single-threaded process can join;
pytest and its xdist workers have threads, and the user's tests must keep running as the user.
So, rootless and without ``--pods-host``, the plugin starts a ``pods daemon`` of its own for the
session (the xdist controller, or the single process), on a socket in the user's run dir
(``$XDG_RUNTIME_DIR/pytest-pods/session-<id>.sock``, in a 0700 directory), and drives it with
the RemoteClient exactly as ``--pods-host`` does. Workers get its address in ``PODS_SESSION_HOST``.

Lifeline: the daemon reads a pipe (``PODS_DAEMON_LIFELINE``) whose write ends pytest and its
watchdog hold; when both are gone (pytest SIGKILLed, then the watchdog's sweep done) the daemon
stops. At a clean session end the plugin stops it with SIGTERM.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from pytest_pods.client.contract import rootless_engine
from pytest_pods.errors import EngineUnavailableError

SESSION_HOST_ENV = "PODS_SESSION_HOST"
"""The session daemon's address, for the xdist workers (set by the controller)."""
LIFELINE_ENV = "PODS_DAEMON_LIFELINE"
IGNORE_LIMITS_ENV = "PODS_IGNORE_LIMITS"


def rootless() -> bool:
    """Whether the local engine would run rootless here (the engine decides)."""
    return rootless_engine()


def rootless_default_root() -> str:
    """An ordinary user's engine root: ``$XDG_DATA_HOME/pytest-pods``, else
    ``~/.local/share/pytest-pods`` (the engine's own default; ``PODS_ROOT`` is read before this)."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    if xdg and os.path.isabs(xdg):
        return os.path.join(xdg, "pytest-pods")
    return os.path.join(os.path.expanduser("~"), ".local", "share", "pytest-pods")


def run_base() -> Path:
    """``$XDG_RUNTIME_DIR/pytest-pods`` (else ``/tmp/pytest-pods-<uid>``), 0700, ours."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isdir(xdg) and os.access(xdg, os.W_OK | os.X_OK):
        base = Path(xdg) / "pytest-pods"
    else:
        base = Path(f"/tmp/pytest-pods-{os.getuid()}")
    try:
        os.mkdir(base, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(base)
    if base.is_symlink() or not base.is_dir() or st.st_uid != os.getuid():
        raise EngineUnavailableError(f"pytest-pods: run dir {base} is not a directory of uid {os.getuid()}")
    if st.st_mode & 0o077:
        os.chmod(base, 0o700)
    return base


def _answers(sock: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def serving(root: str) -> str | None:
    """The address of a ``pods daemon`` already serving ``root`` (it wrote its socket beside its
    pid in ``ROOT/daemon.pid``), if one answers: one daemon per root, so a session borrows it."""
    try:
        lines = (Path(root) / "daemon.pid").read_text().split("\n")
    except OSError:
        return None
    if len(lines) < 2 or not lines[1].startswith("unix://"):
        return None
    sock = Path(lines[1][len("unix://"):])
    return lines[1] if _answers(sock) else None


class _RootBusy(Exception):
    """Another daemon holds the root and is on its way out: try again shortly."""


def _dying(address: str) -> bool:
    """Whether ``address`` is the session daemon of a pytest that is gone (killed: its watchdog
    sweeps, then the daemon stops within seconds). Borrowing it would break the new session
    midway, so a session waits for it to end instead."""
    name = Path(address[len("unix://"):]).name
    return name.startswith("session-") and name.endswith(".sock") and _session_gone(name)


def _session_gone(name: str) -> bool:
    """Whether the pytest a ``session-<run>-<pid>.sock``/``.log`` name was made by has ended."""
    pid = name.rpartition(".")[0].rpartition("-")[2]
    if not pid.isdigit():
        return False
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except FileNotFoundError:
        return True


def _remove_leftovers(base: Path) -> None:
    """The socket and log files of sessions that were killed (a clean end removes its own)."""
    for entry in base.glob("session-*-*.*"):
        if entry.suffix in (".sock", ".log") and _session_gone(entry.name) and not _answers(entry.with_suffix(".sock")):
            entry.unlink(missing_ok=True)


class SessionDaemon:
    """A ``pods daemon`` for one pytest session on ``root`` (see the module's docstring)."""

    def __init__(self, root: str, run_id: str, *, ignore_limits: bool = False) -> None:
        self.root, self.run_id, self.ignore_limits = root, run_id, ignore_limits
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: Path | None = None
        self.log: Path | None = None
        self.lifeline: int | None = None  # the write end: pytest's; the watchdog inherits a copy
        self.borrowed = False

    @property
    def host(self) -> str:
        assert self.sock is not None
        return f"unix://{self.sock}"

    def start(self, timeout: float = 30) -> str:
        """Start it (see :meth:`_start`), again while a killed session's daemon still holds the
        root (it ends within seconds, once that session's watchdog swept)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._start(timeout)
            except _RootBusy:
                if time.monotonic() > deadline:
                    raise EngineUnavailableError(f"pytest-pods: another pods daemon holds {self.root} and "
                                                 "does not answer; stop it (pods system info shows it)") from None
                time.sleep(0.1)

    def _start(self, timeout: float) -> str:
        """Start it and wait for ``/_ping``; returns its address. A daemon already serving the
        root (one per root) is borrowed instead, and left running at the end.

        :raises EngineUnavailableError: it did not start (its error output in the message)
        """
        other = serving(self.root)
        deadline = time.monotonic() + timeout
        while other is not None and _dying(other) and time.monotonic() < deadline:
            time.sleep(0.1)  # a killed session's daemon, going once its watchdog swept
            other = serving(self.root)
        if other is not None:
            self.borrowed = True
            self.sock = Path(other[len("unix://"):])
            return other
        base = run_base()
        _remove_leftovers(base)
        self.sock = base / f"session-{self.run_id}-{os.getpid()}.sock"
        self.log = base / f"session-{self.run_id}-{os.getpid()}.log"
        r, w = os.pipe()
        os.set_inheritable(r, True)
        env = dict(os.environ, **{LIFELINE_ENV: str(r)})
        env.pop(SESSION_HOST_ENV, None)
        if self.ignore_limits:
            env[IGNORE_LIMITS_ENV] = "1"
        os.makedirs(self.root, exist_ok=True)
        try:
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "pytest_pods.cli", "--root", self.root, "daemon", "--socket",
                     str(self.sock), "--log-file", str(self.log)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, pass_fds=(r,),
                    start_new_session=True, cwd="/", env=env)
        finally:
            os.close(r)
        self.lifeline = w
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.log.read_text(errors="replace").strip()[-2000:]
                self.proc = None
                self._close()
                other = serving(self.root)
                if "another pods daemon" in err:
                    if other is None or _dying(other):
                        raise _RootBusy  # a killed session's daemon, on its way out
                    self.borrowed = True  # a race with another session: share its daemon
                    self.sock = Path(other[len("unix://"):])
                    return other
                raise EngineUnavailableError(f"pytest-pods: the session's pods daemon did not start: {err}")
            if _answers(self.sock):
                return self.host
            time.sleep(0.02)
        self.stop()
        raise EngineUnavailableError(f"pytest-pods: the session's pods daemon did not answer within {timeout:g} s")

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, then wait (it releases the root's namespace holder when nothing else runs)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._close()
        if not self.borrowed:
            for path in (self.sock, self.log):
                if path is not None:
                    try:
                        path.unlink()
                    except FileNotFoundError:
                        pass

    def _close(self) -> None:
        if self.lifeline is not None:
            try:
                os.close(self.lifeline)
            except OSError:
                pass
            self.lifeline = None
