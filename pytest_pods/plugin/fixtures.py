"""Fixtures: the session-scoped ``pods`` engine and the factories that declare named fixtures.

Declare at module level (or in a conftest); the variable's name is the fixture's name::

    from pytest_pods import container, image, network, wait

    app_image = image(path="app")                          # built once per session
    backend = network()
    db = container(image="pytest-pods/postgres:15", network=backend, wait=wait.tcp(5432))
    app = container(image=app_image, network=backend, ports=[8080],
                    environment={"DB_HOST": "{db.name}"}, wait=wait.http(8080, "/health"))

    def test_app(app):
        assert requests.get(app.url(8080, "/health")).ok

A value that is another factory's fixture (``app_image``, ``backend``) or a string with
``{fixture}`` / ``{fixture.attr}`` templates makes that fixture a dependency, through the
fixture's ``__signature__``: pytest sets them up first and tears them down after. Write
``${VAR}`` for shell variables as usual: a ``{`` after ``$`` is not a template.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, NoReturn

import pytest

from pytest_pods.client.contract import ClientAPI, ContainerAPI, ContainerHandle, ContainersAPI
from pytest_pods.errors import ContainerExitedError, FixtureConfigError, PodsError, ReadinessTimeoutError
from pytest_pods.plugin.session import ImageRef, PodsSession, containers_in

__all__ = ["Pods", "container", "image", "network", "pods", "pulled", "session_of"]

_FACTORY = "_pytest_pods_factory"
_SCOPES = ("function", "class", "module", "package", "session")
_TEMPLATE = re.compile(r"(?<![$])\{([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*|\[[^\]{}]*\])*)\}")
_ALIASES = {"env": "environment", "wait_for": "wait"}
# the contract's create() names the container options both engines take
CONTAINER_OPTIONS = frozenset(inspect.signature(ContainersAPI.create).parameters) - {"self", "image", "command"}
_FACTORY_PARAMS = frozenset({"image", "command", "build", "scope", "wait", "timeout", "shared", "wrap", "warm",
                             "pool"})
_STASH: pytest.StashKey[PodsSession] = pytest.StashKey()

FixtureBody = Callable[[str, PodsSession, dict[str, Any]], Iterator[Any]]
"""What a factory's fixture runs: ``body(fixture_name, session, resolved_values)`` yields its value."""


def session_of(config: pytest.Config) -> PodsSession:
    return config.stash[_STASH]


def set_session(config: pytest.Config, session: PodsSession) -> None:
    config.stash[_STASH] = session


def fail_fixture(fixture: str, exc: BaseException) -> NoReturn:
    """Fail the setup of ``fixture``: one clear line (and, for readiness, the logs) instead of a
    traceback through our code."""
    notes = "\n".join(getattr(exc, "__notes__", []) or [])
    msg = f"pytest-pods: fixture {fixture!r}: {exc}" + (f"\n{notes}" if notes else "")
    raise pytest.fail.Exception(msg, pytrace=False) from None


# --------------------------------------------------------------------------------------------
# the pods fixture


