"""Compose files as fixtures (issue 16): ``compose("docker-compose.yml")`` starts the stack a
compose file describes on our engine, with no compose binary::

    from pytest_pods import compose

    stack = compose("docker-compose.yml", services=["web"], scope="module")

    def test_web(stack):
        assert requests.get(stack["web"].url(8000, "/")).ok

The file is read by :mod:`pytest_pods.compose` (the Compose Specification: interpolation, ``.env``,
profiles, the services' keys); then, as ``docker compose up`` does: images are built or found,
the project's networks (``<project>_default`` and the declared ones) and named volumes made, and
the services started in dependency order (``depends_on`` conditions honoured); the fixture is
ready when every service is: its health check passes (the compose file's or the image's), else
its published TCP ports answer. Teardown removes the containers, the project's networks and,
unless ``keep_volumes=True``, its named volumes. A failure on the way removes what was made.
"""

from __future__ import annotations

import inspect
import os
import shlex
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pytest_pods.client.contract import ContainerAPI
from pytest_pods.compose_file import ComposeFileError, Project, ServiceSpec, load
from pytest_pods.errors import ContainerExitedError, FixtureConfigError, NotFoundError, PodsError
from pytest_pods.plugin.fixtures import caller_module, define_fixture, fail_fixture
from pytest_pods.plugin.session import IMAGE_PROVIDERS, ImageRef, PodsSession, Record
from pytest_pods.wait import Strategy, all_of, healthcheck, healthcheck_command, tcp, wait_ready

__all__ = ["ComposeStack", "ComposeWarning", "compose"]

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


class ComposeWarning(UserWarning):
    """A compose file key that pytest-pods ignores because ignoring it is harmless in a test
    (``logging``, ``tty``, ``restart`` ...); keys whose absence would change what the stack
    does fail the fixture instead."""


