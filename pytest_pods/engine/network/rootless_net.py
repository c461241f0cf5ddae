"""Rootless networking: the rootless netns, the outbound helper (pasta or slirp4netns), port forwarders.

An ordinary user's engine keeps every bridge, host-side veth, address, route and iptables rule in
one network namespace per engine root: the holder's (``rootless.holder(root).ns_path("net")``,
podman's "rootless netns"). The host's namespace never gets any of them. A process that has joined
the engine's user namespace is allowed into that netns (its user namespace owns it) but not back
into the host's, so it never enters with its own thread: :func:`run_in_netns` runs one call in a
throwaway thread that enters and ends, and what it made (a netlink socket, an ``iptables-restore``
child) acts in the rootless netns from then on.

Outbound: ``pasta`` (Debian's ``passt``; podman 5's default, and faster than slirp4netns: it
splices TCP streams through host sockets rather than running a user-space TCP/IP stack per
packet), ``slirp4netns`` when pasta is missing. Either makes a tap device in the rootless netns with
the host's address and default route, and the bridges' outbound traffic is masqueraded onto it
(the network's usual NAT rule, in the rootless netns). With pasta the gateway address reaches the
host's loopback (``--map-gw``, its default). One helper per root, started with the first bridge,
recorded as ``network-helper`` and ended by ``rootless.release``.

Published ports: no DNAT can reach from the host's namespace into ours, so each container with
ports gets a *forwarder* (like podman's rootlessport): a process forked from the container's
monitor that inherits the host sockets the monitor bound (``ports.reserve``), enters the rootless
netns and relays each TCP connection (splice, no copy through Python) and each UDP datagram to the
container's address. It dies with the monitor (``PR_SET_PDEATHSIG``), and is recorded as
``forwarder-<cid12>`` so that a release ends it too.

The rootless module itself is imported only when the rootless engine runs (its import costs the
root engine's start path ~15 ms): :func:`active` answers the same question without it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pytest_pods.engine import linux
from pytest_pods.engine.locks import FileLock
from pytest_pods.errors import NetworkError

if TYPE_CHECKING:
    import socket

T = TypeVar("T")
HELPER = "network-helper"  # RUN_DIR/network-helper.pid
HELPER_ENV = "PODS_NETWORK_HELPER"  # pasta | slirp4netns | none: this one rather than the first found
TUN = "/dev/net/tun"
_IDENTITY = [["0", "0", "4294967295"]]
_root: list[Path] = []  # the root this process networks for (see remember)


def active() -> bool:
    """``rootless.active()`` without importing it: euid is not 0, or this process is in a user
    namespace other than the initial one."""
    if os.geteuid() != 0:
        return True
    try:
        with open("/proc/self/uid_map") as f:
            rows = [line.split() for line in f.read().splitlines() if line.strip()]
    except OSError:
        return False
    return rows != _IDENTITY


def remember(root: Path) -> None:
    """Note the root this process networks for (``Networks`` does): ``ports.publish`` and
    ``unpublish`` keep their root-less signatures and find the rootless netns through it."""
    if not _root or _root[0] != root:
        _root[:] = [root]


def remembered() -> Path | None:
    return _root[0] if _root else None


# -- the rootless netns --------------------------------------------------------------------
def netns_path(root: Path, *, start: bool) -> str | None:
    """``/proc/PID/ns/net`` of the root's holder; with ``start`` the holder is made if it is not
    running (which needs a process outside the user namespace), else None when none runs."""
    from pytest_pods.engine import rootless  # lazy: ~15 ms to import, and only the rootless engine needs it

    found = rootless.holder(root) if start else rootless.current(root)
    return found.ns_path("net") if found is not None else None


def run_in_netns(netns: int | str, fn: Callable[[], T]) -> T:
    """Call ``fn`` in a throwaway thread that entered network namespace ``netns`` (an open fd or a
    path): the calling thread stays where it is (it could not come back to the host's namespace
    from inside a user namespace). Sockets ``fn`` makes stay in ``netns``; children it forks start
    there."""
    import _thread  # lazy: cheap, but only namespaced calls need it (threading costs more)

    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC) if isinstance(netns, str) else netns
    done = _thread.allocate_lock()
    done.acquire()
    box: list[tuple[bool, object]] = []

    def body() -> None:
        try:
            linux.setns(fd, linux.CLONE_NEWNET)
            box.append((True, fn()))
        except BaseException as exc:  # handed to the caller
            box.append((False, exc))
        finally:
            done.release()

    try:
        _thread.start_new_thread(body, ())
        done.acquire()
    finally:
        if isinstance(netns, str):
            os.close(fd)
    ok, value = box[0]
    if not ok:
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[return-value]  # fn's result, boxed


def set_sysctl(netns: str, key: str, value: str) -> None:
    """Write ``/proc/sys/<key>`` as seen from ``netns`` (net.* sysctls are per namespace)."""
    def write() -> None:
        path = f"/proc/sys/{key.replace('.', '/')}"
        with open(path) as f:
            if f.read().strip() == value:
                return
        with open(path, "w") as f:
            f.write(value)

    run_in_netns(netns, write)


# -- outbound: the network helper ----------------------------------------------------------
def helper_name() -> str:
    """The outbound helper this machine gives rootless containers: ``pasta``, ``slirp4netns``
    or ``none`` (neither installed, or ``/dev/net/tun`` not usable by the user);
    ``$PODS_NETWORK_HELPER`` picks one of them."""
    import shutil  # lazy: only pods info and the first rootless network ask

    want = os.environ.get(HELPER_ENV, "")
    if want == "none" or not os.access(TUN, os.R_OK | os.W_OK):
        return "none"
    for name in ("pasta", "slirp4netns"):
        if want and want != name:
            continue
        if shutil.which(name):
            return name
    return "none"


def helper_note() -> str | None:
    """Why rootless containers have no outbound access here, with the fix; None when they have."""
    if helper_name() != "none":
        return None
    if os.environ.get(HELPER_ENV, "") == "none":
        return f"rootless containers have no outbound network: {HELPER_ENV}=none"
    if not os.access(TUN, os.R_OK | os.W_OK):
        return (f"rootless containers have no outbound network: {TUN} is not readable and writable by this user "
                f"(Debian makes it 0666; as root: chmod 0666 {TUN})")
    return "rootless containers have no outbound network: install Debian's passt package (apt-get install passt)"


def _alive(pidfile: Path) -> int | None:
    try:
        pid, start = pidfile.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return int(pid) if linux.process_start_time(int(pid)) == int(start) else None


def ensure_helper(root: Path, netns: str) -> str | None:
    """Start the root's outbound helper, attached to ``netns``, unless it runs already.

    :returns: the helper's name, or None when there is none (outbound traffic then goes nowhere;
        everything else works). A helper that fails to start raises NetworkError.
    """
    from pytest_pods.engine import rootless  # lazy: as in netns_path

    rdir = rootless.run_dir(root)
    with FileLock(str(rdir / f"{HELPER}.lock")):
        if _alive(rdir / f"{HELPER}.pid"):
            return (rdir / f"{HELPER}.name").read_text().strip() if (rdir / f"{HELPER}.name").exists() else None
        name = helper_name()
        if name == "none":
            return None
        fd = os.open(netns, os.O_RDONLY)  # inherited: pasta cannot open /proc/HOLDER/ns/net itself
        try:
            pid = _start_pasta(rdir, fd) if name == "pasta" else _start_slirp(rdir, fd)
        finally:
            os.close(fd)
        rootless.record_helper(root, HELPER, pid)
        (rdir / f"{HELPER}.name").write_text(name + "\n")
        return name


def _start_pasta(rdir: Path, netns_fd: int) -> int:
    import subprocess  # lazy: only when a rootless network is first made

    pidfile = rdir / "pasta.pid.tmp"
    pidfile.unlink(missing_ok=True)
    with open(rdir / "pasta.log", "w+b") as log:
        # --netns by an inherited fd: inside the user namespace pasta's dropped capabilities would
        # not let it open the holder's /proc entry. --runas 0:0: it stays the user (ns uid 0), so a
        # release from outside the namespace may still kill it. -t/-u/-T/-U none: ports are ours.
        done = subprocess.run(
            ["pasta", "--config-net", "--quiet", "--netns", f"/proc/self/fd/{netns_fd}", "--runas", "0:0",
             "-t", "none", "-u", "none", "-T", "none", "-U", "none", "-P", str(pidfile)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(netns_fd,))
        if done.returncode != 0:
            log.seek(0)
            why = " ".join(line for line in log.read().decode(errors="replace").splitlines()
                           if "syslog" not in line)
            raise NetworkError(f"rootless: pasta failed to start ({done.returncode}): {why.strip()}")
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        raise NetworkError("rootless: pasta started but wrote no pid file") from None
    pidfile.unlink(missing_ok=True)
    return pid


def _start_slirp(rdir: Path, netns_fd: int) -> int:
    import subprocess  # lazy: as in _start_pasta

    ready_r, ready_w = os.pipe()
    try:
        with open(rdir / "slirp4netns.log", "w+b") as log:
            proc = subprocess.Popen(
                ["slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback", "--netns-type=path",
                 f"--ready-fd={ready_w}", f"/proc/self/fd/{netns_fd}", "tap0"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(netns_fd, ready_w),
                start_new_session=True)
            os.close(ready_w)
            ready_w = -1
            if os.read(ready_r, 1) != b"1":
                proc.wait()
                log.seek(0)
                raise NetworkError(f"rootless: slirp4netns failed to start: {log.read().decode(errors='replace')}")
    finally:
        os.close(ready_r)
        if ready_w >= 0:
            os.close(ready_w)
    return proc.pid


# -- published ports: the forwarder --------------------------------------------------------
def forwarder_name(cid: str) -> str:
    return f"forwarder-{cid[:12]}"


def forward(root: Path, cid: str, ip: str, listeners: Sequence[tuple[socket.socket, str, int]]) -> int:
    """Fork the container's forwarder: it keeps ``listeners`` (host sockets, already bound, with
    their protocol and container port), enters the rootless netns and relays to ``ip``.

    :returns: its pid (recorded as ``forwarder-<cid12>``).
    """
    netns = netns_path(root, start=False)
    if netns is None:
        raise NetworkError(f"rootless: no namespace holder runs for {root}: cannot publish ports")
    ns_fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _forwarder_main(ns_fd, ip, listeners)
                code = 0
            finally:
                os._exit(code)
    finally:
        os.close(ns_fd)
    from pytest_pods.engine import rootless  # lazy: as in netns_path

    rootless.record_helper(root, forwarder_name(cid), pid)
    return pid


def stop_forwarder(root: Path | None, cid: str, pid: int | None = None) -> None:
    """End a container's forwarder (by ``pid`` when known, else by its record) and drop its record."""
    pidfile = None
    if root is not None:
        from pytest_pods.engine import rootless  # lazy: as in netns_path

        with contextlib.suppress(OSError, Exception):
            pidfile = rootless.run_dir(root) / f"{forwarder_name(cid)}.pid"
            found = _alive(pidfile)
            pid = pid or found
    if pid:
        with contextlib.suppress(OSError):
            os.kill(pid, 9)
        with contextlib.suppress(OSError):  # our child when the monitor ends it
            os.waitpid(pid, 0)
    if pidfile is not None:
        pidfile.unlink(missing_ok=True)


