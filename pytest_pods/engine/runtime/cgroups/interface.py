"""What cgroup v1 and v2 share: the :class:`Cgroup` interface, :class:`Limits`, :class:`CgroupStats`,
the host's cgroup mounts and version, and the cgroupfs file and directory helpers.

Layout, as Docker's ``cgroupfs`` driver does it: every group is ``<root>/<parent>/<name>`` (v2) or
``<mount>/<parent>/<name>`` in each v1 hierarchy, and ``oci_path()`` is the matching OCI
``cgroupsPath``.
"""

from __future__ import annotations

import functools
import math
import os
import re
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple, Protocol

from pytest_pods.errors import CgroupBusyError, CgroupError

DEFAULT_ROOT = "/sys/fs/cgroup"
DEFAULT_PARENT = "pytest-pods"
CPU_PERIOD_US = 100_000
"""The CFS period Docker uses for ``--cpus``: quota = cpus * period."""

V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct", "freezer", "devices")
"""v1 hierarchies a group is created in; freezer makes ``kill`` safe against fork bombs, devices
keeps a container off the host's device nodes (issue 14, ``devices.py``)."""
V2_CONTROLLERS = ("memory", "pids", "cpu")

# A v1 limit file reads PAGE_COUNTER_MAX * PAGE_SIZE (0x7ffffffffffff000 on 4k pages) when
# unlimited; no real limit comes near 2**62.
V1_UNLIMITED = 1 << 62
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
FIX_HINT = "Fix this and try again."


class Limits(NamedTuple):
    """Resource limits, spelled and defaulted as ``docker run`` flags are.

    ``None`` leaves the kernel's default. ``memory_swap`` is memory plus swap (``--memory-swap``):
    ``None`` (or 0) means twice ``memory`` when ``memory`` is set, ``-1`` unlimited swap.
    ``pids`` of 0 or -1 means unlimited, as ``--pids-limit`` does; ``cpus`` of 0 means no quota.
    """

    memory: int | None = None
    memory_swap: int | None = None
    pids: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None

    def check(self) -> None:
        """Reject what Docker's client rejects, before anything is created.

        :raises CgroupError: naming the field and its value.
        """
        if self.memory is not None and self.memory <= 0:
            raise CgroupError(f"check limits: memory {self.memory} is not a positive byte count. {FIX_HINT}")
        swap = self.memory_swap
        if swap is not None and swap not in (0, -1):
            if self.memory is None:
                raise CgroupError(f"check limits: memory_swap {swap} needs memory to be set too. {FIX_HINT}")
            if swap < self.memory:
                raise CgroupError(
                    f"check limits: memory_swap {swap} is below memory {self.memory}; it counts memory plus"
                    f" swap. {FIX_HINT}"
                )
        if self.pids is not None and self.pids < -1:
            raise CgroupError(f"check limits: pids {self.pids} is below -1 (unlimited). {FIX_HINT}")
        if self.cpus is not None and not (self.cpus >= 0 and math.isfinite(self.cpus)):
            raise CgroupError(f"check limits: cpus {self.cpus} is not a non-negative number. {FIX_HINT}")
        if self.cpu_shares is not None and self.cpu_shares <= 0:
            raise CgroupError(f"check limits: cpu_shares {self.cpu_shares} is not positive. {FIX_HINT}")

    def memsw(self) -> int | None:
        """Memory plus swap in bytes as Docker applies it: -1 for unlimited, None to leave alone."""
        if self.memory is None:
            return None
        if self.memory_swap in (None, 0):
            return 2 * self.memory
        return self.memory_swap

    def needs(self) -> set[str]:
        """The controllers these limits are written to."""
        wanted: set[str] = set()
        if self.memory is not None:
            wanted.add("memory")
        if self.pids is not None:
            wanted.add("pids")
        if self.cpus is not None or self.cpu_shares is not None:
            wanted.add("cpu")
        return wanted


class CgroupStats(NamedTuple):
    """A snapshot of a group's accounting; ``None`` where unlimited or not reported by the kernel."""

    memory_usage: int
    memory_limit: int | None
    memory_max_usage: int | None
    pids_current: int
    pids_limit: int | None
    cpu_usage_ns: int


