"""The examples (``make demo``'s suite) on a real Docker: ``pytest examples --pods-host`` pointed at
the reference dockerd (tests/dockerd_helper.py), unchanged. They build their images there (the
notes API and the C program: ``RUN apt-get`` through the helper's NAT rule) and take the service
images from our builds through ``--pods-registry`` (see ``ReferenceDocker.service_registry``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from pytest_pods import Client

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_examples_pass_on_dockerd_and_leave_nothing_there(reference_docker: Any, client: Client,
                                                              tmp_path: Path) -> None:
    registry = reference_docker.service_registry(client)
    before = set(reference_docker.docker("ps", "-aq").stdout.split())
    nets_before = set(reference_docker.docker("network", "ls", "-q").stdout.split())
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(EXAMPLES), "-p", "no:cacheprovider", "-q", "-rs",
         f"--pods-host={reference_docker.host}", f"--pods-registry={registry}", f"--basetemp={tmp_path / 'tmp'}"],
        cwd=EXAMPLES, capture_output=True, text=True, timeout=1200)
    tail = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    assert " failed" not in proc.stdout and " error" not in proc.stdout, tail
    assert "skipped" not in proc.stdout.splitlines()[-1], tail  # nothing skipped on a real Docker as root
    assert set(reference_docker.docker("ps", "-aq").stdout.split()) <= before
    assert set(reference_docker.docker("network", "ls", "-q").stdout.split()) <= nets_before


def test_the_service_recipes_build_on_dockers_classic_builder(reference_docker: Any, tmp_path: Path) -> None:
    # without --pods-registry the plugin builds the recipe on the engine: on Docker, through the
    # classic builder, which refuses COPY --chmod (and, before Docker 25, HEALTHCHECK --start-interval)
    (tmp_path / "test_redis.py").write_text(
        "from pytest_pods import redis_container\n\ncache = redis_container()\n\n"
        "def test_ping(cache):\n    assert cache.client().ping()\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "test_redis.py", "-p", "no:cacheprovider", "-q",
                           f"--pods-host={reference_docker.host}"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.stdout.splitlines()[-1].startswith("1 passed"), proc.stdout[-3000:]
    mode = reference_docker.docker("run", "--rm", "--entrypoint", "stat", "pytest-pods/redis:7", "-c", "%a",
                                   "/usr/local/bin/docker-entrypoint.sh").stdout
    assert mode == "755\n"
