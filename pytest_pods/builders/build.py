"""Executing a parsed Dockerfile: stages, steps, a layer cache, the image at the end.

Dockerfile text -> ``dockerfile.parse`` -> the stages the target needs -> one step per instruction,
each with a cache key (the parent's key + the instruction after expansion + the build args it
sees + the content digest of the files it reads) -> a layer (a diff, OCI whiteouts, fixed order
and metadata) or a config change -> the image config. ``RUN`` runs in a real container of the
engine, on the default bridge unless ``--network`` says otherwise, and its overlay upper dir is
the layer. A cached step does no work; concurrent builds of the same step (xdist workers) take a
file lock on its key, so it is built once and the others find it in the cache.
"""

from __future__ import annotations

import bz2
import collections
import contextlib
import gzip
import hashlib
import json
import lzma
import os
import re
import select
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

from pytest_pods.builders import bases
from pytest_pods.builders import context as ctx
from pytest_pods.builders import dockerfile as df
from pytest_pods.engine import linux
from pytest_pods.engine.image.reference import parse_reference
from pytest_pods.engine.image.store import (
    MEDIA_OCI_CONFIG,
    MEDIA_OCI_LAYER,
    MEDIA_OCI_MANIFEST,
    Image,
    Store,
    sha256_digest,
)
from pytest_pods.engine.locks import FileLock, lease
from pytest_pods.engine.runtime.commit import ENGINE_MOUNT_POINTS, exists_in, scrub_mount_points
from pytest_pods.engine.runtime.lifecycle import LABEL_OWNER, Runtime
from pytest_pods.engine.runtime.spec import Bind, ContainerSpec, lookup_user
from pytest_pods.engine.runtime.state import update_state
from pytest_pods.errors import BuildError, ContextError, ImageNotFoundError, PodsError

DEFAULT_SHELL = ["/bin/sh", "-c"]
PIPES = "/dev/pipes"
"""Where a RUN heredoc with a shebang is mounted as a file, as BuildKit does."""
PROXY_ARGS = frozenset(f"{name}_PROXY" if upper else f"{name.lower()}_proxy"
                       for name in ("HTTP", "HTTPS", "FTP", "NO", "ALL") for upper in (True, False))
"""BuildKit's predefined ARGs: given with --build-arg, RUN sees them without an ARG line."""
Progress = Callable[[str], None]


class StepFailedError(BuildError):
    """A RUN step exited non-zero. The message is what a user needs without ``-s`` or a scroll
    back (issue 15): the step, BuildKit's words for the failure, then the step's last
    :attr:`TAIL` lines of output::

        Dockerfile:3: RUN make: process "/bin/sh -c make" did not complete successfully: exit code: 2
        ------ the step's last 30 lines of output:
        ...
        ------
    """

    TAIL = 30
    LINE_MAX = 2000  # one runaway line (a progress bar, a minified file) cannot drown the rest

    def __init__(self, where: str, instruction: str, argv: Sequence[str], exit_code: int, tail: Sequence[str]) -> None:
        self.where, self.instruction, self.exit_code = where, instruction, exit_code
        self.argv = list(argv)
        self.tail = [line if len(line) <= self.LINE_MAX else line[:self.LINE_MAX] + " [...]" for line in tail]
        # Go's %q, as BuildKit prints it: process "/bin/sh -c exit 3" did not complete successfully
        step = " ".join(instruction.split())
        step = step if len(step) <= 200 else step[:200] + " [...]"
        msg = (f"{where}: {step}: process {json.dumps(' '.join(self.argv), ensure_ascii=False)} "
               f"did not complete successfully: exit code: {exit_code}")
        if self.tail:
            msg += (f"\n------ the step's last {len(self.tail)} lines of output:\n" if len(self.tail) > 1 else
                    "\n------ the step's output:\n") + "\n".join(self.tail) + "\n------"
        else:
            msg += " (no output)"
        super().__init__(msg)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.where, self.instruction, self.argv, self.exit_code, self.tail))


#: the instructions that change only the image's config (no layer)
CONFIG_ONLY = frozenset({"ENV", "LABEL", "CMD", "ENTRYPOINT", "EXPOSE", "VOLUME", "USER", "STOPSIGNAL", "SHELL",
                         "ONBUILD", "MAINTAINER", "HEALTHCHECK"})


class BuildOptions(NamedTuple):
    context: Path
    dockerfile: Path | None = None      # default: CONTEXT/Dockerfile
    tags: Sequence[str] = ()
    build_args: Mapping[str, str] = {}
    target: str | None = None
    no_cache: bool = False
    labels: Mapping[str, str] = {}
    network: str = "bridge"             # for RUN, unless RUN --network says otherwise
    progress: Progress | None = None
    extra_hosts: Sequence[str] = ()     # "NAME:IP" lines for RUN's /etc/hosts (docker build --add-host)
    cache_from: Sequence[str] | None = None  # images a step may be a cache hit of (only those, as docker's)
    stderr_progress: Progress | None = None  # RUN's standard error (default: with its output)
    secrets: Mapping[str, bytes] = {}   # id -> value for RUN --mount=type=secret (never in a layer or key)
    ssh: Mapping[str, str] = {}         # id -> an SSH agent socket on the host, for RUN --mount=type=ssh
    cache_import: Sequence[str] = ()    # build-cache directories to read first (--cache-from type=local,src=)
    cache_export: str | None = None     # a directory to write this build's cache to (--cache-to type=local,dest=)
    cache_import_refs: Sequence[str] = ()  # build caches in a registry (--cache-from type=registry,ref=)
    cache_export_ref: str | None = None    # a registry tag to push this build's cache to (--cache-to type=registry,ref=)
    base_image: Callable[[str], str] | None = None  # a FROM/--from image name -> the name that serves it (image aliases)


class _State:
    """A stage's image as it is being built: layers, config, history, cache key."""

    def __init__(self, layers: list[dict[str, Any]], diff_ids: list[str], config: dict[str, Any],
                 history: list[dict[str, Any]], key: str) -> None:
        self.layers = layers
        self.diff_ids = diff_ids
        self.config = config
        self.history = history
        self.key = key
        self.cmd_set = False  # CMD given in this stage (an ENTRYPOINT resets only an inherited one)
        self.created: str | None = None  # when the newest layer was made: a cached build keeps it

    def image(self) -> Image:
        """An in-memory image of this state (for RUN's container); nothing is recorded. Its VOLUMEs
        are left out: BuildKit mounts none in a RUN step (writes there stay in the layer)."""
        config = {k: v for k, v in self.config.items() if k != "Volumes"}
        cfg = {"architecture": "amd64", "os": "linux", "config": config,
               "rootfs": {"type": "layers", "diff_ids": self.diff_ids}}
        manifest = {"schemaVersion": 2, "mediaType": MEDIA_OCI_MANIFEST,
                    "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": "sha256:" + "0" * 64, "size": 0},
                    "layers": self.layers}
        return Image("", manifest, cfg)

    def copy(self) -> _State:
        other = _State(list(self.layers), list(self.diff_ids), json.loads(json.dumps(self.config)),
                       list(self.history), self.key)  # a stage built FROM another starts its own CMD rule
        other.created = self.created
        return other


def _sha(*parts: Any) -> str:
    return sha256_digest(json.dumps(parts, sort_keys=True, default=str).encode())[7:]


