"""Go's text/template, the part people write in ``docker inspect -f`` and ``--format``.

Docker users carry these templates around in scripts and READMEs
(``{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}``, ``{{index .Config.Labels "k"}}``,
``{{json .State}}``), so ``pods`` renders them as the docker CLI does: actions with ``{{-``/``-}}``
trimming and comments, pipelines, variables, ``if``/``else if``/``with``/``range`` (with
``$i, $v :=``, ``else``, ``break``, ``continue``), Go's builtins (``and or not len index slice eq ne
lt le gt ge print printf println``) and docker's own (``json split join title lower upper pad
truncate``). Values print as Go's ``%v`` prints them: ``[a b]``, ``map[k:v]`` with sorted keys,
``<no value>`` for a missing key and ``<nil>`` for a null.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_pods.errors import PodsError


class TemplateError(PodsError):
    """A template that does not parse or cannot run; the message is Go's."""


class _Missing:
    """A map key that is not there: prints as ``<no value>``, is false, and any field of it is
    missing too (Go's zero reflect.Value)."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING: Any = _Missing()


# ---- lexing: text and actions -------------------------------------------------------------------

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)


def _pieces(src: str) -> Iterator[tuple[str, str, int]]:
    """``("text", s, line)`` and ``("action", s, line)`` in order, with trim markers applied."""
    pos, pending_trim = 0, False
    for m in _ACTION.finditer(src):
        text = src[pos:m.start()]
        if pending_trim:
            text = text.lstrip()
        if m.group(1):
            text = text.rstrip()
        if text:
            yield "text", text, src.count("\n", 0, pos) + 1
        yield "action", m.group(2), src.count("\n", 0, m.start()) + 1  # {{-3}}: a number, no trim
        pending_trim = m.group(3) is not None
        pos = m.end()
    if "{{" in src[pos:]:
        raise TemplateError(f"template: :{src.count(chr(10), 0, pos) + 1}: unclosed action")
    text = src[pos:]
    if pending_trim:
        text = text.lstrip()
    if text:
        yield "text", text, src.count("\n", 0, pos) + 1


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\]|\\.)+')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F_]+|\d[\d_]*(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
  | (?P<variable>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<pipe>\|)
  | (?P<lparen>\()
  | (?P<rparen>\)(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<comma>,)
""", re.X | re.S)


def _tokens(body: str, line: int) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(body):
        m = _TOKEN.match(body, pos)
        if not m:
            raise TemplateError(f"template: :{line}: unexpected {body[pos]!r} in command")
        kind = m.lastgroup or ""
        after = body[m.end():m.end() + 1]
        if kind in ("field", "variable", "ident", "rparen") and after and not (after.isspace() or after in "|),="):
            raise TemplateError(f"template: :{line}: bad character U+{ord(after):04X} {after!r}")
        if kind != "space":
            out.append((kind, m.group()))
        pos = m.end()
    return out


# ---- the tree --------------------------------------------------------------------------------------

@dataclass
class _Command:
    args: list[Any]  # operands: ("field", [names]), ("var", name, [names]), ("const", v), ("ident", name), ("pipe", _Pipe, [names])


@dataclass
class _Pipe:
    decl: list[str] = field(default_factory=list)
    assign: bool = False  # `$x = v` sets an existing variable
    cmds: list[_Command] = field(default_factory=list)


@dataclass
class _Node:
    kind: str  # text, action, if, range, with, break, continue
    text: str = ""
    pipe: _Pipe | None = None
    body: list[_Node] = field(default_factory=list)
    orelse: list[_Node] = field(default_factory=list)
    line: int = 1


