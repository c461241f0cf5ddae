"""The pytest11 entry point: options now; fixtures come with the plugin issue."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pods", "pytest-pods: containers for tests")
    group.addoption("--pods-root", dest="pods_root", default=None,
                    help="engine state root (default: $PODS_ROOT or /var/lib/pytest-pods)")
    parser.addini("pods_root", "engine state root (default: $PODS_ROOT or /var/lib/pytest-pods)")
