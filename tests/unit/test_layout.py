"""The shape of the source tree, checked (issue 12): arrows point down, no cycles, no private name
crosses a module, function-level imports say why, ``__init__.py`` files only re-export.

The layers (ARCHITECTURE.md, LAYOUT.md), each allowed to import only what it lists (and itself):
the faces (plugin, cli, daemon) -> the Client API -> builders -> the engine -> errors.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_pods"
TOP = "pytest_pods"

# area -> the areas it may import. An area is the longest prefix listed here that names a module.
GROUND = ("engine.linux", "engine.files", "engine.locks", "engine.rootless", "engine.events")
ALLOWED: dict[str, tuple[str, ...]] = {
    "errors": (),
    **{g: ("errors", *GROUND) for g in GROUND},
    "engine.image": ("errors", *GROUND),
    "engine.network": ("errors", *GROUND),
    "engine.registry": ("errors", "engine.image", *GROUND),
    "engine.runtime": ("errors", "engine.image", "engine.network", *GROUND),
    "engine.preflight": ("errors", "engine.runtime", *GROUND),
    "builders": ("errors", "engine.image", "engine.registry", "engine.runtime", *GROUND),
    "wait": ("errors",),
    "client": ("errors", "wait", "builders", "engine.image", "engine.registry", "engine.runtime",
               "engine.network", "engine.preflight", *GROUND),
    "watchdog": ("errors", "client", "engine.linux"),
    "daemon": ("errors", "wait", "client"),
    "cli": ("errors", "wait", "client", "daemon"),
    "compose_file": ("errors",),  # the compose file parser (issue 16): pure, for the plugin (and later the CLI)
    "plugin": ("errors", "wait", "client", "watchdog", "compose_file"),
    "": ("errors", "client", "wait", "plugin"),  # pytest_pods/__init__.py: public names only
}
AREAS = sorted(ALLOWED, key=len, reverse=True)


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = modules()
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


def area_of(module: str) -> str:
    for area in AREAS:
        if area and (module == area or module.startswith(area + ".")):
            return area
    return ""


def is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package(module) else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    full = ".".join([TOP, *base])
    return f"{full}.{node.module}" if node.module else full


def type_checking_nodes(tree: ast.Module) -> set[int]:
    """ids of import nodes under ``if TYPE_CHECKING:`` (types only: no arrow at run time)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                for n in ast.walk(sub):
                    out.add(id(n))
    return out


def imports(module: str) -> Iterator[tuple[ast.stmt, str, list[str]]]:
    """(node, imported module, names) for every run-time import of our own package."""
    tree = TREES[module]
    skip = type_checking_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            target = absolute(module, node)
            if target == TOP or target.startswith(TOP + "."):
                yield node, target[len(TOP) + 1:], [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith(TOP + "."):
                    yield node, a.name[len(TOP) + 1:], []


def edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for _node, target, names in imports(module):
            for name in names or [""]:
                full = f"{target}.{name}" if target and name else (target or name)
                dep = full if full in MODULES else target
                if dep in MODULES and dep != module:
                    graph[module].add(dep)
    return graph


def test_no_import_cycle() -> None:
    graph = edges()
    # packages' __init__ re-exports are not arrows of their own: a module may import its package
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(" -> ".join([*stack[stack.index(d):], d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_upward_import() -> None:
    bad = []
    for module in MODULES:
        here = area_of(module)
        for node, target, names in imports(module):
            for name in names or [""]:
                full = f"{target}.{name}" if target and name else (target or name)
                dep = full if full in MODULES else target
                there = area_of(dep)
                if there == here or there in ALLOWED[here]:
                    continue
                bad.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{node.lineno}: "
                           f"{here or TOP} may not import {dep} ({there or TOP})")
    assert not bad, "imports against the arrows:\n" + "\n".join(bad)


def test_no_private_name_across_modules() -> None:
    bad = []
    for module, tree in TREES.items():
        aliases: dict[str, str] = {}  # local name -> our module it names
        for node, target, _names in imports(module):
            if isinstance(node, ast.ImportFrom):
                for a in node.names:
                    full = f"{target}.{a.name}" if target else a.name
                    if full in MODULES:
                        aliases[a.asname or a.name] = full
                    elif a.name.startswith("_") and not a.name.startswith("__"):
                        bad.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{node.lineno}: "
                                   f"imports {target}.{a.name}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__") and aliases[node.value.id] != module):
                bad.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{node.lineno}: "
                           f"uses {aliases[node.value.id]}.{node.attr}")
    assert not bad, "private names used outside their module:\n" + "\n".join(bad)


