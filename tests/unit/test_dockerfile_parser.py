"""The Dockerfile parser reads files as BuildKit does: directives, continuations, heredocs,
JSON vs shell form, flags, stages, and BuildKit's shell-word expansion."""

from __future__ import annotations

import pickle

import pytest

from pytest_pods.builders.dockerfile import Heredoc, Instruction, parse, parse_arg, parse_kv, process_word, process_words
from pytest_pods.errors import DockerfileError
from pytest_pods.errors import PodsError


def only_stage_instructions(text: str) -> list[Instruction]:
    df = parse(text)
    assert len(df.stages) == 1
    return df.stages[0].instructions


# ---------------------------------------------------------------------------- errors


def test_error_names_path_and_line_and_is_a_value_error() -> None:
    err = DockerfileError("ctx/Dockerfile", 7, "boom")
    assert str(err) == "ctx/Dockerfile:7: boom"
    assert (err.path, err.line, err.message) == ("ctx/Dockerfile", 7, "boom")
    assert isinstance(err, PodsError) and isinstance(err, ValueError)


def test_error_pickles_for_xdist() -> None:
    err = pickle.loads(pickle.dumps(DockerfileError("Dockerfile", 3, "bad")))
    assert str(err) == "Dockerfile:3: bad"


def test_unknown_instruction_names_file_line_and_suggests() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("FROM scratch\n\nCOPPY a b\n", path="app/Dockerfile")
    assert str(info.value).startswith("app/Dockerfile:3: unknown instruction: COPPY")
    assert "did you mean COPY?" in str(info.value)
    assert info.value.line == 3


def test_empty_file_has_no_build_stage() -> None:
    with pytest.raises(DockerfileError, match="no build stage in current context"):
        parse("")


def test_only_comments_and_args_have_no_build_stage() -> None:
    with pytest.raises(DockerfileError, match="no build stage in current context") as info:
        parse("# just a comment\nARG X=1\n")
    assert info.value.line == 2


def test_instruction_before_first_from_other_than_arg_fails() -> None:
    with pytest.raises(DockerfileError, match="no build stage in current context") as info:
        parse("ARG A\nRUN echo hi\nFROM scratch\n")
    assert info.value.line == 2
    assert "RUN" in info.value.message


# ---------------------------------------------------------------------------- directives


def test_directives_syntax_and_escape_are_read() -> None:
    df = parse("# syntax=docker/dockerfile:1.7\n# escape=`\nFROM scratch\n")
    assert df.syntax == "docker/dockerfile:1.7"
    assert df.escape == "`"


def test_directive_keys_are_case_insensitive_and_spaced() -> None:
    df = parse("#  SYNTAX = docker/dockerfile:1  \n# Escape=`\n# check=skip=all\nFROM x\n")
    assert (df.syntax, df.escape) == ("docker/dockerfile:1", "`")


def test_directive_after_a_comment_is_a_comment() -> None:
    df = parse("# hello\n# escape=`\nFROM x\n")
    assert df.escape == "\\"


def test_directive_after_an_empty_line_is_a_comment() -> None:
    df = parse("\n# syntax=foo\nFROM x\n")
    assert df.syntax is None


def test_directive_after_an_instruction_is_a_comment() -> None:
    df = parse("FROM x\n# escape=`\nRUN a \\\n b\n")
    assert df.escape == "\\"
    assert df.stages[0].instructions[0].args == ["a  b"]


def test_unknown_directive_ends_directives() -> None:
    df = parse("# foo=bar\n# escape=`\nFROM x\n")
    assert df.escape == "\\"


def test_repeated_directive_fails() -> None:
    with pytest.raises(DockerfileError, match="only one escape parser directive") as info:
        parse("# escape=`\n# escape=\\\nFROM x\n")
    assert info.value.line == 2


def test_invalid_escape_token_fails() -> None:
    with pytest.raises(DockerfileError, match="invalid escape token") as info:
        parse("# escape=x\nFROM x\n")
    assert info.value.line == 1


def test_byte_order_mark_is_ignored() -> None:
    df = parse("\ufeff# escape=`\nFROM x\n")
    assert df.escape == "`"


# ---------------------------------------------------------------------------- lines


def test_keywords_are_case_insensitive() -> None:
    df = parse("from alpine as Build\nrun echo hi\nCoPy a b\n")
    stage = df.stages[0]
    assert stage.name == "build"
    assert [i.cmd for i in stage.instructions] == ["RUN", "COPY"]