class Builder:
    """Builds images into one store, running RUN steps on one runtime."""

    def __init__(self, store: Store, runtime: Runtime) -> None:
        self.store = store
        self.runtime = runtime
        self.cache_dir = store.root / "build-cache"
        self.cache_dir.mkdir(exist_ok=True)
        self._walked: dict[Path, list[tuple[Any, ...]]] = {}  # per build: the context's metadata
        self._cache_from: list[Image] | None = None  # per build: the cache_from images found
        self._base_image: Callable[[str], str] = lambda name: name  # per build: opts.base_image

    # -- entry point ---------------------------------------------------------------------------
    def build(self, opts: BuildOptions) -> Image:
        self._walked = {}
        self._cache_from = None
        self._base_image = opts.base_image or (lambda name: name)
        self._used: dict[str, dict[str, Any]] = {}  # per build: the cache entries it made or found
        say = opts.progress or (lambda _line: None)
        for src in opts.cache_import:
            import_cache(self.store, Path(src), say)
        for ref in opts.cache_import_refs:
            import_cache_from_registry(self.store, ref, say)
        context = Path(opts.context).resolve()
        if not context.is_dir():
            raise BuildError(f"build: context {opts.context} is not a directory")
        dfile = Path(opts.dockerfile) if opts.dockerfile else context / "Dockerfile"
        if not dfile.is_absolute():
            dfile = context / dfile
        try:
            text = dfile.read_text()
        except OSError as exc:
            raise BuildError(f"build: read {dfile}: {exc.strerror}") from None
        parsed = df.parse(text, str(dfile.name if dfile.parent == context else dfile))
        ignore = ctx.IgnoreMatcher.from_file(context / ".dockerignore")
        meta = self._meta_args(parsed, opts.build_args)
        stages = parsed.stages
        target = self._target(parsed, opts.target)
        needed = self._needed(parsed, target, meta)
        total = sum(1 + len(s.instructions) for s in stages if s.index in needed)
        step = [0]
        built = self._build_stages(parsed, [s for s in stages if s.index in needed], meta, opts, context,
                                   ignore, say, step, total)
        image = self._commit_image(built[target], opts, say)
        if opts.cache_export:
            export_cache(self.store, Path(opts.cache_export), self._used, say)
        if opts.cache_export_ref:
            export_cache_to_registry(self.store, opts.cache_export_ref, self._used, say)
        return image

    def _build_stages(self, parsed: df.Dockerfile, todo: list[df.Stage], meta: dict[str, str],
                      opts: BuildOptions, context: Path, ignore: ctx.IgnoreMatcher, say: Progress,
                      step: list[int], total: int) -> dict[int, _State]:
        """Each stage as soon as the stages it reads are built: independent ones run at once."""
        built: dict[int, _State] = {}
        done = {s.index: threading.Event() for s in todo}
        failed: list[BaseException] = []
        lock = threading.Lock()

        def locked_say(line: str) -> None:
            with lock:
                say(line)

        def run(s: df.Stage) -> None:
            for dep in self._deps(parsed, s, meta):
                if dep in done:
                    done[dep].wait()
            try:
                if not failed:
                    built[s.index] = self._build_stage(parsed, s, meta, opts, context, ignore, built,
                                                       locked_say, step, total)
            except BaseException as exc:
                failed.append(exc)
            finally:
                done[s.index].set()

        if len(todo) == 1:
            run(todo[0])
        else:
            with ThreadPoolExecutor(max_workers=len(todo), thread_name_prefix="pods-stage") as pool:
                list(pool.map(run, todo))
        if failed:
            raise failed[0]
        return built

    def _deps(self, parsed: df.Dockerfile, s: df.Stage, meta: Mapping[str, str]) -> set[int]:
        """The earlier stages ``s`` reads: its FROM, COPY --from and RUN --mount from=."""
        deps = set()
        base = df.process_word(s.base, meta, parsed.escape, path=parsed.path, line=s.line)
        ref = self._stage_ref(parsed, base, s.index)
        if ref is not None:
            deps.add(ref)
        for ins in s.instructions:
            froms = list(ins.flags.get("from", []))
            for m in ins.flags.get("mount", []):
                froms += [kv.split("=", 1)[1] for kv in m.split(",") if kv.startswith("from=")]
            for f in froms:
                r = self._stage_ref(parsed, f, s.index)
                if r is not None:
                    deps.add(r)
        return deps

    # -- planning ------------------------------------------------------------------------------
    def _meta_args(self, parsed: df.Dockerfile, build_args: Mapping[str, str]) -> dict[str, str]:
        meta: dict[str, str] = {}
        for ins in parsed.meta_args:
            for k, default in df.parse_arg(ins.args[0] if ins.args else "", path=parsed.path, line=ins.line):
                if k in build_args:
                    meta[k] = build_args[k]
                elif default is not None:
                    meta[k] = df.process_word(default, meta, parsed.escape, path=parsed.path, line=ins.line)
        return meta

    def _target(self, parsed: df.Dockerfile, target: str | None) -> int:
        if target is None:
            return parsed.stages[-1].index
        for s in parsed.stages:
            if s.name == target.lower():
                return s.index
        raise BuildError(f"build: target stage {target!r} could not be found")

    def _stage_ref(self, parsed: df.Dockerfile, ref: str, before: int) -> int | None:
        """The index of the earlier stage ``ref`` names (by name or number), else None (an image)."""
        for s in parsed.stages[:before]:
            if s.name is not None and s.name == ref.lower():
                return s.index
        if ref.isdigit() and int(ref) < before:
            return int(ref)
        return None

    def _stage_of(self, parsed: df.Dockerfile, ins: df.Instruction) -> tuple[str, int]:
        """(name or "", index) of the stage an instruction belongs to."""
        for st in parsed.stages:
            if any(i is ins for i in st.instructions):
                return (st.name or "", st.index)
        return ("", -1)

    def _needed(self, parsed: df.Dockerfile, target: int, meta: Mapping[str, str]) -> set[int]:
        """The target and every stage it reaches: unneeded stages are not built."""
        need, todo = set(), [target]
        while todo:
            i = todo.pop()
            if i not in need:
                need.add(i)
                todo.extend(self._deps(parsed, parsed.stages[i], meta))
        return need

    # -- a stage -------------------------------------------------------------------------------
    def _base(self, parsed: df.Dockerfile, s: df.Stage, meta: Mapping[str, str],
              built: Mapping[int, _State], say: Progress) -> _State:
        base = df.process_word(s.base, meta, parsed.escape, path=parsed.path, line=s.line)
        ref = self._stage_ref(parsed, base, s.index)
        if ref is not None:
            return built[ref].copy()
        if base == "scratch":
            return _State([], [], {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                                   "WorkingDir": "/"}, [], _sha("scratch"))  # BuildKit's empty image
        try:
            base = self._base_image(base)
            img = self.store.get_image(base)
        except ImageNotFoundError:
            # not here: pulled, or bootstrapped for busybox and debian:SUITE (the rule: bases.py)
            img = bases.missing_base(self.store, base, f"{parsed.path}:{s.line}", say)
        except PodsError as exc:
            raise BuildError(f"{parsed.path}:{s.line}: FROM {base}: {exc}") from None
        cfg = dict(img.config.get("config") or {})
        state = _State(img.layers, img.diff_ids, cfg, list(img.config.get("history") or []), _sha("image", img.id))
        state.created = img.config.get("created")
        return state

    def _build_stage(self, parsed: df.Dockerfile, s: df.Stage, meta: dict[str, str], opts: BuildOptions,
                     context: Path, ignore: ctx.IgnoreMatcher, built: dict[int, _State], say: Progress,
                     step: list[int], total: int) -> _State:
        step[0] += 1
        say(f"Step {step[0]}/{total} : FROM {s.base}" + (f" AS {s.name}" if s.name else ""))
        state = self._base(parsed, s, meta, built, say)
        args: dict[str, str] = {}  # ARGs declared in this stage, with their values
        triggers = list(state.config.pop("OnBuild", None) or [])
        instructions = [self._trigger(parsed, t, s.line) for t in triggers] + list(s.instructions)
        for ins in instructions:
            if ins not in s.instructions:
                say(f"# Executing ONBUILD trigger: {ins.original}")
            else:
                step[0] += 1
                say(f"Step {step[0]}/{total} : {ins.original}")
            t0 = time.monotonic()
            hit = self._step(parsed, ins, state, args, meta, opts, context, ignore, built, say)
            say(" ---> Using cache" if hit else f" ---> done in {time.monotonic() - t0:.2f}s")
        return state

    def _trigger(self, parsed: df.Dockerfile, text: str, line: int) -> df.Instruction:
        sub = df.parse(f"FROM scratch\n{text}\n", parsed.path)
        ins = sub.stages[0].instructions[0]
        return ins._replace(line=line, end_line=line)

    # -- a step --------------------------------------------------------------------------------
    def _env(self, state: _State, args: Mapping[str, str]) -> dict[str, str]:
        """The step's environment as BuildKit keeps it: one list where each ENV and each ARG with a
        value sets its name in the order they come (an ENV drops the stage's ARG of that name from
        ``args``, so the later of the two wins: ARG V after ENV V is what RUN sees)."""
        env = {}
        for e in state.config.get("Env") or []:
            k, _, v = e.partition("=")
            env[k] = v
        env.update(args)
        return env

    def _step(self, parsed: df.Dockerfile, ins: df.Instruction, state: _State, args: dict[str, str],
              meta: Mapping[str, str], opts: BuildOptions, context: Path, ignore: ctx.IgnoreMatcher,
              built: Mapping[int, _State], say: Progress) -> bool:
        """Apply one instruction to ``state``; True when the result came from the cache."""
        where = f"{parsed.path}:{ins.line}"
        cmd = ins.cmd
        env = self._env(state, args)
        raw = ins.args[0] if ins.args and not ins.json else ""

        def word(text: str) -> str:
            return df.process_word(text, env, parsed.escape, path=parsed.path, line=ins.line)

        def words(text: str) -> list[str]:
            return df.process_words(text, env, parsed.escape, path=parsed.path, line=ins.line)

        cfg = state.config
        if cmd == "ARG":
            for k, default in df.parse_arg(raw, path=parsed.path, line=ins.line):
                if k in opts.build_args:
                    args[k] = opts.build_args[k]
                elif k in meta and default is None:
                    args[k] = meta[k]
                elif default is not None:
                    args[k] = word(default)
                # else: declared without a value and none given: BuildKit leaves it unset
            state.key = _sha(state.key, "ARG", sorted(args.items()))
            return False
        if cmd in ("ENV", "LABEL"):
            pairs = df.parse_kv(raw, cmd, env, parsed.escape, path=parsed.path, line=ins.line)
            if cmd == "ENV":
                current = dict(e.partition("=")[::2] for e in cfg.get("Env") or [])
                current.update(pairs)
                cfg["Env"] = [f"{k}={v}" for k, v in current.items()]
                for k, _v in pairs:
                    args.pop(k, None)  # this ENV comes after the stage's ARG of that name: it wins
            else:
                cfg.setdefault("Labels", {}).update(pairs)
            return self._meta(state, ins, env, opts)
        if cmd in ("CMD", "ENTRYPOINT"):
            shell = cfg.get("Shell") or DEFAULT_SHELL
            value = list(ins.args) if ins.json else [*shell, raw]
            cfg["Cmd" if cmd == "CMD" else "Entrypoint"] = value
            if cmd == "ENTRYPOINT" and "Cmd" in cfg and not state.cmd_set:
                cfg["Cmd"] = None  # a new ENTRYPOINT resets an inherited CMD, as docker does
            if cmd == "CMD":
                state.cmd_set = True
            return self._meta(state, ins, env, opts)
        if cmd == "EXPOSE":
            for p in words(raw):
                port, _, proto = p.partition("/")
                first, dash, last = port.partition("-")
                if dash and first.isdigit() and last.isdigit() and int(first) <= int(last):
                    ports = [str(n) for n in range(int(first), int(last) + 1)]  # 9000-9002: three ports
                else:
                    ports = [port]
                for one in ports:
                    cfg.setdefault("ExposedPorts", {})[f"{one}/{(proto or 'tcp').lower()}"] = {}
            return self._meta(state, ins, env, opts)
        if cmd == "VOLUME":
            vols = list(ins.args) if ins.json else words(raw)
            for v in vols:
                cfg.setdefault("Volumes", {})[v] = {}
            return self._meta(state, ins, env, opts)
        if cmd == "USER":
            cfg["User"] = word(raw)
            return self._meta(state, ins, env, opts)
        if cmd == "STOPSIGNAL":
            cfg["StopSignal"] = word(raw)
            return self._meta(state, ins, env, opts)
        if cmd == "SHELL":
            if not ins.json:
                raise BuildError(f"{where}: SHELL requires the arguments in JSON form")
            cfg["Shell"] = list(ins.args)
            return self._meta(state, ins, env, opts)
        if cmd == "ONBUILD":
            # the trigger as written, heredoc bodies included (BuildKit keeps them in the expression)
            cfg.setdefault("OnBuild", []).append("\n".join(
                [raw, *(part for h in ins.heredocs for part in (h.content.removesuffix("\n"), h.name) if part or h.content)]))
            return self._meta(state, ins, env, opts)
        if cmd == "MAINTAINER":
            return self._meta(state, ins, env, opts)
        if cmd == "HEALTHCHECK":
            cfg["Healthcheck"] = self._healthcheck(ins, raw, cfg, where)
            return self._meta(state, ins, env, opts)
        if cmd == "WORKDIR":
            path = word(raw)
            if not path.startswith("/"):
                path = os.path.join(cfg.get("WorkingDir") or "/", path)
            cfg["WorkingDir"] = os.path.normpath(path)
            user = cfg.get("User") or ""
            return self._layer_step(state, ins, ("WORKDIR", cfg["WorkingDir"], user), opts,
                                    lambda stage, view: self._workdir(stage, view, cfg["WorkingDir"], user, where), say)
        if cmd == "RUN":
            return self._run(parsed, ins, state, args, env, opts, context, built, say)
        if cmd in ("COPY", "ADD"):
            return self._copy(parsed, ins, state, env, opts, context, ignore, built, say)
        raise BuildError(f"{where}: {cmd} is not supported yet")

    def _meta(self, state: _State, ins: df.Instruction, env: Mapping[str, str], opts: BuildOptions) -> bool:
        """A config-only step: no layer, a history entry, a new key. Recorded in the cache as
        docker's classic builder does (its config-only steps are cache hits, "Using cache", too;
        with ``cache_from`` only when one of those images holds it)."""
        key = _sha(state.key, ins.cmd, ins.args, ins.flags, sorted(env.items()) if ins.cmd in ("ENV", "LABEL") else None)
        if opts.cache_from is None and opts.no_cache:
            state.key = key
            state.history.append({"created_by": ins.original, "empty_layer": True})
            return False
        return self._cached_step(state, ins, key, opts, lambda: None)

    def _healthcheck(self, ins: df.Instruction, raw: str, cfg: Mapping[str, Any], where: str) -> dict[str, Any]:
        def duration(name: str, default: int) -> int:
            v = (ins.flags.get(name) or [""])[-1]
            if not v:
                return default
            units = {"ns": 1, "us": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
            total, num = 0, ""
            i = 0
            while i < len(v):
                if v[i].isdigit() or v[i] == ".":
                    num += v[i]
                    i += 1
                    continue
                unit = next((u for u in ("ns", "us", "ms", "s", "m", "h") if v.startswith(u, i)), None)
                if unit is None or not num:
                    raise BuildError(f"{where}: HEALTHCHECK --{name}: bad duration {v!r}")
                total += int(float(num) * units[unit])
                num, i = "", i + len(unit)
            if num:
                raise BuildError(f"{where}: HEALTHCHECK --{name}: bad duration {v!r} (missing unit)")
            return total

        kind = (ins.args[0] if ins.args else "").upper()  # the parser puts the type word first
        if kind == "NONE":
            return {"Test": ["NONE"]}
        if kind != "CMD" or len(ins.args) < 2:
            raise BuildError(f"{where}: HEALTHCHECK: expected CMD or NONE")
        test = ["CMD", *ins.args[1:]] if ins.json else ["CMD-SHELL", ins.args[1]]
        retries = (ins.flags.get("retries") or ["0"])[-1] or "0"
        if not retries.isdigit():
            raise BuildError(f"{where}: HEALTHCHECK --retries: {retries!r} is not a number")
        out: dict[str, Any] = {"Test": test}
        for name, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod"),
                          ("start-interval", "StartInterval")):
            d = duration(name, 0)
            if d:
                out[key] = d
        if int(retries):
            out["Retries"] = int(retries)
        return out

    # -- layers --------------------------------------------------------------------------------
    def _cached(self, key: str) -> dict[str, Any] | None:
        try:
            entry: dict[str, Any] = json.loads((self.cache_dir / f"{key}.json").read_text())
        except (OSError, ValueError):
            return None
        if entry.get("layer") and not self.store.has_blob(entry["layer"]["digest"]):
            return None  # its blob was garbage-collected
        return entry

    def _lookup(self, state: _State, ins: df.Instruction, key: str, opts: BuildOptions) -> dict[str, Any] | None:
        """The cache entry for this step. With ``cache_from`` (docker build --cache-from), as
        docker's classic builder: only a step one of those images holds is a hit (the same
        history up to here and the same instruction next), from the image's own layer; an
        image that is not there holds nothing."""
        entry = self._cached(key)
        if opts.cache_from is None:
            return entry
        n = len(state.history)
        done = [h.get("created_by") for h in state.history]
        for img in self._cache_images(opts.cache_from):
            hist = img.config.get("history") or []
            if n >= len(hist) or [h.get("created_by") for h in hist[:n]] != done:
                continue
            if hist[n].get("created_by") != ins.original or img.diff_ids[:len(state.diff_ids)] != state.diff_ids:
                continue
            want: dict[str, Any] | None = None
            if not hist[n].get("empty_layer"):
                i = len(state.layers)
                if i >= len(img.layers) or img.layers[i]["digest"] != img.diff_ids[i]:
                    continue  # a compressed layer (pulled): not a layer of this builder's
                want = dict(img.layers[i])
            if entry is not None and (entry.get("layer") or {}).get("digest") != (want or {}).get("digest"):
                continue  # this key made something else here
            return {"layer": want, "created": img.config.get("created")}
        return None

    def _cache_images(self, refs: Sequence[str]) -> list[Image]:
        """The ``cache_from`` images that are here (resolved once per build)."""
        if self._cache_from is None:
            self._cache_from = []
            for ref in refs:
                with contextlib.suppress(PodsError):
                    self._cache_from.append(self.store.get_image(ref))
        return self._cache_from

    def _record(self, key: str, entry: dict[str, Any]) -> None:
        entry.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        tmp = self.cache_dir / f".{key}.{lease()}-"  # a killed build's is released by the reaper
        tmp.write_text(json.dumps(entry))
        os.rename(tmp, self.cache_dir / f"{key}.json")

    def _apply(self, state: _State, entry: dict[str, Any], key: str, ins: df.Instruction) -> None:
        self._used[key] = entry
        if entry.get("layer"):
            state.layers.append(entry["layer"])
            state.diff_ids.append(entry["layer"]["digest"])
            self.store.ensure_snapshot(entry["layer"]["digest"], entry["layer"]["digest"])
        state.history.append({"created_by": ins.original, **({} if entry.get("layer") else {"empty_layer": True})})
        state.key = key
        if ins.cmd not in CONFIG_ONLY:  # the image's time is its newest layer's, as before config steps were cached
            state.created = entry.get("created") or state.created

    def _cached_step(self, state: _State, ins: df.Instruction, key: str, opts: BuildOptions,
                     make_layer: Callable[[], dict[str, Any] | None]) -> bool:
        """The one cache protocol of every layer step: look, then lock the key and look again
        (a concurrent build may have made it meanwhile), else make and record the layer.
        True when the result came from the cache."""
        if not opts.no_cache and (entry := self._lookup(state, ins, key, opts)) is not None:
            self._apply(state, entry, key, ins)
            return True
        with FileLock(str(self.cache_dir / f"{key}.lock")):
            if not opts.no_cache and (entry := self._lookup(state, ins, key, opts)) is not None:
                self._apply(state, entry, key, ins)
                return True
            entry = {"layer": make_layer()}
            self._record(key, entry)
        self._apply(state, entry, key, ins)
        return False

    def _layer_step(self, state: _State, ins: df.Instruction, what: Any, opts: BuildOptions,
                    make: Callable[[Path, Path], list[str]], say: Progress) -> bool:
        """A step whose result is a layer made by ``make(stage_dir, view_of_current_rootfs)``;
        ``make`` returns the directories it only passes through, which keep the image's metadata."""

        def make_layer() -> dict[str, Any] | None:
            with tempfile.TemporaryDirectory(dir=self.store.tmp, prefix=f"build-{lease()}-") as tmp:
                stage_dir = Path(tmp) / "layer"
                stage_dir.mkdir()
                with self._view(state, Path(tmp) / "view") as view:
                    through = make(stage_dir, view)
                    _copy_parent_metadata(stage_dir, view, through)
                return self._commit_dir(stage_dir, overlay_upper=False)

        return self._cached_step(state, ins, _sha(state.key, what), opts, make_layer)

    def _commit_dir(self, src: Path, *, overlay_upper: bool) -> dict[str, Any] | None:
        """A directory as a layer blob (+ its snapshot); None when it holds nothing."""
        if not any(src.iterdir()):
            return None
        epoch = int(os.environ["SOURCE_DATE_EPOCH"]) if os.environ.get("SOURCE_DATE_EPOCH", "").isdigit() else None
        # lazy: tarfile, only when a layer is made (a cached build and the store's gc never need it)
        from pytest_pods.engine.image.layers import write_layer

        with self.store.blob_writer() as w:
            write_layer(src, w, source_date_epoch=epoch, overlay_upper=overlay_upper)
        self.store.ensure_snapshot(w.digest, w.digest)
        return {"mediaType": MEDIA_OCI_LAYER, "digest": w.digest, "size": w.size}

    @contextlib.contextmanager
    def _view(self, state: _State, where: Path) -> Iterator[Path]:
        """The state's merged filesystem, read-only, at ``where`` (an overlay of its snapshots)."""
        where.mkdir()
        lowers = list(dict.fromkeys([str(self.store.ensure_snapshot(d, layer["digest"])) for d, layer in
                                     zip(state.diff_ids, state.layers, strict=False)][::-1]))  # once each, as Store.lower_dirs
        if not lowers:
            yield where
            return
        if len(lowers) == 1:
            linux.mount(lowers[0], str(where), None, linux.MS_BIND)
            linux.mount(None, str(where), None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY)
        else:
            linux.mount("overlay", str(where), "overlay", linux.MS_RDONLY, "lowerdir=" + ":".join(lowers))
        try:
            yield where
        finally:
            linux.umount(str(where), linux.MNT_DETACH)

    def _workdir(self, stage_dir: Path, view: Path, path: str, user: str, where: str) -> list[str]:
        """BuildKit's WORKDIR: the missing directories made (0755) as the current USER, so that user
        can write there; through the image's symlinks, inside its root."""
        path = _resolve_in(view, path)
        uid = gid = 0
        if user and not exists_in(view, path):
            try:
                uid, gid = _owner(user, view)
            except PodsError as exc:
                raise BuildError(f"{where}: WORKDIR: {exc}") from None
        _make_dirs(stage_dir, view, path, uid, gid)
        return _ancestors(path)

    # -- RUN -----------------------------------------------------------------------------------
    def _run(self, parsed: df.Dockerfile, ins: df.Instruction, state: _State, args: Mapping[str, str],
             env: Mapping[str, str], opts: BuildOptions, context: Path, built: Mapping[int, _State],
             say: Progress) -> bool:
        where = f"{parsed.path}:{ins.line}"
        shell = state.config.get("Shell") or DEFAULT_SHELL
        script = _shebang_script(ins)
        if script is not None:
            # BuildKit: a lone heredoc that starts with #! is a file (0755) under /dev/pipes, run by
            # the shell as a command, so its own interpreter runs it
            argv = [*shell, f"{PIPES}/{ins.heredocs[0].name}"]
        elif ins.heredocs:
            argv = [*shell, _heredoc_script(ins)]
        elif ins.json:
            argv = list(ins.args)
        else:
            argv = [*shell, ins.args[0]]
        network = (ins.flags.get("network") or [opts.network])[-1] or opts.network
        if network == "default":
            network = opts.network
        # the step's env: ARG values over the image's (they are not the image's), in BuildKit's order;
        # the predefined proxy args given with --build-arg reach RUN undeclared, outside the cache key
        run_env = [f"{k}={v}" for k, v in env.items()]
        run_env += [f"{k}={v}" for k, v in opts.build_args.items() if k in PROXY_ARGS and k not in env]
        key = _sha(state.key, "RUN", argv, sorted(args.items()), ins.flags.get("mount", []), network,
                   *([script] if script is not None else []))

        def make_layer() -> dict[str, Any] | None:
            with contextlib.ExitStack() as mounts:
                binds = self._bind_mounts(parsed, ins, context, built, mounts, where)
                secret_binds, secret_env = self._secret_mounts(ins, opts, mounts, where)
                binds += secret_binds
                if script is not None:
                    pipes = Path(mounts.enter_context(tempfile.TemporaryDirectory(dir=self.store.tmp,
                                                                                  prefix=f"pipes-{lease()}-")))
                    (pipes / ins.heredocs[0].name).write_text(script)
                    os.chmod(pipes / ins.heredocs[0].name, 0o755)
                    os.chmod(pipes, 0o755)
                    binds.append(Bind(str(pipes), PIPES, True))
                return self._run_container(where, ins, state, argv, run_env + secret_env, network, say, binds, opts)

        return self._cached_step(state, ins, key, opts, make_layer)

    def _bind_mounts(self, parsed: df.Dockerfile, ins: df.Instruction, context: Path,
                     built: Mapping[int, _State], mounts: contextlib.ExitStack, where: str) -> list[Any]:
        """``RUN --mount=type=bind``: a context path, or a path of a stage or image, read-only
        unless ``rw`` (then writes are thrown away: the source is a scratch copy's view)."""
        out = []
        for m in ins.flags.get("mount", []):
            opts = {k: v for k, _, v in (kv.partition("=") for kv in m.split(","))}  # a bare "rw": {"rw": ""}
            kind = opts.get("type", "bind")
            if kind not in ("bind", "cache", "tmpfs", "secret", "ssh"):
                raise BuildError(f"{where}: RUN --mount=type={kind} is not supported (bind, cache, tmpfs, secret, ssh are)")
            if kind != "bind":
                continue
            source = os.path.normpath("/" + opts.get("source", opts.get("src", ".")))
            root = context
            if opts.get("from"):
                ref = self._stage_ref(parsed, opts["from"], len(parsed.stages))
                if ref is not None and ref in built:
                    src_state = built[ref]
                else:
                    try:
                        img = self.store.get_image(opts["from"])
                    except PodsError as exc:
                        raise BuildError(f"{where}: RUN --mount from={opts['from']}: {exc}") from None
                    src_state = _State(img.layers, img.diff_ids, {}, [], "")
                tmp = Path(mounts.enter_context(tempfile.TemporaryDirectory(dir=self.store.tmp, prefix=f"mnt-{lease()}-")))
                root = mounts.enter_context(self._view(src_state, tmp / "view"))
            host = root / source.lstrip("/") if source != "/" else root
            if not (host.exists() or host.is_symlink()) or host.is_symlink():
                raise BuildError(f"{where}: RUN --mount source {source!r}: not found (or a symlink)")
            out.append(Bind(str(host), self._mount_target(m), "rw" not in opts and "readwrite" not in opts))
        return out

    def _run_container(self, where: str, ins: df.Instruction, state: _State, argv: list[str],
                       env: list[str], network: str, say: Progress, binds: list[Any],
                       opts: BuildOptions) -> dict[str, Any] | None:
        spec = ContainerSpec(
            image="<build>", command=argv, entrypoint=[""], env=env, network=network,
            tmpfs=[self._mount_target(m) for m in ins.flags.get("mount", []) if "type=tmpfs" in m],
            binds=[*self._cache_mounts(ins), *binds],
            labels={LABEL_OWNER: lease()},  # the step dies with this builder (issue 14)
        )
        cid = self.runtime.create(spec, state.image())
        if opts.extra_hosts:
            add_extra_hosts(self.runtime.dir / cid, opts.extra_hosts)
        say(f" ---> Running in {cid[:12]}")
        say_err = opts.stderr_progress or say
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            try:
                handle = self.runtime.start(cid, attach=(out_w, err_w))
            finally:
                os.close(out_w)
                os.close(err_w)
            tail: collections.deque[str] = collections.deque(maxlen=StepFailedError.TAIL)
            bufs = {out_r: b"", err_r: b""}
            sinks = {out_r: say, err_r: say_err}
            while bufs:
                ready, _, _ = select.select(list(bufs), [], [])
                for fd in ready:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        if bufs[fd]:
                            tail.append(bufs[fd].decode(errors="replace"))
                            sinks[fd](tail[-1])
                        del bufs[fd]
                        continue
                    *lines, bufs[fd] = (bufs[fd] + chunk).split(b"\n")
                    for line in lines:
                        tail.append(line.decode(errors="replace"))
                        sinks[fd](tail[-1])
            code = handle.wait()
            if code != 0:
                raise StepFailedError(where, ins.original, argv, code, list(tail))
            upper = self.runtime.dir / cid / "upper"
            targets = [*(self._mount_target(m) for m in ins.flags.get("mount", []) if "type=ssh" not in m.split(",")),
                       *(self._mount_target(m) for m in self._ssh_specs(ins))]
            self._scrub_mount_points(state, upper, [*targets, *(a for t in targets for a in _ancestors(t))])
            return self._commit_dir(upper, overlay_upper=True)
        finally:
            os.close(out_r)
            os.close(err_r)
            with contextlib.suppress(PodsError):
                self.runtime.remove(cid, force=True)

    def _scrub_mount_points(self, state: _State, upper: Path, extra: Sequence[str] = ()) -> None:
        """Mount targets the engine made for the step (absent from the image, still empty) are no
        part of its layer: docker's layers do not carry /etc/hosts stubs either."""
        lowers = list(dict.fromkeys([str(self.store.ensure_snapshot(d, layer["digest"])) for d, layer in
                                     zip(state.diff_ids, state.layers, strict=False)][::-1]))
        scrub_mount_points(upper, lowers, self.store.tmp, [*ENGINE_MOUNT_POINTS, *extra])

    def _mount_target(self, m: str) -> str:
        opts = dict(kv.split("=", 1) for kv in m.split(",") if "=" in kv)
        target = opts.get("target") or opts.get("dst") or opts.get("destination")
        if not target and opts.get("type") == "secret":
            return f"/run/secrets/{opts.get('id', '')}"
        if not target and opts.get("type") == "ssh":
            return f"/run/buildkit/ssh_agent.{int(opts.get('_n', '0'))}"
        return target or "/"

    def _ssh_specs(self, ins: df.Instruction) -> list[str]:
        """The step's ``type=ssh`` mounts, each with its index (``_n``) for the default target."""
        specs = [m for m in ins.flags.get("mount", []) if "type=ssh" in m.split(",")]
        return [f"{m},_n={i}" for i, m in enumerate(specs)]

    def _secret_mounts(self, ins: df.Instruction, opts: BuildOptions, mounts: contextlib.ExitStack,
                       where: str) -> tuple[list[Any], list[str]]:
        """``RUN --mount=type=secret,id=ID[,target=,env=,required=,mode=,uid=,gid=]``, as BuildKit:
        the value given for ID (``BuildOptions.secrets``) as a read-only file at ``target``
        (default /run/secrets/ID, mode 0400, root's) and/or in the variable ``env`` (then no file
        unless ``target`` is given); a missing secret is skipped unless ``required``. The value is
        in no layer (the file is a bind from outside the root and its mount point is scrubbed), no
        cache key and no output. ``type=ssh[,id=default,target=,required=]``: the host's agent
        socket given for ``id`` (``BuildOptions.ssh``), bound at ``target`` (default
        /run/buildkit/ssh_agent.N), ``SSH_AUTH_SOCK`` naming the first. Returns (binds, env)."""
        binds: list[Any] = []
        env: list[str] = []
        for m in self._ssh_specs(ins):
            kv = {k: v for k, _, v in (part.partition("=") for part in m.split(","))}
            sid = kv.get("id") or "default"
            sock = opts.ssh.get(sid)
            if sock is None:
                if kv.get("required", "false") in ("", "true", "1"):
                    raise BuildError(f"{where}: no SSH agent socket {sid!r}: pass one with --ssh {sid}[=SOCKET]")
                continue
            target = self._mount_target(m)
            binds.append(Bind(sock, target, False))
            if not any(e.startswith("SSH_AUTH_SOCK=") for e in env):
                env.append(f"SSH_AUTH_SOCK={target}")  # BuildKit: the first ssh mount's socket
        for m in ins.flags.get("mount", []):
            kv = {k: v for k, _, v in (part.partition("=") for part in m.split(","))}
            if kv.get("type") != "secret":
                continue
            given_target = kv.get("target") or kv.get("dst") or kv.get("destination")
            sid = kv.get("id") or (os.path.basename(given_target) if given_target else "")
            if not sid:
                raise BuildError(f"{where}: RUN --mount=type=secret needs id= (or target=)")
            required = kv.get("required", "false") in ("", "true", "1")
            value = opts.secrets.get(sid)
            if value is None:
                if required:
                    raise BuildError(f"{where}: secret {sid} not found: pass it with --secret id={sid},src=FILE "
                                     f"(or images.build(secrets={{{sid!r}: ...}}))")
                continue
            if kv.get("env"):
                env.append(f"{kv['env']}={value.decode(errors='replace')}")
                if not given_target:
                    continue
            try:
                mode = int(kv.get("mode", "0400"), 8)
                uid, gid = int(kv.get("uid", "0")), int(kv.get("gid", "0"))
            except ValueError:
                raise BuildError(f"{where}: RUN --mount=type=secret: mode, uid and gid are numbers") from None
            tmp = Path(mounts.enter_context(tempfile.TemporaryDirectory(dir=self.store.tmp, prefix=f"secret-{lease()}-")))
            f = tmp / "secret"
            fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(value)
            os.chown(f, uid, gid)
            os.chmod(f, mode)
            binds.append(Bind(str(f), self._mount_target(m), True))
        return binds, env

    def _cache_mounts(self, ins: df.Instruction) -> list[Any]:
        """``RUN --mount=type=cache``: a directory kept between builds under the root, bind-mounted."""
        out = []
        for m in ins.flags.get("mount", []):
            opts = dict(kv.split("=", 1) for kv in m.split(",") if "=" in kv)
            if opts.get("type") != "cache":
                continue
            target = self._mount_target(m)
            cache_id = opts.get("id") or target
            d = self.store.root / "build-mounts" / sha256_digest(cache_id.encode())[7:23]
            d.mkdir(parents=True, exist_ok=True)
            out.append(Bind(str(d), target, opts.get("readonly") in ("true", "") and "readonly" in opts))
        return out

    # -- COPY / ADD ----------------------------------------------------------------------------
    def _copy(self, parsed: df.Dockerfile, ins: df.Instruction, state: _State, env: Mapping[str, str],
              opts: BuildOptions, context: Path, ignore: ctx.IgnoreMatcher, built: Mapping[int, _State],
              say: Progress) -> bool:
        where = f"{parsed.path}:{ins.line}"

        def proc(text: str) -> str:
            return df.process_word(text, env, parsed.escape, path=parsed.path, line=ins.line)

        if ins.heredocs:
            words = df.process_words(ins.args[0], env, parsed.escape, path=parsed.path, line=ins.line)
            dest = next((w for w in reversed(words) if not w.startswith("<<")), None)
            if dest is None:
                raise BuildError(f"{where}: {ins.cmd} with a heredoc needs a destination")
            files = [(h.name, _expand_heredoc(h.content, env, parsed, ins.line) if h.expand else h.content)
                     for h in ins.heredocs]
            sources: list[str] = []
        else:
            words = [proc(a) for a in ins.args] if ins.json else df.process_words(ins.args[0], env, parsed.escape,
                                                                      path=parsed.path, line=ins.line)
            if len(words) < 2:
                raise BuildError(f"{where}: {ins.cmd} requires at least two arguments, but only one was provided")
            *sources, dest = words
            files = []
        if ins.flags.get("exclude"):
            raise BuildError(f"{where}: {ins.cmd} --exclude is not supported yet")
        chown = proc((ins.flags.get("chown") or [""])[-1])  # BuildKit expands --chown and --chmod
        chmod = proc((ins.flags.get("chmod") or [""])[-1])
        if chmod and _chmod_fn(chmod) is None:
            raise BuildError(f"{where}: invalid chmod parameter: '{chmod}'. it should be octal string and "
                             "between 0 and 07777, or symbolic as chmod's (u+x,go-w)")
        parents = "parents" in ins.flags
        from_ref = (ins.flags.get("from") or [""])[-1]
        src_state: _State | None = None
        if from_ref:
            own_name, own_index = self._stage_of(parsed, ins)
            if (own_name and from_ref.lower() == own_name) or from_ref == str(own_index):
                raise BuildError(f"{where}: {ins.cmd} --from={from_ref}: a stage cannot copy from itself "
                                 "(circular dependency)")
            ref = self._stage_ref(parsed, proc(from_ref), len(parsed.stages))
            if ref is not None and ref in built:
                src_state = built[ref]
            else:
                try:
                    img = self.store.get_image(self._base_image(proc(from_ref)))
                except ImageNotFoundError:  # an image, as for FROM: pulled or bootstrapped (bases.py)
                    img = bases.missing_base(self.store, proc(from_ref), where, say, f"{ins.cmd} --from={from_ref}")
                except PodsError as exc:
                    raise BuildError(f"{where}: {ins.cmd} --from={from_ref}: {exc}") from None
                src_state = _State(img.layers, img.diff_ids, {}, [], _sha("image", img.id))
        checksum = (ins.flags.get("checksum") or [""])[-1]
        if src_state is not None:
            content_key: Any = ("from", src_state.key, sources)
        elif files:
            content_key = ("heredoc", files)
        else:
            urls = [s for s in sources if _is_url(s)]
            if urls and ins.cmd == "COPY":
                raise BuildError(f"{where}: COPY does not fetch URLs: use ADD")
            locals_ = [s for s in sources if not _is_url(s)]
            try:
                matched = [ctx.match_sources(context, s, ignore, instruction=ins.cmd, allow_empty=True) for s in locals_]
            except ContextError as exc:
                raise BuildError(f"{where}: {exc}") from None
            # a symlink source is copied as what it points to: its target's content is an input too
            flat = sorted({r for ms in matched for m in ms for r in (m, _follow(context, m))})
            content_key = ("context", locals_, self._content_digest(context, flat, ignore), urls, checksum)
        what = (ins.cmd, content_key, dest, chown, chmod, parents, state.config.get("WorkingDir"))

        def make(stage_dir: Path, view: Path) -> list[str]:
            target = dest if dest.startswith("/") else os.path.join(state.config.get("WorkingDir") or "/", dest)
            # a destination through a symlink of the image resolves inside the image's root, never the host's
            slash = target.endswith("/")
            target = _resolve_in(view, target)
            target += "/" if slash and target != "/" else ""
            through = _ancestors(target) + ([target] if _is_dir_in(view, target) else [])
            uid = gid = None
            if chown:
                try:
                    uid, gid = _owner(chown, view)
                except PodsError as exc:
                    raise BuildError(f"{where}: {ins.cmd} --chown={chown}: {exc}") from None
            # the directories the copy creates on the way: 0755, owned as --chown says (BuildKit's mkdir -p)
            _make_dirs(stage_dir, view, os.path.dirname(target.rstrip("/")) or "/", uid, gid)
            if files:
                many = len(files) > 1 or dest.endswith("/")
                for name, content in files:
                    path = os.path.join(target, name) if many or _is_dir_in(view, target) else target
                    out = _stage_path(stage_dir, path)
                    _make_dirs(stage_dir, view, os.path.dirname(path), uid, gid)
                    out.write_text(content)
                    _set_meta(out, uid, gid, _apply_chmod(chmod, 0o644, False))
                return through
            if src_state is not None:
                with self._view(src_state, stage_dir.parent / "from") as src_root:
                    matched = _match_in(src_root, sources, where, ins.cmd)
                    _copy_sources(src_root, matched, stage_dir, view, target, uid, gid, chmod, parents,
                                  extract=False, keep_owner=True, many=len(sources) > 1)
                return through
            local = [s for s in sources if not _is_url(s)]
            matched = sorted({m for s in local for m in ctx.match_sources(context, s, ignore, instruction=ins.cmd,
                                                                          allow_empty=True)})
            _copy_sources(context, matched, stage_dir, view, target, uid, gid, chmod, parents,
                          extract=ins.cmd == "ADD", ignore=ignore, many=len(sources) > 1)
            for url in [s for s in sources if _is_url(s)]:
                _fetch(url, checksum, stage_dir, view, target, uid, gid, chmod, where)
            return through

        return self._layer_step(state, ins, what, opts, make, say)

    def _content_digest(self, context: Path, rels: list[str], ignore: ctx.IgnoreMatcher) -> str:
        """ctx.digest_paths, remembered by the files' metadata: a rebuild with nothing changed
        reads no file content (a 50 MB COPY would otherwise cost ~35 ms of hashing each time).
        The signature holds inode, size, mtime and ctime: ctime changes with any write or chmod
        and cannot be set back by a user, so a changed file never keeps its old digest."""
        entries = self._walked.get(context)
        if entries is None:
            entries = []
            for rel in ctx.walk(context, ignore):
                st = os.lstat(context / rel)
                entries.append((rel, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                                st.st_uid, st.st_gid))
            self._walked[context] = entries
        mine = [e for e in entries if any(r == "." or e[0] == r or e[0].startswith(r + "/") for r in rels)]
        roots = [os.lstat(context / r) for r in rels]
        sig = _sha("content", rels, mine, [(st.st_ino, st.st_mode, st.st_mtime_ns, st.st_ctime_ns) for st in roots])
        memo = self.cache_dir / "content" / sig
        try:
            return memo.read_text()
        except OSError:
            pass
        digest = ctx.digest_paths(context, rels, ignore)
        memo.parent.mkdir(exist_ok=True)
        tmp = memo.with_name(f".{sig}.{lease()}-")
        tmp.write_text(digest)
        os.rename(tmp, memo)
        return digest

    # -- the image -----------------------------------------------------------------------------
    def _commit_image(self, state: _State, opts: BuildOptions, say: Progress) -> Image:
        cfg = state.config
        cfg.pop("OnBuild", None) if not cfg.get("OnBuild") else None
        if opts.labels:
            cfg.setdefault("Labels", {}).update(opts.labels)
        epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
        created = (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch))) if epoch.isdigit()
                   else state.created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        config = {"architecture": _arch(), "os": "linux", "created": created,
                  "config": {k: v for k, v in cfg.items() if v is not None},
                  "rootfs": {"type": "layers", "diff_ids": state.diff_ids}, "history": state.history}
        image = self.store.create_image(config, state.layers, list(opts.tags))
        say(f"Successfully built {image.short_id}")
        for t in opts.tags:
            say(f"Successfully tagged {t}")
        return image


