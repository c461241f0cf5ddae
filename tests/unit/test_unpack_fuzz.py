"""Property-based fuzzing of the layer unpacker against GNU tar (issue 14).

Archives are written here byte by byte, so that every header form GNU tar and Go's archive/tar
write can be drawn: ustar (with its prefix field), GNU long names and links ('L'/'K'), PAX extended
headers (path, linkpath, size, fractional mtime, uid/gid, SCHILY.xattr.*), PAX global headers
('g', also as the last thing in the archive), GNU sparse files (old 'S' with extension blocks,
PAX 0.0, 0.1 and 1.0). Names are drawn from a small alphabet so that members collide, climb with
``..``, start with ``/`` and go through symlinks and hard links of earlier members.

Each archive is unpacked by us and, as the reference, by ``tar -x`` as root into a sibling
directory. The properties:

- nothing outside the target changes (a sentinel tree beside it, which symlinks in the archives
  point at, is compared before and after), and no temp directory is left;
- we raise nothing but LayerError, and on error leave no snapshot (unpack_layer's contract);
- every archive GNU tar extracts cleanly (exit 0, no warning other than dropping a leading ``/``)
  we unpack too, to the same tree: types, modes, owners, content, link targets, hard-link groups,
  device numbers, user xattrs and mtimes.

An archive GNU tar refuses or rewrites (``..`` it strips, writing through a symlink it defers)
may unpack with us as long as everything lands inside: our rule is RESOLVE_IN_ROOT, moby's.
The runs are derandomized, so every run draws the same archives; failures found are kept as
explicit examples at the end of this file.
"""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
import random
import re
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pytest_pods.engine.image.layers import unpack_layer
from pytest_pods.errors import LayerError

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="unpacking as GNU tar does needs root (mknod, chown)"),
    pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar is the reference and is not installed"),
]

# Where the sentinel tree lives: absolute symlink targets in the archives name it. The pid keeps
# parallel runs apart; the derandomized draws stay the same.
BASE = pathlib.Path(f"/tmp/pods-unpack-fuzz-{os.getpid()}")
OUTSIDE = BASE / "outside"

MTIMES = (0, 1_600_000_000, 1_234_567_890, 2**33 + 5)
LONG = "l" * 120  # longer than ustar's 100-byte name field, so it needs a prefix, 'L' or PAX

# ------------------------------------------------------------------------------------------
# writing archives by hand


def _octal(value: int, width: int) -> bytes:
    if 0 <= value < 8 ** (width - 1):
        return b"%0*o\0" % (width - 1, value)
    # GNU base-256 for what octal cannot hold (big uids, negative mtimes)
    raw = (value % (256 ** width)).to_bytes(width, "big")
    return bytes([raw[0] | 0x80]) + raw[1:]


def header(
    name: bytes, typeflag: bytes, *, size: int = 0, mode: int = 0o644, uid: int = 0, gid: int = 0,
    mtime: int = 1_600_000_000, linkname: bytes = b"", dev: tuple[int, int] = (0, 0),
    gnu: bool = False, prefix: bytes = b"", extra: bytes = b"",
) -> bytes:
    """One 512-byte header: POSIX ustar, or old GNU (its magic, and ``extra`` at offset 345)."""
    block = bytearray(512)
    block[0:100] = name[:100].ljust(100, b"\0")
    block[100:108] = _octal(mode, 8)
    block[108:116] = _octal(uid, 8)
    block[116:124] = _octal(gid, 8)
    block[124:136] = _octal(size, 12)
    block[136:148] = _octal(mtime, 12)
    block[156:157] = typeflag
    block[157:257] = linkname[:100].ljust(100, b"\0")
    block[257:265] = b"ustar  \0" if gnu else b"ustar\x0000"
    block[329:337] = _octal(dev[0], 8)
    block[337:345] = _octal(dev[1], 8)
    if extra:
        block[345 : 345 + len(extra)] = extra
    elif prefix:
        block[345:500] = prefix[:155].ljust(155, b"\0")
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 512)


def pax_records(records: list[tuple[str, bytes]]) -> bytes:
    out = b""
    for key, value in records:
        body = b" " + key.encode() + b"=" + value + b"\n"
        n = len(body) + 1
        while len(str(n)) + len(body) != n:
            n += 1
        out += str(n).encode() + body
    return out


