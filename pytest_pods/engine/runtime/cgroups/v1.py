"""cgroup v1: one directory per hierarchy (memory, pids, cpu, cpuacct, freezer)."""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Sequence

from pytest_pods.engine.runtime.cgroups.devices import DEFAULT_RULES, DeviceRule, effective, v1_writes
from pytest_pods.engine.runtime.cgroups.interface import (
    CPU_PERIOD_US,
    DEFAULT_PARENT,
    FIX_HINT,
    V1_CONTROLLERS,
    V1_UNLIMITED,
    CgroupStats,
    Limits,
    check_name,
    check_parent,
    destroy_group,
    procs_in,
    read_file,
    read_int,
    read_keyed,
    remove_dir,
    signal_all,
    sleeps,
    v1_hierarchies,
    write_file,
)
from pytest_pods.errors import CgroupError


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
    """A group made of one directory per v1 hierarchy (memory, pids, cpu, cpuacct, freezer, devices)."""

    def __init__(
        self,
        name: str,
        limits: Limits = Limits(),
        *,
        hierarchies: dict[str, str] | None = None,
        parent: str = DEFAULT_PARENT,
        devices: Sequence[DeviceRule] | None = None,
    ) -> None:
        """:param hierarchies: controller -> mount point; read from mountinfo when None.
        :param devices: the device rules to enforce (``devices.rules_from_config``); None leaves
            the group as open as its parent."""
        self.name = check_name(name)
        self.limits = limits
        self.devices = None if devices is None else tuple(devices)
        self.parent = check_parent(parent)
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
                f"{op}: no v1 hierarchy for controller {', '.join(missing)} in /proc/self/mountinfo. {FIX_HINT}"
            )
        made: list[str] = []
        try:
            for d in self.paths:
                for _attempt in range(3):
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
            self._write_devices(op)
            self._write_limits(op)
        except BaseException:
            for d in reversed(made):
                try:
                    remove_dir(d)
                except OSError:
                    pass
            raise

    def _write_devices(self, op: str) -> None:
        """``devices.deny a`` then one ``devices.allow`` line per exception (issue 14).

        A default rule the parent does not grant itself (we run inside a container whose own
        device cgroup lacks, say, the tun device) is skipped: no write could grant it. A rule the
        user asked for (``--device``) fails the start instead.
        """
        if self.devices is None:
            return
        d = self._dir.get("devices")
        if d is None:
            raise CgroupError(f"{op}: no v1 devices hierarchy in /proc/self/mountinfo: the container's device"
                              f" rules cannot be enforced. {FIX_HINT}")
        want = effective(self.devices)
        for file, line in v1_writes(want):
            try:
                write_file(os.path.join(d, file), line, op)
            except CgroupError as exc:
                cause = exc.__cause__
                if (isinstance(cause, OSError) and cause.errno == errno.EPERM and file == "devices.allow"
                        and any(e.v1() == line and e in DEFAULT_RULES for e in want.exceptions)):
                    continue
                raise

    def _write_limits(self, op: str) -> None:
        lim = self.limits
        if lim.memory is not None:
            mem = self._dir["memory"]
            memsw_file = mem + "/memory.memsw.limit_in_bytes"
            current = read_int(memsw_file) if os.path.exists(memsw_file) else None
            for file, value in v1_memory_writes(current, lim.memory, lim.memsw()):
                write_file(f"{mem}/{file}", str(value), op)
        if lim.pids is not None:
            write_file(self._dir["pids"] + "/pids.max", "max" if lim.pids <= 0 else str(lim.pids), op)
        if lim.cpus is not None:
            quota = round(lim.cpus * CPU_PERIOD_US) if lim.cpus > 0 else -1
            write_file(self._dir["cpu"] + "/cpu.cfs_period_us", str(CPU_PERIOD_US), op)
            write_file(self._dir["cpu"] + "/cpu.cfs_quota_us", str(quota), op)
        if lim.cpu_shares is not None:
            write_file(self._dir["cpu"] + "/cpu.shares", str(lim.cpu_shares), op)

    def add(self, pid: int) -> None:
        """:raises CgroupError: the process is gone or the kernel refused the move."""
        for d in self.paths:
            write_file(os.path.join(d, "cgroup.procs"), str(pid), f"add {pid} to cgroup {self.name}")

    def self_join_files(self) -> list[tuple[str, str]]:
        """Writing "0" to ``tasks`` moves the writing thread without the kernel's global
        threadgroup lock, whose write side waits for an RCU grace period: 0.5 ms instead of
        10-20 ms per start here. Only right for a single-threaded process (our container init)."""
        return [(os.path.join(d, "tasks"), "0") for d in self.paths]

    def procs(self) -> list[int]:
        """Union over the hierarchies, in case a process was moved in some of them only."""
        return sorted(procs_in(self.paths))

    def stats(self) -> CgroupStats:
        """:raises CgroupError: the group does not exist."""

        def num(ctrl: str, file: str) -> int | None:
            path = self._file(ctrl, file)
            return None if path is None else read_int(path)

        try:
            if not all(os.path.isdir(d) for d in self.paths):
                raise FileNotFoundError(errno.ENOENT, "no such cgroup", self.paths[0] if self.paths else "")
            limit = num("memory", "memory.limit_in_bytes")
            return CgroupStats(
                memory_usage=num("memory", "memory.usage_in_bytes") or 0,
                memory_limit=None if limit is None or limit >= V1_UNLIMITED else limit,
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
            return read_keyed(path).get("oom_kill", 0) > 0
        except OSError as exc:
            raise CgroupError(f"read {path}: {exc.strerror or exc}") from exc

    def set_limits(self, limits: Limits) -> None:
        """Write new limits to the existing group (``docker update``)."""
        limits.check()
        self.limits = limits
        self._write_limits(f"update cgroup {self.name}")

    def freeze(self) -> None:
        state = self._file("freezer", "freezer.state")
        if state is None:
            raise CgroupError(f"freeze cgroup {self.name}: no freezer hierarchy")
        write_file(state, "FROZEN", f"freeze cgroup {self.name}")
        for _ in sleeps(time.monotonic() + 5.0):
            if read_file(state).strip() == "FROZEN":
                return
        raise CgroupError(f"freeze cgroup {self.name}: still {read_file(state).strip()} after 5 s")

    def thaw(self) -> None:
        state = self._file("freezer", "freezer.state")
        if state is not None:
            write_file(state, "THAWED", f"thaw cgroup {self.name}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Freeze, signal everything, thaw: frozen processes cannot fork past the signal."""
        state = self._file("freezer", "freezer.state")
        frozen = False
        if state is not None and os.path.exists(state):
            try:
                write_file(state, "FROZEN", f"freeze cgroup {self.name}")
                frozen = True
            except CgroupError:
                pass  # still signal: a fork bomb may escape, a plain container will not
        try:
            if frozen:
                assert state is not None
                for _ in sleeps(time.monotonic() + 1.0):
                    if read_file(state).strip() == "FROZEN":
                        break
            signal_all(self.procs(), sig)
        finally:
            if frozen:
                assert state is not None
                try:
                    write_file(state, "THAWED", f"thaw cgroup {self.name}")
                except CgroupError:
                    if os.path.isdir(os.path.dirname(state)):
                        raise

    def destroy(self, timeout: float = 5.0) -> None:
        """:raises CgroupBusyError: processes remained after ``timeout`` seconds.
        :raises ExceptionGroup: several steps failed (each a :class:`CgroupError`)."""
        destroy_group(self, self.paths, timeout)

    def oci_path(self) -> str:
        return f"/{self.parent}/{self.name}"