# -- file helpers --------------------------------------------------------------------------------
def _heredoc_script(ins: df.Instruction) -> str:
    """BuildKit's rule: ``RUN <<EOF`` alone runs the body as the script; otherwise the shell gets
    the command line with each heredoc written out after it, and does the redirections itself."""
    line = ins.args[0].strip() if ins.args else ""
    bare = re.fullmatch(r"""<<-?(["']?)[^\s"']+\1""", line)
    first = ins.heredocs[0]
    if bare and len(ins.heredocs) == 1:
        return first.content
    parts = [line]
    for h in ins.heredocs:
        body = h.content if not h.content or h.content.endswith("\n") else h.content + "\n"
        parts.append(body + h.name)
    return "\n".join(parts) + "\n"


ModeFn = Callable[[int, bool], int]
"""--chmod as a function of a file's own mode and whether it is a directory."""


def _chmod_fn(spec: str) -> ModeFn | None:
    """``--chmod``: an octal mode up to 7777, or a symbolic one as chmod(1) takes it (``go-w``,
    ``u=rw,g=r,o=r``, ``a+X``: BuildKit's convert_copy.go parses both); None when it is neither."""
    if spec and all(c in "01234567" for c in spec):
        fixed = int(spec, 8)
        return None if fixed > 0o7777 else (lambda _old, _is_dir: fixed)
    clauses = []
    for clause in spec.split(","):
        m = re.fullmatch(r"([ugoa]*)((?:[-+=][rwxXst]*)+)", clause)
        if m is None:
            return None
        who = m.group(1) or "a"
        mask = ((0o4700 if "u" in who or "a" in who else 0) | (0o2070 if "g" in who or "a" in who else 0)
                | (0o1007 if "o" in who or "a" in who else 0))
        clauses.append((mask, re.findall(r"([-+=])([rwxXst]*)", m.group(2))))

    def apply(old: int, is_dir: bool) -> int:
        mode = old
        for mask, ops in clauses:
            for op, perms in ops:
                bits = 0
                for ch, b in (("r", 0o444), ("w", 0o222), ("x", 0o111), ("s", 0o6000), ("t", 0o1000)):
                    if ch in perms:
                        bits |= b
                if "X" in perms and (is_dir or mode & 0o111):
                    bits |= 0o111
                bits &= mask
                if op == "+":
                    mode |= bits
                elif op == "-":
                    mode &= ~bits
                else:
                    mode = (mode & ~mask) | bits
        return mode & 0o7777

    return apply


