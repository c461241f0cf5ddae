"""Layer unpacking and writing: tar semantics, metadata, whiteouts and escape attempts.

These need root (mknod, chown, trusted.* xattrs, an overlay mount), so they skip elsewhere.
Hostile archives are built here with tarfile, or with raw header bytes where tarfile would not
write the hostile form itself.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pathlib
import stat
import struct
import sys
import tarfile
from collections.abc import Iterator

import pytest

from pytest_pods.engine import linux
from pytest_pods.engine.image.layers import unpack_layer, write_layer
from pytest_pods.errors import LayerError, UnsafeLayerError

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="layer unpacking needs root (mknod, chown, trusted.* xattrs)"
)

# security.capability v2 blob granting cap_net_raw (13) as permitted+effective
CAP_NET_RAW = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)


# ------------------------------------------------------------------------------------------
# helpers


def entry(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    data: bytes = b"",
    *,
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    mtime: int = 1_600_000_000,
    linkname: str = "",
    pax: dict[str, str] | None = None,
    dev: tuple[int, int] = (0, 0),
) -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode, ti.uid, ti.gid, ti.mtime = mode, uid, gid, mtime
    ti.linkname = linkname
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    ti.devmajor, ti.devminor = dev
    if pax:
        ti.pax_headers = dict(pax)
    return ti, data


def make_tar(*members: tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape") as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    return buf.getvalue()


def raw_header(name: bytes, typeflag: bytes, size: int = 0, linkname: bytes = b"") -> bytes:
    """A GNU tar header block written by hand, for forms tarfile would not produce."""

    def octal(value: int, width: int) -> bytes:
        return b"%0*o\0" % (width - 1, value)

    block = bytearray(512)
    block[0:100] = name.ljust(100, b"\0")[:100]
    block[100:108] = octal(0o644, 8)
    block[108:116] = octal(0, 8)
    block[116:124] = octal(0, 8)
    block[124:136] = octal(size, 12)
    block[136:148] = octal(1_600_000_000, 12)
    block[148:156] = b" " * 8
    block[156:157] = typeflag
    block[157:257] = linkname.ljust(100, b"\0")[:100]
    block[257:265] = b"ustar  \0"
    checksum = sum(block)
    block[148:156] = b"%06o\0 " % checksum
    return bytes(block)


def gnu_longname_tar(longname: bytes, short: bytes = b"harmless") -> bytes:
    payload = longname + b"\0"
    padded = payload + b"\0" * (-len(payload) % 512)
    return (
        raw_header(b"././@LongLink", b"L", size=len(payload))
        + padded
        + raw_header(short, b"0")
        + b"\0" * 1024
    )


@pytest.fixture
def where(tmp_path: pathlib.Path) -> Iterator[tuple[pathlib.Path, pathlib.Path]]:
    """(dest, sentinel): a snapshot path to unpack into and a directory outside it."""
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    (tmp_path / "layers").mkdir()
    yield tmp_path / "layers" / "snap", sentinel


def assert_nothing_left(dest: pathlib.Path, sentinel: pathlib.Path) -> None:
    assert not os.path.lexists(dest)
    assert [p.name for p in dest.parent.iterdir() if p.name.startswith(".unpack-")] == []
    assert list(sentinel.iterdir()) == []


def unpack_bytes(data: bytes, dest: pathlib.Path) -> None:
    unpack_layer(io.BytesIO(data), dest)


class PipeLike:
    """A stream with only read(): unpacking must not need seek or tell."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._buf.read(min(n, 7000) if n and n > 0 else 7000)


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        return tf.getmembers()


# ------------------------------------------------------------------------------------------
# unpack: a normal tree


