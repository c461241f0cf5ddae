"""Control groups for containers: one interface, a cgroup v1 and a cgroup v2 implementation.

The version is detected at run time (:func:`cgroup_version`) because users run pure v2 while some
hosts, CI machines among them, still run a v1 hybrid. Limits follow ``docker run`` flags and their
defaults, so that a container limited here behaves as it would under Docker.

Layout, as Docker's ``cgroupfs`` driver does it: every group is ``<root>/<parent>/<name>`` (v2) or
``<mount>/<parent>/<name>`` in each v1 hierarchy, and ``oci_path()`` is the matching OCI
``cgroupsPath``. The reaper finds leftovers with :func:`list_cgroups`.
"""

from __future__ import annotations

import errno
import functools
import math
import os
import re
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple, Protocol

from pytest_pods.errors import CgroupBusyError, CgroupError

__all__ = [
    "CPU_PERIOD_US",
    "Cgroup",
    "CgroupBusyError",
    "CgroupStats",
    "Limits",
    "V1Cgroup",
    "V2Cgroup",
    "available",
    "cgroup_version",
    "list_cgroups",
    "open_cgroup",
    "shares_to_weight",
]

DEFAULT_ROOT = "/sys/fs/cgroup"
DEFAULT_PARENT = "pytest-pods"
CPU_PERIOD_US = 100_000
"""The CFS period Docker uses for ``--cpus``: quota = cpus * period."""

V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct", "freezer")
"""v1 hierarchies a group is created in; freezer makes ``kill`` safe against fork bombs."""
V2_CONTROLLERS = ("memory", "pids", "cpu")

# A v1 limit file reads PAGE_COUNTER_MAX * PAGE_SIZE (0x7ffffffffffff000 on 4k pages) when
# unlimited; no real limit comes near 2**62.
_V1_UNLIMITED = 1 << 62
_SHARES_MIN, _SHARES_MAX = 2, 262_144
_WEIGHT_MIN, _WEIGHT_MAX = 1, 10_000
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_FIX = "Fix this and try again."


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
            raise CgroupError(f"check limits: memory {self.memory} is not a positive byte count. {_FIX}")
        swap = self.memory_swap
        if swap is not None and swap not in (0, -1):
            if self.memory is None:
                raise CgroupError(f"check limits: memory_swap {swap} needs memory to be set too. {_FIX}")
            if swap < self.memory:
                raise CgroupError(
                    f"check limits: memory_swap {swap} is below memory {self.memory}; it counts memory plus"
                    f" swap. {_FIX}"
                )
        if self.pids is not None and self.pids < -1:
            raise CgroupError(f"check limits: pids {self.pids} is below -1 (unlimited). {_FIX}")
        if self.cpus is not None and not (self.cpus >= 0 and math.isfinite(self.cpus)):
            raise CgroupError(f"check limits: cpus {self.cpus} is not a non-negative number. {_FIX}")
        if self.cpu_shares is not None and self.cpu_shares <= 0:
            raise CgroupError(f"check limits: cpu_shares {self.cpu_shares} is not positive. {_FIX}")

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


# --------------------------------------------------------------------------- small helpers