def _apply_chmod(spec: str, mode: int, is_dir: bool) -> int:
    fn = _chmod_fn(spec) if spec else None
    return fn(mode, is_dir) if fn is not None else mode


def _resolve_in(root: Path, path: str, *, last: str = "dir") -> str:
    """``path`` with the symlinks it passes through resolved inside ``root`` (as if ``root`` were
    ``/``: an absolute link restarts at ``root``, ``..`` stops there), so a destination through a
    link of the image lands in the image. The last component is followed when it leads to a
    directory (``last="dir"``) or always (``"always"``). Missing components are kept as they are."""
    parts = [p for p in path.split("/") if p and p != "."]
    out: list[str] = []
    hops = 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            if out:
                out.pop()
            continue
        here = root.joinpath(*out, name)
        if here.is_symlink() and hops < 40:
            hops += 1
            link = os.readlink(here)
            rest = [p for p in link.split("/") if p and p != "."]
            base = [] if link.startswith("/") else out
            if not parts and last == "dir":
                resolved = _resolve_in(root, "/".join(["", *base, *rest]), last="always")
                if _is_dir_in(root, resolved):  # openat2 in the root: never a host path
                    return resolved
                out.append(name)
                break
            out = list(base)
            parts = rest + parts
            continue
        out.append(name)
    return "/" + "/".join(out)