def normal_tree() -> bytes:
    return make_tar(
        entry("etc", tarfile.DIRTYPE, mode=0o750, uid=12, gid=34, mtime=1000),
        entry("etc/conf", data=b"hello\n", mode=0o4755, uid=1000, gid=1001, mtime=2000,
              pax={"SCHILY.xattr.user.note": "hi", "SCHILY.xattr.user.bin": b"\xff\x00\xfe".decode("utf-8", "surrogateescape")}),
        entry("etc/ping", data=b"\x7fELF", mode=0o755, uid=0, gid=0,
              pax={"SCHILY.xattr.security.capability": CAP_NET_RAW.decode("utf-8", "surrogateescape")}),
        entry("etc/link", tarfile.SYMTYPE, linkname="conf", uid=7, gid=8, mtime=3000),
        entry("etc/abs", tarfile.SYMTYPE, linkname="/etc/passwd"),
        entry("etc/hard", tarfile.LNKTYPE, linkname="etc/conf"),
        entry("run/fifo", tarfile.FIFOTYPE, mode=0o620, mtime=4000),
        entry("dev/null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3)),
        entry("dev/sda", tarfile.BLKTYPE, mode=0o660, gid=6, dev=(8, 0)),
    )


def test_unpack_creates_tree_with_metadata(where: tuple[pathlib.Path, pathlib.Path]) -> None:
    dest, _ = where
    unpack_bytes(normal_tree(), dest)

    etc = os.lstat(dest / "etc")
    assert stat.S_ISDIR(etc.st_mode) and stat.S_IMODE(etc.st_mode) == 0o750
    assert (etc.st_uid, etc.st_gid, etc.st_mtime) == (12, 34, 1000)  # mtime survives its children

    conf = os.lstat(dest / "etc/conf")
    assert (dest / "etc/conf").read_bytes() == b"hello\n"
    assert stat.S_IMODE(conf.st_mode) == 0o4755  # setuid kept although chown came first
    assert (conf.st_uid, conf.st_gid, conf.st_mtime) == (1000, 1001, 2000)
    assert os.getxattr(dest / "etc/conf", "user.note") == b"hi"
    assert os.getxattr(dest / "etc/conf", "user.bin") == b"\xff\x00\xfe"
    assert os.getxattr(dest / "etc/ping", "security.capability") == CAP_NET_RAW

    link = os.lstat(dest / "etc/link")
    assert stat.S_ISLNK(link.st_mode) and os.readlink(dest / "etc/link") == "conf"
    assert (link.st_uid, link.st_gid, link.st_mtime) == (7, 8, 3000)
    assert os.readlink(dest / "etc/abs") == "/etc/passwd"  # symlinks may point anywhere

    hard = os.lstat(dest / "etc/hard")
    assert (hard.st_ino, hard.st_nlink) == (conf.st_ino, 2)

    fifo = os.lstat(dest / "run/fifo")
    assert stat.S_ISFIFO(fifo.st_mode) and stat.S_IMODE(fifo.st_mode) == 0o620
    null = os.lstat(dest / "dev/null")
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    sda = os.lstat(dest / "dev/sda")
    assert stat.S_ISBLK(sda.st_mode) and sda.st_rdev == os.makedev(8, 0) and sda.st_gid == 6

    # parents the layer does not list are made 0755, and the root is 0755 too
    assert stat.S_IMODE(os.lstat(dest / "run").st_mode) == 0o755
    assert stat.S_IMODE(os.lstat(dest).st_mode) == 0o755
    assert [p.name for p in dest.parent.iterdir()] == ["snap"]


def test_unpack_reads_gzip_from_a_pipe_like_stream(where: tuple[pathlib.Path, pathlib.Path]) -> None:
    dest, _ = where
    big = os.urandom(300_000)
    data = gzip.compress(make_tar(entry("a/big", data=big), entry("a/small", data=b"x")))
    unpack_layer(PipeLike(data), dest)  # type: ignore[arg-type]
    assert (dest / "a/big").read_bytes() == big


def test_unpack_reads_a_path(where: tuple[pathlib.Path, pathlib.Path], tmp_path: pathlib.Path) -> None:
    dest, _ = where
    blob = tmp_path / "layer.tar.gz"
    blob.write_bytes(gzip.compress(make_tar(entry("f", data=b"y"))))
    unpack_layer(blob, dest)
    assert (dest / "f").read_bytes() == b"y"


def test_unpack_zstd_without_zstandard_names_the_fix(
    where: tuple[pathlib.Path, pathlib.Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    dest, sentinel = where
    monkeypatch.setitem(sys.modules, "zstandard", None)  # makes the import fail
    with pytest.raises(LayerError, match="pip install zstandard"):
        unpack_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 64, dest)
    assert_nothing_left(dest, sentinel)


def test_unpack_reads_zstd(where: tuple[pathlib.Path, pathlib.Path]) -> None:
    zstandard = pytest.importorskip("zstandard")
    dest, _ = where
    data = zstandard.ZstdCompressor().compress(make_tar(entry("z", data=b"zz")))
    unpack_bytes(data, dest)
    assert (dest / "z").read_bytes() == b"zz"


def test_unpack_leaves_existing_dest_alone(where: tuple[pathlib.Path, pathlib.Path]) -> None:
    dest, _ = where
    dest.mkdir()
    (dest / "theirs").write_text("won the race")
    unpack_bytes(make_tar(entry("ours", data=b"x")), dest)
    assert [p.name for p in dest.iterdir()] == ["theirs"]
    assert [p.name for p in dest.parent.iterdir()] == ["snap"]


def test_unpack_truncated_gzip_leaves_nothing(where: tuple[pathlib.Path, pathlib.Path]) -> None:
    dest, sentinel = where
    data = gzip.compress(make_tar(entry("a/f", data=os.urandom(100_000))))
    with pytest.raises(LayerError):
        unpack_bytes(data[: len(data) // 2], dest)
    assert_nothing_left(dest, sentinel)


def test_unpack_truncated_member_data_leaves_nothing(where: tuple[pathlib.Path, pathlib.Path]) -> None:
    dest, sentinel = where
    data = make_tar(entry("a/f", data=b"x" * 5000))
    with pytest.raises(LayerError):
        unpack_bytes(data[:2048], dest)
    assert_nothing_left(dest, sentinel)


# ------------------------------------------------------------------------------------------
# unpack: escapes


ESCAPES = {
    "dotdot": make_tar(entry("../escape", data=b"x")),
    "climb-after-descend": make_tar(entry("a/b", tarfile.DIRTYPE), entry("a/../../escape", data=b"x")),
    "dir-dotdot": make_tar(entry("../sentinel", tarfile.DIRTYPE)),
    "pax-path": make_tar(entry("harmless", data=b"x", pax={"path": "../../sentinel/escape"})),
    "gnu-longname": gnu_longname_tar(b"../../sentinel/escape"),
    "gnu-longname-deep": gnu_longname_tar(b"a/" * 60 + b"../" * 61 + b"escape"),
    "hardlink-dotdot": make_tar(entry("h", tarfile.LNKTYPE, linkname="../../etc/passwd")),
    "hardlink-pax-linkpath": make_tar(
        entry("f", data=b"x"),
        entry("h", tarfile.LNKTYPE, linkname="f", pax={"linkpath": "../../etc/passwd"}),
    ),
    "whiteout-dotdot": make_tar(entry(".wh...", data=b"")),
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_unpack_refuses_names_that_climb_out(
    name: str, where: tuple[pathlib.Path, pathlib.Path]
) -> None:
    dest, sentinel = where
    with pytest.raises(UnsafeLayerError, match=r"^unpack layer: member '.*': .*escape"):
        unpack_bytes(ESCAPES[name], dest)
    assert_nothing_left(dest, sentinel)
    assert (dest.parent.parent / "escape").exists() is False


def test_unpack_error_names_the_member(where: tuple[pathlib.Path, pathlib.Path]) -> None:
    dest, _ = where
    with pytest.raises(UnsafeLayerError) as info:
        unpack_bytes(make_tar(entry("ok", data=b"1"), entry("../etc/x", data=b"x")), dest)
    assert str(info.value) == "unpack layer: member '../etc/x': path escapes the snapshot"


def test_unpack_keeps_absolute_names_inside(where: tuple[pathlib.Path, pathlib.Path]) -> None:
    dest, _ = where
    data = make_tar(entry("/etc/x", data=b"inside"), entry("/", tarfile.DIRTYPE, mode=0o711),
                    entry("a/../b", data=b"ok"))
    unpack_bytes(data, dest)
    assert (dest / "etc/x").read_bytes() == b"inside"
    assert (dest / "b").read_bytes() == b"ok"
    assert stat.S_IMODE(os.lstat(dest).st_mode) == 0o711


@pytest.mark.parametrize("target", ["/", "../..", "/../../.."])
def test_unpack_through_symlink_to_root_lands_inside(
    target: str, where: tuple[pathlib.Path, pathlib.Path]
) -> None:
    dest, sentinel = where
    data = make_tar(
        entry("link", tarfile.SYMTYPE, linkname=target),
        entry("link/outside-file", data=b"caught"),
        entry("link/sentinel/escape", data=b"caught"),
    )
    unpack_bytes(data, dest)
    assert (dest / "outside-file").read_bytes() == b"caught"
    assert (dest / "sentinel/escape").read_bytes() == b"caught"
    assert os.readlink(dest / "link") == target
    assert list(sentinel.iterdir()) == []
    assert not (dest.parent.parent / "outside-file").exists()


@pytest.mark.parametrize("how", ["absolute", "relative"])
def test_unpack_through_symlink_to_outside_dir_writes_nothing_outside(
    how: str, where: tuple[pathlib.Path, pathlib.Path]
) -> None:
    dest, sentinel = where
    # the temp root is tmp_path/layers/.unpack-*: "../../sentinel" would reach the sentinel
    target = str(sentinel) if how == "absolute" else "../../sentinel"
    data = make_tar(
        entry("evil", tarfile.SYMTYPE, linkname=target),
        entry("evil/pwned", data=b"x"),
    )
    # resolved inside the root the link dangles: a member under it cannot be created
    with pytest.raises(LayerError, match=r"member 'evil/pwned'"):
        unpack_bytes(data, dest)
    assert_nothing_left(dest, sentinel)


def test_unpack_through_symlink_to_outside_dir_stays_inside_when_it_exists_inside(
    where: tuple[pathlib.Path, pathlib.Path],
) -> None:
    dest, sentinel = where
    data = make_tar(
        entry(str(sentinel).lstrip("/"), tarfile.DIRTYPE),
        entry("evil", tarfile.SYMTYPE, linkname=str(sentinel)),
        entry("evil/pwned", data=b"x"),
    )
    unpack_bytes(data, dest)
    assert (dest / str(sentinel).lstrip("/") / "pwned").read_bytes() == b"x"
    assert list(sentinel.iterdir()) == []


@pytest.mark.parametrize("linkname", ["/etc/hostname", "etc/hostname", "l/hostname"])
def test_unpack_hardlink_to_host_file_is_refused(
    linkname: str, where: tuple[pathlib.Path, pathlib.Path]
) -> None:
    dest, sentinel = where
    data = make_tar(
        entry("l", tarfile.SYMTYPE, linkname="/etc"),
        entry("h", tarfile.LNKTYPE, linkname=linkname),
    )
    with pytest.raises(LayerError, match="does not exist"):
        unpack_bytes(data, dest)
    assert_nothing_left(dest, sentinel)


def test_unpack_hardlink_to_directory_is_refused(where: tuple[pathlib.Path, pathlib.Path]) -> None:
    dest, sentinel = where
    data = make_tar(entry("d", tarfile.DIRTYPE), entry("h", tarfile.LNKTYPE, linkname="d"))
    with pytest.raises(LayerError, match="is a directory"):
        unpack_bytes(data, dest)
    assert_nothing_left(dest, sentinel)


def test_unpack_hardlink_to_symlink_links_the_symlink(where: tuple[pathlib.Path, pathlib.Path]) -> None:
    dest, _ = where
    data = make_tar(entry("s", tarfile.SYMTYPE, linkname="/etc/passwd"), entry("h", tarfile.LNKTYPE, linkname="s"))
    unpack_bytes(data, dest)
    assert os.readlink(dest / "h") == "/etc/passwd"
    assert os.lstat(dest / "h").st_ino == os.lstat(dest / "s").st_ino


# ------------------------------------------------------------------------------------------
# unpack: later members replace earlier ones


def test_unpack_later_members_replace_earlier(where: tuple[pathlib.Path, pathlib.Path]) -> None:
    dest, sentinel = where
    data = make_tar(
        entry("f", data=b"first"),
        entry("f", data=b"second", mode=0o600),
        entry("d", tarfile.DIRTYPE),
        entry("d/child", data=b"c"),
        entry("d", tarfile.DIRTYPE, mode=0o700, mtime=42),  # dir over dir: metadata only
        entry("tree/sub/deep", data=b"x"),
        entry("tree", data=b"now a file"),  # file over a whole tree
        entry("s", tarfile.SYMTYPE, linkname=str(sentinel)),
        entry("s", tarfile.DIRTYPE),  # a real dir replaces the link, never follows it
        entry("s/inside", data=b"i"),
        entry("x", data=b"file"),
        entry("x", tarfile.SYMTYPE, linkname="f"),
    )
    unpack_bytes(data, dest)
    assert (dest / "f").read_bytes() == b"second"
    assert stat.S_IMODE(os.lstat(dest / "f").st_mode) == 0o600
    assert (dest / "d/child").read_bytes() == b"c"
    assert stat.S_IMODE(os.lstat(dest / "d").st_mode) == 0o700 and os.lstat(dest / "d").st_mtime == 42
    assert (dest / "tree").read_bytes() == b"now a file"
    assert stat.S_ISDIR(os.lstat(dest / "s").st_mode) and (dest / "s/inside").read_bytes() == b"i"
    assert os.readlink(dest / "x") == "f"
    assert list(sentinel.iterdir()) == []


# ------------------------------------------------------------------------------------------
# unpack: whiteouts


def test_unpack_converts_whiteouts_to_overlay_form(where: tuple[pathlib.Path, pathlib.Path]) -> None:
    dest, _ = where
    data = make_tar(
        entry("a", tarfile.DIRTYPE),
        entry("a/.wh.gone"),
        entry("a/.wh..wh..opq"),
        entry("new/.wh..wh..opq"),  # opaque in a dir the layer does not list: dir is made
        entry(".wh.top"),
        entry("b/file", data=b"x"),
        entry("b/.wh.file"),  # a whiteout replaces what an earlier member made
    )
    unpack_bytes(data, dest)
    for name in ("a/gone", "top", "b/file"):
        st = os.lstat(dest / name)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0), name
    assert os.getxattr(dest / "a", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(dest / "new", "trusted.overlay.opaque") == b"y"
    names = {str(p.relative_to(dest)) for p in dest.rglob("*")}
    assert not any(".wh." in n for n in names)


def test_unpack_ignores_raw_overlay_xattrs(where: tuple[pathlib.Path, pathlib.Path]) -> None:
    dest, _ = where
    data = make_tar(entry("d", tarfile.DIRTYPE, pax={"SCHILY.xattr.trusted.overlay.redirect": "/etc"}))
    unpack_bytes(data, dest)
    assert "trusted.overlay.redirect" not in os.listxattr(dest / "d")


def mount_overlay(lower: str, merged: pathlib.Path, upper: str | None = None, work: str | None = None) -> None:
    opts = f"lowerdir={lower}"
    if upper:
        opts += f",upperdir={upper},workdir={work}"
    try:
        linux.mount("overlay", merged, "overlay", 0, opts)
    except OSError as exc:
        pytest.skip(f"cannot mount overlayfs here: {exc}")


def test_unpacked_whiteouts_hide_lower_files_in_a_real_overlay(tmp_path: pathlib.Path) -> None:
    lower = make_tar(
        entry("a/keep", data=b"k"),
        entry("a/gone", data=b"g"),
        entry("b/old", data=b"o"),
        entry("b/sub/f", data=b"f"),
    )
    upper = make_tar(
        entry("a/.wh.gone"),
        entry("b", tarfile.DIRTYPE),
        entry("b/.wh..wh..opq"),
        entry("b/new", data=b"n"),
    )
    unpack_bytes(lower, tmp_path / "l1")
    unpack_bytes(upper, tmp_path / "l2")
    merged = tmp_path / "merged"
    merged.mkdir()
    mount_overlay(f"{tmp_path / 'l2'}:{tmp_path / 'l1'}", merged)
    try:
        assert sorted(os.listdir(merged / "a")) == ["keep"]
        assert sorted(os.listdir(merged / "b")) == ["new"]
        assert (merged / "b/new").read_bytes() == b"n"
    finally:
        linux.umount(merged)


# ------------------------------------------------------------------------------------------
# write_layer


def build_tree(root: pathlib.Path) -> None:
    (root / "bin").mkdir(parents=True)
    (root / "bin/tool").write_bytes(b"#!/bin/sh\necho hi\n")
    os.chmod(root / "bin/tool", 0o4755)
    os.link(root / "bin/tool", root / "bin/tool2")
    os.symlink("tool", root / "bin/alias")
    os.symlink("/nonexistent/anywhere", root / "dangling")
    (root / "etc").mkdir()
    (root / "etc/conf").write_text("c")
    os.chown(root / "etc/conf", 1000, 2000)
    os.setxattr(root / "etc/conf", "user.note", b"\xffbin")
    os.setxattr(root / "etc/conf", "trusted.overlay.impure", b"y")  # never written
    os.mkfifo(root / "etc/fifo", 0o600)
    os.mknod(root / "etc/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    (root / "a-b").write_text("sorts between a and a/")
    (root / "a").mkdir()
    (root / "a/z").write_text("z")
    for p in [*root.rglob("*"), root]:
        os.utime(p, (1_500_000_000, 1_500_000_000), follow_symlinks=False)


def write(src: pathlib.Path, **kwargs: object) -> tuple[bytes, str, int]:
    buf = io.BytesIO()
    digest, size = write_layer(src, buf, **kwargs)  # type: ignore[arg-type]
    return buf.getvalue(), digest, size


def test_write_layer_is_deterministic_and_hashes_what_it_wrote(tmp_path: pathlib.Path) -> None:
    build_tree(tmp_path / "t")
    data1, digest1, size1 = write(tmp_path / "t")
    os.utime(tmp_path / "t/etc/conf", (1_500_000_000, 1_500_000_000))  # atime/ctime changed only
    data2, digest2, _ = write(tmp_path / "t")
    assert digest1 == digest2 and data1 == data2
    assert digest1 == "sha256:" + hashlib.sha256(data1).hexdigest()
    assert size1 == len(data1)


def test_write_layer_entries_are_ordered_and_normalised(tmp_path: pathlib.Path) -> None:
    build_tree(tmp_path / "t")
    data, _, _ = write(tmp_path / "t")
    ms = members(data)
    assert [m.name for m in ms] == [
        "a", "a/z", "a-b", "bin", "bin/alias", "bin/tool", "bin/tool2", "dangling",
        "etc", "etc/conf", "etc/fifo", "etc/null",
    ]
    raw_names = [data[i : i + 100].rstrip(b"\0") for i in range(0, len(data), 512)]
    assert b"a/" in raw_names and b"bin/" in raw_names and not any(
        n.startswith(b"./") and not n.startswith(b"././@PaxHeader") for n in raw_names
    )
    by = {m.name: m for m in ms}
    for m in ms:
        assert m.uname == "" and m.gname == ""
        assert not {"atime", "ctime"} & set(m.pax_headers)
    assert by["bin/tool2"].islnk() and by["bin/tool2"].linkname == "bin/tool"
    assert by["bin/tool"].mode == 0o4755
    assert by["dangling"].issym() and by["dangling"].linkname == "/nonexistent/anywhere"
    assert (by["etc/conf"].uid, by["etc/conf"].gid) == (1000, 2000)
    assert by["etc/conf"].pax_headers["SCHILY.xattr.user.note"].encode("utf-8", "surrogateescape") == b"\xffbin"
    assert not any("trusted.overlay" in k for m in ms for k in m.pax_headers)
    assert by["etc/fifo"].isfifo() and by["etc/null"].ischr()
    assert (by["etc/null"].devmajor, by["etc/null"].devminor) == (1, 3)


def test_write_layer_clamps_mtimes_to_source_date_epoch(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "t"
    src.mkdir()
    (src / "new").write_text("n")
    (src / "old").write_text("o")
    os.utime(src / "new", (2_000_000_000, 2_000_000_000))
    os.utime(src / "old", (100, 100))
    data, digest, _ = write(src, source_date_epoch=1_000_000_000)
    by = {m.name: m for m in members(data)}
    assert by["new"].mtime == 1_000_000_000 and by["old"].mtime == 100
    _, unclamped, _ = write(src)
    assert unclamped != digest


def test_write_layer_converts_overlay_upper_whiteouts(tmp_path: pathlib.Path) -> None:
    lower, upper, work, merged = (tmp_path / n for n in ("lower", "upper", "work", "merged"))
    for d in (lower / "d", upper, work, merged):
        d.mkdir(parents=True)
    (lower / "x").write_text("x")
    (lower / "y").write_text("y")
    (lower / "d/old").write_text("o")
    mount_overlay(str(lower), merged, str(upper), str(work))
    try:
        os.unlink(merged / "x")
        os.unlink(merged / "y")
        os.unlink(merged / "d/old")
        os.rmdir(merged / "d")
        os.mkdir(merged / "d")  # a dir made over a removed one is opaque
        (merged / "d/new").write_text("n")
    finally:
        linux.umount(merged)

    data, digest, _ = write(upper, overlay_upper=True)
    names = [m.name for m in members(data)]
    assert names == [".wh.x", ".wh.y", "d", "d/.wh..wh..opq", "d/new"]
    assert all(m.isreg() and m.size == 0 for m in members(data) if ".wh." in m.name)
    assert write(upper, overlay_upper=True)[1] == digest

    # and back: unpacking the layer yields the overlay form again
    unpack_bytes(data, tmp_path / "snap")
    assert os.lstat(tmp_path / "snap/x").st_rdev == 0 and stat.S_ISCHR(os.lstat(tmp_path / "snap/x").st_mode)
    assert os.getxattr(tmp_path / "snap/d", "trusted.overlay.opaque") == b"y"


def test_write_layer_without_overlay_upper_keeps_devices(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "t"
    src.mkdir()
    os.mknod(src / "w", stat.S_IFCHR, os.makedev(0, 0))
    data, _, _ = write(src)
    (m,) = members(data)
    assert m.name == "w" and m.ischr()


def test_write_then_unpack_round_trips(tmp_path: pathlib.Path) -> None:
    build_tree(tmp_path / "t")
    data, digest, _ = write(tmp_path / "t")
    unpack_bytes(data, tmp_path / "snap")
    snap = tmp_path / "snap"
    assert (snap / "bin/tool").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert stat.S_IMODE(os.lstat(snap / "bin/tool").st_mode) == 0o4755
    assert os.lstat(snap / "bin/tool").st_ino == os.lstat(snap / "bin/tool2").st_ino
    assert os.readlink(snap / "bin/alias") == "tool"
    assert os.getxattr(snap / "etc/conf", "user.note") == b"\xffbin"
    assert os.lstat(snap / "etc/conf").st_uid == 1000
    # the strongest check: the unpacked tree writes back to the very same bytes
    assert write(snap)[1] == digest


def test_unpack_hardlink_to_device_or_fifo_links_it(where: tuple[pathlib.Path, pathlib.Path]) -> None:
    """Any node but a directory may have several names, as GNU tar and Go extract them (issue 14)."""
    dest, _ = where
    data = make_tar(
        entry("fifo", tarfile.FIFOTYPE), entry("null", tarfile.CHRTYPE, dev=(1, 3)),
        entry("f2", tarfile.LNKTYPE, linkname="fifo"), entry("n2", tarfile.LNKTYPE, linkname="null"),
    )
    unpack_bytes(data, dest)
    assert os.stat(dest / "f2").st_ino == os.stat(dest / "fifo").st_ino
    assert os.stat(dest / "n2").st_ino == os.stat(dest / "null").st_ino


def test_unpack_hardlink_to_a_skipped_device_is_skipped_rootless(
    where: tuple[pathlib.Path, pathlib.Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_pods.engine import rootless

    monkeypatch.setattr(rootless, "inside", lambda: True)
    dest, _ = where
    data = make_tar(
        entry("null", tarfile.CHRTYPE, dev=(1, 3)), entry("n2", tarfile.LNKTYPE, linkname="null"),
        entry("f", data=b"x"), entry("null", tarfile.LNKTYPE, linkname="f"), entry("n3", tarfile.LNKTYPE, linkname="null"),
    )
    unpack_bytes(data, dest)
    assert sorted(os.listdir(dest)) == ["f", "n3", "null"]
    assert os.stat(dest / "n3").st_ino == os.stat(dest / "f").st_ino


def test_unpack_parents_below_a_setgid_dir_inherit_its_group(where: tuple[pathlib.Path, pathlib.Path]) -> None:
    """As the kernel gives them to moby's MkdirAll: group and setgid bit from the parent (issue 14)."""
    dest, _ = where
    data = make_tar(entry("./", tarfile.DIRTYPE, mode=0o2750, gid=7), entry("d/b/f", data=b"x"))
    unpack_bytes(data, dest)
    for sub in ("d", "d/b"):
        st = os.stat(dest / sub)
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o2755, 0, 7)
