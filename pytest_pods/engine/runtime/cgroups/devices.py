"""The device cgroup (issue 14): which device nodes a container may create (mknod), read and write.

A container's root keeps CAP_MKNOD (Docker's default set), so without this it could make a node
for the host's disk and read it. Docker closes that with the device cgroup, and so do we:

- the rules come from the bundle's ``linux.resources.devices`` (as moby writes them: deny all,
  then allow all when privileged, else one rule per ``--device``), and the runtime appends its
  default allowed devices after them, as runc's ``specconv.AllowedDevices`` does (mknod of any
  node; null, zero, full, random, urandom, tty, ptmx, the pts and tun devices read and write);
- :func:`effective` folds the list in order the way the v1 kernel does (a type-``a`` rule resets
  the default and clears the exceptions; a rule of the default's kind removes an exception, one of
  the other kind adds one), which gives a default and a list of exceptions;
- v1 writes that default and those exceptions (``v1.py``), v2 compiles them to a
  ``BPF_PROG_TYPE_CGROUP_DEVICE`` program (``devices_bpf.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from pytest_pods.errors import CgroupError

ANY = -1
"""A wildcard major or minor (``*`` in the v1 files)."""

_ACCESS_ORDER = "rwm"


def _access(text: str) -> str:
    """``mwr`` -> ``rwm``: the kernel's order, duplicates dropped."""
    if not text or not set(text) <= set(_ACCESS_ORDER):
        raise CgroupError(f"device rule: access {text!r} is not a non-empty subset of 'rwm'. Fix this and try again.")
    return "".join(c for c in _ACCESS_ORDER if c in text)


class DeviceRule(NamedTuple):
    """One device cgroup rule, as an OCI ``LinuxDeviceCgroup`` entry says it."""

    allow: bool
    type: str = "a"      # a (all), c (char) or b (block)
    major: int = ANY
    minor: int = ANY
    access: str = "rwm"  # a subset of rwm, in that order

    def v1(self) -> str:
        """The line for ``devices.allow``/``devices.deny``: ``c 1:3 rwm``, ``b *:* m``, ``a``."""
        if self.type == "a":
            return "a"
        major = "*" if self.major == ANY else str(self.major)
        minor = "*" if self.minor == ANY else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"

    def matches(self, kind: str, major: int, minor: int) -> bool:
        """Whether this rule's type, major and minor cover the device ``kind major:minor``."""
        return (self.type in ("a", kind) and self.major in (ANY, major) and self.minor in (ANY, minor))


def _allow(kind: str, major: int, minor: int, access: str = "rwm") -> DeviceRule:
    return DeviceRule(True, kind, major, minor, access)


DEFAULT_ALLOWED: tuple[tuple[str | None, DeviceRule], ...] = (
    (None, _allow("c", ANY, ANY, "m")),  # mknod of any node; opening it is another matter
    (None, _allow("b", ANY, ANY, "m")),
    ("/dev/null", _allow("c", 1, 3)),
    ("/dev/random", _allow("c", 1, 8)),
    ("/dev/full", _allow("c", 1, 7)),
    ("/dev/tty", _allow("c", 5, 0)),
    ("/dev/zero", _allow("c", 1, 5)),
    ("/dev/urandom", _allow("c", 1, 9)),
    (None, _allow("c", 136, ANY)),  # /dev/pts/*
    (None, _allow("c", 5, 2)),  # /dev/ptmx
    (None, _allow("c", 10, 200)),  # /dev/net/tun: Docker always had it (runc PR 3468 put it back)
)
"""runc's default allowed devices (``libcontainer/specconv`` ``AllowedDevices``), in its order,
each with the path that drops it when the bundle lists a device of its own at that path."""

DEFAULT_RULES = frozenset(rule for _path, rule in DEFAULT_ALLOWED)