def _parse_pipe(toks: list[tuple[str, str]], line: int, *, decl_ok: bool = True) -> _Pipe:
    pipe = _Pipe()
    i = 0
    # declarations: $x := ..., $i, $v := ..., $x = ...
    j, names = 0, []
    while decl_ok and j < len(toks) and toks[j][0] == "variable" and "." not in toks[j][1]:
        names.append(toks[j][1])
        if j + 1 < len(toks) and toks[j + 1][0] == "comma":
            j += 2
            continue
        if j + 1 < len(toks) and toks[j + 1][0] in ("declare", "assign"):
            pipe.decl, pipe.assign, i = names, toks[j + 1][0] == "assign", j + 2
        break
    cmd: list[Any] = []
    while i < len(toks):
        kind, text = toks[i]
        if kind == "pipe":
            if not cmd:
                raise TemplateError(f"template: :{line}: missing command")
            pipe.cmds.append(_Command(cmd))
            cmd = []
        elif kind == "lparen":
            depth, k = 1, i + 1
            while k < len(toks) and depth:
                depth += {"lparen": 1, "rparen": -1}.get(toks[k][0], 0)
                k += 1
            if depth:
                raise TemplateError(f"template: :{line}: unclosed left paren")
            inner = _parse_pipe(toks[i + 1:k - 1], line)
            cmd.append(("pipe", inner, [p for p in toks[k - 1][1][1:].split(".") if p]))
            i = k
            continue
        elif kind == "rparen":
            raise TemplateError(f"template: :{line}: unexpected right paren")
        elif kind == "field":
            cmd.append(("field", [p for p in text.split(".") if p]))
        elif kind == "variable":
            name, *rest = text.split(".")
            cmd.append(("var", name, rest))
        elif kind == "string":
            cmd.append(("const", json.loads(text)))
        elif kind == "raw":
            cmd.append(("const", text[1:-1]))
        elif kind == "char":
            cmd.append(("const", ord(json.loads('"' + text[1:-1] + '"'))))
        elif kind == "number":
            t = text.replace("_", "")
            cmd.append(("const", int(t, 0) if re.fullmatch(r"[-+]?(0[xX][0-9a-fA-F]+|\d+)", t) else float(t)))
        elif kind == "ident":
            if text in ("true", "false"):
                cmd.append(("const", text == "true"))
            elif text == "nil":
                cmd.append(("const", None))
            else:
                cmd.append(("ident", text))
        else:
            raise TemplateError(f"template: :{line}: unexpected {text!r} in command")
        i += 1
    if cmd:
        pipe.cmds.append(_Command(cmd))
    if not pipe.cmds:
        raise TemplateError(f"template: :{line}: missing value for command")
    return pipe


_KEYWORD = re.compile(r"\s*(if|else|end|range|with|break|continue|define|template|block)\b(.*)", re.S)


def parse(src: str) -> list[_Node]:
    """The template's tree; TemplateError with Go's wording for what does not parse."""
    root: list[_Node] = []
    stack: list[tuple[_Node, list[_Node]]] = []  # (block node, the list being filled)
    current = root
    for kind, text, line in _pieces(src):
        if kind == "text":
            current.append(_Node("text", text=text, line=line))
            continue
        body = text.strip()
        if body.startswith("/*"):
            if not body.endswith("*/"):
                raise TemplateError(f"template: :{line}: unclosed comment")
            continue
        m = _KEYWORD.match(body)
        word, rest = (m.group(1), m.group(2)) if m else ("", body)
        if word in ("if", "range", "with"):
            node = _Node(word, pipe=_parse_pipe(_tokens(rest, line), line), line=line)
            current.append(node)
            stack.append((node, current))
            current = node.body
        elif word == "else":
            if not stack or stack[-1][0].kind not in ("if", "range", "with") or current is stack[-1][0].orelse:
                raise TemplateError(f"template: :{line}: unexpected {{{{else}}}}")
            block = stack[-1][0]
            chained = _KEYWORD.match(rest)
            if chained and chained.group(1) in ("if", "with"):  # else if / else with: a nested block
                node = _Node(chained.group(1), pipe=_parse_pipe(_tokens(chained.group(2), line), line), line=line)
                block.orelse.append(node)
                stack[-1] = (block, stack[-1][1])
                stack.append((node, block.orelse))
                node.text = "chained"
                current = node.body
            else:
                current = block.orelse
        elif word == "end":
            if not stack:
                raise TemplateError(f"template: :{line}: unexpected {{{{end}}}}")
            node, current = stack.pop()
            while node.text == "chained":  # one {{end}} closes the whole else-if chain
                node, current = stack.pop()
        elif word in ("break", "continue"):
            if not any(n.kind == "range" for n, _ in stack):
                raise TemplateError(f"template: :{line}: {{{{{word}}}}} outside {{{{range}}}}")
            current.append(_Node(word, line=line))
        elif word in ("define", "template", "block"):
            raise TemplateError(f"template: :{line}: {{{{{word}}}}} is not supported by pods")
        else:
            current.append(_Node("action", pipe=_parse_pipe(_tokens(body, line), line), line=line))
    if stack:
        raise TemplateError(f"template: :{stack[-1][0].line}: unexpected EOF")
    return root