def _forwarder_main(ns_fd: int, ip: str, listeners: Sequence[tuple[socket.socket, str, int]]) -> None:
    """The forwarder process: only the listeners stay open; then the rootless netns and the loop."""
    import select  # lazy: only the forwarder process runs this
    import socket  # lazy: as above
    import threading  # lazy: as above

    linux.prctl(linux.PR_SET_PDEATHSIG, 9)  # the monitor's death ends us
    keep = {ns_fd, *(s.fileno() for s, _p, _c in listeners)}
    for entry in os.listdir("/proc/self/fd"):
        n = int(entry)
        if n > 2 and n not in keep:
            with contextlib.suppress(OSError):
                os.close(n)
    null = os.open("/dev/null", os.O_RDWR)
    for n in (0, 1, 2):
        os.dup2(null, n)
    os.close(null)
    os.setsid()
    if os.getppid() == 1:
        return
    linux.setns(ns_fd, linux.CLONE_NEWNET)  # new sockets are made in the rootless netns
    os.close(ns_fd)

    # a port published on every host address is also reachable at the network's gateway from other
    # containers, as the bridge's address is a host address under Docker: here the gateway lives in
    # the rootless netns, so the same port is listened on there too (best effort: a clash is skipped)
    inner = []
    for s, proto, port in listeners:
        if s.family == socket.AF_INET and s.getsockname()[0] == "0.0.0.0":
            sock_type = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
            t = socket.socket(socket.AF_INET, sock_type, socket.IPPROTO_SCTP if proto == "sctp" else 0)
            try:
                t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                t.bind(("0.0.0.0", s.getsockname()[1]))
                inner.append((t, proto, port))
            except OSError:
                t.close()
    by_fd: dict[int, tuple[socket.socket, str, int]] = {}
    for s, proto, port in [*listeners, *inner]:
        if proto != "udp":
            s.listen(512)
        s.setblocking(False)
        by_fd[s.fileno()] = (s, proto, port)
    udp_peers: dict[tuple[int, tuple[str, int]], socket.socket] = {}

    def relay_stream(client: socket.socket, port: int, proto: int) -> None:
        try:
            up = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
            up.connect((ip, port))
        except OSError:
            client.close()
            return
        for s in (client, up):
            with contextlib.suppress(OSError):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        back = threading.Thread(target=_pump, args=(up, client), daemon=True)
        back.start()
        _pump(client, up)
        back.join()
        client.close()
        up.close()

    def udp_back(upstream: socket.socket, listener: socket.socket, addr: tuple[str, int]) -> None:
        upstream.settimeout(120)
        try:
            while True:
                data = upstream.recv(65535)
                listener.sendto(data, addr)
        except OSError:
            pass
        finally:
            udp_peers.pop((listener.fileno(), addr), None)
            upstream.close()

    while True:
        ready, _, _ = select.select(list(by_fd), [], [])
        for fd in ready:
            s, proto, port = by_fd[fd]
            try:
                if proto == "udp":
                    data, addr = s.recvfrom(65535)
                    up = udp_peers.get((fd, addr))
                    if up is None:
                        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        up.connect((ip, port))
                        udp_peers[(fd, addr)] = up
                        threading.Thread(target=udp_back, args=(up, s, addr), daemon=True).start()
                    up.send(data)
                else:
                    client, _addr = s.accept()
                    client.setblocking(True)
                    kind = socket.IPPROTO_SCTP if proto == "sctp" else 0
                    threading.Thread(target=relay_stream, args=(client, port, kind), daemon=True).start()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                continue


def _pump(src: socket.socket, dst: socket.socket) -> None:
    """Copy one direction until EOF, through a pipe with splice (no copy into Python), or
    recv/send where splice does not apply; then half-close ``dst``."""
    import socket  # lazy: only the forwarder process runs this

    try:
        r, w = os.pipe()
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            import fcntl  # lazy: as above

            fcntl.fcntl(w, 1031, 1 << 20)  # F_SETPIPE_SZ: fewer round trips
        try:
            while True:
                n = os.splice(src.fileno(), w, 1 << 20)
                if n == 0:
                    break
                while n:
                    n -= os.splice(r, dst.fileno(), n)
        except OSError as exc:
            if exc.errno != 22:  # EINVAL: no splice for this socket type
                raise
            while data := src.recv(1 << 16):
                dst.sendall(data)
    except OSError:
        pass
    finally:
        os.close(r)
        os.close(w)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