class Pods:
    """The engine as tests see it (the ``pods`` fixture). What ``run`` and ``network`` make is
    removed at the end of the scope that asked for it: the fixture being set up, else the test."""

    def __init__(self, session: PodsSession) -> None:
        self._s = session

    @property
    def client(self) -> ClientAPI:
        """The Client API, for anything the shortcuts here do not cover."""
        return self._s.client

    @property
    def root(self) -> str:
        return self._s.root

    @property
    def session_id(self) -> str:
        """This run's id: in every container's name and its ``pytest-pods.session`` label."""
        return self._s.run_id

    def _requester(self) -> tuple[str, Callable[[Callable[[], None]], None]]:
        s = self._s
        if s.setting_up:
            req = s.setting_up[-1]
            return fixture_name(req), req.addfinalizer
        if s.current_item is not None:
            return s.current_item.name, s.current_item.addfinalizer
        return "session", s.session_finalizers.append

    def build(self, path: str | os.PathLike[str] = ".", *, dockerfile: str | None = None,
              build_args: Mapping[str, str] | None = None, target: str | None = None,
              tag: str | None = None) -> ImageRef:
        """Build a Dockerfile context (cached: a rebuild with nothing changed takes ms)."""
        return self._s.build(self._requester()[0], path, dockerfile=dockerfile, build_args=build_args,
                             target=target, tag=tag)

    def pull(self, ref: str, *, insecure: bool = False) -> ImageRef:
        """Pull ``ref`` unless the store has it (once per root, also across xdist workers)."""
        return self._s.pull(self._requester()[0], ref, insecure=insecure)

    def run(self, image: str | ImageRef, command: Sequence[str] | str | None = None, *, wait: Any = None,
            timeout: float | None = None, **options: Any) -> ContainerAPI:
        """Start a container and wait until ``wait`` holds; Docker's option names
        (``ports``, ``environment``, ``volumes``, ``network``, ``memory``, ...)."""
        who, add_finalizer = self._requester()
        options = container_options(who, options)
        rec = self._s.start(who, "function", str(image), command, wait=wait, timeout=timeout, options=options)
        add_finalizer(lambda: self._s.release(rec))
        return rec.container

    def network(self, name: str | None = None, *, subnet: str | None = None, internal: bool = False) -> str:
        """A bridge network (its name); removed at the end of the asking scope."""
        who, add_finalizer = self._requester()
        net = self._s.network(who, name=name, subnet=subnet, internal=internal)
        add_finalizer(lambda: self._s.remove_network(net))
        return net


@pytest.fixture(scope="session")
def pods(request: pytest.FixtureRequest) -> Pods:
    """Scope: session. The pytest-pods engine: ``pods.build()``, ``pods.pull()``, ``pods.run()``.

    Skips the tests that need it, with the reason, where the engine cannot run (not root, a
    kernel feature missing); with ``--pods-required`` they fail instead.
    """
    s = session_of(request.config)
    s.project = str(request.config.rootpath)
    reason = s.unavailable()
    if reason:
        if s.required:
            pytest.fail(f"pytest-pods: the engine cannot run here: {reason}", pytrace=False)
        pytest.skip(f"pytest-pods: the engine cannot run here: {reason}")
    _ = s.client
    return Pods(s)


# --------------------------------------------------------------------------------------------
# factories


_TEXT, _NUMBER, _SIZE = (str,), (int, float), (str, int)
_LIST, _MAP, _LIST_OR_MAP = (list, tuple), (Mapping,), (list, tuple, Mapping)
# option: (the kinds of value it takes, the forms to name when it gets another; a single text
# where a list is expected is one item, as on docker's command line)
_OPTION_FORMS: dict[str, tuple[tuple[type, ...], str]] = {
    "environment": (_LIST_OR_MAP, "environment={'KEY': 'VALUE'} or environment=['KEY=VALUE']"),
    "volumes": (_LIST, "volumes=['/host/dir:/path[:ro]', 'NAME:/path'] or docker-py's "
                       "volumes={'/host/dir': {'bind': '/path', 'mode': 'ro'}}"),
    "network": (_TEXT, "network='NAME' (bridge, none, host, or a network fixture)"),
    "network_aliases": (_LIST, "network_aliases=['db']"),
    "memory": (_SIZE, "memory='64m' or memory=67108864 (bytes)"),
    "memory_swap": (_SIZE, "memory_swap='128m' or bytes"),
    "shm_size": (_SIZE, "shm_size='128m' or bytes"),
    "cpus": (_NUMBER, "cpus=0.5"),
    "pids_limit": ((int,), "pids_limit=100"),
    "labels": (_MAP, "labels={'key': 'value'}"),
    "entrypoint": ((str, list, tuple), "entrypoint=['/bin/sh', '-c'] or entrypoint='/bin/sh'"),
    "user": ((str, int), "user='1000:1000' or user='nobody'"),
    "working_dir": (_TEXT, "working_dir='/app'"),
    "hostname": (_TEXT, "hostname='db'"),
    "stop_signal": (_TEXT, "stop_signal='SIGTERM'"),
    "stop_timeout": ((int,), "stop_timeout=10 (seconds)"),
    "tmpfs": (_LIST_OR_MAP, "tmpfs={'/run': 'size=64m'} or tmpfs=['/run:size=64m']"),
    "cap_add": (_LIST, "cap_add=['NET_ADMIN']"),
    "cap_drop": (_LIST, "cap_drop=['ALL']"),
    "security_opt": (_LIST, "security_opt=['seccomp=unconfined']"),
    "devices": (_LIST, "devices=['/dev/fuse']"),
    "sysctls": (_LIST_OR_MAP, "sysctls={'net.ipv4.ip_forward': '1'}"),
    "ulimits": (_LIST, "ulimits=['nofile=1024:2048']"),
    **{flag: ((bool,), f"{flag}=True") for flag in ("read_only", "init", "privileged", "publish_all_ports",
                                                  "auto_remove", "stdin_open", "no_new_privileges")},
}
_SINGLE_ITEM = {"volumes", "network_aliases", "cap_add", "cap_drop", "security_opt", "devices", "ulimits"}


