"""The build context: ``.dockerignore`` matching, COPY/ADD source matching and content digests.

Docker's rules, written here from its documentation and behaviour (moby's patternmatcher, Go's
``filepath.Match`` and ``filepath.Clean``), because users carry their ``.dockerignore`` files and
Dockerfiles over from Docker and expect the same files to be sent, matched and cached.

Nothing here reads outside the context root: every lookup goes down from a directory file
descriptor one component at a time with ``O_NOFOLLOW``, and entries are ``lstat``-ed, so a symlink in
the context (even one pointing at ``/etc``) is a link with a target string, never a way out.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from pytest_pods.errors import ContextError

__all__ = ["ContextError", "IgnoreMatcher", "digest_paths", "match_sources", "walk"]

_CHUNK = 1 << 20  # 1 MiB reads keep a 50 MB file at a handful of syscalls and one buffer
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: if a file is swapped for a FIFO between lstat and open, open must not hang.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_GONE = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)  # "not there", as seen without following links


# ------------------------------------------------------------------------------------------
# Go's filepath.Clean and filepath.Match, for one path component


def _clean(path: str) -> str:
    """Go's ``filepath.Clean`` on Linux: Docker cleans patterns and sources with it.

    Unlike :func:`posixpath.normpath` it folds a leading ``//`` into ``/``.
    """
    if not path:
        return "."
    rooted = path.startswith("/")
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    joined = "/".join(out)
    if rooted:
        return "/" + joined
    return joined or "."


class _BadPattern(ValueError):
    """Go's ``filepath.ErrBadPattern``; turned into a :class:`ContextError` naming the pattern."""


_STAR = "*"
_ANY = "?"


class _Class(NamedTuple):
    """A ``[...]`` character class: inclusive code point ranges, ``^`` negates (Go has no ``!``)."""

    negated: bool
    ranges: tuple[tuple[str, str], ...]

    def matches(self, ch: str) -> bool:
        hit = any(lo <= ch <= hi for lo, hi in self.ranges)
        return hit != self.negated


# A token is _STAR, _ANY, a _Class, or "L" + the literal character (two characters, so it never
# collides with the one-character markers).
_Token = str | _Class


class _Glob:
    """One compiled component of a Go ``filepath.Match`` pattern (no ``/`` inside).

    Compiled once, so that a bad pattern is reported when the file is read (as Docker does, by
    matching every pattern against ``.``), and matching a directory listing costs no re-parsing.
    ``*`` and ``?`` never meet a ``/`` here: callers split paths into components first.
    """

    __slots__ = ("literal", "source", "tokens")

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens: list[_Token] = []
        self.literal: str | None = None
        if not any(c in source for c in "*?[\\"):
            self.literal = source
            return
        i, n = 0, len(source)
        while i < n:
            ch = source[i]
            if ch == "*":
                if not self.tokens or self.tokens[-1] != _STAR:
                    self.tokens.append(_STAR)
                i += 1
            elif ch == "?":
                self.tokens.append(_ANY)
                i += 1
            elif ch == "\\":
                if i + 1 >= n:
                    raise _BadPattern(source)
                self.tokens.append("L" + source[i + 1])
                i += 2
            elif ch == "[":
                cls, i = self._parse_class(source, i + 1)
                self.tokens.append(cls)
            else:  # a lone ']' is a literal in Go's Match
                self.tokens.append("L" + ch)
                i += 1

    @staticmethod
    def _parse_class(src: str, i: int) -> tuple[_Class, int]:
        """Parse after ``[`` up to and past ``]``; Go refuses an empty or unterminated class."""
        n = len(src)
        negated = i < n and src[i] == "^"
        if negated:
            i += 1
        ranges: list[tuple[str, str]] = []

        def one(j: int) -> tuple[str, int]:
            if j >= n or src[j] in "-]":
                raise _BadPattern(src)
            if src[j] == "\\":
                j += 1
                if j >= n:
                    raise _BadPattern(src)
            if j + 1 >= n:  # the class never closes
                raise _BadPattern(src)
            return src[j], j + 1

        while True:
            if i < n and src[i] == "]" and ranges:
                return _Class(negated, tuple(ranges)), i + 1
            lo, i = one(i)
            hi = lo
            if src[i] == "-":
                hi, i = one(i + 1)
            if hi < lo:  # Go's Match would never match it; moby's regexp refuses it
                raise _BadPattern(src)
            ranges.append((lo, hi))

    def match(self, name: str) -> bool:
        """Whether ``name`` (one component) matches: ``*`` any run, ``?`` one character."""
        if self.literal is not None:
            return name == self.literal
        toks = self.tokens
        ti = ni = 0
        star_ti, star_ni = -1, 0
        nt, nn = len(toks), len(name)
        while ni < nn:
            if ti < nt:
                tok = toks[ti]
                if tok == _STAR:
                    star_ti, star_ni = ti, ni
                    ti += 1
                    continue
                if tok == _ANY or (isinstance(tok, _Class) and tok.matches(name[ni])) or (
                    isinstance(tok, str) and tok[1] == name[ni]
                ):
                    ti += 1
                    ni += 1
                    continue
            if star_ti < 0:
                return False
            # Backtrack: let the last '*' swallow one more character.
            star_ni += 1
            ti, ni = star_ti + 1, star_ni
        while ti < nt and toks[ti] == _STAR:
            ti += 1
        return ti == nt


