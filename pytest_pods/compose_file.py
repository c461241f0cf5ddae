"""Compose files read as the Compose Specification has them (issue 16; a module of its own, not a
package: ``pytest_pods.compose`` is the fixture factory): YAML, ``.env`` files,
``${VAR}`` interpolation, and each service's keys in the forms the specification allows, checked
and normalised into :class:`Project` (plain data the plugin turns into images, networks, volumes
and containers). Pure: nothing here touches an engine, so the parse of a bad file fails before
anything is made.

Errors are :class:`ComposeFileError`: one line naming the file, the service and the key. Keys we
do not support either fail (where ignoring them would change what the stack does) or are listed
in :attr:`Project.warnings` (where ignoring them is harmless in a test: ``logging``, ``tty``...).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_pods.errors import InvalidArgumentError

__all__ = ["Build", "ComposeFileError", "Mount", "NetworkSpec", "Project", "ServiceSpec", "VolumeSpec",
           "interpolate", "load", "parse_duration", "read_env_file"]

CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")

# service keys, by what we do with them
_SUPPORTED = frozenset({
    "build", "image", "command", "entrypoint", "environment", "env_file", "ports", "expose", "networks", "volumes",
    "tmpfs", "depends_on", "healthcheck", "profiles", "labels", "working_dir", "user", "restart", "extra_hosts",
    "container_name", "hostname", "init", "read_only", "privileged", "cap_add", "cap_drop", "shm_size", "mem_limit",
    "memswap_limit", "pids_limit", "cpus", "ulimits", "sysctls", "security_opt", "devices", "stdin_open",
    "stop_signal", "stop_grace_period", "network_mode", "volumes_from", "scale", "deploy", "pull_policy",
})
# ignored with a warning: what they change does not matter to a test's stack
_HARMLESS = {
    "tty": "no pseudo-terminal is given to compose services",
    "logging": "the engine keeps every service's log itself",
    "platform": "images run on this machine's platform",
    "domainname": "the container's domain name stays empty",
    "mac_address": "addresses are assigned by the engine",
    "oom_score_adj": "the engine's default applies",
    "oom_kill_disable": "the engine's default applies",
    "cpu_shares": "no CPU weighting", "cpu_quota": "no CPU quota (use cpus)", "cpu_period": "no CPU quota",
    "cpuset": "no CPU pinning", "cpu_count": "no CPU limit (use cpus)", "cpu_percent": "no CPU limit",
    "mem_reservation": "no memory reservation", "mem_swappiness": "the kernel's default applies",
    "annotations": "no OCI annotations", "runtime": "the pods engine runs every container",
    "isolation": "Linux containers only", "develop": "no file watching", "attach": "logs are kept either way",
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|ms|s|m|h)")
_DURATION_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
                "h": 3_600_000_000_000}


class ComposeFileError(InvalidArgumentError):
    """A compose file that cannot work: the file, the service and the key, then what is wrong."""

    def __init__(self, file: str | os.PathLike[str], message: str, *, service: str | None = None,
                 key: str | None = None) -> None:
        self.file, self.service, self.key = os.fspath(file), service, key
        where = f"compose file {self.file}"
        if service is not None:
            where += f": service {service!r}"
        if key is not None:
            where += f": key {key!r}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Build:
    context: str
    dockerfile: str | None = None
    args: dict[str, str] = field(default_factory=dict)
    target: str | None = None


@dataclass(frozen=True)
class Mount:
    """A service's volume: ``kind`` is ``volume`` (``source`` a key of the file's volumes, or ""
    for an anonymous one), ``bind`` (``source`` an absolute host path) or ``tmpfs``."""

    kind: str
    source: str
    target: str
    read_only: bool = False
    nocopy: bool = False
    options: str = ""  # tmpfs: size=, mode=


@dataclass
class ServiceSpec:
    name: str
    image: str | None = None
    build: Build | None = None
    command: list[str] | str | None = None
    entrypoint: list[str] | str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    ports: list[str] = field(default_factory=list)  # docker run -p texts, one port each
    networks: dict[str, list[str]] = field(default_factory=dict)  # network key -> aliases
    network_mode: str | None = None
    mounts: list[Mount] = field(default_factory=list)
    tmpfs: list[str] = field(default_factory=list)
    depends_on: dict[str, str] = field(default_factory=dict)  # service -> condition
    healthcheck: dict[str, Any] | None = None  # docker-py's form (durations in ns); test ["NONE"] disables
    profiles: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    extra_hosts: list[str] = field(default_factory=list)
    restart: str | None = None
    container_name: str | None = None
    volumes_from: list[str] = field(default_factory=list)  # (service or container name, mode)
    options: dict[str, Any] = field(default_factory=dict)  # further container options, docker-py's names


@dataclass(frozen=True)
class NetworkSpec:
    key: str
    name: str | None = None  # the engine's name when set (``name:`` or external)
    external: bool = False
    internal: bool = False
    subnet: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VolumeSpec:
    key: str
    name: str | None = None
    external: bool = False
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Project:
    file: Path
    name: str | None  # the file's top-level ``name:`` (or COMPOSE_PROJECT_NAME)
    services: dict[str, ServiceSpec]
    networks: dict[str, NetworkSpec]
    volumes: dict[str, VolumeSpec]
    warnings: list[str] = field(default_factory=list)

    @property
    def directory(self) -> Path:
        return self.file.parent

    def order(self) -> list[str]:
        """The services in dependency order (each after what it depends on)."""
        done: list[str] = []

        def visit(name: str) -> None:
            if name in done:
                return
            for dep in self.services[name].depends_on:
                visit(dep)
            done.append(name)

        for name in self.services:
            visit(name)
        return done


# --------------------------------------------------------------------------------------------
# .env files and interpolation


def read_env_file(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``KEY=VALUE`` lines (``export`` allowed, ``#`` comments, single quotes literal, double quotes
    with ``\\n`` escapes, ``${VAR}`` in unquoted and double-quoted values from what came before and
    ``environ``). A ``KEY`` line alone takes ``KEY`` from ``environ`` if it is set there.

    :raises ComposeFileError: a line that is not an assignment (naming the line)
    :raises OSError: the file cannot be read
    """
    out: dict[str, str] = {}
    env = dict(environ or {})
    for number, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, eq, value = line.partition("=")
        key = key.strip()
        if not _NAME.fullmatch(key):
            raise ComposeFileError(path, f"line {number}: {raw.strip()!r} is not KEY=VALUE")
        if not eq:
            if key in env:
                out[key] = env[key]
            continue
        value = value.strip()
        if value[:1] == "'" and value.rfind("'") > 0:
            value = value[1:value.rfind("'")]
        elif value[:1] == '"' and value.rfind('"') > 0:
            body = value[1:value.rfind('"')]
            body = body.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
            value = interpolate(body, {**env, **out}, lambda msg, n=number: ComposeFileError(path, f"line {n}: {msg}"))
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0]
            value = interpolate(value, {**env, **out}, lambda msg, n=number: ComposeFileError(path, f"line {n}: {msg}"))
        out[key] = value
    return out