# ---- values as Go prints them --------------------------------------------------------------------

def go_format(v: Any) -> str:
    """``fmt.Sprint(v)`` for the values a decoded JSON document holds."""
    if v is MISSING:
        return "<no value>"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_format(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{go_format(k)}:{go_format(v[k])}" for k in sorted(v)) + "]"
    return str(v)


def _go_float(f: float) -> str:
    """``%v`` of a float64 (strconv's shortest ``%g``): exponent form when the exponent is below -4
    or at least 6, so 1e6 prints as ``1e+06`` and 123456.0 as ``123456``."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "0"
    sign, digits, exp = "-" if f < 0 else "", *_shortest_digits(abs(f))
    if exp < -4 or exp >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{exp:+03d}"
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{digits}"
    whole = digits[:exp + 1].ljust(exp + 1, "0")
    frac = digits[exp + 1:]
    return sign + whole + ("." + frac if frac else "")


def _shortest_digits(f: float) -> tuple[str, int]:
    """The shortest digits that read back as ``f`` (Python's repr has them too) and the decimal
    exponent of the first one."""
    mant, _, exp = f"{f!r}".partition("e")
    whole, _, frac = mant.partition(".")
    digits = (whole + frac).lstrip("0")
    lead = len(whole.lstrip("0")) - 1 if whole.strip("0") else -(len(frac) - len(frac.lstrip("0")) + 1)
    return digits.rstrip("0") or "0", lead + int(exp or 0)


def truth(v: Any) -> bool:
    """Go's template truth: false, 0, nil, a missing key and empty strings, lists and maps are false."""
    if v is MISSING or v is None:
        return False
    if isinstance(v, (bool, int, float, str, list, tuple, dict)):
        return bool(v)
    return True


# ---- functions ---------------------------------------------------------------------------------

def _index(item: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(item, dict):
            item = item[k] if k in item else _zero_of(item)
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(k, int) or isinstance(k, bool):
                raise TemplateError(f"error calling index: cannot index slice/array with type {_go_type(k)}")
            if not 0 <= k < len(item):
                raise TemplateError(f"error calling index: index out of range: {k}")
            item = item[k] if not isinstance(item, str) else ord(item[k])
        elif item is None or item is MISSING:
            raise TemplateError("error calling index: index of untyped nil")
        else:
            raise TemplateError(f"error calling index: can't index item of type {_go_type(item)}")
    return item


def _zero_of(mapping: dict[Any, Any]) -> Any:
    """What ``index`` gives for a key a map lacks: the zero value of its element type, as docker's
    typed documents have it ("" in a map of strings such as Labels, nil in a map of objects such as
    Networks)."""
    values = list(mapping.values())
    if all(isinstance(v, str) for v in values):
        return ""
    if all(isinstance(v, dict) or v is None for v in values):
        return None
    return MISSING


def _go_type(v: Any) -> str:
    return {bool: "bool", int: "int", float: "float64", str: "string", list: "[]interface {}",
            dict: "map[string]interface {}"}.get(type(v), "interface {}")


def _length(v: Any) -> int:
    if isinstance(v, (str, list, tuple, dict)):
        return len(v)
    raise TemplateError(f"error calling len: len of type {_go_type(v)}")


def _compare(op: str) -> Callable[..., bool]:
    def basic(a: Any, b: Any) -> tuple[Any, Any]:
        if isinstance(a, bool) != isinstance(b, bool) or isinstance(a, str) != isinstance(b, str):
            raise TemplateError(f"error calling {op}: incompatible types for comparison")
        return a, b

    def fn(a: Any, *rest: Any) -> bool:
        if op == "eq":
            if not rest:
                raise TemplateError("error calling eq: missing argument for comparison")
            return any(basic(a, b)[0] == b for b in rest)
        if len(rest) != 1:
            raise TemplateError(f"wrong number of args for {op}: want 2 got {1 + len(rest)}")
        x, y = basic(a, rest[0])
        return bool({"ne": x != y, "lt": x < y, "le": x <= y, "gt": x > y, "ge": x >= y}[op])
    return fn


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*))?([a-zA-Z%])")