def _compile_glob(component: str, pattern: str, instruction: str) -> _Glob:
    try:
        return _Glob(component)
    except _BadPattern:
        raise ContextError(
            f"{instruction} failed: bad source pattern {pattern!r}: syntax error in pattern"
        ) from None


def _has_wildcards(path: str) -> bool:
    """Docker's test for a COPY source being a pattern: an unescaped ``*``, ``?`` or ``[``."""
    i = 0
    while i < len(path):
        if path[i] == "\\":
            i += 2
            continue
        if path[i] in "*?[":
            return True
        i += 1
    return False


# ------------------------------------------------------------------------------------------
# .dockerignore


_DSTAR = None  # a whole "**" component: any number of directories (tested as "is None")


class _Pattern(NamedTuple):
    """One ``.dockerignore`` line, cleaned, split into components."""

    text: str
    exception: bool
    parts: tuple[_Glob | None, ...]

    def matches(self, parts: list[str], end: int) -> bool:
        """Whether the pattern matches the path ``parts[:end]`` exactly."""
        return self._match(0, parts, 0, end)

    def _match(self, si: int, parts: list[str], pi: int, end: int) -> bool:
        segs = self.parts
        while si < len(segs):
            seg = segs[si]
            if seg is None:
                if si == len(segs) - 1:
                    # A trailing "**" is moby's ".*" after the slash: at least one more component.
                    return pi < end
                return any(self._match(si + 1, parts, k, end) for k in range(pi, end + 1))
            if pi >= end or not seg.match(parts[pi]):
                return False
            si += 1
            pi += 1
        return pi == end

    def could_match_below(self, parts: list[str]) -> bool:
        """Whether some path strictly inside the directory ``parts`` could match.

        Sound but not exact (it assumes later components can be satisfied), which is all the walk
        needs: walking a directory for nothing costs time, skipping one wrongly loses files.
        """
        return self._below(0, parts, 0)

    def _below(self, si: int, parts: list[str], pi: int) -> bool:
        segs = self.parts
        if pi == len(parts):
            return si < len(segs)
        if si == len(segs):
            # The pattern ends at an ancestor: it would match the directory itself, which is
            # excluded all the same, so a later pattern overrides it for everything below too.
            return False
        seg = segs[si]
        if seg is None:
            return True
        return seg.match(parts[pi]) and self._below(si + 1, parts, pi + 1)


