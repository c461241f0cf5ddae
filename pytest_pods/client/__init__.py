"""The Client API: one contract (:mod:`.contract`), two engines: the local one in process
(:mod:`.local`) and a remote one over the Docker Engine API (:mod:`.remote`).
``from pytest_pods.client import Client`` is the usual start.

``RemoteClient`` is imported from :mod:`pytest_pods.client.remote`, not re-exported here: it
brings http.client, ssl and tarfile (about 60 ms), and this package is on the ``pods`` CLI's
start path.
"""

from pytest_pods.client.contract import ContainerHandle, ExecResult, RunResult
from pytest_pods.client.local import Client, Container

__all__ = ["Client", "Container", "ContainerHandle", "ExecResult", "RunResult"]