def test_function_level_imports_say_why() -> None:
    bad = []
    for module, tree in TREES.items():
        lines = MODULES[module].read_text().splitlines()
        in_functions = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                        for n in ast.walk(f)}  # module-level try/if imports (a fallback) are top-level
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) not in in_functions:
                continue
            if node.module == "__future__" if isinstance(node, ast.ImportFrom) else False:
                continue
            here = lines[node.lineno - 1:node.end_lineno]
            before = lines[node.lineno - 2] if node.lineno > 1 else ""
            if not any("# lazy:" in line for line in [*here, before]):
                bad.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{node.lineno}: "
                           f"{ast.unparse(node)}")
    assert not bad, ("imports inside functions without a '# lazy: <why>' comment:\n" + "\n".join(bad))


def test_init_files_only_reexport() -> None:
    bad = []
    for module, tree in TREES.items():
        if not is_package(module) or module == "":
            continue  # pytest_pods/__init__.py keeps its lazy map of public names
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                continue  # the docstring
            if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] in (["__all__"],
                                                                                         ["pytest_plugins"]):
                continue  # declarations read by Python and by pytest, not code
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            bad.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{node.lineno}: {type(node).__name__}")
    assert not bad, "code in __init__.py (move it to a module and re-export):\n" + "\n".join(bad)


def test_no_engine_module_names_a_face() -> None:
    """No module name that hides what it is (issue 12)."""
    names = {p.stem for p in PACKAGE.rglob("*.py")}
    assert not names & {"init", "spawn", "transport", "check", "utils", "misc", "helpers"}


# What `import pytest_pods.cli` may load besides our own modules: the CLI starts on every `pods`
# command, so nothing heavy (pytest, tarfile, tempfile, ssl, http, email, requests) belongs on that
# path. Measured with `-S`: the development interpreter's site hooks (the editable-install finder)
# load tempfile and friends themselves and would hide them; a plain install's interpreter does not.
# The set is what the CLI loaded before the re-layout.
CLI_STDLIB_BUDGET = {
    "__future__", "_abc", "_codecs", "_collections", "_collections_abc", "_ctypes", "_frozen_importlib_external",
    "_functools", "_io", "_json", "_operator", "_sha256", "_signal", "_socket", "_sre", "_stat", "_struct",
    "_typing", "_winapi", "abc", "argparse", "codecs", "collections", "collections.abc", "contextlib", "copyreg",
    "ctypes", "ctypes._endian", "encodings", "encodings.aliases", "encodings.utf_8", "enum", "errno", "fcntl",
    "fnmatch", "functools", "gc", "genericpath", "gettext", "io", "ipaddress", "itertools", "json", "json.decoder",
    "json.encoder", "json.scanner", "keyword", "marshal", "math", "nt", "ntpath", "operator", "os", "pathlib",
    "posix", "posixpath", "re", "re._casefix", "re._compiler", "re._constants", "re._parser", "reprlib", "resource",
    "select", "signal", "stat", "struct", "time", "types", "typing", "urllib", "urllib.parse", "warnings",
    "zipimport", "zlib",
}


def test_cli_import_loads_nothing_heavy() -> None:
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    err = subprocess.run([sys.executable, "-S", "-X", "importtime", "-c", "import pytest_pods.cli"], env=env,
                         capture_output=True, text=True, check=True).stderr
    loaded = {line.split("|")[2].strip() for line in err.splitlines()[1:] if line.count("|") == 2}
    ours = sorted(m for m in loaded if m == TOP or m.startswith(TOP + "."))
    others = loaded - set(ours)
    assert others <= CLI_STDLIB_BUDGET, f"new modules on the CLI's start path: {sorted(others - CLI_STDLIB_BUDGET)}"
    # 15 modules before the re-layout, plus the new packages' empty __init__ files
    assert len(ours) <= 20, f"the CLI's start path imports {len(ours)} of our modules: {ours}"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
