"""The build context: .dockerignore as Docker documents it, COPY source matching, content digests.

The .dockerignore cases follow the table and examples of Docker's ``.dockerignore`` reference; the
COPY error texts are Docker's. Trees are built in ``tmp_path``; nothing here needs root.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_pods.builders.context import IgnoreMatcher, digest_paths, match_sources, walk
from pytest_pods.errors import ContextError
from pytest_pods.errors import PodsError


def tree(root: Path, *files: str, dirs: tuple[str, ...] = ()) -> Path:
    """Make files (content = their name) and empty dirs under ``root``."""
    for d in dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
    for f in files:
        p = root / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f)
    return root


def excluded(text: str, *paths: str) -> list[bool]:
    m = IgnoreMatcher.from_text(text)
    return [m.excluded(p) for p in paths]


# ------------------------------------------------------------------------------------------
# .dockerignore patterns


@pytest.mark.parametrize(
    ("patterns", "path", "out"),
    [
        # Docker's table: */temp*, */*/temp*, temp?
        ("*/temp*", "somedir/temporary.txt", True),
        ("*/temp*", "somedir/temp", True),
        ("*/temp*", "somedir/temp/inside.txt", True),
        ("*/temp*", "temporary.txt", False),
        ("*/temp*", "a/b/temp", False),
        ("*/*/temp*", "somedir/subdir/temporary.txt", True),
        ("*/*/temp*", "somedir/temporary.txt", False),
        ("temp?", "tempa", True),
        ("temp?", "tempb", True),
        ("temp?", "temp", False),
        ("temp?", "tempab", False),
        ("temp?", "dir/tempa", False),
        # ** matches any number of directories, zero included
        ("**/*.go", "main.go", True),
        ("**/*.go", "a/b/c/x.go", True),
        ("**/*.go", "a/go.txt", False),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**/b", "a/x/y/c", False),
        ("foo/**", "foo/x", True),
        ("foo/**", "foo", False),
        ("**", "anything/at/all", True),
        # * does not cross a slash
        ("*.go", "a/x.go", False),
        ("*", "a/x.go", True),  # but it matches the parent "a"
        # classes, negation with ^, escapes
        ("[a-c].txt", "b.txt", True),
        ("[a-c].txt", "d.txt", False),
        ("[^a].txt", "a.txt", False),
        ("[^a].txt", "b.txt", True),
        ("[!a].txt", "!.txt", True),  # Go has no '!' negation: it is a member
        ("[!a].txt", "b.txt", False),
        ("\\*.txt", "*.txt", True),
        ("\\*.txt", "x.txt", False),
        ("x]", "x]", True),
        # a pattern excludes everything below a directory it matches
        ("build", "build/x/y", True),
        ("build", "builder", False),
        ("build", "src/build", False),
        # a leading / and Go's Clean
        ("/foo/bar", "foo/bar", True),
        ("/foo/bar", "x/foo/bar", False),
        ("foo/bar", "foo/bar/baz", True),
        ("./foo", "foo", True),
        ("foo/", "foo/x", True),
        ("foo//bar/./", "foo/bar", True),
        ("a/../b", "b", True),
        ("a/../b", "a/b", False),
        ("//abs", "abs", True),
        ("  padded  ", "padded", True),
    ],
)
def test_pattern_matches_like_docker(patterns: str, path: str, out: bool) -> None:
    assert IgnoreMatcher.from_text(patterns).excluded(path) is out


def test_exception_keeps_readme_among_excluded_markdown() -> None:
    assert excluded("*.md\n!README.md\n", "a.md", "README.md", "README-secret.md") == [True, False, True]


def test_last_matching_line_wins() -> None:
    # Docker's two examples: the place of the exception changes the outcome.
    first = "*.md\n!README*.md\nREADME-secret.md\n"
    assert excluded(first, "README.md", "README-secret.md", "x.md") == [False, True, True]
    second = "*.md\nREADME-secret.md\n!README*.md\n"
    assert excluded(second, "README.md", "README-secret.md", "x.md") == [False, False, True]


def test_star_then_exceptions_is_an_allow_list() -> None:
    assert excluded("*\n!src\n!Dockerfile", "src/a.py", "Dockerfile", "secret", ".git/config") == [
        False, False, True, True,
    ]


def test_exception_on_parent_then_exclusion_inside() -> None:
    assert excluded("!a\na/b", "a/b/c", "a/x") == [True, False]


def test_comments_and_blank_lines_are_ignored() -> None:
    m = IgnoreMatcher.from_text("\ufeff# comment\n\n   \n\t\nfoo\n#bar\n")
    assert [m.excluded(p) for p in ("foo", "#bar", "# comment", "comment")] == [True, False, False, False]


def test_hash_after_column_one_is_a_pattern() -> None:
    # Docker checks for '#' before trimming the line.
    assert IgnoreMatcher.from_text("  #keep").excluded("#keep")


def test_empty_text_and_missing_file_exclude_nothing(tmp_path: Path) -> None:
    assert not IgnoreMatcher.from_text("").excluded("x")
    assert not IgnoreMatcher.from_file(tmp_path / "nope").excluded("x")


def test_from_file_reads_patterns(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("node_modules\n*.log\n")
    m = IgnoreMatcher.from_file(tmp_path / ".dockerignore")
    assert [m.excluded(p) for p in ("node_modules/x/y.js", "a.log", "a.txt")] == [True, True, False]


def test_dockerignore_and_dockerfile_can_be_excluded() -> None:
    # The executor still sends them; matching just says they are excluded.
    assert excluded(".dockerignore\nDockerfile", ".dockerignore", "Dockerfile") == [True, True]


@pytest.mark.parametrize("bad", ["[a", "foo/[", "x\\", "[]", "[z-a]", "[a-]"])
def test_bad_pattern_raises_naming_it(bad: str) -> None:
    with pytest.raises(ContextError, match="syntax error in pattern") as info:
        IgnoreMatcher.from_text(f"ok\n{bad}\n")
    assert repr(bad) in str(info.value)
    assert "line 2" in str(info.value)
    assert isinstance(info.value, PodsError)


def test_bare_exclamation_is_refused() -> None:
    with pytest.raises(ContextError, match='illegal exclusion pattern: "!"'):
        IgnoreMatcher.from_text("!\n")


# ------------------------------------------------------------------------------------------
# walk


def test_walk_lists_everything_sorted_when_nothing_is_ignored(tmp_path: Path) -> None:
    tree(tmp_path, "b.txt", "a/x.txt", "a-b", dirs=("empty",))
    assert walk(tmp_path, IgnoreMatcher.from_text("")) == ["a", "a-b", "a/x.txt", "b.txt", "empty"]


def test_walk_skips_excluded_dirs_and_patterns(tmp_path: Path) -> None:
    tree(tmp_path, "src/main.go", "src/README.md", "build/out/bin", "README.md", "notes.md")
    m = IgnoreMatcher.from_text("build\n*.md\n!README.md\n")
    assert walk(tmp_path, m) == ["README.md", "src", "src/README.md", "src/main.go"]


def test_walk_enters_excluded_dir_when_an_exception_lies_inside(tmp_path: Path) -> None:
    tree(tmp_path, "vendor/keep.txt", "vendor/drop.txt", "vendor/sub/keep.txt", "top.txt")
    m = IgnoreMatcher.from_text("vendor\n!vendor/keep.txt\n!**/sub/keep.txt\n")
    assert walk(tmp_path, m) == ["top.txt", "vendor/keep.txt", "vendor/sub/keep.txt"]


def test_walk_does_not_enter_excluded_dir_without_exception(tmp_path: Path) -> None:
    tree(tmp_path, "big/a", "big/b", "small")
    m = IgnoreMatcher.from_text("big\n!small\n")
    assert not m.could_include_below("big")
    assert walk(tmp_path, m) == ["small"]


def test_walk_does_not_follow_symlinks(tmp_path: Path) -> None:
    tree(tmp_path, "real/f")
    (tmp_path / "etc").symlink_to("/etc")
    (tmp_path / "loop").symlink_to("real")
    assert walk(tmp_path, IgnoreMatcher.from_text("")) == ["etc", "loop", "real", "real/f"]


def test_walk_missing_root_raises(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="open build context"):
        walk(tmp_path / "gone", IgnoreMatcher.from_text(""))


# ------------------------------------------------------------------------------------------
# match_sources


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    return tree(
        tmp_path,
        "a.txt", "b.txt", "c.md", "secret.txt",
        "dir/x", "dir/one/x", "dir/two/x", "dir/two/y",
        "weird[1].txt",
    )


NONE = IgnoreMatcher.from_text("")


def test_plain_file_and_dir(ctx: Path) -> None:
    assert match_sources(ctx, "a.txt", NONE) == ["a.txt"]
    assert match_sources(ctx, "dir", NONE) == ["dir"]
    assert match_sources(ctx, "dir/", NONE) == ["dir"]


def test_root_and_cleaning(ctx: Path) -> None:
    assert match_sources(ctx, ".", NONE) == ["."]
    assert match_sources(ctx, "/", NONE) == ["."]
    assert match_sources(ctx, "./dir//one/../two/x", NONE) == ["dir/two/x"]
    assert match_sources(ctx, "/a.txt", NONE) == ["a.txt"]
    assert match_sources(ctx, "/../a.txt", NONE) == ["a.txt"]  # ".." at the root stays there


def test_wildcards(ctx: Path) -> None:
    assert match_sources(ctx, "*.txt", NONE) == ["a.txt", "b.txt", "secret.txt", "weird[1].txt"]
    assert match_sources(ctx, "dir/*/x", NONE) == ["dir/one/x", "dir/two/x"]
    assert match_sources(ctx, "[ab].txt", NONE) == ["a.txt", "b.txt"]
    assert match_sources(ctx, "?.md", NONE) == ["c.md"]
    assert match_sources(ctx, "weird\\[1]*", NONE) == ["weird[1].txt"]  # escaped '[' in a pattern
    assert match_sources(ctx, "weird[[]1].txt", NONE) == ["weird[1].txt"]
    with pytest.raises(ContextError, match="no source files were specified"):
        match_sources(ctx, "weird[1].txt", NONE)  # [1] is a class, as in Docker: it names weird1.txt
    assert match_sources(ctx, "d*", NONE) == ["dir"]


def test_excluded_paths_never_match(ctx: Path) -> None:
    m = IgnoreMatcher.from_text("secret.txt\ndir/two\n")
    assert match_sources(ctx, "*.txt", m) == ["a.txt", "b.txt", "weird[1].txt"]
    assert match_sources(ctx, "dir/*/x", m) == ["dir/one/x"]
    with pytest.raises(ContextError) as info:
        match_sources(ctx, "secret.txt", m)
    assert str(info.value) == (
        "COPY failed: file not found in build context or excluded by .dockerignore: "
        "stat secret.txt: file does not exist"
    )


def test_excluded_dir_with_exception_inside_still_matches(ctx: Path) -> None:
    m = IgnoreMatcher.from_text("dir\n!dir/two/y\n")
    assert match_sources(ctx, "dir", m) == ["dir"]
    assert match_sources(ctx, "dir/two/y", m) == ["dir/two/y"]
    listed = walk(ctx, m)
    assert "dir/two/y" in listed
    assert not {"dir", "dir/x", "dir/two", "dir/two/x"} & set(listed)


def test_no_match_errors_have_dockers_text(ctx: Path) -> None:
    with pytest.raises(ContextError) as info:
        match_sources(ctx, "nope.txt", NONE)
    assert str(info.value) == (
        "COPY failed: file not found in build context or excluded by .dockerignore: "
        "stat nope.txt: file does not exist"
    )
    with pytest.raises(ContextError) as info:
        match_sources(ctx, "*.nope", NONE, instruction="ADD")
    assert str(info.value) == "ADD failed: no source files were specified"


def test_leaving_the_context_is_forbidden(ctx: Path) -> None:
    for src in ("../x", "..", "dir/../../x"):
        with pytest.raises(ContextError, match="forbidden path outside the build context"):
            match_sources(ctx, src, NONE)
    with pytest.raises(ContextError) as info:
        match_sources(ctx, "../x", NONE)
    assert str(info.value) == "COPY failed: forbidden path outside the build context: ../x"


def test_symlink_to_etc_is_not_followed(ctx: Path) -> None:
    (ctx / "etc").symlink_to("/etc")
    assert match_sources(ctx, "etc", NONE) == ["etc"]  # the link itself
    with pytest.raises(ContextError, match="no source files were specified"):
        match_sources(ctx, "etc/*", NONE)
    with pytest.raises(ContextError, match="file not found in build context"):
        match_sources(ctx, "etc/passwd", NONE)


def test_bad_source_pattern_raises(ctx: Path) -> None:
    with pytest.raises(ContextError, match="syntax error in pattern"):
        match_sources(ctx, "[a.txt", NONE)


# ------------------------------------------------------------------------------------------
# digest_paths


def make_tree(root: Path) -> Path:
    tree(root, "app/main.py", "app/lib/util.py", "README.md", "junk.log")
    (root / "app" / "link").symlink_to("/etc/passwd")
    os.chmod(root / "app" / "main.py", 0o755)
    return root


def digest(root: Path, rels: list[str] | None = None, ignore: str = "") -> str:
    return digest_paths(root, rels or ["app", "README.md"], IgnoreMatcher.from_text(ignore))


def test_equal_trees_have_equal_digests(tmp_path: Path) -> None:
    a = make_tree(tmp_path / "a")
    b = make_tree(tmp_path / "b")
    assert digest(a).startswith("sha256:") and len(digest(a)) == 7 + 64
    assert digest(a) == digest(b)
    assert digest(a, ["."]) == digest(b, ["."])


def test_content_change_changes_digest(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    before = digest(root)
    (root / "app" / "lib" / "util.py").write_text("changed")
    assert digest(root) != before


def test_mode_change_changes_digest(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    before = digest(root)
    os.chmod(root / "app" / "main.py", 0o644)
    assert digest(root) != before


def test_name_change_changes_digest(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    before = digest(root)
    (root / "app" / "lib" / "util.py").rename(root / "app" / "lib" / "util2.py")
    assert digest(root) != before


def test_symlink_target_counts_and_is_not_followed(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    before = digest(root)
    (root / "app" / "link").unlink()
    (root / "app" / "link").symlink_to("/etc/shadow")
    assert digest(root) != before


def test_mtime_change_does_not_change_digest(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    before = digest(root)
    for p in (root / "app" / "main.py", root / "app", root / "README.md"):
        os.utime(p, (1_000_000, 1_000_000))
    assert digest(root) == before


def test_excluded_files_do_not_count(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    before = digest(root, ["."], ignore="*.log\napp/lib")
    (root / "junk.log").write_text("other")
    (root / "app" / "lib" / "util.py").write_text("other")
    (root / "new.log").write_text("new")
    assert digest(root, ["."], ignore="*.log\napp/lib") == before
    (root / "README.md").write_text("other")
    assert digest(root, ["."], ignore="*.log\napp/lib") != before


def test_digest_refuses_missing_and_outside_paths(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    with pytest.raises(ContextError):
        digest(root, ["nope"])
    with pytest.raises(ContextError, match="forbidden path outside the build context"):
        digest(root, ["../x"])


def test_large_file_is_streamed(tmp_path: Path) -> None:
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.write(os.urandom(1 << 20) * 5 + b"tail")
    first = digest(tmp_path, ["big"])
    with open(big, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        f.write(b"X")
    assert digest(tmp_path, ["big"]) != first
