"""testcontainers-python pointed at one daemon for one test, for the compat tests that drive it.

testcontainers reads most settings once, at import: the environment is set for what it reads late
(``DOCKER_HOST``, ``TESTCONTAINERS_RYUK_DISABLED``) and the cached values are reset on its
configuration object. It caches no client (each container makes its own, and writes ``DOCKER_HOST``
back to ``os.environ``: the monkeypatch restores it). Its Reaper is a process-wide singleton: a test
starts from none, and with Ryuk the end of the test ends the one it made.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest


@contextlib.contextmanager
def pointed_testcontainers(host: str, monkeypatch: pytest.MonkeyPatch, *, ryuk: bool) -> Iterator[Any]:
    """testcontainers' configuration object, pointed at ``host`` (with or without its Ryuk), with
    a docker config of its own (no user credentials)."""
    from testcontainers.core import config as tc_config
    from testcontainers.core import utils as tc_utils
    from testcontainers.core.container import Reaper

    c = tc_config.testcontainers_config
    config_dir = tempfile.TemporaryDirectory(prefix="pods-tc-docker-config-")
    monkeypatch.setenv("DOCKER_HOST", host)
    monkeypatch.setenv("DOCKER_CONFIG", config_dir.name)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    if ryuk:
        monkeypatch.delenv("TESTCONTAINERS_RYUK_DISABLED", raising=False)
        monkeypatch.setattr(c, "_ryuk_docker_socket", "")  # derived from DOCKER_HOST on first use
    else:
        monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    monkeypatch.setattr(c, "_ryuk_disabled", None)
    monkeypatch.setattr(c, "_docker_auth_config", None)
    if tc_utils.inside_container():
        # /.dockerenv makes testcontainers look for the daemon at the default gateway (Docker in
        # Docker); these daemons run in this very container, their ports on this loopback.
        monkeypatch.setattr(c, "tc_host_override", "127.0.0.1")
        monkeypatch.setattr(c, "connection_mode_override", tc_config.ConnectionMode.docker_host)
    monkeypatch.setattr(Reaper, "_instance", None)
    monkeypatch.setattr(Reaper, "_container", None)
    monkeypatch.setattr(Reaper, "_socket", None)
    try:
        yield c
    finally:
        if ryuk:
            Reaper.delete_instance()
        config_dir.cleanup()
