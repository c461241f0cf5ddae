"""Making images locally: import a rootfs tarball, bootstrap busybox and Debian.

These are how a machine with no registry gets base images: ``busybox:latest`` from the host's
static busybox (Debian's busybox-static), ``debian:<suite>`` from mmdebstrap and the host's
Debian mirror.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import platform
import re
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pytest_pods.engine import rootless
from pytest_pods.engine.image.layers import write_layer
from pytest_pods.engine.image.reference import parse_reference
from pytest_pods.engine.image.store import MEDIA_OCI_LAYER, Image, Store
from pytest_pods.engine.locks import lease
from pytest_pods.errors import InvalidArgumentError, LayerError, PodsError

BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")
DEFAULT_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


def go_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def image_config(
    diff_ids: Sequence[str], *, config: Mapping[str, Any] | None = None, created: str | None = None,
    history: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """An OCI image config, with the fields ``docker inspect`` shows."""
    return {
        "architecture": go_arch(),
        "os": "linux",
        "created": created or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "config": dict(config or {"Env": DEFAULT_ENV, "Cmd": ["/bin/sh"]}),
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": list(history),
    }


def _open_maybe_gzip(path: Path) -> IO[bytes]:
    f = open(path, "rb")  # noqa: SIM115 (the caller closes what is returned)
    magic = f.read(2)
    f.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f)  # type: ignore[return-value]
    return f


def add_layer_from_tar(store: Store, src: Path) -> dict[str, Any]:
    """Store a (possibly gzipped) layer tar uncompressed and unpack it once.

    The unpack is the validation: a corrupt or malicious tar raises LayerError, and then the
    blob is removed again, so nothing of it stays in the store.
    """
    with _open_maybe_gzip(src) as f:
        try:
            digest, size = store.put_file(f)
        except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
            raise LayerError(f"import {src}: not a readable tar archive: {exc}") from exc
    blob = store.blob_path(digest)
    existed_snapshot = store.snapshot_path(digest).exists()
    try:
        store.ensure_snapshot(digest, digest)
    except LayerError as exc:
        if not existed_snapshot:
            with contextlib.suppress(FileNotFoundError):
                if not any(digest in i.diff_ids for i in store.images()):
                    blob.unlink()
        raise type(exc)(f"import {src}: {exc}") from exc  # name the file the user gave
    return {"mediaType": MEDIA_OCI_LAYER, "digest": digest, "size": size}


def import_rootfs(store: Store, tarball: str | os.PathLike[str], tag: str | None,
                  config: Mapping[str, Any] | None = None, comment: str = "") -> Image:
    """``pods import``: a one-layer image from a rootfs tarball."""
    src = Path(tarball)
    if not src.is_file():
        raise InvalidArgumentError(f"import {src}: no such file")
    if tag:
        parse_reference(tag)  # a bad name fails before any work
    layer = add_layer_from_tar(store, src)
    cfg = image_config([layer["digest"]], config=config or {"Env": DEFAULT_ENV},
                       history=[{"created_by": f"pods import {src.name}", "comment": comment or "imported"}])
    return store.create_image(cfg, [layer], [tag] if tag else [])


def _layer_from_dir(store: Store, rootfs: Path, epoch: int) -> dict[str, Any]:
    with store.blob_writer() as w:
        write_layer(rootfs, w, source_date_epoch=epoch)
    store.ensure_snapshot(w.digest, w.digest)
    return {"mediaType": MEDIA_OCI_LAYER, "digest": w.digest, "size": w.size}


def bootstrap_busybox(store: Store, tag: str = "busybox:latest") -> Image:
    """``busybox:latest`` from the host's static busybox, with its applet links."""
    binary = next((p for p in BUSYBOX_PATHS if os.path.isfile(p)), None)
    if binary is None:
        raise PodsError("bootstrap busybox: no busybox binary on this host: apt-get install busybox-static")
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if "not a dynamic executable" not in (ldd.stdout + ldd.stderr) and ldd.returncode == 0:
        raise PodsError(f"bootstrap busybox: {binary} is dynamically linked: apt-get install busybox-static")
    applets = subprocess.run([binary, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    version = subprocess.run([binary], capture_output=True, text=True).stdout.splitlines()[:1]
    with tempfile.TemporaryDirectory(dir=store.tmp, prefix=f"bootstrap-{lease()}-") as tmp:
        root = Path(tmp) / "rootfs"
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "var", "home"):
            (root / d).mkdir(parents=True, exist_ok=True)
        os.chmod(root / "tmp", 0o1777)
        os.chmod(root / "root", 0o700)
        shutil.copy2(binary, root / "bin/busybox")
        os.chmod(root / "bin/busybox", 0o755)
        for applet in applets:
            if applet == "bin/busybox":
                continue
            link = root / applet
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                os.symlink("/bin/busybox", link)
        (root / "etc/passwd").write_text(
            "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
            "nobody:x:65534:65534:nobody:/home:/bin/false\n"
        )
        (root / "etc/group").write_text("root:x:0:\ndaemon:x:1:\ntty:x:5:\nnogroup:x:65534:\n")
        epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
        for p in [root, *root.rglob("*")]:
            os.utime(p, (epoch, epoch), follow_symlinks=False)
        layer = _layer_from_dir(store, root, epoch)
    created = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cfg = image_config(
        [layer["digest"]], config={"Env": DEFAULT_ENV, "Cmd": ["sh"]}, created=created,
        history=[{"created": created, "created_by": f"pods bootstrap busybox ({' '.join(version)})"}],
    )
    return store.create_image(cfg, [layer], [tag])


def host_debian_mirror() -> str:
    """The host's Debian mirror from its apt sources (this machine reaches only that one)."""
    candidates: list[str] = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            text = path.read_text()
        except OSError:
            continue
        candidates += re.findall(r"^URIs:\s*(\S+)", text, re.M)
        candidates += re.findall(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, re.M)
    for uri in candidates:
        if "security" not in uri and "debian" in uri:
            return uri
    return "http://deb.debian.org/debian"


def debian_rootfs(suite: str, out: Path, variant: str = "minbase", mirror: str | None = None) -> None:
    """Run mmdebstrap to write ``debian:<suite>``'s root file system as a tar at ``out``.

    An ordinary user's mmdebstrap runs in its unshare mode (its own user namespace, mapped with
    the user's subordinate ids) when called outside the engine's user namespace (``pods
    bootstrap`` does it before joining). Inside it (a build or the daemon, which joined it: issue
    15), mmdebstrap is root there, with the same id map, but may not mount /proc or /sys (a
    mount of those needs a pid and net namespace of its own): it runs in its root mode with
    ``--skip=chroot/mount``; minbase's maintainer scripts need neither, and the tar's owners are
    the container ids either way."""
    if not re.fullmatch(r"[a-z][a-z0-9-]*", suite):
        raise InvalidArgumentError(f"bootstrap debian: bad suite name {suite!r}")
    if shutil.which("mmdebstrap") is None:
        raise PodsError("bootstrap debian: mmdebstrap is not installed: apt-get install mmdebstrap")
    if rootless.inside():
        mode = ["--mode=root", "--skip=chroot/mount"]
    else:
        mode = ["--mode=unshare"] if rootless.active() else []
    proc = subprocess.run(
        ["mmdebstrap", "--quiet", *mode, f"--variant={variant}", "--format=tar", suite, str(out),
         mirror or host_debian_mirror()],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise PodsError(f"bootstrap debian:{suite}: mmdebstrap failed:\n{tail}")


def import_debian(store: Store, tarball: Path, suite: str, tag: str | None = None, variant: str = "minbase") -> Image:
    """Import a tar made by :func:`debian_rootfs` as ``debian:<suite>``."""
    cfg = {"Env": DEFAULT_ENV, "Cmd": ["bash"]}
    return import_rootfs(store, tarball, tag or f"debian:{suite}", config=cfg, comment=f"mmdebstrap {variant} {suite}")


def bootstrap_debian(store: Store, suite: str = "bookworm", tag: str | None = None,
                     variant: str = "minbase", mirror: str | None = None,
                     rootfs: Path | None = None) -> Image:
    """``debian:<suite>`` made by mmdebstrap from the host's Debian mirror (or from ``rootfs``, a
    tar it made already)."""
    if rootfs is not None:
        return import_debian(store, rootfs, suite, tag, variant)
    with tempfile.TemporaryDirectory(dir=store.tmp, prefix=f"bootstrap-{lease()}-") as tmp:
        out = Path(tmp) / "rootfs.tar"
        debian_rootfs(suite, out, variant, mirror)
        return import_debian(store, out, suite, tag, variant)
