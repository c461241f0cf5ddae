"""The per-container monitor (our conmon) and the exec job.

The monitor is forked (``forkserver.spawn(monitor_main, ...)``), detached from its caller, and owns one container process: it
creates the cgroup, forks the container's pid 1 into a new pid namespace, writes the container's
stdout and stderr to its log (kept apart, each line timestamped, in Docker's json-file format),
records the exit status (and an OOM kill) in the state file, releases the cgroup and, for
``--rm``, the container's directory. The caller may exit at any time: the container outlives it.

The starter learns the outcome over the status pipe it handed in, as JSON lines:
``{"started": pid}`` or ``{"error": message, "code": n}``, and later ``{"exited": code, "oom": bool}``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, NotRequired, TypedDict, cast

from pytest_pods.engine import events, linux, rootless
from pytest_pods.engine.files import remove_tree
from pytest_pods.engine.runtime import nsinit as init
from pytest_pods.engine.runtime.cgroups import Cgroup, Limits, open_cgroup, rules_from_config
from pytest_pods.engine.runtime.state import (
    ContainerLimits,
    ContainerState,
    NetworkRef,
    locked,
    now_iso,
    read_state,
    update_state,
    write_state,
)

if TYPE_CHECKING:
    import socket

    from pytest_pods.engine.network.iptables import RuleSet
    from pytest_pods.engine.network.networks import EndpointRecord
    from pytest_pods.engine.network.ports import PortRecord


class MonitorJob(TypedDict):
    """What the starter hands the monitor (``Runtime.start``): paths, the container's settings
    from its state, and the fds' meaning (``attach``: fds[1:3] take its output, ``stdin``: fds[3])."""

    id: str
    dir: str              # the container's directory
    config: str           # its config.json
    rootfs: str
    overlay: str          # the overlay mount options
    limits: ContainerLimits
    auto_remove: bool
    init: bool
    attach: bool
    stdin: bool
    stdin_open: NotRequired[bool]  # OpenStdin: without a stdin fd, a stdin that stays open
    name_link: str        # containers/.names/<name>: freed with the container (--rm)
    cgroup_parent: str
    root: str             # the state root (its networks)
    name: str
    hostname: str
    hosts: str            # the container's /etc/hosts
    networks: list[NetworkRef]
    ports: list[PortRecord]  # as asked: reserved before anything else is made
    added_rules: NotRequired[RuleSet]  # the monitor's own note: the port rules it added
    volumes: NotRequired[list[str]]  # --rm: the volumes it mounts; the anonymous ones go with it (rm -v)
    owner: NotRequired[str]  # a lease (engine.locks): the container dies with that process (a build's RUN)
    healthcheck: NotRequired[dict[str, Any]]  # only when it has a probe to run (engine.runtime.health)
    log_driver: NotRequired[str]  # "none": no log kept (json-file when absent)


class ExecJob(TypedDict):
    """What ``Runtime.exec`` hands the exec job: the container, its pid 1, the process to run."""

    id: str
    pid: int
    process: dict[str, Any]  # an OCI runtime-spec ``process`` object
    cgroup_parent: str


class StatusMessage(TypedDict, total=False):
    """One JSON line on the status pipe: ``started`` (+ ``ports``), ``error`` (+ ``code``), then
    ``exited`` (+ ``oom``)."""

    started: int
    ports: list[PortRecord]
    error: str
    code: int
    exited: int
    oom: bool


def _send(fd: int, msg: StatusMessage) -> None:
    try:
        os.write(fd, json.dumps(msg).encode() + b"\n")
    except OSError:
        pass  # the starter went away (detached run): nothing to tell


