"""Dockerfile text -> stages of instructions, as BuildKit's frontend reads it.

Pure and stdlib-only: nothing here touches the engine, so the parser can be tested without root
and imported cheaply (no regular expressions are compiled at import time).

The rules follow the Dockerfile reference as BuildKit implements it
(``frontend/dockerfile/parser`` and ``frontend/dockerfile/shell``): parser directives only at the
very top, comments only at the start of a line, the escape character as line continuation,
heredocs for RUN/COPY/ADD, the JSON (exec) form with a fallback to the shell form, and BuildKit's
shell-word processing for the instructions that expand variables. Which instructions expand, and
with which environment, is the build executor's business; this module gives it
:func:`process_word`, :func:`process_words`, :func:`parse_kv` and :func:`parse_arg` to do so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import NamedTuple

from pytest_pods.errors import DockerfileError

__all__ = [
    "Dockerfile",
    "DockerfileError",
    "Heredoc",
    "Instruction",
    "Stage",
    "parse",
    "parse_arg",
    "parse_kv",
    "process_word",
    "process_words",
]


class Heredoc(NamedTuple):
    """One ``<<NAME`` body attached to a RUN, COPY or ADD instruction."""

    name: str
    content: str
    expand: bool
    dest: str | None = None


class Instruction(NamedTuple):
    """One instruction, continuations joined, flags split off, not yet expanded.

    HEALTHCHECK carries its type first: ``["NONE"]``, ``["CMD", "curl x"]`` (shell form) or
    ``["CMD", "curl", "x"]`` (exec form, ``json`` True).
    """

    cmd: str
    flags: dict[str, list[str]]
    args: list[str]
    json: bool
    heredocs: list[Heredoc]
    line: int
    end_line: int
    original: str


class Stage(NamedTuple):
    """A ``FROM`` and the instructions up to the next one."""

    name: str | None
    base: str
    platform: str | None
    instructions: list[Instruction]
    line: int
    index: int  # type: ignore[assignment]  # the API's name; shadows tuple.index


class Dockerfile(NamedTuple):
    """A parsed Dockerfile: directives, meta ARGs and stages."""

    path: str
    escape: str
    syntax: str | None
    meta_args: list[Instruction]
    stages: list[Stage]


# --------------------------------------------------------------------------------------------
# instruction table

_COMMANDS = (
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
)  # fmt: skip

# flag kinds, as BuildKit's BFlags: "str" needs a value and may be given once, "list" needs a
# value and accumulates, "bool" may go without a value (stored as "") or be true/false.
_FLAGS: dict[str, dict[str, str]] = {
    "FROM": {"platform": "str"},
    "RUN": {"mount": "list", "network": "str", "security": "str"},
    "COPY": {
        "from": "str", "chown": "str", "chmod": "str", "link": "bool", "parents": "bool",
        "exclude": "list",
    },
    "ADD": {
        "chown": "str", "chmod": "str", "link": "bool", "checksum": "str", "keep-git-dir": "bool",
        "exclude": "list",
    },
    "HEALTHCHECK": {
        "interval": "str", "timeout": "str", "start-period": "str", "start-interval": "str",
        "retries": "str",
    },
}  # fmt: skip

_HEREDOC_COMMANDS = frozenset({"RUN", "COPY", "ADD"})
_MAYBE_JSON = frozenset({"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"})
_MAY_BE_EMPTY = frozenset({"CMD", "ENTRYPOINT"})
_DIRECTIVES = ("syntax", "escape", "check")
_SPECIAL_PARAMS = "@*#?-$!0"
_STAGE_NAME_REST = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def _suggest(word: str, choices: list[str] | tuple[str, ...], prefix: str = "") -> str:
    """`` (did you mean X?)`` when a close choice exists; difflib is imported only on error."""
    import difflib  # lazy: only on an error; keeps importing the parser cheap

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


# --------------------------------------------------------------------------------------------
# shell-word processing (BuildKit's shell.Lex)


class _LexError(Exception):
    """Raised inside the lexer; turned into a DockerfileError with path and line outside."""


class _Words:
    """Accumulates words split on unquoted whitespace, as BuildKit's wordsStruct."""

    __slots__ = ("in_word", "word", "words")

    def __init__(self) -> None:
        self.word = ""
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def result(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


class _Lexer:
    """One pass over one word; options mirror BuildKit's RawQuotes/RawEscapes/SkipUnsetEnv."""

    __slots__ = ("env", "escape", "pos", "raw_escapes", "raw_quotes", "skip_unset", "src")

    def __init__(
        self,
        src: str,
        env: Mapping[str, str],
        escape: str,
        *,
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_unset: bool = False,
    ) -> None:
        self.src = src
        self.pos = 0
        self.env = env
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_unset = skip_unset

    def run(self) -> tuple[str, list[str]]:
        return self._until(None, self.raw_escapes)

    def _peek(self) -> str | None:
        return self.src[self.pos] if self.pos < len(self.src) else None

    def _until(self, stop: str | None, raw_escapes: bool) -> tuple[str, list[str]]:
        """Read up to ``stop`` (consumed) or the end; returns the text and its words."""
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            out: list[str] = []
            words = _Words()
            src, n = self.src, len(self.src)
            while self.pos < n:
                ch = src[self.pos]
                if stop is not None and ch == stop:
                    self.pos += 1
                    return "".join(out), words.result()
                if ch == "$":
                    value = self._dollar()
                    out.append(value)
                    words.add_string(value)  # unquoted expansions split into words
                elif ch == "'":
                    value = self._single_quote()
                    out.append(value)
                    words.add_raw(value)
                elif ch == '"':
                    value = self._double_quote()
                    out.append(value)
                    words.add_raw(value)
                else:
                    self.pos += 1
                    if ch == self.escape:
                        if self.raw_escapes:
                            words.add_raw(ch)
                            out.append(ch)
                        if self.pos >= n:
                            break  # an escape at the very end is dropped
                        ch = src[self.pos]
                        self.pos += 1
                        words.add_raw(ch)
                    else:
                        words.add_char(ch)
                    out.append(ch)
            if stop is not None:
                raise _LexError(f"unexpected end of statement while looking for matching {stop}")
            return "".join(out), words.result()
        finally:
            self.raw_escapes = saved

    def _single_quote(self) -> str:
        """Everything up to the next ``'`` is literal; nothing can be escaped."""
        self.pos += 1
        out = ["'"] if self.raw_quotes else []
        end = self.src.find("'", self.pos)
        if end < 0:
            raise _LexError("unexpected end of statement while looking for matching single-quote")
        out.append(self.src[self.pos : end])
        if self.raw_quotes:
            out.append("'")
        self.pos = end + 1
        return "".join(out)

    def _double_quote(self) -> str:
        """``$`` expands; the escape char escapes only ``"``, ``$`` and itself."""
        self.pos += 1
        out = ['"'] if self.raw_quotes else []
        src, n = self.src, len(self.src)
        while True:
            if self.pos >= n:
                raise _LexError(
                    "unexpected end of statement while looking for matching double-quote"
                )
            ch = src[self.pos]
            if ch == '"':
                self.pos += 1
                if self.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if ch == "$":
                out.append(self._dollar())
                continue
            self.pos += 1
            if ch == self.escape:
                if self.raw_escapes:
                    out.append(ch)
                if self.pos >= n:
                    continue
                if src[self.pos] in ('"', "$", self.escape):
                    ch = src[self.pos]
                    self.pos += 1
            out.append(ch)

    def _name(self) -> str:
        src, n, start = self.src, len(self.src), self.pos
        if start >= n:
            return ""
        if src[start].isdigit():  # positional: all the digits
            while self.pos < n and src[self.pos].isdigit():
                self.pos += 1
            return src[start : self.pos]
        if src[start] in _SPECIAL_PARAMS:
            self.pos += 1
            return src[start]
        while self.pos < n and (src[self.pos].isalnum() or src[self.pos] == "_"):
            self.pos += 1
        return src[start : self.pos]

    def _lookup(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            return self.env[name], True
        return "", False

    def _dollar(self) -> str:
        self.pos += 1  # the "$"
        if self._peek() != "{":
            name = self._name()
            if not name:
                return "$"
            value, found = self._lookup(name)
            if not found and self.skip_unset:
                return "$" + name
            return value
        self.pos += 1  # the "{"
        first = self._peek()
        if first is None:
            raise _LexError("syntax error: missing '}'")
        if first in "{}:":
            raise _LexError("syntax error: bad substitution")
        name = self._name()
        ch = self._peek()
        if ch is None:
            raise _LexError("syntax error: missing '}'")
        self.pos += 1
        if ch == "}":
            value, found = self._lookup(name)
            if not found and self.skip_unset:
                return "${" + name + "}"
            return value
        if ch == "/":
            return self._replace(name)
        modifier = ch
        null_is_unset = False
        if ch == ":":
            null_is_unset = True
            nxt = self._peek()
            if nxt is None:
                raise _LexError("syntax error: missing '}'")
            ch = nxt
            self.pos += 1
            modifier += ch
        if ch not in ("+", "-", "?", "#", "%"):
            raise _LexError(f"unsupported modifier ({modifier}) in substitution")
        word = self._brace_word("}", raw_escapes=ch in "#%")
        value, found = self._lookup(name)
        if not found and self.skip_unset:
            return "${" + name + modifier + word + "}"
        empty = not found or (null_is_unset and value == "")
        if ch == "-":
            return word if empty else value
        if ch == "+":
            return "" if empty else word
        if ch == "?":
            if not found:
                raise _LexError(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise _LexError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        greedy = word.startswith(ch)  # ## and %% remove the longest match
        pattern = _glob_compile(word[1:] if greedy else word)
        if ch == "#":
            return _trim_prefix(pattern, value, greedy)
        return _trim_suffix(pattern, value, greedy)

    def _brace_word(self, stop: str, *, raw_escapes: bool) -> str:
        try:
            return self._until(stop, raw_escapes)[0]
        except _LexError:
            if self.pos >= len(self.src):
                missing = "'}'" if stop == "}" else "'/' in ${}"
                raise _LexError(f"syntax error: missing {missing}") from None
            raise

    def _replace(self, name: str) -> str:
        """``${VAR/pat/repl}`` and ``${VAR//pat/repl}``, as newer BuildKit supports."""
        replace_all = self._peek() == "/"
        if replace_all:
            self.pos += 1
        pattern_text = self._brace_word("/", raw_escapes=True)
        replacement = self._brace_word("}", raw_escapes=True)
        value, found = self._lookup(name)
        if not found and self.skip_unset:
            sep = "//" if replace_all else "/"
            return "${" + name + sep + pattern_text + "/" + replacement + "}"
        pattern = _glob_compile(pattern_text)
        out: list[str] = []
        i, n, prev_end = 0, len(value), -1
        while i <= n:
            end = _longest_match_at(pattern, value, i)
            if end is not None and not (end == i and i == prev_end):
                out.append(replacement)
                if not replace_all:
                    out.append(value[end:])
                    return "".join(out)
                prev_end = end
                if end > i:
                    i = end
                    continue
            if i < n:
                out.append(value[i])
            i += 1
        return "".join(out)


# glob patterns for ${VAR#pat} and friends: "*" any string, "?" one char, "\" quotes * ? \ and
# drops itself before } and / (BuildKit's convertShellPatternToRegex, without brackets)
_STAR = object()
_ANY = object()


def _glob_compile(pattern: str) -> list[object]:
    tokens: list[object] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            tokens.append(_STAR)
        elif ch == "?":
            tokens.append(_ANY)
        elif ch == "\\":
            if i < n and pattern[i] in "}/":
                continue
            if i >= n or pattern[i] not in "*?\\":
                bad = pattern[i] if i < n else ""
                raise _LexError(
                    f"invalid pattern ({pattern}) in substitution: invalid escape '\\{bad}'"
                )
            tokens.append(pattern[i])
            i += 1
        else:
            tokens.append(ch)
    return tokens


def _glob_match(tokens: list[object], text: str) -> bool:
    """Whole-string match by dynamic programming: no backtracking blow-up, no regex."""
    reach = [True] + [False] * len(text)  # reach[j]: tokens so far match text[:j]
    for tok in tokens:
        if tok is _STAR:
            seen = False
            for j in range(len(reach)):
                seen = seen or reach[j]
                reach[j] = seen
        else:
            nxt = [False] * len(reach)
            for j in range(len(text)):
                if reach[j] and (tok is _ANY or tok == text[j]):
                    nxt[j + 1] = True
            reach = nxt
        if not any(reach):
            return False
    return reach[-1]


def _trim_prefix(tokens: list[object], value: str, greedy: bool) -> str:
    order = range(len(value), -1, -1) if greedy else range(len(value) + 1)
    for i in order:
        if _glob_match(tokens, value[:i]):
            return value[i:]
    return value


def _trim_suffix(tokens: list[object], value: str, greedy: bool) -> str:
    order = range(len(value) + 1) if greedy else range(len(value), -1, -1)
    for i in order:
        if _glob_match(tokens, value[i:]):
            return value[:i]
    return value


def _longest_match_at(tokens: list[object], value: str, start: int) -> int | None:
    for end in range(len(value), start - 1, -1):
        if _glob_match(tokens, value[start:end]):
            return end
    return None


def _lex(
    word: str,
    env: Mapping[str, str],
    escape: str,
    path: str,
    line: int,
    **options: bool,
) -> tuple[str, list[str]]:
    try:
        return _Lexer(word, env, escape, **options).run()
    except _LexError as exc:
        raise DockerfileError(path, line, f'failed to process "{word}": {exc}') from None


def process_word(
    word: str,
    env: Mapping[str, str],
    escape: str = "\\",
    *,
    path: str = "Dockerfile",
    line: int = 0,
) -> str:
    """Expand one word as BuildKit does: quotes removed, escapes applied, spaces kept.

    :raises DockerfileError: unbalanced quotes, a bad ``${...}``, or ``${VAR:?msg}`` unset.
    """
    return _lex(word, env, escape, path, line)[0]


def process_words(
    text: str,
    env: Mapping[str, str],
    escape: str = "\\",
    *,
    path: str = "Dockerfile",
    line: int = 0,
) -> list[str]:
    """Expand, then split on unquoted whitespace (unquoted expansions split too), dropping
    empty words: how BuildKit reads COPY/ADD sources, EXPOSE, VOLUME and the like."""
    return _lex(text, env, escape, path, line)[1]


# --------------------------------------------------------------------------------------------
# ENV / LABEL / ARG


def _split_words(rest: str, escape: str) -> list[str]:
    """Split on whitespace outside quotes, keeping quotes and escapes for the lexer later
    (BuildKit's parseWords)."""
    words: list[str] = []
    buf: list[str] = []
    quote = ""
    blank_ok = False
    in_word = False
    i, n = 0, len(rest)
    while i < n:
        ch = rest[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 == n:
                    quote = ""
                    i += 1
                    continue
                buf.append(ch)
                i += 1
                ch = rest[i]
            buf.append(ch)
            i += 1
            continue
        if ch.isspace():
            if in_word and (blank_ok or buf):
                words.append("".join(buf))
            buf, blank_ok, in_word = [], False, False
            i += 1
            continue
        in_word = True
        if ch in "'\"":
            quote = ch
            blank_ok = True
        elif ch == escape:
            if i + 1 == n:
                i += 1
                continue
            buf.append(ch)
            i += 1
            ch = rest[i]
        buf.append(ch)
        i += 1
    if in_word and (blank_ok or buf):
        words.append("".join(buf))
    return words


def _expand(text: str, env: Mapping[str, str] | None, escape: str, path: str, line: int) -> str:
    """Expand with ``env``; with None only remove quotes and escapes, keeping ``$VAR`` as is."""
    if env is None:
        return _lex(text, {}, escape, path, line, skip_unset=True)[0]
    return _lex(text, env, escape, path, line)[0]


def parse_kv(
    args_text: str,
    cmd: str,
    env: Mapping[str, str] | None,
    escape: str = "\\",
    *,
    path: str = "Dockerfile",
    line: int = 0,
) -> list[tuple[str, str]]:
    """ENV/LABEL pairs: ``K=V K2="a b"`` or the legacy ``K value with spaces``.

    Every pair is expanded with ``env`` as it was before the instruction (BuildKit: in
    ``ENV a=1 b=$a``, ``b`` gets the old ``a``); the caller applies the pairs afterwards.

    :raises DockerfileError: no arguments, a word without ``=``, a blank name.
    """
    words = _split_words(args_text, escape)
    if not words:
        raise DockerfileError(path, line, f"{cmd} requires at least one argument")
    raw: list[tuple[str, str]] = []
    if "=" not in words[0]:
        parts = args_text.strip().split(None, 1)
        if len(parts) < 2:
            raise DockerfileError(path, line, f"{cmd} must have two arguments")
        raw.append((parts[0], parts[1]))
    else:
        for word in words:
            key, eq, value = word.partition("=")
            if not eq:
                raise DockerfileError(
                    path,
                    line,
                    f"Syntax error - can't find = in \"{word}\". Must be of the form: name=value",
                )
            raw.append((key, value))
    pairs: list[tuple[str, str]] = []
    for key, value in raw:
        key = _expand(key, env, escape, path, line)
        if not key:
            raise DockerfileError(path, line, f"{cmd} names can not be blank")
        pairs.append((key, _expand(value, env, escape, path, line)))
    return pairs


def parse_arg(
    args_text: str,
    env: Mapping[str, str] | None = None,
    escape: str = "\\",
    *,
    path: str = "Dockerfile",
    line: int = 0,
) -> list[tuple[str, str | None]]:
    """``ARG NAME[=default] ...``: the default is None when not given (the build-arg or an
    outer meta ARG decides). Defaults expand with ``env`` as it was before the instruction.

    :raises DockerfileError: no arguments or a blank name.
    """
    words = _split_words(args_text, escape)
    if not words:
        raise DockerfileError(path, line, "ARG requires at least one argument")
    out: list[tuple[str, str | None]] = []
    for word in words:
        key, eq, value = word.partition("=")
        key = _expand(key, env, escape, path, line)
        if not key:
            raise DockerfileError(path, line, "ARG names can not be blank")
        out.append((key, _expand(value, env, escape, path, line) if eq else None))
    return out


# --------------------------------------------------------------------------------------------
# lines, directives, flags


def _split_lines(text: str) -> list[str]:
    """Split on "\\n" only, keeping line endings (heredoc bodies keep them as written)."""
    lines = text.split("\n")
    out = [part + "\n" for part in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def _trim_continuation(line: str, escape: str) -> tuple[str, bool]:
    """Strip a trailing escape (whitespace after it allowed); True when the line continues.

    As BuildKit, an escape preceded by another escape is literal (``a \\\\`` ends the line).
    """
    body = line.rstrip(" \t")
    if body.endswith(escape) and (len(body) == 1 or body[-2] != escape):
        return body[:-1], True
    return line, False


def _directive(line: str) -> tuple[str, str] | None:
    """``# key=value`` (key ``[a-zA-Z][a-zA-Z0-9]*``), or None."""
    if not line.startswith("#"):
        return None
    rest = line[1:].lstrip()
    end = 0
    while end < len(rest) and rest[end].isascii() and (
        rest[end].isalpha() or (end > 0 and rest[end].isdigit())
    ):
        end += 1
    if end == 0:
        return None
    key, rest = rest[:end], rest[end:].lstrip()
    if not rest.startswith("="):
        return None
    value = rest[1:].strip()
    return (key.lower(), value) if value else None


def _extract_flags(rest: str) -> tuple[list[str], str]:
    """Leading ``--name[=value]`` words (quotes removed, ``\\`` escapes); ``--`` ends them."""
    flags: list[str] = []
    i, n = 0, len(rest)
    while True:
        while i < n and rest[i].isspace():
            i += 1
        if not rest.startswith("--", i):
            return flags, rest[i:].strip()
        buf: list[str] = []
        quote = ""
        blank_ok = False
        while i < n:
            ch = rest[i]
            if quote:
                i += 1
                if ch == quote:
                    quote = ""
                    continue
                if ch == "\\":
                    if i == n:
                        quote = ""
                        continue
                    ch = rest[i]
                    i += 1
                buf.append(ch)
                continue
            if ch.isspace():
                break
            i += 1
            if ch in "'\"":
                quote = ch
                blank_ok = True
                continue
            if ch == "\\":
                if i == n:
                    continue
                ch = rest[i]
                i += 1
            buf.append(ch)
        word = "".join(buf)
        if word == "--":
            return flags, rest[i:].strip()
        if blank_ok or word:
            flags.append(word)


def _parse_flags(cmd: str, words: list[str], path: str, line: int) -> dict[str, list[str]]:
    """Check flags against what ``cmd`` takes (BuildKit's BFlags)."""
    spec = _FLAGS.get(cmd, {})
    out: dict[str, list[str]] = {}
    for word in words:
        name, eq, value = word[2:].partition("=")
        kind = spec.get(name)
        if kind is None:
            if spec:
                hint = _suggest(name, list(spec), "--")
                takes = ", ".join("--" + f for f in spec)
                message = f"unknown flag: --{name}{hint}; {cmd} takes {takes}"
            else:
                message = f"unknown flag: --{name}; {cmd} takes no flags"
            raise DockerfileError(path, line, message)
        if name in out and kind != "list":
            raise DockerfileError(path, line, f"duplicate flag specified: --{name}")
        if kind == "bool":
            if eq and value.lower() not in ("true", "false"):
                raise DockerfileError(
                    path, line, f"expecting boolean value for flag --{name}, not: {value}"
                )
        elif not eq:
            raise DockerfileError(path, line, f"missing a value on flag: --{name}")
        out.setdefault(name, []).append(value)
    return out


def _maybe_json(rest: str, path: str, line: int) -> list[str] | None:
    """The exec form when ``rest`` is a JSON array of strings; None for the shell form.

    As BuildKit: invalid JSON falls back to the shell form, but a valid array holding anything
    other than strings is an error.
    """
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise DockerfileError(
            path, line, "when using JSON array syntax, arrays must be comprised of strings only"
        )
    return value


# --------------------------------------------------------------------------------------------
# heredocs


def _heredoc_word(word: str, path: str, line: int) -> tuple[str, bool, bool] | None:
    """``[n]<<[-]NAME`` -> (name, expand, chomp), or None when the word is no heredoc."""
    i = 0
    while i < len(word) and word[i].isdigit():
        i += 1
    if not word.startswith("<<", i):
        return None
    i += 2
    chomp = word.startswith("-", i)
    rest = word[i + 1 :] if chomp else word[i:]
    if not rest or "<" in rest:
        return None
    plain = _lex(rest, {}, "\\", path, line, skip_unset=True)[1]
    if len(plain) != 1:
        return None
    raw = _lex(rest, {}, "\\", path, line, skip_unset=True, raw_quotes=True)[1]
    if len(raw) != 1:
        raise DockerfileError(path, line, f"internal lexing of heredoc gave two answers: {rest}")
    name = plain[0]
    # some part of the word was quoted when removing quotes changed it: no expansion then
    expand = name.count("'") + name.count('"') == raw[0].count("'") + raw[0].count('"')
    return name, expand, chomp


def _heredocs_in(line_text: str, path: str, line: int) -> list[tuple[str, bool, bool]]:
    """All heredoc words of a line, in order (``COPY <<a <<b /dest/`` has two)."""
    if "<<" not in line_text:
        return []
    try:
        words = _Lexer(
            line_text, {}, "\\", raw_quotes=True, raw_escapes=True, skip_unset=True
        ).run()[1]
    except _LexError:
        return []  # BuildKit ignores a line it cannot split here; the instruction reports it
    found = []
    for word in words:
        doc = _heredoc_word(word, path, line)
        if doc is not None:
            found.append(doc)
    return found


def _chomp(content: str) -> str:
    return "".join(part.lstrip("\t") for part in _split_lines(content))


# --------------------------------------------------------------------------------------------
# instructions


class _Parsed(NamedTuple):
    cmd: str
    flags: dict[str, list[str]]
    args: list[str]
    json: bool
    rest: str
    heredoc_ok: bool


def _parse_instruction(
    text: str, escape: str, path: str, line: int, *, trigger: bool = False
) -> _Parsed:
    """Split one joined instruction line into keyword, flags and arguments, and check it."""
    head, *tail = text.strip().split(None, 1)
    rest = tail[0] if tail else ""
    cmd = head.upper()
    if cmd not in _COMMANDS:
        message = f"unknown instruction: {cmd}{_suggest(cmd, _COMMANDS)}"
        raise DockerfileError(path, line, message)
    if trigger:
        if cmd == "ONBUILD":
            raise DockerfileError(
                path, line, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
            )
        if cmd in ("FROM", "MAINTAINER"):
            raise DockerfileError(path, line, f"{cmd} isn't allowed as an ONBUILD trigger")
    flag_words, rest = _extract_flags(rest)
    flags = _parse_flags(cmd, flag_words, path, line)

    if not rest and cmd not in _MAY_BE_EMPTY:
        raise DockerfileError(path, line, f"{cmd} requires at least one argument")
    args: list[str] = [rest] if rest else []
    is_json = False
    heredoc_ok = cmd in _HEREDOC_COMMANDS
    if cmd in _MAYBE_JSON:
        exec_form = _maybe_json(rest, path, line)
        if exec_form is not None:
            args, is_json, heredoc_ok = exec_form, True, False
        if cmd == "SHELL":
            if not is_json:
                raise DockerfileError(path, line, "SHELL requires the arguments to be in JSON form")
            if not args:
                raise DockerfileError(path, line, "SHELL requires at least one argument")
        if cmd in ("COPY", "ADD") and len(args if is_json else rest.split()) < 2:
            raise DockerfileError(
                path, line, f"{cmd} requires at least two arguments: source(s) and destination"
            )
    elif cmd in ("ENV", "LABEL"):
        parse_kv(rest, cmd, None, escape, path=path, line=line)
    elif cmd == "ARG":
        parse_arg(rest, None, escape, path=path, line=line)
    elif cmd == "HEALTHCHECK":
        kind, *tail = rest.split(None, 1)
        kind, command = kind.upper(), (tail[0].strip() if tail else "")
        if kind == "NONE":
            if command or flags:
                raise DockerfileError(path, line, "HEALTHCHECK NONE takes no arguments")
            args = ["NONE"]
        elif kind == "CMD":
            if not command:
                raise DockerfileError(path, line, "Missing command after HEALTHCHECK CMD")
            exec_form = _maybe_json(command, path, line)
            if exec_form is not None:
                args, is_json = ["CMD", *exec_form], True
            else:
                args = ["CMD", command]
        else:
            raise DockerfileError(path, line, f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    elif cmd == "ONBUILD":
        inner = _parse_instruction(rest, escape, path, line, trigger=True)
        heredoc_ok = inner.heredoc_ok
    return _Parsed(cmd, flags, args, is_json, rest, heredoc_ok)


def _stage_name_ok(name: str) -> bool:
    return bool(name) and "a" <= name[0] <= "z" and all(c in _STAGE_NAME_REST for c in name)


def parse(text: str, path: str = "Dockerfile") -> Dockerfile:
    """Parse a Dockerfile into stages; pure, no expansion beyond what parsing needs.

    :raises DockerfileError: on the first problem, naming ``path`` and the line.
    """
    lines = _split_lines(text)
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    escape = "\\"
    syntax: str | None = None
    seen: set[str] = set()
    directives_done = False

    instructions: list[Instruction] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].rstrip("\r\n").lstrip()
        i += 1
        start = i
        if not directives_done:
            directive = _directive(stripped)
            if directive is None or directive[0] not in _DIRECTIVES:
                directives_done = True  # an unknown directive is a comment, and ends them
            else:
                key, value = directive
                if key in seen:
                    raise DockerfileError(
                        path, start, f"only one {key} parser directive can be used"
                    )
                seen.add(key)
                if key == "escape":
                    if value not in ("\\", "`"):
                        raise DockerfileError(
                            path, start, f"invalid escape token '{value}' does not match ` or \\"
                        )
                    escape = value
                elif key == "syntax":
                    syntax = value
                continue
        if stripped.startswith("#"):
            continue
        body, more = _trim_continuation(stripped, escape)
        if not more and not body:
            continue
        parts = [body]
        while more and i < len(lines):
            raw = lines[i].rstrip("\r\n")
            i += 1
            probe = raw.lstrip()
            if not probe or probe.startswith("#"):
                continue  # comments and empty lines inside a continuation are dropped
            body, more = _trim_continuation(raw, escape)
            parts.append(body)
        joined = "".join(parts)
        parsed = _parse_instruction(joined, escape, path, start)

        heredocs: list[Heredoc] = []
        if parsed.heredoc_ok:
            for name, expand, chomp in _heredocs_in(joined, path, start):
                body_lines: list[str] = []
                while True:
                    if i >= len(lines):
                        raise DockerfileError(path, start, f"unterminated heredoc {name}")
                    raw = lines[i]
                    i += 1
                    candidate = raw.rstrip("\r\n")
                    if chomp:
                        candidate = candidate.lstrip("\t")
                    if candidate == name:
                        break
                    body_lines.append(raw)
                content = "".join(body_lines)
                heredocs.append(Heredoc(name, _chomp(content) if chomp else content, expand))
        instructions.append(
            Instruction(
                parsed.cmd,
                parsed.flags,
                parsed.args,
                parsed.json,
                heredocs,
                start,
                i,
                joined.strip(),
            )
        )
    return _assemble(instructions, path, escape, syntax, max(len(lines), 1))


def _assemble(
    instructions: list[Instruction], path: str, escape: str, syntax: str | None, last_line: int
) -> Dockerfile:
    """Group instructions into stages; only ARG may come before the first FROM."""
    meta_args: list[Instruction] = []
    stages: list[Stage] = []
    names: dict[str, int] = {}
    for ins in instructions:
        if ins.cmd == "FROM":
            words = ins.args[0].split()
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
                raise DockerfileError(
                    path,
                    ins.line,
                    "FROM requires either one or three arguments: FROM image [AS name]",
                )
            name: str | None = None
            if len(words) == 3:
                name = words[2].lower()
                if not _stage_name_ok(name):
                    raise DockerfileError(
                        path,
                        ins.line,
                        f'invalid name for build stage: "{words[2]}", '
                        "name can't start with a number or contain symbols",
                    )
                if name in names:
                    raise DockerfileError(
                        path,
                        ins.line,
                        f'duplicate stage name "{name}" (first used on line {names[name]})',
                    )
                names[name] = ins.line
            platform = ins.flags.get("platform", [None])[0]
            stages.append(Stage(name, words[0], platform, [], ins.line, len(stages)))
        elif stages:
            stages[-1].instructions.append(ins)
        elif ins.cmd == "ARG":
            meta_args.append(ins)
        else:
            raise DockerfileError(
                path,
                ins.line,
                f"no build stage in current context: {ins.cmd} before the first FROM "
                "(only ARG may come first)",
            )
    if not stages:
        raise DockerfileError(path, last_line, "no build stage in current context (no FROM)")
    return Dockerfile(path, escape, syntax, meta_args, stages)
