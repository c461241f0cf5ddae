"""Our builder against BuildKit, case by case (issue 18): each Dockerfile of tests/data/dockerfiles
is built with ``Client.images.build`` and must give the image BuildKit gave from the same inputs
on the same base images: the same config (Env, Cmd, Entrypoint, User, WorkingDir, ExposedPorts,
Volumes, Labels, StopSignal, Healthcheck, Shell, OnBuild) and the same state of the probed paths
(type, mode, uid, gid, size, content digest, link target), or the same error at the same line.

BuildKit's results are recorded in each case's ``expected.json`` (tests/data/dockerfiles/record.py
re-records them against Debian's dockerd), so no dockerd is needed here; where one can run,
``test_recorded_results_are_still_what_dockerd_makes`` rebuilds a few cases on it live. Cases with
syntax newer than that BuildKit (heredocs) carry hand-written results citing BuildKit's own tests.

The cases are built up front by a pool of threads (only those selected), so the corpus costs about
what its slowest builds cost, not their sum.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import parity_helper as ph
import pytest

from pytest_pods import Client
from pytest_pods.builders.build import StepFailedError
from pytest_pods.errors import BuildError, DockerfileError

CASES = ph.case_names()
LIVE = ["user-workdir-nonroot", "chown-user-name-only", "glob-none-and-some", "img-symlink-dest-relative",
        "cfg-expose-forms", "arg-global-redeclared", "from-stage-keeps-owner", "err-run-fails"]
WORKERS = 4


def our_error(exc: Exception) -> dict[str, Any]:
    """``{"line", "kind"}`` of one of our build errors, in the kinds record.py gives BuildKit's."""
    text = str(exc)
    m = re.match(r"[^:\n]*Dockerfile:(\d+)", text)
    line = int(m.group(1)) if m else None
    if isinstance(exc, StepFailedError):
        kind = "run"
    elif isinstance(exc, DockerfileError):
        kind, line = "dockerfile", exc.line
    elif re.search(r"(COPY|ADD).*(not found|no source files|does not exist)", text):
        kind = "source"
    else:
        kind = "dockerfile"
    return {"line": line, "kind": kind}


def build_ours(client: Client, name: str, made: list[str]) -> dict[str, Any]:
    """The description of what our builder makes of a case; the image's tag is added to ``made``
    (removed by the caller once every build is done: removing one image while other builds run
    could collect a blob one of them is about to use)."""
    case = ph.load_case(name)
    tag = f"parity-{name}-{uuid.uuid4().hex[:8]}:latest"
    with tempfile.TemporaryDirectory(prefix="parity-") as tmp:
        ctx = ph.make_context(name, Path(tmp) / "ctx")
        try:
            client.images.build(ctx, tag=tag, buildargs=case["build_args"], target=case["target"])
        except (BuildError, DockerfileError) as exc:
            return {"error": our_error(exc)}
        made.append(tag)
        archive = Path(tmp) / "image.tar"
        client.images.save([tag], archive)
        return ph.describe_archive(archive, case["probe"])


@pytest.fixture(scope="module")
def ours(client: Client, request: pytest.FixtureRequest) -> dict[str, Any]:
    """Scope: module. Depends: client. Every selected case built by our builder, concurrently."""
    selected = [n for n in CASES if any(item.name == f"test_case_builds_as_buildkit_builds_it[{n}]"
                                        for item in request.session.items)]
    made: list[str] = []
    try:
        with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="parity") as pool:
            futures = {n: pool.submit(build_ours, client, n, made) for n in selected}
        return {n: f.exception() or f.result() for n, f in futures.items()}
    finally:
        for tag in made:
            client.images.remove(tag, force=True)


def test_corpus_is_large_and_recorded() -> None:
    assert len(CASES) >= 120
    missing = [n for n in CASES if ph.load_expected(n) is None]
    assert not missing, f"cases without expected.json (run tests/data/dockerfiles/record.py): {missing}"


@pytest.mark.parametrize("name", CASES)
def test_case_builds_as_buildkit_builds_it(ours: dict[str, Any], name: str) -> None:
    expected = ph.load_expected(name)
    assert expected is not None, f"{name}: no expected.json"
    got = ours[name]
    if isinstance(got, BaseException):
        raise got
    differences = ph.diff(expected, got)
    assert not differences, f"{name} ({expected['reference']}):\n  " + "\n  ".join(differences)


@pytest.mark.parametrize("name", LIVE)
def test_recorded_results_are_still_what_dockerd_makes(reference_docker: Any, name: str) -> None:
    """The recording against a live dockerd: a few cases, so a drift of the recorder shows."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("record", ph.CORPUS / "record.py")
    assert spec is not None and spec.loader is not None
    record = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(record)
    if shutil.which(record.DOCKER) is None:
        pytest.skip(f"{record.DOCKER} (Debian's docker client) is not installed")
    env = dict(reference_docker.env, DOCKER_BUILDKIT="1")
    got = record.record(name, env)
    expected = ph.load_expected(name)
    assert expected is not None
    assert not ph.diff(expected, got), ph.diff(expected, got)
    subprocess.run([record.DOCKER, "builder", "prune", "-af"], env=env, capture_output=True)
