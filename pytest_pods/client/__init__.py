"""The Client API: one contract, two engines (the local one in process, a remote one over the
Docker Engine API). ``from pytest_pods.client import Client`` is the usual start."""

from pytest_pods.client.local import Client, Container, ExecResult, RunResult

__all__ = ["Client", "Container", "ExecResult", "RunResult"]
