"""Containers on the real kernel: isolation, limits, lifecycle, cleanup (issue 2 acceptance)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from pytest_pods import Client, ContainerStartError


def run_sh(client: Client, script: str, **kw: object):  # type: ignore[no-untyped-def]
    kw.setdefault("network", "none")  # these are about isolation and limits, not networks
    return client.containers.run("busybox", ["sh", "-c", script], remove=True, **kw)


def test_first_process_is_pid_1_and_sees_only_its_own_processes(client: Client) -> None:
    r = run_sh(client, "echo $$; ps -o pid,comm | tail -n +2")
    lines = r.output.decode().split()
    assert lines[0] == "1"
    pids = [int(x) for x in lines[1::2]]
    assert max(pids) < 10, r.output  # only the shell and ps, numbered inside the namespace


def test_hostname_is_the_containers(client: Client, name: str) -> None:
    r = client.containers.run("busybox", ["hostname"], remove=True, hostname="box-1")
    assert r.output == b"box-1\n"
    c = client.containers.run("busybox", ["sleep", "30"], detach=True, name=name)
    try:
        assert c.exec(["hostname"]).output.decode().strip() == c.id[:12]
        assert c.exec(["cat", "/etc/hostname"]).output.decode().strip() == c.id[:12]
    finally:
        c.remove(force=True)


def test_mounting_is_not_permitted(client: Client) -> None:
    r = run_sh(client, "mount -t tmpfs x /tmp")
    assert r.exit_code != 0
    assert b"denied" in r.stderr or b"not permitted" in r.stderr


def test_proc_kcore_reads_nothing_and_proc_sys_is_read_only(client: Client) -> None:
    r = run_sh(client, "cat /proc/kcore | wc -c; echo 1 > /proc/sys/kernel/ns_last_pid; echo rc=$?")
    out = r.output.decode().split()
    assert out[0] == "0"
    assert "rc=1" in out


def test_default_capabilities_and_no_new_privs(client: Client) -> None:
    r = run_sh(client, "grep -E 'CapEff|CapBnd|NoNewPrivs' /proc/self/status")
    status = dict(line.split(":\t") for line in r.output.decode().splitlines())
    assert int(status["CapEff"], 16) == 0xA80425FB  # docker's default set
    assert status["CapBnd"] == status["CapEff"]
    assert status["NoNewPrivs"] == "0"  # docker's default: setuid binaries (su, ping) work
    r = client.containers.run("busybox", ["grep", "NoNewPrivs", "/proc/self/status"], remove=True,
                              no_new_privileges=True)
    assert r.output.split()[-1] == b"1"


def test_network_none_has_only_loopback(client: Client) -> None:
    r = run_sh(client, "ls /sys/class/net; ip -o link | wc -l")
    names = r.output.decode().split()
    assert names[:-1] == ["lo"]
    assert names[-1] == "1"


def test_a_file_written_in_one_container_is_absent_from_the_next(client: Client) -> None:
    assert run_sh(client, "echo secret > /root/note && cat /root/note").output == b"secret\n"
    assert run_sh(client, "cat /root/note").exit_code == 1


def test_image_config_env_cmd_workdir_user_apply(client: Client, tmp_path: Path) -> None:
    import tarfile

    rootfs = tmp_path / "tar"
    with tarfile.open(rootfs, "w") as tf:
        info = tarfile.TarInfo("etc/passwd")
        data = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
        info.size = len(data)
        import io

        tf.addfile(info, io.BytesIO(data))
        for d in ("home/app", "srv"):
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            tf.addfile(ti)
    base = client.images.get("busybox")
    # a two-layer image: busybox + our layer, with a config of its own
    from pytest_pods.engine.image.bootstrap import add_layer_from_tar, image_config

    layer = add_layer_from_tar(client.store, rootfs)
    cfg = image_config(
        [*base.diff_ids, layer["digest"]],
        config={"Env": ["PATH=/bin:/sbin", "GREETING=hi"], "Cmd": ["sh", "-c", "echo $GREETING $(id -u) $(pwd)"],
                "WorkingDir": "/srv", "User": "app"},
    )
    img = client.store.create_image(cfg, [*base.layers, layer], ["test/config-applies:1"])
    try:
        r = client.containers.run("test/config-applies:1", remove=True)
        assert r.output == b"hi 1000 /srv\n"
        r = client.containers.run("test/config-applies:1", ["sh", "-c", "echo $HOME $(id -un)"], remove=True)
        assert r.output == b"/home/app app\n"
        r = client.containers.run("test/config-applies:1", ["pwd"], remove=True, working_dir="/new/dir", user="0")
        assert r.output == b"/new/dir\n"
    finally:
        client.images.remove(img.id, force=True)


def test_memory_limit_oom_kill_is_reported(client: Client, name: str) -> None:
    c = client.containers.create(
        "busybox", ["sh", "-c", 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived'],
        name=name, memory="64m",
    )
    try:
        c.start()
        assert c.wait(timeout=60) == 137
        state = c.inspect()["State"]
        assert state["OOMKilled"] is True
        assert state["ExitCode"] == 137
        assert b"survived" not in c.logs()
    finally:
        c.remove(force=True)


def test_pids_limit_contains_a_fork_bomb(client: Client, name: str) -> None:
    c = client.containers.run("busybox", ["sh", "-c", "f(){ f | f & }; f; sleep 30"], detach=True,
                              name=name, pids_limit=32)
    try:
        time.sleep(1.0)
        assert c.stats()["pids"] <= 32
        t0 = time.monotonic()
        assert run_sh(client, "true").exit_code == 0  # the host still starts containers promptly
        assert time.monotonic() - t0 < 5
    finally:
        c.remove(force=True)
    assert c.id not in [x.id for x in client.containers.list(all=True)]


def test_cpus_and_memory_limits_reach_the_cgroup(client: Client) -> None:
    r = run_sh(client, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us",
               memory="96m", cpus=0.5)
    if not os.path.isdir("/sys/fs/cgroup/memory"):
        pytest.skip("cgroup v2 host: the v1 files read here do not exist")
    assert r.output.split() == [str(96 * 1024 * 1024).encode(), b"50000"]


def test_stop_escalates_to_sigkill_after_the_grace_period(pods_cli, name: str) -> None:  # type: ignore[no-untyped-def]
    pods_cli("run", "-d", "--name", name, "busybox", "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done", check=True)
    try:
        t0 = time.monotonic()
        pods_cli("stop", "-t", "2", name, check=True)
        elapsed = time.monotonic() - t0
        assert 1.8 <= elapsed < 4.0, elapsed
        assert pods_cli("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name).stdout.split() == ["exited", "137"]
    finally:
        pods_cli("rm", "-f", name)


def test_stop_uses_the_stop_signal_and_a_handler_exits_promptly(pods_cli, name: str) -> None:  # type: ignore[no-untyped-def]
    pods_cli("run", "-d", "--name", name, "--stop-signal", "USR1", "busybox", "sh", "-c",
         "trap 'exit 7' USR1; while true; do sleep 0.1; done", check=True)
    try:
        t0 = time.monotonic()
        pods_cli("stop", name, check=True)
        assert time.monotonic() - t0 < 2
        assert pods_cli("wait", name).stdout.strip() == "7"
    finally:
        pods_cli("rm", "-f", name)


def test_detached_lifecycle_across_separate_cli_processes(pods_cli, name: str) -> None:  # type: ignore[no-untyped-def]
    cid = pods_cli("run", "-d", "--name", name, "busybox", "sh", "-c",
               "echo started; echo oops >&2; while true; do sleep 0.1; [ -f /tmp/stop ] && exit 3; done",
               check=True).stdout.strip()
    assert len(cid) == 64
    follower = subprocess.Popen(
        [*_cli(pods_cli), "logs", "-f", name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert pods_cli("ps", "-q").stdout.split().count(cid[:12]) == 1
        ex = pods_cli("exec", "-e", "X=42", name, "sh", "-c", "echo $X; exit 5")
        assert (ex.returncode, ex.stdout) == (5, "42\n")
        assert pods_cli("exec", name, "touch", "/tmp/stop").returncode == 0
        assert pods_cli("wait", name, timeout=20).stdout.strip() == "3"
        out, err = follower.communicate(timeout=10)
        assert out == "started\n"
        assert err == "oops\n"
        logs = pods_cli("logs", "-t", name).stdout
        assert logs.split(" ", 1)[1] == "started\n" and logs[:4].isdigit()
        assert pods_cli("rm", name, check=True).stdout.strip() == name
        assert pods_cli("inspect", name).returncode == 1
    finally:
        follower.kill()
        pods_cli("rm", "-f", name)


def _cli(pods_cli) -> list[str]:  # type: ignore[no-untyped-def]
    import sys

    root = pods_cli("system", "info").stdout
    return [sys.executable, "-m", "pytest_pods.cli", "--root", json.loads(root)["Root"]]


def test_run_exit_codes_match_docker(pods_cli) -> None:  # type: ignore[no-untyped-def]
    assert pods_cli("run", "--rm", "busybox", "sh", "-c", "exit 42").returncode == 42
    r = pods_cli("run", "--rm", "busybox", "no-such-command")
    assert r.returncode == 127 and "not found" in r.stderr
    r = pods_cli("run", "--rm", "busybox", "/etc/passwd")
    assert r.returncode == 126 and "permission denied" in r.stderr


def test_exec_user_and_workdir(client: Client, name: str) -> None:
    c = client.containers.run("busybox", ["sleep", "30"], detach=True, name=name)
    try:
        r = c.exec(["sh", "-c", "id -u; pwd"], user="nobody", workdir="/tmp")
        assert r.output.split() == [b"65534", b"/tmp"]
        assert c.exec(["sh", "-c", "exit 9"]).exit_code == 9
        with pytest.raises(ContainerStartError) as err:
            c.exec(["nope"])
        assert err.value.exit_code == 127
    finally:
        c.remove(force=True)


def test_bind_mounts_read_only_rootfs_tmpfs_and_init(client: Client, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("from host\n")
    r = client.containers.run(
        "busybox", ["sh", "-c", "cat /data/in.txt; echo x > /data/new; echo y > /etc/z; echo rc=$?; "
                    "echo t > /scratch/t && cat /scratch/t; ps -o pid,comm | sed -n 2p"],
        remove=True, volumes=[f"{tmp_path}:/data"], read_only=True, tmpfs=["/scratch"], init=True,
    )
    out = r.output.decode().split()
    assert out[:2] == ["from", "host"]
    assert "rc=1" in out and "t" in out
    assert (tmp_path / "new").read_text() == "x\n"
    assert r.stderr.count(b"Read-only file system") == 1
    r = client.containers.run("busybox", ["sh", "-c", "echo z > /data/z"], remove=True,
                              volumes=[f"{tmp_path}:/data:ro"])
    assert r.exit_code != 0 and not (tmp_path / "z").exists()


def test_init_forwards_stop_signal_and_reaps(client: Client, name: str) -> None:
    c = client.containers.run("busybox", ["sh", "-c", "trap 'exit 0' TERM; sleep 100 & wait"], detach=True,
                              name=name, init=True)
    try:
        t0 = time.monotonic()
        c.stop(timeout=5)
        assert time.monotonic() - t0 < 3
        assert c.wait() == 0
    finally:
        c.remove(force=True)


def test_debian_image_runs_apt_bash_dpkg(client: Client, debian: str) -> None:
    r = client.containers.run(debian, ["apt-get", "--version"], remove=True)
    assert r.exit_code == 0 and r.output.startswith(b"apt ")
    r = client.containers.run(debian, ["bash", "-c", "echo ${BASH_VERSION%%.*} $((6*7))"], remove=True)
    assert r.output.split()[1] == b"42" and int(r.output.split()[0]) >= 5
    r = client.containers.run(debian, ["dpkg", "-l", "bash", "coreutils"], remove=True)
    assert r.exit_code == 0
    assert b"ii  bash" in r.output and b"ii  coreutils" in r.output


def _leftovers(client: Client) -> dict[str, list[str]]:
    from pytest_pods.engine.runtime.cgroups import list_cgroups

    mounts = [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(client.root) in line]
    state = [p.name for p in client.runtime.dir.iterdir() if not p.name.startswith(".")]
    procs = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if str(client.root) in Path(f"/proc/{pid}/cmdline").read_text():
                    procs.append(pid)
            except OSError:
                pass
    return {"mounts": mounts, "cgroups": list_cgroups(parent=client.runtime.cgroup_parent), "state": state, "procs": procs}


def test_fifty_containers_in_a_loop_leave_nothing_behind(client: Client) -> None:
    before = _leftovers(client)
    for i in range(25):
        assert client.containers.run("busybox", ["true"], remove=True).exit_code == 0
    for i in range(25):
        c = client.containers.run("busybox", ["sleep", "10"], detach=True, memory="32m", pids_limit=10)
        c.remove(force=True)
    client.runtime.settle()  # rm -f hands the release to the monitors: wait for them
    after = _leftovers(client)
    assert after == before


def test_concurrent_runs_from_threads_use_the_fork_server(client: Client) -> None:
    results: list[int] = []

    def worker() -> None:
        for _ in range(3):
            results.append(client.containers.run("busybox", ["sh", "-c", "exit 3"], remove=True).exit_code)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [3] * 12


def test_reap_releases_what_a_killed_monitor_left(client: Client, name: str) -> None:
    from pytest_pods.engine.runtime.cgroups import list_cgroups

    c = client.containers.run("busybox", ["sleep", "300"], detach=True, name=name)
    st = c.state
    os.kill(st["monitor_pid"], 9)
    time.sleep(0.2)
    assert c.id in list_cgroups(parent=client.runtime.cgroup_parent)
    client.reap()
    assert c.id not in list_cgroups(parent=client.runtime.cgroup_parent)
    assert c.status == "exited"
    assert not Path(f"/proc/{st['pid']}").exists() or "sleep" not in Path(f"/proc/{st['pid']}/cmdline").read_text()
    c.remove()


def test_oci_config_is_run_by_runc(client: Client, name: str, tmp_path: Path) -> None:
    import shutil

    from pytest_pods.engine import linux

    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed (apt-get install runc)")
    c = client.containers.create("busybox", ["sh", "-c", "echo from-runc $(hostname)"], name=name, memory="64m")
    cdir = client.runtime.dir / c.id
    linux.mount("overlay", str(cdir / "rootfs"), "overlay", 0, c.state["overlay"])
    try:
        proc = subprocess.run([runc, "--root", str(tmp_path / "runc"), "run", "--bundle", str(cdir), f"x{c.id[:12]}"],
                              capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == f"from-runc {c.id[:12]}\n"
    finally:
        linux.umount(str(cdir / "rootfs"), linux.MNT_DETACH)
        c.remove(force=True)


def test_stop_during_a_start_in_another_process_stops_it(pods_cli, client: Client, name: str) -> None:  # type: ignore[no-untyped-def]
    pods_cli("create", "--name", name, "--network", "none", "busybox", "sleep", "1000", check=True)
    starter = subprocess.Popen([*_cli(pods_cli), "start", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.02)
        assert pods_cli("stop", "-t", "1", name).returncode == 0
        starter.wait(timeout=20)
        pods_cli("stop", "-t", "1", name)  # a start that began after our stop returned is stopped too
        assert client.containers.get(name).status == "exited"
    finally:
        starter.kill()
        pods_cli("rm", "-f", name)


def test_exec_workdir_must_exist_and_wait_reports_a_kill_after_removal(client: Client, name: str) -> None:
    c = client.containers.run("busybox", ["sleep", "100"], detach=True, name=name, network="none")
    try:
        with pytest.raises(ContainerStartError) as err:
            c.exec(["pwd"], workdir="/no/such/dir")
        assert err.value.exit_code == 126
        assert c.exec(["test", "-e", "/no"]).exit_code == 1  # and it was not created
        codes: list[int] = []
        waiter = threading.Thread(target=lambda: codes.append(client.runtime.wait(c.id)))
        waiter.start()
        time.sleep(0.1)
        c.remove(force=True)
        waiter.join(timeout=20)
        assert codes == [137]
    finally:
        with contextlib.suppress(Exception):
            c.remove(force=True)


def test_verbs_after_the_monitor_was_killed_see_the_truth_and_release_it(client: Client, name: str) -> None:
    from pytest_pods.engine.runtime.cgroups import list_cgroups

    c = client.containers.run("busybox", ["sleep", "300"], detach=True, name=name, network="none")
    pid = c.state["pid"]
    os.kill(c.state["monitor_pid"], 9)
    time.sleep(0.2)
    assert c.status == "exited"  # the read itself released it
    assert c.id not in list_cgroups(parent=client.runtime.cgroup_parent)
    assert linux_alive(pid) is False
    c.start()  # and it can start again
    assert c.exec(["true"]).exit_code == 0
    c.remove(force=True)


def linux_alive(pid: int) -> bool:
    from pytest_pods.engine.linux import process_start_time

    return process_start_time(pid) is not None
