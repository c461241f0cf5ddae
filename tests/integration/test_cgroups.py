"""cgroups for real on this host's version, and V2Cgroup against a stand-in cgroup2 tree.

The real tests need root and a usable cgroup filesystem; they skip with ``available()``'s reason
otherwise. Each test uses a fresh uuid name and destroys its group in a finalizer.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_pods.engine.runtime.cgroups import interface as cgroups
from pytest_pods.engine.runtime.cgroups import Limits, V1Cgroup, V2Cgroup, available, cgroup_version, list_cgroups, open_cgroup, shares_to_weight, v1_hierarchies, v1_memory_writes
from pytest_pods.errors import CgroupBusyError
from pytest_pods.errors import CgroupError

MiB = 1024 * 1024
REASON = available()
real = pytest.mark.skipif(REASON is not None, reason=f"cgroups unusable here: {REASON}")
v1_only = pytest.mark.skipif(cgroup_version() != 1, reason="host runs cgroup v2; the v1 tests need a v1 host")

# A child that waits for a line on stdin before running CODE, so it can be moved into the group
# first (what the runtime's monitor does before exec).
WAIT_THEN = "import sys; sys.stdin.readline()\n"
MakeGroup = Callable[..., cgroups.Cgroup]


def _uid() -> str:
    return "test-" + uuid.uuid4().hex


@pytest.fixture(scope="module", autouse=True)
def _remove_shared_parent() -> Iterator[None]:
    """The tests share the default ``pytest-pods`` parent: remove it once they are all done."""
    yield
    if os.geteuid() == 0:
        cgroups.remove_empty_parents()


@pytest.fixture
def make_group() -> Iterator[MakeGroup]:
    """Factory for real groups under a per-test parent; every group is destroyed afterwards."""
    made: list[cgroups.Cgroup] = []

    def make(limits: Limits = Limits()) -> cgroups.Cgroup:
        group = open_cgroup(_uid(), limits)
        made.append(group)
        return group

    yield make
    for group in made:
        group.destroy()
    cgroups.remove_empty_parents()  # the shared default parent, once no test group is left


def _child(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WAIT_THEN + code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


# --------------------------------------------------------------------------- pure logic


def test_open_cgroup_rejects_names_that_leave_the_parent() -> None:
    for bad in ("", "..", ".", "a/b", "../x", "x\n"):
        with pytest.raises(CgroupError, match="invalid name"):
            V2Cgroup(bad, root="/nonexistent")
    with pytest.raises(CgroupError, match="invalid parent"):
        V2Cgroup("ok", root="/nonexistent", parent="../etc")


def test_limits_follow_docker_defaults_and_checks() -> None:
    assert Limits(memory=64 * MiB).memsw() == 128 * MiB  # docker: swap defaults to memory
    assert Limits(memory=64 * MiB, memory_swap=-1).memsw() == -1
    assert Limits(memory=64 * MiB, memory_swap=96 * MiB).memsw() == 96 * MiB
    assert Limits().memsw() is None
    for bad in (
        Limits(memory=64 * MiB, memory_swap=32 * MiB),
        Limits(memory_swap=32 * MiB),
        Limits(memory=0),
        Limits(pids=-2),
        Limits(cpus=-1),
        Limits(cpu_shares=0),
    ):
        with pytest.raises(CgroupError, match="check limits"):
            bad.check()


def test_shares_to_weight_maps_docker_range_onto_v2_range() -> None:
    assert shares_to_weight(2) == 1
    assert shares_to_weight(1024) == 100  # docker's default lands on the v2 default
    assert shares_to_weight(262144) == 10000
    assert shares_to_weight(1) == 1 and shares_to_weight(10**7) == 10000
    weights = [shares_to_weight(s) for s in (2, 64, 512, 1024, 4096, 262144)]
    assert weights == sorted(weights)


def test_v1_memory_writes_keep_limit_below_memsw_at_every_step() -> None:
    """limit_in_bytes <= memsw.limit_in_bytes must hold after each single write."""
    cases = [  # (current limit, current memsw, new limit, new memsw)
        (2**63 - 4096, 2**63 - 4096, 64 * MiB, 128 * MiB),  # fresh group: lowering
        (64 * MiB, 128 * MiB, 256 * MiB, 512 * MiB),  # raising past the current memsw
        (256 * MiB, 512 * MiB, 32 * MiB, 48 * MiB),  # lowering below the current limit
        (64 * MiB, 128 * MiB, 100 * MiB, 120 * MiB),
        (64 * MiB, 128 * MiB, 200 * MiB, -1),
    ]
    for limit, memsw, new_limit, new_memsw in cases:
        state = {"memory.limit_in_bytes": limit, "memory.memsw.limit_in_bytes": memsw}
        for file, value in v1_memory_writes(memsw, new_limit, new_memsw):
            state[file] = 2**63 if value == -1 else value
            assert state["memory.limit_in_bytes"] <= state["memory.memsw.limit_in_bytes"], (file, value)
    assert v1_memory_writes(None, 64 * MiB, 128 * MiB) == [("memory.limit_in_bytes", 64 * MiB)]


def test_v1_hierarchies_handle_separate_and_comounted_cpu() -> None:
    separate = (
        "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
        "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
        "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
    )
    assert v1_hierarchies(mountinfo=separate) == {
        "cpu": "/sys/fs/cgroup/cpu",
        "cpuacct": "/sys/fs/cgroup/cpuacct",
        "memory": "/sys/fs/cgroup/memory",
    }
    comounted = (
        "25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
        "26 24 0:23 / /sys/fs/cgroup/pids rw,nosuid shared:10 - cgroup cgroup rw,pids\n"
        "27 24 0:24 / /sys/fs/cgroup/freezer rw,nosuid shared:11 - cgroup cgroup rw,freezer\n"
        "28 24 0:25 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
        "29 24 0:26 / /other/memory rw - cgroup cgroup rw,memory\n"
    )
    found = v1_hierarchies(mountinfo=comounted)
    assert found == {
        "cpu": "/sys/fs/cgroup/cpu,cpuacct",
        "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
        "pids": "/sys/fs/cgroup/pids",
        "freezer": "/sys/fs/cgroup/freezer",
    }
    group = V1Cgroup("x", hierarchies=found)
    assert group.paths == [  # the co-mounted hierarchy gets one directory, not two
        "/sys/fs/cgroup/pids/pytest-pods/x",
        "/sys/fs/cgroup/cpu,cpuacct/pytest-pods/x",
        "/sys/fs/cgroup/freezer/pytest-pods/x",
    ]
    with pytest.raises(CgroupError, match="no v1 hierarchy for controller memory"):
        V1Cgroup("x", Limits(memory=64 * MiB), hierarchies=found).create()


# --------------------------------------------------------------------------- v1, for real


def _v1_dirs(name: str) -> list[str]:
    return [os.path.join(m, "pytest-pods", name) for m in dict.fromkeys(v1_hierarchies().values())]


@real
@v1_only
def test_v1_create_writes_limits_and_destroy_kills_and_removes(make_group: MakeGroup) -> None:
    limits = Limits(memory=64 * MiB, pids=16, cpus=0.5, cpu_shares=512)
    group = make_group(limits)
    assert isinstance(group, V1Cgroup)
    group.create()
    h = {c: os.path.join(m, "pytest-pods", group.name) for c, m in v1_hierarchies().items()}
    for ctrl in ("memory", "pids", "cpu", "cpuacct", "freezer"):
        assert os.path.isdir(h[ctrl]), ctrl

    def read(ctrl: str, file: str) -> str:
        return Path(h[ctrl], file).read_text().strip()

    assert read("memory", "memory.limit_in_bytes") == str(64 * MiB)
    if os.path.exists(os.path.join(h["memory"], "memory.memsw.limit_in_bytes")):
        assert read("memory", "memory.memsw.limit_in_bytes") == str(128 * MiB)
    assert read("pids", "pids.max") == "16"
    assert read("cpu", "cpu.cfs_period_us") == "100000"
    assert read("cpu", "cpu.cfs_quota_us") == "50000"
    assert read("cpu", "cpu.shares") == "512"
    assert group.oci_path() == f"/pytest-pods/{group.name}"
    assert group.name in list_cgroups()

    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        group.add(sleeper.pid)
        assert group.procs() == [sleeper.pid]
        for d in group.paths:
            assert Path(d, "cgroup.procs").read_text().split() == [str(sleeper.pid)]
        st = group.stats()
        assert st.memory_limit == 64 * MiB
        assert st.pids_current == 1 and st.pids_limit == 16
        assert 0 <= st.memory_usage <= 64 * MiB and st.cpu_usage_ns >= 0
        assert not group.oom_killed()

        t0 = time.monotonic()
        group.destroy()
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
        assert time.monotonic() - t0 < 2
    finally:
        sleeper.kill()
        sleeper.wait()
    for d in _v1_dirs(group.name):
        assert not os.path.exists(d), d
    assert group.name not in list_cgroups()
    group.destroy()  # a second destroy finds nothing and is fine


@real
@v1_only
def test_v1_stats_count_memory_and_cpu_of_members(make_group: MakeGroup) -> None:
    group = make_group(Limits(memory=128 * MiB))
    group.create()
    code = "x = b'x' * (24 << 20)\nt = __import__('time').process_time()\nwhile __import__('time').process_time() - t < 0.05: pass\nprint('ready', flush=True)\nsys.stdin.readline()\n"
    proc = _child(code)
    try:
        group.add(proc.pid)
        _go(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        st = group.stats()
        assert st.memory_usage >= 24 * MiB
        assert st.memory_max_usage is not None and st.memory_max_usage >= st.memory_usage
        assert st.cpu_usage_ns >= 40_000_000
        assert st.pids_current == 1 and st.pids_limit is None
    finally:
        group.destroy()
        proc.wait(timeout=5)


@real
@v1_only
@pytest.mark.parametrize(
    ("limits", "file", "value"),
    [
        (Limits(memory=64 * MiB, pids=10**9), "pids.max", "1000000000"),  # after memory: undo needed
        (Limits(cpus=0.001), "cpu.cfs_quota_us", "100"),  # the kernel wants at least 1 ms
    ],
)
def test_v1_create_with_bad_value_fails_and_leaves_nothing(limits: Limits, file: str, value: str) -> None:
    group = open_cgroup(_uid(), limits)
    try:
        with pytest.raises(CgroupError, match=rf"create cgroup {group.name}: write '{value}' to .*/{file}: "):
            group.create()
        for d in _v1_dirs(group.name):
            assert not os.path.exists(d), d
    finally:
        group.destroy()


@real
@v1_only
def test_v1_oom_kill_is_sigkill_and_reported(make_group: MakeGroup) -> None:
    group = make_group(Limits(memory=32 * MiB))
    group.create()
    proc = _child("x = b'x' * (200 << 20)\nprint('survived', flush=True)\n")
    try:
        group.add(proc.pid)
        assert not group.oom_killed()
        _go(proc)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        assert proc.stdout is not None and proc.stdout.read() == ""
        assert group.oom_killed()
    finally:
        proc.kill()
        proc.wait()


@real
@v1_only
def test_v1_pids_limit_makes_fork_fail(make_group: MakeGroup) -> None:
    group = make_group(Limits(pids=16))
    group.create()
    code = (
        "import os, signal\n"
        "ok, err = 0, None\n"
        "for _ in range(40):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError as exc:\n"
        "        err = exc.errno\n"
        "        break\n"
        "    if pid == 0:\n"
        "        signal.pause()\n"
        "        os._exit(0)\n"
        "    ok += 1\n"
        "print(ok, err, flush=True)\n"
        "sys.stdin.readline()\n"
    )
    proc = _child(code)
    try:
        group.add(proc.pid)
        _go(proc)
        assert proc.stdout is not None
        ok, err = proc.stdout.readline().split()
        assert int(ok) == 15 and err == str(errno.EAGAIN)  # 1 parent + 15 children
        assert group.stats().pids_current == 16
        assert len(group.procs()) == 16
        group.destroy(timeout=5)  # children are not ours: freezer + SIGKILL must get them all
        assert proc.wait(timeout=5) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()


@real
@v1_only
def test_v1_kernel_refuses_the_wrong_memory_order(make_group: MakeGroup) -> None:
    """Checks the rule v1_memory_writes encodes against the real kernel, both ways round."""
    group = make_group(Limits(memory=64 * MiB, memory_swap=128 * MiB))
    group.create()
    mem = Path(v1_hierarchies()["memory"], "pytest-pods", group.name)
    if not (mem / "memory.memsw.limit_in_bytes").exists():
        pytest.skip("no swap accounting (memory.memsw.*) on this kernel")
    with pytest.raises(OSError) as info:  # limit first when raising past memsw: EINVAL
        (mem / "memory.limit_in_bytes").write_text(str(256 * MiB))
    assert info.value.errno == errno.EINVAL
    for current, (new, new_sw) in ((128, (256, 512)), (512, (32, 48)), (48, (64, -1))):
        for file, value in v1_memory_writes(current * MiB, new * MiB, new_sw if new_sw == -1 else new_sw * MiB):
            (mem / file).write_text(str(value))
        assert (mem / "memory.limit_in_bytes").read_text().strip() == str(new * MiB)


@real
@v1_only
def test_v1_destroy_stops_a_fork_bomb(make_group: MakeGroup) -> None:
    """Freeze, kill, thaw: a group forking as fast as it can is still emptied and removed."""
    group = make_group(Limits(pids=64))
    group.create()
    code = (
        "import os\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    try:\n"
        "        os.fork()\n"
        "    except OSError:\n"
        "        pass\n"
    )
    proc = _child(code)
    try:
        group.add(proc.pid)
        _go(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(0.2)
        assert group.stats().pids_current > 8
        group.destroy(timeout=5)
        for d in _v1_dirs(group.name):
            assert not os.path.exists(d), d
    finally:
        proc.kill()
        proc.wait()


@real
@v1_only
def test_v1_kill_with_other_signal_reaches_every_member(make_group: MakeGroup) -> None:
    group = make_group()
    group.create()
    sleepers = [subprocess.Popen(["sleep", "30"]) for _ in range(3)]
    try:
        for p in sleepers:
            group.add(p.pid)
        group.kill(signal.SIGTERM)
        assert [p.wait(timeout=5) for p in sleepers] == [-signal.SIGTERM] * 3
        state = Path(v1_hierarchies()["freezer"], "pytest-pods", group.name, "freezer.state").read_text()
        assert state.strip() == "THAWED"
    finally:
        for p in sleepers:
            p.kill()
            p.wait()


@real
def test_add_of_missing_pid_raises() -> None:
    group = open_cgroup(_uid())
    try:
        group.create()
        proc = subprocess.Popen(["true"])
        proc.wait()
        with pytest.raises(CgroupError, match=rf"add {proc.pid} to cgroup {group.name}: write"):
            group.add(proc.pid)
    finally:
        group.destroy()


# --------------------------------------------------------------------------- v2, on a stand-in tree


@pytest.fixture
def fake_v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A plain-directory stand-in for a cgroup2 root, because this host has no v2 controllers.

    It models what V2Cgroup relies on: ``cgroup.controllers`` and ``cgroup.subtree_control`` at the
    root and the parent, and rmdir succeeding on a group whose only files are interface files
    (cgroupfs removes them with the directory; a plain directory would refuse), EBUSY while
    ``cgroup.procs`` lists a process.
    """
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (root / "cgroup.subtree_control").write_text("memory\n")
    parent = root / "pytest-pods"
    parent.mkdir()
    (parent / "cgroup.controllers").write_text("cpu memory pids\n")
    (parent / "cgroup.subtree_control").write_text("")
    (parent / "memory.swap.max").write_text("max\n")

    def rmdir(path: str) -> None:
        procs = Path(path, "cgroup.procs")
        if procs.exists() and procs.read_text().split():
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), path)
        for entry in os.scandir(path):
            if entry.is_file():
                os.unlink(entry.path)
        os.rmdir(path)

    monkeypatch.setattr(cgroups, "_rmdir", rmdir)
    return root


