"""Choosing the implementation for this host's cgroup version, and what is there to find.

The version is detected at run time (:func:`~pytest_pods.engine.runtime.cgroups.interface.cgroup_version`)
because users run pure v2 while some hosts, CI machines among them, still run a v1 hybrid. The
reaper finds leftovers with :func:`list_cgroups`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from pytest_pods.engine import rootless
from pytest_pods.engine.runtime.cgroups.devices import DeviceRule
from pytest_pods.engine.runtime.cgroups.interface import (
    DEFAULT_PARENT,
    DEFAULT_ROOT,
    Cgroup,
    Limits,
    cgroup_version,
    check_parent,
    read_file,
    v1_hierarchies,
)
from pytest_pods.engine.runtime.cgroups.none import NoCgroup
from pytest_pods.engine.runtime.cgroups.v1 import V1Cgroup
from pytest_pods.engine.runtime.cgroups.v2 import V2Cgroup


def open_cgroup(
    name: str,
    limits: Limits = Limits(),
    *,
    root: str = DEFAULT_ROOT,
    parent: str = DEFAULT_PARENT,
    devices: Sequence[DeviceRule] | None = None,
) -> Cgroup:
    """The group ``name`` under ``parent`` for this host's cgroup version; nothing is created yet.

    ``devices`` are the device rules ``create`` enforces (``devices.rules_from_config``): a v1
    devices group, or a v2 device program. None enforces nothing.

    :raises CgroupError: ``name`` or ``parent`` is not a plain name.

    Rootless: a group under the user's delegated cgroup v2 directory where there is one, else
    :class:`NoCgroup` (no limits; the lifecycle ends containers through their pid namespace).
    Neither enforces device rules: attaching a device program needs CAP_SYS_ADMIN in the initial
    user namespace, and the kernel refuses mknod in a user namespace anyway (only host nodes are
    bind-mounted, with the user's own access to them).
    """
    if rootless.active():
        delegated = rootless.delegated_cgroup()
        if delegated is None:
            return NoCgroup(name)
        return V2Cgroup(name, limits, root=str(delegated), parent=parent)
    if cgroup_version(root) == 2:
        return V2Cgroup(name, limits, root=root, parent=parent, devices=devices)
    return V1Cgroup(name, limits, hierarchies=v1_hierarchies(root), parent=parent, devices=devices)


def list_cgroups(*, root: str = DEFAULT_ROOT, parent: str = DEFAULT_PARENT) -> list[str]:
    """Names of the groups under ``parent`` in any hierarchy, so the reaper can find leftovers."""
    check_parent(parent)
    if rootless.active():
        delegated = rootless.delegated_cgroup()
        if delegated is None:
            return []
        root = str(delegated)
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
    if rootless.active():
        if rootless.delegated_cgroup() is None:
            return "no delegated cgroup v2: limits refused (PODS_IGNORE_LIMITS=1 drops them)"
        return None
    if os.geteuid() != 0:
        return f"cgroups need root; running as uid {os.geteuid()}"
    if not os.path.isdir(root):
        return f"no cgroup filesystem at {root}"
    if cgroup_version(root) == 2:
        try:
            have = set(read_file(os.path.join(root, "cgroup.controllers")).split())
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