def _check_name(name: str, what: str = "name") -> str:
    """Refuse names that could step outside the parent group (``/``, ``..``)."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or name in (".", ".."):
        raise CgroupError(
            f"open cgroup {name!r}: invalid {what}; use letters, digits, '_', '.', '-' and no '/'. {_FIX}"
        )
    return name


def _check_parent(parent: str) -> str:
    """A parent may be nested (``pytest-pods/session``) but never absolute or with ``..``."""
    parts = parent.split("/")
    for part in parts:
        _check_name(part, "parent")
    return parent


def _read(path: str) -> str:
    with open(path, encoding="ascii") as f:
        return f.read()


def _write(path: str, value: str, op: str) -> None:
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


def _read_int(path: str, default: int | None = None) -> int | None:
    """An integer file; ``max`` reads as None; a missing file as ``default``."""
    try:
        text = _read(path).strip()
    except FileNotFoundError:
        return default
    if text in ("max", ""):
        return None
    return int(text)


def _keyed(path: str) -> dict[str, int]:
    """Parse ``key value`` lines (memory.events, cpu.stat, memory.oom_control, cgroup.events)."""
    out: dict[str, int] = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def _rmdir(path: str) -> None:
    """Remove one cgroup directory; a seam so tests can stand in a plain directory for cgroupfs."""
    os.rmdir(path)


def _tree(path: str) -> list[str]:
    """``path`` and its descendant directories, deepest first (the order rmdir needs)."""
    dirs: list[str] = []
    for top, _subdirs, _files in os.walk(path, topdown=False):
        dirs.append(top)
    return dirs


def _procs_in(dirs: Iterable[str]) -> set[int]:
    """Union of ``cgroup.procs`` over ``dirs`` and their descendants; gone dirs count as empty."""
    pids: set[int] = set()
    for top in dirs:
        for d in _tree(top):
            try:
                text = _read(os.path.join(d, "cgroup.procs"))
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise CgroupError(f"read {d}/cgroup.procs: {exc.strerror or exc}") from exc
            pids.update(int(p) for p in text.split())
    return pids


def _signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _sleeps(deadline: float) -> Iterator[None]:
    """Yield until ``deadline``, sleeping 1 ms at first and up to 50 ms between polls."""
    delay = 0.001
    while True:
        yield
        now = time.monotonic()
        if now >= deadline:
            return
        time.sleep(min(delay, deadline - now))
        delay = min(delay * 2, 0.05)


def shares_to_weight(shares: int) -> int:
    """Map ``--cpu-shares`` (v1, 2..262144, default 1024) to ``cpu.weight`` (v2, 1..10000, 100).

    The curve crun uses and runc adopted: it sends 2 -> 1, 1024 -> 100 and 262144 -> 10000, so the
    v1 default lands on the v2 default, which the older linear formula (1024 -> 39) did not.
    """
    shares = min(max(shares, _SHARES_MIN), _SHARES_MAX)
    lg = math.log2(shares)
    exponent = (lg * lg + 125 * lg) / 612.0 - 7.0 / 34.0
    return min(max(math.ceil(10**exponent - 1e-9), _WEIGHT_MIN), _WEIGHT_MAX)


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
        text = _read("/proc/self/mountinfo")
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


# --------------------------------------------------------------------------- v1


def v1_memory_writes(current_memsw: int | None, memory: int, memsw: int | None) -> list[tuple[str, int]]:
    """The order to write the v1 memory limits in.

    The kernel keeps ``limit_in_bytes <= memsw.limit_in_bytes`` at every step and refuses a write
    that breaks it (EINVAL). So when the new memsw is at least the current one (raising, or -1 for
    unlimited), memsw goes first; when it is lower, ``limit_in_bytes`` goes first (runc does the
    same). ``current_memsw`` None means the file is absent (no swap accounting): memory only.
    """
    if current_memsw is None or memsw is None:
        return [("memory.limit_in_bytes", memory)]
    raising = memsw == -1 or memsw >= current_memsw
    pair = [("memory.limit_in_bytes", memory), ("memory.memsw.limit_in_bytes", memsw)]
    return pair[::-1] if raising else pair


class V1Cgroup:
    """A group made of one directory per v1 hierarchy (memory, pids, cpu, cpuacct, freezer)."""

    def __init__(
        self,
        name: str,
        limits: Limits = Limits(),
        *,
        hierarchies: dict[str, str] | None = None,
        parent: str = DEFAULT_PARENT,
    ) -> None:
        """:param hierarchies: controller -> mount point; read from mountinfo when None."""
        self.name = _check_name(name)
        self.limits = limits
        self.parent = _check_parent(parent)
        self.hierarchies = dict(v1_hierarchies() if hierarchies is None else hierarchies)
        self._dir = {ctrl: os.path.join(mnt, parent, name) for ctrl, mnt in self.hierarchies.items()}

    def __repr__(self) -> str:
        return f"V1Cgroup({self.name!r}, parent={self.parent!r})"

    @property
    def paths(self) -> list[str]:
        """One directory per distinct hierarchy (co-mounted controllers share one)."""
        return list(dict.fromkeys(self._dir[c] for c in V1_CONTROLLERS if c in self._dir))

    def _file(self, ctrl: str, file: str) -> str | None:
        d = self._dir.get(ctrl)
        return None if d is None else os.path.join(d, file)

    def create(self) -> None:
        """Make the directories, then write the limits; undo everything on the first failure.

        :raises CgroupError: a limit needs a controller that is not mounted, or the kernel refused a
            value (the message names the file and the value).
        """
        op = f"create cgroup {self.name}"
        self.limits.check()
        missing = sorted(c for c in self.limits.needs() if c not in self.hierarchies)
        if missing:
            raise CgroupError(
                f"{op}: no v1 hierarchy for controller {', '.join(missing)} in /proc/self/mountinfo. {_FIX}"
            )
        made: list[str] = []
        try:
            for d in self.paths:
                for attempt in range(3):
                    os.makedirs(os.path.dirname(d), exist_ok=True)
                    try:
                        os.mkdir(d)
                        break
                    except FileNotFoundError:
                        continue  # a reaper removed the empty parent between our two mkdirs
                    except OSError as exc:
                        raise CgroupError(f"{op}: mkdir {d}: {exc.strerror or exc}") from exc
                else:
                    raise CgroupError(f"{op}: mkdir {d}: its parent keeps disappearing")
                made.append(d)
            self._write_limits(op)
        except BaseException:
            for d in reversed(made):
                try:
                    _rmdir(d)
                except OSError:
                    pass
            raise

    def _write_limits(self, op: str) -> None:
        lim = self.limits
        if lim.memory is not None:
            mem = self._dir["memory"]
            memsw_file = mem + "/memory.memsw.limit_in_bytes"
            current = _read_int(memsw_file) if os.path.exists(memsw_file) else None
            for file, value in v1_memory_writes(current, lim.memory, lim.memsw()):
                _write(f"{mem}/{file}", str(value), op)
        if lim.pids is not None:
            _write(self._dir["pids"] + "/pids.max", "max" if lim.pids <= 0 else str(lim.pids), op)
        if lim.cpus is not None:
            quota = round(lim.cpus * CPU_PERIOD_US) if lim.cpus > 0 else -1
            _write(self._dir["cpu"] + "/cpu.cfs_period_us", str(CPU_PERIOD_US), op)
            _write(self._dir["cpu"] + "/cpu.cfs_quota_us", str(quota), op)
        if lim.cpu_shares is not None:
            _write(self._dir["cpu"] + "/cpu.shares", str(lim.cpu_shares), op)

    def add(self, pid: int) -> None:
        """:raises CgroupError: the process is gone or the kernel refused the move."""
        for d in self.paths:
            _write(os.path.join(d, "cgroup.procs"), str(pid), f"add {pid} to cgroup {self.name}")

    def self_join_files(self) -> list[tuple[str, str]]:
        """Writing "0" to ``tasks`` moves the writing thread without the kernel's global
        threadgroup lock, whose write side waits for an RCU grace period: 0.5 ms instead of
        10-20 ms per start here. Only right for a single-threaded process (our container init)."""
        return [(os.path.join(d, "tasks"), "0") for d in self.paths]

    def procs(self) -> list[int]:
        """Union over the hierarchies, in case a process was moved in some of them only."""
        return sorted(_procs_in(self.paths))

    def stats(self) -> CgroupStats:
        """:raises CgroupError: the group does not exist."""

        def num(ctrl: str, file: str) -> int | None:
            path = self._file(ctrl, file)
            return None if path is None else _read_int(path)

        try:
            if not all(os.path.isdir(d) for d in self.paths):
                raise FileNotFoundError(errno.ENOENT, "no such cgroup", self.paths[0] if self.paths else "")
            limit = num("memory", "memory.limit_in_bytes")
            return CgroupStats(
                memory_usage=num("memory", "memory.usage_in_bytes") or 0,
                memory_limit=None if limit is None or limit >= _V1_UNLIMITED else limit,
                memory_max_usage=num("memory", "memory.max_usage_in_bytes"),
                pids_current=num("pids", "pids.current") or 0,
                pids_limit=num("pids", "pids.max"),
                cpu_usage_ns=num("cpuacct", "cpuacct.usage") or 0,
            )
        except OSError as exc:
            raise CgroupError(f"stats cgroup {self.name}: {exc.strerror or exc}: {exc.filename}") from exc

    def oom_killed(self) -> bool:
        """From the ``oom_kill N`` line of ``memory.oom_control`` (kernels 4.13 and later)."""
        path = self._file("memory", "memory.oom_control")
        if path is None:
            return False
        try:
            return _keyed(path).get("oom_kill", 0) > 0
        except OSError as exc:
            raise CgroupError(f"read {path}: {exc.strerror or exc}") from exc

    def freeze(self) -> None:
        state = self._file("freezer", "freezer.state")
        if state is None:
            raise CgroupError(f"freeze cgroup {self.name}: no freezer hierarchy")
        _write(state, "FROZEN", f"freeze cgroup {self.name}")
        for _ in _sleeps(time.monotonic() + 5.0):
            if _read(state).strip() == "FROZEN":
                return
        raise CgroupError(f"freeze cgroup {self.name}: still {_read(state).strip()} after 5 s")

    def thaw(self) -> None:
        state = self._file("freezer", "freezer.state")
        if state is not None:
            _write(state, "THAWED", f"thaw cgroup {self.name}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Freeze, signal everything, thaw: frozen processes cannot fork past the signal."""
        state = self._file("freezer", "freezer.state")
        frozen = False
        if state is not None and os.path.exists(state):
            try:
                _write(state, "FROZEN", f"freeze cgroup {self.name}")
                frozen = True
            except CgroupError:
                pass  # still signal: a fork bomb may escape, a plain container will not
        try:
            if frozen:
                assert state is not None
                for _ in _sleeps(time.monotonic() + 1.0):
                    if _read(state).strip() == "FROZEN":
                        break
            _signal_all(self.procs(), sig)
        finally:
            if frozen:
                assert state is not None
                try:
                    _write(state, "THAWED", f"thaw cgroup {self.name}")
                except CgroupError:
                    if os.path.isdir(os.path.dirname(state)):
                        raise

    def destroy(self, timeout: float = 5.0) -> None:
        """:raises CgroupBusyError: processes remained after ``timeout`` seconds.
        :raises ExceptionGroup: several steps failed (each a :class:`CgroupError`)."""
        _destroy(self, self.paths, timeout)

    def oci_path(self) -> str:
        return f"/{self.parent}/{self.name}"