def parse_rule(entry: Mapping[str, Any]) -> DeviceRule:
    """An OCI ``linux.resources.devices`` entry; a missing type, major or minor means any.

    :raises CgroupError: a type other than a, b, c or an access outside rwm.
    """
    kind = entry.get("type") or "a"
    if kind not in ("a", "b", "c"):
        raise CgroupError(f"device rule {dict(entry)}: type {kind!r} is not a, b or c. Fix this and try again.")
    major, minor = entry.get("major"), entry.get("minor")
    return DeviceRule(
        bool(entry.get("allow", False)), kind,
        ANY if major is None else int(major), ANY if minor is None else int(minor),
        _access(str(entry.get("access") or "")),
    )


def rules_from_config(config: Mapping[str, Any]) -> list[DeviceRule] | None:
    """The rules a container's cgroup enforces: its config's own, then runc's defaults.

    None when the config has no ``linux.resources.devices`` at all (nothing to enforce, as runc
    would also leave the group open then apart from its defaults; we leave it to the parent).
    """
    linux = config.get("linux") or {}
    entries = (linux.get("resources") or {}).get("devices")
    if entries is None:
        return None
    rules = [parse_rule(e) for e in entries]
    own_paths = {d.get("path") for d in linux.get("devices") or []}
    rules.extend(rule for path, rule in DEFAULT_ALLOWED if path is None or path not in own_paths)
    return rules


class DeviceSet(NamedTuple):
    """The outcome of a rule list: a default and the exceptions to it, in the order first added."""

    default_allow: bool
    exceptions: tuple[DeviceRule, ...]  # each the opposite of the default


def effective(rules: Iterable[DeviceRule], *, default_allow: bool = True) -> DeviceSet:
    """Fold ``rules`` in order as the v1 kernel folds writes to ``devices.allow``/``devices.deny``.

    ``default_allow`` is where a fresh group starts (its parent's state; ours is allow-all).
    """
    allow = default_allow
    found: dict[tuple[str, int, int], str] = {}
    for rule in rules:
        if rule.type == "a":
            allow, found = rule.allow, {}
            continue
        key = (rule.type, rule.major, rule.minor)
        if rule.allow == allow:  # the default already says so: take the bits off an exception
            left = "".join(c for c in found.get(key, "") if c not in rule.access)
            if key in found:
                if left:
                    found[key] = left
                else:
                    del found[key]
        else:
            found[key] = _access(found.get(key, "") + rule.access)
    return DeviceSet(allow, tuple(DeviceRule(not allow, t, ma, mi, acc) for (t, ma, mi), acc in found.items()))


def permitted(devices: DeviceSet, kind: str, major: int, minor: int, access: str) -> bool:
    """Whether ``access`` (a subset of rwm) to ``kind major:minor`` is granted, as the v1 kernel
    decides: under a deny default one allow exception must cover every bit asked for; under an
    allow default any deny exception sharing a bit refuses."""
    asked = set(access)
    for e in devices.exceptions:
        if not e.matches(kind, major, minor):
            continue
        if devices.default_allow and asked & set(e.access):
            return False
        if not devices.default_allow and asked <= set(e.access):
            return True
    return devices.default_allow


def v1_list(devices: DeviceSet) -> list[str]:
    """What the group's ``devices.list`` reads once the set is written: the kernel shows only
    ``a *:* rwm`` under an allow default, whatever its deny exceptions, and the allow exceptions
    under a deny default."""
    if devices.default_allow:
        return ["a *:* rwm"]
    return [e.v1() for e in devices.exceptions]


def v1_writes(devices: DeviceSet) -> list[tuple[str, str]]:
    """(file, line) writes that give a fresh v1 group ``devices``; none for allow-all, which a new
    group inherits from its parent (and could not be granted by a write if the parent lacked it)."""
    if devices.default_allow and not devices.exceptions:
        return []
    reset = ("devices.allow", "a") if devices.default_allow else ("devices.deny", "a")
    add = "devices.deny" if devices.default_allow else "devices.allow"
    return [reset, *((add, e.v1()) for e in devices.exceptions)]