def pax_header(records: list[tuple[str, bytes]], typeflag: bytes = b"x", name: bytes = b"././@PaxHeader") -> bytes:
    data = pax_records(records)
    return header(name, typeflag, size=len(data)) + padded(data)


@dataclass
class Member:
    name: str
    kind: str  # file, dir, symlink, hardlink, fifo, chr, blk, sparse
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = 1_600_000_000
    mtime_frac: str = ""  # PAX only: ".5", ".123456789"
    linkname: str = ""
    dev: tuple[int, int] = (0, 0)
    xattrs: dict[str, bytes] = field(default_factory=dict)
    holes: list[tuple[int, int]] = field(default_factory=list)  # sparse: (offset, length) segments
    sparse_size: int = 0
    form: str = "pax"  # ustar, gnu, pax; sparse: gnu-old, pax0.0, pax0.1, pax1.0


_TYPEFLAG = {
    "file": b"0", "dir": b"5", "symlink": b"2", "hardlink": b"1", "fifo": b"6", "chr": b"3", "blk": b"4",
}


def _ustar_split(name: bytes) -> tuple[bytes, bytes] | None:
    """(prefix, name) for ustar, or None when the name cannot be split into the two fields."""
    if len(name) <= 100:
        return b"", name
    for i in range(len(name) - 1, -1, -1):
        if name[i : i + 1] == b"/" and i <= 155 and len(name) - i - 1 <= 100 and i > 0:
            return name[:i], name[i + 1 :]
    return None


def write_member(m: Member) -> bytes:
    name, link = m.name.encode(), m.linkname.encode()
    if m.kind == "sparse":
        return _write_sparse(m)
    data = m.data if m.kind == "file" else b""
    common = {"mode": m.mode, "uid": m.uid, "gid": m.gid, "mtime": m.mtime, "dev": m.dev}
    flag = _TYPEFLAG[m.kind]
    if m.form == "gnu":
        out = b""
        if len(name) > 100:
            out += header(b"././@LongLink", b"L", size=len(name) + 1, gnu=True) + padded(name + b"\0")
        if len(link) > 100:
            out += header(b"././@LongLink", b"K", size=len(link) + 1, gnu=True) + padded(link + b"\0")
        return out + header(name, flag, size=len(data), linkname=link, gnu=True, **common) + padded(data)  # type: ignore[arg-type]
    if m.form == "ustar":
        split = _ustar_split(name)
        if split is not None and len(link) <= 100:
            return header(split[1], flag, size=len(data), linkname=link, prefix=split[0], **common) + padded(data)  # type: ignore[arg-type]
    records: list[tuple[str, bytes]] = [("path", name)]
    if link:
        records.append(("linkpath", link))
    if m.mtime_frac:
        records.append(("mtime", f"{m.mtime}{m.mtime_frac}".encode()))
    if m.uid > 0o7777777:
        records.append(("uid", str(m.uid).encode()))
    records += [(f"SCHILY.xattr.{k}", v) for k, v in m.xattrs.items()]
    # PAX may also carry the size, with a wrong one in the ustar field
    records.append(("size", str(len(data)).encode()))
    return (
        pax_header(records)
        + header(name[:100], flag, size=0 if data else 0, linkname=link[:100], **common)  # type: ignore[arg-type]
        + padded(data)
    )


def _sparse_data(m: Member) -> bytes:
    return b"".join(bytes([65 + i % 26]) * n for i, (_, n) in enumerate(m.holes))


