"""The pods session: one per pytest process, the single owner of what fixtures make.

It names containers (``pods-<run>-<worker>-<n>``: no collisions under xdist, sweepable after a
crash), labels them with its owner key (``pid-starttime`` of this pytest process) so that the
watchdog and the next session can find what a killed one left, records a timeline per container,
and releases everything it still holds at session end.

Under pytest-xdist a session-scoped container is shared by all workers of one run: the first
worker to need it creates it under a file lock, each worker adds itself to a users file, and the
last one to leave removes it. It is owned by the xdist controller, whose watchdog and session end
remove it if a worker dies without leaving.

With ``--pods-reuse`` a container of a wider-than-function scope is named after its fixture and
labelled with the hash of its whole configuration (image ID included); a later run that computes
the same hash picks it up again, a different hash replaces it. Reused containers have no owner:
they outlive the session on purpose.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from pytest_pods.client import Client
from pytest_pods.client.contract import ClientAPI, ContainerAPI, ContainerHandle, ImageAPI, engine_unavailable
from pytest_pods.errors import (
    ConflictError,
    EngineUnavailableError,
    FixtureConfigError,
    ImageNotFoundError,
    InvalidArgumentError,
    NotFoundError,
    PodsError,
)
from pytest_pods.plugin.heartbeat import Heartbeat
from pytest_pods.plugin.pool import Pool
from pytest_pods.plugin.session_daemon import SESSION_HOST_ENV, SessionDaemon, rootless
from pytest_pods.wait import Strategy, as_strategy, healthcheck, healthcheck_command, wait_ready
from pytest_pods.watchdog import OWNER_LABEL, kept_dir, owner_key, sweep

if TYPE_CHECKING:
    import pluggy
    import pytest

    from pytest_pods.client.remote import RemoteClient

DEFAULT_ROOT = "/var/lib/pytest-pods"
SESSION_LABEL = "pytest-pods.session"
FIXTURE_LABEL = "pytest-pods.fixture"
REUSE_LABEL = "pytest-pods.config"
WARM_BASE_LABEL = "pytest-pods.warm-base"

Command = Sequence[str] | str | None
"""A container's command: argv, a shell line, or None for the image's."""
Wrap = Callable[[ContainerAPI], Any]
"""What a fixture's value is made of its container (``Postgres``, ``HttpService``, ...)."""
IMAGE_PROVIDERS: dict[str, Callable[[PodsSession, str], Any]] = {}
"""Images the plugin makes on first use wherever they are named (the shipped services register
theirs: ``container(image="pytest-pods/postgres:15")`` works on a fresh root, in any test order):
tag -> ``make(session, fixture)``."""


@dataclass
class Record:
    """One container a fixture made: for teardown, reports and the timeline."""

    container: ContainerAPI
    fixture: str
    scope: str
    image: str
    item: str | None
    name: str = ""
    times: dict[str, float] = field(default_factory=dict)
    shared: str | None = None
    reused: bool = False  # picked up from an earlier run (``--pods-reuse``)
    persistent: bool = False  # kept between runs (``--pods-reuse``): release leaves it
    kept: bool = False
    released: bool = False
    network: str = ""  # the network it was started on (released before that network goes)
    engine: str = ""  # set for a shared container on the home engine (issue 20)


@dataclass(frozen=True)
class ImageRef:
    """An image a fixture built or pulled: ``str()`` is what ``container(image=...)`` runs."""

    ref: str
    id: str
    seconds: float = 0.0
    how: str = "cached"

    def __str__(self) -> str:
        return self.ref


def _published_ports(ports: Any) -> set[int]:
    if not ports:
        return set()
    specs = list(ports.keys()) if isinstance(ports, Mapping) else list(ports)
    out = set()
    for spec in specs:
        last = str(spec).split(":")[-1].split("/")[0]
        if last.isdigit():
            out.add(int(last))
    return out


PORT_FORMS = ("ports=[8000] (any free host port), ports={'8000/tcp': 8080} (a fixed host port), "
              "ports=['127.0.0.1:8080:8000/tcp'] (docker run -p texts)")


def normalize_ports(ports: Any) -> Any:
    """``[6379]`` (ints: any free host port) and a single port (``8000``, ``"8000/udp"``) are
    accepted beside docker-py's forms; anything else is refused naming the forms."""
    if ports is not None and (isinstance(ports, bool) or not isinstance(ports, (int, str, list, tuple, Mapping))):
        raise FixtureConfigError(f"option ports={ports!r}: not a port or a list of ports; use {PORT_FORMS}")
    if isinstance(ports, (int, str)):
        ports = [ports]
    if isinstance(ports, (list, tuple)):
        for p in ports:
            if isinstance(p, bool) or not (isinstance(p, (int, str)) or hasattr(p, "container_port")):
                raise FixtureConfigError(f"option ports: {p!r} is not a port; use {PORT_FORMS}")
        return [str(p) if isinstance(p, int) else p for p in ports]
    return ports or ()