# --------------------------------------------------------------------------- v2


class V2Cgroup:
    """A group in the unified hierarchy: ``<root>/<parent>/<name>``."""

    def __init__(
        self, name: str, limits: Limits = Limits(), *, root: str = DEFAULT_ROOT, parent: str = DEFAULT_PARENT
    ) -> None:
        self.name = _check_name(name)
        self.limits = limits
        self.root = root
        self.parent = _check_parent(parent)
        self.path = os.path.join(root, parent, name)

    def __repr__(self) -> str:
        return f"V2Cgroup({self.name!r}, root={self.root!r}, parent={self.parent!r})"

    @property
    def paths(self) -> list[str]:
        return [self.path]

    def _enable(self, op: str) -> None:
        """Enable our controllers at the root and each level down to the parent.

        Only controllers listed in a level's ``cgroup.controllers`` can be enabled in its
        ``cgroup.subtree_control``; a limit that needs a missing one fails with the file lacking it.
        """
        needed = self.limits.needs()
        level = self.root
        for part in ["", *self.parent.split("/")]:
            if part:
                level = os.path.join(level, part)
                os.makedirs(level, exist_ok=True)
            have = set(_read(os.path.join(level, "cgroup.controllers")).split())
            missing = sorted(needed - have)
            if missing:
                raise CgroupError(
                    f"{op}: controller {', '.join(missing)} not in {level}/cgroup.controllers"
                    f" (it has: {' '.join(sorted(have)) or 'none'}). Enable it or drop the limit and try again."
                )
            control = os.path.join(level, "cgroup.subtree_control")
            enabled = set(_read(control).replace("+", "").split())
            todo = [c for c in V2_CONTROLLERS if c in have and c not in enabled]
            if todo:
                _write(control, " ".join("+" + c for c in todo), op)

    def create(self) -> None:
        """:raises CgroupError: a needed controller is missing or the kernel refused a value."""
        op = f"create cgroup {self.name}"
        self.limits.check()
        try:
            self._enable(op)
        except OSError as exc:
            raise CgroupError(f"{op}: {exc.strerror or exc}: {exc.filename}") from exc
        try:
            os.mkdir(self.path)
        except OSError as exc:
            raise CgroupError(f"{op}: mkdir {self.path}: {exc.strerror or exc}") from exc
        try:
            self._write_limits(op)
        except BaseException:
            try:
                _rmdir(self.path)
            except OSError:
                pass
            raise

    def _write_limits(self, op: str) -> None:
        lim, p = self.limits, self.path
        if lim.memory is not None:
            _write(p + "/memory.max", str(lim.memory), op)
            memsw = lim.memsw()
            # memory.swap.max exists only with swap accounting; the parent shows whether it does
            parent_swap = os.path.join(os.path.dirname(p), "memory.swap.max")
            if memsw is not None and (os.path.exists(p + "/memory.swap.max") or os.path.exists(parent_swap)):
                _write(p + "/memory.swap.max", "max" if memsw == -1 else str(memsw - lim.memory), op)
        if lim.pids is not None:
            _write(p + "/pids.max", "max" if lim.pids <= 0 else str(lim.pids), op)
        if lim.cpus is not None:
            quota = str(round(lim.cpus * CPU_PERIOD_US)) if lim.cpus > 0 else "max"
            _write(p + "/cpu.max", f"{quota} {CPU_PERIOD_US}", op)
        if lim.cpu_shares is not None:
            _write(p + "/cpu.weight", str(shares_to_weight(lim.cpu_shares)), op)

    def add(self, pid: int) -> None:
        _write(self.path + "/cgroup.procs", str(pid), f"add {pid} to cgroup {self.name}")

    def self_join_files(self) -> list[tuple[str, str]]:
        return [(self.path + "/cgroup.procs", "0")]

    def procs(self) -> list[int]:
        return sorted(_procs_in([self.path]))

    def stats(self) -> CgroupStats:
        """:raises CgroupError: the group does not exist."""
        p = self.path
        try:
            cpu = _keyed(p + "/cpu.stat")  # a core file: present in every group, so also an existence check
            return CgroupStats(
                memory_usage=_read_int(p + "/memory.current", 0) or 0,
                memory_limit=_read_int(p + "/memory.max"),
                memory_max_usage=_read_int(p + "/memory.peak"),
                pids_current=_read_int(p + "/pids.current", 0) or 0,
                pids_limit=_read_int(p + "/pids.max"),
                cpu_usage_ns=cpu.get("usage_usec", 0) * 1000,
            )
        except OSError as exc:
            raise CgroupError(f"stats cgroup {self.name}: {exc.strerror or exc}: {exc.filename}") from exc

    def oom_killed(self) -> bool:
        """From ``oom_kill`` in ``memory.events``, which counts this group and its descendants."""
        path = self.path + "/memory.events"
        try:
            return _keyed(path).get("oom_kill", 0) > 0
        except FileNotFoundError:
            if os.path.isdir(self.path):
                return False  # memory controller not enabled: nothing can have been OOM-killed
            raise CgroupError(f"read {path}: no such cgroup") from None
        except OSError as exc:
            raise CgroupError(f"read {path}: {exc.strerror or exc}") from exc

    def freeze(self) -> None:
        _write(self.path + "/cgroup.freeze", "1", f"freeze cgroup {self.name}")
        for _ in _sleeps(time.monotonic() + 5.0):
            if _keyed(self.path + "/cgroup.events").get("frozen", 0) == 1:
                return
        raise CgroupError(f"freeze cgroup {self.name}: not frozen after 5 s")

    def thaw(self) -> None:
        _write(self.path + "/cgroup.freeze", "0", f"thaw cgroup {self.name}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """``cgroup.kill`` (Linux 5.14) kills the whole subtree atomically, forks included."""
        kill_file = self.path + "/cgroup.kill"
        if sig == signal.SIGKILL and os.path.exists(kill_file):
            _write(kill_file, "1", f"kill cgroup {self.name}")
            return
        _signal_all(self.procs(), sig)

    def _populated(self) -> bool:
        try:
            return _keyed(self.path + "/cgroup.events").get("populated", 0) > 0
        except FileNotFoundError:
            return bool(_procs_in([self.path]))

    def destroy(self, timeout: float = 5.0) -> None:
        """:raises CgroupBusyError: processes remained after ``timeout`` seconds.
        :raises ExceptionGroup: several steps failed (each a :class:`CgroupError`)."""
        _destroy(self, self.paths, timeout, self._populated)

    def oci_path(self) -> str:
        return f"/{self.parent}/{self.name}"


# --------------------------------------------------------------------------- shared teardown


class _Killable(Protocol):
    name: str

    def kill(self, sig: int = signal.SIGKILL) -> None: ...


def _destroy(
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
        for _ in _sleeps(deadline):
            try:
                left = _procs_in(live)
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
        for d in _tree(top):
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


# --------------------------------------------------------------------------- entry points


def open_cgroup(
    name: str, limits: Limits = Limits(), *, root: str = DEFAULT_ROOT, parent: str = DEFAULT_PARENT
) -> Cgroup:
    """The group ``name`` under ``parent`` for this host's cgroup version; nothing is created yet.

    :raises CgroupError: ``name`` or ``parent`` is not a plain name.
    """
    if cgroup_version(root) == 2:
        return V2Cgroup(name, limits, root=root, parent=parent)
    return V1Cgroup(name, limits, hierarchies=v1_hierarchies(root), parent=parent)


def list_cgroups(*, root: str = DEFAULT_ROOT, parent: str = DEFAULT_PARENT) -> list[str]:
    """Names of the groups under ``parent`` in any hierarchy, so the reaper can find leftovers."""
    _check_parent(parent)
    if cgroup_version(root) == 2:
        tops = [os.path.join(root, parent)]
    else:
        tops = [os.path.join(mnt, parent) for mnt in dict.fromkeys(v1_hierarchies(root).values())]
    names: set[str] = set()
    for top in tops:
        try:
            with os.scandir(top) as it:
                names.update(e.name for e in it if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            continue
    return sorted(names)


def available(*, root: str = DEFAULT_ROOT) -> str | None:
    """None when groups can be made here, else a one-line reason (for skips and ``pods info``)."""
    if os.geteuid() != 0:
        return f"cgroups need root; running as uid {os.geteuid()}"
    if not os.path.isdir(root):
        return f"no cgroup filesystem at {root}"
    if cgroup_version(root) == 2:
        try:
            have = set(_read(os.path.join(root, "cgroup.controllers")).split())
        except OSError as exc:
            return f"cannot read {root}/cgroup.controllers: {exc.strerror or exc}"
        missing = [c for c in ("memory", "pids") if c not in have]
        if missing:
            return f"cgroup v2 controller {', '.join(missing)} missing from {root}/cgroup.controllers"
        mounts = [root]
    else:
        found = v1_hierarchies(root)
        missing = [c for c in ("memory", "pids") if c not in found]
        if missing:
            return f"no cgroup v1 hierarchy for {', '.join(missing)} under {root}"
        mounts = list(dict.fromkeys(found.values()))
    for mnt in mounts:
        if not os.access(mnt, os.W_OK):
            return f"{mnt} is not writable (read-only cgroup mount?)"
    return None


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
    _check_parent(parent)
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