def _write_sparse(m: Member) -> bytes:
    name = m.name.encode()
    stored = _sparse_data(m)
    common = {"mode": m.mode, "uid": m.uid, "gid": m.gid, "mtime": m.mtime}
    # GNU tar always closes the map with (size, 0); without it, it cuts a trailing hole off
    # (Go and we keep the declared size), so this writer does as GNU tar does
    segments = [*m.holes, (m.sparse_size, 0)]
    if m.form == "gnu-old":
        out = b""
        if len(name) > 100:
            out += header(b"././@LongLink", b"L", size=len(name) + 1, gnu=True) + padded(name + b"\0")

        def entries(segs: list[tuple[int, int]]) -> bytes:
            return b"".join(_octal(o, 12) + _octal(n, 12) for o, n in segs)

        first, rest = segments[:4], segments[4:]
        extra = bytearray(512 - 345)
        extra[386 - 345 : 386 - 345 + 24 * len(first)] = entries(first)
        extra[482 - 345] = 1 if rest else 0
        extra[483 - 345 : 495 - 345] = _octal(m.sparse_size, 12)
        out += header(name, b"S", size=len(stored), gnu=True, extra=bytes(extra[:167]), **common)  # type: ignore[arg-type]
        while rest:
            chunk, rest = rest[:21], rest[21:]
            block = bytearray(512)
            block[0 : 24 * len(chunk)] = entries(chunk)
            block[504] = 1 if rest else 0
            out += bytes(block)
        return out + padded(stored)
    if m.form == "pax1.0":
        fake = b"GNUSparseFile.0/" + name.rsplit(b"/", 1)[-1]
        records = [
            ("GNU.sparse.major", b"1"), ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", name), ("GNU.sparse.realsize", str(m.sparse_size).encode()),
        ]
        mapping = f"{len(segments)}\n" + "".join(f"{o}\n{n}\n" for o, n in segments)
        body = padded(mapping.encode()) + stored
        return pax_header(records) + header(fake[:100], b"0", size=len(body), **common) + padded(body)  # type: ignore[arg-type]
    records = [("GNU.sparse.size", str(m.sparse_size).encode()), ("GNU.sparse.numblocks", str(len(segments)).encode())]
    if m.form == "pax0.0":
        for o, n in segments:
            records += [("GNU.sparse.offset", str(o).encode()), ("GNU.sparse.numbytes", str(n).encode())]
        ustar_name = name[:100]
    else:
        records += [
            ("GNU.sparse.name", name),
            ("GNU.sparse.map", ",".join(f"{o},{n}" for o, n in segments).encode()),
        ]
        ustar_name = b"GNUSparseFile.0/" + name.rsplit(b"/", 1)[-1][:80]
    if len(name) > 100 and m.form == "pax0.0":
        records.append(("path", name))
    return pax_header(records) + header(ustar_name, b"0", size=len(stored), **common) + padded(stored)  # type: ignore[arg-type]


def write_archive(members: list[Member], globals_at: dict[int, list[tuple[str, bytes]]], end: bool = True) -> bytes:
    out = b""
    for i, m in enumerate(members):
        if i in globals_at:
            out += pax_header(globals_at[i], b"g", name=b"pax_global_header")
        out += write_member(m)
    if len(members) in globals_at:
        out += pax_header(globals_at[len(members)], b"g", name=b"pax_global_header")
    return out + (b"\0" * 1024 if end else b"")


# ------------------------------------------------------------------------------------------
# strategies

COMPONENTS = ["a", "b", "c", "d", ".", "..", "", LONG]
WHITEOUTS = [".wh.a", ".wh.b", ".wh..wh..opq", ".wh..."]


def name(rng: random.Random, components: list[str]) -> str:
    """A member name; one in eight may climb with ``..`` (an archive with one such name among
    eight members is refused, and most archives should be valid ones)."""
    if rng.random() >= 0.125:
        components = [c for c in components if c != ".."]
    prefixes = ["", "", "", "", "", "./", "/", "../"] if ".." in components else ["", "", "", "./", "/"]
    path = "/".join(rng.choice(components) for _ in range(rng.randint(1, 4)))
    return (rng.choice(prefixes) + path) or "a"


SYMLINK_TARGETS = [
    "/", "..", "../..", "../../..", "/a", "/..", str(OUTSIDE), str(OUTSIDE / "dir"),
    str(OUTSIDE / "file"), "../../outside", "../../outside/dir", "/proc/self/root", LONG,
]