class PodsSession:
    """Everything pytest-pods holds in one pytest process (on ``config.stash``)."""

    def __init__(self, *, root: str, timeout: float, keep_on_failure: bool, reuse: bool, required: bool,
                 host: str | None = None,
                 registry: str | None, run_id: str | None, worker: str, controller_pid: int | None,
                 hook: pluggy.HookRelay | None = None, ignore_limits: bool = False,
                 home: str | None = None, controller_owner: str | None = None,
                 pool_registry: str | None = None) -> None:
        self.root = root
        self.host = host  # a remote engine (RemoteClient), else the local one on ``root``
        # issue 20: with remote engines, the engine that holds the run's shared session containers
        # (the pool's first); they are shared through it (a deterministic name, 409 = join)
        self.home = home
        # issue 20: where an image() built once for the pool goes (HOST[:PORT][/NS]); each engine
        # pulls it by digest from there
        self.pool_registry = (pool_registry or "").strip().rstrip("/") or None
        self._home_client: ClientAPI | None = None
        self.heartbeats: dict[str, Heartbeat] = {}
        self.heartbeat_notes: dict[str, str] = {}  # engine -> why it has no heartbeat
        self.ignore_limits = ignore_limits
        # rootless without a host: the engine is the session's own pods daemon on ``root`` (the
        # controller's or the single process's; workers get its address in PODS_SESSION_HOST)
        self.rootless = host is None and rootless()
        self.daemon: SessionDaemon | None = None
        self.daemon_host: str | None = None
        self.timeout = timeout
        self.keep_on_failure = keep_on_failure
        self.reuse = reuse
        self.required = required
        self.registry = registry
        self.run_id = (run_id or secrets.token_hex(4))[:8]
        self.worker = worker
        self.hook = hook
        self.owner = owner_key()
        self.controller_owner = controller_owner or (owner_key(controller_pid) if controller_pid else None)
        self.records: list[Record] = []
        self.images: dict[str, ImageRef] = {}
        self.current_item: pytest.Item | None = None
        self.setting_up: list[pytest.FixtureRequest] = []  # SubRequests of fixtures being set up, innermost last
        self.session_finalizers: list[Callable[[], None]] = []
        self.pools: dict[str, Pool] = {}
        self.snapshots: dict[str, str] = {}
        self.resources: dict[str, Any] = {}
        self._releasers: dict[str, Callable[[Any], None]] = {}
        self.resource_networks: dict[str, str] = {}  # resource key -> the network its server is on
        self.persistent_networks: set[str] = set()  # reused networks (``--pods-reuse``): they stay
        self.project = ""  # the rootdir of the tests: part of every reuse key (two projects never share)
        self._client: ClientAPI | None = None
        self._remote: RemoteClient | None = None
        self.image_aliases: Any = None  # issue 17: a client.aliases.Resolver (plugin/image_aliases.py)
        self._unavailable: str | None = None
        self._checked = False
        self._count = itertools.count(1)
        self._watchdog: subprocess.Popen[bytes] | None = None
        self.is_controller = False  # the xdist controller: owns the workers' shared containers
        self.pool: list[str] = []  # issue 20: every engine of --pods-host, in order

    # -- the engine -----------------------------------------------------------------------
    def unavailable(self) -> str | None:
        if not self._checked:
            if self.host:
                self._unavailable = self._connect(self.host)
            else:
                self._unavailable = engine_unavailable()  # rootless: the user namespace, uidmap, the kernel
            self._checked = True
        return self._unavailable

    @property
    def remote_host(self) -> str | None:
        """The engine's address when it is remote: ``--pods-host``, or the rootless session daemon's."""
        return self.host or self.daemon_host

    def _connect(self, host: str) -> str | None:
        """Make the RemoteClient for ``host``; None when it answers ``/_ping``, else why not."""
        # lazy: only with a remote engine (requests, http.client and ssl stay unloaded otherwise)
        from pytest_pods.client.remote import RemoteClient

        try:
            self._remote = RemoteClient(host)
            return None if self._remote.ping() else f"{host} does not answer /_ping"
        except PodsError as exc:
            return str(exc)

    def start_daemon(self) -> None:
        """Rootless: connect to the session's pods daemon (a worker: the controller's, from the
        environment), starting it first in the controller or the single process."""
        if self.daemon_host is not None:
            return
        inherited = os.environ.get(SESSION_HOST_ENV) if self.worker != "main" else None
        if inherited:
            host = inherited
        else:
            self.daemon = SessionDaemon(self.root, self.run_id, ignore_limits=self.ignore_limits)
            host = self.daemon.start()
            if self.worker == "main":
                os.environ[SESSION_HOST_ENV] = host  # the xdist workers, spawned after this
        reason = self._connect(host)
        if reason:
            raise EngineUnavailableError(f"pytest-pods: the session's pods daemon: {reason}")
        self.daemon_host = host
        if self.daemon is not None and not self.daemon.borrowed:
            self.ensure_watchdog()  # it holds the daemon's lifeline: sweep first, then the daemon goes

    def stop_daemon(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None
        if self.daemon_host is not None and self.worker == "main" and os.environ.get(SESSION_HOST_ENV) == self.daemon_host:
            os.environ.pop(SESSION_HOST_ENV, None)

    @property
    def client(self) -> ClientAPI:
        """The engine: the local Client on ``root``, or a RemoteClient for ``host``."""
        if self._client is None:
            reason = self.unavailable()
            if reason:
                raise EngineUnavailableError(f"pytest-pods: {reason}")
            os.makedirs(self.root, exist_ok=True)
            if self.rootless:
                self.start_daemon()
            # with --pods-host (or rootless), the RemoteClient was made and it answered /_ping
            client: ClientAPI = self._remote if self._remote is not None else Client(self.root)
            if self.image_aliases is not None:  # issue 17: official names -> local images
                self.image_aliases.install(client)
            self._client = client
            self._state_dir.mkdir(parents=True, exist_ok=True)
            sweep(self.root, host=self.remote_host)  # what killed sessions left, if their watchdog could not run
            return client
        return self._client

    @property
    def _state_dir(self) -> Path:
        return Path(self.root) / "pytest-pods"

    def lock(self, name: str) -> FileLock:
        """A lock on ``name`` shared by every process on this root (xdist workers, later runs)."""
        locks = self._state_dir / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        return FileLock(locks / f"{name}.lock", mode=0o600)  # flock: the kernel releases it if we die

    def engines(self) -> list[str]:
        """The remote engines this process makes things on: its own, and the home engine of
        the shared containers (the xdist controller: only that one)."""
        out = [h for h in (self.host, self.home) if h]
        return list(dict.fromkeys(out))

    def ensure_heartbeat(self, host: str) -> None:
        """Keep a heartbeat on ``host`` (issue 20): when this process and its watchdog are both
        gone, the engine removes what carries our owner label. Not with ``--pods-keep-on-failure``
        (kept containers must outlive the session)."""
        if host in self.heartbeats or host in self.heartbeat_notes or self.keep_on_failure:
            return
        # owner and session: in-process pytester runs share the pid (the owner key), not the session
        beat = Heartbeat(host, f"label={OWNER_LABEL}={self.owner}&label={SESSION_LABEL}={self.run_id}",
                         f"pods-ryuk-{self.run_id}-{self.worker}-{os.getpid()}")
        reason = beat.start()
        if reason:
            self.heartbeat_notes[host] = reason
        else:
            self.heartbeats[host] = beat

    def ensure_watchdog(self) -> None:
        """Start this process's watchdog before its first container or network (and, on a
        remote engine, its heartbeat there)."""
        for host in self.engines():
            # the home engine holds only the controller's things, unless this process owns what it shares
            if host == self.host or self.is_controller or self.controller_owner is None:
                self.ensure_heartbeat(host)
        if self._watchdog is not None:
            return
        # rootless, the watchdog reaps through the local engine (a single-threaded process joins
        # the namespace itself), and holds the session daemon's lifeline until its sweep is done
        lifeline = self.daemon.lifeline if self.daemon is not None else None
        env = dict(os.environ, PODS_IGNORE_LIMITS="1") if self.ignore_limits else None
        self._watchdog = subprocess.Popen(
            [sys.executable, "-m", "pytest_pods.watchdog", self.root, self.owner, *self.engines()],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True, cwd="/", env=env,
            pass_fds=(lifeline,) if lifeline is not None else (),
        )

    def name(self) -> str:
        return f"pods-{self.run_id}-{self.worker}-{next(self._count)}"

    def labels(self, fixture: str, owner: str | None) -> dict[str, str]:
        labels = {SESSION_LABEL: self.run_id, FIXTURE_LABEL: fixture}
        if owner:
            labels[OWNER_LABEL] = owner
        return labels

    # -- images ---------------------------------------------------------------------------
    def build(self, fixture: str, path: str | os.PathLike[str], *, dockerfile: str | None = None,
              build_args: Mapping[str, str] | None = None, target: str | None = None,
              tag: str | None = None, labels: Mapping[str, str] | None = None) -> ImageRef:
        """Build (the layer cache makes a rebuild of nothing changed take milliseconds, and its
        per-step locks make concurrent xdist workers build each step once)."""
        ctx = Path(path)
        if not ctx.is_dir():
            raise FixtureConfigError(f"build context {os.fspath(path)!r} is not a directory")
        if self.pool_registry and self.home:
            return self._build_once(fixture, ctx, dockerfile=dockerfile, build_args=build_args, target=target,
                                    tag=tag, labels=labels)
        t0 = time.monotonic()
        img = self.client.images.build(ctx, tag=tag, dockerfile=dockerfile, buildargs=build_args,
                                       target=target, labels=labels)
        ref = ImageRef(tag or img.id, img.id, time.monotonic() - t0, "build")
        self.images[ref.ref] = ref
        if self.hook is not None:
            self.hook.pytest_pods_image_built(image=ref.ref, fixture=fixture, seconds=ref.seconds)
        return ref

    def _build_once(self, fixture: str, ctx: Path, *, dockerfile: str | None, build_args: Mapping[str, str] | None,
                    target: str | None, tag: str | None, labels: Mapping[str, str] | None) -> ImageRef:
        """An engine pool with ``--pods-pool-registry`` (issue 20): the image is built on the home
        engine (workers asking at once hit its build cache: one build), pushed to the registry, and
        pulled by digest on every other engine, so that each runs the same image ID."""
        key = hashlib.sha256(json.dumps([os.path.abspath(ctx), dockerfile, sorted((build_args or {}).items()), target,
                                         sorted((labels or {}).items())]).encode()).hexdigest()[:16]
        repo = f"{self.pool_registry}/pods-build-{key}"
        staged = f"{repo}:{self.run_id}"
        home = self.home_client
        t0 = time.monotonic()
        try:
            built = home.images.build(ctx, tag=staged, dockerfile=dockerfile, buildargs=build_args, target=target,
                                      labels=labels)
            digest = home.images.push(staged)
        except PodsError as exc:
            raise FixtureConfigError(f"image {fixture!r}: built once on {self.home} and pushed to "
                                     f"{self.pool_registry} (--pods-pool-registry): {exc}") from None
        if not digest:
            raise FixtureConfigError(f"image {fixture!r}: the push of {staged} from {self.home} named no digest")
        how = "build"
        if home is not self.client:
            try:
                img = self.client.images.pull(f"{repo}@{digest}")
            except PodsError as exc:
                raise FixtureConfigError(f"image {fixture!r}: engine {self.host} cannot pull {repo}@{digest} "
                                         f"(built on {self.home}): {exc}") from None
            how = "pull"
            image_id = img.id
            ref = f"{repo}@{digest}"
        else:
            image_id = built.id
            ref = staged
        if tag:
            self.client.images.tag(ref, tag)
            ref = tag
        out = ImageRef(ref, image_id, time.monotonic() - t0, how)
        self.images[out.ref] = out
        if self.hook is not None and how == "build":
            self.hook.pytest_pods_image_built(image=out.ref, fixture=fixture, seconds=out.seconds)
        return out

    def pull(self, fixture: str, ref: str, *, insecure: bool = False, always: bool = False) -> ImageRef:
        """Pull once per root: under a lock, and not at all when the store has it."""
        t0 = time.monotonic()
        with self.lock("pull-" + hashlib.sha256(ref.encode()).hexdigest()[:16]):
            if not always:
                try:
                    img = self.client.images.get(ref)
                    out = ImageRef(ref, img.id, time.monotonic() - t0, "cached")
                    self.images[ref] = out
                    return out
                except ImageNotFoundError:
                    pass
            img = self.client.images.pull(ref, insecure=insecure)
        out = ImageRef(ref, img.id, time.monotonic() - t0, "pull")
        self.images[ref] = out
        return out

    # -- containers -----------------------------------------------------------------------
    def start(self, fixture: str, scope: str, image: str, command: Command = None, *, wait: Any = None,
              timeout: float | None = None, share: bool = False, options: Mapping[str, Any] | None = None,
              identity: str | None = None, warm: Callable[[Any], None] | None = None,
              wrap: Wrap | None = None, pool: int = 0) -> Record:
        """Create, start and wait for a container; on any failure nothing of it is left (unless
        ``--pods-keep-on-failure`` keeps it to be looked at).

        :param warm: prepare once per session (``warm(value)`` on a first container, which is then
            stopped cleanly and committed); every container of the fixture starts from that snapshot
        :param pool: keep this many function-scoped containers started and ready in the background
        """
        ident = self.identity(identity or fixture)
        img, strategy, opts = self._prepare(fixture, str(image), wait, options)
        if warm is not None:
            image = self.snapshot(fixture, ident, str(image), img.id, command, strategy, timeout, opts, warm, wrap)
        if pool > 0 and scope == "function" and not self.reuse:
            key = f"pool-{ident}-{image}@{opts.get('network') or ''}"  # a pool per network it fills
            if key not in self.pools:
                self.pools[key] = Pool(self, pool, scope, str(image), command, strategy, timeout, opts, wrap)
            return self.pools[key].take(fixture)
        # a kept-between-runs or shared container is named after its fixture (``identity``: where
        # it is declared), and labelled with the hash of its configuration
        if self.reuse and scope != "function":
            return self._keyed("reuse-" + ident[:12], fixture, scope, str(image), img.id, command, strategy, timeout,
                               opts, reuse=True)
        if share and self.worker != "main" and scope == "session" and self.home:
            return self._shared_on_engine(f"{self.run_id}-shared-{ident[:10]}", fixture, scope, str(image), img.id,
                                          command, strategy, timeout, opts)
        if share and self.worker != "main" and scope == "session":
            return self._keyed(f"{self.run_id}-shared-{ident[:10]}", fixture, scope, str(image), img.id, command,
                               strategy, timeout, opts, reuse=False)
        return self.create(fixture, scope, str(image), command, strategy, timeout, opts, name=None,
                           owner=self.owner)

    def identity(self, what: str) -> str:
        """The hash naming what a declared fixture keeps across runs or workers: the project's
        rootdir and ``module::fixture`` (two projects with a fixture of the same name differ)."""
        return hashlib.sha256(f"{self.project}::{what}".encode()).hexdigest()

    def _prepare(self, fixture: str, image: str, wait: Any,
                 options: Mapping[str, Any] | None) -> tuple[ImageAPI, Strategy | None, dict[str, Any]]:
        """The image (made first if the plugin ships it), the readiness strategy and the options,
        checked before anything is made."""
        opts = dict(options or {})
        opts["ports"] = normalize_ports(opts.get("ports"))
        try:
            img = self.client.images.get(image)
        except ImageNotFoundError as exc:
            make = IMAGE_PROVIDERS.get(image)
            if make is None:
                raise FixtureConfigError(str(exc)) from None
            make(self, fixture)
            img = self.client.images.get(image)
        cfg = img.config.get("config") or {}
        if wait is None and healthcheck_command(cfg) is not None:
            wait = healthcheck()
        strategy = as_strategy(wait) if wait is not None else None
        if strategy is not None:
            exposed = {int(str(p).split("/")[0]) for p in (cfg.get("ExposedPorts") or {})}
            network = str(opts.get("network") or "bridge")
            try:
                strategy.check_config(exposed, _published_ports(opts["ports"]), network, cfg)
            except InvalidArgumentError as exc:
                raise FixtureConfigError(str(exc)) from None
        return img, strategy, opts

    def snapshot(self, fixture: str, ident: str, image: str, image_id: str, command: Command,
                 strategy: Strategy | None, timeout: float | None, opts: dict[str, Any],
                 warm: Callable[[Any], None], wrap: Wrap | None) -> str:
        """The warm snapshot of a fixture, made once per run (under a lock: xdist workers share it).

        A first container is started and made ready, ``warm`` gets it (as the fixture's value:
        load a schema, seed data), it is stopped with its stop signal (a clean shutdown) and
        committed; it is labelled with this run's id so that a later run makes its own.
        """
        tag = f"pytest-pods/warm-{ident[:12]}:latest"
        if tag in self.snapshots:
            return tag
        with self.lock(f"warm-{ident[:12]}"):
            try:
                existing = self.client.images.get(tag)
                labels = (existing.config.get("config") or {}).get("Labels") or {}
                if labels.get(SESSION_LABEL) == self.run_id and labels.get(WARM_BASE_LABEL) == image_id:
                    self.snapshots[tag] = existing.id
                    return tag
            except ImageNotFoundError:
                pass
            rec = self.create(f"{fixture} (warm-up)", "session", image, command, strategy, timeout, dict(opts),
                               name=None, owner=self.owner)
            t0 = time.monotonic()  # the snapshot column: the hook, the clean stop and the commit
            try:
                value = wrap(rec.container) if wrap is not None else rec.container
                try:
                    warm(value)
                except Exception as exc:
                    raise FixtureConfigError(f"warm-up hook {getattr(warm, '__name__', warm)!r} failed: "
                                             f"{type(exc).__name__}: {exc}") from exc
                prepare = getattr(value, "prepare_snapshot", None)
                if prepare is not None:
                    prepare()  # e.g. Redis writes its dataset to disk, to be loaded at start
                base_labels = dict((self.client.images.get(image).config.get("config") or {}).get("Labels") or {})
                img = rec.container.commit(tag, stop=True, message=f"pytest-pods warm snapshot of {fixture}",
                                           conf={"Labels": base_labels | {SESSION_LABEL: self.run_id,
                                                                           WARM_BASE_LABEL: image_id}})
            finally:
                self.release(rec)
            rec.times["snapshot"] = time.monotonic() - t0
            self.snapshots[tag] = img.id
            return tag

    def _config_hash(self, fixture: str, image_id: str, command: Command, opts: Mapping[str, Any],
                     strategy: Strategy | None) -> str:
        doc = json.dumps([fixture, image_id, command, {k: repr(v) for k, v in sorted(opts.items())},
                          strategy.describe() if strategy else None], sort_keys=True, default=repr)
        return hashlib.sha256(doc.encode()).hexdigest()

    def create(self, fixture: str, scope: str, image: str, command: Command, strategy: Strategy | None,
               timeout: float | None, opts: dict[str, Any], *, name: str | None, owner: str | None,
               extra_labels: Mapping[str, str] | None = None, hooks: bool = True,
               client: ClientAPI | None = None) -> Record:
        """Create, start and wait for one container (``start`` decides which: pooled, shared,
        reused or plain); ``hooks=False`` for one made in the background (a pool's); ``client``:
        another engine than this process's (the home engine of shared containers)."""
        client = client or self.client
        if owner:
            self.ensure_watchdog()
        labels = dict(opts.pop("labels", None) or {}) | self.labels(fixture, owner) | dict(extra_labels or {})
        t0 = time.monotonic()
        try:
            ctr = client.containers.create(image, command, name=name or opts.pop("name", None) or self.name(),
                                           labels=labels, **opts)
        except TypeError as exc:
            raise FixtureConfigError(f"bad container option: {exc}") from None
        except InvalidArgumentError as exc:
            raise FixtureConfigError(str(exc)) from None
        item = self.current_item.nodeid if self.current_item is not None and hooks else None
        rec = Record(ctr, fixture, scope, image, item, name=ctr.name, network=str(opts.get("network") or ""))
        ref = self.images.get(image)
        if ref is not None and not any(r.image == image for r in self.records):
            rec.times[ref.how] = ref.seconds  # the first container of an image carries its build
        t1 = time.monotonic()
        rec.times["create"] = t1 - t0
        self.records.append(rec)
        try:
            if hooks and self.hook is not None:
                self.hook.pytest_pods_container_created(container=ctr, fixture=fixture)
            ctr.start()
            t2 = time.monotonic()
            rec.times["start"] = t2 - t1
            if strategy is not None:
                wait_ready(ctr, strategy, timeout if timeout is not None else self.timeout,
                           label=f"fixture {fixture!r}")
            rec.times["ready"] = time.monotonic() - t2
            if hooks and self.hook is not None:
                self.hook.pytest_pods_container_ready(container=ctr, fixture=fixture, seconds=time.monotonic() - t1)
        except BaseException:
            if self.keep_on_failure and not isinstance(sys.exc_info()[1], KeyboardInterrupt):
                self.keep(rec)
            else:
                self.release(rec)
            raise
        return rec

    def _keyed(self, key: str, fixture: str, scope: str, image: str, image_id: str, command: Command,
               strategy: Strategy | None, timeout: float | None, opts: dict[str, Any], *, reuse: bool) -> Record:
        name = f"pods-{key}"
        users = self._state_dir / "shared" / f"{name}.users"
        config = self._config_hash(fixture, image_id, command, opts, strategy)
        with self.lock(name):
            try:
                ctr = self.client.containers.get(name)
                same = ctr.state.get("labels", {}).get(REUSE_LABEL) == config
                if ctr.status == "running" and same:
                    rec = Record(ctr, fixture, scope, image, None, name=name, reused=reuse, persistent=reuse,
                                 shared=None if reuse else name, network=str(opts.get("network") or ""))
                    t0 = time.monotonic()
                    if strategy is not None:
                        wait_ready(ctr, strategy, timeout if timeout is not None else self.timeout,
                                   label=f"fixture {fixture!r}")
                    rec.times["ready"] = time.monotonic() - t0
                    self.records.append(rec)
                    if not reuse:
                        self._add_user(users)
                    return rec
                ctr.remove(force=True)  # a changed image or configuration: replace it
            except NotFoundError:
                pass
            owner = None if reuse else (self.controller_owner or self.owner)
            rec = self.create(fixture, scope, image, command, strategy, timeout, dict(opts), name=name, owner=owner,
                               extra_labels={REUSE_LABEL: config})
            rec.persistent, rec.shared = reuse, None if reuse else name
            if not reuse:
                self._add_user(users)
            return rec

    @property
    def home_client(self) -> ClientAPI:
        """The engine of the run's shared session containers (this process's own when it is the home)."""
        if self.home is None or self.home == self.host:
            return self.client
        if self._home_client is None:
            from pytest_pods.client.remote import RemoteClient  # lazy: only with remote engines

            self._home_client = RemoteClient(self.home)
        return self._home_client

    def _shared_on_engine(self, key: str, fixture: str, scope: str, image: str, image_id: str, command: Command,
                          strategy: Strategy | None, timeout: float | None, opts: dict[str, Any]) -> Record:
        """A shared session container, shared through the home engine (issue 20): created there
        under a deterministic name; a 409 Conflict means another worker (on any machine) made it,
        so this one joins it. It is labelled with the xdist controller's owner key: the
        controller's heartbeat, watchdog and session end remove it, never a worker."""
        name = f"pods-{key}"
        client = self.home_client
        where = self.home or ""
        if client is not self.client:
            try:
                client.images.get(image)
            except ImageNotFoundError:
                raise FixtureConfigError(
                    f"shared container {name} lives on the home engine {where} (the pool's first), but its image "
                    f"{image} is only on this worker's engine {self.host}: push it to a registry both reach, make it "
                    "there too, or use shared=False") from None
        config = self._config_hash(fixture, image_id, command, opts, strategy)
        owner = self.controller_owner or self.owner
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            try:
                rec = self.create(fixture, scope, image, command, strategy, timeout, dict(opts), name=name,
                                  owner=owner, extra_labels={REUSE_LABEL: config}, client=client)
                rec.shared = name
                rec.engine = where
                return rec
            except ConflictError:
                pass  # another worker made it: join it
            try:
                ctr = client.containers.get(name)
                while ctr.status == "created" and time.monotonic() < deadline:
                    time.sleep(0.05)  # its maker is starting it
                if ctr.status != "running":
                    raise FixtureConfigError(f"shared container {name} on {where} is {ctr.status}, not running")
            except NotFoundError:
                if time.monotonic() > deadline:
                    raise FixtureConfigError(f"shared container {name} on {where} kept vanishing") from None
                continue  # its maker failed and removed it: make it here
            rec = Record(ctr, fixture, scope, image, None, name=name, shared=name, engine=where,
                         network=str(opts.get("network") or ""))
            t0 = time.monotonic()
            if strategy is not None:
                wait_ready(ctr, strategy, timeout if timeout is not None else self.timeout, label=f"fixture {fixture!r}")
            rec.times["ready"] = time.monotonic() - t0
            self.records.append(rec)
            return rec

    def _add_user(self, users: Path) -> None:
        users.parent.mkdir(parents=True, exist_ok=True)
        with open(users, "a") as f:
            f.write(self.owner + "\n")

    def _leave(self, rec: Record) -> bool:
        """Drop this worker from a shared container's users; True when it was the last."""
        assert rec.shared is not None
        users = self._state_dir / "shared" / f"{rec.shared}.users"
        with self.lock(rec.shared):
            try:
                left = [u for u in users.read_text().split() if u != self.owner]
            except FileNotFoundError:
                left = []
            if left:
                users.write_text("".join(u + "\n" for u in left))
                return False
            users.unlink(missing_ok=True)
            try:
                self._remove(rec)
            except NotFoundError:
                pass
            return True

    def keep(self, rec: Record) -> None:
        """Leave ``rec`` running after the session for a look (``--pods-keep-on-failure``)."""
        rec.kept = True
        os.makedirs(kept_dir(self.root), exist_ok=True)
        Path(kept_dir(self.root), rec.container.id).touch()

    def release(self, rec: Record) -> None:
        """End of the scope: stop and remove (a kept, reused or still-shared one stays)."""
        if rec.released:
            return
        rec.released = True
        if rec.kept or rec.persistent:
            return
        if self.hook is not None:
            self.hook.pytest_pods_container_stopping(container=rec.container, fixture=rec.fixture)
        if rec.shared is not None and rec.engine:
            return  # shared through the engine: the controller removes it at the run's end
        if rec.shared is not None:
            self._leave(rec)
            return
        try:
            self._remove(rec)
        except NotFoundError:
            pass  # already gone (the test removed it): the one error teardown ignores

    def _remove(self, rec: Record) -> None:
        t0 = time.monotonic()
        rec.container.remove(force=True)
        rec.times["remove"] = time.monotonic() - t0

    def record_of(self, container: ContainerAPI) -> Record | None:
        return next((r for r in self.records if r.container.id == container.id), None)

    # -- networks -------------------------------------------------------------------------
    def network(self, fixture: str, *, name: str | None = None, subnet: str | None = None,
                internal: bool = False, labels: Mapping[str, str] | None = None, scope: str = "function",
                identity: str | None = None) -> str:
        """A bridge network; with ``--pods-reuse`` one of a wider scope than function is named
        after its fixture and kept between runs, as the reused containers on it are."""
        if self.reuse and scope != "function" and identity is not None:
            return self._reused_network(fixture, name or f"pods-reuse-net-{self.identity(identity)[:12]}", subnet,
                                        internal, labels)
        self.ensure_watchdog()
        name = name or self.name()
        try:
            self.client.networks.create(name, subnet=subnet, internal=internal,
                                        labels=dict(labels or {}) | self.labels(fixture, self.owner))
        except InvalidArgumentError as exc:
            raise FixtureConfigError(str(exc)) from None
        return name

    def _reused_network(self, fixture: str, name: str, subnet: str | None, internal: bool,
                        labels: Mapping[str, str] | None) -> str:
        config = hashlib.sha256(json.dumps([subnet, internal, sorted((labels or {}).items())]).encode()).hexdigest()
        with self.lock(name):
            try:
                net = self.client.networks.get(name)
                if (net.get("Labels") or {}).get(REUSE_LABEL) == config:
                    self.persistent_networks.add(name)
                    return name
                self.client.networks.remove(name)  # its configuration changed: replace it
            except NotFoundError:
                pass
            except PodsError as exc:  # still in use by containers of an older configuration
                raise FixtureConfigError(f"the reused network {name} changed and is still in use ({exc}); remove "
                                         f"its containers (pods --root {self.root} ps -a) and retry") from None
            try:
                self.client.networks.create(name, subnet=subnet, internal=internal, labels=dict(labels or {}) | {
                    SESSION_LABEL: self.run_id, FIXTURE_LABEL: fixture, REUSE_LABEL: config})
            except InvalidArgumentError as exc:
                raise FixtureConfigError(str(exc)) from None
        self.persistent_networks.add(name)
        return name

    def remove_network(self, name: str) -> None:
        """The end of a network's scope: first what still runs on it (a shared server, a
        container of a wider scope), so that the network outlives them; a reused one stays."""
        if name in self.persistent_networks:
            return
        for key in [k for k in self.pools if k.endswith(f"@{name}")]:
            self.pools.pop(key).close()  # what it made ahead for this network goes with it
        for key, net in list(self.resource_networks.items()):
            if net == name and key in self.resources:
                self.release_resource(key)
        for rec in reversed(self.records):
            if rec.network == name and not rec.released and not rec.kept:
                self.release(rec)
        try:
            self.client.networks.remove(name)
        except NotFoundError:
            pass

    # -- the end --------------------------------------------------------------------------
    def finish(self) -> None:
        """Session end: release what is still held, then let the watchdog go."""
        errors: list[Exception] = []
        for pool in self.pools.values():
            try:
                pool.close()
            except Exception as exc:
                errors.append(exc)
        self.pools.clear()
        for fin in reversed(self.session_finalizers):
            try:
                fin()
            except Exception as exc:  # every step runs; all failures are reported together
                errors.append(exc)
        self.session_finalizers.clear()
        for rec in reversed(self.records):
            if not rec.released:
                try:
                    self.release(rec)
                except Exception as exc:
                    errors.append(exc)
        # (a controller whose workers' engines came from --tx specs has no engine of its own)
        if self._client is not None or (self.is_controller and (self.remote_host or not self.home)):
            try:
                # a safety net for anything left with our label; for the xdist controller, the
                # shared containers of the whole run
                if self.rootless and self.daemon_host is None:
                    self.start_daemon()
                sweep(self.root, owner=self.owner, host=self.remote_host)
            except Exception as exc:
                errors.append(exc)
        if self.home and self.home != self.remote_host and (self.is_controller or self._home_client is not None):
            try:
                sweep(self.root, owner=self.owner, host=self.home)  # the controller: the run's shared containers
            except Exception as exc:
                errors.append(exc)
        for beat in self.heartbeats.values():
            beat.stop()
        self.heartbeats.clear()
        if self._watchdog is not None:
            try:
                assert self._watchdog.stdin is not None
                self._watchdog.stdin.write(b"done\n")
                self._watchdog.stdin.close()
            except OSError:
                pass
            self._watchdog = None
        try:
            self.stop_daemon()
        except Exception as exc:
            errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup("pytest-pods: session teardown", errors)

    def resource(self, key: str, make: Callable[[], Any], release: Callable[[Any], None], *,
                 network: str = "") -> Any:
        """One object per session under ``key`` (a shared server), released at session end, or
        before ``network`` is removed when it lives on one."""
        if key not in self.resources:
            self.resources[key] = make()
            self._releasers[key] = release
            if network:
                self.resource_networks[key] = network
            self.session_finalizers.append(lambda: self.release_resource(key))
        return self.resources[key]

    def release_resource(self, key: str) -> None:
        if key in self.resources:
            self.resource_networks.pop(key, None)
            self._releasers.pop(key)(self.resources.pop(key))

    def kept_records(self) -> list[Record]:
        return [r for r in self.records if r.kept]


def containers_in(value: Any) -> list[ContainerHandle]:
    """The containers a fixture value is or holds (services keep theirs in ``.container``)."""
    if isinstance(value, ContainerHandle):
        return [value]
    inner = getattr(value, "container", None)
    if isinstance(inner, ContainerHandle):
        return [inner]
    many = getattr(value, "containers", None)  # a compose stack (plugin/compose.py): every service's
    if isinstance(many, list) and all(isinstance(c, ContainerHandle) for c in many):
        return list(many)
    return []


def sequence(value: Any) -> Sequence[Any]:
    return value if isinstance(value, (list, tuple)) else [value]