class IgnoreMatcher:
    """The patterns of a ``.dockerignore``, applied as Docker applies them.

    A pattern matches a path when it matches the path or any of its parent directories; the last
    pattern that matches decides, and ``!`` makes it an exception (the path is included).
    """

    def __init__(self, patterns: list[_Pattern]) -> None:
        self._patterns = patterns
        self._exceptions = [p for p in patterns if p.exception]

    @classmethod
    def from_file(cls, path: Path) -> IgnoreMatcher:
        """Read a ``.dockerignore``; a missing file excludes nothing, as with Docker.

        :raises ContextError: the file cannot be read or holds a bad pattern.
        """
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            return cls([])
        except OSError as exc:
            raise ContextError(f"read {path}: {exc.strerror}") from exc
        return cls.from_text(data.decode("utf-8", "surrogateescape"))

    @classmethod
    def from_text(cls, text: str) -> IgnoreMatcher:
        """Parse ``.dockerignore`` text.

        A line is a comment only when ``#`` is in column 1 (Docker checks before trimming).

        :raises ContextError: a bare ``!``, or a pattern Go's ``filepath.Match`` refuses.
        """
        text = text.removeprefix("\ufeff")
        patterns: list[_Pattern] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.startswith("#"):
                continue
            pattern = line.strip()
            if not pattern:
                continue
            exception = pattern.startswith("!")
            if exception:
                pattern = pattern[1:].strip()
                if not pattern:
                    raise ContextError(
                        f'parse .dockerignore: line {lineno}: illegal exclusion pattern: "!". '
                        "Fix this and try again."
                    )
            pattern = _clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
            try:
                parts = tuple(
                    _DSTAR if comp == "**" else _Glob(comp) for comp in pattern.split("/")
                )
            except _BadPattern:
                raise ContextError(
                    f"parse .dockerignore: line {lineno}: bad pattern {line.strip()!r}: "
                    "syntax error in pattern. Fix this and try again."
                ) from None
            patterns.append(_Pattern(pattern, exception, parts))
        return cls(patterns)

    def excluded(self, rel: str) -> bool:
        """Whether ``rel`` (slash-separated, relative to the context root) is left out."""
        rel = _clean(rel).lstrip("/")
        if rel == "." or not self._patterns:
            return False
        parts = rel.split("/")
        matched = False
        for pattern in self._patterns:
            # Last match wins, so only a pattern that would flip the answer needs evaluating.
            if pattern.exception != matched:
                continue
            if any(pattern.matches(parts, end) for end in range(len(parts), 0, -1)):
                matched = not pattern.exception
        return matched

    def could_include_below(self, rel: str) -> bool:
        """Whether an exception could bring back something inside the directory ``rel``.

        Docker walks an excluded directory only then; otherwise all of it stays out.
        """
        if not self._exceptions:
            return False
        rel = _clean(rel).lstrip("/")
        parts = [] if rel == "." else rel.split("/")
        return any(p.could_match_below(parts) for p in self._exceptions)


# ------------------------------------------------------------------------------------------
# descending the context without following links


def _open_root(root: Path) -> int:
    """The context root itself may be a symlink (the user named it); nothing below it is followed."""
    try:
        return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise ContextError(f"open build context {root}: {exc.strerror}") from exc


def _open_dir(dfd: int, name: str) -> int:
    return os.open(name, _DIR_FLAGS, dir_fd=dfd)


def _lstat(dfd: int, name: str) -> os.stat_result:
    return os.stat(name, dir_fd=dfd, follow_symlinks=False)


def _open_parent(rootfd: int, parts: list[str]) -> int:
    """Open the directory holding ``parts[-1]``; each step refuses a symlink (ELOOP/ENOTDIR)."""
    fd = os.dup(rootfd)
    try:
        for name in parts[:-1]:
            nfd = _open_dir(fd, name)
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _relative(src: str, instruction: str) -> str:
    """A source as written -> a cleaned path relative to the root; ``.`` for the root itself."""
    rel = _clean(src)
    if rel.startswith("/"):
        return rel[1:] or "."
    if rel == ".." or rel.startswith("../"):
        raise ContextError(f"{instruction} failed: forbidden path outside the build context: {src}")
    return rel


def _iter_tree(
    dfd: int, prefix: str, matcher: IgnoreMatcher
) -> Iterator[tuple[str, str, int, os.stat_result]]:
    """Yield ``(rel, name, parent_fd, lstat)`` for every included entry below ``dfd``, depth first.

    An excluded directory is entered only when an exception could match inside it; its own entry
    is still not yielded (Docker sends what is inside, not the excluded directory).
    """
    try:
        names = sorted(os.listdir(dfd))
    except OSError as exc:
        raise ContextError(f"read build context directory {prefix or '.'}: {exc.strerror}") from exc
    for name in names:
        rel = prefix + name
        try:
            st = _lstat(dfd, name)
        except FileNotFoundError:
            continue  # removed while we walked: it is simply not there
        except OSError as exc:
            raise ContextError(f"stat {rel}: {exc.strerror}") from exc
        out = matcher.excluded(rel)
        if not out:
            yield rel, name, dfd, st
        if stat.S_ISDIR(st.st_mode) and (not out or matcher.could_include_below(rel)):
            try:
                sub = _open_dir(dfd, name)
            except OSError as exc:
                if exc.errno in _GONE:
                    continue
                raise ContextError(f"open {rel}: {exc.strerror}") from exc
            try:
                yield from _iter_tree(sub, rel + "/", matcher)
            finally:
                os.close(sub)