def member(seed: int, whiteouts: bool) -> Member:
    """One member from a seed: hypothesis draws the seeds (and shrinks the list of members),
    ``random`` spends them, which is ten times faster than drawing every field."""
    rng = random.Random(seed)
    comps = COMPONENTS + WHITEOUTS if whiteouts else COMPONENTS
    kind = rng.choice(["file", "file", "dir", "dir", "symlink", "symlink", "hardlink", "fifo", "chr", "blk", "sparse"])
    m = Member(name=name(rng, comps), kind=kind)
    m.mode = rng.choice([0o644, 0o755, 0o600, 0o4755, 0o2750, 0o1777, 0o000, 0o777])
    if kind == "dir" and m.mode == 0o2750:
        # GNU tar sets a directory's mode late (at the end, or once a member outside it comes):
        # whether the parents it makes below inherit a setgid group depends on that timing
        m.mode = 0o750
    m.uid, m.gid = rng.choice([(0, 0), (1000, 1000), (65534, 7), (3_000_000, 3_000_000)])
    m.mtime = rng.choice(MTIMES)
    m.form = rng.choice(["ustar", "gnu", "pax"])
    if m.form == "pax":
        m.mtime_frac = rng.choice(["", ".5", ".123456789", ".000000001"])
        if rng.random() < 0.5:
            m.xattrs = {"user.k": rng.choice([b"v", b"\xff\x00bin", b""])}
    if kind == "file":
        m.data = rng.randbytes(rng.choice([0, 1, 5, 511, 512, 513, 600]))
    elif kind == "symlink":
        m.linkname = name(rng, ["a", "b", "c", "..", "."]) if rng.random() < 0.5 else rng.choice(SYMLINK_TARGETS)
    elif kind == "hardlink":
        m.linkname = name(rng, comps)
    elif kind in ("chr", "blk"):
        m.dev = rng.choice([(1, 3), (8, 0), (0, 0), (4095, 1048575)])
    elif kind == "sparse":
        m.form = rng.choice(["gnu-old", "pax0.0", "pax0.1", "pax1.0"])
        m.mtime_frac = ""
        # up to 4 segments fit the old GNU header; 25 need two extension blocks
        count = rng.choice([0, 1, 2, 3, 4, 5, 25])
        first_at_zero = rng.random() < 0.5
        segs = []
        end = 0
        for i in range(count):
            offset = 0 if i == 0 and first_at_zero else end + rng.randint(1, 1 << 20)
            # GNU tar starts every segment's data on a block of its own (Go and tarfile read them
            # back to back): the same bytes only when all but the last fill whole blocks, which is
            # how GNU tar writes them
            n = rng.randint(1, 700) if i == count - 1 else 512 * rng.randint(1, 2)
            segs.append((offset, n))
            end = offset + n
        m.holes = segs
        m.sparse_size = end + rng.choice([0, 1, 5000, 1 << 20])
    return m


GLOBAL_RECORDS = st.lists(
    st.sampled_from([("comment", b"from git archive"), ("GOLANG.pkg", b"tar"), ("hello.world", b"1")]),
    min_size=1, max_size=3,
)


@dataclass
class Archive:
    """What hypothesis prints for a failure: the members, not the bytes."""

    members: list[Member]
    globals_at: dict[int, list[tuple[str, bytes]]] = field(default_factory=dict)
    end: bool = True  # the two zero blocks; GNU tar and Go accept an archive without them

    def data(self) -> bytes:
        return write_archive(self.members, self.globals_at, self.end)


@st.composite
def archives(draw: st.DrawFn, whiteouts: bool = False) -> Archive:
    seeds = draw(st.lists(st.integers(0, 2**32), min_size=1, max_size=8))
    ms = [member(seed, whiteouts) for seed in seeds]
    globals_at = draw(st.dictionaries(st.integers(0, len(ms)), GLOBAL_RECORDS, max_size=2))
    return Archive(ms, globals_at, draw(st.booleans()))


# ------------------------------------------------------------------------------------------
# the sandbox, the reference and the comparison


