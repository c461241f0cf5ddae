"""Health checks as real clients see them (issue 16): the docker CLI's --health-* flags, inspect's
``State.Health``, ``docker ps``' ``(healthy)``, ``health_status`` events, docker-py's
``healthcheck=``, and docker-compose's ``depends_on: condition: service_healthy``."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest
from dockerd_helper import both_engines
from daemon_helper import wait_until

MS = 1_000_000




@both_engines
def test_docker_cli_health_flags_make_it_healthy(docker: Any, names: list[str]) -> None:
    name = f"hc-{uuid.uuid4().hex[:10]}"
    names.append(name)
    since = str(int(time.time()) - 1)
    docker("run", "-d", "--name", name, "--network", "none", "--health-cmd", "test -f /tmp/ok",
           "--health-interval", "200ms", "--health-retries", "10", "busybox:latest", "sleep", "60")
    assert docker("inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip() == "starting"
    row = docker("ps", "--filter", f"name={name}", "--format", "{{.Status}}").stdout
    assert "(health: starting)" in row
    docker("exec", name, "touch", "/tmp/ok")
    wait_until(lambda: docker("inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip() == "healthy",
               20, "healthy")
    assert "(healthy)" in docker("ps", "--filter", f"name={name}").stdout
    cfg = json.loads(docker("inspect", "-f", "{{json .Config.Healthcheck}}", name).stdout)
    assert cfg["Test"] == ["CMD-SHELL", "test -f /tmp/ok"] and cfg["Interval"] == 200 * MS
    events = docker("events", "--since", since, "--until", str(int(time.time()) + 1), "--filter",
                    f"container={name}", "--format", "{{.Action}}").stdout.splitlines()
    assert "health_status: healthy" in events


@both_engines
def test_docker_py_healthcheck_reads_state_health(docker_engine: Any, names: list[str]) -> None:
    client = docker.DockerClient(base_url=docker_engine.host, timeout=60)
    try:
        name = f"hc-{uuid.uuid4().hex[:10]}"
        names.append(name)
        c = client.containers.run("busybox:latest", ["sleep", "60"], detach=True, name=name, network_mode="none",
                                  healthcheck={"test": ["CMD", "sh", "-c", "echo bad; exit 1"],
                                               "interval": 200 * MS, "timeout": 1000 * MS, "retries": 2,
                                               "start_period": 0})

        def status() -> str:
            c.reload()
            return str(c.attrs["State"]["Health"]["Status"])

        wait_until(lambda: status() == "unhealthy", 20, "unhealthy")
        h = c.attrs["State"]["Health"]
        assert h["FailingStreak"] >= 2 and h["Log"][-1]["Output"] == "bad\n" and h["Log"][-1]["ExitCode"] == 1
        assert c.attrs["Config"]["Healthcheck"]["Retries"] == 2
        none = client.containers.run("busybox:latest", ["sleep", "60"], detach=True, network_mode="none",
                                     healthcheck={"test": ["NONE"]}, name=f"{name}-none")
        names.append(f"{name}-none")
        assert "Health" not in none.attrs["State"]
    finally:
        client.close()


COMPOSE = """\
version: "2.4"
services:
  db:
    image: busybox:latest
    command: ["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 300"]
    stop_signal: SIGKILL
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 200ms
      timeout: 2s
      retries: 30
  app:
    image: busybox:latest
    command: ["sleep", "300"]
    stop_signal: SIGKILL
    depends_on:
      db:
        condition: service_healthy
"""


@both_engines
def test_compose_service_healthy_brings_the_stack_up_and_down_removes_it(
        docker: Any, docker_env: dict[str, str], tmp_path: Path) -> None:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (Debian's docker-compose 1.29: apt-get install docker-compose)")
    project = f"hc{uuid.uuid4().hex[:8]}"
    (tmp_path / "docker-compose.yml").write_text(COMPOSE)

    def compose(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker-compose", "-p", project, *args], cwd=tmp_path, env=docker_env,
                              capture_output=True, text=True, timeout=120)

    try:
        up = compose("up", "-d")
        assert up.returncode == 0, up.stdout + up.stderr
        ids = docker("ps", "-q", "--filter", f"label=com.docker.compose.project={project}").stdout.split()
        assert len(ids) == 2
        db = docker("ps", "-q", "--filter", "label=com.docker.compose.service=db").stdout.split()
        db = [i for i in db if i in ids]
        assert docker("inspect", "-f", "{{.State.Health.Status}}", db[0]).stdout.strip() == "healthy"
    finally:
        down = compose("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").stdout.split() == []
    assert project not in docker("network", "ls", "--format", "{{.Name}}").stdout