def _fill(group: V2Cgroup, **files: str) -> None:
    """Write what the kernel would show in the group's interface files."""
    for name, text in files.items():
        Path(group.path, name.replace("__", ".")).write_text(text)


def test_v2_create_enables_controllers_and_writes_limit_formats(fake_v2: Path) -> None:
    """Stand-in tree: this host cannot run cgroup v2 controllers, so the files are checked as text."""
    assert cgroup_version(str(fake_v2)) == 2
    limits = Limits(memory=64 * MiB, memory_swap=96 * MiB, pids=16, cpus=1.5, cpu_shares=1024)
    group = open_cgroup(_uid(), limits, root=str(fake_v2))
    assert isinstance(group, V2Cgroup)
    group.create()
    assert (fake_v2 / "cgroup.subtree_control").read_text() == "+pids +cpu"  # memory was already on
    assert (fake_v2 / "pytest-pods" / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    d = Path(group.path)
    assert (d / "memory.max").read_text() == str(64 * MiB)
    assert (d / "memory.swap.max").read_text() == str(32 * MiB)  # memory_swap minus memory
    assert (d / "pids.max").read_text() == "16"
    assert (d / "cpu.max").read_text() == "150000 100000"
    assert (d / "cpu.weight").read_text() == "100"
    assert group.oci_path() == f"/pytest-pods/{group.name}"
    assert list_cgroups(root=str(fake_v2)) == [group.name]


def test_v2_unlimited_values_and_default_swap(fake_v2: Path) -> None:
    """Stand-in tree (no v2 controllers on this host): 'max' spellings and docker's 2x swap default."""
    a = V2Cgroup(_uid(), Limits(memory=64 * MiB, pids=-1, cpus=0), root=str(fake_v2))
    a.create()
    assert Path(a.path, "memory.swap.max").read_text() == str(64 * MiB)
    assert Path(a.path, "pids.max").read_text() == "max"
    assert Path(a.path, "cpu.max").read_text() == "max 100000"
    b = V2Cgroup(_uid(), Limits(memory=64 * MiB, memory_swap=-1), root=str(fake_v2))
    b.create()
    assert Path(b.path, "memory.swap.max").read_text() == "max"
    os.unlink(fake_v2 / "pytest-pods" / "memory.swap.max")  # no swap accounting: not written
    c = V2Cgroup(_uid(), Limits(memory=64 * MiB), root=str(fake_v2))
    c.create()
    assert not Path(c.path, "memory.swap.max").exists()


def test_v2_missing_controller_fails_clearly_and_leaves_no_group(fake_v2: Path) -> None:
    """Stand-in tree (no v2 controllers on this host): a root without the cpu controller."""
    (fake_v2 / "cgroup.controllers").write_text("memory pids\n")
    group = V2Cgroup(_uid(), Limits(cpus=1), root=str(fake_v2))
    with pytest.raises(CgroupError, match=r"controller cpu not in .*/cgroup\.controllers"):
        group.create()
    assert not os.path.exists(group.path)
    # without a cpu limit the same root is fine, and only what it has is enabled
    ok = V2Cgroup(_uid(), Limits(memory=64 * MiB), root=str(fake_v2))
    ok.create()
    assert (fake_v2 / "cgroup.subtree_control").read_text() == "+pids"


def test_v2_stats_and_oom_parse_kernel_files(fake_v2: Path) -> None:
    """Stand-in tree (no v2 controllers on this host): files filled with kernel-format text."""
    group = V2Cgroup(_uid(), Limits(memory=32 * MiB), root=str(fake_v2))
    group.create()
    _fill(
        group,
        memory__current="1048576\n",
        memory__peak="2097152\n",
        pids__current="3\n",
        pids__max="max\n",
        cpu__stat="usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\n",
        memory__events="low 0\nhigh 0\nmax 4\noom 1\noom_kill 0\noom_group_kill 0\n",
    )
    st = group.stats()
    assert st == cgroups.CgroupStats(
        memory_usage=1048576,
        memory_limit=32 * MiB,
        memory_max_usage=2097152,
        pids_current=3,
        pids_limit=None,
        cpu_usage_ns=1_500_000,
    )
    assert not group.oom_killed()
    _fill(group, memory__events="low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\noom_group_kill 0\n")
    assert group.oom_killed()
    os.unlink(Path(group.path, "memory.peak"))  # kernels before 5.19
    assert group.stats().memory_max_usage is None


def test_v2_destroy_waits_for_empty_then_removes(fake_v2: Path) -> None:
    """Stand-in tree (no v2 controllers on this host): cgroup.kill is used, emptiness is awaited."""
    group = V2Cgroup(_uid(), root=str(fake_v2))
    group.create()
    _fill(group, cgroup__procs="4242\n", cgroup__events="populated 1\nfrozen 0\n", cgroup__kill="")
    with pytest.raises(CgroupBusyError, match=rf"destroy cgroup {group.name}: 1 process\(es\) still in it"):
        group.destroy(timeout=0.05)
    assert Path(group.path, "cgroup.kill").read_text() == "1"  # SIGKILL went through cgroup.kill
    assert os.path.isdir(group.path)
    _fill(group, cgroup__procs="", cgroup__events="populated 0\nfrozen 0\n")
    group.destroy()
    assert not os.path.exists(group.path)
    assert list_cgroups(root=str(fake_v2)) == []
    group.destroy()  # idempotent


def test_v2_kill_without_cgroup_kill_signals_each_process(fake_v2: Path) -> None:
    """Stand-in tree (no v2 controllers on this host) listing a real child of ours in cgroup.procs."""
    group = V2Cgroup(_uid(), root=str(fake_v2))
    group.create()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        _fill(group, cgroup__procs=f"{sleeper.pid}\n")
        assert group.procs() == [sleeper.pid]
        group.kill(signal.SIGTERM)
        assert sleeper.wait(timeout=5) == -signal.SIGTERM
    finally:
        sleeper.kill()
        sleeper.wait()


def test_cgroup_version_reads_this_hosts_mounts() -> None:
    """The hybrid layout here (cgroup2 only at /sys/fs/cgroup/unified) counts as v1."""
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    top = [line for line in mounts if line.split(" - ")[0].split()[4] == "/sys/fs/cgroup"]
    if not top:
        pytest.skip("no mount at /sys/fs/cgroup")
    expected = 2 if top[-1].split(" - ")[1].split()[0] == "cgroup2" else 1
    assert cgroup_version() == expected