def _printf(fmt: str, *args: Any) -> str:
    """``fmt.Sprintf`` for the verbs people use in templates: %s %v %d %q %t %x %f %e %g %c %%."""
    values = list(args)

    def repl(m: re.Match[str]) -> str:
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            return "%"
        if not values:
            return f"%!{verb}(MISSING)"
        v = values.pop(0)
        if verb in "vs":
            s = go_format(v)
            if prec:
                s = s[:int(prec)]
        elif verb == "q":
            s = json.dumps(v if isinstance(v, str) else go_format(v), ensure_ascii=False)
        elif verb == "t":
            s = go_format(v)
        elif verb in "dxXob" and isinstance(v, int) and not isinstance(v, bool):
            s = format(v, {"d": "d", "x": "x", "X": "X", "o": "o", "b": "b"}[verb])
        elif verb in "xX" and isinstance(v, str):
            s = v.encode().hex()
            s = s.upper() if verb == "X" else s
        elif verb in "feEgG" and isinstance(v, (int, float)) and not isinstance(v, bool):
            s = format(float(v), f".{prec or 6}{verb}" if verb != "g" or prec else "g")
        elif verb == "c" and isinstance(v, int):
            s = chr(v)
        else:
            return f"%!{verb}({_go_type(v)}={go_format(v)})"
        if width and width != "*":
            s = s.ljust(int(width)) if "-" in flags else (
                s.rjust(int(width), "0") if "0" in flags and verb not in "sqv" else s.rjust(int(width)))
        return s

    out = _VERB.sub(repl, fmt)
    if values:
        out += "%!(EXTRA " + ", ".join(f"{_go_type(v)}={go_format(v)}" for v in values) + ")"
    return out


def _sprint(*args: Any) -> str:
    """``fmt.Sprint``: a space between operands when neither is a string."""
    out = ""
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_format(a)
    return out


def _json(v: Any) -> str:
    """docker's ``json``: compact, HTML characters kept as they are, Go maps with sorted keys."""
    return json.dumps(_go_order(None if v is MISSING else v), ensure_ascii=False, separators=(",", ":"))


def _go_order(v: Any) -> Any:
    """Go marshals a map with its keys sorted and a struct in field order. A document does not say
    which an object was: one whose values are all strings (Labels, Options) or with a key that is
    not an exported Go field name (Networks by name) was a map."""
    if isinstance(v, list):
        return [_go_order(x) for x in v]
    if not isinstance(v, dict):
        return v
    is_map = all(isinstance(x, str) for x in v.values()) or not all(k[:1].isupper() for k in v)
    items = sorted(v.items()) if is_map else v.items()
    return {k: _go_order(x) for k, x in items}