def _follow(root: Path, rel: str) -> str:
    """A source path as BuildKit copies it: a symlink is followed (inside ``root``) to what it
    points to; a dangling one is copied as the link."""
    if rel == "." or not (root / rel).is_symlink():
        return rel
    resolved = _resolve_in(root, rel, last="always")
    if resolved != "/" and exists_in(root, resolved) and not (root / resolved.lstrip("/")).is_symlink():
        return resolved.lstrip("/")
    return rel


def _owner(user: str, view: Path) -> tuple[int, int]:
    """The owner BuildKit gives files for ``--chown=USER[:GROUP]`` and WORKDIR under ``USER``: names
    from the image's /etc/passwd and /etc/group; a number alone is the uid and the gid both."""
    name, _, group = user.partition(":")
    if name.isdigit() and not group:
        return int(name), int(name)
    uid, gid, _, _ = lookup_user(user, [view])
    return uid, gid


def _make_dirs(stage_dir: Path, view: Path, path: str, uid: int | None, gid: int | None) -> None:
    """``path`` and its ancestors, where neither the image nor the layer has them yet: 0755,
    owned by ``uid``/``gid`` (root when None), as BuildKit's mkdir -p for COPY and WORKDIR."""
    for p in [*_ancestors(path), os.path.normpath(path)]:
        d = _stage_path(stage_dir, p)
        if p == "/" or d.is_dir():
            continue
        if exists_in(view, p):  # the image's directory: in the layer with its own metadata
            if _is_dir_in(view, p):
                st = os.lstat(view / p.lstrip("/"))
                d.mkdir()
                os.chown(d, st.st_uid, st.st_gid)
                os.chmod(d, stat.S_IMODE(st.st_mode))
                os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))
            continue
        d.mkdir()
        os.chown(d, uid if uid is not None else 0, gid if gid is not None else 0)
        os.chmod(d, 0o755)


