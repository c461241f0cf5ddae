"""``pods daemon``: the Docker Engine API over the local engine (see :mod:`.server`)."""

from pytest_pods.daemon.server import DEFAULT_SOCKET, serve
from pytest_pods.errors import DaemonError

__all__ = ["DEFAULT_SOCKET", "DaemonError", "serve"]