def test_continuation_joins_lines_and_keeps_line_numbers() -> None:
    text = "FROM x\nRUN apt-get update && \\\n    apt-get install -y curl\n"
    (run,) = only_stage_instructions(text)
    assert run.args == ["apt-get update &&     apt-get install -y curl"]
    assert (run.line, run.end_line) == (2, 3)
    assert run.original == "RUN apt-get update &&     apt-get install -y curl"


def test_whitespace_after_continuation_escape_is_allowed() -> None:
    (run,) = only_stage_instructions("FROM x\nRUN a \\   \t\n  b\n")
    assert run.args == ["a   b"]


def test_comments_and_empty_lines_inside_continuation_are_dropped() -> None:
    text = "FROM x\nRUN a \\\n  # a comment\n\n   \\\n  && b\nRUN c\n"
    first, second = only_stage_instructions(text)
    assert first.args == ["a      && b"]  # the whitespace before each escape is kept
    assert (first.line, first.end_line) == (2, 6)
    assert (second.args, second.line) == (["c"], 7)


def test_hash_inside_a_line_is_not_a_comment() -> None:
    (run,) = only_stage_instructions("FROM x\n  # indented comment\nRUN echo a # not a comment\n")
    assert run.args == ["echo a # not a comment"]


def test_escaped_escape_at_end_of_line_does_not_continue() -> None:
    (run, cmd) = only_stage_instructions("FROM x\nRUN echo a\\\\\nCMD b\n")
    assert run.args == ["echo a\\\\"]
    assert cmd.args == ["b"]


def test_backtick_escape_for_windows_paths_and_continuation() -> None:
    text = (
        "# escape=`\nFROM mcr.microsoft.com/windows\n"
        "COPY testfile.txt c:\\\nCOPY a `\n    b\nRUN dir c:\\\n"
    )
    copy1, copy2, run = parse(text).stages[0].instructions
    assert copy1.args == ["testfile.txt c:\\"]
    assert (copy2.args, copy2.line, copy2.end_line) == (["a     b"], 4, 5)
    assert run.args == ["dir c:\\"]


def test_crlf_line_endings() -> None:
    (run,) = only_stage_instructions("FROM x\r\nRUN a \\\r\n b\r\n")
    assert run.args == ["a  b"]


# ---------------------------------------------------------------------------- JSON vs shell


def test_exec_form_is_json() -> None:
    cmd, ep = only_stage_instructions('FROM x\nCMD ["echo", "a b"]\nENTRYPOINT ["/bin/sh", "-c"]\n')
    assert (cmd.args, cmd.json) == (["echo", "a b"], True)
    assert (ep.args, ep.json) == (["/bin/sh", "-c"], True)


def test_invalid_json_falls_back_to_shell_form() -> None:
    cmd, run = only_stage_instructions("FROM x\nCMD [ \"a\" \nRUN ['single']\n")
    assert (cmd.args, cmd.json) == (['[ "a"'], False)
    assert (run.args, run.json) == (["['single']"], False)


def test_json_array_of_non_strings_is_an_error() -> None:
    with pytest.raises(DockerfileError, match="arrays must be comprised of strings only"):
        parse('FROM x\nCMD ["a", 1]\n')


def test_shell_form_copy_volume_keep_the_line() -> None:
    copy, volume, vjson = only_stage_instructions(
        'FROM x\nCOPY a  b /dst/\nVOLUME /a /b\nVOLUME ["/c"]\n'
    )
    assert (copy.args, copy.json) == (["a  b /dst/"], False)
    assert (volume.args, volume.json) == (["/a /b"], False)
    assert (vjson.args, vjson.json) == (["/c"], True)


def test_shell_requires_json() -> None:
    with pytest.raises(DockerfileError, match="SHELL requires the arguments to be in JSON form"):
        parse("FROM x\nSHELL /bin/bash -c\n")
    (shell,) = only_stage_instructions('FROM x\nSHELL ["/bin/bash", "-c"]\n')
    assert shell.args == ["/bin/bash", "-c"]


def test_healthcheck_forms() -> None:
    none, shell, exec_ = only_stage_instructions(
        "FROM x\nHEALTHCHECK NONE\nHEALTHCHECK --interval=5s --retries=3 CMD curl -f x\n"
        'HEALTHCHECK cmd ["curl", "x"]\n'
    )
    assert none.args == ["NONE"]
    assert shell.flags == {"interval": ["5s"], "retries": ["3"]}
    assert (shell.args, shell.json) == (["CMD", "curl -f x"], False)
    assert (exec_.args, exec_.json) == (["CMD", "curl", "x"], True)


# ---------------------------------------------------------------------------- flags


