"""What the network tests make, under unique names, and release at teardown (test_network.py and
test_network_hygiene.py share it; the ``made`` fixture is in tests/integration/conftest.py)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from typing import Any

from pytest_pods import Client
from pytest_pods.errors import NotFoundError

Pods = Callable[..., subprocess.CompletedProcess[str]]  # the `pods` fixture: the real CLI


class Made:
    """What one test makes, under unique names; removed at teardown, containers before networks."""

    def __init__(self, client: Client, pods_cli: Pods) -> None:
        self.client = client
        self.pods = pods_cli
        self.containers: list[str] = []
        self.networks: list[str] = []

    def name(self, prefix: str = "t") -> str:
        n = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.containers.append(n)
        return n

    def network(self, *flags: str) -> dict[str, Any]:
        """``pods network create`` one; returns its ``network inspect`` document."""
        n = f"tn-{uuid.uuid4().hex[:10]}"
        self.networks.append(n)
        self.pods("network", "create", *flags, n, check=True)
        return inspect_network(self.pods, n)

    def run(self, *args: str) -> str:
        """``pods run -d --name NEW ARGS``; returns the new container's name."""
        n = self.name()
        self.pods("run", "-d", "--name", n, *args, check=True)
        return n

    def teardown(self) -> None:
        errors: list[BaseException] = []
        for n in reversed(self.containers):
            try:
                self.client.runtime.remove(n, force=True)
            except NotFoundError:
                pass
            except Exception as exc:
                errors.append(exc)
        for n in reversed(self.networks):
            try:
                self.client.networks.remove(n)
            except NotFoundError:
                pass
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise ExceptionGroup("release what the test made", errors)


def inspect_network(pods_cli: Pods, name: str) -> dict[str, Any]:
    proc = pods_cli("network", "inspect", name, check=True)
    doc: dict[str, Any] = json.loads(proc.stdout)[0]
    return doc