class Cgroup(Protocol):
    """A container's control group, the same to callers on cgroup v1 and v2."""

    name: str

    @property
    def paths(self) -> list[str]:
        """The group's directories (one on v2, one per hierarchy on v1), e.g. to join from a child."""
        ...

    def create(self) -> None:
        """Make the group and write its limits; on failure nothing of it is left."""
        ...

    def add(self, pid: int) -> None:
        """Move ``pid`` into the group in every hierarchy."""
        ...

    def self_join_files(self) -> list[tuple[str, str]]:
        """(file, value) writes by which a single-threaded process moves *itself* into the group."""
        ...

    def procs(self) -> list[int]:
        """The processes in the group and its descendant groups."""
        ...

    def stats(self) -> CgroupStats: ...

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer has killed a process of the group."""
        ...

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to every process in the group."""
        ...

    def set_limits(self, limits: Limits) -> None:
        """Write ``limits`` to the group while it runs (``docker update``)."""
        ...

    def freeze(self) -> None:
        """Stop every process of the group where it is (for a consistent snapshot)."""
        ...

    def thaw(self) -> None:
        """Let a frozen group run again."""
        ...

    def destroy(self, timeout: float = 5.0) -> None:
        """Kill what is left, wait for it to go, remove the group; safe to call twice."""
        ...

    def oci_path(self) -> str:
        """The ``linux.cgroupsPath`` of an OCI ``config.json`` for this group."""
        ...


# --------------------------------------------------------------------------- files and directories


def check_name(name: str, what: str = "name") -> str:
    """Refuse names that could step outside the parent group (``/``, ``..``)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name in (".", ".."):
        raise CgroupError(
            f"open cgroup {name!r}: invalid {what}; use letters, digits, '_', '.', '-' and no '/'. {FIX_HINT}"
        )
    return name


def check_parent(parent: str) -> str:
    """A parent may be nested (``pytest-pods/session``) but never absolute or with ``..``."""
    parts = parent.split("/")
    for part in parts:
        check_name(part, "parent")
    return parent


def read_file(path: str) -> str:
    with open(path, encoding="ascii") as f:
        return f.read()


def write_file(path: str, value: str, op: str) -> None:
    """One ``write(2)`` per value, as the kernel parses each write on its own.

    :raises CgroupError: naming the file, the value and the kernel's reason.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise CgroupError(f"{op}: write {value!r} to {path}: {exc.strerror or exc}") from exc


def read_int(path: str, default: int | None = None) -> int | None:
    """An integer file; ``max`` reads as None; a missing file as ``default``."""
    try:
        text = read_file(path).strip()
    except FileNotFoundError:
        return default
    if text in ("max", ""):
        return None
    return int(text)


def read_keyed(path: str) -> dict[str, int]:
    """Parse ``key value`` lines (memory.events, cpu.stat, memory.oom_control, cgroup.events)."""
    out: dict[str, int] = {}
    for line in read_file(path).splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def _rmdir(path: str) -> None:
    """Remove one cgroup directory; a seam so tests can stand in a plain directory for cgroupfs."""
    os.rmdir(path)


def remove_dir(path: str) -> None:
    """rmdir one group directory (through the ``_rmdir`` seam, looked up at each call)."""
    _rmdir(path)


def tree(path: str) -> list[str]:
    """``path`` and its descendant directories, deepest first (the order rmdir needs)."""
    dirs: list[str] = []
    for top, _subdirs, _files in os.walk(path, topdown=False):
        dirs.append(top)
    return dirs


def procs_in(dirs: Iterable[str]) -> set[int]:
    """Union of ``cgroup.procs`` over ``dirs`` and their descendants; gone dirs count as empty."""
    pids: set[int] = set()
    for top in dirs:
        for d in tree(top):
            try:
                text = read_file(os.path.join(d, "cgroup.procs"))
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise CgroupError(f"read {d}/cgroup.procs: {exc.strerror or exc}") from exc
            pids.update(int(p) for p in text.split())
    return pids


def signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def sleeps(deadline: float) -> Iterator[None]:
    """Yield until ``deadline``, sleeping 1 ms at first and up to 50 ms between polls."""
    delay = 0.001
    while True:
        yield
        now = time.monotonic()
        if now >= deadline:
            return
        time.sleep(min(delay, deadline - now))
        delay = min(delay * 2, 0.05)


# --------------------------------------------------------------------------- the host's mounts and version


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as ``\\ooo``."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


class _Mount(NamedTuple):
    mountpoint: str
    fstype: str
    super_options: tuple[str, ...]


def _mounts(text: str | None = None) -> list[_Mount]:
    """Parse ``/proc/self/mountinfo`` (proc(5)): fields, ``-``, fstype, source, super options."""
    if text is None:
        text = read_file("/proc/self/mountinfo")
    mounts: list[_Mount] = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if not sep or len(fields) < 5 or len(rest) < 3:
            continue
        mounts.append(_Mount(_unescape(fields[4]), rest[0], tuple(rest[2].split(","))))
    return mounts


def v1_hierarchies(root: str = DEFAULT_ROOT, mountinfo: str | None = None) -> dict[str, str]:
    """Map each v1 controller we use to its mount point under ``root``.

    Read from mountinfo rather than guessed from directory names, because hosts differ: ``cpu`` and
    ``cpuacct`` are separate mounts here and one ``cpu,cpuacct`` mount elsewhere.
    """
    if mountinfo is None:
        return dict(_host_v1_hierarchies(root))
    return _v1_hierarchies(root, mountinfo)


