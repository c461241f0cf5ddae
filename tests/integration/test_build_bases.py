"""Base images that come by themselves, and build failures a user can act on (issue 15).

A ``FROM`` of a name the engine can make (busybox, ``debian:SUITE``) missing from the store is
bootstrapped on first use, once per root, under a lock; any other missing base fails naming the
Dockerfile, the line, the image and what to run. A failed RUN's error carries the step's last 30
lines, in BuildKit's words. Real builds on a real engine; the registry is a refused loopback port
(a rewrite in the registry config), so the rule's "no registry reachable" branch is taken on any
machine, quickly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from pytest_pods import Client
from pytest_pods.errors import BuildError, PodsError

UNREACHABLE = "127.0.0.1:9"  # the discard port: nothing listens, a connect is refused at once
HUNDRED_LINES = 'RUN for i in $(seq 1 100); do echo "line $i"; done; exit 3\n'


@pytest.fixture
def no_registry(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Scope: function. Docker Hub rewritten to a refused loopback port, for this process and the
    CLI processes given the returned environment: the rule's offline branch, on any machine."""
    cfg = tmp_path_factory.mktemp("registries") / "registries.json"
    cfg.write_text(json.dumps({"rewrites": {"docker.io/": f"{UNREACHABLE}/hub/"}}))
    os.chmod(cfg.parent, 0o755)
    os.chmod(cfg, 0o644)
    monkeypatch.setenv("PODS_REGISTRY_CONFIG", str(cfg))
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    return dict(os.environ)


@pytest.fixture
def fresh_root(release_root: Callable[[Client], None]) -> Iterator[Path]:
    """Scope: function. Depends: release_root. A root with no images at all, released and deleted at the end."""
    path = Path(tempfile.mkdtemp(prefix="pods-bases-", dir="/var/tmp"))
    root = path / "root"
    try:
        yield root
    finally:
        try:
            if root.exists():
                release_root(Client(root))
        finally:
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def private(own_root: Callable[[str], AbstractContextManager[Client]]) -> Iterator[Client]:
    """Scope: module. Depends: own_root. The engine over a root of its own, with busybox: the
    shared test root is busy with other sessions, so that before/after listings see only ours."""
    with own_root("pods-bases-") as c:
        yield c


