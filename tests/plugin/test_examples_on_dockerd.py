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
