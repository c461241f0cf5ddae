"""Inner pytest sessions (pytester) that use the plugin on the test root, and what they leave."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_pods import Client

SESSION_LABEL = "pytest-pods.session"


class Inner:
    """Runs inner sessions (on the local engine, or through ``pods daemon`` when ``host`` is
    given); ``left()`` lists what one session left in the engine."""

    def __init__(self, pytester: pytest.Pytester, root: Path, client: Client, host: str | None = None,
                 kind: str = "local") -> None:
        self.pytester, self.root, self.client, self.host = pytester, root, client, host
        self.kind = kind  # "local", "remote" (pods daemon) or "dockerd" (the reference dockerd)
        self.reference: Any = None  # the ReferenceDocker, for "dockerd"

    @property
    def engine(self) -> Any:
        """The Client API on the engine the inner sessions use (the local engine's client for
        ``local`` and ``remote``: the daemon serves the same root)."""
        if self.kind == "dockerd":
            from pytest_pods.client.remote import RemoteClient

            return RemoteClient(str(self.host))
        return self.client

    def engine_args(self) -> tuple[str, ...]:
        args = (f"--pods-root={self.root}", *([f"--pods-host={self.host}"] if self.host else []))
        if self.kind == "dockerd":  # the service images come from our builds (tests/dockerd_helper.py)
            args += (f"--pods-registry={self.reference.service_registry(self.client)}",)
        return args

    def run(self, *args: str, subprocess: bool = False, timeout: float = 180) -> tuple[Any, str]:
        argv = (*self.engine_args(), "-p", "no:cacheprovider", *args)
        if subprocess:
            result = self.pytester.runpytest_subprocess(*argv, timeout=timeout)
        else:
            result = self.pytester.runpytest_inprocess(*argv)
        return result, session_id(result.stdout.str())

    def start_until_ready(self, *args: str) -> tuple[subprocess.Popen[str], str]:
        """An inner pytest in a process of its own (to be signalled), once a test printed READY;
        returns it and its session id."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-s", "-p", "no:cacheprovider", *self.engine_args(), *args],
            cwd=self.pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "READY" in line:
                break
        return proc, session_id("".join(lines))

    @staticmethod
    def session_id(output: str) -> str:
        return session_id(output)

    def left(self, sid: str) -> list[str]:
        """Containers and networks of session ``sid`` still in the engine."""
        if self.kind == "dockerd":
            from dockerd_helper import left_by_label

            return left_by_label(str(self.host), SESSION_LABEL, sid)
        out = [f"container {st['name']} ({st['status']})" for st in self.client.runtime.list(all=True)
               if (st.get("labels") or {}).get(SESSION_LABEL) == sid]
        out += [f"network {n['name']}" for n in self.client.runtime.networks.list()
                if (n.get("labels") or {}).get(SESSION_LABEL) == sid]
        return out


def session_id(output: str) -> str:
    m = re.search(r"^pods: root .*, session (\w+),", output, re.M)
    assert m, f"no pods report header in:\n{output}"
    return m.group(1)


@pytest.fixture(params=["local", "remote", "dockerd"])
def inner(request: pytest.FixtureRequest, pytester: pytest.Pytester, pods_root: Path, client: Client) -> Inner:
    """Scope: function. Depends on: pytester, pods_root, client. Inner sessions on the test
    root: once on the local engine, once through the daemon and the RemoteEngine, once through
    the RemoteEngine on the reference dockerd (tests/dockerd_helper.py; a test marked
    ``pods_engine("why")`` needs our engine and skips there)."""
    if request.param == "dockerd" and (mark := request.node.get_closest_marker("pods_engine")):
        pytest.skip(f"our engine only (not on dockerd): {mark.args[0]}")
    host = {"remote": lambda: request.getfixturevalue("daemon").host,
            "dockerd": lambda: request.getfixturevalue("reference_docker").host}.get(request.param, lambda: None)()
    if host and request.node.get_closest_marker("local_only"):
        pytest.skip(f"local engine only: {request.node.get_closest_marker('local_only').args[0]}")
    sessions = Inner(pytester, pods_root, client, host, request.param)
    if request.param == "dockerd":
        sessions.reference = request.getfixturevalue("reference_docker")
    return sessions