class ComposeStack:
    """A running compose project: ``stack["db"]`` (or ``stack.service("db")``) is the service's
    :class:`~pytest_pods.Container`, with ``address(port)``, ``url(port, path)``, ``exec``, ``logs``.
    """

    def __init__(self, session: PodsSession, fixture: str, project: Project, name: str, *,
                 image_prefix: str, keep_volumes: bool, timeout: float | None, scope: str = "function") -> None:
        self._s, self._fixture, self.spec, self._scope = session, fixture, project, scope
        self.project = name
        self._image_prefix = image_prefix
        self._keep_volumes = keep_volumes
        self._timeout = timeout if timeout is not None else session.timeout
        self._records: dict[str, Record] = {}
        self.networks: dict[str, str] = {}  # network key -> the engine's name
        self.volumes: dict[str, str] = {}  # volume key -> the engine's name
        self._made_networks: list[str] = []
        self._made_volumes: list[str] = []
        self.images: dict[str, ImageRef] = {}

    # what tests use ------------------------------------------------------------------------
    def service(self, name: str) -> ContainerAPI:
        """The container of service ``name``."""
        rec = self._records.get(name)
        if rec is None:
            raise KeyError(f"compose project {self.project!r} has no running service {name!r}; it has: "
                           f"{', '.join(self._records) or 'none'}")
        return rec.container

    def __getitem__(self, name: str) -> ContainerAPI:
        return self.service(name)

    def __contains__(self, name: object) -> bool:
        return name in self._records

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    @property
    def services(self) -> list[str]:
        """The services started, in the order they were started."""
        return list(self._records)

    @property
    def containers(self) -> list[ContainerAPI]:
        """Every service's container (the plugin puts their logs in a failing test's report)."""
        return [r.container for r in self._records.values()]

    def logs(self, service: str | None = None) -> str:
        """The log of one service, or of every service with its name before each line."""
        if service is not None:
            return self.service(service).logs().decode("utf-8", "replace")
        out = []
        for name, rec in self._records.items():
            for line in rec.container.logs().decode("utf-8", "replace").splitlines():
                out.append(f"{name}  | {line}")
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"<ComposeStack {self.project} services={self.services}>"

    # up ------------------------------------------------------------------------------------
    def up(self) -> None:
        order = self.spec.order()
        for name in order:
            self._image(self.spec.services[name])
        self._make_networks()
        self._make_volumes()
        for name in order:
            spec = self.spec.services[name]
            for dep, condition in spec.depends_on.items():
                self._await(name, dep, condition)
            self._start(spec)
        for name in order:
            self._ready(self.spec.services[name])

    def _fail(self, service: str, key: str | None, message: str) -> ComposeFileError:
        return ComposeFileError(self.spec.file, message, service=service, key=key)

    def _image(self, spec: ServiceSpec) -> None:
        s, fixture = self._s, self._fixture
        if spec.build is not None:
            tag = spec.image or f"{self._image_prefix}-{spec.name}"
            try:
                self.images[spec.name] = s.build(fixture, spec.build.context, dockerfile=spec.build.dockerfile,
                                                 build_args=spec.build.args, target=spec.build.target, tag=tag)
            except (FixtureConfigError, PodsError) as exc:
                raise self._fail(spec.name, "build", f"build failed: {exc}") from None
            return
        assert spec.image is not None
        try:
            img = s.client.images.get(spec.image)
            self.images[spec.name] = ImageRef(spec.image, img.id)
            return
        except NotFoundError:
            pass
        make = IMAGE_PROVIDERS.get(spec.image)
        try:
            if make is not None:
                self.images[spec.name] = make(s, fixture)
            else:
                self.images[spec.name] = s.pull(fixture, spec.image)
        except PodsError as exc:
            raise self._fail(spec.name, "image", f"image {spec.image!r} is not in the store and cannot be "
                             f"pulled: {exc}") from None

    def _labels(self, what: str, key: str) -> dict[str, str]:
        return {PROJECT_LABEL: self.project, f"com.docker.compose.{what}": key}

    def _make_networks(self) -> None:
        used = {net for spec in self.spec.services.values() for net in spec.networks}
        for key in sorted(used):
            net = self.spec.networks.get(key)
            if net is not None and net.external:
                name = net.name or key
                try:
                    self._s.client.networks.get(name)
                except NotFoundError:
                    raise ComposeFileError(self.spec.file, f"external network {name!r} not found",
                                           key=f"networks.{key}") from None
                self.networks[key] = name
                continue
            name = (net.name if net is not None and net.name else None) or f"{self.project}_{key}"
            try:
                made = self._s.network(self._fixture, name=name, subnet=net.subnet if net else None,
                                       internal=net.internal if net else False,
                                       labels=(net.labels if net else {}) | self._labels("network", key))
            except (FixtureConfigError, PodsError) as exc:
                raise ComposeFileError(self.spec.file, f"network {name}: {exc}", key=f"networks.{key}") from None
            self.networks[key] = made
            self._made_networks.append(made)

    def _make_volumes(self) -> None:
        used = {m.source for spec in self.spec.services.values() for m in spec.mounts
                if m.kind == "volume" and m.source}
        for key in sorted(used):
            vol = self.spec.volumes[key]
            name = vol.name or (key if vol.external else f"{self.project}_{key}")
            try:
                self._s.client.volumes.get(name)
                exists = True
            except NotFoundError:
                exists = False
            if vol.external and not exists:
                raise ComposeFileError(self.spec.file, f"external volume {name!r} not found", key=f"volumes.{key}")
            if not exists:
                try:
                    self._s.client.volumes.create(name, labels=vol.labels | self._labels("volume", key))
                except PodsError as exc:
                    raise ComposeFileError(self.spec.file, f"volume {name}: {exc}", key=f"volumes.{key}") from None
            self.volumes[key] = name
            if not vol.external:
                self._made_volumes.append(name)

    def _options(self, spec: ServiceSpec) -> tuple[dict[str, Any], list[tuple[str, list[str]]]]:
        opts: dict[str, Any] = {k: v for k, v in spec.options.items() if not k.startswith("_")}
        if spec.environment:
            opts["environment"] = dict(spec.environment)
        if spec.entrypoint is not None:
            opts["entrypoint"] = shlex.split(spec.entrypoint) if isinstance(spec.entrypoint, str) else spec.entrypoint
        if spec.ports:
            opts["ports"] = list(spec.ports)
        volumes = []
        for m in spec.mounts:
            if m.kind == "bind":
                if not os.path.exists(m.source):
                    os.makedirs(m.source, exist_ok=True)  # as compose does for the short syntax
                volumes.append(f"{m.source}:{m.target}" + (":ro" if m.read_only else ""))
            elif m.source:
                modes = ",".join(x for x, on in (("ro", m.read_only), ("nocopy", m.nocopy)) if on)
                volumes.append(f"{self.volumes[m.source]}:{m.target}" + (f":{modes}" if modes else ""))
            else:
                volumes.append(m.target)  # anonymous
        if volumes:
            opts["volumes"] = volumes
        if spec.tmpfs:
            opts["tmpfs"] = list(spec.tmpfs)
        if spec.healthcheck is not None:
            opts["healthcheck"] = dict(spec.healthcheck)
        if spec.volumes_from:
            sources = []
            for item in spec.volumes_from:
                src, _, mode = item.partition(":")
                if src == "container":
                    src, _, mode = mode.partition(":")
                elif src in self._records:
                    src = self._records[src].container.name
                else:
                    raise self._fail(spec.name, "volumes_from", f"{item!r}: no such service started before it "
                                     "(add it to depends_on)")
                sources.append(f"{src}:{mode}" if mode else src)
            opts["volumes_from"] = sources
        extra: list[tuple[str, list[str]]] = []
        if spec.network_mode is not None:
            opts["network"] = spec.network_mode
        else:
            keys = list(spec.networks)
            first = keys[0]
            opts["network"] = self.networks[first]
            opts["network_aliases"] = [spec.name, *spec.networks[first]]
            extra = [(self.networks[k], [spec.name, *spec.networks[k]]) for k in keys[1:]]
        return opts, extra

    def _start(self, spec: ServiceSpec) -> None:
        s = self._s
        opts, extra = self._options(spec)
        # extra_hosts and restart policies: passed where the engine's create takes them (the local
        # engine does since issue 16's container slice); elsewhere an error and a warning
        takes = self._create_takes()
        if spec.extra_hosts:
            if "extra_hosts" not in takes:
                raise self._fail(spec.name, "extra_hosts", "not supported by this engine's client (no --add-host); "
                                 "put the host on a network of the stack instead")
            opts["extra_hosts"] = list(spec.extra_hosts)
        if spec.restart not in (None, "no"):
            if "restart_policy" in takes:
                policy, _, count = str(spec.restart).partition(":")
                opts["restart_policy"] = {"Name": policy, "MaximumRetryCount": int(count or 0)}
            else:
                warnings.warn(ComposeWarning(f"{self.spec.file}: service {spec.name!r}: restart: {spec.restart}: "
                                             "ignored (this engine's client takes no restart policy; a test sees "
                                             "a crashed service as exited)"), stacklevel=1)
        command = shlex.split(spec.command) if isinstance(spec.command, str) else spec.command
        name = spec.container_name or f"{self.project}-{spec.name}-1"
        labels = spec.labels | self._labels("service", spec.name) | {
            "com.docker.compose.container-number": "1", "com.docker.compose.oneoff": "False",
            "com.docker.compose.project.config_files": os.fspath(self.spec.file),
            "com.docker.compose.project.working_dir": os.fspath(self.spec.directory)}
        labels |= s.labels(self._fixture, s.owner)
        s.ensure_watchdog()
        image = self.images[spec.name]
        t0 = time.monotonic()
        try:
            ctr = s.client.containers.create(image.id, command, name=name, labels=labels, **opts)
        except (TypeError, PodsError) as exc:
            raise self._fail(spec.name, None, f"create: {exc}") from None
        item = s.current_item.nodeid if s.current_item is not None else None
        rec = Record(ctr, self._fixture, self._scope, image.ref, item, name=ctr.name, network=str(opts["network"]))
        rec.times["create"] = time.monotonic() - t0
        s.records.append(rec)
        self._records[spec.name] = rec
        try:
            for net, aliases in extra:
                s.client.networks.connect(net, ctr.id, aliases=aliases)
            if s.hook is not None:
                s.hook.pytest_pods_container_created(container=ctr, fixture=self._fixture)
            t1 = time.monotonic()
            ctr.start()
            rec.times["start"] = time.monotonic() - t1
        except PodsError as exc:
            raise self._fail(spec.name, None, f"start: {exc}") from None

    def _create_takes(self) -> frozenset[str]:
        try:
            return frozenset(inspect.signature(self._s.client.containers.create).parameters)
        except (TypeError, ValueError):
            return frozenset()

    def _await(self, service: str, dep: str, condition: str) -> None:
        rec = self._records[dep]
        if condition == "service_healthy":
            if self._health_strategy(rec.container) is None:
                raise self._fail(service, f"depends_on.{dep}", f"condition service_healthy, but service {dep!r} "
                                 "has no healthcheck (in the file or its image)")
            self._wait(dep, rec, healthcheck())
        elif condition == "service_completed_successfully":
            try:
                code = rec.container.wait(self._timeout)
            except TimeoutError:
                raise self._fail(service, f"depends_on.{dep}", f"condition service_completed_successfully, but "
                                 f"service {dep!r} still runs after {self._timeout:g} s") from None
            if code != 0:
                tail = rec.container.logs(tail=10).decode("utf-8", "replace").rstrip()
                raise self._fail(service, f"depends_on.{dep}", f"service {dep!r} exited with code {code}, not 0"
                                 + (f"; its last log lines:\n{tail}" if tail else ""))

    def _health_strategy(self, ctr: ContainerAPI) -> Strategy | None:
        cfg = ctr.inspect().get("Config") or {}
        return healthcheck() if healthcheck_command(cfg) is not None else None

    def _ready_strategy(self, spec: ServiceSpec, ctr: ContainerAPI) -> Strategy | None:
        health = self._health_strategy(ctr)
        if health is not None:
            return health
        ports = sorted({int(p.split(":")[-1].split("/")[0]) for p in spec.ports if p.endswith("/tcp")})
        if not ports or spec.network_mode in ("host", "none"):
            return None
        return all_of(*(tcp(p) for p in ports)) if len(ports) > 1 else tcp(ports[0])

    def _wait(self, service: str, rec: Record, strategy: Strategy) -> None:
        t0 = time.monotonic()
        wait_ready(rec.container, strategy, self._timeout, label=f"fixture {self._fixture!r}: service {service!r}")
        rec.times["ready"] = rec.times.get("ready", 0.0) + time.monotonic() - t0

    def _ready(self, spec: ServiceSpec) -> None:
        rec = self._records[spec.name]
        if any(s.depends_on.get(spec.name) == "service_completed_successfully" for s in self.spec.services.values()):
            return  # a one-shot job: it did its work (and its dependants waited for that)
        strategy = self._ready_strategy(spec, rec.container)
        if strategy is not None:
            self._wait(spec.name, rec, strategy)
        if self._s.hook is not None:
            self._s.hook.pytest_pods_container_ready(container=rec.container, fixture=self._fixture,
                                                     seconds=rec.times.get("ready", 0.0))

    # down ----------------------------------------------------------------------------------
    def down(self) -> None:
        """Remove the containers (last started first), the project's networks and, unless
        ``keep_volumes``, its named volumes; every step runs, failures are raised together."""
        errors: list[Exception] = []
        kept = False
        for rec in reversed(list(self._records.values())):
            kept = kept or rec.kept
            try:
                self._s.release(rec)
            except Exception as exc:
                errors.append(exc)
        if not kept:  # --pods-keep-on-failure: what the kept containers use stays with them
            for net in reversed(self._made_networks):
                try:
                    self._s.remove_network(net)
                except Exception as exc:
                    errors.append(exc)
            if not self._keep_volumes:
                for vol in self._made_volumes:
                    try:
                        self._s.client.volumes.remove(vol, force=True)
                    except NotFoundError:
                        pass
                    except Exception as exc:
                        errors.append(exc)
        self._made_networks.clear()
        self._made_volumes.clear()
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup(f"pytest-pods: compose project {self.project}: teardown", errors)