def _shebang_script(ins: df.Instruction) -> str | None:
    """The body of ``RUN <<EOF`` when it is the only heredoc, alone on the line, and starts with #!."""
    if len(ins.heredocs) != 1 or not ins.heredocs[0].content.startswith("#!"):
        return None
    line = ins.args[0].strip() if ins.args else ""
    return ins.heredocs[0].content if re.fullmatch(r"""<<-?(["']?)[^\s"']+\1""", line) else None


def _expand_heredoc(text: str, env: Mapping[str, str], parsed: df.Dockerfile, line: int) -> str:
    """An unquoted heredoc's body for COPY/ADD, as a shell expands one: ``$`` expansions (with
    BuildKit's modifiers), quotes taken literally, a backslash escaping only ``$``, a backquote,
    another backslash or a newline."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in "$`\\\n":
            out.append(text[i + 1])
            i += 2
            continue
        if ch == "$" and i + 1 < n:
            j = i + 1
            if text[j] == "{":
                depth = 0
                while j < n:
                    if text[j] == "{":
                        depth += 1
                    elif text[j] == "}":
                        depth -= 1
                        if depth == 0:
                            break
                    j += 1
                j += 1
            else:
                while j < n and (text[j].isalnum() or text[j] == "_"):
                    j += 1
            if j > i + 1:
                out.append(df.process_word(text[i:j], env, parsed.escape, path=parsed.path, line=line))
                i = j
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def _arch() -> str:
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def _is_url(s: str) -> bool:
    return s.startswith("http://") or s.startswith("https://")


def _stage_path(stage_dir: Path, path: str) -> Path:
    return stage_dir / os.path.normpath(path).lstrip("/")


def _is_dir_in(view: Path, path: str) -> bool:
    root = os.open(view, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = linux.openat2(root, path.strip("/") or ".", os.O_PATH)
    except OSError:
        return False
    finally:
        os.close(root)
    try:
        return stat.S_ISDIR(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def _set_meta(p: Path, uid: int | None, gid: int | None, mode: int | None) -> None:
    if uid is not None:
        os.lchown(p, uid, gid if gid is not None else uid)
    if mode is not None and not p.is_symlink():
        os.chmod(p, mode)


def _ancestors(path: str) -> list[str]:
    """``/a/b/c`` -> ``["/a", "/a/b"]``: the directories a path passes through."""
    parts = [p for p in os.path.normpath(path).split("/") if p]
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def _copy_parent_metadata(stage_dir: Path, view: Path, through: Sequence[str]) -> None:
    """Directories the layer only passes through keep the image's mode, owner and time (a tar
    entry for ``/usr`` would otherwise reset them)."""
    for path in through:
        d = _stage_path(stage_dir, path)
        if not d.is_dir() or d.is_symlink() or not _is_dir_in(view, path):
            continue
        st = os.lstat(view / path.lstrip("/"))
        os.chown(d, st.st_uid, st.st_gid)
        os.chmod(d, stat.S_IMODE(st.st_mode))
        os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))


def _match_in(root: Path, sources: Sequence[str], where: str, cmd: str) -> list[str]:
    everything = ctx.IgnoreMatcher.from_text("")
    try:
        return sorted({m for s in sources for m in ctx.match_sources(root, s, everything, instruction=cmd,
                                                                     allow_empty=True)})
    except ContextError as exc:
        raise BuildError(f"{where}: {exc}") from None


def _copy_sources(src_root: Path, matched: Sequence[str], stage_dir: Path, view: Path, target: str,
                  uid: int | None, gid: int | None, chmod: str, parents: bool, *, extract: bool,
                  ignore: ctx.IgnoreMatcher | None = None, many: bool = False, keep_owner: bool = False) -> None:
    """BuildKit's COPY rules: a directory's contents go into the target; a file goes to the target,
    or into it when the target is a directory (existing, ending in '/', or several sources). A
    source that is a symlink is copied as what it points to (resolved inside ``src_root``), under
    its own name; symlinks inside a copied directory stay links. Owners: ``uid``/``gid`` when
    --chown gives them, else root for the build context and the source's own (``keep_owner``) for
    ``--from``; directories created on the way are 0755 with the --chown owner."""
    into_dir = target.endswith("/") or len(matched) > 1 or many or _is_dir_in(view, target)
    mode = _chmod_fn(chmod) if chmod else None
    for rel in matched:
        name = rel
        rel = _follow(src_root, rel)
        src = src_root / rel if rel != "." else src_root
        st = os.lstat(src)
        if stat.S_ISDIR(st.st_mode):
            base = os.path.join(target, name) if parents and name != "." else target
            _make_dirs(stage_dir, view, base, uid, gid)  # the target itself too: 0755, not the source's mode
            dest = _stage_path(stage_dir, base)
            _copy_tree(src_root, rel, dest, uid, gid, mode, ignore, keep_owner=keep_owner)
            continue
        if extract and stat.S_ISREG(st.st_mode) and _is_archive(src):
            _make_dirs(stage_dir, view, target, uid, gid)
            dest = _stage_path(stage_dir, target)
            _extract(src, dest)
            continue
        if parents:
            dest = _stage_path(stage_dir, os.path.join(target, name))
        else:
            dest = _stage_path(stage_dir, os.path.join(target, os.path.basename(name)) if into_dir else target)
        _make_dirs(stage_dir, view, "/" + os.path.dirname(os.path.relpath(dest, stage_dir)), uid, gid)
        if keep_owner and uid is None:
            _copy_entry(src, dest, st, st.st_uid, st.st_gid, mode)
        else:
            _copy_entry(src, dest, st, uid, gid, mode)


def _copy_tree(src_root: Path, rel: str, dest: Path, uid: int | None, gid: int | None, mode: ModeFn | None,
               ignore: ctx.IgnoreMatcher | None, *, keep_owner: bool = False) -> None:
    """A directory's contents into ``dest``; from the build context only what .dockerignore keeps."""
    base = src_root / rel if rel != "." else src_root
    if ignore is not None:
        prefix = "" if rel == "." else rel + "/"
        names = [e[len(prefix):] for e in ctx.walk(src_root, ignore) if e.startswith(prefix) and e != rel]
    else:
        names = []
        for dirpath, dirnames, filenames in os.walk(base):
            d = Path(dirpath)
            names += [(d / n).relative_to(base).as_posix() for n in dirnames + filenames]
            dirnames[:] = [n for n in dirnames if not (d / n).is_symlink()]
        names.sort()
    for name in names:
        src = base / name
        out = dest / name
        out.parent.mkdir(parents=True, exist_ok=True)
        st = os.lstat(src)
        own = (st.st_uid, st.st_gid) if keep_owner and uid is None else (uid, gid)
        if stat.S_ISDIR(st.st_mode):
            out.mkdir(exist_ok=True)
            _set_meta(out, own[0] if own[0] is not None else 0, own[1] if own[1] is not None else 0,
                      mode(stat.S_IMODE(st.st_mode), True) if mode is not None else stat.S_IMODE(st.st_mode))
        else:
            _copy_entry(src, out, st, own[0], own[1], mode)


