"""Build secrets (issue 18): ``RUN --mount=type=secret`` as BuildKit has it, given by
``images.build(secrets=...)`` and ``pods build --secret id=...,src=|env=``. The secret reaches the
step (as a file, or a variable) and nowhere else: not a layer, not the image config or history,
not the build cache, not the build's output."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from pytest_pods import Client
from pytest_pods.errors import BuildError

SECRET = b"pods-secret-" + uuid.uuid4().hex.encode()  # unique per run: found anywhere, it leaked
SUM = 'sha256sum | cut -d" " -f1'  # a step checks the value by its digest: the Dockerfile holds no secret

DOCKERFILE = """FROM busybox
RUN --mount=type=secret,id=token test "$(cat /run/secrets/token | {sum})" = "{digest}" && stat -c "%a %u" /run/secrets/token > /seen
RUN --mount=type=secret,id=token,target=/etc/app/key,mode=0440,uid=65534 stat -c "%a %u" /etc/app/key > /seen2
RUN --mount=type=secret,id=token,env=TOKEN test "$(printf %s "$TOKEN" | {sum})" = "{digest}" && test ! -e /run/secrets/token && echo ok > /seen3
RUN --mount=type=secret,id=absent ls /run/secrets > /seen4 2>&1 || echo none > /seen4
"""


def _files_under(root: Path) -> list[Path]:
    return [Path(d) / n for d, _, names in os.walk(root) for n in names]


def _leaks(root: Path, output: str) -> list[str]:
    """Where the secret's value shows: every file of the root (blobs, snapshots, cache), the output."""
    out = [str(p) for p in _files_under(root) if p.is_file() and not p.is_symlink() and SECRET in p.read_bytes()]
    if SECRET.decode() in output:
        out.append("the build output")
    return out


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(sum=SUM, digest=hashlib.sha256(SECRET).hexdigest()))
    return ctx


def test_secret_reaches_the_step_as_file_and_env_and_no_layer_key_or_output(
        client: Client, pods_root: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    tag = f"secrets-{uuid.uuid4().hex[:8]}:latest"
    image = client.images.build(_context(tmp_path), tag=tag, secrets={"token": SECRET}, progress=lines.append)
    try:
        result = client.containers.run(tag, ["cat", "/seen", "/seen2", "/seen3", "/seen4"], remove=True)
        assert result.output.decode() == "400 0\n440 65534\nok\nnone\n"
        assert "/run/secrets" not in str(client.images.inspect(tag)["Config"])
        archive = tmp_path / "image.tar"
        client.images.save([tag], archive)
        assert SECRET not in archive.read_bytes()
        assert not _leaks(pods_root, "\n".join(lines))
        # the secret is no part of the cache key (BuildKit's rule): a new value reuses the steps
        again: list[str] = []
        other = b"pods-secret-" + uuid.uuid4().hex.encode()
        assert client.images.build(tmp_path / "ctx", secrets={"token": other}, progress=again.append).id == image.id
        assert sum("Using cache" in line for line in again) == 4
    finally:
        client.images.remove(tag, force=True)


def test_a_required_secret_that_is_not_given_fails_naming_it(client: Client, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN --mount=type=secret,id=npmrc,required=true true\n")
    with pytest.raises(BuildError, match=r"Dockerfile:2: secret npmrc not found"):
        client.images.build(tmp_path, nocache=True)


def test_pods_build_secret_from_a_file_and_from_the_environment(pods_cli: Any, pods_root: Path, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        f'RUN --mount=type=secret,id=f test "$(cat /run/secrets/f | {SUM})" = "{hashlib.sha256(SECRET).hexdigest()}"\n'
        f'RUN --mount=type=secret,id=e,env=E test "$(printf %s "$E" | {SUM})" = "{hashlib.sha256(SECRET + b"-env").hexdigest()}" '
        '&& echo built > /built\n')
    src = tmp_path / "secret.txt"
    src.write_bytes(SECRET)
    tag = f"secrets-cli-{uuid.uuid4().hex[:8]}"
    os.environ["PODS_TEST_SECRET_E"] = SECRET.decode() + "-env"
    try:
        proc = pods_cli("build", "--no-cache", "-t", tag, "--secret", f"id=f,src={src}",
                        "--secret", "id=e,env=PODS_TEST_SECRET_E", str(ctx), timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert not _leaks(pods_root, proc.stdout + proc.stderr)
        bad = pods_cli("build", "-t", tag, "--secret", "id=f,src=/nonexistent/x", str(ctx))
        assert bad.returncode != 0 and "read /nonexistent/x" in bad.stderr and "Traceback" not in bad.stderr
    finally:
        del os.environ["PODS_TEST_SECRET_E"]
        pods_cli("rmi", "-f", tag)


def test_ssh_mount_gives_the_agent_socket_and_leaves_no_trace(client: Client, tmp_path: Path) -> None:
    """``RUN --mount=type=ssh``: the agent socket given for the id is bound in the step (the
    default target /run/buildkit/ssh_agent.0, SSH_AUTH_SOCK naming it) and is no part of a layer."""
    import socket

    sock_path = tmp_path / "agent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # a stand-in agent: a listening socket
    server.bind(str(sock_path))
    os.chmod(sock_path, 0o777)
    server.listen(1)
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\n"
        'RUN --mount=type=ssh test -S "$SSH_AUTH_SOCK" && echo "$SSH_AUTH_SOCK" > /sock\n'
        "RUN --mount=type=ssh,id=other ls /run/buildkit > /other 2>&1 || echo none > /other\n")
    tag = f"ssh-{uuid.uuid4().hex[:8]}:latest"
    try:
        client.images.build(tmp_path, tag=tag, nocache=True, ssh={"default": str(sock_path)})
        result = client.containers.run(tag, ["sh", "-c", "cat /sock /other; ls -d /run/buildkit 2>&1 || true"],
                                       remove=True)
        out = result.output.decode()
        assert out.startswith("/run/buildkit/ssh_agent.0\nnone\n"), out
        assert "No such file" in out
        with pytest.raises(BuildError, match="no SSH agent socket 'x'"):
            (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN --mount=type=ssh,id=x,required=true true\n")
            client.images.build(tmp_path, nocache=True)
    finally:
        server.close()
        client.images.remove(tag, force=True)