def test_flags_split_off_repeat_and_valueless() -> None:
    run, copy = only_stage_instructions(
        "FROM x\nRUN --mount=type=cache,target=/a --mount=type=secret,id=s --network=none make\n"
        'COPY --from=build --chown="1:1" --link --exclude=*.md --exclude=*.txt src/ /dst/\n'
    )
    assert run.flags == {"mount": ["type=cache,target=/a", "type=secret,id=s"], "network": ["none"]}
    assert run.args == ["make"]
    assert copy.flags == {
        "from": ["build"],
        "chown": ["1:1"],
        "link": [""],
        "exclude": ["*.md", "*.txt"],
    }
    assert copy.args == ["src/ /dst/"]


def test_from_platform_flag() -> None:
    stage = parse("FROM --platform=$BUILDPLATFORM golang:1.22 AS build\n").stages[0]
    assert (stage.base, stage.platform, stage.name) == ("golang:1.22", "$BUILDPLATFORM", "build")


def test_flag_an_instruction_does_not_take_is_named() -> None:
    with pytest.raises(DockerfileError, match="unknown flag: --from") as info:
        parse("FROM x\nRUN --from=y echo\n")
    assert info.value.line == 2
    with pytest.raises(DockerfileError, match="unknown flag: --chmod.*WORKDIR takes no flags"):
        parse("FROM x\nWORKDIR --chmod=1 /a\n")


def test_unknown_flag_suggests_the_near_one() -> None:
    with pytest.raises(DockerfileError, match="did you mean --mount"):
        parse("FROM x\nRUN --mout=type=cache,target=/a echo\n")


def test_flag_missing_value_and_bad_boolean_and_duplicate() -> None:
    with pytest.raises(DockerfileError, match="missing a value on flag: --from"):
        parse("FROM x\nCOPY --from a b\n")
    with pytest.raises(DockerfileError, match="expecting boolean value for flag --link"):
        parse("FROM x\nCOPY --link=maybe a b\n")
    with pytest.raises(DockerfileError, match="duplicate flag specified: --chown"):
        parse("FROM x\nCOPY --chown=1 --chown=2 a b\n")


def test_double_dash_ends_flags() -> None:
    (run,) = only_stage_instructions("FROM x\nRUN -- --not-a-flag\n")
    assert (run.flags, run.args) == ({}, ["--not-a-flag"])


def test_add_flags() -> None:
    (add,) = only_stage_instructions(
        "FROM x\nADD --checksum=sha256:abc --keep-git-dir=true https://x/y.tar /y\n"
    )
    assert add.flags == {"checksum": ["sha256:abc"], "keep-git-dir": ["true"]}


# ---------------------------------------------------------------------------- heredocs


def test_run_heredoc_is_collected_until_the_delimiter() -> None:
    run, cmd = only_stage_instructions("FROM x\nRUN <<EOF\necho $HOME\necho two\nEOF\nCMD done\n")
    assert run.heredocs == [Heredoc("EOF", "echo $HOME\necho two\n", True)]
    assert (run.line, run.end_line) == (2, 5)
    assert run.args == ["<<EOF"]
    assert cmd.line == 6


@pytest.mark.parametrize("word", ["<<'EOF'", '<<"EOF"', '<<E"O"F'])
def test_quoted_heredoc_does_not_expand(word: str) -> None:
    (run,) = only_stage_instructions(f"FROM x\nRUN python3 {word}\nprint('$x')\nEOF\n")
    assert run.heredocs == [Heredoc("EOF", "print('$x')\n", False)]


def test_chomped_heredoc_strips_leading_tabs_and_matches_tabbed_delimiter() -> None:
    text = "FROM x\nRUN <<-EOT\n\tif true; then\n\t\techo y\n  fi\n\tEOT\n"
    (run,) = only_stage_instructions(text)
    assert run.heredocs == [Heredoc("EOT", "if true; then\necho y\n  fi\n", True)]


def test_unchomped_heredoc_needs_the_delimiter_at_column_zero() -> None:
    (run,) = only_stage_instructions("FROM x\nRUN <<EOF\n\tEOF\nEOF\n")
    assert run.heredocs[0].content == "\tEOF\n"


def test_several_heredocs_on_one_line() -> None:
    (copy,) = only_stage_instructions("FROM x\nCOPY <<a <<'b' /dest/\nA $v\na\nB $v\nb\n")
    assert copy.heredocs == [Heredoc("a", "A $v\n", True), Heredoc("b", "B $v\n", False)]
    assert copy.args == ["<<a <<'b' /dest/"]
    assert copy.heredocs[0].dest is None


