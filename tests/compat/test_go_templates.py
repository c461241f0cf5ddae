"""``pods inspect -f`` renders Go templates as the docker CLI does (issue 19).

The reference is the real docker CLI: both read the same container from ``pods daemon`` and render
the same template; the outputs must be equal. The templates are the ones people write in scripts.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from daemon_helper import Daemon

DockerCLI = Any  # conftest's (conftest modules are not imported by name)

TEMPLATES = [
    "{{.Name}}",
    "{{.State.Status}} {{.State.Running}} {{.State.ExitCode}}",
    "{{.Config.Env}}",
    "{{.Config.Cmd}}",
    "{{.Config.Labels}}",
    '{{index .Config.Labels "tier"}}',
    '{{index .Config.Labels "absent"}}',
    "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
    "{{range $name, $net := .NetworkSettings.Networks}}{{$name}}={{$net.IPAddress}};{{end}}",
    "{{json .Config.Labels}}",
    "{{json .Config.Env}}",
    "{{if .State.Running}}running{{else}}stopped{{end}}",
    '{{if eq .State.Status "running"}}yes{{else if eq .State.Status "exited"}}done{{end}}',
    "{{len .Config.Env}} {{len .Config.Labels}}",
    '{{join .Config.Cmd " "}}',
    "{{upper .Config.Image}} {{lower .Name}} {{title .State.Status}}",
    '{{range .Config.Env}}{{if eq . "B=2"}}{{continue}}{{end}}{{println .}}{{end}}',
    "{{- .Config.Hostname | printf \"%q\" -}}",
    '{{printf "%s|%5d|%-4s|" .Name .State.ExitCode "ab"}}',
    "{{with .Config.Labels}}{{.tier}}{{end}}",
    "{{$x := .State.Status}}{{$x}}-{{$.Name}}",
    "{{/* a comment */}}{{.Config.WorkingDir}}",
    '{{split "a,b,c" ","}} {{index (split "a,b,c" ",") 1}}',
    "{{.State.Pid | printf \"%d\" | len | lt 0}}",
    "{{.HostConfig.NetworkMode}} {{.HostConfig.AutoRemove}}",
]


@pytest.fixture
def container(docker: DockerCLI) -> Iterator[str]:
    name = f"tmpl-{uuid.uuid4().hex[:8]}"
    docker("run", "-d", "--name", name, "-e", "A=1", "-e", "B=2", "-e", "C=3", "-l", "tier=web", "-l", "team=x",
           "-w", "/tmp", "busybox:latest", "sleep", "300")
    yield name
    docker("rm", "-f", name, check=False)


def pods(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--root", str(daemon.root), *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("template", TEMPLATES)
def test_inspect_format_renders_as_the_docker_cli(docker: DockerCLI, daemon: Daemon, container: str,
                                                  template: str) -> None:
    want = docker("inspect", "-f", template, container)
    got = pods(daemon, "inspect", "-f", template, container)
    assert got.returncode == 0, got.stderr
    assert got.stdout == want.stdout


@pytest.mark.parametrize("template", ["{{.Name", "{{if .State.Running}}x", "{{nosuchfunc .Name}}", "{{end}}"])
def test_a_broken_template_fails_like_the_docker_cli(docker: DockerCLI, daemon: Daemon, container: str,
                                                    template: str) -> None:
    want = docker("inspect", "-f", template, container, check=False)
    got = pods(daemon, "inspect", "-f", template, container)
    assert want.returncode != 0
    assert got.returncode != 0
    assert "Traceback" not in got.stderr
    assert "template" in got.stderr and got.stdout == ""