def interpolate(text: str, env: Mapping[str, str], error: Any, missing: list[str] | None = None) -> str:
    """``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?message}``,
    ``${VAR?message}``, ``${VAR:+alternative}``, ``${VAR+alternative}`` and ``$$`` (a literal
    ``$``), as the Compose Specification has them; defaults may hold interpolations themselves.
    ``error(message)`` makes the exception to raise; unset names used plainly go to ``missing``.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1:i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            depth, j = 1, i + 2
            while j < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            if depth:
                raise error(f"invalid interpolation format {text[i:]!r}: no closing '}}' (write $$ for a literal $)")
            out.append(_expand(text[i + 2:j - 1], env, error, missing))
            i = j
        else:
            m = _NAME.match(text, i + 1)
            if m is None:
                raise error(f"invalid interpolation format {text!r}: '$' must be followed by a name or '{{' "
                            "(write $$ for a literal $)")
            value = env.get(m.group())
            if value is None and missing is not None:
                missing.append(m.group())
            out.append(value or "")
            i = m.end()
    return "".join(out)


def _expand(body: str, env: Mapping[str, str], error: Any, missing: list[str] | None) -> str:
    m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:-|-|:\?|\?|:\+|\+)(.*))?", body, re.S)
    if m is None:
        raise error(f"invalid interpolation format '${{{body}}}' (forms: ${{VAR}}, ${{VAR:-default}}, "
                    "${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+alternative})")
    name, op, arg = m.group(1), m.group(2), m.group(3) or ""
    value = env.get(name)
    if op is None:
        if value is None and missing is not None:
            missing.append(name)
        return value or ""
    if op == ":-":
        return value if value else interpolate(arg, env, error, missing)
    if op == "-":
        return value if value is not None else interpolate(arg, env, error, missing)
    if op in (":?", "?"):
        if (not value) if op == ":?" else (value is None):
            reason = interpolate(arg, env, error, missing) or "is not set"
            raise error(f"required variable {name} is missing a value: {reason}")
        return value or ""
    if op == ":+":
        return interpolate(arg, env, error, missing) if value else ""
    return interpolate(arg, env, error, missing) if value is not None else ""


def parse_duration(value: Any) -> int:
    """A Compose duration (``1m30s``, ``10s``, ``500ms``, ``1.5s``; a number is seconds) in ns.

    :raises ValueError: not a duration
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        return int(value * 1_000_000_000)
    text = str(value).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{value!r} is not a duration (such as 10s, 1m30s, 500ms)")
    return int(sum(float(n) * _DURATION_NS[u] for n, u in parts))


# --------------------------------------------------------------------------------------------
# the file


