"""The store is private (issue 14): no other host user can read, list into or run anything under
the engine root, so a setuid-root binary or a device node unpacked from an image is never a way
in for them.

The reference is Docker's data root: ``/var/lib/docker`` is ``0710 root:root`` (and so are
``containers/`` and ``overlay2/``, ``image/`` is ``0700``), which leaves other users no access
at all. We make the root itself ``0700``: the same for every user but its owner, one mode to
keep. A root made before this (``0755``) is fixed in place the first time the engine opens it.
"""

from __future__ import annotations

import io
import os
import pwd
import shutil
import stat
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_pods import Client

OTHER_USER = "nobody"
BUSYBOX = "/bin/busybox"


def as_other_user(*cmd: str) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` as an ordinary host user (not root, not the root's owner)."""
    return subprocess.run(["runuser", "-u", OTHER_USER, "--", *cmd], capture_output=True, text=True, timeout=30)


@pytest.fixture
def open_root(release_root: Callable[[Client], None]) -> Iterator[Path]:
    """A root made world-readable the way roots were before the store became private."""
    if shutil.which("runuser") is None:
        pytest.skip("runuser (util-linux) is needed to act as another user")
    try:
        pwd.getpwnam(OTHER_USER)
    except KeyError:
        pytest.skip(f"no user {OTHER_USER!r} on this host")
    root = Path(tempfile.mkdtemp(prefix="pods-private-", dir="/var/tmp"))
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        release_root(Client(root))
        shutil.rmtree(root, ignore_errors=True)


def hostile_layer(path: Path) -> Path:
    """A rootfs with a setuid-root shell and a world-writable device node, as an image may carry."""
    with tarfile.open(path, "w") as tf:
        tf.add(BUSYBOX, "bin/busybox")
        ti = tf.gettarinfo(BUSYBOX, "sbin/busybox")  # argv[0] "busybox": it runs its applet
        ti.mode, ti.uid, ti.gid = 0o4755, 0, 0
        with open(BUSYBOX, "rb") as f:
            tf.addfile(ti, f)
        for applet in ("sh", "true", "cat"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tf.addfile(link)
        dev = tarfile.TarInfo("dev/open-device")
        dev.type, dev.devmajor, dev.devminor, dev.mode = tarfile.CHRTYPE, 1, 3, 0o666
        tf.addfile(dev)
        secret = tarfile.TarInfo("etc/secret")
        data = b"only for this container\n"
        secret.size, secret.mode = len(data), 0o644
        tf.addfile(secret, io.BytesIO(data))
    return path


def found(root: Path, name: str) -> list[Path]:
    return [Path(d) / name for d, _dirs, files in os.walk(root) if name in files]


def test_the_engine_root_is_private_and_an_open_one_is_fixed_on_first_use(open_root: Path) -> None:
    client = Client(open_root)
    mode = stat.S_IMODE(open_root.stat().st_mode)
    assert mode & 0o077 == 0, f"root mode {mode:o}: other users can reach it (Docker's data root is 0710)"
    assert open_root.stat().st_uid == os.geteuid()
    assert client.root == open_root


def test_another_user_cannot_list_read_or_run_anything_from_an_image(open_root: Path, tmp_path: Path) -> None:
    client = Client(open_root)
    tag = f"hostile-{uuid.uuid4().hex[:8]}:latest"
    client.images.import_rootfs(hostile_layer(tmp_path / "hostile.tar"), tag)
    result = client.containers.run(tag, ["cat", "/etc/secret"])
    assert result.exit_code == 0 and result.output == b"only for this container\n"

    shells = [p for p in found(open_root, "busybox") if p.stat().st_mode & stat.S_ISUID]
    devices = found(open_root, "open-device")
    assert shells and devices, "the image's files should be unpacked under the root"

    # as any other user: nothing under the root can be listed, read, opened or run
    assert as_other_user("ls", str(open_root)).returncode != 0
    assert as_other_user("cat", str(open_root / "oci" / "index.json")).returncode != 0
    for shell in shells:
        run = as_other_user(str(shell), "id", "-u")
        assert run.returncode != 0 and run.stdout.strip() != "0", f"{shell} ran for another user: {run}"
    for dev in devices:
        opened = as_other_user("sh", "-c", f"exec 3<> '{dev}'")
        assert opened.returncode != 0, f"{dev} opened for another user"
    logs = [p for p in open_root.rglob("*.log") if p.is_file()]
    assert logs, "the container's log should be under the root"
    for log in logs:
        assert as_other_user("cat", str(log)).returncode != 0, f"{log} is readable by another user"
    for secret in found(open_root, "secret"):
        assert as_other_user("cat", str(secret)).returncode != 0
