"""The PodsError tree: every error the engine raises on purpose.

Messages read ``<operation> <object>: <reason>``. The CLI prints ``str(exc)`` on one line and exits
125 for any of them; nothing below the CLI prints or exits.
"""

from __future__ import annotations


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


class EngineUnavailableError(PodsError):
    """The engine cannot run here (not root, a kernel feature missing)."""


class ReadinessTimeoutError(PodsError, TimeoutError):
    """A container was not ready by the deadline; the note holds its last log lines."""


class ContainerExitedError(PodsError):
    """A container exited while we waited for it to be ready; ``exit_code`` is its code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