def _slice(item: Any, *idx: int) -> Any:
    if not isinstance(item, (str, list, tuple)):
        raise TemplateError(f"error calling slice: can't slice item of type {_go_type(item)}")
    lo = idx[0] if idx else 0
    hi = idx[1] if len(idx) > 1 else len(item)
    if not 0 <= lo <= hi <= len(item):
        raise TemplateError(f"error calling slice: index out of range: {hi}")
    return item[lo:hi]


def _title(s: str) -> str:
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), s)


def _truncate(s: str, n: int) -> str:
    return s[:n] if len(s) > n else s


def _pad(s: str, left: int, right: int) -> str:
    return " " * left + s + " " * right


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": _length, "index": _index, "slice": _slice,
    "print": _sprint, "printf": _printf, "println": lambda *a: " ".join(go_format(x) for x in a) + "\n",
    "eq": _compare("eq"), "ne": _compare("ne"), "lt": _compare("lt"), "le": _compare("le"),
    "gt": _compare("gt"), "ge": _compare("ge"),
    "json": _json, "split": lambda s, sep: s.split(sep) if sep else list(s),
    "join": lambda items, sep: sep.join(go_format(x) for x in items),
    "title": _title, "lower": lambda s: s.lower(), "upper": lambda s: s.upper(),
    "pad": _pad, "truncate": _truncate,
    "html": lambda *a: _sprint(*a).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    .replace('"', "&#34;").replace("'", "&#39;"),
    "urlquery": lambda *a: __import__("urllib.parse").parse.quote_plus(_sprint(*a)),
}


# ---- execution -----------------------------------------------------------------------------------