def snapshot_tree(top: pathlib.Path) -> dict[str, tuple[object, ...]]:
    """Every entry under ``top`` (not following symlinks), for an exact before/after compare."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames, dirfd in os.fwalk(top):
        for n in dirnames + filenames:
            s = os.stat(n, dir_fd=dirfd, follow_symlinks=False)
            rel = os.path.relpath(os.path.join(dirpath, n), top)
            content: object = None
            if stat.S_ISREG(s.st_mode):
                content = pathlib.Path(dirpath, n).read_bytes()
            elif stat.S_ISLNK(s.st_mode):
                content = os.readlink(n, dir_fd=dirfd)
            out[rel] = (s.st_mode, s.st_uid, s.st_gid, s.st_mtime_ns, s.st_nlink, content)
    return out


def describe(top: pathlib.Path, dir_meta: bool = True) -> dict[str, tuple[object, ...]]:
    """The unpacked tree as tar would have it: per name, what both extractors must agree on."""
    out: dict[str, tuple[object, ...]] = {}
    inodes: dict[int, list[str]] = {}
    for dirpath, dirnames, filenames, dirfd in os.fwalk(top):
        for n in sorted(dirnames + filenames):
            s = os.stat(n, dir_fd=dirfd, follow_symlinks=False)
            rel = os.path.relpath(os.path.join(dirpath, n), top)
            kind = stat.S_IFMT(s.st_mode)
            extra: object = None
            if stat.S_ISREG(s.st_mode):
                extra = (s.st_size, hashlib.sha256(pathlib.Path(dirpath, n).read_bytes()).hexdigest())
            elif stat.S_ISLNK(s.st_mode):
                extra = os.readlink(n, dir_fd=dirfd)
            elif stat.S_ISCHR(s.st_mode) or stat.S_ISBLK(s.st_mode):
                extra = s.st_rdev
            mode = None if stat.S_ISLNK(s.st_mode) else stat.S_IMODE(s.st_mode)
            if stat.S_ISDIR(s.st_mode) and not dir_meta:
                mode = "not compared"
            xattrs = None
            if not stat.S_ISLNK(s.st_mode) and (dir_meta or not stat.S_ISDIR(s.st_mode)):
                path = f"/proc/self/fd/{dirfd}/{n}"
                # GNU tar drops an xattr with an empty value; we set it, as the archive says
                xattrs = sorted((k, v) for k in os.listxattr(path, follow_symlinks=False)
                                if k.startswith("user.") and (v := os.getxattr(path, k, follow_symlinks=False)))
            # a directory made for a member below it gets "now" from both: not comparable
            mtime: object = s.st_mtime_ns
            if stat.S_ISDIR(s.st_mode) and (s.st_mtime_ns // 10**9 not in MTIMES or not dir_meta):
                mtime = "implicit"
            owner: object = (s.st_uid, s.st_gid) if dir_meta or not stat.S_ISDIR(s.st_mode) else "not compared"
            out[rel] = (kind, mode, owner, mtime, extra, xattrs)
            if not stat.S_ISDIR(s.st_mode):
                inodes.setdefault(s.st_ino, []).append(rel)
    out["<hard links>"] = tuple(sorted(tuple(sorted(g)) for g in inodes.values() if len(g) > 1))
    return out


@pytest.fixture(scope="module")
def sandbox() -> Iterator[pathlib.Path]:
    """BASE/outside (the sentinel, reachable by ../../outside from the target), work/, ref/."""
    shutil.rmtree(BASE, ignore_errors=True)
    BASE.mkdir(mode=0o755)
    (OUTSIDE / "dir").mkdir(parents=True)
    (OUTSIDE / "file").write_bytes(b"sentinel\n")
    os.symlink("file", OUTSIDE / "link")
    (BASE / "work").mkdir()
    yield BASE
    shutil.rmtree(BASE, ignore_errors=True)


@dataclass
class Outcome:
    ours: dict[str, tuple[object, ...]] | None
    error: LayerError | None
    gnu_clean: bool
    gnu: dict[str, tuple[object, ...]] | None
    gnu_stderr: str


_ALLOWED_WARNING = re.compile(r"tar: Removing leading `/+' from (member names|hard link targets)")


def run_both(base: pathlib.Path, data: bytes, with_gnu: bool = True, dir_meta: bool = True) -> Outcome:
    """Unpack with us and with GNU tar; check the sandbox is untouched; clean up."""
    before = snapshot_tree(base / "outside")
    dest = base / "work" / "snap"
    ref = base / "ref"
    ours: dict[str, tuple[object, ...]] | None = None
    error: LayerError | None = None
    try:
        unpack_layer(io.BytesIO(data), dest)
    except LayerError as exc:
        error = exc
    try:
        assert snapshot_tree(base / "outside") == before, "the unpacker wrote outside its target"
        assert sorted(p.name for p in (base / "work").iterdir()) == ([] if error else ["snap"]), (
            "a failed unpack left something behind, or a good one left a temp dir"
        )
        if error is None:
            ours = describe(dest, dir_meta)
        gnu_clean, gnu, stderr = False, None, ""
        if with_gnu:
            ref.mkdir(mode=0o755)
            os.chmod(ref, 0o755)
            proc = subprocess.run(
                ["tar", "-x", "-p", "--warning=no-timestamp", "--numeric-owner", "--xattrs", "--xattrs-include=user.*", "-C", str(ref)],
                input=data, capture_output=True, check=False,
            )
            stderr = proc.stderr.decode(errors="replace")
            lines = [x for x in stderr.splitlines() if not _ALLOWED_WARNING.fullmatch(x)]
            gnu_clean = proc.returncode == 0 and not lines
            assert snapshot_tree(base / "outside") == before, "GNU tar wrote outside (the oracle broke)"
            if gnu_clean:
                gnu = describe(ref, dir_meta)
        return Outcome(ours, error, gnu_clean, gnu, stderr)
    finally:
        shutil.rmtree(dest, ignore_errors=True)
        shutil.rmtree(ref, ignore_errors=True)


def _gnu_name(name: str) -> tuple[str, ...]:
    return tuple(p for p in name.split("/") if p not in ("", "."))


def gnu_defers(archive: Archive) -> bool:
    """Whether GNU tar is an unreliable reference for this archive (its deferred symlinks,
    BSD's trailing slash, its recovery from a failed self-link).

    GNU tar extracts a symlink whose target is absolute or holds ``..`` as an empty placeholder
    file and makes the link only at the end, if the placeholder's device and inode are still
    the same. A later member that replaces the placeholder often gets the freed inode number,
    and GNU tar then puts the symlink back over it; writing below it fails. Everyone else (Go,
    moby, us) lets the later member win, so such archives are checked for safety only.
    """
    deferred: list[tuple[str, ...]] = []
    seen: set[tuple[str, ...]] = set()
    for m in archive.members:
        if m.kind == "hardlink" and _gnu_name(m.name) == _gnu_name(m.linkname) not in seen:
            # "d/." linked to a "d" that is not there: GNU tar makes "d" a directory on its
            # way to recover (a parent it thinks missing) and then finds the link done
            return True
        seen.add(_gnu_name(m.name))
        if m.kind in ("file", "sparse") and m.name.endswith("/"):
            # GNU tar makes a directory of a regular member named "x/" (BSD tar's convention);
            # Go's archive/tar and tarfile only do so for the old '\0' type flag, and we follow Go
            return True
        own = [_gnu_name(m.name)]
        if m.kind == "hardlink":
            own.append(_gnu_name(m.linkname))
        if any(n[: len(d)] == d for d in deferred for n in own):
            return True
        if m.kind == "symlink" and (m.linkname.startswith("/") or ".." in m.linkname.split("/")):
            deferred.append(own[0])
    return False


def same_spelling(archive: Archive) -> bool:
    """GNU tar finds the directory whose owner, mode, mtime and xattrs it sets at the end by its name
    as spelled: after ``lll`` a member ``./lll/b`` leaves ``lll`` with the time of extraction, and
    a member ``lll/.`` gets no xattrs. Directory metadata is compared only where
    every name starts the same way and has no ``.`` or empty part further on."""
    names = [_gnu_name(m.name) for m in archive.members]
    for i, m in enumerate(archive.members):
        # GNU tar sets a directory's mtime as soon as a member outside it comes; one below it
        # after that changes it again (we, like moby, set them all at the end)
        if m.kind == "dir":
            d = names[i]
            left = False
            for n in names[i + 1 :]:
                inside = n[: len(d)] == d
                if left and inside:
                    return False
                left = left or not inside
    starts = set()
    for m in archive.members:
        rest = m.name.lstrip("/")
        starts.add(rest.startswith("./"))
        while rest.startswith("./"):
            rest = rest[2:].lstrip("/")
        if any(p in (".", "") for p in rest.rstrip("/").split("/")):
            return False
    return len(starts) == 1


def check_against_gnu(base: pathlib.Path, data: bytes, *, comparable: bool = True, dir_meta: bool = True) -> None:
    out = run_both(base, data, dir_meta=dir_meta)
    event(f"GNU tar {'extracts' if out.gnu_clean else 'refuses'}, we {'refuse' if out.error else 'unpack'}")
    if not out.gnu_clean and os.environ.get("PODS_FUZZ_WHY"):
        event("GNU: " + " ".join(x for x in out.gnu_stderr.splitlines() if not _ALLOWED_WARNING.fullmatch(x))[:90])
    if out.gnu_clean and comparable:
        assert out.error is None, f"GNU tar extracts this archive, we refused it: {out.error}"
        assert out.ours == out.gnu


# ------------------------------------------------------------------------------------------
# the properties

FUZZ = settings(
    derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


@settings(FUZZ, max_examples=int(os.environ.get("PODS_FUZZ_EXAMPLES", "8000")))
@given(archive=archives())
def test_unpack_matches_gnu_tar_and_never_escapes(sandbox: pathlib.Path, archive: Archive) -> None:
    comparable = not gnu_defers(archive)
    event("GNU tar unreliable here: safety only" if not comparable else "compared with GNU tar")
    check_against_gnu(sandbox, archive.data(), comparable=comparable, dir_meta=same_spelling(archive))


@settings(FUZZ, max_examples=int(os.environ.get("PODS_FUZZ_HOSTILE_EXAMPLES", "3000")))
@given(archive=archives(whiteouts=True), cut=st.integers(0, 4))
def test_unpack_hostile_archives_stay_inside_and_fail_cleanly(
    sandbox: pathlib.Path, archive: Archive, cut: int
) -> None:
    """Whiteouts (which GNU tar would write as plain files) and archives cut short or corrupted."""
    data = archive.data()
    if cut == 1:
        data = data[: len(data) // 2]
    elif cut == 2 and len(data) > 700:
        data = data[:600] + bytes([data[600] ^ 0xFF]) + data[601:]
    run_both(sandbox, data, with_gnu=False)


# ------------------------------------------------------------------------------------------
# the seed corpus: what the fuzzer and the header forms found, kept as plain tests


CORPUS = {
    # a PAX global header as the last thing in the archive was "corrupt" (tarfile read on for
    # the member it applies to and hit the end)
    "global header at the end": Archive([Member("a", "file", b"x")], {1: [("comment", b"git")]}),
    "global header only": Archive([], {0: [("comment", b"empty layer")]}),
    "global headers between members": Archive(
        [Member("a", "file", b"x"), Member("b", "dir")], {0: [("comment", b"1")], 1: [("GOLANG.pkg", b"tar")]}
    ),
    # a hard link of a name to itself is nothing to do, whatever the name is (GNU tar)
    "hard link of a directory to itself": Archive([Member("a", "dir"), Member("a", "hardlink", linkname="a")]),
    # GNU tar closes a sparse map with (size, 0); the unused slots of the old header are zeros
    "old GNU sparse": Archive([Member("s", "sparse", holes=[(0, 512), (5000, 3)], sparse_size=9000, form="gnu-old")]),
    "old GNU sparse with extension blocks": Archive([Member(
        "s", "sparse", holes=[(i * 4096, 512) for i in range(24)] + [(200_000, 7)], sparse_size=300_000, form="gnu-old",
    )]),
    "PAX sparse 0.0": Archive([Member("s", "sparse", holes=[(4096, 512), (1 << 20, 9)], sparse_size=(1 << 21), form="pax0.0")]),
    "PAX sparse 0.1": Archive([Member("s", "sparse", holes=[(4096, 512), (1 << 20, 9)], sparse_size=(1 << 21), form="pax0.1")]),
    "PAX sparse 1.0": Archive([Member(LONG + "/s", "sparse", holes=[(0, 1024), (9000, 1)], sparse_size=9001, form="pax1.0")]),
    "PAX sparse with no data": Archive([Member("s", "sparse", holes=[], sparse_size=12345, form="pax1.0")]),
    # PAX mtimes to the nanosecond (a float loses the last digits)
    "PAX fractional mtime": Archive([Member("f", "file", b"x", mtime=1_796_475_833, mtime_frac=".310294368")]),
    "long names and links, GNU": Archive([
        Member(f"{LONG}/{LONG}", "file", b"y", form="gnu"), Member(f"{LONG}/l", "symlink", linkname=f"{LONG}/{LONG}", form="gnu"),
        Member("h", "hardlink", linkname=f"{LONG}/{LONG}", form="gnu"),
    ]),
    "long names via the ustar prefix": Archive([Member(f"{LONG}/f", "file", b"z", form="ustar")]),
    "big ids and times in base-256": Archive([Member("f", "file", b"z", uid=3_000_000, gid=3_000_000, mtime=2**33 + 5, form="gnu")]),
    "PAX size over a wrong ustar size, xattrs": Archive([Member("f", "file", b"abc" * 300, xattrs={"user.k": b"\xff\x00bin"})]),
}


@pytest.mark.parametrize("archive", list(CORPUS.values()), ids=list(CORPUS))
def test_corpus_unpacks_as_gnu_tar_extracts(sandbox: pathlib.Path, archive: Archive) -> None:
    out = run_both(sandbox, archive.data(), dir_meta=same_spelling(archive))
    assert out.gnu_clean, out.gnu_stderr
    assert out.error is None
    assert out.ours == out.gnu


def test_sparse_holes_stay_holes(sandbox: pathlib.Path) -> None:
    """A 1 GiB sparse member is not a 1 GiB write."""
    dest = sandbox / "work" / "snap"
    archive = Archive([Member("s", "sparse", holes=[(1 << 29, 512)], sparse_size=1 << 30, form="pax1.0")])
    try:
        unpack_layer(io.BytesIO(archive.data()), dest)
        st_ = os.stat(dest / "s")
        assert st_.st_size == 1 << 30
        assert st_.st_blocks * 512 < 1 << 20
        with open(dest / "s", "rb") as f:
            f.seek(1 << 29)
            assert f.read(512) == b"A" * 512
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def test_ten_thousand_global_headers_in_a_row(sandbox: pathlib.Path) -> None:
    data = pax_header([("comment", b"x")], b"g", name=b"pax_global_header") * 10_000 + write_member(Member("a", "file", b"x"))
    out = run_both(sandbox, data + b"\0" * 1024)
    assert out.gnu_clean and out.error is None
    assert out.ours == out.gnu


def test_gnu_volume_label_is_skipped(sandbox: pathlib.Path) -> None:
    data = header(b"my label", b"V", gnu=True) + write_member(Member("a", "file", b"x")) + b"\0" * 1024
    out = run_both(sandbox, data)
    assert out.gnu_clean and out.error is None
    assert out.ours == out.gnu


CORRUPT = {
    # tarfile takes a header with a bad checksum for the end of the archive: half a layer
    "bad checksum after a member": write_member(Member("a", "file", b"x"))
    + b"garbage".ljust(512, b"\0") + write_member(Member("b", "file", b"y")) + b"\0" * 1024,
    "header cut short": write_member(Member("a", "file", b"x")) + header(b"b", b"0")[:300],
    "PAX header with no member after it": pax_header([("path", b"x")]) + b"\0" * 1024,
    # tarfile reads chained extended headers recursively; GNU tar would take them
    "ten thousand PAX headers in a row": pax_header([("comment", b"x")]) * 10_000
    + write_member(Member("a", "file", b"x")) + b"\0" * 1024,
    "overlapping sparse map": write_member(
        Member("s", "sparse", holes=[(0, 512), (100, 5)], sparse_size=600, form="pax0.1")) + b"\0" * 1024,
    "sparse map beyond the file": write_member(
        Member("s", "sparse", holes=[(0, 512), (9000, 5)], sparse_size=600, form="pax0.1")) + b"\0" * 1024,
}


@pytest.mark.parametrize("data", list(CORRUPT.values()), ids=list(CORRUPT))
def test_corrupt_archives_are_refused_and_leave_nothing(sandbox: pathlib.Path, data: bytes) -> None:
    out = run_both(sandbox, data, with_gnu=False)
    assert isinstance(out.error, LayerError)
