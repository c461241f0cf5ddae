"""Bad input through the real CLI: one clear line on stderr, exit 125, nothing left behind.

Each case runs ``pods`` in a subprocess and compares the root before and after: the blobs, the
snapshots, the containers (and their name links), the temp dir, the image list, and the host's
``pytest-pods`` cgroups. These tests use a private root of their own (busybox bootstrapped into
it, a fraction of a second) rather than ``PODS_TEST_ROOT``: other test processes share that root,
and their blobs and containers would make a before/after comparison of its directories flaky.

Where docker differs between ``create`` and ``start``: docker looks up ``-u USER`` only when the
container starts, so ``docker run -u nosuchuser`` fails with 125 but leaves a container in the
"Created" state in ``docker ps -a``. pods resolves the user at create time, so ``pods create`` and
``pods run`` both refuse it and leave nothing. Everything else here fails at create in docker too.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_pods import Client

BUSYBOX = "/bin/busybox"
Pods = Callable[..., Any]  # the pods_cli fixture


@pytest.fixture(scope="module")
def pods_root() -> Iterator[Path]:
    """Scope: module. A private root, so that before/after listings see only our own doing."""
    root = Path(tempfile.mkdtemp(prefix="pods-bad-input-", dir="/var/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def client(pods_root: Path, release_root: Callable[[Client], None]) -> Iterator[Client]:
    """Scope: module. Depends: pods_root, release_root. The engine over the private root, with busybox."""
    c = Client(pods_root)
    c.images.bootstrap_busybox()
    yield c
    release_root(c)  # each root has its own cgroup parent and networks: this touches no other root's


CGROUP_FS = Path("/sys/fs/cgroup")


def _cgroups() -> set[Path]:
    """Every container group, in each v1 hierarchy (``*/pytest-pods-*``) or in v2 (``pytest-pods-*``)."""
    tops = [*CGROUP_FS.glob("*/pytest-pods*"), *CGROUP_FS.glob("pytest-pods*")]
    return {p for top in tops if top.is_dir() for p in top.iterdir() if p.is_dir()}


def _populated(group: Path) -> bool:
    try:
        return bool((group / "cgroup.procs").read_text().strip())
    except OSError:
        return False  # gone meanwhile: the caller looks again


def _snapshot(client: Client) -> dict[str, Any]:
    root = client.root
    listing: dict[str, Any] = {
        d: sorted(os.listdir(root / d))
        for d in ("oci/blobs/sha256", "snapshots", "containers", "containers/.names", "tmp")
    }
    listing["images"] = sorted((i.id, i.tags) for i in client.images.list())
    return listing


def _known_containers(client: Client) -> set[str]:
    ids = set(os.listdir(client.root / "containers"))
    shared = os.environ.get("PODS_TEST_ROOT")
    if shared and os.path.isdir(Path(shared) / "containers"):
        ids |= set(os.listdir(Path(shared) / "containers"))
    return ids


@pytest.fixture
def nothing_left(client: Client, pods_cli: Callable[..., Any]) -> Iterator[Callable[[], None]]:
    """Call it after the bad command: asserts the root and the cgroups are as they were."""
    before = _snapshot(client)
    ps_before = pods_cli("ps", "-a", "-q", "--no-trunc", check=True).stdout
    groups_before = _cgroups()

    def check() -> None:
        assert _snapshot(client) == before
        assert pods_cli("ps", "-a", "-q", "--no-trunc", check=True).stdout == ps_before
        # Other test processes start and stop containers meanwhile: a leftover of ours is a new
        # group that holds no process (these commands never start one), belongs to no container
        # we know of, and does not go away.
        deadline = time.monotonic() + 2
        while True:
            new = {g for g in _cgroups() - groups_before
                   if g.name not in _known_containers(client) and not _populated(g)}
            if not new or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert not new, f"cgroups left behind: {sorted(new)}"

    yield check


def _fails_cleanly(proc: Any, *needles: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 125, (proc.returncode, proc.stderr)
    assert len(lines) == 1, f"want one line on stderr, got: {proc.stderr!r}"
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def _uid() -> str:
    return uuid.uuid4().hex[:12]


# -- run / create ---------------------------------------------------------------------------
RUN_CASES = [
    # --pull never: docker would try Docker Hub first (its lines before the error), out of reach here
    pytest.param(["--pull", "never", "{img}:1", "true"], ["No such image", "{img}:1"], id="unknown-image"),
    pytest.param(["--memory", "abc", "busybox", "true"], ["--memory", "abc"], id="memory-abc"),
    pytest.param(["--cpus", "x", "busybox", "true"], ["--cpus", "'x'"], id="cpus-x"),
    pytest.param(["--pids-limit", "abc", "busybox", "true"], ["--pids-limit", "abc"], id="pids-limit-abc"),
    pytest.param(["-u", "nosuchuser", "busybox", "true"], ["nosuchuser"], id="no-such-user"),
    pytest.param(["-u", "root:nosuchgroup", "busybox", "true"], ["nosuchgroup"], id="no-such-group"),
    pytest.param(["bad::ref", "true"], ["invalid reference format", "bad::ref"], id="bad-reference"),
    pytest.param(["--frob", "busybox", "true"], ["--frob"], id="unknown-flag"),
    # the confinement flags (issue 14): refused before anything is made, the option and value named
    pytest.param(["--shm-size", "lots", "busybox", "true"], ["--shm-size", "lots"], id="shm-size-lots"),
    pytest.param(["--ulimit", "nofile=2048:1024", "busybox", "true"], ["soft limit", "2048 > 1024"],
                 id="ulimit-soft-above-hard"),
    pytest.param(["--ulimit", "nofiles=1", "busybox", "true"], ["ulimit type: nofiles"], id="ulimit-unknown"),
    pytest.param(["--sysctl", "kernel.panic=1", "busybox", "true"], ["kernel.panic", "not allowed"],
                 id="sysctl-host-wide"),
    pytest.param(["--sysctl", "net.ipv4.ip_forward", "busybox", "true"], ["--sysctl", "KEY=VALUE"],
                 id="sysctl-no-value"),
    pytest.param(["--device", "/dev/no-such-device", "busybox", "true"], ["/dev/no-such-device"], id="device-missing"),
    pytest.param(["--device", "/dev/null:/dev/x:rwz", "busybox", "true"], ["--device", "rwz"], id="device-bad-mode"),
    pytest.param(["--security-opt", "seccomp=/no/such.json", "busybox", "true"], ["/no/such.json"],
                 id="seccomp-profile-missing"),
    pytest.param(["--security-opt", "apparmor", "busybox", "true"], ["--security-opt", "apparmor"],
                 id="security-opt-no-value"),
    pytest.param(["--tmpfs", "/x:size=big", "busybox", "true"], ["--tmpfs", "size="], id="tmpfs-bad-size"),
    pytest.param(["--cap-drop", "CAP_FROB", "busybox", "true"], ["--cap-drop", "CAP_FROB"], id="cap-drop-unknown"),
]


@pytest.mark.parametrize("verb", ["run", "create"])
@pytest.mark.parametrize("args,needles", RUN_CASES)
def test_bad_run_input_fails_with_one_line_and_leaves_nothing(
    pods_cli: Callable[..., Any], nothing_left: Callable[[], None], verb: str, args: list[str], needles: list[str]
) -> None:
    img = f"nosuch-{_uid()}"
    extra = ["--rm"] if verb == "run" else []
    proc = pods_cli(verb, "--name", f"t-{_uid()}", *extra, *[a.format(img=img) for a in args])
    _fails_cleanly(proc, *[n.format(img=img) for n in needles])
    nothing_left()


def test_name_in_use_is_refused_and_the_first_container_stays(
    client: Client, pods_cli: Callable[..., Any], name: str
) -> None:
    first = client.containers.create("busybox", ["true"], name=name)
    try:
        before = _snapshot(client)
        for args in (["run", "--rm"], ["create"]):
            _fails_cleanly(pods_cli(*args, "--name", name, "busybox", "true"), f'"/{name}" is already in use', first.id)
        assert _snapshot(client) == before
        assert client.containers.get(name).id == first.id
    finally:
        first.remove(force=True)


def _rootfs_tar(path: Path) -> None:
    with tarfile.open(path, "w") as tf:
        tf.add(BUSYBOX, "bin/busybox")
        for applet in ("sh", "true", "cat"):
            ti = tarfile.TarInfo(f"bin/{applet}")
            ti.type, ti.linkname = tarfile.SYMTYPE, "busybox"
            tf.addfile(ti)


def test_image_without_cmd_and_no_command_given(
    client: Client, pods_cli: Callable[..., Any], tmp_path: Path
) -> None:
    tar = tmp_path / "rootfs.tar"
    _rootfs_tar(tar)
    tag = f"test/no-cmd-{_uid()}:1"
    pods_cli("import", str(tar), tag, check=True)
    try:
        assert client.images.get(tag).run_config.get("Cmd") is None
        before = _snapshot(client)
        for args in (["run", "--rm", tag], ["create", tag]):
            _fails_cleanly(pods_cli(*args), "no command specified")
        assert _snapshot(client) == before
        # the same image runs when a command is given
        assert pods_cli("run", "--rm", tag, "true").returncode == 0
    finally:
        client.images.remove(tag, force=True)


# -- other verbs ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args,needles",
    [
        pytest.param(["tag", "busybox", "UPPER:case"], ["invalid reference format", "lowercase", "UPPER:case"],
                     id="tag-uppercase"),
        pytest.param(["tag", "busybox", "bad::ref"], ["invalid reference format", "bad::ref"], id="tag-bad-ref"),
        pytest.param(["tag", "nosuch-image-xyz", "ok:1"], ["No such image", "nosuch-image-xyz"], id="tag-unknown"),
        pytest.param(["frobnicate"], ["invalid choice", "frobnicate"], id="unknown-verb"),
        pytest.param(["images", "--bogus"], ["--bogus"], id="unknown-flag-images"),
        pytest.param(["run"], ["image"], id="run-without-image"),
        pytest.param(["system", "frob"], ["frob"], id="unknown-system-action"),
        pytest.param(["save", "-o", "/tmp/x.tar", "--format", "zip", "busybox"], ["--format", "zip"],
                     id="save-bad-format"),
        pytest.param(["save", "-o", "{tmp}/out.tar", "nosuch-image-xyz"], ["No such image", "nosuch-image-xyz"],
                     id="save-unknown-image"),
        pytest.param(["import", "{tmp}/missing.tar"], ["missing.tar", "no such file"], id="import-missing-file"),
        pytest.param(["load", "-i", "{tmp}/missing.tar"], ["missing.tar", "no such file"], id="load-missing-file"),
        pytest.param(["import", "-c", "RUN true", "{tar}"], ["RUN"], id="import-bad-change"),
    ],
)
def test_bad_input_to_other_verbs(
    pods_cli: Callable[..., Any], nothing_left: Callable[[], None], tmp_path: Path, args: list[str], needles: list[str]
) -> None:
    tar = tmp_path / "ok.tar"
    _rootfs_tar(tar)
    proc = pods_cli(*[a.format(tmp=tmp_path, tar=tar) for a in args])
    _fails_cleanly(proc, *needles)
    assert not (tmp_path / "out.tar").exists()
    nothing_left()


# -- corrupt and malicious archives ---------------------------------------------------------
def _tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname = kind, target
    return ti, None


MARK = uuid.uuid4().hex


def _garbage() -> bytes:
    return os.urandom(3000)


def _truncated() -> bytes:
    data = _tar_bytes([_file("etc/big", os.urandom(20000))])
    return data[:5000]


def _gzip_garbage() -> bytes:
    return b"\x1f\x8b\x08\x00" + os.urandom(500)


def _dotdot() -> bytes:
    return _tar_bytes([_file("etc/ok", b"ok\n"), _file(f"../../escape-{MARK}", b"escaped\n")])


def _deep_dotdot() -> bytes:
    return _tar_bytes([_file(f"a/../../../../../../../../tmp/escape-{MARK}", b"escaped\n")])


def _hardlink_outside() -> bytes:
    return _tar_bytes([_file("etc/ok", b"ok\n"), _link("stolen", "../../../../../../etc/hostname", tarfile.LNKTYPE)])


def _symlink_then_write() -> bytes:
    # a symlink may point anywhere, but writing "through" it must stay inside the snapshot
    return _tar_bytes([_link("evil", f"/tmp/pods-escape-dir-{MARK}", tarfile.SYMTYPE),
                       _file("evil/escape", b"escaped\n")])


@pytest.mark.parametrize(
    "make,needles",
    [
        pytest.param(_garbage, ["garbage.tar"], id="garbage"),
        pytest.param(_truncated, ["garbage.tar"], id="truncated"),
        pytest.param(_gzip_garbage, ["garbage.tar"], id="bad-gzip"),
        pytest.param(_dotdot, ["garbage.tar", "escape"], id="dotdot"),
        pytest.param(_deep_dotdot, ["garbage.tar", "escape"], id="deep-dotdot"),
        pytest.param(_hardlink_outside, ["garbage.tar", "hard link"], id="hardlink-outside"),
    ],
)
def test_import_of_a_corrupt_or_malicious_tarball_is_refused(
    client: Client, pods_cli: Callable[..., Any], nothing_left: Callable[[], None], tmp_path: Path,
    make: Callable[[], bytes], needles: list[str],
) -> None:
    tar = tmp_path / "garbage.tar"
    tar.write_bytes(make())
    tag = f"test/bad-{_uid()}:1"
    proc = pods_cli("import", str(tar), tag)
    _fails_cleanly(proc, *needles)
    nothing_left()
    assert not list(Path("/tmp").glob(f"escape-{MARK}"))
    assert not _found_under(Path("/var/tmp"), f"escape-{MARK}")
    assert not list(client.root.parent.glob(f"escape-{MARK}"))
    assert not _found_under(client.root, f"escape-{MARK}")


def _found_under(top: Path, name: str) -> list[str]:
    """Every path named ``name`` under ``top``; what other processes remove while we look (a
    reference dockerd's layers, another run's files) is skipped, not an error."""
    return [os.path.join(d, name) for d, dirs, files in os.walk(top, onerror=lambda _exc: None)
            if name in files or name in dirs]


def test_import_with_symlinks_out_writes_only_inside(
    client: Client, pods_cli: Callable[..., Any], tmp_path: Path
) -> None:
    """A symlink to an outside path is legal in a layer; writes through it land inside."""
    tar = tmp_path / "links.tar"
    tar.write_bytes(_symlink_then_write())
    tag = f"test/links-{_uid()}:1"
    proc = pods_cli("import", str(tar), tag)
    try:
        assert not Path(f"/tmp/pods-escape-dir-{MARK}").exists()
        if proc.returncode == 0:
            image = client.images.get(tag)
            snap = client.store.snapshot_path(image.diff_ids[0])
            assert (snap / f"tmp/pods-escape-dir-{MARK}/escape").read_bytes() == b"escaped\n"
        else:
            _fails_cleanly(proc)
    finally:
        if proc.returncode == 0:
            client.images.remove(tag, force=True)


def test_import_of_an_absolute_hard_link_stays_inside(client: Client, pods_cli: Callable[..., Any], tmp_path: Path) -> None:
    """``/etc/hostname`` as a hard link target means the layer's own file, never the host's."""
    tar = tmp_path / "abs.tar"
    tar.write_bytes(_tar_bytes([_file("etc/hostname", b"inside\n"), _link("copy", "/etc/hostname", tarfile.LNKTYPE)]))
    tag = f"test/abslink-{_uid()}:1"
    proc = pods_cli("import", str(tar), tag)
    try:
        if proc.returncode == 0:
            snap = client.store.snapshot_path(client.images.get(tag).diff_ids[0])
            assert (snap / "copy").read_bytes() == b"inside\n"
            assert os.stat(snap / "copy").st_ino != os.stat("/etc/hostname").st_ino
        else:
            _fails_cleanly(proc)
    finally:
        if proc.returncode == 0:
            client.images.remove(tag, force=True)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(_garbage, id="garbage"),
        pytest.param(lambda: b"", id="empty"),
        pytest.param(_gzip_garbage, id="bad-gzip"),
        pytest.param(lambda: _tar_bytes([_file("manifest.json", b"not json")]), id="bad-manifest"),
        pytest.param(lambda: _tar_bytes([_file("manifest.json", b'[{"Config": "../../etc/passwd", "Layers": []}]')]),
                     id="manifest-escapes"),
        pytest.param(lambda: _tar_bytes([_file("hello", b"hi")]), id="not-an-image-archive"),
    ],
)
def test_load_of_a_garbage_file_is_refused(
    pods_cli: Callable[..., Any], nothing_left: Callable[[], None], tmp_path: Path, make: Callable[[], bytes]
) -> None:
    src = tmp_path / "garbage.tar"
    src.write_bytes(make())
    _fails_cleanly(pods_cli("load", "-i", str(src)), "garbage.tar")
    nothing_left()


@pytest.mark.parametrize("args", [
    ["-u", "4294967295"], ["-u", "12345:4294967295"], ["-u", "99999999999"],  # (u32)-1 would keep root
    ["-w", "relative"], ["--cpus", "0.001"], ["--name", "a" * 300],
])
def test_more_bad_run_flags_fail_cleanly(pods_cli: Pods, client: Client, args: list[str]) -> None:
    before = _snapshot(client)
    r = pods_cli("run", "--rm", *args, "busybox", "id")
    assert r.returncode == 125, r
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "uid=0" not in r.stdout
    assert _snapshot(client) == before


def test_env_file_with_whitespace_in_a_name_names_the_line(pods_cli: Pods, tmp_path: Path) -> None:
    env = tmp_path / "vars.env"
    env.write_text("GOOD=1\n  B = 2\n")
    r = pods_cli("run", "--rm", "--env-file", str(env), "busybox", "true")
    assert r.returncode == 125 and f"{env}:2" in r.stderr and "whitespace" in r.stderr