@functools.cache
def _host_v1_hierarchies(root: str) -> tuple[tuple[str, str], ...]:
    """The host's cgroup mounts, read once per process: every container start asks for them."""
    return tuple(_v1_hierarchies(root, None).items())


def _v1_hierarchies(root: str, mountinfo: str | None) -> dict[str, str]:
    root = root.rstrip("/") or "/"
    found: dict[str, str] = {}
    for m in _mounts(mountinfo):
        if m.fstype != "cgroup" or not (m.mountpoint == root or m.mountpoint.startswith(root + "/")):
            continue
        for ctrl in V1_CONTROLLERS:
            if ctrl in m.super_options:
                found.setdefault(ctrl, m.mountpoint)
    return found


@functools.cache
def cgroup_version(root: str = DEFAULT_ROOT) -> int:
    """2 when ``root`` itself is a cgroup2 mount, else 1; detected once per root.

    A hybrid host has cgroup2 only at ``root/unified``, which does not make it v2. A ``root`` that
    is not a mount point at all (a test's stand-in tree) is v2 when it has ``cgroup.controllers``.
    """
    root = root.rstrip("/") or "/"
    at_root = [m for m in _mounts() if m.mountpoint == root]
    if at_root:
        return 2 if at_root[-1].fstype == "cgroup2" else 1
    return 2 if os.path.exists(os.path.join(root, "cgroup.controllers")) else 1


# --------------------------------------------------------------------------- shared teardown


class _Killable(Protocol):
    name: str

    def kill(self, sig: int = signal.SIGKILL) -> None: ...


def destroy_group(
    group: _Killable, dirs: list[str], timeout: float, populated: Callable[[], bool] | None = None
) -> None:
    """Kill, wait until empty, then rmdir every directory bottom-up, collecting each failure.

    A directory already gone is not an error (the "already gone" errno, as pyroute2 ignores). When
    processes outlive ``timeout`` the directories are kept: rmdir of a populated group can only
    fail with EBUSY, and a later destroy (or the reaper) can finish the job.
    """
    errors: list[Exception] = []
    live = [d for d in dirs if os.path.isdir(d)]
    if live:
        deadline = time.monotonic() + timeout
        left: set[int] = set()
        for _ in sleeps(deadline):
            try:
                left = procs_in(live)
                busy = bool(left) or (populated is not None and populated())
                if not busy:
                    break
                group.kill(signal.SIGKILL)
            except CgroupError as exc:
                errors.append(exc)
                break
        else:
            raise CgroupBusyError(
                f"destroy cgroup {group.name}: {len(left)} process(es) still in it after {timeout}s:"
                f" {sorted(left)[:10]}. Processes stuck in the kernel (state D) delay this; try again."
            )
    for top in live:
        for d in tree(top):
            try:
                _rmdir(d)
            except FileNotFoundError:
                pass
            except OSError as exc:
                errors.append(CgroupError(f"destroy cgroup {group.name}: rmdir {d}: {exc.strerror or exc}"))
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ExceptionGroup(f"destroy cgroup {group.name}", errors)


# --------------------------------------------------------------------------- parents, whatever the version


def remove_stale_parents(*, root: str = DEFAULT_ROOT, prefix: str = DEFAULT_PARENT + "-") -> None:
    """rmdir every empty ``pytest-pods-*`` parent, whatever root made it: a root deleted without
    a reap leaves one that no root's reaper would otherwise ever own again. Creates retry when
    this races them (see ``V1Cgroup.create``)."""
    tops = [root] if cgroup_version(root) == 2 else [os.path.join(root, d) for d in sorted(os.listdir(root))]
    for top in tops:
        try:
            names = [n for n in os.listdir(top) if n.startswith(prefix)]
        except OSError:
            continue
        for n in names:
            try:
                os.rmdir(os.path.join(top, n))
            except OSError:
                continue  # in use


def remove_empty_parents(*, root: str = DEFAULT_ROOT, parent: str = DEFAULT_PARENT) -> None:
    """rmdir the ``parent`` group in every hierarchy where no container group is left.

    Called by the reaper and at session end, not on every removal: a concurrent create could
    otherwise find its parent gone between its mkdirs.
    """
    check_parent(parent)
    if cgroup_version(root) == 2:
        tops = [os.path.join(root, parent)]
    else:
        # every hierarchy, not only ours: runc running one of our bundles makes the parent in all
        tops = [os.path.join(root, d, parent) for d in sorted(os.listdir(root))]
    for top in tops:
        try:
            os.rmdir(top)
        except OSError:
            continue  # busy (a container group below) or already gone
