"""The PodsError tree: every error the engine raises on purpose.

Messages read ``<operation> <object>: <reason>``. The CLI prints ``str(exc)`` on one line and exits
125 for any of them; nothing below the CLI prints or exits.
"""

from __future__ import annotations

import os


class PodsError(Exception):
    """Base of every error raised by pytest-pods on purpose."""


class InvalidArgumentError(PodsError, ValueError):
    """A value given by the user is malformed (a flag value, a reference, a name)."""


class NotFoundError(PodsError, LookupError):
    """Something named does not exist."""


class ImageNotFoundError(NotFoundError):
    """No image with that name, ID or digest in the store."""


class ContainerNotFoundError(NotFoundError):
    """No container with that name or ID."""


class LogsUnsupportedError(PodsError):
    """The container's log driver keeps no log to read (``none``); dockerd answers 501."""


class ConflictError(PodsError):
    """The operation conflicts with the current state (name in use, container running)."""


class LayerError(PodsError):
    """A layer archive is corrupt or unsafe; nothing of it was kept."""


class UnsafeLayerError(LayerError):
    """A layer member would land outside the snapshot (``..``, absolute, via a link)."""


class StoreError(PodsError):
    """The image store is inconsistent or a blob does not match its digest."""


class ContainerStartError(PodsError):
    """The container could not be started; ``exit_code`` is what docker would return."""

    def __init__(self, message: str, exit_code: int = 125) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class CgroupError(PodsError):
    """A cgroup could not be created, limited or removed."""


class LimitsUnavailableError(CgroupError):
    """A memory, pids or cpu limit was asked of a rootless engine that has no cgroup to apply it."""


class EngineUnavailableError(PodsError):
    """The engine cannot run here (not root, a kernel feature missing)."""


class ReadinessTimeoutError(PodsError, TimeoutError):
    """A container was not ready by the deadline; the note holds its last log lines."""


class ContainerUnhealthyError(PodsError):
    """The engine reported the container ``unhealthy`` while readiness waited for its HEALTHCHECK."""


class ContainerExitedError(PodsError):
    """A container exited while we waited for it to be ready; ``exit_code`` is its code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class DockerfileError(PodsError, ValueError):
    """The Dockerfile is malformed; names the file and line so the user can fix it."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(path, line, message)  # args as given: the error pickles (xdist)
        self.path = path
        self.line = line
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class BuildError(PodsError):
    """A build failed; the message names the Dockerfile, the line and the instruction."""


class ContextError(PodsError):
    """The build context cannot give what was asked: a bad pattern, a missing or forbidden source."""


class HTTPError(Exception):
    """An error answered as Docker does: ``{"message": ...}`` with a status code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class DaemonError(Exception):
    pass


class RegistryError(PodsError):
    """A registry could not be talked to as the distribution spec says (TLS, redirects, tokens)."""


class RegistryAuthError(RegistryError):
    """The registry refused us: no credentials, wrong ones, or not enough access for the scope."""

    def __init__(self, message: str, host: str = "") -> None:
        super().__init__(message)
        self.host = host


class RegistryTLSError(RegistryError):
    """The registry's certificate did not verify (or its certs.d directory is incomplete)."""


class InitError(Exception):
    """A setup step failed; ``code`` is the exit status docker would report."""

    def __init__(self, message: str, code: int = 125) -> None:
        super().__init__(message)
        self.code = code


class NetlinkError(OSError):
    """The kernel refused a netlink request: ``errno`` is its answer, the message names the operation.

    ``str()`` reads ``netlink: create veth pods1a2b/eth0: File exists``, with the kernel's extended
    ack text in parentheses when it gave one.
    """

    def __init__(self, err: int, operation: str, detail: str = "") -> None:
        super().__init__(err, os.strerror(err))
        self.operation = operation
        self.detail = detail

    def __str__(self) -> str:
        text = f"netlink: {self.operation}: {self.strerror}"
        return f"{text} ({self.detail})" if self.detail else text

    def __reduce__(self) -> tuple[type[NetlinkError], tuple[int, str, str]]:
        # OSError pickles its (errno, strerror) args, which would lose the operation
        return (type(self), (self.errno or 0, self.operation, self.detail))


class CredentialsError(PodsError):
    """A credential helper failed, or a config file cannot be read or written."""


class CgroupBusyError(CgroupError, TimeoutError):
    """Processes were still in a group when ``destroy`` gave up waiting for them."""


class NetworkNotFoundError(NotFoundError):
    """No network with that name or ID."""


class NetworkError(PodsError):
    """A network could not be created, attached or removed; nothing of it was kept."""



class FixtureConfigError(PodsError):
    """A fixture's configuration can never work (unknown image, option, port, bad regex)."""
