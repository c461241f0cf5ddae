"""The Dockerfile corpus and what an image built from one of its cases looks like (issue 18).

A case is a directory of ``tests/data/dockerfiles``: its ``Dockerfile``, the context files beside
it, ``case.json`` (how to build it and what to look at) and ``expected.json`` (what BuildKit made:
recorded from Debian's dockerd by ``tests/data/dockerfiles/record.py``, or, for syntax newer than
that BuildKit, written by hand with the reference it follows in ``"reference"``).

``case.json`` (every key optional)::

    {"build_args": {"K": "V"}, "target": "stage",
     "probe": ["/app", "/etc/passwd"],      # paths whose state is compared (directories: all below)
     "links": {"ctx/link": "target"},       # symlinks made in the context
     "dirs": ["empty"],                     # (empty) directories made in the context
     "modes": {"file": "0600"},             # modes of context files (git keeps only 0644/0755)
     "tars": {"a.tar": {"d/f": "text", "d/l->": "f", "e/": ""}},   # tar archives made in the context
     "hand": "why this case is written by hand"}

An image is described from its ``docker save`` archive, the same way for both builders: the config
fields :data:`CONFIG_KEYS`, and for every probed path (and everything below a probed directory) its
type, mode, uid, gid, size, content digest and link target, after applying the layers in order
(OCI whiteouts included). A failed build is described by the line and the kind of its error.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent / "data" / "dockerfiles"
CONFIG_KEYS = ("Env", "Cmd", "Entrypoint", "User", "WorkingDir", "ExposedPorts", "Volumes", "Labels",
               "StopSignal", "Healthcheck", "Shell", "OnBuild")
NOT_CONTEXT = {"case.json", "expected.json"}
TEXT_MAX = 256
"""Small text files are described with their text too, so that a difference reads at once."""


def case_names() -> list[str]:
    return sorted(p.parent.name for p in CORPUS.glob("*/Dockerfile"))


def load_case(name: str) -> dict[str, Any]:
    p = CORPUS / name / "case.json"
    case: dict[str, Any] = json.loads(p.read_text()) if p.is_file() else {}
    case.setdefault("build_args", {})
    case.setdefault("target", None)
    case.setdefault("probe", [])
    return case


def load_expected(name: str) -> dict[str, Any] | None:
    p = CORPUS / name / "expected.json"
    return json.loads(p.read_text()) if p.is_file() else None


def make_context(name: str, dest: Path) -> Path:
    """The case's context in ``dest`` (new): its files with fixed modes, links, archives made."""
    src = CORPUS / name
    case = load_case(name)
    dest.mkdir()
    for dirpath, dirnames, filenames in os.walk(src):
        d = Path(dirpath)
        rel = d.relative_to(src)
        dirnames[:] = [n for n in dirnames if n != "__pycache__"]
        for n in dirnames:
            (dest / rel / n).mkdir(mode=0o755)
            os.chmod(dest / rel / n, 0o755)
        for n in filenames:
            if rel == Path(".") and n in NOT_CONTEXT:
                continue
            s = d / n
            if s.is_symlink():
                os.symlink(os.readlink(s), dest / rel / n)
                continue
            shutil.copyfile(s, dest / rel / n)
            os.chmod(dest / rel / n, 0o755 if os.access(s, os.X_OK) else 0o644)
    for path, target in case.get("links", {}).items():
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, dest / path)
    for path in case.get("dirs", []):
        (dest / path).mkdir(parents=True, exist_ok=True)
    for path, mode in case.get("modes", {}).items():
        os.chmod(dest / path, int(mode, 8))
    for path, members in case.get("tars", {}).items():
        _make_tar(dest / path, members)
    return dest


def _make_tar(path: Path, members: dict[str, str]) -> None:
    """A tar (gzip-compressed for .tgz/.tar.gz) with fixed times, so its digest never changes."""
    import gzip

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, content in members.items():
            info = tarfile.TarInfo(name.removesuffix("->").rstrip("/"))
            info.mtime = 1_600_000_000
            if name.endswith("->"):
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, content, 0o777
                tf.addfile(info)
            elif name.endswith("/"):
                info.type, info.mode = tarfile.DIRTYPE, int(content or "0755", 8)
                tf.addfile(info)
            else:
                data = content.encode()
                info.size, info.mode = len(data), 0o644
                tf.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    path.write_bytes(gzip.compress(raw, mtime=0) if path.name.endswith((".tgz", ".tar.gz")) else raw)


# -- describing an image -----------------------------------------------------------------------
def _norm(v: Any) -> Any:
    return None if v in (None, "", [], {}) else v