def load(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None,
         env_file: str | os.PathLike[str] | None = None, profiles: Iterable[str] = (),
         services: Iterable[str] | None = None) -> Project:
    """Read and check a compose file: the services enabled by ``profiles`` (or named in
    ``services``, with what they depend on), interpolated from ``environ`` (default
    ``os.environ``) over the ``.env`` beside the file (or ``env_file``).

    :raises ComposeFileError: naming the file, the service and the key
    """
    import yaml  # type: ignore[import-untyped,unused-ignore]  # lazy: the CLI's import budget; only compose files need it

    file = Path(path).absolute()
    try:
        text = file.read_text()
    except OSError as exc:
        raise ComposeFileError(file, f"cannot be read: {exc.strerror or exc}") from None
    environ = dict(os.environ if environ is None else environ)
    dotenv = Path(env_file) if env_file is not None else file.parent / ".env"
    if env_file is not None and not dotenv.is_absolute():
        dotenv = file.parent / dotenv
    if dotenv.is_file():
        try:
            env = {**read_env_file(dotenv, environ), **environ}  # the shell's variables win, as in compose
        except OSError as exc:
            raise ComposeFileError(dotenv, f"cannot be read: {exc.strerror or exc}") from None
    elif env_file is not None:
        raise ComposeFileError(dotenv, "env file not found")
    else:
        env = environ
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ComposeFileError(file, f"{where}not valid YAML: {problem}") from None
    if not isinstance(doc, dict):
        raise ComposeFileError(file, "expected a mapping with a 'services' key at the top")
    missing: list[str] = []
    doc = _interpolate_tree(file, doc, env, missing, [])
    reader = _Reader(file, env)
    for name in dict.fromkeys(missing):
        reader.warnings.append(f"the {name} variable is not set: defaulting to a blank string")
    return reader.project(doc, set(profiles), None if services is None else list(services))


