"""Can the engine run here? One reason in one line, for skips, ``--pods-required`` and ``pods info``."""

from __future__ import annotations

import os
import shutil

from pytest_pods.engine import rootless
from pytest_pods.engine.runtime.cgroups import available


def unavailable() -> str | None:
    """None when containers can run on this host, else why not (the first missing piece)."""
    for ns in ("pid", "mnt", "net", "uts", "ipc", "cgroup"):
        if not os.path.exists(f"/proc/self/ns/{ns}"):
            return f"the kernel has no {ns} namespaces (/proc/self/ns/{ns} is missing)"
    try:
        with open("/proc/filesystems") as f:
            if not any(line.split()[-1:] == ["overlay"] for line in f):
                return "the kernel has no overlay filesystem (modprobe overlay)"
    except OSError as exc:
        return f"cannot read /proc/filesystems: {exc.strerror}"
    if rootless.active():
        return rootless_unavailable()
    return available()


def rootless_unavailable() -> str | None:
    """What an ordinary user's engine lacks here: user namespaces allowed (the sysctl named),
    newuidmap/newgidmap where a subordinate range exists (Debian's uidmap package), overlayfs
    in a user namespace (Linux 5.11)."""
    if rootless.inside():
        return None  # joined already: the holder exists, so all of this held
    for path, name in (("/proc/sys/user/max_user_namespaces", "user.max_user_namespaces"),
                       ("/proc/sys/kernel/unprivileged_userns_clone", "kernel.unprivileged_userns_clone")):
        try:
            with open(path) as f:
                if f.read().strip() == "0":
                    return f"unprivileged user namespaces are off: {name} = 0 (as root: sysctl -w {name}=1)"
        except OSError:
            continue
    if not os.path.exists("/proc/self/ns/user"):
        return "the kernel has no user namespaces (/proc/self/ns/user is missing)"
    uids, gids = rootless.id_maps()
    for kind, maps in (("uid", uids), ("gid", gids)):
        if len(maps) > 1 and shutil.which(f"new{kind}map") is None and not os.path.exists(f"/usr/bin/new{kind}map"):
            return (f"new{kind}map is missing for the subordinate ids of {rootless.user_name()} "
                    f"(install Debian's uidmap package: apt-get install uidmap)")
    release = os.uname().release.split(".")
    try:
        major, minor = int(release[0]), int("".join(c for c in release[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return None
    if (major, minor) < (5, 11):
        return f"overlayfs in a user namespace needs Linux 5.11 or later (this is {os.uname().release})"
    return None
