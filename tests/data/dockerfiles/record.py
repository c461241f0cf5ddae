"""Record what BuildKit makes of each case of the corpus into its ``expected.json`` (issue 18).

    python3 tests/data/dockerfiles/record.py [CASE...]

The reference is Debian's ``docker.io``: its dockerd with the built-in BuildKit, driven by Debian's
own ``/usr/bin/docker`` with ``DOCKER_BUILDKIT=1`` (that client speaks BuildKit without buildx).
With ``DOCKER_HOST`` set it uses that daemon; otherwise it starts one as the tests do
(tests/dockerd_helper.py, as root, with busybox:latest and debian:bookworm loaded). Cases whose
``case.json`` says ``"hand"`` (syntax newer than that BuildKit: heredocs...) are left as written.
The description of an image is tests/parity_helper.py's, the same the test uses on ours.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/
import parity_helper as ph  # noqa: E402

DOCKER = "/usr/bin/docker"  # Debian's client: /usr/local/bin/docker is newer and wants buildx


def error_of(out: str, dockerfile: str, case: dict[str, Any]) -> dict[str, Any]:
    """``{"line": N, "kind": K}`` of a failed ``docker build`` (BuildKit 0.8's words)."""
    line: int | None = None
    if m := re.search(r"dockerfile parse error line (\d+)", out):
        line, kind = int(m.group(1)), "dockerfile"
    elif "executor failed running" in out or "did not complete successfully" in out:
        kind = "run"
    elif (re.search(r"failed to compute cache key: .* not found", out) or "no source files were specified" in out
          or re.search(r"^lstat .*: no such file or directory$", out, re.M)):
        kind = "source"
    else:
        kind = "dockerfile"
    if line is None and (m := re.search(r"^ > \[(?:[\w-]+ )?\d+/\d+\] (.*):$", out, re.M)):
        line = ph.line_of(dockerfile, m.group(1))
    if "error_line" in case:
        line = case["error_line"]  # BuildKit 0.8 names no line for this error: the case says it
    return {"line": line, "kind": kind}


def record(name: str, env: dict[str, str]) -> dict[str, Any]:
    case = ph.load_case(name)
    tag = f"parity-{name}:latest"
    with tempfile.TemporaryDirectory(prefix="parity-") as tmp:
        ctx = ph.make_context(name, Path(tmp) / "ctx")
        argv = [DOCKER, "build", "--progress=plain", "-t", tag]
        for k, v in case["build_args"].items():
            argv += ["--build-arg", f"{k}={v}" if v is not None else k]
        if case["target"]:
            argv += ["--target", case["target"]]
        proc = subprocess.run([*argv, str(ctx)], env=env, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            out = proc.stdout + proc.stderr
            result = {"error": error_of(out, (ctx / "Dockerfile").read_text(), case)}
            print(f"{name}: error {result['error']}\n" + "\n".join(out.splitlines()[-4:]), file=sys.stderr)
        else:
            archive = Path(tmp) / "image.tar"
            subprocess.run([DOCKER, "save", "-o", str(archive), tag], env=env, check=True)
            result = ph.describe_archive(archive, case["probe"])
            subprocess.run([DOCKER, "rmi", "-f", tag], env=env, capture_output=True)
    version = subprocess.run([DOCKER, "version", "-f", "{{.Server.Version}}"], env=env, capture_output=True,
                             text=True).stdout.strip()
    return {"reference": f"docker.io {version} (dockerd's built-in BuildKit, DOCKER_BUILDKIT=1)", **result}


@contextlib.contextmanager
def daemon_env() -> Iterator[dict[str, str]]:
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    if env.get("DOCKER_HOST"):
        yield env
        return
    from dockerd_helper import reference_dockerd

    with reference_dockerd() as ref:
        yield dict(ref.env, DOCKER_BUILDKIT="1")


def main(names: list[str]) -> int:
    names = names or ph.case_names()
    with daemon_env() as env:
        for name in names:
            if ph.load_case(name).get("hand"):
                print(f"{name}: written by hand, left as it is")
                continue
            result = record(name, env)
            (ph.CORPUS / name / "expected.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
            print(f"{name}: recorded")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
