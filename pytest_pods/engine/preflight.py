"""Can the engine run here? One reason in one line, for skips, ``--pods-required`` and ``pods info``."""

from __future__ import annotations

import os

from pytest_pods.engine.runtime.cgroups import available


def unavailable() -> str | None:
    """None when containers can run on this host, else why not (the first missing piece)."""
    if os.geteuid() != 0:
        return f"the engine needs root (namespaces, overlayfs, cgroups); running as uid {os.geteuid()}"
    for ns in ("pid", "mnt", "net", "uts", "ipc", "cgroup"):
        if not os.path.exists(f"/proc/self/ns/{ns}"):
            return f"the kernel has no {ns} namespaces (/proc/self/ns/{ns} is missing)"
    try:
        with open("/proc/filesystems") as f:
            if not any(line.split()[-1:] == ["overlay"] for line in f):
                return "the kernel has no overlay filesystem (modprobe overlay)"
    except OSError as exc:
        return f"cannot read /proc/filesystems: {exc.strerror}"
    return available()
