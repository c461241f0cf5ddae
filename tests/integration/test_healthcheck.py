"""Health checks run by the engine (issue 16): the container's monitor probes, ``State.Health``
reports, on the local engine through the Client API and the ``pods`` CLI."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helper import wait_until

from pytest_pods import Client

MS = 1_000_000


@pytest.fixture
def cleanup(client: Client) -> Iterator[list[str]]:
    """Scope: function. Containers (by ID or name) removed at the end."""
    made: list[str] = []
    yield made
    for ref in made:
        try:
            client.containers.remove(ref, force=True)
        except Exception:
            pass


@pytest.fixture(scope="module")
def hc_image(client: Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Scope: module. An image whose HEALTHCHECK passes once /tmp/ok exists (200 ms interval)."""
    ctx = tmp_path_factory.mktemp("hc-image")
    (ctx / "Dockerfile").write_text(
        "FROM busybox:latest\n"
        "HEALTHCHECK --interval=200ms --timeout=2s --retries=2 CMD test -f /tmp/ok && echo fine\n"
        'CMD ["sleep", "60"]\n')
    tag = "pods-test-healthcheck:1"
    client.images.build(ctx, tag=tag)
    return tag


def health(client: Client, ref: str) -> Any:
    return client.containers.get(ref).inspect()["State"].get("Health")




def test_image_healthcheck_goes_from_starting_to_healthy(client: Client, hc_image: str, cleanup: list[str]) -> None:
    c = client.containers.run(hc_image, detach=True, network="none")
    cleanup.append(c.id)
    h = health(client, c.id)
    assert h["Status"] == "starting"
    doc = c.inspect()
    assert doc["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "test -f /tmp/ok && echo fine"]
    wait_until(lambda: health(client, c.id)["Log"], 15, "a failed probe")
    assert health(client, c.id)["Status"] == "starting"  # one failure of two retries
    c.exec(["touch", "/tmp/ok"])
    h = wait_until(lambda: (h := health(client, c.id))["Status"] == "healthy" and h, 15, "healthy")
    assert h["FailingStreak"] == 0
    last = h["Log"][-1]
    assert last["ExitCode"] == 0 and last["Output"] == "fine\n"
    assert last["Start"] <= last["End"]
    assert len(h["Log"]) <= 5


def test_failing_check_goes_unhealthy_after_retries_with_its_output(client: Client, cleanup: list[str]) -> None:
    c = client.containers.run("busybox:latest", ["sleep", "60"], detach=True, network="none", healthcheck={
        "test": "echo broken-$((1+1)); exit 3", "interval": 200 * MS, "retries": 3})
    cleanup.append(c.id)
    h = wait_until(lambda: (h := health(client, c.id))["Status"] == "unhealthy" and h, 15, "unhealthy")
    assert h["FailingStreak"] == 3
    assert [r["ExitCode"] for r in h["Log"]] == [3, 3, 3]
    assert h["Log"][-1]["Output"] == "broken-2\n"
    time.sleep(1.5)  # the log keeps the last five
    h = health(client, c.id)
    assert len(h["Log"]) == 5 and h["FailingStreak"] >= 5


def test_long_output_is_cut_as_docker_cuts_it(client: Client, cleanup: list[str]) -> None:
    c = client.containers.run("busybox:latest", ["sleep", "60"], detach=True, network="none", healthcheck={
        "test": ["CMD", "sh", "-c", "head -c 10000 /dev/zero | tr '\\0' x"], "interval": 200 * MS})
    cleanup.append(c.id)
    h = wait_until(lambda: (h := health(client, c.id))["Status"] == "healthy" and h, 15, "healthy")
    assert h["Log"][-1]["Output"] == "x" * 4096 + "..."


def test_timeout_kills_a_hanging_probe(client: Client, cleanup: list[str]) -> None:
    c = client.containers.run("busybox:latest", ["sleep", "60"], detach=True, network="none", healthcheck={
        "test": "echo waiting; sleep 1000", "interval": 200 * MS, "timeout": 300 * MS, "retries": 1})
    cleanup.append(c.id)
    h = wait_until(lambda: (h := health(client, c.id))["Status"] == "unhealthy" and h, 15, "unhealthy")
    r = h["Log"][0]
    assert r["ExitCode"] == -1
    assert r["Output"] == "Health check exceeded timeout (300ms): waiting\n"
    time.sleep(0.5)
    # the killed probes are gone: only pid 1 (and at most the probe running now) in the container
    procs = c.exec(["ps", "-o", "pid,args"]).output.decode()
    assert procs.count("sleep 1000") <= 1, procs


def test_no_healthcheck_and_test_none_give_no_health(client: Client, hc_image: str, pods_cli: Any,
                                                     name: str, cleanup: list[str]) -> None:
    c = client.containers.run(hc_image, detach=True, network="none", healthcheck={"test": ["NONE"]})
    cleanup.append(c.id)
    cleanup.append(name)
    r = pods_cli("run", "-d", "--name", name, "--network", "none", "--no-healthcheck", hc_image)
    assert r.returncode == 0, r.stderr
    time.sleep(0.6)
    for ref in (c.id, name):
        doc = client.containers.get(ref).inspect()
        assert "Health" not in doc["State"]
        assert doc["Config"]["Healthcheck"]["Test"] == ["NONE"]
        assert ns_procs(client, ref) == [client.containers.state(ref)["pid"]]
    bad = pods_cli("run", "-d", "--no-healthcheck", "--health-cmd", "true", hc_image)
    assert bad.returncode != 0 and "--no-healthcheck conflicts with --health-* options" in bad.stderr


def test_container_without_healthcheck_has_no_probe_processes(client: Client, cleanup: list[str]) -> None:
    c = client.containers.run("busybox:latest", ["sleep", "60"], detach=True, network="none")
    cleanup.append(c.id)
    time.sleep(0.5)
    assert "Health" not in c.inspect()["State"]
    assert "Healthcheck" not in c.inspect()["Config"]
    pid = client.containers.state(c.id)["pid"]
    assert set(client.containers.top(c.id)) <= {pid}  # its cgroup holds its own process only (none rootless)
    assert ns_procs(client, c.id) == [pid]  # and so does its pid namespace


def ns_procs(client: Client, ref: str) -> list[int]:
    """The host pids of the processes in the container's pid namespace."""
    ns = _pidns(str(client.containers.state(ref)["pid"]))
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and _pidns(p) == ns)