class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _State:
    def __init__(self, top: Any) -> None:
        self.vars: list[tuple[str, Any]] = [("$", top)]
        self.out: list[str] = []

    def lookup(self, name: str) -> Any:
        for n, v in reversed(self.vars):
            if n == name:
                return v
        raise TemplateError(f'template: :1: undefined variable "{name}"')

    def set(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise TemplateError(f'template: :1: undefined variable "{name}"')


def _field(value: Any, names: Sequence[str], line: int) -> Any:
    for name in names:
        if value is MISSING or value is None:
            return MISSING
        if isinstance(value, dict):
            value = value.get(name, MISSING)
        else:
            raise TemplateError(f"template: :{line}: executing \"\" at <.{name}>: can't evaluate field "
                                f"{name} in type {_go_type(value)}")
    return value


def _operand(st: _State, dot: Any, arg: Any, line: int) -> Any:
    kind = arg[0]
    if kind == "const":
        return arg[1]
    if kind == "field":
        return _field(dot, arg[1], line)
    if kind == "var":
        return _field(st.lookup(arg[1]), arg[2], line)
    if kind == "pipe":
        return _field(_pipe(st, dot, arg[1], line), arg[2], line)
    if kind == "ident":
        fn = FUNCTIONS.get(arg[1])
        if fn is None:
            raise TemplateError(f'template: :{line}: function "{arg[1]}" not defined')
        return fn()
    raise TemplateError(f"template: :{line}: can't evaluate {arg!r}")


def _command(st: _State, dot: Any, cmd: _Command, final: Any, has_final: bool, line: int) -> Any:
    first = cmd.args[0]
    if first[0] == "ident":
        name = first[1]
        if name in ("and", "or"):  # Go 1.18: evaluated left to right, stop at the answer
            args = cmd.args[1:]
            if not args and not has_final:
                raise TemplateError(f"template: :{line}: wrong number of args for {name}: want at least 1 got 0")
            result: Any = None
            for a in args:
                result = _operand(st, dot, a, line)
                if truth(result) == (name == "or"):
                    return result
            if has_final:
                result = final
            return result
        if name == "not":
            vals = [_operand(st, dot, a, line) for a in cmd.args[1:]] + ([final] if has_final else [])
            if len(vals) != 1:
                raise TemplateError(f"template: :{line}: wrong number of args for not: want 1 got {len(vals)}")
            return not truth(vals[0])
        fn = FUNCTIONS.get(name)
        if fn is None:
            raise TemplateError(f'template: :{line}: function "{name}" not defined')
        vals = [_operand(st, dot, a, line) for a in cmd.args[1:]] + ([final] if has_final else [])
        try:
            return fn(*vals)
        except TemplateError as exc:
            raise TemplateError(f"template: :{line}: executing \"\" at <{name}>: {exc}") from None
        except (TypeError, AttributeError):
            raise TemplateError(f"template: :{line}: executing \"\" at <{name}>: wrong number or type "
                                f"of args for {name}") from None
    if len(cmd.args) > 1 or has_final:
        raise TemplateError(f"template: :{line}: can't give argument to non-function {_describe(first)}")
    return _operand(st, dot, first, line)


def _describe(arg: Any) -> str:
    if arg[0] == "field":
        return "." + ".".join(arg[1])
    if arg[0] == "var":
        return ".".join([arg[1], *arg[2]])
    return go_format(arg[1]) if arg[0] == "const" else "(...)"


def _pipe(st: _State, dot: Any, pipe: _Pipe, line: int) -> Any:
    value: Any = None
    for i, cmd in enumerate(pipe.cmds):
        value = _command(st, dot, cmd, value, i > 0, line)
    if pipe.decl and pipe.assign:
        st.set(pipe.decl[0], value)
    elif pipe.decl:
        st.vars.append((pipe.decl[0], value))
    return value


def _items(value: Any) -> list[tuple[Any, Any]]:
    if value is MISSING or value is None:
        return []
    if isinstance(value, dict):
        return [(k, value[k]) for k in sorted(value)]
    if isinstance(value, (list, tuple)):
        return list(enumerate(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return [(i, i) for i in range(value)]
    raise TemplateError(f"range can't iterate over {go_format(value)}")


def _walk(st: _State, dot: Any, nodes: list[_Node]) -> None:
    for node in nodes:
        mark = len(st.vars)
        if node.kind == "text":
            st.out.append(node.text)
        elif node.kind == "action":
            assert node.pipe
            value = _pipe(st, dot, node.pipe, node.line)
            if not node.pipe.decl:
                st.out.append(go_format(value))
            continue  # a declaration stays in scope until the end of the enclosing block
        elif node.kind in ("if", "with"):
            assert node.pipe
            decl, node.pipe.decl = node.pipe.decl, []
            value = _pipe(st, dot, node.pipe, node.line)
            node.pipe.decl = decl
            if decl:
                st.vars.append((decl[0], value))
            if truth(value):
                _walk(st, value if node.kind == "with" else dot, node.body)
            else:
                _walk(st, dot, node.orelse)
        elif node.kind == "range":
            assert node.pipe
            decl, node.pipe.decl = node.pipe.decl, []
            items = _items(_pipe(st, dot, node.pipe, node.line))
            node.pipe.decl = decl
            for key, elem in items:
                inner = len(st.vars)
                if len(decl) == 1:
                    st.vars.append((decl[0], elem))
                elif len(decl) == 2:
                    st.vars += [(decl[0], key), (decl[1], elem)]
                try:
                    _walk(st, elem, node.body)
                except _Continue:
                    pass
                except _Break:
                    del st.vars[inner:]
                    break
                del st.vars[inner:]
            if not items:
                _walk(st, dot, node.orelse)
        elif node.kind == "break":
            raise _Break
        elif node.kind == "continue":
            raise _Continue
        del st.vars[mark:]


def render(template: str, data: Any) -> str:
    """``template`` applied to ``data`` (a decoded JSON document), as the docker CLI renders it."""
    st = _State(data)
    _walk(st, data, parse(template))
    return "".join(st.out)
