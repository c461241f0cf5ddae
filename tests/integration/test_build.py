"""The Dockerfile builder on real containers: a corpus of Dockerfiles, each checked for the files
and config of the image it gives (not just that it built), plus cache, errors and cleanup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from pytest_pods import Client
from pytest_pods.errors import BuildError
from pytest_pods.errors import PodsError


class Case(NamedTuple):
    id: str
    dockerfile: str
    files: dict[str, str | bytes] = {}
    check: str = ""                  # shell script run in the built image (busybox sh)
    expect: str = ""                 # its exact stdout
    config: dict[str, Any] = {}      # image config fields that must equal these
    build_args: dict[str, str] = {}
    target: str | None = None


B = "FROM busybox\n"
CASES = [
    Case("run-shell-form", B + "RUN echo hello > /hello.txt\n", check="cat /hello.txt", expect="hello\n"),
    Case("run-exec-form", B + 'RUN ["sh", "-c", "echo exec > /e.txt"]\n', check="cat /e.txt", expect="exec\n"),
    Case("run-continuation", B + "RUN echo a \\\n    b \\\n    c > /f\n", check="cat /f", expect="a b c\n"),
    Case("comments-in-continuation", B + "RUN echo one \\\n# a comment\n    two > /f\n", check="cat /f", expect="one two\n"),
    Case("escape-backtick", "# escape=`\n" + B + "RUN echo x `\n    y > /f\n", check="cat /f", expect="x y\n"),
    Case("heredoc-run", B + "RUN <<EOF\necho line1 > /h\necho line2 >> /h\nEOF\n", check="cat /h", expect="line1\nline2\n"),
    Case("heredoc-run-quoted-no-expansion", B + "ENV X=expanded\nRUN <<'EOF'\necho '$X' > /q\nEOF\n",
         check="cat /q", expect="$X\n"),
    Case("heredoc-copy", B + "COPY <<EOF /greeting.txt\nhi there\nEOF\n", check="cat /greeting.txt", expect="hi there\n"),
    Case("heredoc-copy-expands", B + "ARG WHO=world\nCOPY <<EOF /g\nhello ${WHO}\nEOF\n", check="cat /g", expect="hello world\n"),
    Case("heredoc-copy-quoted", B + "ARG WHO=world\nCOPY <<\"EOF\" /g\nhello ${WHO}\nEOF\n", check="cat /g", expect="hello ${WHO}\n"),
    Case("copy-file", B + "COPY a.txt /a.txt\n", {"a.txt": "A\n"}, check="cat /a.txt", expect="A\n"),
    Case("copy-into-dir", B + "COPY a.txt b.txt /dst/\n", {"a.txt": "A\n", "b.txt": "B\n"},
         check="cat /dst/a.txt /dst/b.txt", expect="A\nB\n"),
    Case("copy-glob", B + "COPY *.txt /g/\n", {"a.txt": "1", "b.txt": "2", "c.md": "3"},
         check="ls /g | tr '\\n' ' '", expect="a.txt b.txt "),
    Case("copy-dir-contents", B + "COPY src /app\n", {"src/x": "x", "src/sub/y": "y"},
         check="cat /app/x /app/sub/y", expect="xy"),
    Case("copy-chown-by-name", B + "COPY --chown=nobody:nogroup a.txt /a\n", {"a.txt": "A"},
         check="stat -c '%U:%G' /a", expect="nobody:nogroup\n"),
    Case("copy-chown-numeric", B + "COPY --chown=1234:5678 a.txt /a\n", {"a.txt": "A"},
         check="stat -c '%u:%g' /a", expect="1234:5678\n"),
    Case("copy-chmod", B + "COPY --chmod=0751 a.sh /a.sh\n", {"a.sh": "#!/bin/sh\n"},
         check="stat -c '%a' /a.sh", expect="751\n"),
    Case("copy-relative-to-workdir", B + "WORKDIR /work\nCOPY a.txt rel/\n", {"a.txt": "A"},
         check="cat /work/rel/a.txt", expect="A"),
    Case("copy-keeps-parent-mode", B + "RUN mkdir -m 700 /secret\nCOPY a.txt /secret/a\n", {"a.txt": "A"},
         check="stat -c '%a' /secret", expect="700\n"),
    Case("dockerignore", B + "COPY . /ctx\n", {"keep.txt": "k", "skip.log": "s", "logs/a.log": "a",
                                             "logs/keep.me": "m", ".dockerignore": "*.log\nlogs\n!logs/keep.me\n"},
         check="cd /ctx && find . -type f | sort | tr '\\n' ' '", expect="./.dockerignore ./Dockerfile ./keep.txt ./logs/keep.me "),
    Case("symlink-copied-as-link", B + "COPY . /ctx\n", {"link->": "/etc/passwd"},
         check="readlink /ctx/link", expect="/etc/passwd\n"),
    Case("add-tar-extracts", B + "ADD files.tar /unpacked/\n", {"files.tar": b"TAR:inner.txt=inside"},
         check="cat /unpacked/inner.txt", expect="inside"),
    Case("add-plain-file", B + "ADD a.txt /a\n", {"a.txt": "plain"}, check="cat /a", expect="plain"),
    Case("env-then-use", B + "ENV A=1\nENV B=${A}2\nRUN echo $B > /b\n", check="cat /b", expect="12\n",
         config={"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=1", "B=12"]}),
    Case("env-same-line-uses-old-value", B + "ENV A=old\nENV A=new B=$A\n", check="echo $A $B", expect="new old\n"),
    Case("env-legacy-form", B + "ENV GREETING hello world\n", check="echo \"$GREETING\"", expect="hello world\n"),
    Case("env-default-and-alt", B + "ARG SET=yes\nENV D=${UNSET:-dflt} P=${SET:+alt} Q=${UNSET:+never}\n",
         check="echo $D $P x$Q", expect="dflt alt x\n"),
    Case("arg-before-from", "ARG BASE=busybox\nFROM ${BASE}\nRUN echo ok > /ok\n", check="cat /ok", expect="ok\n"),
    Case("arg-before-from-redeclared", "ARG V=meta\nFROM busybox\nARG V\nRUN echo $V > /v\n", check="cat /v", expect="meta\n"),
    Case("build-arg-overrides", B + "ARG V=default\nRUN echo $V > /v\n", check="cat /v", expect="given\n",
         build_args={"V": "given"}),
    Case("arg-not-in-image-env", B + "ARG SECRET=s\nRUN echo $SECRET > /s\n", check="cat /s; echo x$SECRET", expect="s\nx\n"),
    Case("label", B + 'LABEL a=1 b="two words"\n', config={"Labels": {"a": "1", "b": "two words"}}),
    Case("expose", B + "EXPOSE 80 53/udp\n", config={"ExposedPorts": {"80/tcp": {}, "53/udp": {}}}),
    Case("cmd-exec", B + 'CMD ["echo", "from-cmd"]\n', config={"Cmd": ["echo", "from-cmd"]}),
    Case("cmd-shell", B + "CMD echo shell\n", config={"Cmd": ["/bin/sh", "-c", "echo shell"]}),
    Case("entrypoint-resets-inherited-cmd", B + 'ENTRYPOINT ["/bin/echo"]\n',
         config={"Entrypoint": ["/bin/echo"], "Cmd": None}),
    Case("user", B + "USER nobody\n", check="id -un", expect="nobody\n", config={"User": "nobody"}),
    Case("workdir-created", B + "WORKDIR /a/b\nWORKDIR c\n", check="pwd", expect="/a/b/c\n",
         config={"WorkingDir": "/a/b/c"}),
    Case("volume", B + 'VOLUME ["/data", "/logs"]\n', config={"Volumes": {"/data": {}, "/logs": {}}}),
    Case("stopsignal", B + "STOPSIGNAL SIGUSR1\n", config={"StopSignal": "SIGUSR1"}),
    Case("shell", B + 'SHELL ["/bin/sh", "-ec"]\nRUN echo via-shell > /s\n', check="cat /s", expect="via-shell\n",
         config={"Shell": ["/bin/sh", "-ec"]}),
    Case("healthcheck", B + "HEALTHCHECK --interval=5s --retries=3 CMD true\n",
         config={"Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000, "Retries": 3}}),
    Case("onbuild-recorded", B + "ONBUILD RUN echo triggered > /t\n", config={"OnBuild": ["RUN echo triggered > /t"]}),
    Case("whiteout-removes-file", B + "RUN echo x > /tmp/f\nRUN rm /tmp/f\n", check="test -e /tmp/f; echo $?", expect="1\n"),
    Case("multi-stage-copy-from", "FROM busybox AS build\nRUN echo built > /out\n"
         "FROM busybox\nCOPY --from=build /out /final\n", check="cat /final", expect="built\n"),
    Case("multi-stage-by-index", "FROM busybox\nRUN echo zero > /z\nFROM busybox\nCOPY --from=0 /z /z\n",
         check="cat /z", expect="zero\n"),
    Case("copy-from-image", B + "COPY --from=busybox /bin/busybox /copied\n", check="test -x /copied && echo yes",
         expect="yes\n"),
    Case("target-stage", "FROM busybox AS first\nRUN echo first > /which\nFROM busybox AS second\nRUN echo second > /which\n",
         check="cat /which", expect="first\n", target="first"),
    Case("from-scratch-copy", "FROM busybox AS tools\nFROM scratch\nCOPY --from=tools /bin/busybox /bin/busybox\n"
         'CMD ["/bin/busybox", "echo", "scratch-ok"]\n', config={"Cmd": ["/bin/busybox", "echo", "scratch-ok"]}),
    Case("run-mount-bind-context", B + "RUN --mount=type=bind,source=data,target=/mnt cat /mnt/x > /copied\n",
         {"data/x": "from-context\n"}, check="cat /copied; test -e /mnt; echo $?", expect="from-context\n1\n"),
    Case("run-mount-bind-from-stage", "FROM busybox AS a\nRUN echo staged > /s\nFROM busybox\n"
         "RUN --mount=type=bind,from=a,source=/s,target=/in/s cat /in/s > /got\n", check="cat /got; test -e /in; echo $?", expect="staged\n1\n"),
    Case("run-mount-cache", B + "RUN --mount=type=cache,target=/cache echo kept > /cache/x && cat /cache/x > /seen\n",
         check="cat /seen; ls /cache 2>/dev/null | wc -l", expect="kept\n0\n"),
]


def _make_context(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        if name.endswith("->"):
            os.symlink(str(content), root / name[:-2])
            continue
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes) and content.startswith(b"TAR:"):
            member, _, data = content[4:].partition(b"=")
            import io

            with tarfile.open(p, "w") as tf:
                info = tarfile.TarInfo(member.decode())
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            continue
        p.write_bytes(content if isinstance(content, bytes) else content.encode())


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_dockerfile_corpus_gives_the_expected_files_and_config(client: Client, tmp_path: Path, case: Case) -> None:
    _make_context(tmp_path, case.files)
    (tmp_path / "Dockerfile").write_text(case.dockerfile)
    tag = f"test/build-{case.id}:{uuid.uuid4().hex[:8]}"
    img = client.images.build(tmp_path, tag=tag, buildargs=case.build_args, target=case.target)
    try:
        cfg = img.run_config
        for key, want in case.config.items():
            assert cfg.get(key) == want, (key, cfg.get(key))
        if case.check:
            r = client.containers.run(tag, ["sh", "-c", case.check], remove=True, network="none", entrypoint=[""])
            assert r.output.decode() == case.expect, r.stderr
    finally:
        client.images.remove(tag, force=True)


def test_onbuild_trigger_runs_in_the_child_build(client: Client, tmp_path: Path) -> None:
    parent = f"test/onbuild-parent:{uuid.uuid4().hex[:8]}"
    (tmp_path / "Dockerfile").write_text(B + "ONBUILD RUN echo triggered > /t\n")
    client.images.build(tmp_path, tag=parent)
    child = tmp_path / "child"
    child.mkdir()
    (child / "Dockerfile").write_text(f"FROM {parent}\nRUN cat /t > /copy\n")
    tag = f"test/onbuild-child:{uuid.uuid4().hex[:8]}"
    try:
        img = client.images.build(child, tag=tag)
        assert "OnBuild" not in img.run_config or not img.run_config["OnBuild"]
        r = client.containers.run(tag, ["cat", "/copy"], remove=True, network="none")
        assert r.output == b"triggered\n"
    finally:
        client.images.remove(tag, force=True)
        client.images.remove(parent, force=True)


def test_rebuild_with_nothing_changed_does_no_work_and_one_changed_file_reruns_from_its_step(
        client: Client, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a1")
    (tmp_path / "b.txt").write_text("b1")
    (tmp_path / "Dockerfile").write_text(B + "COPY a.txt /a\nRUN cat /a > /a2\nCOPY b.txt /b\nRUN cat /b > /b2\n")
    tag = f"test/cache:{uuid.uuid4().hex[:8]}"
    lines: list[str] = []
    first = client.images.build(tmp_path, tag=tag, progress=lines.append)
    try:
        lines.clear()
        again = client.images.build(tmp_path, tag=tag, progress=lines.append)
        assert again.id == first.id
        assert sum(" ---> Using cache" == line for line in lines) == 4
        assert not any("Running in" in line for line in lines)
        (tmp_path / "b.txt").write_text("b2")
        lines.clear()
        changed = client.images.build(tmp_path, tag=tag, progress=lines.append)
        cached = [i for i, line in enumerate(lines) if line == " ---> Using cache"]
        assert len(cached) == 2  # COPY a and RUN a: before the step that reads b.txt
        assert changed.id != first.id
        r = client.containers.run(tag, ["cat", "/a2", "/b2"], remove=True, network="none")
        assert r.output == b"a1b2"
    finally:
        client.images.remove(tag, force=True)


def test_same_inputs_give_the_same_digests(client: Client, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("same")
    (tmp_path / "Dockerfile").write_text(B + "COPY f /f\nRUN echo deterministic > /d\n")
    t1, t2 = f"test/det:{uuid.uuid4().hex[:8]}", f"test/det:{uuid.uuid4().hex[:8]}"
    os.environ["SOURCE_DATE_EPOCH"] = "0"
    try:
        a = client.images.build(tmp_path, tag=t1, nocache=True)
        b = client.images.build(tmp_path, tag=t2, nocache=True)
        assert [layer["digest"] for layer in a.layers] == [layer["digest"] for layer in b.layers]
        assert a.id == b.id
    finally:
        del os.environ["SOURCE_DATE_EPOCH"]
        client.images.remove(t1, force=True)
        client.images.remove(t2, force=True)


def _leftovers(client: Client) -> dict[str, Any]:
    return {"containers": [st["id"] for st in client.runtime.list(all=True)],
            "tmp": sorted(p.name for p in client.store.tmp.iterdir()),
            "mounts": [ln for ln in Path("/proc/self/mountinfo").read_text().splitlines() if str(client.root) in ln]}


@pytest.mark.parametrize(("dockerfile", "files", "needle"), [
    (B + "FOO bar\n", {}, "Dockerfile:2"),
    (B + "RUN <<EOF\necho never closed\n", {}, "Dockerfile:2"),
    ("FROM busybox\nCOPY --from=nosuchstage /x /x\n", {}, "Dockerfile:2"),
    (B + "COPY missing.txt /m\n", {}, "Dockerfile:2"),
    (B + "RUN echo fine\nRUN exit 3\n", {}, "Dockerfile:3"),
    ("FROM 127.0.0.1:9/no-such-image:here\n", {}, "Dockerfile:1"),  # loopback: a pull is refused at once
    (B + "COPY ../outside /x\n", {}, "Dockerfile:2"),
])
def test_bad_input_fails_with_file_and_line_and_leaves_nothing(client: Client, tmp_path: Path, dockerfile: str,
                                                               files: dict[str, str], needle: str) -> None:
    _make_context(tmp_path, files)
    (tmp_path / "Dockerfile").write_text(dockerfile)
    tag = f"test/bad:{uuid.uuid4().hex[:8]}"
    before = _leftovers(client)
    with pytest.raises(PodsError) as err:
        client.images.build(tmp_path, tag=tag)
    assert needle in str(err.value), str(err.value)
    with pytest.raises(PodsError):
        client.images.get(tag)
    assert _leftovers(client) == before


def test_cli_build_prints_steps_and_tags(pods_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "Dockerfile").write_text(B + "RUN echo from-run\nENV X=1\n")
    tag = f"test/cli-build:{uuid.uuid4().hex[:8]}"
    r = pods_cli("build", "-t", tag, str(tmp_path))
    try:
        assert r.returncode == 0, r.stderr
        assert "Step 1/3 : FROM busybox" in r.stdout and "from-run" in r.stdout
        assert f"Successfully tagged {tag}" in r.stdout
        bad = pods_cli("build", "-f", "nope", str(tmp_path))
        assert bad.returncode == 125 and bad.stderr.count("\n") == 1
    finally:
        pods_cli("rmi", "-f", tag)


def test_concurrent_builds_of_the_same_dockerfile_build_each_step_once(tmp_path: Path, pods_root: Path) -> None:
    (tmp_path / "Dockerfile").write_text(B + f"RUN echo {uuid.uuid4().hex} > /id && sleep 1\n")
    cmd = [sys.executable, "-m", "pytest_pods.cli", "--root", str(pods_root), "build", str(tmp_path)]
    procs = [subprocess.Popen([*cmd[:-1], "-t", f"test/conc:{i}-{uuid.uuid4().hex[:6]}", cmd[-1]],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    ran = sum("Running in" in o[0] for o in outs)
    assert ran == 1, [o[0] for o in outs]
    for o in outs:
        for line in o[0].splitlines():
            if line.startswith("Successfully tagged "):
                subprocess.run([*cmd[:5], "rmi", "-f", line.split()[-1]], capture_output=True, check=True)


def test_add_fetches_a_url_and_checks_its_checksum(client: Client, tmp_path: Path) -> None:
    import hashlib
    import http.server
    import threading

    served = tmp_path / "www"
    served.mkdir()
    (served / "data.txt").write_text("fetched over http\n")
    digest = "sha256:" + hashlib.sha256(b"fetched over http\n").hexdigest()
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(served))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/data.txt"
    ctxdir = tmp_path / "ctx"
    ctxdir.mkdir()
    tag = f"test/add-url:{uuid.uuid4().hex[:8]}"
    try:
        (ctxdir / "Dockerfile").write_text(B + f"ADD --checksum={digest} {url} /got/\n")
        client.images.build(ctxdir, tag=tag)
        r = client.containers.run(tag, ["sh", "-c", "cat /got/data.txt; stat -c %a /got/data.txt"], remove=True,
                                  network="none")
        assert r.output == b"fetched over http\n600\n"
        (ctxdir / "Dockerfile").write_text(B + f"ADD --checksum=sha256:{'0' * 64} {url} /got/\n")
        with pytest.raises(BuildError, match="Dockerfile:2.*digest mismatch"):
            client.images.build(ctxdir, tag=tag + "x", nocache=True)
    finally:
        server.shutdown()
        client.images.remove(tag, force=True)


def test_independent_stages_run_at_the_same_time(client: Client, tmp_path: Path) -> None:
    """Two stages that read nothing of each other overlap in time (the kernel's uptime is shared).

    The RUNs differ by a comment: identical steps share one cache key, and the lock on it makes
    the second wait for the first and take its result."""
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox AS a\nRUN cut -d' ' -f1 /proc/uptime > /start && sleep 1.5 && cut -d' ' -f1 /proc/uptime > /end # a\n"
        "FROM busybox AS b\nRUN cut -d' ' -f1 /proc/uptime > /start && sleep 1.5 && cut -d' ' -f1 /proc/uptime > /end # b\n"
        "FROM busybox\nCOPY --from=a /start /a_start\nCOPY --from=a /end /a_end\n"
        "COPY --from=b /start /b_start\nCOPY --from=b /end /b_end\n")
    tag = f"test/parallel:{uuid.uuid4().hex[:8]}"
    try:
        client.images.build(tmp_path, tag=tag, nocache=True)
        out = client.containers.run(tag, ["cat", "/a_start", "/a_end", "/b_start", "/b_end"], remove=True,
                                    network="none").output.split()
        a0, a1, b0, b1 = map(float, out)
        assert a0 < b1 and b0 < a1, out  # the two RUNs were running at the same moment
    finally:
        client.images.remove(tag, force=True)


@pytest.mark.parametrize(("dockerfile", "check", "expect"), [
    (B + "RUN cat <<EOF > /etc/app.conf\nkey=value\nEOF\n", "cat /etc/app.conf", "key=value\n"),
    (B + "RUN cat <<A > /a && cat <<B > /b\naaa\nA\nbbb\nB\n", "cat /a /b", "aaa\nbbb\n"),
    (B + "RUN <<EOT awk '{print \"AWK:\" $0}' > /out\nline\nEOT\n", "cat /out", "AWK:line\n"),
])
def test_run_heredoc_with_a_command_line_is_the_commands_input(client: Client, tmp_path: Path, dockerfile: str,
                                                              check: str, expect: str) -> None:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    tag = f"test/heredoc-cmd:{uuid.uuid4().hex[:8]}"
    try:
        client.images.build(tmp_path, tag=tag)
        assert client.containers.run(tag, ["sh", "-c", check], remove=True, network="none").output.decode() == expect
    finally:
        client.images.remove(tag, force=True)


def test_identical_layers_twice_still_run_and_a_cached_rebuild_keeps_the_image_id(client: Client,
                                                                                  tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(B + "RUN true\nRUN true\nRUN echo a > /a\nRUN true\n")
    tag = f"test/dup-layers:{uuid.uuid4().hex[:8]}"
    try:
        first = client.images.build(tmp_path, tag=tag)
        assert client.containers.run(tag, ["cat", "/a"], remove=True, network="none").output == b"a\n"
        again = client.images.build(tmp_path, tag=tag)
        assert again.id == first.id  # nothing ran: the same image, not a new <none> one
    finally:
        client.images.remove(tag, force=True)


def test_add_copies_a_compressed_file_that_is_not_a_tar(client: Client, tmp_path: Path) -> None:
    import gzip

    (tmp_path / "data.gz").write_bytes(gzip.compress(b"just text\n"))
    (tmp_path / "Dockerfile").write_text(B + "ADD data.gz /x/\n")
    tag = f"test/add-gz:{uuid.uuid4().hex[:8]}"
    try:
        client.images.build(tmp_path, tag=tag)
        r = client.containers.run(tag, ["sh", "-c", "gunzip -c /x/data.gz"], remove=True, network="none")
        assert r.output == b"just text\n"
    finally:
        client.images.remove(tag, force=True)


def test_a_stage_copying_from_itself_is_a_circular_dependency(client: Client, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox AS me\nCOPY --from=me /bin/sh /x\n")
    with pytest.raises(BuildError, match="Dockerfile:2.*circular"):
        client.images.build(tmp_path)