def _pidns(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def test_cli_flags_override_the_image_and_ps_shows_health(client: Client, hc_image: str, pods_cli: Any,
                                                         name: str, cleanup: list[str]) -> None:
    cleanup.append(name)
    r = pods_cli("run", "-d", "--name", name, "--network", "none", "--health-cmd", "true",
                 "--health-interval", "250ms", "--health-retries", "5", "--health-start-period", "1s",
                 "--health-start-interval", "100ms", "--health-timeout", "1s", hc_image)
    assert r.returncode == 0, r.stderr
    doc = json.loads(pods_cli("inspect", name).stdout)[0]
    assert doc["Config"]["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 250 * MS,
                                            "Timeout": 1000 * MS, "Retries": 5, "StartPeriod": 1000 * MS,
                                            "StartInterval": 100 * MS}
    wait_until(lambda: health(client, name)["Status"] == "healthy", 5, "healthy")
    row = next(line for line in pods_cli("ps").stdout.splitlines() if line.endswith(name))
    assert "(healthy)" in row
    bad = pods_cli("run", "-d", "--health-interval", "5", hc_image)
    assert bad.returncode != 0 and 'invalid duration "5"' in bad.stderr


def test_failures_in_the_start_period_do_not_count(client: Client, cleanup: list[str]) -> None:
    c = client.containers.run("busybox:latest", ["sleep", "60"], detach=True, network="none", healthcheck={
        "test": "false", "interval": 200 * MS, "retries": 1, "start_period": 1500 * MS, "start_interval": 100 * MS})
    cleanup.append(c.id)
    wait_until(lambda: len(health(client, c.id)["Log"]) >= 2, 15, "two probes")
    h = health(client, c.id)
    assert h["Status"] == "starting" and h["FailingStreak"] == 0
    wait_until(lambda: health(client, c.id)["Status"] == "unhealthy", 5, "unhealthy")


def test_stop_leaves_it_unhealthy_and_rm_leaves_no_probe(client: Client, cleanup: list[str]) -> None:
    c = client.containers.run("busybox:latest", ["sleep", "60"], detach=True, network="none", healthcheck={
        "test": "sleep 1000", "interval": 100 * MS, "timeout": 30_000 * MS})
    cleanup.append(c.id)
    wait_until(lambda: len(ns_procs(client, c.id)) > 1, 15, "a probe running")
    probes = [p for p in ns_procs(client, c.id) if p != client.containers.state(c.id)["pid"]]
    c.stop(timeout=1)
    h = health(client, c.id)
    assert h["Status"] == "unhealthy"  # as dockerd leaves a stopped container
    c.start()
    assert health(client, c.id)["Status"] == "starting"
    wait_until(lambda: len(ns_procs(client, c.id)) > 1, 15, "a probe running")
    probes += [p for p in ns_procs(client, c.id) if p != client.containers.state(c.id)["pid"]]
    client.containers.remove(c.id, force=True)
    wait_until(lambda: not any(Path(f"/proc/{p}").exists() for p in probes), 5, "the probes gone")
    leftovers = [p for p in os.listdir("/proc") if p.isdigit() and c.id in _cgroup(p)]
    assert leftovers == []


def _cgroup(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return ""


def test_wait_healthcheck_reads_the_engines_verdict(client: Client, cleanup: list[str],
                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    from pytest_pods import wait  # the plugin's readiness (issue 16: it reads State.Health too)

    ok = client.containers.run("busybox:latest", ["sleep", "60"], detach=True, network="none",
                               healthcheck={"test": "true", "interval": 200 * MS})
    cleanup.append(ok.id)
    wait_until(lambda: health(client, ok.id)["Status"] == "healthy", 15, "healthy")
    assert wait.engine_healthy(ok)

    ctx = tmp_path_factory.mktemp("hc-bad")
    (ctx / "Dockerfile").write_text("FROM busybox:latest\n"
                                    "HEALTHCHECK --interval=200ms --retries=2 CMD echo no-db-yet; exit 1\n"
                                    'CMD ["sleep", "60"]\n')
    client.images.build(ctx, tag="pods-test-healthcheck-bad:1")
    bad = client.containers.run("pods-test-healthcheck-bad:1", detach=True, network="none")
    cleanup.append(bad.id)
    t0 = time.monotonic()
    with pytest.raises(wait.ContainerUnhealthyError, match="no-db-yet") as info:
        wait.wait_ready(bad, wait.healthcheck(), timeout=30)
    assert time.monotonic() - t0 < 10  # at once, not at the deadline
    assert "failed 2 times in a row" in str(info.value)
