"""Hooks that other plugins (and conftest files) can implement to take part in a pods session.

Registered through ``pytest_addhooks``, so they work under pytest-xdist workers too::

    def pytest_pods_container_ready(container, fixture, seconds):
        print(f"{fixture}: {container.name} ready in {seconds:.3f} s")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_pods.client.contract import ContainerAPI


@pytest.hookspec
def pytest_pods_image_built(image: str, fixture: str, seconds: float) -> None:
    """An image fixture built (or found cached) ``image`` for ``fixture`` in ``seconds``."""


@pytest.hookspec
def pytest_pods_container_created(container: ContainerAPI, fixture: str) -> None:
    """A container was created for ``fixture`` (not started yet): the place to copy files in
    is after start; the place to look at its configuration is here."""


@pytest.hookspec
def pytest_pods_container_ready(container: ContainerAPI, fixture: str, seconds: float) -> None:
    """A container started and passed its readiness check ``seconds`` after its start."""


@pytest.hookspec
def pytest_pods_container_stopping(container: ContainerAPI, fixture: str) -> None:
    """A container is about to be stopped and removed at the end of its scope."""