class _LogWriter:
    """Appends json-file lines. The start of a line that has no newline yet is written at once
    as a ``"partial": true`` entry (a prompt shows in ``pods attach`` and the daemon's attach
    before its line ends); readers of whole lines (``logs``) join it with the entries that end
    that line."""

    def __init__(self, path: Path, attach: dict[str, int], keep: bool = True) -> None:
        # the "none" log driver: nothing kept (attached clients still get the output)
        self.fd = os.open(path if keep else "/dev/null", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.open_line = {"stdout": False, "stderr": False}  # partial entries written, its end not yet
        self.attach = attach

    def feed(self, stream: str, data: bytes) -> None:
        afd = self.attach.get(stream)
        if afd is not None:
            try:
                os.write(afd, data)
            except OSError:
                self.attach.pop(stream, None)
        *lines, rest = data.split(b"\n")
        entries = [(line + b"\n", False) for line in lines]
        if rest:
            entries.append((rest, True))
        self.open_line[stream] = bool(rest)
        self._write(stream, entries)

    def flush(self, stream: str) -> None:
        """The stream ended: a line left open is ended (by an empty entry) for the readers."""
        if self.open_line[stream]:
            self._write(stream, [(b"", False)])
            self.open_line[stream] = False

    def _write(self, stream: str, entries: list[tuple[bytes, bool]]) -> None:
        ts = now_iso()
        out = b"".join(
            json.dumps({"log": line.decode("utf-8", "surrogateescape"), "stream": stream, "time": ts}
                       | ({"partial": True} if partial else {}), ensure_ascii=True).encode() + b"\n"
            for line, partial in entries
        )
        os.write(self.fd, out)


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def monitor_main(p: MonitorJob, fds: list[int]) -> NoReturn:
    """Start the container and watch it until it exits (runs detached, single-threaded); with
    a restart policy, start it again as dockerd's restart manager does (issue 16)."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    delay = 0.0
    while True:
        began = time.monotonic()
        if not _run_once(p, fds):
            os._exit(0)
        # Docker's backoff: 100 ms, doubled at each restart, back to 100 ms once a run lasted
        # 10 s, at most a minute
        delay = RESTART_DELAY if delay == 0 or time.monotonic() - began >= 10 else min(delay * 2, 60.0)
        if not _restart_wait(Path(p["dir"]), delay, Path(p["name_link"]).parent if p.get("name_link") else None):
            os._exit(0)
        for fd in set(fds[:3] if p.get("attach") else fds[:1]):
            with contextlib.suppress(OSError):
                os.close(fd)  # the first starter's status pipe and attach fds: later runs run detached
        fds = [os.open("/dev/null", os.O_WRONLY | os.O_CLOEXEC)]
        p = cast(MonitorJob, {**p, "attach": False, "stdin": False})


RESTART_DELAY = 0.1


def restart_wanted(st: ContainerState, code: int) -> bool:
    """Whether the container's restart policy starts it again after it exited with ``code``
    (not after a stop or kill through the engine: ``stop_requested``)."""
    policy = st.get("restart_policy") or {}
    name = policy.get("Name") or "no"
    if st.get("stop_requested") or st.get("remove_requested") or st.get("auto_remove") or name == "no":
        return False
    if name == "on-failure":
        most = int(policy.get("MaximumRetryCount") or 0)
        return code != 0 and (most <= 0 or st.get("restart_count", 0) < most)
    return name in ("always", "unless-stopped")


def _restart_wait(cdir: Path, delay: float, names: Path | None) -> bool:
    """Sleep ``delay`` as the state says "restarting"; False when a stop, kill or removal came
    meanwhile (then it is left exited, or removed)."""
    deadline = time.monotonic() + delay
    while True:
        try:
            with locked(cdir):
                st = read_state(cdir)
                if st.get("remove_requested") or st.get("status") == "removing":
                    remove_container_dir(cdir, str(names / st["name"]) if names is not None else None)
                    return False
                if st.get("stop_requested") or st.get("status") != "restarting":
                    if st.get("status") == "restarting":
                        st["status"] = "exited"
                        write_state(cdir, st)
                    return False
                if time.monotonic() >= deadline:
                    st["restart_count"] = st.get("restart_count", 0) + 1
                    write_state(cdir, st)
                    return True
        except (OSError, ValueError):
            return False
        time.sleep(min(0.05, max(deadline - time.monotonic(), 0)))


def _run_once(p: MonitorJob, fds: list[int]) -> bool:
    """One run of the container; True when its restart policy wants another (the state then
    says "restarting")."""
    status_fd = fds[0]
    attach: dict[str, int] = {}
    if p.get("attach"):
        attach = {"stdout": fds[1], "stderr": fds[2]}
    stdin_fd = fds[3] if p.get("stdin") else None
    held_stdin = None
    config = json.loads(Path(p["config"]).read_bytes())
    tty = bool(config["process"].get("terminal"))  # Tty (issue 16): pid 1's stdio is a pty we hold
    if stdin_fd is None and p.get("stdin_open") and not tty:
        # OpenStdin and no client on its stdin: the container's stdin stays open (a pipe whose
        # writing end we hold until it exits), as dockerd keeps it; `docker run -d -i busybox cat`
        # runs (issue 16)
        stdin_fd, held_stdin = os.pipe()
    cdir = Path(p["dir"])
    held_ports: list[socket.socket] = []
    ports: list[PortRecord] = []
    if p.get("ports"):  # reserved first: a port in use fails the start before anything is made
        from pytest_pods.engine.network.ports import PortBinding, reserve  # lazy: start latency (--network none)

        try:
            bound, held_ports = reserve([PortBinding.from_record(r) for r in p["ports"]])
            ports = [b.to_record() for b in bound]
        except Exception as exc:
            _fail_start(cdir, status_fd, f"start container {p['id'][:12]}: {exc}", 125, None)
    try:  # the device rules of its config (issue 14) are enforced by the cgroup
        cg = open_cgroup(p["id"], Limits(**p["limits"]), parent=p["cgroup_parent"], devices=rules_from_config(config))
        cg.create()
    except Exception as exc:
        _fail_start(cdir, status_fd, f"start container {p['id'][:12]}: {exc}", 125, None)

    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    err_pipe_r, err_pipe_w = os.pipe()
    c2m_r, c2m_w = os.pipe()  # child -> monitor: namespaces are made
    m2c_r, m2c_w = os.pipe()  # monitor -> child: go on
    null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    console = _console_pair() if tty else None  # (ours, the child's): the pty's master comes back on it
    if any(ns.get("type") == "pid" for ns in config.get("linux", {}).get("namespaces", [])):
        pid = _fork_pid1(cdir, status_fd, cg)
    else:
        pid = os.fork()  # --pid host: the host's pid namespace (as root only: spec.check_namespace_modes)
    if pid == 0:
        for fd in {out_r, err_r, err_pipe_r, c2m_r, m2c_w, status_fd, *attach.values(),
                   *([held_stdin] if held_stdin is not None else []),
                   *([console[0], *([stdin_fd] if stdin_fd is not None else [])] if console else [])}:
            os.close(fd)  # a set: stdout and stderr may be attached to one descriptor
        init.container_init(
            config, p["rootfs"], p["overlay"], m2c_r, c2m_w, err_pipe_w,
            (stdin_fd if stdin_fd is not None and console is None else null, out_w, err_w), bool(p.get("init")),
            cg.self_join_files(), console[1] if console else None,
        )
    for fd in (out_w, err_w, err_pipe_w, c2m_w, m2c_r, null):
        os.close(fd)
    if stdin_fd is not None and console is None:
        os.close(stdin_fd)
    if console is not None:
        os.close(console[1])
    pidfd = os.pidfd_open(pid)
    try:
        if os.read(c2m_r, 1) != b"n":
            raise OSError(errno.ECHILD, "container init ended before making its namespaces")
        endpoints = _attach_networks(p, pid, ports)  # while the child builds its root
        os.write(m2c_w, b"g")  # the child joins its cgroup itself (see Cgroup.self_join_files)
    except Exception as exc:
        _kill_and_reap(pid)
        _detach_networks(p)
        # the wiring often fails only because the container's init died first: its own
        # error (a bad mount, say) is the one to report
        own = _read_all(err_pipe_r)
        if own:
            try:
                msg = json.loads(own)
                _fail_start(cdir, status_fd, msg["error"], int(msg.get("code", 125)), cg)
            except (ValueError, KeyError):
                pass
        _fail_start(cdir, status_fd, f"start container {p['id'][:12]}: {exc}", 125, cg)
    os.close(c2m_r)
    os.close(m2c_w)
    failure = _read_all(err_pipe_r)
    if failure:
        _kill_and_reap(pid)
        try:
            msg = json.loads(failure)
        except ValueError:
            msg = {"error": failure.decode(errors="replace"), "code": 125}
        _detach_networks(p)
        _fail_start(cdir, status_fd, msg["error"], int(msg.get("code", 125)), cg)

    # before "started": a resize right after the start finds the window size FIFO
    term = _Terminal(cdir, console[0], stdin_fd) if console is not None else None
    start_time = linux.process_start_time(pid)
    prober = None
    if p.get("healthcheck"):  # issue 16
        from pytest_pods.engine.runtime.health import Prober, starting  # lazy: start latency (health-checked only)
        from pytest_pods.engine.runtime.spec import SECCOMP_FILTER_KEY  # lazy: start latency (as above)

        prober = Prober(cdir, p["healthcheck"], pid, config, cg.self_join_files(), SECCOMP_FILTER_KEY)

    def running(s: ContainerState) -> None:
        if prober is not None:
            s["health"] = starting()
        s.update({"status": "running", "pid": pid, "pid_start": start_time, "started_at": now_iso(),
                  "monitor_pid": os.getpid(), "monitor_start": linux.process_start_time(os.getpid()),
                  "exit_code": 0, "oom_killed": False, "error": "", "finished_at": "0001-01-01T00:00:00Z",
                  "endpoints": endpoints, "ports": ports})

    started = update_state(cdir, running)
    _send(status_fd, {"started": pid, "ports": ports})
    events.record(cdir.parent.parent, "container", "start", cdir.name, events.container_attrs(started))

    log = _LogWriter(cdir / "container.log", attach, keep=p.get("log_driver") != "none")
    streams = {out_r: "stdout", err_r: "stderr"}
    if term is not None:
        os.close(out_r)  # pid 1 writes to its pty: the pipes stay empty
        os.close(err_r)
        streams = {term.master: "stdout"} if term.master is not None else {}  # one stream, as json-file logs a tty
    status: int | None = None
    owner_fd = _watch_owner(p.get("owner"))
    orphaned = False
    while streams or status is None:
        watch = list(streams) + ([pidfd] if status is None else []) + ([owner_fd] if owner_fd is not None else [])
        wait_for: float | None = None if status is None else 2.0
        if prober is not None and status is None:
            watch += prober.fds()
            wait_for = prober.timeout()
        if term is not None:
            watch += term.inputs()
        ready, writable, _ = select.select(watch, term.outputs() if term is not None else [], [], wait_for)
        if term is not None:
            ready = term.serve(ready, writable)
        if not ready and status is not None:
            break  # pid 1 is gone and the pipes stay open: a leaked descriptor, stop waiting
        if prober is not None and status is None:
            prober.tick()
        for fd in ready:
            if prober is not None and prober.ready(fd):
                continue
            if fd == owner_fd:  # the build that ran this step is gone: nobody will commit it
                orphaned = True
                os.close(owner_fd)
                owner_fd = None
                try:
                    cg.kill(signal.SIGKILL)
                except Exception:
                    pass
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                continue
            if fd == pidfd:
                status = os.waitpid(pid, 0)[1]
                if prober is not None:
                    prober.stop()
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if data:
                log.feed(streams[fd], data)
            else:
                log.flush(streams[fd])
                os.close(fd)
                del streams[fd]
                if term is not None and fd == term.master:
                    term.master, term.pending = None, b""
    for name in streams.values():
        log.flush(name)
    if term is not None:
        term.close()
    os.close(log.fd)  # a restart opens them anew
    os.close(pidfd)
    if held_stdin is not None:
        os.close(held_stdin)
    assert status is not None
    code = _exit_code(status)
    oom = False
    try:
        oom = cg.oom_killed()
    except Exception:
        pass
    attrs: dict[str, str] | None = None
    with contextlib.suppress(OSError, ValueError):
        attrs = events.container_attrs(read_state(cdir))
    if attrs is not None:
        events.record(cdir.parent.parent, "container", "die", cdir.name, {**attrs, "exitCode": code})
    _bury(cdir, code)  # first: a waiter may find the directory gone any moment from here
    _release_cgroup(cg)
    _detach_networks(p)
    for sock in held_ports:
        sock.close()
    remove = bool(p.get("auto_remove")) or orphaned or (owner_fd is not None and _owner_gone(owner_fd))
    again = False
    name_link: str | None = p.get("name_link")
    if not remove:
        # under the lock a ``rm -f`` takes: either it asked us to remove (we do) or it sees
        # "exited" and removes the directory itself
        try:
            with locked(cdir):
                st = read_state(cdir)
                remove = bool(st.get("remove_requested"))
                # renamed since: the link to free is its name's now
                name_link = str(Path(p["name_link"]).with_name(st["name"])) if p.get("name_link") else None
                if not remove:
                    again = restart_wanted(st, code)
                    st.update({"status": "restarting" if again else "exited", "exit_code": code, "oom_killed": oom,
                               "finished_at": now_iso(), "pid": 0, "paused": False})
                    write_state(cdir, st)
        except (OSError, ValueError):
            # removed under us, or its state broken meanwhile (ps -a shows it dead): rm -f removes it
            _send(status_fd, {"exited": code, "oom": oom})
            return False
    if remove:
        if p.get("volumes") and p.get("auto_remove"):
            _remove_volumes(p)  # first: docker run --rm returns once the container is gone
        remove_container_dir(cdir, name_link)
        if attrs is not None:
            events.record(cdir.parent.parent, "container", "destroy", cdir.name, attrs)
    _send(status_fd, {"exited": code, "oom": oom})
    return again


def _console_pair() -> tuple[int, int]:
    import socket  # lazy: start latency (only containers with a tty)

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return ours.detach(), theirs.detach()


#: the FIFO in a tty container's directory that takes window sizes, ``"<height> <width>\n"``
#: (conmon's ctl FIFO): written by ``resize``, read by the monitor, which holds the pty's master
WINSIZE_FIFO = "winsize"
STDIN_FIFO = "stdin"
"""A running tty container's input FIFO: what a later ``docker attach`` types goes to its pty."""


def has_terminal(cdir: Path) -> bool:
    """Whether the container's process runs on a pty (its bundle's ``process.terminal``: Tty)."""
    try:
        return bool(json.loads((cdir / "config.json").read_bytes())["process"].get("terminal"))
    except (OSError, ValueError, KeyError, TypeError):
        return False


def use_terminal(cdir: Path) -> None:
    """Give a created container a pty (``process.terminal`` in its bundle), as ``Tty: true`` asks.

    Until :class:`ContainerSpec` carries ``tty`` itself (issue 16), its creators (the daemon,
    ``pods run -t``) set it here, before the first start.
    """
    path = cdir / "config.json"
    config = json.loads(path.read_bytes())
    config["process"]["terminal"] = True
    tmp = path.with_name(".config.json.tmp")
    tmp.write_text(json.dumps(config, separators=(",", ":")))
    os.replace(tmp, path)


def terminal_input(cdir: Path) -> int | None:
    """A write end into a running tty container's pty (its monitor's STDIN_FIFO), for a client
    that attaches with stdin while it runs; None when no monitor listens."""
    try:
        return os.open(cdir / STDIN_FIFO, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # ENXIO: no reader; ENOENT: never ran with a tty
        return None


def resize_terminal(cdir: Path, height: int, width: int) -> bool:
    """Ask a running tty container's monitor to set its pty's window size; False when no monitor
    listens (not running, or no tty)."""
    try:
        fd = os.open(cdir / WINSIZE_FIFO, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # ENXIO: no reader; ENOENT: never ran with a tty
        return False
    try:
        os.write(fd, f"{height} {width}\n".encode())
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


class _Terminal:
    """The monitor's side of a tty container (issue 16): the pty's master (read as the log's one
    stream), attached stdin written into it without ever blocking the monitor, and the window
    size FIFO."""

    def __init__(self, cdir: Path, sock: int, stdin_fd: int | None) -> None:
        import socket  # lazy: start latency (only containers with a tty)

        self.master: int | None = None
        with socket.socket(fileno=sock) as s:
            try:
                _, got, _, _ = socket.recv_fds(s, 1, 1)
                self.master = got[0] if got else None
            except OSError:
                pass
        if self.master is not None:
            os.set_blocking(self.master, False)
        self.stdin = stdin_fd if self.master is not None else None
        if stdin_fd is not None and self.stdin is None:
            os.close(stdin_fd)
        self.pending = b""  # stdin read but not yet taken by the pty
        self.fifo: int | None = None
        if self.master is not None:
            path = cdir / WINSIZE_FIFO
            try:
                os.mkfifo(path, 0o600)
            except FileExistsError:
                pass
            try:  # read-write: never an end-of-file when a writer closes
                self.fifo = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError:
                self.fifo = None
        self.typed: int | None = None  # STDIN_FIFO: input of clients that attach while it runs
        if self.master is not None:
            with contextlib.suppress(FileExistsError):
                os.mkfifo(cdir / STDIN_FIFO, 0o600)
            with contextlib.suppress(OSError):
                self.typed = os.open(cdir / STDIN_FIFO, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)

    def inputs(self) -> list[int]:
        readers = (self.stdin, self.typed) if not self.pending else ()
        return [fd for fd in (*readers, self.fifo) if fd is not None]

    def outputs(self) -> list[int]:
        return [self.master] if self.pending and self.master is not None else []

    def serve(self, ready: list[int], writable: list[int]) -> list[int]:
        """Handle what is ours among the ready fds; return the others."""
        ours = (self.stdin, self.fifo, self.typed)
        if self.typed is not None and self.typed in ready:
            with contextlib.suppress(OSError):
                self.pending += os.read(self.typed, 65536)
                writable = [*writable, *self.outputs()]
        if self.stdin is not None and self.stdin in ready:
            try:
                data = os.read(self.stdin, 65536)
            except OSError:
                data = b""
            if data:
                self.pending += data
                writable = [*writable, *self.outputs()]
            else:  # the client closed its stdin: the terminal stays (docker's tty keeps it too)
                os.close(self.stdin)
                self.stdin = None
        if self.pending and self.master is not None and self.master in writable:
            try:
                n = os.write(self.master, self.pending)
                self.pending = self.pending[n:]
            except BlockingIOError:
                pass
            except OSError:
                self.pending = b""
        if self.fifo is not None and self.fifo in ready:
            self._resize()
        return [fd for fd in ready if fd not in ours]

    def _resize(self) -> None:
        assert self.fifo is not None
        try:
            data = os.read(self.fifo, 4096)
        except OSError:
            return
        for line in data.decode(errors="replace").splitlines():
            try:
                height, width = (int(n) for n in line.split())
            except ValueError:
                continue
            if self.master is not None:
                try:
                    linux.set_winsize(self.master, height, width)
                except OSError:
                    pass

    def close(self) -> None:
        for fd in (self.stdin, self.fifo, self.typed):
            if fd is not None:
                os.close(fd)
        self.stdin = self.fifo = self.typed = None


def _watch_owner(owner: str | None) -> int | None:
    """A pidfd on the process a lease names (readable once it ends); a lease whose process is
    already gone gives a descriptor that is readable at once (an ended pipe)."""
    if not owner:
        return None
    from pytest_pods.engine.locks import lease_alive  # lazy: start latency (only build steps have owners)

    m = owner.removeprefix("p").split("-")
    fd: int | None = None
    try:
        fd = os.pidfd_open(int(m[0]))
    except (OSError, ValueError, IndexError):
        fd = None
    if fd is not None and lease_alive(owner):  # opened, and still the same process: watch it
        return fd
    if fd is not None:
        os.close(fd)
    r, w = os.pipe()  # gone already: readable at once
    os.close(w)
    return r


def _owner_gone(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def _fork_pid1(cdir: Path, status_fd: int, cg: Cgroup) -> int:
    """Fork the container's pid 1 into a new pid namespace; 0 in the child, as ``fork``.

    Later forks of ours must stay in our namespace: after pid 1 dies no fork into its namespace can
    succeed (ENOMEM), and a helper we run (iptables) must not show up inside the container. As
    root we go back with setns. In a user namespace that setns is refused (our pid namespace
    belongs to the host's user namespace): an intermediate child unshares instead, forks pid 1
    and exits, and pid 1 comes back to us as our child because we are its subreaper.
    """
    if not rootless.inside():
        host_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        linux.unshare(linux.CLONE_NEWPID)  # our next child is pid 1 of a new pid namespace
        pid = os.fork()
        if pid != 0:
            linux.setns(host_pidns, linux.CLONE_NEWPID)
            os.close(host_pidns)
        return pid
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    pid_r, pid_w = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(pid_r)
        try:
            linux.unshare(linux.CLONE_NEWPID)
            pid = os.fork()
            if pid == 0:
                os.close(pid_w)
                return 0
            os.write(pid_w, str(pid).encode())
        except BaseException:
            pass
        os._exit(0)
    os.close(pid_w)
    raw = b""
    while chunk := os.read(pid_r, 32):
        raw += chunk
    os.close(pid_r)
    os.waitpid(middle, 0)
    if not raw:
        _fail_start(cdir, status_fd, f"start container {cdir.name[:12]}: cannot make its pid namespace", 125, cg)
    return int(raw)


def _attach_networks(p: MonitorJob, pid: int, ports: list[PortRecord]) -> dict[str, EndpointRecord]:
    """Interfaces, addresses and port rules for each network the container is on."""
    if not p.get("networks"):
        return {}
    from pytest_pods.engine.network.networks import Networks  # lazy: start latency (--network none)
    from pytest_pods.engine.network.ports import PortBinding, publish  # lazy: start latency (as above)

    nets = Networks(Path(p["root"]))
    start = linux.process_start_time(pid)
    endpoints: dict[str, EndpointRecord] = {}
    for i, n in enumerate(p["networks"]):
        ep = nets.attach(n["name"], cid=p["id"], name=p["name"], aliases=n.get("aliases", []), pid=pid,
                         pid_start=start, hosts_path=p["hosts"], hostname=p["hostname"], ifname=f"eth{i}",
                         default_route=i == 0, endpoint_config=n.get("endpoint_config"))
        endpoints[n["name"]] = ep
    if ports:
        first = next(iter(endpoints.values()))
        # deleted line by line at exit: one exec instead of three
        p["added_rules"] = publish(p["id"], first["ip"], [PortBinding.from_record(r) for r in ports])
    return endpoints


def _detach_networks(p: MonitorJob) -> None:
    """Release addresses, endpoints and rules; never raises (the reaper retries what is left)."""
    try:
        st = read_state(Path(p["dir"]))
        names = list(st.get("endpoints") or {}) or [n["name"] for n in p.get("networks", [])]
    except (OSError, ValueError):
        names = [n["name"] for n in p.get("networks", [])]
    if not names and not p.get("ports"):
        return
    try:
        from pytest_pods.engine.network.networks import Networks  # lazy: start latency (--network none)
        from pytest_pods.engine.network.ports import unpublish  # lazy: start latency (as above)

        nets = Networks(Path(p["root"]))
        for name in names:
            nets.detach(name, p["id"], port_rules=False)  # the veth too: a lingering socket keeps the netns
        if p.get("ports"):
            unpublish(p["id"], p.get("added_rules"))
    except Exception:
        _debug_log()


def _debug_log() -> None:
    """Best-effort steps log what they swallow when PODS_DEBUG_LOG names a file."""
    path = os.environ.get("PODS_DEBUG_LOG")
    if path:
        import traceback  # lazy: only with PODS_DEBUG_LOG

        with open(path, "a") as f:
            traceback.print_exc(file=f)


def _bury(cdir: Path, code: int) -> None:
    """Leave the exit code beside the containers, for a ``wait`` that outlives the container."""
    try:
        exits = cdir.parent / ".exits"
        exits.mkdir(exist_ok=True)
        (exits / cdir.name).write_text(str(code))
    except OSError:
        pass


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        data = os.read(fd, 65536)
        if not data:
            break
        chunks.append(data)
    os.close(fd)
    return b"".join(chunks)


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _release_cgroup(cg: Cgroup) -> None:
    try:
        cg.destroy()
    except Exception:
        pass  # the reaper retries what is left


def _fail_start(cdir: Path, status_fd: int, message: str, code: int, cg: Cgroup | None) -> NoReturn:
    if cg is not None:
        _release_cgroup(cg)

    def failed(s: ContainerState) -> None:
        s.update({"status": "created" if code == 125 else "exited", "error": message, "exit_code": code, "pid": 0})

    try:
        update_state(cdir, failed)
    except OSError:
        pass
    _send(status_fd, {"error": message, "code": code})
    os._exit(0)


def _remove_volumes(p: MonitorJob) -> None:
    """``--rm``: the container's anonymous volumes go with it, as ``rm -v`` removes them."""
    from pytest_pods.engine.runtime.volumes import remove_anonymous  # lazy: only --rm containers with volumes

    try:
        remove_anonymous(Path(p["root"]), p.get("volumes", []), leaving=p["id"])
    except Exception:
        pass  # a volume left behind is not worth a lost exit status (volume prune removes it)


def remove_container_dir(cdir: Path, name_link: str | None) -> None:
    """Delete a container's directory and its name link; the name link goes last but is freed."""
    if name_link:
        try:
            if os.readlink(name_link) == cdir.name:
                os.unlink(name_link)
        except OSError:
            pass
    tmp = cdir.with_name(f".removing-{cdir.name}")
    try:
        os.rename(cdir, tmp)
    except OSError:
        tmp = cdir
    remove_tree(tmp)


def exec_main(p: ExecJob, fds: list[int]) -> NoReturn:
    """Run a process in a running container; report ``{"exited": code}`` or an error on fds[0]."""
    status_fd, stdio = fds[0], (fds[1], fds[2], fds[3])
    err_r, err_w = os.pipe()
    cg = open_cgroup(p["id"], Limits(), parent=p["cgroup_parent"])
    child = os.fork()
    if child == 0:
        os.close(err_r)
        os.close(status_fd)
        init.enter_and_exec(int(p["pid"]), cg.self_join_files(), p["process"], err_w, stdio)
    os.close(err_w)
    for fd in stdio:
        os.close(fd)
    failure = _read_all(err_r)
    _, st = os.waitpid(child, 0)
    if failure:
        try:
            msg = json.loads(failure)
        except ValueError:
            msg = {"error": failure.decode(errors="replace"), "code": 126}
        _send(status_fd, {"error": msg["error"], "code": int(msg.get("code", 126))})
    else:
        _send(status_fd, {"exited": _exit_code(st)})
    os._exit(0)