def _interpolate_tree(file: Path, value: Any, env: Mapping[str, str], missing: list[str], path: list[str]) -> Any:
    if isinstance(value, str):
        def error(msg: str) -> ComposeFileError:
            service = path[1] if len(path) > 1 and path[0] == "services" else None
            key = ".".join(path[2:] if service is not None else path) or None
            return ComposeFileError(file, msg, service=service, key=key)
        return interpolate(value, env, error, missing)
    if isinstance(value, dict):
        return {k: _interpolate_tree(file, v, env, missing, [*path, str(k)]) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate_tree(file, v, env, missing, path) for v in value]
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class _Reader:
    def __init__(self, file: Path, env: Mapping[str, str]) -> None:
        self.file, self.env = file, env
        self.warnings: list[str] = []
        self.service = ""
        self.key = ""

    def fail(self, message: str, key: str | None = None) -> ComposeFileError:
        return ComposeFileError(self.file, message, service=self.service or None, key=key or self.key or None)

    # top level ------------------------------------------------------------------------------
    def project(self, doc: dict[str, Any], profiles: set[str], wanted: list[str] | None) -> Project:
        for key in doc:
            if key in ("version", "name", "services", "networks", "volumes") or str(key).startswith("x-"):
                continue
            if key in ("secrets", "configs"):
                raise ComposeFileError(self.file, f"top-level {key!r} is not supported by pytest-pods "
                                       "(mount the files with volumes instead)", key=str(key))
            raise ComposeFileError(self.file, f"unknown top-level key {key!r} (the Compose Specification has "
                                   "version, name, services, networks, volumes, secrets, configs and x-*)",
                                   key=str(key))
        services = doc.get("services")
        if not isinstance(services, dict) or not services:
            raise ComposeFileError(self.file, "no services: expected 'services:' with at least one service",
                                   key="services")
        name = doc.get("name") or self.env.get("COMPOSE_PROJECT_NAME") or None
        networks = {str(k): self.network(str(k), v) for k, v in (self._map(doc, "networks") or {}).items()}
        volumes = {str(k): self.volume(str(k), v) for k, v in (self._map(doc, "volumes") or {}).items()}
        specs: dict[str, ServiceSpec] = {}
        for sname, body in services.items():
            self.service, self.key = str(sname), ""
            if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", str(sname)):
                raise self.fail("a service name takes letters, digits, '_', '.' and '-'")
            if not isinstance(body, dict):
                raise self.fail(f"expected a mapping of the service's keys, not {type(body).__name__}")
            specs[str(sname)] = self.service_spec(str(sname), body, networks, volumes)
        self.service = ""
        for spec in specs.values():  # references between services
            self.service = spec.name
            for dep in spec.depends_on:
                if dep not in specs:
                    raise self.fail(f"depends on undefined service {dep!r}", "depends_on")
            if spec.network_mode and spec.network_mode.startswith("service:"):
                raise self.fail("network_mode service:NAME is not supported by pytest-pods "
                                "(put both services on one network)", "network_mode")
        self.service = ""
        self._check_cycles(specs)
        enabled = self._select(specs, profiles, wanted)
        return Project(self.file, str(name) if name else None, {k: v for k, v in specs.items() if k in enabled},
                       networks, volumes, self.warnings)

    def _check_cycles(self, specs: Mapping[str, ServiceSpec]) -> None:
        state: dict[str, int] = {}

        def visit(name: str, trail: list[str]) -> None:
            state[name] = 1
            for dep in specs[name].depends_on:
                if state.get(dep) == 1:
                    cycle = " -> ".join([*trail[trail.index(dep):], dep]) if dep in trail else f"{name} -> {dep}"
                    raise ComposeFileError(self.file, f"dependency cycle: {cycle}", service=name, key="depends_on")
                if dep not in state:
                    visit(dep, [*trail, dep])
            state[name] = 2

        for name in specs:
            if name not in state:
                visit(name, [name])

    def _select(self, specs: Mapping[str, ServiceSpec], profiles: set[str], wanted: list[str] | None) -> set[str]:
        if wanted is not None:
            for w in wanted:
                if w not in specs:
                    raise ComposeFileError(self.file, f"no such service: {w!r} (the file has: {', '.join(specs)})")
            roots = list(wanted)
        else:
            roots = [n for n, s in specs.items() if not s.profiles or profiles & set(s.profiles) or "*" in profiles]
            if not roots:
                raise ComposeFileError(self.file, "no service is enabled: every service has a profile; give "
                                       f"profiles=[...] (the file's: {', '.join(sorted({p for s in specs.values() for p in s.profiles}))})")
        enabled: set[str] = set()

        def add(name: str, by: str | None) -> None:
            if name in enabled:
                return
            spec = specs[name]
            if by is not None and wanted is None and spec.profiles and not (profiles & set(spec.profiles)):
                raise ComposeFileError(self.file, f"depends on {name!r}, which is only in profiles "
                                       f"{', '.join(spec.profiles)} (none of them enabled)", service=by,
                                       key="depends_on")
            enabled.add(name)
            for dep in spec.depends_on:
                add(dep, name)

        for root in roots:
            add(root, None)
        return enabled

    def _map(self, doc: Mapping[str, Any], key: str) -> dict[str, Any] | None:
        value = doc.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ComposeFileError(self.file, f"expected a mapping, not {type(value).__name__}", key=key)
        return value

    def network(self, key: str, body: Any) -> NetworkSpec:
        body = body or {}
        if not isinstance(body, dict):
            raise ComposeFileError(self.file, "expected a mapping", key=f"networks.{key}")
        for k in body:
            if k not in ("driver", "external", "name", "internal", "ipam", "labels", "attachable", "driver_opts",
                         "enable_ipv6") and not str(k).startswith("x-"):
                raise ComposeFileError(self.file, f"unknown network key {k!r}", key=f"networks.{key}.{k}")
        if body.get("driver", "bridge") != "bridge":
            raise ComposeFileError(self.file, f"driver {body['driver']!r} is not supported by pytest-pods "
                                   "(bridge networks only)", key=f"networks.{key}.driver")
        if body.get("enable_ipv6"):
            raise ComposeFileError(self.file, "IPv6 networks are not supported by pytest-pods",
                                   key=f"networks.{key}.enable_ipv6")
        if body.get("driver_opts"):
            self.warnings.append(f"networks.{key}.driver_opts: ignored (the bridge driver's defaults apply)")
        subnet = None
        ipam = body.get("ipam") or {}
        configs = ipam.get("config") if isinstance(ipam, dict) else None
        if configs:
            if not isinstance(configs, list) or not isinstance(configs[0], dict) or len(configs) > 1:
                raise ComposeFileError(self.file, "expected one entry {subnet: CIDR}", key=f"networks.{key}.ipam.config")
            subnet = configs[0].get("subnet")
        external = body.get("external")
        if isinstance(external, dict):  # the legacy form external: {name: ...}
            body = {**body, "name": external.get("name", body.get("name"))}
            external = True
        return NetworkSpec(key, _text(body["name"]) if body.get("name") else None, bool(external),
                           bool(body.get("internal")), subnet, self.labels(body.get("labels"), f"networks.{key}.labels"))

    def volume(self, key: str, body: Any) -> VolumeSpec:
        body = body or {}
        if not isinstance(body, dict):
            raise ComposeFileError(self.file, "expected a mapping", key=f"volumes.{key}")
        for k in body:
            if k not in ("driver", "external", "name", "labels", "driver_opts") and not str(k).startswith("x-"):
                raise ComposeFileError(self.file, f"unknown volume key {k!r}", key=f"volumes.{key}.{k}")
        if body.get("driver", "local") != "local":
            raise ComposeFileError(self.file, f"driver {body['driver']!r} is not supported by pytest-pods "
                                   "(local volumes only)", key=f"volumes.{key}.driver")
        if body.get("driver_opts"):
            raise ComposeFileError(self.file, "driver_opts are not supported by pytest-pods (for a host "
                                   "directory, use a bind mount in the service)", key=f"volumes.{key}.driver_opts")
        external = body.get("external")
        if isinstance(external, dict):
            body = {**body, "name": external.get("name", body.get("name"))}
            external = True
        return VolumeSpec(key, _text(body["name"]) if body.get("name") else None, bool(external),
                          self.labels(body.get("labels"), f"volumes.{key}.labels"))

    # services -------------------------------------------------------------------------------
    def service_spec(self, name: str, body: dict[str, Any], networks: Mapping[str, NetworkSpec],
                     volumes: Mapping[str, VolumeSpec]) -> ServiceSpec:
        spec = ServiceSpec(name)
        for key in body:
            key = str(key)
            if key.startswith("x-"):
                continue
            if key in _HARMLESS:
                self.warnings.append(f"service {name!r}: {key}: ignored ({_HARMLESS[key]})")
            elif key not in _SUPPORTED:
                raise self.fail("not supported by pytest-pods" + (
                    " (use depends_on and networks; a service is reachable by its name)" if key == "links" else
                    " (mount the files with volumes instead)" if key in ("secrets", "configs") else
                    ""), key)
        for key, value in body.items():  # in the file's order (tmpfs from volumes and tmpfs keep theirs)
            self.key = str(key)
            if key in _SUPPORTED and value is not None:
                getattr(self, "s_" + key)(spec, value, networks, volumes)
        self.key = ""
        if spec.image is None and spec.build is None:
            raise self.fail("neither image nor build is given")
        if not spec.networks and spec.network_mode is None:
            spec.networks = {"default": []}
        if "default" in spec.networks and "default" not in networks:
            pass  # the project's default network, made by the plugin
        return spec

    def labels(self, value: Any, key: str) -> dict[str, str]:
        if value is None:
            return {}
        if isinstance(value, dict):
            return {str(k): _text(v) for k, v in value.items()}
        if isinstance(value, list):
            out = {}
            for item in value:
                k, _, v = str(item).partition("=")
                out[k] = v
            return out
        raise self.fail("expected a mapping or a list of KEY=VALUE", key)

    def _strings(self, value: Any, what: str) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                           for v in value):
            return [str(v) for v in value]
        raise self.fail(f"expected {what}")

    def _command(self, value: Any) -> list[str] | str:
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                           for v in value):
            return [str(v) for v in value]
        raise self.fail("expected a shell line or a list of arguments")

    def s_image(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        if not isinstance(value, str) or not value:
            raise self.fail("expected an image reference such as postgres:15")
        spec.image = value

    def s_build(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        if isinstance(value, str):
            value = {"context": value}
        if not isinstance(value, dict):
            raise self.fail("expected a context directory or a mapping with context, dockerfile, args, target")
        for k in value:
            if k not in ("context", "dockerfile", "args", "target", "labels", "cache_from", "network",
                         "extra_hosts", "shm_size", "pull", "platforms", "tags", "no_cache", "ssh", "secrets"):
                raise self.fail(f"unknown build key {k!r}", f"build.{k}")
            if k in ("ssh", "secrets", "platforms", "extra_hosts", "network", "tags", "labels", "shm_size",
                     "no_cache", "pull") and value[k]:
                raise self.fail("not supported by pytest-pods builds", f"build.{k}")
        context = Path(str(value.get("context", ".")))
        if "://" in str(context) or str(context).startswith("git@"):
            raise self.fail("remote build contexts are not supported by pytest-pods", "build.context")
        context = context if context.is_absolute() else self.file.parent / context
        if not context.is_dir():
            raise self.fail(f"build context {os.fspath(context)} is not a directory", "build.context")
        args_value = value.get("args") or {}
        if isinstance(args_value, list):
            args = {}
            for item in args_value:
                k, eq, v = str(item).partition("=")
                if eq:
                    args[k] = v
                elif k in self.env:
                    args[k] = self.env[k]
        elif isinstance(args_value, dict):
            args = {str(k): (_text(v) if v is not None else self.env.get(str(k), "")) for k, v in args_value.items()
                    if v is not None or str(k) in self.env}
        else:
            raise self.fail("expected a mapping or a list of KEY=VALUE", "build.args")
        spec.build = Build(os.path.normpath(context), str(value["dockerfile"]) if value.get("dockerfile") else None,
                           args, str(value["target"]) if value.get("target") else None)

    def s_command(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        spec.command = self._command(value)

    def s_entrypoint(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        spec.entrypoint = self._command(value)

    def s_environment(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if v is None:
                    if str(k) in self.env:
                        spec.environment[str(k)] = self.env[str(k)]
                else:
                    spec.environment[str(k)] = _text(v)
        elif isinstance(value, list):
            for item in value:
                k, eq, v = str(item).partition("=")
                if eq:
                    spec.environment[k] = v
                elif k in self.env:
                    spec.environment[k] = self.env[k]
        else:
            raise self.fail("expected a mapping or a list of KEY=VALUE")

    def s_env_file(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        items = value if isinstance(value, list) else [value]
        from_files: dict[str, str] = {}
        for item in items:
            required = True
            if isinstance(item, dict):
                required = item.get("required", True) is not False
                item = item.get("path")
            if not isinstance(item, str):
                raise self.fail("expected a path or a list of paths")
            path = Path(item) if os.path.isabs(item) else self.file.parent / item
            if not path.is_file():
                if required:
                    raise self.fail(f"env file {os.fspath(path)} not found")
                continue
            try:
                from_files.update(read_env_file(path, self.env))
            except OSError as exc:
                raise self.fail(f"env file {os.fspath(path)} cannot be read: {exc.strerror or exc}") from None
        spec.environment = {**from_files, **spec.environment}  # environment: wins over env_file

    def s_ports(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        if not isinstance(value, list):
            raise self.fail("expected a list of ports")
        for item in value:
            if isinstance(item, dict):
                spec.ports.extend(self._long_port(item))
            elif isinstance(item, (int, str)) and not isinstance(item, bool):
                spec.ports.extend(self._short_port(str(item)))
            else:
                raise self.fail(f"{item!r} is not a port")

    def _long_port(self, item: Mapping[str, Any]) -> list[str]:
        for k in item:
            if k not in ("target", "published", "host_ip", "protocol", "mode", "name", "app_protocol"):
                raise self.fail(f"unknown port key {k!r}", f"ports.{k}")
        target = item.get("target")
        if not isinstance(target, int) or isinstance(target, bool):
            raise self.fail(f"target: expected a container port number, not {target!r}", "ports.target")
        proto = str(item.get("protocol") or "tcp")
        published = item.get("published")
        host_ip = item.get("host_ip")
        host = f"{host_ip}:" if host_ip else ""
        if published in (None, ""):
            return [f"{host}:{target}/{proto}" if host_ip else f"{target}/{proto}"]
        return self._short_port(f"{host}{published}:{target}/{proto}")

    def _short_port(self, text: str) -> list[str]:
        body, _, proto = text.partition("/")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp", "sctp"):
            raise self.fail(f"{text!r}: protocol {proto!r} is not tcp or udp")
        if body.startswith("["):  # [::1]:80:80
            ip, _, rest = body[1:].partition("]")
            parts = [ip, *rest.lstrip(":").split(":")]
        else:
            parts = body.split(":")
        if len(parts) > 3:
            raise self.fail(f"{text!r} is not a port (forms: 80, 8080:80, 127.0.0.1:8080:80, 8000-8001:80-81)")
        ip = parts[0] if len(parts) == 3 else ""
        published = parts[-2] if len(parts) >= 2 else ""
        target = parts[-1]
        targets = self._port_range(text, target)
        if not targets:
            raise self.fail(f"{text!r}: no container port")
        hosts: list[str] = [""] * len(targets)
        if published:
            pub = self._port_range(text, published)
            if len(pub) == len(targets):
                hosts = [str(p) for p in pub]
            elif len(pub) > len(targets) and len(targets) == 1:
                hosts = [str(pub[0])]  # a range to pick from: the first one (no port pool here)
            else:
                raise self.fail(f"{text!r}: the host and container port ranges differ in length")
        out = []
        for target_port, host_port in zip(targets, hosts, strict=True):
            if ip or host_port:
                out.append(f"{ip}:{host_port}:{target_port}/{proto}" if ip else f"{host_port}:{target_port}/{proto}")
            else:
                out.append(f"{target_port}/{proto}")
        return out

    def _port_range(self, text: str, value: str) -> list[int]:
        lo, dash, hi = value.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise self.fail(f"{text!r} is not a port (forms: 80, 8080:80, 127.0.0.1:8080:80, 8000-8001:80-81)")
        first, last = int(lo), int(hi) if dash else int(lo)
        if not 0 < first <= last < 65536:
            raise self.fail(f"{text!r}: ports are 1 to 65535")
        return list(range(first, last + 1))

    def s_expose(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        self._strings(value, "a list of ports")  # every port is reachable on the service's networks

    def s_networks(self, spec: ServiceSpec, value: Any, networks: Mapping[str, NetworkSpec], *_: Any) -> None:
        if isinstance(value, list):
            value = {str(v): None for v in value}
        if not isinstance(value, dict):
            raise self.fail("expected a list of networks or a mapping of network: {aliases: [...]}")
        for net, conf in value.items():
            if net not in networks and net != "default":
                raise self.fail(f"network {net!r} is not declared in the file's top-level networks")
            aliases: list[str] = []
            if isinstance(conf, dict):
                for k in conf:
                    if k not in ("aliases", "ipv4_address", "ipv6_address", "priority", "link_local_ips",
                                 "mac_address", "driver_opts", "gw_priority"):
                        raise self.fail(f"unknown key {k!r}", f"networks.{net}.{k}")
                    if k in ("ipv4_address", "ipv6_address", "link_local_ips", "mac_address") and conf[k]:
                        raise self.fail("fixed addresses are not supported by pytest-pods", f"networks.{net}.{k}")
                aliases = self._strings(conf.get("aliases") or [], "a list of aliases")
            elif conf is not None:
                raise self.fail("expected a mapping such as {aliases: [db]}", f"networks.{net}")
            spec.networks[str(net)] = aliases

    def s_network_mode(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        if not isinstance(value, str) or not (value in ("bridge", "host", "none") or value.startswith("service:")):
            raise self.fail(f"{value!r}: expected bridge, host, none or service:NAME")
        spec.network_mode = value

    def s_volumes(self, spec: ServiceSpec, value: Any, _n: Any, volumes: Mapping[str, VolumeSpec]) -> None:
        if not isinstance(value, list):
            raise self.fail("expected a list of mounts")
        for item in value:
            mount = self._long_volume(item) if isinstance(item, dict) else self._short_volume(str(item))
            if mount.kind == "volume" and mount.source and mount.source not in volumes:
                raise self.fail(f"named volume {mount.source!r} is not declared in the file's top-level volumes")
            if not mount.target.startswith("/"):
                raise self.fail(f"{item!r}: the container path must be absolute")
            if mount.kind == "tmpfs":
                spec.tmpfs.append(mount.target + (f":{mount.options}" if mount.options else ""))
            else:
                spec.mounts.append(mount)

    def _host_path(self, source: str) -> str:
        path = Path(os.path.expanduser(source))
        return os.path.normpath(path if path.is_absolute() else self.file.parent / path)

    def _short_volume(self, text: str) -> Mount:
        parts = text.split(":")
        if len(parts) == 1:
            return Mount("volume", "", parts[0])
        if len(parts) > 3:
            raise self.fail(f"{text!r} is not a mount (forms: NAME:/path[:ro], ./dir:/path[:ro], /path)")
        source, target = parts[0], parts[1]
        modes = set(parts[2].split(",")) if len(parts) == 3 else set()
        unknown = modes - {"ro", "rw", "nocopy", "z", "Z", "cached", "delegated", "consistent"}
        if unknown:
            raise self.fail(f"{text!r}: unknown mode {sorted(unknown)[0]!r} (ro, rw, nocopy)")
        is_path = source.startswith((".", "/", "~"))
        return Mount("bind" if is_path else "volume", self._host_path(source) if is_path else source, target,
                     "ro" in modes, "nocopy" in modes)

    def _long_volume(self, item: Mapping[str, Any]) -> Mount:
        kind = item.get("type", "volume")
        for k in item:
            if k not in ("type", "source", "target", "read_only", "volume", "bind", "tmpfs", "consistency"):
                raise self.fail(f"unknown mount key {k!r}", f"volumes.{k}")
        target = str(item.get("target") or "")
        if kind == "tmpfs":
            conf = item.get("tmpfs") or {}
            opts = [f"size={conf['size']}"] if conf.get("size") else []
            if conf.get("mode"):
                opts.append(f"mode={conf['mode']:o}" if isinstance(conf["mode"], int) else f"mode={conf['mode']}")
            return Mount("tmpfs", "", target, options=",".join(opts))
        source = _text(item.get("source"))
        if kind == "bind":
            if not source:
                raise self.fail("a bind mount needs a source", "volumes.source")
            host = self._host_path(source)
            create = (item.get("bind") or {}).get("create_host_path", True)
            if not create and not os.path.exists(host):
                raise self.fail(f"bind source {host} does not exist", "volumes.source")
            return Mount("bind", host, target, bool(item.get("read_only")))
        if kind == "volume":
            nocopy = bool((item.get("volume") or {}).get("nocopy"))
            return Mount("volume", source, target, bool(item.get("read_only")), nocopy)
        raise self.fail(f"mount type {kind!r} is not supported (volume, bind, tmpfs)", "volumes.type")

    def s_tmpfs(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        spec.tmpfs.extend(self._strings(value, "a path or a list of paths[:options]"))

    def s_depends_on(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        if isinstance(value, list):
            spec.depends_on = {str(v): "service_started" for v in value}
            return
        if not isinstance(value, dict):
            raise self.fail("expected a list of services or a mapping of service: {condition: ...}")
        for dep, conf in value.items():
            condition = "service_started"
            if isinstance(conf, dict):
                for k in conf:
                    if k not in ("condition", "restart", "required"):
                        raise self.fail(f"unknown key {k!r}", f"depends_on.{dep}.{k}")
                condition = conf.get("condition", condition)
                if condition not in CONDITIONS:
                    raise self.fail(f"condition {condition!r}: expected one of {', '.join(CONDITIONS)}",
                                    f"depends_on.{dep}.condition")
            elif conf is not None:
                raise self.fail("expected a mapping such as {condition: service_healthy}", f"depends_on.{dep}")
            spec.depends_on[str(dep)] = condition

    def s_healthcheck(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        if not isinstance(value, dict):
            raise self.fail("expected a mapping with test, interval, timeout, retries, start_period")
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k == "disable":
                if v:
                    spec.healthcheck = {"test": ["NONE"]}
                    return
            elif k == "test":
                if isinstance(v, str):
                    out["test"] = ["CMD-SHELL", v]
                elif isinstance(v, list) and v and all(isinstance(t, (str, int, float)) for t in v):
                    test = [str(t) for t in v]
                    if test[0] not in ("CMD", "CMD-SHELL", "NONE"):
                        raise self.fail(f"test must start with CMD, CMD-SHELL or NONE, not {test[0]!r}",
                                        "healthcheck.test")
                    if test[0] == "CMD-SHELL" and len(test) != 2:
                        test = ["CMD-SHELL", " ".join(test[1:])]
                    out["test"] = test
                else:
                    raise self.fail("expected a shell line or a list [CMD, ...] / [CMD-SHELL, line] / [NONE]",
                                    "healthcheck.test")
            elif k in ("interval", "timeout", "start_period", "start_interval"):
                try:
                    out[k] = parse_duration(v)
                except ValueError as exc:
                    raise self.fail(str(exc), f"healthcheck.{k}") from None
            elif k == "retries":
                if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                    raise self.fail(f"expected a number, not {v!r}", "healthcheck.retries")
                out[k] = v
            else:
                raise self.fail(f"unknown healthcheck key {k!r}", f"healthcheck.{k}")
        spec.healthcheck = out

    def s_profiles(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        spec.profiles = self._strings(value, "a list of profile names")

    def s_labels(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        spec.labels = self.labels(value, "labels")

    def s_working_dir(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        spec.options["working_dir"] = _text(value)

    def s_user(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        spec.options["user"] = _text(value)

    def s_hostname(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        spec.options["hostname"] = _text(value)

    def s_container_name(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", _text(value)):
            raise self.fail(f"{value!r} is not a container name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)")
        spec.container_name = _text(value)

    def s_restart(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        text = _text(value)
        if not re.fullmatch(r"no|always|unless-stopped|on-failure(:\d+)?", text):
            raise self.fail(f"{value!r}: expected no, always, on-failure[:N] or unless-stopped")
        spec.restart = text

    def s_extra_hosts(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        if isinstance(value, dict):
            items = [f"{k}:{v}" for k, v in value.items()]
        else:
            items = [str(v).replace("=", ":", 1) if "=" in str(v) else str(v)
                     for v in self._strings(value, "a list of HOST:IP")]
        for item in items:
            host, sep, ip = item.partition(":")
            if not sep or not host or not ip:
                raise self.fail(f"{item!r}: expected HOST:IP")
        spec.extra_hosts = items

    def s_volumes_from(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        spec.volumes_from = self._strings(value, "a list of services (or container:NAME)")

    def s_stop_grace_period(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        try:
            spec.options["stop_timeout"] = max(0, round(parse_duration(value) / 1_000_000_000))
        except ValueError as exc:
            raise self.fail(str(exc)) from None

    def s_scale(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        if value != 1:
            raise self.fail("more than one container per service is not supported by pytest-pods")

    def s_deploy(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        if not isinstance(value, dict):
            raise self.fail("expected a mapping")
        if value.get("replicas", 1) != 1:
            raise self.fail("more than one container per service is not supported by pytest-pods", "deploy.replicas")
        limits = ((value.get("resources") or {}).get("limits") or {})
        if limits.get("memory") is not None:
            spec.options.setdefault("memory", _text(limits["memory"]).lower())
        if limits.get("cpus") is not None:
            spec.options.setdefault("cpus", float(limits["cpus"]))
        if limits.get("pids") is not None:
            spec.options.setdefault("pids_limit", int(limits["pids"]))
        rest = set(value) - {"replicas", "resources"}
        if rest:
            self.warnings.append(f"service {spec.name!r}: deploy.{sorted(rest)[0]}: ignored (swarm placement "
                                 "and update settings do not apply)")

    def s_pull_policy(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        if value not in ("always", "never", "missing", "if_not_present", "build") and not str(value).startswith("daily"):
            raise self.fail(f"{value!r}: expected always, never, missing or build")
        spec.options["_pull"] = str(value)

    def _option(self, spec: ServiceSpec, name: str, value: Any, kinds: tuple[type, ...], what: str) -> None:
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self.fail(f"expected {what}, not {value!r}")
        spec.options[name] = value

    def s_init(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        self._option(spec, "init", value, (bool,), "true or false")

    def s_read_only(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        self._option(spec, "read_only", value, (bool,), "true or false")

    def s_privileged(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        self._option(spec, "privileged", value, (bool,), "true or false")

    def s_stdin_open(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        self._option(spec, "stdin_open", value, (bool,), "true or false")

    def s_cap_add(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        spec.options["cap_add"] = self._strings(value, "a list of capabilities")

    def s_cap_drop(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        spec.options["cap_drop"] = self._strings(value, "a list of capabilities")

    def s_security_opt(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        spec.options["security_opt"] = self._strings(value, "a list of options")

    def s_devices(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        spec.options["devices"] = self._strings(value, "a list of HOST[:CONTAINER[:rwm]]")

    def s_shm_size(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        self._option(spec, "shm_size", value, (str, int), "a size such as 64m")

    def s_mem_limit(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        self._option(spec, "memory", value.lower() if isinstance(value, str) else value, (str, int),
                     "a size such as 256m")

    def s_memswap_limit(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        self._option(spec, "memory_swap", value.lower() if isinstance(value, str) else value, (str, int),
                     "a size such as 512m")

    def s_pids_limit(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        self._option(spec, "pids_limit", value, (int,), "a number")

    def s_cpus(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        try:
            spec.options["cpus"] = float(value)
        except (TypeError, ValueError):
            raise self.fail(f"expected a number such as 0.5, not {value!r}") from None

    def s_stop_signal(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        spec.options["stop_signal"] = _text(value)

    def s_sysctls(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        spec.options["sysctls"] = self.labels(value, "sysctls")

    def s_ulimits(self, spec: ServiceSpec, value: Any, *_: Any) -> None:
        if not isinstance(value, dict):
            raise self.fail("expected a mapping such as {nofile: {soft: 1024, hard: 2048}}")
        out = []
        for name, limit in value.items():
            if isinstance(limit, int) and not isinstance(limit, bool):
                out.append(f"{name}={limit}:{limit}")
            elif isinstance(limit, dict) and isinstance(limit.get("soft"), int) and isinstance(limit.get("hard"), int):
                out.append(f"{name}={limit['soft']}:{limit['hard']}")
            else:
                raise self.fail(f"{name}: expected a number or {{soft: N, hard: N}}", f"ulimits.{name}")
        spec.options["ulimits"] = out

