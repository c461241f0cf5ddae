"""No control group: a rootless engine without a delegated cgroup v2 subtree (a v1 hybrid host).

Nothing is made and nothing is limited (a limit is refused or dropped before a container gets
here: ``lifecycle.rootless_limits``). Containers are ended through their pid namespace instead:
SIGKILL to its pid 1 ends every process in it, which the lifecycle does beside every cgroup kill.
"""

from __future__ import annotations

import signal

from pytest_pods.engine.runtime.cgroups.interface import CgroupStats, Limits, check_name


class NoCgroup:
    """The :class:`~pytest_pods.engine.runtime.cgroups.interface.Cgroup` interface, doing nothing."""

    def __init__(self, name: str) -> None:
        self.name = check_name(name)

    def __repr__(self) -> str:
        return f"NoCgroup({self.name!r})"

    @property
    def paths(self) -> list[str]:
        return []

    def create(self) -> None:
        return None

    def add(self, pid: int) -> None:
        return None

    def self_join_files(self) -> list[tuple[str, str]]:
        return []

    def procs(self) -> list[int]:
        return []

    def stats(self) -> CgroupStats:
        return CgroupStats(memory_usage=0, memory_limit=None, memory_max_usage=None, pids_current=0,
                           pids_limit=None, cpu_usage_ns=0)

    def oom_killed(self) -> bool:
        return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        return None

    def set_limits(self, limits: Limits) -> None:
        return None

    def freeze(self) -> None:
        return None

    def thaw(self) -> None:
        return None

    def destroy(self, timeout: float = 5.0) -> None:
        return None

    def oci_path(self) -> str:
        return ""