def _project_name(text: str) -> str:
    out = "".join(c for c in text.lower() if c.isalnum() or c in "-_")
    return out.lstrip("-_") or "pods"


def compose(file: str | os.PathLike[str] = "docker-compose.yml", *, services: Iterable[str] | None = None,
            scope: str = "function", project: str | None = None, env_file: str | os.PathLike[str] | None = None,
            profiles: Iterable[str] | str = (), environment: Mapping[str, str] | None = None,
            keep_volumes: bool = False, timeout: float | None = None) -> Any:
    """Declare a fixture that starts the stack of a compose file on the pods engine; its value is
    a :class:`ComposeStack` (``stack["db"]`` is service ``db``'s container).

    :param file: the compose file, relative to the declaring module's directory
    :param services: start only these (and what they depend on); default every service enabled
        by ``profiles``
    :param project: the project name (names ``<project>-<service>-1``, ``<project>_default``);
        default a name unique to this run and worker, so stacks never collide (xdist included)
    :param env_file: the variables file read for interpolation, instead of the ``.env`` beside
        the compose file
    :param profiles: the profiles enabled (``COMPOSE_PROFILES`` is not read: say it here)
    :param environment: variables for interpolation, over the process environment
    :param keep_volumes: leave the project's named volumes at teardown (``down`` without ``-v``)
    :param timeout: seconds for each service to become ready (default ``--pods-timeout``)
    """
    _, here = caller_module()
    path = os.fspath(file)
    if here and not os.path.isabs(path):
        path = os.path.join(here, path)
    wanted = None if services is None else ([services] if isinstance(services, str) else list(services))
    active = [profiles] if isinstance(profiles, str) else list(profiles)

    def body(fixture: str, s: PodsSession, v: dict[str, Any]) -> Iterator[Any]:
        environ = {**os.environ, **{str(k): str(x) for k, x in (v["environment"] or {}).items()}}
        try:
            spec = load(v["file"], environ=environ, env_file=env_file, profiles=active, services=wanted)
        except ComposeFileError as exc:
            fail_fixture(fixture, exc)
        for message in spec.warnings:
            warnings.warn(ComposeWarning(f"{spec.file}: {message}"), stacklevel=1)
        base = _project_name(project or spec.name or spec.directory.name)
        name = _project_name(project) if project else f"{base}-{s.name().removeprefix('pods-')}"
        stack = ComposeStack(s, fixture, spec, name, image_prefix=base, keep_volumes=keep_volumes, timeout=timeout,
                             scope=scope)
        try:
            stack.up()
        except (FixtureConfigError, PodsError, ContainerExitedError) as exc:
            _down_quietly(stack, exc)
            fail_fixture(fixture, exc)
        except BaseException as exc:
            _down_quietly(stack, exc)
            raise
        try:
            yield stack
        finally:
            stack.down()

    return define_fixture("compose", scope, {"file": path, "environment": dict(environment or {})}, body)


def _down_quietly(stack: ComposeStack, cause: BaseException) -> None:
    """Remove what a failed ``up`` made; a failure of that is noted on the first error."""
    try:
        stack.down()
    except Exception as exc:
        cause.add_note(f"and removing what was made failed: {exc}")

