"""Control groups for containers: one interface (:class:`Cgroup`), a v1 and a v2 implementation,
chosen at run time for this host (:func:`open_cgroup`).

Limits follow ``docker run`` flags and their defaults, so that a container limited here behaves as
it would under Docker. ``interface`` holds what both versions share, ``v1`` and ``v2`` the two
implementations, ``hierarchy`` the choice between them and what there is to find on the host.
"""

from pytest_pods.engine.runtime.cgroups.devices import DeviceRule, DeviceSet, effective, rules_from_config
from pytest_pods.engine.runtime.cgroups.hierarchy import available, list_cgroups, open_cgroup
from pytest_pods.engine.runtime.cgroups.interface import (
    CPU_PERIOD_US,
    DEFAULT_PARENT,
    DEFAULT_ROOT,
    Cgroup,
    CgroupStats,
    Limits,
    cgroup_version,
    remove_empty_parents,
    remove_stale_parents,
    v1_hierarchies,
)
from pytest_pods.engine.runtime.cgroups.v1 import V1Cgroup, v1_memory_writes
from pytest_pods.engine.runtime.cgroups.v2 import V2Cgroup, shares_to_weight
from pytest_pods.errors import CgroupBusyError

__all__ = [
    "CPU_PERIOD_US",
    "DEFAULT_PARENT",
    "DEFAULT_ROOT",
    "Cgroup",
    "CgroupBusyError",
    "CgroupStats",
    "DeviceRule",
    "DeviceSet",
    "Limits",
    "V1Cgroup",
    "V2Cgroup",
    "available",
    "cgroup_version",
    "effective",
    "list_cgroups",
    "open_cgroup",
    "remove_empty_parents",
    "remove_stale_parents",
    "rules_from_config",
    "shares_to_weight",
    "v1_hierarchies",
    "v1_memory_writes",
]
