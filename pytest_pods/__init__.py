"""pytest-pods: real containers for pytest, on an engine of its own (no Docker daemon)."""

from __future__ import annotations

from .client import Client, Container, ExecResult, RunResult
from .errors import (
    ConflictError,
    ContainerNotFoundError,
    ContainerStartError,
    ImageNotFoundError,
    InvalidArgumentError,
    LayerError,
    PodsError,
    UnsafeLayerError,
)

__all__ = [
    "Client",
    "ConflictError",
    "Container",
    "ContainerNotFoundError",
    "ContainerStartError",
    "ExecResult",
    "ImageNotFoundError",
    "InvalidArgumentError",
    "LayerError",
    "PodsError",
    "RunResult",
    "UnsafeLayerError",
]