def _copy_entry(src: Path, dest: Path, st: os.stat_result, uid: int | None, gid: int | None,
                mode: ModeFn | None) -> None:
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    elif dest.exists() or dest.is_symlink():
        dest.unlink()
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dest)  # a link, never followed: it may point outside
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(src, dest, follow_symlinks=False)
        os.chmod(dest, mode(stat.S_IMODE(st.st_mode), False) if mode is not None else stat.S_IMODE(st.st_mode))
    else:
        return  # devices, fifos and sockets in a context are not copied
    os.lchown(dest, uid if uid is not None else 0, gid if gid is not None else 0)
    if not stat.S_ISLNK(st.st_mode):
        os.utime(dest, ns=(st.st_mtime_ns, st.st_mtime_ns))


def _is_archive(p: Path) -> bool:
    """A tar, possibly compressed: ADD extracts it; any other file (a plain .gz too) is copied."""
    with open(p, "rb") as f:
        head = f.read(262)
    opener: Any = None
    if head[:2] == b"\x1f\x8b":
        opener = gzip.open
    elif head[:3] == b"BZh":
        opener = bz2.open
    elif head[:6] == b"\xfd7zXZ\x00":
        opener = lzma.open
    if opener is None:
        return head[257:262] == b"ustar"
    try:
        with opener(p, "rb") as stream:
            return bool(stream.read(262)[257:262] == b"ustar")
    except (OSError, EOFError, lzma.LZMAError):
        return False


def _extract(archive: Path, dest: Path) -> None:
    """ADD's auto-extraction, through the same safe unpacking as image layers."""
    from pytest_pods.engine.image.layers import unpack_layer  # lazy: tarfile, only for ADD of an archive

    tmp = dest.parent / f".extract-{os.urandom(4).hex()}"
    with open(archive, "rb") as f:
        head = f.read(6)
    opener: Any = open
    if head[:3] == b"BZh":
        opener = bz2.open
    elif head[:6] == b"\xfd7zXZ\x00":
        opener = lzma.open
    with opener(archive, "rb") as stream:
        unpack_layer(stream, tmp)
    for entry in tmp.iterdir():
        target = dest / entry.name
        if target.exists() and target.is_dir() and entry.is_dir():
            shutil.copytree(entry, target, symlinks=True, dirs_exist_ok=True)
        else:
            os.rename(entry, target)
    shutil.rmtree(tmp, ignore_errors=True)


