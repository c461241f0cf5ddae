"""Old home of the cgroup code, kept while callers move to ``pytest_pods.engine.runtime.cgroups``
(issue 12; the coordinator removes this module once nothing imports it)."""

from pytest_pods.engine.runtime.cgroups import (
    CPU_PERIOD_US,
    Cgroup,
    CgroupBusyError,
    CgroupStats,
    Limits,
    V1Cgroup,
    V2Cgroup,
    available,
    cgroup_version,
    list_cgroups,
    open_cgroup,
    remove_empty_parents,
    remove_stale_parents,
    shares_to_weight,
    v1_hierarchies,
    v1_memory_writes,
)

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
    "remove_empty_parents",
    "remove_stale_parents",
    "shares_to_weight",
    "v1_hierarchies",
    "v1_memory_writes",
]