def describe_archive(archive: Path, probe: list[str]) -> dict[str, Any]:
    """``{"config": {...}, "files": {path: state}}`` of the one image in a ``docker save`` archive."""
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = json.load(outer.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        fs: dict[str, dict[str, Any]] = {}
        for layer in manifest["Layers"]:
            f = outer.extractfile(layer)
            assert f is not None
            _apply_layer(fs, io.BytesIO(f.read()))
    cfg = config.get("config") or {}
    out_cfg = {k: _norm(cfg.get(k)) for k in CONFIG_KEYS}
    files = {}
    for path in sorted(fs):
        if any(path == p or path.startswith(p.rstrip("/") + "/") for p in probe):
            files[path] = fs[path]
    for p in probe:
        if p not in fs and p.rstrip("/") not in fs:
            files[p] = {"type": "absent"}
    return {"config": out_cfg, "files": files}


def _apply_layer(fs: dict[str, dict[str, Any]], stream: io.BytesIO) -> None:
    with tarfile.open(fileobj=stream, mode="r:*") as tf:
        for m in tf:
            path = "/" + os.path.normpath(m.name).lstrip("./").lstrip("/")
            path = "/" if path == "/." else path.rstrip("/") or "/"
            base = os.path.basename(path)
            parent = os.path.dirname(path)
            if base == ".wh..wh..opq":
                for k in [k for k in fs if k.startswith(parent.rstrip("/") + "/")]:
                    del fs[k]
                continue
            if base.startswith(".wh."):
                gone = os.path.join(parent, base[4:])
                for k in [k for k in fs if k == gone or k.startswith(gone + "/")]:
                    del fs[k]
                continue
            if not m.isdir():
                for k in [k for k in fs if k.startswith(path + "/")]:
                    del fs[k]
            entry: dict[str, Any] = {"mode": oct(m.mode & 0o7777), "uid": m.uid, "gid": m.gid}
            if m.isdir():
                entry["type"] = "dir"
            elif m.issym():
                entry.update(type="symlink", target=m.linkname)
            elif m.islnk():
                target = "/" + os.path.normpath(m.linkname).lstrip("./").lstrip("/")
                entry.update({k: v for k, v in fs.get(target, {}).items() if k in ("size", "sha256", "text")}, type="file")
            elif m.isreg():
                data = tf.extractfile(m).read()  # type: ignore[union-attr]
                entry.update(type="file", size=len(data), sha256=hashlib.sha256(data).hexdigest()[:16])
                if len(data) <= TEXT_MAX:
                    with contextlib.suppress(UnicodeDecodeError):
                        entry["text"] = data.decode()
            else:
                entry["type"] = "other"
            fs[path] = entry


def _expand_hand(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    """A hand-written entry may give ``content`` instead of ``size`` and ``sha256``."""
    if entry is None or "content" not in entry:
        return entry
    data = entry["content"].encode()
    out = {k: v for k, v in entry.items() if k != "content"}
    out.update(size=len(data), sha256=hashlib.sha256(data).hexdigest()[:16])
    if len(data) <= TEXT_MAX:
        out["text"] = entry["content"]
    return out


def diff(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """What differs, one line each (none when equal): ``where: expected X, got Y``. A hand-written
    expectation (``"partial": true``) names only the config keys and paths it checks."""
    out = []
    if "error" in expected or "error" in got:
        if expected.get("error") != got.get("error"):
            out.append(f"error: expected {expected.get('error')}, got {got.get('error')}")
        return out
    partial = expected.get("partial", False)
    for k in CONFIG_KEYS:
        if partial and k not in expected["config"]:
            continue
        e, g = expected["config"].get(k), got["config"].get(k)
        if e != g:
            out.append(f"config {k}: expected {json.dumps(e)}, got {json.dumps(g)}")
    ef, gf = expected["files"], got["files"]
    for path in sorted(set(ef) | (set() if partial else set(gf))):
        e = _expand_hand(ef.get(path))
        if e != gf.get(path):
            out.append(f"{path}: expected {json.dumps(e)}, got {json.dumps(gf.get(path))}")
    return out


def line_of(dockerfile: str, instruction: str) -> int | None:
    """The line of the instruction BuildKit names in a step error (``RUN exit 3``), by its text."""
    want = " ".join(instruction.split())
    lines = dockerfile.splitlines()
    for i, text in enumerate(lines, 1):
        if " ".join(text.split()) == want:
            return i
    for i, text in enumerate(lines, 1):  # a continued instruction: BuildKit shows it joined
        if text.strip() and want.startswith(" ".join(text.split()).rstrip("\\").strip()):
            return i
    return None