def test_heredoc_keeps_comment_lines_and_blank_lines() -> None:
    (run,) = only_stage_instructions("FROM x\nRUN <<EOF\n# kept\n\necho\nEOF\n")
    assert run.heredocs[0].content == "# kept\n\necho\n"


def test_unterminated_heredoc_names_the_line_where_it_started() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("FROM x\nRUN true\nRUN <<EOF\necho hi\n", path="Df")
    assert str(info.value) == "Df:3: unterminated heredoc EOF"


def test_heredoc_not_read_for_exec_form_or_other_instructions() -> None:
    run, cmd = only_stage_instructions('FROM x\nRUN ["cat", "<<EOF"]\nCMD cat <<EOF\n')
    assert run.heredocs == [] and cmd.heredocs == []


def test_quoted_heredoc_marker_is_not_a_heredoc() -> None:
    (run,) = only_stage_instructions("FROM x\nRUN echo '<<EOF'\n")
    assert run.heredocs == []


def test_onbuild_heredoc() -> None:
    (onbuild,) = only_stage_instructions("FROM x\nONBUILD RUN <<EOF\necho\nEOF\n")
    assert onbuild.args == ["RUN <<EOF"]
    assert onbuild.heredocs == [Heredoc("EOF", "echo\n", True)]


# ---------------------------------------------------------------------------- stages


def test_meta_args_and_stages() -> None:
    df = parse(
        "ARG BASE=alpine\nARG TAG\nFROM $BASE:$TAG AS builder\nRUN make\n"
        "FROM scratch\nCOPY --from=builder /out /\n"
    )
    assert [a.args for a in df.meta_args] == [["BASE=alpine"], ["TAG"]]
    first, second = df.stages
    assert (first.name, first.base, first.index, first.line) == ("builder", "$BASE:$TAG", 0, 3)
    assert [i.cmd for i in first.instructions] == ["RUN"]
    assert (second.name, second.base, second.index, second.line) == (None, "scratch", 1, 5)
    assert second.instructions[0].flags == {"from": ["builder"]}


def test_stage_name_is_lower_cased_and_validated() -> None:
    assert parse("FROM x AS My-Stage_1.b\n").stages[0].name == "my-stage_1.b"
    with pytest.raises(DockerfileError, match="invalid name for build stage"):
        parse("FROM x AS 1st\n")
    with pytest.raises(DockerfileError, match="invalid name for build stage"):
        parse("FROM x AS a/b\n")


def test_duplicate_stage_name_fails() -> None:
    with pytest.raises(DockerfileError, match='duplicate stage name "a"') as info:
        parse("FROM x AS a\nFROM y AS A\n")
    assert info.value.line == 2


def test_from_needs_one_or_three_words() -> None:
    with pytest.raises(DockerfileError, match="FROM requires either one or three arguments"):
        parse("FROM x y\n")
    with pytest.raises(DockerfileError, match="FROM requires either one or three arguments"):
        parse("FROM x AT y\n")


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ("ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("FROM y", "FROM isn't allowed as an ONBUILD trigger"),
        ("MAINTAINER me", "MAINTAINER isn't allowed as an ONBUILD trigger"),
        ("FOO bar", "unknown instruction: FOO"),
        ("RUN --from=a x", "unknown flag: --from"),
    ],
)
def test_onbuild_trigger_errors(trigger: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=message) as info:
        parse(f"FROM x\n\nONBUILD {trigger}\n")
    assert info.value.line == 3


def test_onbuild_is_kept_as_an_instruction() -> None:
    (onbuild,) = only_stage_instructions("FROM x\nonbuild  copy --chown=1 . /app\n")
    assert (onbuild.cmd, onbuild.args, onbuild.flags) == ("ONBUILD", ["copy --chown=1 . /app"], {})


def test_instructions_needing_arguments() -> None:
    with pytest.raises(DockerfileError, match="WORKDIR requires at least one argument"):
        parse("FROM x\nWORKDIR\n")
    with pytest.raises(DockerfileError, match="COPY requires at least two arguments"):
        parse("FROM x\nCOPY onlyone\n")
    assert only_stage_instructions("FROM x\nCMD\n")[0].args == []


def test_env_syntax_errors_are_found_at_parse_time() -> None:
    with pytest.raises(DockerfileError, match="can't find = in") as info:
        parse("FROM x\nENV a=1 b\n")
    assert info.value.line == 2
    with pytest.raises(DockerfileError, match="ENV must have two arguments"):
        parse("FROM x\nENV lonely\n")