def walk(root: Path, matcher: IgnoreMatcher) -> list[str]:
    """Every included path under ``root``, relative and slash-separated, sorted; links not followed.

    :raises ContextError: the root or a directory in it cannot be read.
    """
    rootfd = _open_root(root)
    try:
        return sorted(rel for rel, _, _, _ in _iter_tree(rootfd, "", matcher))
    finally:
        os.close(rootfd)


# ------------------------------------------------------------------------------------------
# COPY / ADD sources


def _selectable(dfd: int, name: str, rel: str, st: os.stat_result, matcher: IgnoreMatcher) -> bool:
    """An excluded path never matches, except a directory an exception brings content back into
    (Docker's context then holds that content, so the directory exists there)."""
    if not matcher.excluded(rel):
        return True
    if not stat.S_ISDIR(st.st_mode) or not matcher.could_include_below(rel):
        return False
    try:
        sub = _open_dir(dfd, name)
    except OSError:
        return False
    try:
        return next(_iter_tree(sub, rel + "/", matcher), None) is not None
    finally:
        os.close(sub)


def _glob(dfd: int, prefix: str, comps: list[_Glob], matcher: IgnoreMatcher, out: list[str]) -> None:
    """Expand ``comps`` below ``dfd``, one component per level, like Go's ``filepath.Glob``.

    Intermediate components must be real directories: a symlinked directory is not entered.
    """
    glob, rest = comps[0], comps[1:]
    if glob.literal is not None:
        names = [glob.literal]
    else:
        try:
            names = sorted(n for n in os.listdir(dfd) if glob.match(n))
        except OSError as exc:
            raise ContextError(f"read build context directory {prefix or '.'}: {exc.strerror}") from exc
    for name in names:
        rel = prefix + name
        try:
            st = _lstat(dfd, name)
        except OSError as exc:
            if exc.errno in _GONE:
                continue
            raise ContextError(f"stat {rel}: {exc.strerror}") from exc
        if not rest:
            if _selectable(dfd, name, rel, st, matcher):
                out.append(rel)
            continue
        if not stat.S_ISDIR(st.st_mode):
            continue
        try:
            sub = _open_dir(dfd, name)
        except OSError as exc:
            if exc.errno in _GONE:
                continue
            raise ContextError(f"open {rel}: {exc.strerror}") from exc
        try:
            _glob(sub, rel + "/", rest, matcher, out)
        finally:
            os.close(sub)


def match_sources(root: Path, src: str, matcher: IgnoreMatcher, *, instruction: str = "COPY",
                  allow_empty: bool = False) -> list[str]:
    """The context paths a COPY/ADD source names, sorted; ``.`` is the root itself.

    A leading ``/`` means the context root; wildcards match per component with Go's
    ``filepath.Match``; excluded paths never match.

    :raises ContextError: the source leaves the context, is a bad pattern, or matches nothing
        (with Docker's text for each). With ``allow_empty`` (BuildKit's rule), a wildcard that
        matches nothing gives no paths instead: ``COPY *.md *.txt /d/`` copies what matched.
    """
    rel = _relative(src, instruction)
    if rel == ".":
        return ["."]
    parts = rel.split("/")
    rootfd = _open_root(root)
    try:
        if _has_wildcards(rel):
            comps = [_compile_glob(c, src, instruction) for c in parts]
            found: list[str] = []
            _glob(rootfd, "", comps, matcher, found)
            if not found and not allow_empty:
                raise ContextError(f"{instruction} failed: no source files were specified")
            return sorted(found)
        # A plain name is taken literally, backslashes and all, as Docker does.
        try:
            pfd = _open_parent(rootfd, parts)
        except OSError as exc:
            if exc.errno not in _GONE:
                raise ContextError(f"open {rel}: {exc.strerror}") from exc
        else:
            try:
                st = _lstat(pfd, parts[-1])
                if _selectable(pfd, parts[-1], rel, st, matcher):
                    return [rel]
            except OSError as exc:
                if exc.errno not in _GONE:
                    raise ContextError(f"stat {rel}: {exc.strerror}") from exc
            finally:
                os.close(pfd)
        raise ContextError(
            f"{instruction} failed: file not found in build context or excluded by .dockerignore: "
            f"stat {rel}: file does not exist"
        )
    finally:
        os.close(rootfd)


# ------------------------------------------------------------------------------------------
# content digests for the build cache