def _context(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / f"ctx-{uuid.uuid4().hex[:8]}"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def _pods(root: Path) -> list[str]:
    return [sys.executable, "-m", "pytest_pods.cli", "--root", str(root)]


def _leftovers(client: Client) -> dict[str, Any]:
    return {"images": sorted(i.id for i in client.images.list()),
            "containers": [st["id"] for st in client.runtime.list(all=True)],
            "tmp": sorted(p.name for p in client.store.tmp.iterdir()),
            "mounts": [ln for ln in Path("/proc/self/mountinfo").read_text().splitlines() if str(client.root) in ln]}


# -- bases that come by themselves ---------------------------------------------------------------
def test_two_concurrent_builds_from_busybox_on_a_fresh_root_bootstrap_it_once(
        fresh_root: Path, tmp_path: Path, no_registry: dict[str, str]) -> None:
    ctx = _context(tmp_path, "FROM busybox\nRUN echo built-on-a-fresh-root > /f\n")
    procs = [subprocess.Popen([*_pods(fresh_root), "build", "-t", f"test/fresh:{i}", str(ctx)],
                              env=no_registry, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    said = [line for o in outs for line in o[0].splitlines() if "bootstrapping" in line]
    assert said == [" ---> bootstrapping busybox:latest from the host's busybox (once per root): "
                    "no registry reachable"], [o[0] for o in outs]
    client = Client(fresh_root)
    busyboxes = [i for i in client.images.list() if any(t.startswith("docker.io/library/busybox") or
                                                          t.startswith("busybox") for t in i.tags)]
    assert len(busyboxes) == 1, [i.tags for i in client.images.list()]
    assert client.images.get("busybox:latest").id == busyboxes[0].id
    # the next build finds it: no second bootstrap
    again = subprocess.run([*_pods(fresh_root), "build", str(ctx)], env=no_registry,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "bootstrapping" not in again.stdout, again.stdout + again.stderr


def test_a_build_waiting_on_a_debian_bootstrap_uses_what_it_made_and_does_not_bootstrap_again(
        fresh_root: Path, tmp_path: Path, no_registry: dict[str, str]) -> None:
    # the debian path's lock and re-check, without mmdebstrap's minute: the test holds the lock a
    # bootstrap of debian:trixie takes, makes the image itself meanwhile, then lets the build go on
    client = Client(fresh_root)
    ctx = _context(tmp_path, "FROM debian:trixie\nRUN echo on-trixie\n")
    with client.store.lock("bootstrap-debian-trixie"):
        proc = subprocess.Popen([*_pods(fresh_root), "build", str(ctx)], env=no_registry,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        assert proc.poll() is None, proc.communicate()  # waiting on the lock
        made = client.images.bootstrap_busybox("debian:trixie")  # stands in for the other bootstrap
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert "bootstrapping" not in out and "on-trixie" in out, out
    assert [i.id for i in client.images.list() if "debian:trixie" in " ".join(i.tags)] == [made.id]


@pytest.mark.parametrize(("dockerfile", "image", "line"), [
    (f"# a comment\nFROM {UNREACHABLE}/nosuch/base:1\nRUN true\n", f"{UNREACHABLE}/nosuch/base:1", 2),
    ("FROM busybox AS first\nFROM nosuch-image-15:2\n", "nosuch-image-15:2", 2),
    ("FROM busybox\nCOPY --from=nosuch-image-15:3 /x /x\n", "nosuch-image-15:3", 2),
])
def test_a_missing_base_that_cannot_be_bootstrapped_fails_naming_dockerfile_line_image_and_fix(
        private: Client, tmp_path: Path, no_registry: dict[str, str], dockerfile: str, image: str, line: int) -> None:
    client = private
    ctx = _context(tmp_path, dockerfile)
    before = _leftovers(client)
    t0 = time.monotonic()
    with pytest.raises(BuildError) as err:
        client.images.build(ctx, tag=f"test/missing-base:{uuid.uuid4().hex[:8]}")
    msg = str(err.value)
    assert time.monotonic() - t0 < 30, msg
    assert msg.startswith(f"Dockerfile:{line}: "), msg
    assert f"image {image} not found" in msg, msg
    assert f"`pods pull {image}`" in msg and "`pods load -i FILE`" in msg, msg
    assert "pods bootstrap" not in msg, msg  # it cannot be bootstrapped: not offered
    assert _leftovers(client) == before


def test_the_fix_offered_for_a_bootstrappable_name_includes_pods_bootstrap() -> None:
    from pytest_pods.builders.bases import bootstrappable, fix_hint

    assert bootstrappable("busybox") == bootstrappable("docker.io/library/busybox:latest") == "busybox"
    assert bootstrappable("debian:bookworm") == "debian:bookworm"
    assert bootstrappable("busybox:1.36") is None and bootstrappable("debian") is None
    assert bootstrappable("example.com/debian:bookworm") is None
    assert "`pods bootstrap debian:bookworm`" in fix_hint("debian:bookworm")


# -- a failed build shows the failing step's output ----------------------------------------------
def test_a_failing_run_step_error_carries_its_last_30_lines_in_buildkit_words(private: Client, tmp_path: Path) -> None:
    client = private
    ctx = _context(tmp_path, "FROM busybox\n" + HUNDRED_LINES)
    before = _leftovers(client)
    with pytest.raises(BuildError) as err:
        client.images.build(ctx)
    msg = str(err.value)
    head, *rest = msg.splitlines()
    script = HUNDRED_LINES.removeprefix("RUN ").rstrip("\n")
    # BuildKit: process "/bin/sh -c ..." did not complete successfully: exit code: 3
    assert head == (f"Dockerfile:2: RUN {script}: process {json.dumps('/bin/sh -c ' + script)} "
                    "did not complete successfully: exit code: 3"), head
    assert [f"line {i}" for i in range(71, 101)] == [ln for ln in rest if ln.startswith("line ")], msg
    assert "line 70" not in rest
    assert getattr(err.value, "exit_code", None) == 3
    assert _leftovers(client) == before


def test_a_run_step_failing_without_output_says_so(client: Client, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=re.escape('process "/bin/sh -c exit 7" did not complete successfully: '
                                                   "exit code: 7 (no output)")):
        client.images.build(_context(tmp_path, "FROM busybox\nRUN exit 7\n"))


def test_pods_build_prints_the_failing_steps_tail_even_when_quiet(pods_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = _context(tmp_path, "FROM busybox\n" + HUNDRED_LINES)
    r = pods_cli("build", "-q", str(ctx))
    assert r.returncode != 0 and r.stdout == "", r.stdout
    assert "did not complete successfully: exit code: 3" in r.stderr and "line 100" in r.stderr, r.stderr
    assert "line 71\n" in r.stderr and "line 70\n" not in r.stderr, r.stderr


def test_a_fixture_whose_build_fails_shows_the_steps_output_without_dash_s(
        pytester: pytest.Pytester, pods_root: Path, client: Client) -> None:
    ctx = pytester.mkdir("app")
    (ctx / "Dockerfile").write_text("FROM busybox\n" + HUNDRED_LINES)
    pytester.makepyfile(test_app='''
        from pytest_pods import image

        app = image("app")

        def test_uses_it(app):
            pass
    ''')
    result = pytester.runpytest_subprocess(f"--pods-root={pods_root}", "-p", "no:cacheprovider", timeout=180)
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    # the local builder's words, or Docker's through a daemon (the rootless session's)
    assert "pytest-pods: fixture 'app': " in out and ("exit code: 3" in out or "non-zero code: 3" in out), out
    assert "line 71" in out and "line 100" in out and "line 70\n" not in out, out
    assert "Traceback" not in out, out


def test_a_malformed_from_is_named_as_a_bad_reference_not_a_missing_image(client: Client, tmp_path: Path) -> None:
    # the user's typo, named as before: no pull, no bootstrap
    with pytest.raises(PodsError, match="Dockerfile:1: FROM Bad/Name: .*lowercase"):
        client.images.build(_context(tmp_path, "FROM Bad/Name\n"))