def container_options(fixture: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options, checked: an unknown name (with the closest known one) or a value of the wrong
    kind (with the forms it takes) fails the fixture's setup in one line."""
    out = {}
    for key, value in options.items():
        key = _ALIASES.get(key, key)
        if key not in CONTAINER_OPTIONS:
            close = difflib.get_close_matches(key, sorted(CONTAINER_OPTIONS | _FACTORY_PARAMS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            pytest.fail(f"pytest-pods: fixture {fixture!r}: unknown container option {key!r}{hint}", pytrace=False)
        if key in _SINGLE_ITEM and isinstance(value, str):
            value = [value]
        if key == "volumes" and isinstance(value, Mapping):
            value = _docker_py_volumes(fixture, value)
        kinds, forms = _OPTION_FORMS.get(key, ((object,), ""))
        wrong = not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)
        if value is not None and wrong:
            pytest.fail(f"pytest-pods: fixture {fixture!r}: option {key}={value!r} ({type(value).__name__}) is not "
                        f"a value it takes; use {forms}", pytrace=False)
        out[key] = value
    return out


def _docker_py_volumes(fixture: str, volumes: Mapping[str, Any]) -> list[str]:
    """docker-py's ``volumes={SOURCE: {'bind': PATH, 'mode': 'ro'}}`` (or ``{SOURCE: PATH}``) as
    ``SOURCE:PATH[:MODE]`` texts."""
    out = []
    for source, spec in volumes.items():
        if isinstance(spec, str):
            out.append(f"{source}:{spec}")
        elif isinstance(spec, Mapping) and isinstance(spec.get("bind"), str):
            out.append(f"{source}:{spec['bind']}" + (f":{spec['mode']}" if spec.get("mode") else ""))
        else:
            pytest.fail(f"pytest-pods: fixture {fixture!r}: option volumes: {source!r}: {spec!r} is not a mount; "
                        f"use {{'bind': '/path', 'mode': 'ro'}}", pytrace=False)
    return out


def check_command(fixture: str, name: str, value: Any) -> None:
    """``command=``/``entrypoint=`` of a factory: an argv list or a shell line."""
    if value is not None and not (isinstance(value, str) or (
            isinstance(value, (list, tuple)) and all(isinstance(a, (str, int, float)) for a in value))):
        pytest.fail(f"pytest-pods: fixture {fixture!r}: option {name}={value!r} is not a command; use "
                    f"{name}=['prog', 'arg'] (an argv list) or {name}='prog arg' (a shell line)", pytrace=False)


def fixture_name(request: pytest.FixtureRequest) -> str:
    """The name of the fixture being set up (a fixture's own request always has one)."""
    name = request.fixturename
    if name is None:
        raise TypeError("pytest-pods: a fixture body got the test's request, not its own")
    return name


def caller_module() -> tuple[dict[str, Any], str | None]:
    """The globals and directory of the user module declaring a fixture: the first frame up
    the stack outside pytest-pods (so ``postgres_container()`` sees its caller's names)."""
    frame = inspect.currentframe()
    try:
        while frame is not None and str(frame.f_globals.get("__name__", "")).startswith("pytest_pods"):
            frame = frame.f_back
        if frame is None:
            return {}, None
        g = frame.f_globals
        path = g.get("__file__")
        return g, os.path.dirname(os.path.abspath(path)) if path else None
    finally:
        del frame


def _deps(value: Any, names: dict[int, str], out: set[str]) -> None:
    if getattr(value, _FACTORY, None):
        name = names.get(id(value))
        if name is None:
            raise TypeError("pytest-pods: a fixture passed as a value must be defined under a name in the "
                            "same module first (or refer to it by name: '{name}')")
        out.add(name)
    elif isinstance(value, str):
        out.update(m.group(1) for m in _TEMPLATE.finditer(value))
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _deps(k, names, out)
            _deps(v, names, out)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            _deps(v, names, out)


def _attributes(obj: Any) -> str:
    names = sorted(a for a in dir(obj) if not a.startswith("_"))
    return ", ".join(names) if names else "none"


def _lookup(values: Mapping[str, Any], m: re.Match[str]) -> Any:
    """The value of one ``{fixture.attr[key]}`` template; a missing part is a FixtureConfigError
    that names the template, the fixture and what it has."""
    fixture, chain = m.group(1), m.group(2)
    obj = values[fixture]
    path = fixture
    for part in re.finditer(r"\.([A-Za-z_]\w*)|\[([^\]]*)\]", chain):
        what = type(obj).__name__
        try:
            if part.group(1) == "published" and not isinstance(obj, Elsewhere) and len(containers_in(obj)) == 1:
                obj = published(containers_in(obj)[0])  # the same template on any engine of a pool
            elif part.group(1):
                obj = getattr(obj, part.group(1))
            else:
                key = part.group(2).strip("'\"")
                obj = obj[int(key)] if key.isdigit() and isinstance(obj, (list, tuple)) else obj[key]
        except (AttributeError, KeyError, IndexError, TypeError):
            if part.group(1):
                raise FixtureConfigError(
                    f"template {m.group(0)!r}: {path} (a {what}) has no attribute {part.group(1)!r}; "
                    f"it has: {_attributes(obj)}") from None
            keys = f"; its keys: {', '.join(map(str, obj))}" if isinstance(obj, Mapping) else ""
            raise FixtureConfigError(f"template {m.group(0)!r}: {path} (a {what}) has no item "
                                     f"{part.group(2)}{keys}") from None
        path += part.group(0)
    return obj


def _resolve(value: Any, names: dict[int, str], values: Mapping[str, Any]) -> Any:
    if getattr(value, _FACTORY, None):
        return values[names[id(value)]]
    if isinstance(value, str):
        whole = _TEMPLATE.fullmatch(value)
        if whole:  # "{db}" alone: the object itself, not its str()
            return _lookup(values, whole)
        return _TEMPLATE.sub(lambda m: str(_lookup(values, m)), value)
    if isinstance(value, Mapping):
        return {_resolve(k, names, values): _resolve(v, names, values) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_resolve(v, names, values) for v in value)
    return value


def _engine_name(s: PodsSession) -> str:
    return s.remote_host or f"the local engine on {s.root}"


def _across(value: Any, s: PodsSession, here: str, fixture: str, dep: str) -> Any:
    """``value`` as a template may read it: a container on another engine of the pool (a shared
    one on the home engine) is reached through its published ports, never its name or IP."""
    ctrs = containers_in(value)
    if len(ctrs) != 1 or s.remote_host is None:
        return value
    remote = getattr(ctrs[0], "_c", None)
    there = getattr(remote, "host", None)
    own = getattr(s.client, "host", None)
    if there is None or remote is s.client or there == own:
        return value
    return Elsewhere(value, ctrs[0], fixture, dep, here, str(there))


def published(ctr: ContainerHandle) -> dict[str, str]:
    """``{"5432": "HOST:PORT", "5432/tcp": ...}``: a container's published ports as reached from
    this host (the template ``{db.published[5432]}``)."""
    out = {}
    for p in getattr(ctr, "state", {}).get("ports") or []:
        host, port = ctr.address(f"{p['container_port']}/{p['proto']}")
        out[str(p["container_port"])] = out[f"{p['container_port']}/{p['proto']}"] = f"{host}:{port}"
    return out


class Elsewhere:
    """A fixture value on another engine, as templates of a fixture on this engine see it:
    ``{db.published[5432]}`` is ``HOST:PORT`` (the other engine's published address: loopback
    when both run on one machine); ``{db.name}``, ``{db.ip}`` and the in-network forms fail the
    setup naming both engines; other attributes (``dsn``, ``url``...) are the value's own."""

    _IN_NETWORK = frozenset({"name", "ip", "hostname", "network_dsn", "network_url", "network_address"})

    def __init__(self, value: Any, ctr: ContainerHandle, fixture: str, dep: str, here: str, there: str) -> None:
        self._value, self._ctr, self._fixture, self._dep, self._here, self._there = value, ctr, fixture, dep, here, there

    @property
    def published(self) -> dict[str, str]:
        return published(self._ctr)

    def __getattr__(self, attr: str) -> Any:
        if attr in self._IN_NETWORK:
            raise FixtureConfigError(
                f"{self._dep!r} runs on engine {self._there}, {self._fixture!r} on engine {self._here}: its {attr} "
                f"is not reachable from there; use its published address ('{{{self._dep}.published[PORT]}}', "
                "with ports=[PORT] on it), or put both on one engine")
        return getattr(self._value, attr)

    def __str__(self) -> str:
        return str(self._value)


def define_fixture(kind: str, scope: str, values: dict[str, Any], body: FixtureBody) -> Any:
    """A pytest fixture whose dependencies are what ``values`` refer to (via ``__signature__``);
    ``body(fixture_name, session, resolved_values)`` yields its value."""
    if scope not in _SCOPES:
        raise ValueError(f"pytest-pods: {kind}(scope={scope!r}): scope must be one of {', '.join(_SCOPES)}")
    g, _ = caller_module()
    names = {id(v): k for k, v in g.items() if getattr(v, _FACTORY, None)}
    deps: set[str] = set()
    _deps(values, names, deps)
    deps -= {"request", "pods"}

    def fixture(request: pytest.FixtureRequest, pods: Pods, **kwargs: Any) -> Generator[Any, None, None]:
        try:
            here = _engine_name(pods._s)
            kwargs = {k: _across(v, pods._s, here, fixture_name(request), k) for k, v in kwargs.items()}
            resolved = _resolve(values, names, kwargs)
        except FixtureConfigError as exc:
            fail_fixture(fixture_name(request), exc)
        yield from body(fixture_name(request), pods._s, resolved)

    params = [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD),
              inspect.Parameter("pods", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(d, inspect.Parameter.KEYWORD_ONLY) for d in sorted(deps)]
    fixture.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    fixture.__name__ = f"pods_{kind}"
    fixture.__doc__ = f"Scope: {scope}. A pytest-pods {kind} fixture." + (
        f" Depends on: {', '.join(sorted(deps))}." if deps else "")
    defined = pytest.fixture(scope=scope)(fixture)  # type: ignore[call-overload]
    setattr(defined, _FACTORY, kind)
    return defined


def image(path: str | os.PathLike[str] = ".", *, dockerfile: str | None = None,
          build_args: Mapping[str, str] | None = None, target: str | None = None, tag: str | None = None,
          scope: str = "session") -> Any:
    """Declare a fixture that builds the Dockerfile context ``path`` (relative to the declaring
    module's directory); its value is an :class:`ImageRef` (``str()`` is the tag or ID)."""
    _, here = caller_module()
    if here and not os.path.isabs(os.fspath(path)):
        path = os.path.join(here, os.fspath(path))

    def body(fixture: str, s: PodsSession, v: dict[str, Any]) -> Iterator[Any]:
        try:
            yield s.build(fixture, v["path"], dockerfile=v["dockerfile"], build_args=v["build_args"],
                          target=v["target"], tag=v["tag"])
        except (FixtureConfigError, PodsError) as exc:
            fail_fixture(fixture, exc)

    return define_fixture("image", scope, {"path": os.fspath(path), "dockerfile": dockerfile, "build_args": build_args,
                                    "target": target, "tag": tag}, body)


def pulled(ref: str, *, insecure: bool = False, scope: str = "session") -> Any:
    """Declare a fixture that pulls ``ref`` unless the store has it; its value is an ImageRef."""

    def body(fixture: str, s: PodsSession, v: dict[str, Any]) -> Iterator[Any]:
        try:
            yield s.pull(fixture, v["ref"], insecure=insecure)
        except PodsError as exc:
            fail_fixture(fixture, exc)

    return define_fixture("image", scope, {"ref": ref}, body)


def network(*, name: str | None = None, subnet: str | None = None, internal: bool = False,
            scope: str = "function") -> Any:
    """Declare a fixture for a bridge network; its value is the network's name. Containers and
    shared servers on it are removed before it (whatever their scopes); with ``--pods-reuse`` one
    of a wider scope than function is kept between runs with the containers reused on it."""
    g, _ = caller_module()
    module = str(g.get("__name__", ""))

    def body(fixture: str, s: PodsSession, v: dict[str, Any]) -> Iterator[Any]:
        try:
            net = s.network(fixture, name=v["name"], subnet=v["subnet"], internal=internal, scope=scope,
                            identity=f"{module}::{fixture}")
        except PodsError as exc:
            fail_fixture(fixture, exc)
        try:
            yield net
        finally:
            s.remove_network(net)

    return define_fixture("network", scope, {"name": name, "subnet": subnet}, body)


def container(image: Any = None, command: Sequence[str] | str | None = None, *, scope: str = "function",
              build: str | os.PathLike[str] | Mapping[str, Any] | None = None, wait: Any = None,
              timeout: float | None = None, shared: bool = True, warm: Callable[[Any], None] | None = None,
              pool: int = 0, wrap: Callable[[ContainerAPI], Any] | None = None, **options: Any) -> Any:
    """Declare a fixture for a running, ready container; its value is the
    :class:`~pytest_pods.Container` (or ``wrap(container)``).

    :param image: an image name, an ``image()``/``pulled()`` fixture, or ``"{fixture}"``
    :param build: instead of ``image``, a Dockerfile context to build at setup (relative to the
        declaring module), or a dict of ``path``, ``dockerfile``, ``build_args``, ``target``

    :param wait: a readiness strategy (:mod:`pytest_pods.wait`); a str is a log regex, an int a
        TCP port. Default: the image's HEALTHCHECK if it has one, else none.
    :param timeout: seconds for the readiness check (default ``--pods-timeout``, 60)
    :param shared: under pytest-xdist, one session-scoped container for all workers
    :param warm: ``warm(value)`` prepares the service once per session (load a schema, seed data);
        the container is then stopped cleanly and committed, and every container of this fixture
        starts from that snapshot
    :param pool: keep this many (function-scoped) containers started and ready in the background,
        so that a test gets a fresh one without waiting
    :param options: Docker's names: ``environment`` (or ``env``), ``ports``, ``volumes``,
        ``network``, ``entrypoint``, ``user``, ``memory``, ``labels``, ...
    """

    g, here = caller_module()
    module = str(g.get("__name__", ""))
    if build is not None:
        build = dict(build) if isinstance(build, Mapping) else {"path": os.fspath(build)}
        if here and not os.path.isabs(os.fspath(build["path"])):
            build["path"] = os.path.join(here, os.fspath(build["path"]))

    def body(fixture: str, s: PodsSession, v: dict[str, Any]) -> Iterator[Any]:
        if (v["image"] is None) == (v["build"] is None):
            fail_fixture(fixture, FixtureConfigError("give either image= or build="))
        opts = container_options(fixture, v["options"])
        check_command(fixture, "command", v["command"])
        try:
            if v["build"] is not None:
                b = dict(v["build"])
                unknown = set(b) - {"path", "dockerfile", "build_args", "target", "tag"}
                if unknown:
                    raise FixtureConfigError(f"unknown build option {sorted(unknown)[0]!r}")
                v["image"] = s.build(fixture, b.pop("path"), **b)
            rec = s.start(fixture, scope, str(v["image"]), v["command"], wait=wait, timeout=timeout,
                          share=shared, options=opts, identity=f"{module}::{fixture}", warm=warm, wrap=wrap,
                          pool=pool)
        except (FixtureConfigError, ReadinessTimeoutError, ContainerExitedError) as exc:
            fail_fixture(fixture, exc)
        except PodsError as exc:
            fail_fixture(fixture, exc)
        try:
            yield wrap(rec.container) if wrap is not None else rec.container
        finally:
            s.release(rec)

    return define_fixture("container", scope, {"image": image, "build": build, "command": command, "options": options},
                   body)
