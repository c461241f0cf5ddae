"""The device cgroup (issue 14), on the real kernel: a container's root keeps CAP_MKNOD as in Docker,
so it may make a node for the host's disk, but not open it; the default devices and ``--device``
nodes work with the permissions given; privileged containers may use every device.

v1 (this VM is a hybrid host) is checked through the group's ``devices.list`` as the host sees it,
since opening a host block device from a container fails with EPERM here even without our rules.
v2 (the device program) is checked by attaching it to a group in a cgroup2 mount: the hybrid
host's ``unified`` tree, or the root of a pure v2 host.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from pytest_pods import Client
from pytest_pods.engine import rootless
from pytest_pods.engine.runtime.cgroups import V2Cgroup, cgroup_version, effective, list_cgroups, rules_from_config
from pytest_pods.engine.runtime.spec import ContainerSpec

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or rootless.active(),
                                reason="the device cgroup needs root (rootless containers have none)")

V1_DEVICES = "/sys/fs/cgroup/devices"
v1_only = pytest.mark.skipif(not os.path.isfile(f"{V1_DEVICES}/devices.list"),
                             reason="no cgroup v1 devices hierarchy on this host")
DOCKER_DEFAULT_LIST = [
    "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm",
    "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm",
]


def host_block_device() -> tuple[int, int]:
    """A real block device of the host (its disk, as lsblk lists it), major and minor."""
    for entry in sorted(os.listdir("/sys/dev/block")):
        major, minor = (int(n) for n in entry.split(":"))
        if major != 7:  # a loop device is harmless: prefer a disk
            return major, minor
    pytest.skip("no block device in /sys/dev/block")


def run(client: Client, cmd: list[str], **fields: Any) -> tuple[int, str, str]:
    fields.setdefault("network", "none")
    spec = ContainerSpec(image="busybox", command=cmd, **fields)
    c = client.containers.get(client.runtime.create(spec, client.store.get_image("busybox")))
    try:
        c.start()
        code = c.wait(timeout=60)
        return code, c.logs(stderr=False).decode(), c.logs(stdout=False).decode()
    finally:
        c.remove(force=True)


def devices_list_of_running(client: Client, **fields: Any) -> tuple[list[str], str]:
    """(the host's view of a sleeping container's devices.list, its group directory)."""
    spec = ContainerSpec(image="busybox", command=["sleep", "60"], network="none", **fields)
    c = client.containers.get(client.runtime.create(spec, client.store.get_image("busybox")))
    group = f"{V1_DEVICES}/{client.runtime.cgroup_parent}/{c.id}"
    try:
        c.start()
        pid = c.state["pid"]
        assert f"devices:/{client.runtime.cgroup_parent}/{c.id}\n" in Path(f"/proc/{pid}/cgroup").read_text()
        return Path(group, "devices.list").read_text().splitlines(), group
    finally:
        c.remove(force=True)
        gone_soon(group)


def gone_soon(path: str, timeout: float = 5.0) -> None:
    """rm -f of a running container returns once its processes are gone; its monitor removes the
    cgroup as it ends, a few ms later."""
    deadline = time.monotonic() + timeout
    while os.path.exists(path):
        assert time.monotonic() < deadline, f"{path} still there {timeout} s after rm -f"
        time.sleep(0.01)


def test_mknod_of_the_hosts_disk_is_allowed_but_opening_it_is_not(client: Client) -> None:
    major, minor = host_block_device()
    code, out, err = run(client, ["sh", "-c", f"mknod /dev/disk b {major} {minor} && echo made; "
                                              "head -c 1 /dev/disk >/dev/null && echo read"])
    assert out.split() == ["made"], err
    assert code != 0 and "/dev/disk: Operation not permitted" in err


def test_opening_a_char_device_outside_the_defaults_is_refused(client: Client) -> None:
    # /dev/kmsg (c 1:11) opens for root on the host; a container may make it but not open it
    code, out, err = run(client, ["sh", "-c", "mknod /dev/k c 1 11 && echo made; echo x > /dev/k"])
    assert out.split() == ["made"] and code != 0
    assert "Operation not permitted" in err, err


def test_default_devices_work(client: Client) -> None:
    _, out, err = run(client, ["sh", "-c",
                                  "echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c"
                                  " && head -c 4 /dev/random | wc -c; : < /dev/tty"])
    assert out.split() == ["4", "4", "4"], err
    # /dev/tty opens as far as the tty layer: no controlling terminal, not a refused device
    assert "/dev/tty: No such device or address" in err and "not permitted" not in err


def test_a_device_is_usable_with_the_permissions_given(client: Client) -> None:
    code, out, err = run(client, ["sh", "-c", "head -c 5 /dev/myzero | wc -c; echo x > /dev/myzero && echo wrote"],
                         devices=["/dev/zero:/dev/myzero"])
    assert code == 0 and out.split() == ["5", "wrote"], err
    # at the default device's own path the rule replaces the default one (as runc does): r only
    code, out, err = run(client, ["sh", "-c", "head -c 5 /dev/zero | wc -c; echo x > /dev/zero"],
                         devices=["/dev/zero:/dev/zero:r"])
    assert out.split() == ["5"] and code != 0 and "Operation not permitted" in err, err
    # a device outside the defaults, granted w only: its write opens (refused without it, see
    # above); reading the kernel log needs CAP_SYSLOG besides, so the read proves nothing here
    code, out, err = run(client, ["sh", "-c", "echo pytest-pods device cgroup test > /dev/kmsg && echo wrote"],
                         devices=["/dev/kmsg:/dev/kmsg:w"])
    assert code == 0 and out.split() == ["wrote"], err


def test_exec_is_confined_too(client: Client) -> None:
    spec = ContainerSpec(image="busybox", command=["sleep", "60"], network="none")
    c = client.containers.get(client.runtime.create(spec, client.store.get_image("busybox")))
    try:
        c.start()
        r = c.exec(["sh", "-c", "mknod /dev/k c 1 11 && echo x > /dev/k"])
        assert r.exit_code != 0 and b"Operation not permitted" in r.stderr
    finally:
        c.remove(force=True)


@v1_only
def test_v1_devices_list_is_dockers(client: Client) -> None:
    listed, _ = devices_list_of_running(client)
    assert listed == DOCKER_DEFAULT_LIST
    listed, _ = devices_list_of_running(client, devices=["/dev/kmsg:/dev/kmsg:w"])
    assert listed == ["c 1:11 w", *DOCKER_DEFAULT_LIST]
    listed, _ = devices_list_of_running(client, devices=["/dev/zero:/dev/zero:r"])
    assert listed == ["c 1:5 r", *(line for line in DOCKER_DEFAULT_LIST if line != "c 1:5 rwm")]
    listed, _ = devices_list_of_running(client, privileged=True)
    assert listed == ["a *:* rwm"]


@v1_only
def test_reap_of_a_killed_monitor_leaves_no_devices_group(client: Client, name: str) -> None:
    c = client.containers.run("busybox", ["sleep", "300"], detach=True, name=name)
    group = f"{V1_DEVICES}/{client.runtime.cgroup_parent}/{c.id}"
    assert os.path.isdir(group)
    os.kill(c.state["monitor_pid"], 9)
    time.sleep(0.2)
    assert c.id in list_cgroups(parent=client.runtime.cgroup_parent)
    client.reap()
    assert not os.path.exists(group) and c.id not in list_cgroups(parent=client.runtime.cgroup_parent)
    c.remove()
    assert not os.path.exists(group)


# --------------------------------------------------------------------------- v2: the device program


def _cgroup2_root() -> str | None:
    if cgroup_version() == 2:
        return "/sys/fs/cgroup"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" - ")
            if len(fields) == 2 and fields[1].split()[0] == "cgroup2":
                return line.split()[4]
    return None


def test_v2_device_program_loads() -> None:
    from pytest_pods.engine import linux
    from pytest_pods.engine.runtime.cgroups.devices_bpf import BPF_PROG_TEST_RUN, compile_program, encode, load

    rules = rules_from_config({"linux": {"resources": {"devices": [{"allow": False, "access": "rwm"}]}}})
    assert rules is not None
    fd = load(encode(compile_program(effective(rules))))
    try:
        # the kernel has no test run for device programs (the unit tests interpret the program)
        ctx = ctypes.create_string_buffer(struct.pack("=III", 2 | 2 << 16, 1, 3))
        attr = ctypes.create_string_buffer(128)
        struct.pack_into("=I", attr, 0, fd)
        struct.pack_into("=IIQ", attr, 40, len(ctx) - 1, 0, ctypes.addressof(ctx))
        with pytest.raises(OSError) as info:
            linux.bpf(BPF_PROG_TEST_RUN, attr)
        assert info.value.errno in (errno.EINVAL, errno.ENOTSUP, 524)  # 524: ENOTSUPP, the kernel's own
    finally:
        os.close(fd)


def test_v2_device_program_is_enforced_on_a_group() -> None:
    root = _cgroup2_root()
    if root is None:
        pytest.skip("no cgroup2 mount on this host")
    rules = rules_from_config({
        "linux": {"resources": {"devices": [{"allow": False, "access": "rwm"},
                                            {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}]}}})
    parent = f"pytest-pods-devtest-{uuid.uuid4().hex[:8]}"
    group = V2Cgroup("g", root=root, parent=parent, devices=rules)
    group.create()
    try:
        script = (f"echo $$ > {group.path}/cgroup.procs || exit 9; "
                  "echo x > /dev/null && echo null; head -c 3 /dev/zero | wc -c; "
                  "mknod /tmp/{n} b {maj} {mi} && echo mknod; head -c 1 /tmp/{n}; rm -f /tmp/{n}; "
                  "exec 3</dev/kmsg && echo kmsg-read; echo x > /dev/kmsg")
        major, minor = host_block_device()
        r = subprocess.run(["sh", "-c", script.format(n=parent, maj=major, mi=minor)],
                           capture_output=True, text=True, timeout=30)
        assert r.stdout.split() == ["null", "3", "mknod", "kmsg-read"], r.stderr
        assert r.stderr.count("Operation not permitted") == 2, r.stderr  # the disk read, the kmsg write
    finally:
        group.destroy()
        os.rmdir(os.path.join(root, parent))
    assert not os.path.exists(group.path)
