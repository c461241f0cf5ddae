"""Inner pytest sessions (pytester) that use the plugin on the test root, and what they leave."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pytest_pods import Client

SESSION_LABEL = "pytest-pods.session"


class Inner:
    """Runs inner sessions; ``left()`` lists what one session left in the engine."""

    def __init__(self, pytester: pytest.Pytester, root: Path, client: Client) -> None:
        self.pytester, self.root, self.client = pytester, root, client

    def run(self, *args: str, subprocess: bool = False, timeout: float = 180) -> tuple[Any, str]:
        argv = (f"--pods-root={self.root}", "-p", "no:cacheprovider", *args)
        if subprocess:
            result = self.pytester.runpytest_subprocess(*argv, timeout=timeout)
        else:
            result = self.pytester.runpytest_inprocess(*argv)
        return result, session_id(result.stdout.str())

    @staticmethod
    def session_id(output: str) -> str:
        return session_id(output)

    def left(self, sid: str) -> list[str]:
        """Containers and networks of session ``sid`` still in the engine."""
        out = [f"container {st['name']} ({st['status']})" for st in self.client.runtime.list(all=True)
               if (st.get("labels") or {}).get(SESSION_LABEL) == sid]
        out += [f"network {n['name']}" for n in self.client.runtime.networks.list()
                if (n.get("labels") or {}).get(SESSION_LABEL) == sid]
        return out


def session_id(output: str) -> str:
    m = re.search(r"^pods: root .*, session (\w+),", output, re.M)
    assert m, f"no pods report header in:\n{output}"
    return m.group(1)


@pytest.fixture
def inner(pytester: pytest.Pytester, pods_root: Path, client: Client) -> Inner:
    """Scope: function. Depends on: pytester, pods_root, client. Inner sessions on the test root."""
    return Inner(pytester, pods_root, client)

