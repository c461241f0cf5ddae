"""cgroup v2: one directory in the unified hierarchy, ``<root>/<parent>/<name>``."""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Sequence

from pytest_pods.engine.runtime.cgroups.devices import DeviceRule, effective
from pytest_pods.engine.runtime.cgroups.interface import (
    CPU_PERIOD_US,
    DEFAULT_PARENT,
    DEFAULT_ROOT,
    V2_CONTROLLERS,
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
    write_file,
)
from pytest_pods.errors import CgroupError

_SHARES_MIN, _SHARES_MAX = 2, 262_144
_WEIGHT_MIN, _WEIGHT_MAX = 1, 10_000


def shares_to_weight(shares: int) -> int:
    """Map ``--cpu-shares`` (v1, 2..262144, default 1024) to ``cpu.weight`` (v2, 1..10000, 100).

    The curve crun uses and runc adopted: it sends 2 -> 1, 1024 -> 100 and 262144 -> 10000, so the
    v1 default lands on the v2 default, which the older linear formula (1024 -> 39) did not.
    """
    shares = min(max(shares, _SHARES_MIN), _SHARES_MAX)
    lg = math.log2(shares)
    exponent = (lg * lg + 125 * lg) / 612.0 - 7.0 / 34.0
    return min(max(math.ceil(10**exponent - 1e-9), _WEIGHT_MIN), _WEIGHT_MAX)


class V2Cgroup:
    """A group in the unified hierarchy: ``<root>/<parent>/<name>``."""

    def __init__(
        self,
        name: str,
        limits: Limits = Limits(),
        *,
        root: str = DEFAULT_ROOT,
        parent: str = DEFAULT_PARENT,
        devices: Sequence[DeviceRule] | None = None,
    ) -> None:
        """:param devices: the device rules to enforce with a device program
            (``devices.rules_from_config``); None attaches none."""
        self.name = check_name(name)
        self.limits = limits
        self.devices = None if devices is None else tuple(devices)
        self.root = root
        self.parent = check_parent(parent)
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
            have = set(read_file(os.path.join(level, "cgroup.controllers")).split())
            missing = sorted(needed - have)
            if missing:
                raise CgroupError(
                    f"{op}: controller {', '.join(missing)} not in {level}/cgroup.controllers"
                    f" (it has: {' '.join(sorted(have)) or 'none'}). Enable it or drop the limit and try again."
                )
            control = os.path.join(level, "cgroup.subtree_control")
            enabled = set(read_file(control).replace("+", "").split())
            todo = [c for c in V2_CONTROLLERS if c in have and c not in enabled]
            if todo:
                write_file(control, " ".join("+" + c for c in todo), op)

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
            self._attach_devices()
        except BaseException:
            try:
                remove_dir(self.path)
            except OSError:
                pass
            raise

    def _attach_devices(self) -> None:
        """The device program (issue 14); none for allow-all (privileged), which needs none."""
        if self.devices is None:
            return
        want = effective(self.devices)
        if want.default_allow and not want.exceptions:
            return
        from pytest_pods.engine.runtime.cgroups import devices_bpf  # lazy: only v2 starts with device rules

        devices_bpf.install(self.path, want)

    def _write_limits(self, op: str) -> None:
        lim, p = self.limits, self.path
        if lim.memory is not None:
            write_file(p + "/memory.max", str(lim.memory), op)
            memsw = lim.memsw()
            # memory.swap.max exists only with swap accounting; the parent shows whether it does
            parent_swap = os.path.join(os.path.dirname(p), "memory.swap.max")
            if memsw is not None and (os.path.exists(p + "/memory.swap.max") or os.path.exists(parent_swap)):
                write_file(p + "/memory.swap.max", "max" if memsw == -1 else str(memsw - lim.memory), op)
        if lim.pids is not None:
            write_file(p + "/pids.max", "max" if lim.pids <= 0 else str(lim.pids), op)
        if lim.cpus is not None:
            quota = str(round(lim.cpus * CPU_PERIOD_US)) if lim.cpus > 0 else "max"
            write_file(p + "/cpu.max", f"{quota} {CPU_PERIOD_US}", op)
        if lim.cpu_shares is not None:
            write_file(p + "/cpu.weight", str(shares_to_weight(lim.cpu_shares)), op)

    def add(self, pid: int) -> None:
        write_file(self.path + "/cgroup.procs", str(pid), f"add {pid} to cgroup {self.name}")

    def self_join_files(self) -> list[tuple[str, str]]:
        return [(self.path + "/cgroup.procs", "0")]

    def procs(self) -> list[int]:
        return sorted(procs_in([self.path]))

    def stats(self) -> CgroupStats:
        """:raises CgroupError: the group does not exist."""
        p = self.path
        try:
            cpu = read_keyed(p + "/cpu.stat")  # a core file: present in every group, so also an existence check
            return CgroupStats(
                memory_usage=read_int(p + "/memory.current", 0) or 0,
                memory_limit=read_int(p + "/memory.max"),
                memory_max_usage=read_int(p + "/memory.peak"),
                pids_current=read_int(p + "/pids.current", 0) or 0,
                pids_limit=read_int(p + "/pids.max"),
                cpu_usage_ns=cpu.get("usage_usec", 0) * 1000,
            )
        except OSError as exc:
            raise CgroupError(f"stats cgroup {self.name}: {exc.strerror or exc}: {exc.filename}") from exc

    def oom_killed(self) -> bool:
        """From ``oom_kill`` in ``memory.events``, which counts this group and its descendants."""
        path = self.path + "/memory.events"
        try:
            return read_keyed(path).get("oom_kill", 0) > 0
        except FileNotFoundError:
            if os.path.isdir(self.path):
                return False  # memory controller not enabled: nothing can have been OOM-killed
            raise CgroupError(f"read {path}: no such cgroup") from None
        except OSError as exc:
            raise CgroupError(f"read {path}: {exc.strerror or exc}") from exc

    def set_limits(self, limits: Limits) -> None:
        """Write new limits to the existing group (``docker update``)."""
        limits.check()
        self.limits = limits
        self._write_limits(f"update cgroup {self.name}")

    def freeze(self) -> None:
        write_file(self.path + "/cgroup.freeze", "1", f"freeze cgroup {self.name}")
        for _ in sleeps(time.monotonic() + 5.0):
            if read_keyed(self.path + "/cgroup.events").get("frozen", 0) == 1:
                return
        raise CgroupError(f"freeze cgroup {self.name}: not frozen after 5 s")

    def thaw(self) -> None:
        write_file(self.path + "/cgroup.freeze", "0", f"thaw cgroup {self.name}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """``cgroup.kill`` (Linux 5.14) kills the whole subtree atomically, forks included."""
        kill_file = self.path + "/cgroup.kill"
        if sig == signal.SIGKILL and os.path.exists(kill_file):
            write_file(kill_file, "1", f"kill cgroup {self.name}")
            return
        signal_all(self.procs(), sig)

    def _populated(self) -> bool:
        try:
            return read_keyed(self.path + "/cgroup.events").get("populated", 0) > 0
        except FileNotFoundError:
            return bool(procs_in([self.path]))

    def destroy(self, timeout: float = 5.0) -> None:
        """:raises CgroupBusyError: processes remained after ``timeout`` seconds.
        :raises ExceptionGroup: several steps failed (each a :class:`CgroupError`)."""
        destroy_group(self, self.paths, timeout, self._populated)

    def oci_path(self) -> str:
        return f"/{self.parent}/{self.name}"