def _fetch(url: str, checksum: str, stage_dir: Path, view: Path, target: str, uid: int | None,
           gid: int | None, chmod: str, where: str) -> None:
    import urllib.request  # lazy: only for ADD <url>; it loads http.client, email and ssl

    name = os.path.basename(urllib.parse.urlparse(url).path) or "index.html"
    dest = _stage_path(stage_dir, os.path.join(target, name) if target.endswith("/") or _is_dir_in(view, target) else target)
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(dest, "wb") as f:
            while chunk := r.read(1 << 20):
                h.update(chunk)
                f.write(chunk)
    except OSError as exc:
        raise BuildError(f"{where}: ADD {url}: {exc}") from None
    if checksum and checksum != "sha256:" + h.hexdigest():
        raise BuildError(f"{where}: ADD {url}: digest mismatch: expected {checksum}, got sha256:{h.hexdigest()}")
    _set_meta(dest, uid if uid is not None else 0, gid if gid is not None else 0, _apply_chmod(chmod, 0o600, False))


def build_image(store: Store, runtime: Runtime, opts: BuildOptions) -> Image:
    return Builder(store, runtime).build(opts)


# -- a build cache to share: a local directory ----------------------------------------------------
CACHE_MEDIA = "application/vnd.pytest-pods.build-cache.v1+json"
"""The config of a shared build cache: ``{"entries": {cache key: entry}}``; its layers are the blobs."""


def export_cache(store: Store, dest: Path, entries: Mapping[str, dict[str, Any]], say: Progress) -> None:
    """Write ``entries`` (every step of a build: BuildKit's ``mode=max``) and their layers to ``dest``
    as an OCI image layout (index.json -> a manifest whose config is the key map and whose layers
    are the steps' blobs), replacing what was there, so a CI cache action can keep the directory
    and ``import_cache`` on a fresh machine finds every step."""
    config, manifest, layers = _cache_artifact(entries)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": MEDIA_OCI_MANIFEST, "digest": sha256_digest(manifest),
                            "size": len(manifest), "artifactType": CACHE_MEDIA,
                            "annotations": {"org.opencontainers.image.ref.name": "build-cache"}}]}
    dest.mkdir(parents=True, exist_ok=True)
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    keep = {sha256_digest(config), sha256_digest(manifest), *layers}
    for digest, data in ((sha256_digest(config), config), (sha256_digest(manifest), manifest)):
        _write_atomic(blobs / digest[7:], data)
    for digest in layers:
        if not (blobs / digest[7:]).is_file():
            tmp = blobs / f".{digest[7:]}.{lease()}-"
            shutil.copyfile(store.blob_path(digest), tmp)
            os.rename(tmp, blobs / digest[7:])
    _write_atomic(dest / "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    _write_atomic(dest / "index.json", json.dumps(index, sort_keys=True).encode())
    for old in blobs.iterdir():  # blobs of an earlier export that this one does not name
        if "sha256:" + old.name not in keep and not old.name.startswith("."):
            old.unlink()
    say(f"Exported the build cache ({len(entries)} steps, {len(layers)} layers) to {dest}")


def _cache_artifact(entries: Mapping[str, dict[str, Any]]) -> tuple[bytes, bytes, dict[str, dict[str, Any]]]:
    """The build cache as an OCI artifact: (its config, the key map; its manifest; the steps'
    layer descriptors by digest). The same bytes for the same steps, wherever they go."""
    layers = {e["layer"]["digest"]: e["layer"] for e in entries.values() if e.get("layer")}
    config = json.dumps({"entries": dict(sorted(entries.items()))}, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MEDIA_OCI_MANIFEST, "artifactType": CACHE_MEDIA,
        "config": {"mediaType": CACHE_MEDIA, "digest": sha256_digest(config), "size": len(config)},
        "layers": [layers[d] for d in sorted(layers)]}, sort_keys=True).encode()
    return config, manifest, layers


def export_cache_to_registry(store: Store, ref: str, entries: Mapping[str, dict[str, Any]], say: Progress) -> None:
    """Push the build cache (every step, as ``export_cache`` writes it) to the tag ``ref``: the
    same OCI artifact, its layers the steps' blobs, so another machine's ``--cache-from
    type=registry,ref=`` rebuilds only what changed (BuildKit's ``type=registry`` cache, in our format).

    :raises BuildError: the registry refused (its words)
    """
    from pytest_pods.engine.registry import mirrors  # lazy: only registry caches
    from pytest_pods.engine.registry.distribution import push_artifact  # lazy: as above

    config, manifest, _layers = _cache_artifact(entries)
    store.put_bytes(config)
    try:
        digest = push_artifact(store, ref, manifest, insecure=mirrors.is_insecure(parse_reference(ref).domain))
    except PodsError as exc:
        raise BuildError(f"build: --cache-to type=registry,ref={ref}: {exc}") from None
    say(f"Exported the build cache ({len(entries)} steps) to {ref} ({digest})")


def import_cache_from_registry(store: Store, ref: str, say: Progress) -> None:
    """Read a build cache ``export_cache_to_registry`` pushed: its layers into the store
    (verified), its steps into the build cache. A tag not there yet imports nothing.

    :raises BuildError: the registry refused, or the tag holds something else
    """
    from pytest_pods.engine.registry import mirrors  # lazy: only registry caches
    from pytest_pods.engine.registry.distribution import pull_artifact  # lazy: as above

    try:
        doc = pull_artifact(store, ref, insecure=mirrors.is_insecure(parse_reference(ref).domain))
    except PodsError as exc:
        raise BuildError(f"build: --cache-from type=registry,ref={ref}: {exc}") from None
    if doc is None:
        say(f"No build cache at {ref} yet")
        return
    try:
        if doc.get("artifactType") != CACHE_MEDIA and doc["config"].get("mediaType") != CACHE_MEDIA:
            raise ValueError(f"its config is {doc['config'].get('mediaType')!r}")
        entries = json.loads(store.read_blob(doc["config"]["digest"]))["entries"]
        steps = _import_entries(store.root / "build-cache", entries, ref)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BuildError(f"build: --cache-from type=registry,ref={ref}: not a build cache pods exported "
                         f"({exc})") from None
    say(f"Imported the build cache from {ref} ({steps} new steps)")


def _import_entries(cache_dir: Path, entries: Mapping[str, Any], source: object) -> int:
    """Each step into the build cache (one already here is kept); how many were new.

    :raises BuildError: a key that is not one of ours
    """
    cache_dir.mkdir(exist_ok=True)
    steps = 0
    for key, entry in entries.items():
        if not re.fullmatch(r"[0-9a-f]{64}", key):
            raise BuildError(f"build: --cache-from {source}: bad cache key {key!r}")
        if not (cache_dir / f"{key}.json").exists():
            _write_atomic(cache_dir / f"{key}.json", json.dumps(entry).encode())
            steps += 1
    return steps


def import_cache(store: Store, src: Path, say: Progress) -> None:
    """Read a directory ``export_cache`` wrote: each layer into the store (its digest verified),
    each step into the build cache (an entry already here is kept). A directory that is not
    there yet (a CI cache's first run) imports nothing.

    :raises BuildError: the directory holds something else, or a blob does not match its digest.
    """
    try:
        index = json.loads((src / "index.json").read_bytes())
    except FileNotFoundError:
        say(f"No build cache at {src} yet")
        return
    except (OSError, ValueError) as exc:
        raise BuildError(f"build: --cache-from {src}: unreadable index.json ({exc})") from None

    def blob(digest: str) -> Path:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest or ""):
            raise BuildError(f"build: --cache-from {src}: bad digest {digest!r}")
        return src / "blobs" / "sha256" / digest[7:]

    steps = 0
    try:
        for m in index.get("manifests", []):
            if m.get("artifactType") != CACHE_MEDIA:
                continue
            manifest = json.loads(blob(m["digest"]).read_bytes())
            entries = json.loads(blob(manifest["config"]["digest"]).read_bytes())["entries"]
            for layer in manifest.get("layers", []):
                if not store.has_blob(layer["digest"]):
                    with open(blob(layer["digest"]), "rb") as f:
                        store.put_file(f, expected=layer["digest"])
            steps += _import_entries(store.root / "build-cache", entries, src)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BuildError(f"build: --cache-from {src}: not a build cache pods exported ({exc})") from None
    except PodsError as exc:
        raise BuildError(f"build: --cache-from {src}: {exc}") from None
    say(f"Imported the build cache from {src} ({steps} new steps)")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{lease()}-")
    tmp.write_bytes(data)
    os.rename(tmp, path)


# cache blobs must survive the store's garbage collection
def add_extra_hosts(cdir: Path, extra_hosts: Sequence[str]) -> None:
    """``--add-host NAME:IP`` (or ``NAME=IP``) entries for a created container: kept in its state
    (the network code writes them into /etc/hosts whenever it rewrites the file) and added to
    the file now (host and none modes write it once)."""
    entries = []
    for item in extra_hosts:
        name, sep, ip = item.partition("=") if "=" in item else item.partition(":")
        if not sep or not name or not ip:
            raise BuildError(f"build: extra host {item!r}: expected NAME:IP")
        entries.append(f"{name}:{ip}")

    def keep(st: Any) -> None:
        st["extra_hosts"] = entries

    update_state(cdir, keep)
    with open(cdir / "hosts", "a") as f:
        f.write("".join(f"{e.partition(':')[2]}\t{e.partition(':')[0]}\n" for e in entries))


def cache_blobs(store: Store) -> set[str]:
    out = set()
    d = store.root / "build-cache"
    if d.is_dir():
        for p in d.glob("*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                out.add(json.loads(p.read_text())["layer"]["digest"])
    return out