# ---------------------------------------------------------------------------- words


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$A", "a"),
        ("${A}b", "ab"),
        ("$A$B", "a"),  # unknown -> ""
        ("${B:-def}", "def"),
        ("${E:-def}", "def"),  # empty counts as unset with the colon
        ("${E-def}", ""),  # but not without it
        ("${A:-def}", "a"),
        ("${A:+alt}", "alt"),
        ("${E:+alt}", ""),
        ("${E+alt}", "alt"),
        ("${B+alt}", ""),
        ("${B:-${A}x}", "ax"),
        ("'$A'", "$A"),
        ('"$A b"', "a b"),
        ('"\\$A"', "$A"),
        ("\\$A", "$A"),
        ('"a\\b"', "a\\b"),  # in double quotes only " $ and the escape can be escaped
        ("a\\ b", "a b"),
        ("$", "$"),
        ("a$-b", "ab"),  # $- is a special parameter, unset
        ("${P#*/}", "bar/baz.tar.gz"),
        ("${P##*/}", "baz.tar.gz"),
        ("${P%.*}", "foo/bar/baz.tar"),
        ("${P%%.*}", "foo/bar/baz"),
        ("${P#nomatch}", "foo/bar/baz.tar.gz"),
        ("${P/bar/X}", "foo/X/baz.tar.gz"),
        ("${P//a/_}", "foo/b_r/b_z.t_r.gz"),
    ],
)
def test_process_word(word: str, expected: str) -> None:
    env = {"A": "a", "E": "", "P": "foo/bar/baz.tar.gz"}
    assert process_word(word, env) == expected


def test_process_word_keeps_spaces() -> None:
    assert process_word("a  b $X", {"X": "1  2"}) == "a  b 1  2"


def test_process_word_with_backtick_escape() -> None:
    assert process_word("c:\\dir `$A", {"A": "x"}, "`") == "c:\\dir $A"


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${A:?}", "A: is not allowed to be unset"),
        ("${E:?}", "E: is not allowed to be empty"),
        ("${A:?set A please}", "A: set A please"),
        ("${A?}", "A: is not allowed to be unset"),
        ("${A", "missing '}'"),
        ("${}", "bad substitution"),
        ("${A:=x}", "unsupported modifier"),
        ("'open", "matching single-quote"),
        ('"open', "matching double-quote"),
    ],
)
def test_process_word_errors(word: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=message) as info:
        process_word(word, {"E": ""}, path="Df", line=4)
    assert str(info.value).startswith("Df:4: ")


def test_empty_allowed_with_question_without_colon() -> None:
    assert process_word("${E?}", {"E": ""}) == ""


def test_process_words_splits_on_unquoted_whitespace() -> None:
    env = {"SRC": "a.txt b.txt"}
    words = process_words('$SRC "c d" \'e f\' /dst/', env)
    assert words == ["a.txt", "b.txt", "c d", "e f", "/dst/"]
    assert process_words('"$SRC"', env) == ["a.txt b.txt"]
    assert process_words("  8080/tcp\t 53/udp ", {}) == ["8080/tcp", "53/udp"]


# ---------------------------------------------------------------------------- ENV / LABEL / ARG


def test_env_pairs_see_the_env_before_the_instruction() -> None:
    pairs = parse_kv("a=2 b=$a c=${a}x", "ENV", {"a": "1"})
    assert pairs == [("a", "2"), ("b", "1"), ("c", "1x")]


def test_env_quotes_and_escapes() -> None:
    pairs = parse_kv('K="a b" L=\'$x\' M=c\\ d N=', "ENV", {"x": "X"})
    assert pairs == [("K", "a b"), ("L", "$x"), ("M", "c d"), ("N", "")]


def test_env_legacy_form_takes_the_rest_of_the_line() -> None:
    assert parse_kv("MY_VAR my value  here", "ENV", {}) == [("MY_VAR", "my value  here")]
    assert parse_kv('K "quoted" $v', "ENV", {"v": "V"}) == [("K", "quoted V")]


def test_label_without_env_keeps_variables() -> None:
    pairs = parse_kv('org.x.version="$V" "my key"=v', "LABEL", None)
    assert pairs == [("org.x.version", "$V"), ("my key", "v")]


def test_kv_blank_name_fails() -> None:
    with pytest.raises(DockerfileError, match="ENV names can not be blank"):
        parse_kv("=x", "ENV", {}, path="Df", line=9)


def test_parse_arg_with_and_without_default() -> None:
    assert parse_arg("A B=2 C=\"x y\" D=") == [("A", None), ("B", "2"), ("C", "x y"), ("D", "")]
    assert parse_arg("V=${BASE:-debian}-slim", {"BASE": "alpine"}) == [("V", "alpine-slim")]
    assert parse_arg("V=$BASE") == [("V", "$BASE")]