def _field(h: hashlib._Hash, value: bytes) -> None:
    """Length-prefixed, so that no two different entries can hash alike by shifting bytes."""
    h.update(len(value).to_bytes(8, "big"))
    h.update(value)


def _file_digest(dfd: int, name: str, rel: str, st: os.stat_result, buf: bytearray) -> bytes:
    """sha256 and length of a regular file's bytes, read through an fd that is checked to be the
    very file that was ``lstat``-ed (no link swapped in between)."""
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dfd)
    except OSError as exc:
        raise ContextError(f"open {rel}: {exc.strerror}") from exc
    try:
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode) or (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
            raise ContextError(f"read {rel}: the file changed while the build context was read")
        inner = hashlib.sha256()
        view = memoryview(buf)
        size = 0
        while True:
            n = os.readv(fd, [buf])
            if not n:
                break
            inner.update(view[:n])
            size += n
        return inner.digest() + size.to_bytes(8, "big")
    except OSError as exc:
        raise ContextError(f"read {rel}: {exc.strerror}") from exc
    finally:
        os.close(fd)


def _kind(mode: int) -> bytes:
    for test, kind in (
        (stat.S_ISREG, b"f"), (stat.S_ISDIR, b"d"), (stat.S_ISLNK, b"l"), (stat.S_ISCHR, b"c"),
        (stat.S_ISBLK, b"b"), (stat.S_ISFIFO, b"p"), (stat.S_ISSOCK, b"s"),
    ):
        if test(mode):
            return kind
    return b"?"


def _entry(h: hashlib._Hash, rel: str, dfd: int, name: str, st: os.stat_result, buf: bytearray) -> None:
    """Hash what COPY reproduces of an entry: name, type, mode, link target, content.

    Times and owners are left out on purpose: COPY gives root (or --chown) whoever owns the file,
    and a checkout, a ``touch`` or another machine's user (a shared cache) must not invalidate
    the cache.
    """
    kind = _kind(st.st_mode)
    _field(h, b"E")
    _field(h, os.fsencode(rel))
    _field(h, kind)
    _field(h, b"%o" % stat.S_IMODE(st.st_mode))
    if kind == b"f":
        _field(h, _file_digest(dfd, name, rel, st, buf))
    elif kind == b"l":
        try:
            _field(h, os.fsencode(os.readlink(name, dir_fd=dfd)))
        except OSError as exc:
            raise ContextError(f"readlink {rel}: {exc.strerror}") from exc
    elif kind in (b"c", b"b"):
        _field(h, b"%d %d" % (os.major(st.st_rdev), os.minor(st.st_rdev)))
    else:
        _field(h, b"")


def digest_paths(root: Path, rels: list[str], matcher: IgnoreMatcher) -> str:
    """``sha256:<hex>`` over each path (in the order given) and its included contents.

    The build cache keys COPY/ADD steps on it: same names, types, modes, owners, link targets and
    bytes give the same digest; times do not count. Links are hashed as links, never followed.

    :raises ContextError: a path is missing, outside the context, or unreadable.
    """
    h = hashlib.sha256(b"pytest-pods context digest v1\n")
    buf = bytearray(_CHUNK)
    rootfd = _open_root(root)
    try:
        for src in rels:
            rel = _relative(src, "digest")
            if rel == ".":
                _entry(h, ".", rootfd, ".", os.fstat(rootfd), buf)
                for sub_rel, name, dfd, st in _iter_tree(rootfd, "", matcher):
                    _entry(h, sub_rel, dfd, name, st, buf)
                continue
            parts = rel.split("/")
            try:
                pfd = _open_parent(rootfd, parts)
            except OSError as exc:
                raise ContextError(f"digest {rel}: {exc.strerror}") from exc
            try:
                try:
                    st = _lstat(pfd, parts[-1])
                except OSError as exc:
                    raise ContextError(f"digest {rel}: {exc.strerror}") from exc
                _entry(h, rel, pfd, parts[-1], st, buf)
                if stat.S_ISDIR(st.st_mode):
                    try:
                        dfd = _open_dir(pfd, parts[-1])
                    except OSError as exc:
                        raise ContextError(f"digest {rel}: {exc.strerror}") from exc
                    try:
                        for sub_rel, name, sfd, sst in _iter_tree(dfd, rel + "/", matcher):
                            _entry(h, sub_rel, sfd, name, sst, buf)
                    finally:
                        os.close(dfd)
            finally:
                os.close(pfd)
    finally:
        os.close(rootfd)
    return "sha256:" + h.hexdigest()
