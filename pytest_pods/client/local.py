"""The Client API: the one Python interface to images and containers.

The CLI, the pytest plugin and the daemon are thin layers over it. ``Client()`` is the
embedded local engine, no daemon needed::

    from pytest_pods import Client

    client = Client()                      # PODS_ROOT or /var/lib/pytest-pods
    client.images.bootstrap_busybox()
    result = client.containers.run("busybox", ["echo", "hello"], remove=True)
    assert result.output == b"hello\\n"

    web = client.containers.run("busybox", ["httpd", "-f"], detach=True, memory="64m")
    print(web.exec(["ps"]).output.decode())
    web.remove(force=True)
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import re
import select
import signal as _signal
import stat
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Literal, overload

from pytest_pods.client.contract import (
    NO_NEW_PRIVILEGES,
    Bind,
    ContainerHandle,
    Devices,
    EngineInfo,
    ExecResult,
    LogLine,
    Ports,
    ProcessList,
    RunResult,
    Sysctls,
    Tmpfs,
    Ulimits,
    cgroup_version,
    device_list,
    extract_tar,
    health_config,
    parse_bytes,
    parse_container_port,
    parse_ports,
    parse_reference,
    security_opts,
    shm_bytes,
    sysctl_map,
    tmpfs_list,
    ulimit_list,
)
from pytest_pods.engine import linux, rootless
from pytest_pods.engine.image.store import Image, Store, default_root
from pytest_pods.engine.runtime.lifecycle import Runtime, Starting, collect_output, recorded_exit_code
from pytest_pods.engine.runtime.spec import ContainerSpec
from pytest_pods.errors import (
    ConflictError,
    ContainerNotFoundError,
    ContainerStartError,
    InvalidArgumentError,
    NotFoundError,
    PodsError,
)

if TYPE_CHECKING:
    import http.client
    import socket

    from pytest_pods.engine.network.networks import NetworkRecord, Networks
    from pytest_pods.engine.runtime.lifecycle import ContainerStats
    from pytest_pods.engine.runtime.state import ContainerState

__all__ = ["Client", "Container", "ContainerHandle", "ContainerStartError", "Containers", "ExecResult", "Images", "LocalProbe",
           "NetworkCollection", "RunResult", "VolumeCollection"]

FULL_ID = re.compile(r"[0-9a-f]{64}")


class Client:
    """The local engine over one root (``PODS_ROOT``, default ``/var/lib/pytest-pods``)."""

    def __init__(self, root: str | os.PathLike[str] | None = None, *, short_lived: bool = False) -> None:
        """``short_lived``: this process ends soon (the CLI): a rootless engine it used may be
        released by its reap or cleanup; a longer-lived one keeps it while it runs."""
        self.short_lived = short_lived
        path = Path(root) if root is not None else default_root()  # before joining: euid 0 after
        if rootless.active():
            # an ordinary user's engine runs in the root's user namespace; a threaded process
            # cannot join one (EngineUnavailableError says to use `pods daemon` instead)
            rootless.join(path)
        self.store = Store(path)
        self.runtime = Runtime(self.store)
        self.images = Images(self)
        self.containers = Containers(self)
        self.networks = NetworkCollection(self)
        self.volumes = VolumeCollection(self)
        self._reap_if_due()

    REAP_INTERVAL = 60.0

    def _reap_if_due(self) -> None:
        """The engine reaps at start, at most once a minute per root: one stat when not due."""
        marker = self.store.root / ".last-reap"
        try:
            if time.time() - marker.stat().st_mtime < self.REAP_INTERVAL:
                return
        except FileNotFoundError:
            pass
        marker.touch()
        try:
            self.runtime.reap()
        except OSError:
            pass  # best effort at start; `pods system reap` reports what fails

    @property
    def root(self) -> Path:
        return self.store.root

    @property
    def temp_dir(self) -> Path:
        """Where to stage temporary files: on the store's file system, so a rename into it is atomic."""
        return self.store.tmp

    def temp_prefix(self, kind: str) -> str:
        """A name prefix for an entry of :attr:`temp_dir` that carries this process's lease: when
        the process is killed (a daemon mid-request), the reaper frees it at once, not after the
        grace period that unleased entries get."""
        from pytest_pods.engine.locks import lease  # lazy: start latency

        return f"{kind}-{lease()}-"

    def info(self) -> EngineInfo:
        """What ``pods system info`` and the daemon's ``/info`` report."""
        states = [st["status"] for st in self.runtime.list(all=True)]
        running = states.count("running")
        info = EngineInfo(root=str(self.root), cgroup_version=cgroup_version(), containers=len(states),
                          containers_running=running, containers_stopped=len(states) - running,
                          images=len(self.images.list()), mode="root")
        if rootless.active():
            rootless_info(info)
        return info

    def events(self, since: float | None = None, until: float | None = None, *, follow: bool = True,
               stop: Callable[[], bool] | None = None) -> Iterator[dict[str, Any]]:
        """The engine's events (Docker's documents, oldest first) from ``since`` (unix seconds;
        None: from now when following) to ``until``; with ``follow``, new ones as they happen,
        until ``stop()``. Every process using this root writes them (``engine/events.py``)."""
        from pytest_pods.engine import events  # lazy: start latency (only `pods events`)

        return events.read(self.root, since, until, follow=follow, stop=stop or (lambda: False))

    def reap(self) -> list[str]:
        """Release what killed engines and monitors left behind (rootless: and the namespace
        holder and its helpers, when no container of this root runs)."""
        done = self.runtime.reap()
        if rootless.active():
            done += [f"released {what}" for what in rootless.release(self.root, caller_stays=not self.short_lived)]
        return done

    def login(self, host: str, username: str, password: str, *, insecure: bool = False) -> None:
        """Check the credentials with the registry, then store them as ``docker login`` does."""
        from pytest_pods.engine.registry import http  # lazy: start latency (http.client, ssl)

        http.login(host, username, password, insecure=insecure)

    def logout(self, host: str) -> None:
        from pytest_pods.engine.registry import credentials  # lazy: start latency (only for logout)

        credentials.erase(host)

    def cleanup(self, *, prune_networks: bool = False) -> list[str]:
        """Release the host state this root holds that nothing uses: the default network's bridge
        and rules (made again on first use) and empty cgroup parents. For the end of a session and
        the plugin's sweeps; running containers are left alone, and so is every user network
        (issue 15: a network the user made survives any number of sessions; the plugin removes
        its own networks by their owner label). ``prune_networks``: the user's explicit request
        (``pods system prune``, as Docker's): user networks no running container uses go too."""
        self.runtime.settle()
        done = self.runtime.reap()
        if (self.root / "networks").is_dir() and any((self.root / "networks").iterdir()):
            done += self.runtime.networks.release_idle(prune=prune_networks)
        if rootless.active():  # the namespace holder and its helpers, when nothing of the root runs
            done += [f"released {what}" for what in rootless.release(self.root, caller_stays=not self.short_lived)]
        return done

    def prune(self) -> list[str]:
        """Remove every stopped container and the blobs and snapshots nothing uses."""
        done = []
        for st in self.runtime.list(all=True):
            if st["status"] not in ("running", "starting", "restarting"):
                self.runtime.remove(st["id"])
                done.append(f"Deleted container: {st['id']}")
        # snapshots nothing stacks on go now; unreferenced blobs only when older than the grace
        # period, as a concurrent import or load writes blobs before it records its image
        from pytest_pods.builders.build import cache_blobs  # lazy: start latency (the builder)

        self.store.gc(in_use_snapshots=self.runtime.in_use_snapshots(), keep=cache_blobs(self.store))
        return done


def bootstrap_debian(root: str | os.PathLike[str] | None, suite: str = "bookworm", tag: str | None = None) -> Image:
    """``debian:SUITE`` into the engine at ``root``. Rootless, mmdebstrap runs in its unshare mode
    *before* the client joins the engine's user namespace (inside it mmdebstrap would take
    itself for root), and the client then imports its tar."""
    if not rootless.active() or rootless.inside():
        return Client(root).images.bootstrap_debian(suite, tag)
    from pytest_pods.engine.image.bootstrap import debian_rootfs  # lazy: start latency (tarfile)

    path = Path(root) if root is not None else default_root()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path / f".bootstrap-{os.getpid()}.tar"
    try:
        debian_rootfs(suite, tmp)
        return Client(path).images.bootstrap_debian(suite, tag, rootfs=tmp)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def rootless_info(info: EngineInfo) -> None:
    """The rootless part of ``info``: the maps in use, the network helper, what is limited."""
    uids, gids = rootless.maps_in_use() if rootless.inside() else rootless.id_maps()
    try:
        from pytest_pods.engine.network import rootless_net  # lazy: the network helper's module, if there

        helper = str(rootless_net.helper_name())  # type: ignore[attr-defined,unused-ignore]
    except (ImportError, AttributeError, OSError):
        helper = "none"
    limited = []
    if rootless.delegated_cgroup() is None:
        limited.append("cgroups: no delegated cgroup v2: limits refused (PODS_IGNORE_LIMITS=1 drops them)")
    limited.append("device nodes in images are skipped (no mknod in a user namespace)")
    if len(uids) == 1:
        limited.append(rootless.single_id_note())
    info["mode"] = "rootless"
    info["uid_map"], info["gid_map"] = rootless.format_maps(uids), rootless.format_maps(gids)
    info["network_helper"], info["limited"] = helper, limited


class Images:
    def __init__(self, client: Client) -> None:
        self._c = client

    @property
    def _store(self) -> Store:
        return self._c.store

    def list(self) -> builtins.list[Image]:
        return self._store.images()

    def get(self, name: str) -> Image:
        return self._store.get_image(name)

    def blob_path(self, digest: str) -> Path:
        """Where the store keeps the blob ``digest`` (for its size; it may not exist)."""
        return self._store.blob_path(digest)

    def import_rootfs(self, tarball: str | os.PathLike[str], tag: str | None = None,
                      config: Mapping[str, Any] | None = None) -> Image:
        from pytest_pods.engine.image.bootstrap import import_rootfs  # lazy: start latency (tarfile)

        return import_rootfs(self._store, tarball, tag, config)

    def bootstrap_busybox(self, tag: str = "busybox:latest") -> Image:
        from pytest_pods.engine.image.bootstrap import bootstrap_busybox  # lazy: start latency (tarfile)

        return bootstrap_busybox(self._store, tag)

    def bootstrap_debian(self, suite: str = "bookworm", tag: str | None = None,
                         rootfs: str | os.PathLike[str] | None = None) -> Image:
        """``debian:SUITE`` by mmdebstrap, or from ``rootfs``, the tar it made (rootless: made
        before joining, see ``pods bootstrap``)."""
        from pytest_pods.engine.image.bootstrap import bootstrap_debian  # lazy: start latency (tarfile)

        return bootstrap_debian(self._store, suite, tag, rootfs=Path(rootfs) if rootfs is not None else None)

    def tag(self, source: str, target: str) -> Image:
        return self._store.tag(source, target)

    def remove(self, name: str, *, force: bool = False) -> builtins.list[str]:
        """``rmi``: what docker prints. The last tag of a repository takes that repository's
        digest reference (``REPO@sha256:...``, from a pull or push) with it, as dockerd's."""
        rt = self._c.runtime
        image = self._store.get_image(name)
        done = self._store.remove_image(name, in_use=rt.in_use_images(), force=force,
                                        in_use_snapshots=rt.in_use_snapshots())
        if not (self._store.root / "registry").is_dir():
            return done
        from pytest_pods.engine.registry import distribution  # lazy: start latency (only stores that pulled or pushed)

        gone = {parse_reference(line.partition(": ")[2]).repository for line in done if line.startswith("Untagged: ")}
        try:
            kept = {parse_reference(t).repository for t in self._store.get_image(image.id).tags}
        except NotFoundError:  # deleted: no tag is left
            kept = set()
        for repo in distribution.known_repositories(self._store, image.manifest_digest):
            if parse_reference(repo).repository in gone - kept:
                distribution.forget(self._store, image.manifest_digest, repo)
                line = f"Untagged: {parse_reference(repo).familiar_repository}@{image.manifest_digest}"
                at = next((i for i, d in enumerate(done) if d.startswith("Deleted: ")), len(done))
                done.insert(at, line)
        return done

    def save(self, names: Sequence[str], out: str | os.PathLike[str] | BinaryIO,
             format: str = "docker-archive") -> None:
        """Write images to ``out`` (a path, or a binary stream for the tar formats)."""
        from pytest_pods.engine.image import archive  # lazy: start latency (tarfile, gzip)

        archive.save(self._store, builtins.list(names), out, format=format)
        for name in names:
            self._event("save", self._store.get_image(name).id)

    def load(self, src: str | os.PathLike[str] | BinaryIO) -> builtins.list[str]:
        """Load images from an archive (a path or a binary stream); what docker prints per image."""
        from pytest_pods.engine.image import archive  # lazy: start latency (tarfile, gzip)

        loaded = archive.load(self._store, src)
        for line in loaded:
            what = line.partition(": ")[2]
            with contextlib.suppress(NotFoundError, InvalidArgumentError):
                self._event("load", self._store.get_image(what).id)
        return loaded

    def _event(self, action: str, actor: str, name: str | None = None) -> None:
        """An image event in the engine's journal, as dockerd logs it (the actor: a reference for
        pull and push, an ID otherwise; ``name``: its repository, else the actor)."""
        from pytest_pods.engine import events  # lazy: start latency (only image verbs)

        events.record(self._store.root, "image", action, actor, {"name": name or actor})

    def inspect(self, name: str) -> dict[str, Any]:
        from pytest_pods.client.docker_docs import image_inspect  # lazy: start latency (the CLI's path)

        return image_inspect(self.get(name), self._store)

    def pull(self, ref: str, *, platform: str | None = None, insecure: bool = False,
             progress: Any = None) -> Image:
        """Pull from a registry (mirrors and rewrites from the registry config tried in order);
        the image is recorded under ``ref`` whichever source served it."""
        from pytest_pods.engine.registry import mirrors  # lazy: start latency (http.client, ssl)

        image = mirrors.pull(self._store, ref, platform=platform, insecure=insecure, progress=progress)
        parsed = parse_reference(ref)
        self._event("pull", parsed.familiar, parsed.familiar_repository)
        return image

    def push(self, name: str, dest: str | None = None, *, insecure: bool = False, progress: Any = None) -> str:
        """Push ``name`` (to ``dest``, another reference, when given); returns the manifest digest."""
        from pytest_pods.engine.registry import distribution, mirrors  # lazy: start latency (http.client, ssl)

        target = parse_reference(dest or name)
        digest = str(distribution.push(self._store, name, dest, progress=progress,
                                       insecure=insecure or mirrors.is_insecure(target.domain)))
        self._event("push", target.familiar, target.familiar_repository)
        return digest

    def build(self, path: str | os.PathLike[str] = ".", *, tag: str | Sequence[str] | None = None,
              dockerfile: str | os.PathLike[str] | None = None, buildargs: Mapping[str, str] | None = None,
              target: str | None = None, nocache: bool = False, labels: Mapping[str, str] | None = None,
              network: str = "bridge", progress: Any = None, extra_hosts: Sequence[str] = (),
              cache_from: Sequence[str] | None = None, stderr_progress: Any = None,
              secrets: Mapping[str, bytes] | None = None, ssh: Mapping[str, str] | None = None,
              cache_import: Sequence[str | os.PathLike[str]] = (),
              cache_export: str | os.PathLike[str] | None = None,
              cache_import_refs: Sequence[str] = (), cache_export_ref: str | None = None,
              base_image: Callable[[str], str] | None = None) -> Image:
        """Build a Dockerfile (docker-py's names); ``progress`` gets one line per step and RUN output
        (RUN's standard error goes to ``stderr_progress`` when given); ``extra_hosts``: ``NAME:IP``
        entries in RUN's /etc/hosts; ``cache_from``: the only images a step may be a cache hit of;
        ``secrets``: id -> value for ``RUN --mount=type=secret,id=...`` (in no layer, key or output);
        ``ssh``: id -> an SSH agent socket for ``RUN --mount=type=ssh`` (``{"default": $SSH_AUTH_SOCK}``);
        ``cache_import``/``cache_export``: build-cache directories to read first / to write after
        (``--cache-from type=local,src=DIR`` / ``--cache-to type=local,dest=DIR``);
        ``cache_import_refs``/``cache_export_ref``: the same cache in a registry, by tag
        (``--cache-from type=registry,ref=REF`` / ``--cache-to type=registry,ref=REF``);
        ``base_image``: maps a ``FROM`` image's name to the one that serves it (image aliases)."""
        from pytest_pods.builders.build import BuildOptions, build_image  # lazy: start latency (the builder)

        tags = [tag] if isinstance(tag, str) else builtins.list(tag or [])
        opts = BuildOptions(context=Path(path), dockerfile=Path(dockerfile) if dockerfile else None, tags=tags,
                            build_args=dict(buildargs or {}), target=target, no_cache=nocache,
                            labels=dict(labels or {}), network=network, progress=progress,
                            extra_hosts=builtins.list(extra_hosts),
                            cache_from=builtins.list(cache_from) if cache_from is not None else None,
                            stderr_progress=stderr_progress, secrets=dict(secrets or {}), ssh=dict(ssh or {}),
                            cache_import=[os.fspath(d) for d in cache_import],
                            cache_export=os.fspath(cache_export) if cache_export is not None else None,
                            cache_import_refs=builtins.list(cache_import_refs), cache_export_ref=cache_export_ref,
                            base_image=base_image)
        return build_image(self._store, self._c.runtime, opts)


class Containers:
    """Containers: handles (``create``, ``run``, ``get``, ``list``) and, for the CLI and the
    daemon, the verbs by reference (a name, an ID or a unique ID prefix), thin over the runtime."""

    def __init__(self, client: Client) -> None:
        self._c = client

    @property
    def _rt(self) -> Runtime:
        return self._c.runtime

    def create(
        self,
        image: str,
        command: Sequence[str] | str | None = None,
        *,
        entrypoint: Sequence[str] | None = None,
        name: str | None = None,
        environment: Mapping[str, str] | Sequence[str] | None = None,
        working_dir: str | None = None,
        user: str | None = None,
        hostname: str | None = None,
        volumes: Sequence[str | Bind] = (),
        tmpfs: Tmpfs | None = None,
        memory: str | int | None = None,
        memory_swap: str | int | None = None,
        pids_limit: int | None = None,
        cpus: float | None = None,
        network: str = "bridge",
        network_aliases: Sequence[str] = (),
        network_endpoint: Mapping[str, Any] | None = None,
        ports: Ports = (),
        publish_all_ports: bool = False,
        read_only: bool = False,
        init: bool = False,
        labels: Mapping[str, str] | None = None,
        stop_signal: str | None = None,
        stop_timeout: int | None = None,
        auto_remove: bool = False,
        no_new_privileges: bool = NO_NEW_PRIVILEGES,
        cap_add: Sequence[str] = (),
        cap_drop: Sequence[str] = (),
        stdin_open: bool = False,
        privileged: bool = False,
        security_opt: Sequence[str] | None = None,
        devices: Devices | None = None,
        sysctls: Sysctls | None = None,
        ulimits: Ulimits | None = None,
        shm_size: str | int | None = None,
        healthcheck: Mapping[str, Any] | None = None,
        volumes_from: Sequence[str] = (),
        restart_policy: Mapping[str, Any] | None = None,
        group_add: Sequence[str | int] = (),
        pid_mode: str | None = None,
        uts_mode: str | None = None,
        ipc_mode: str | None = None,
        cgroupns_mode: str | None = None,
        log_config: Mapping[str, Any] | None = None,
        host_config: Mapping[str, Any] | None = None,
        cpu_shares: int | None = None,
        env_bare_unsets: bool = False,
        links: Sequence[str] | Mapping[str, str] = (),
        extra_hosts: Sequence[str] | Mapping[str, str] = (),
        expose: Sequence[str | int] = (),
    ) -> Container:
        """Create (not start) a container from ``image``; Docker's names and meanings.

        ``restart_policy``: ``{"Name": "on-failure", "MaximumRetryCount": 3}`` (its monitor
        restarts it, with Docker's backoff); ``group_add``: supplementary groups (names of the
        image's /etc/group, or numbers); ``pid_mode``/``uts_mode`` ``"host"`` share the host's
        namespace; ``log_config``: ``{"Type": "json-file"|"local"|"none", "Config": {...}}``;
        ``host_config``: other Engine API HostConfig fields, kept for inspect."""
        img = self._c.store.get_image(image)
        if isinstance(command, str):
            command = ["/bin/sh", "-c", command]
        made: builtins.list[str] = []  # volumes this create made: a refused create leaves none behind
        try:
            spec = ContainerSpec(
                image=image, command=command, entrypoint=entrypoint, name=name,
                env=environment or {}, workdir=working_dir, user=user, hostname=hostname,
                binds=[v if isinstance(v, Bind) else self._bind(v, made) for v in volumes], tmpfs=tmpfs_list(tmpfs),
                memory=parse_bytes(memory) if memory is not None else None,
                memory_swap=(parse_bytes(memory_swap, "--memory-swap") if memory_swap not in (None, -1, "-1") else
                             (-1 if memory_swap in (-1, "-1") else None)),
                pids_limit=pids_limit, cpus=cpus, network=network, read_only=read_only, init=init,
                network_aliases=tuple(network_aliases), network_endpoint=network_endpoint,
                ports=tuple(parse_ports(ports)), publish_all=publish_all_ports,
                labels=labels or {}, stop_signal=stop_signal, stop_timeout=stop_timeout,
                auto_remove=auto_remove, no_new_privileges=no_new_privileges,
                cap_add=[cap_add] if isinstance(cap_add, str) else builtins.list(cap_add),
                cap_drop=[cap_drop] if isinstance(cap_drop, str) else builtins.list(cap_drop), stdin_open=stdin_open,
                privileged=bool(privileged), security_opt=security_opts(security_opt), devices=device_list(devices),
                sysctls=sysctl_map(sysctls), ulimits=ulimit_list(ulimits), shm_size=shm_bytes(shm_size),
                healthcheck=health_config(healthcheck),
                volumes_from=[volumes_from] if isinstance(volumes_from, str) else builtins.list(volumes_from),
                restart_policy=restart_policy, group_add=[str(g) for g in group_add],
                pid_mode=pid_mode or "", uts_mode=uts_mode or "", ipc_mode=ipc_mode or "",
                cgroupns_mode=cgroupns_mode or "", log_config=log_config, host_config=host_config or {},
                cpu_shares=cpu_shares, env_bare_unsets=env_bare_unsets,
                links=[f"{k}:{v}" for k, v in links.items()] if isinstance(links, Mapping) else builtins.list(links),
                extra_hosts=([f"{k}:{v}" for k, v in extra_hosts.items()] if isinstance(extra_hosts, Mapping)
                             else builtins.list(extra_hosts)),
                expose=[str(e) for e in expose],
            )
            return Container(self._c, self._rt.create(spec, img))
        except BaseException:
            for vol in made:
                with contextlib.suppress(PodsError, OSError):  # not forced: a racing run may use it already
                    self._c.volumes.remove(vol)
            raise

    def _bind(self, text: str, made: builtins.list[str] | None = None) -> Bind:
        """``/host:/ctr[:ro]``, ``NAME:/ctr[:ro]`` for a named volume (made on first use), or
        ``/ctr`` alone for an anonymous one (gone with ``rm -v``), as docker's ``-v``. The volumes
        this makes are appended to ``made``."""
        name, sep, rest = text.partition(":")
        if not sep and name.startswith("/"):
            target = Bind.parse(f"/:{name}").target  # checked before the volume is made
            vol = self._c.volumes.create(anonymous=True)
            if made is not None:
                made.append(vol["Name"])
            return Bind(vol["Mountpoint"], target)
        if sep and name and not name.startswith(("/", ".", "~")):
            bind = Bind.parse(f"/:{rest}")  # checked before the volume is made
            try:
                self._c.volumes.get(name)
            except NotFoundError:
                if made is not None:
                    made.append(name)
            return bind._replace(source=self._c.volumes.create(name)["Mountpoint"])
        return Bind.parse(text)

    @overload
    def run(self, image: str, command: Sequence[str] | str | None = None, *, detach: Literal[True],
            remove: bool = False, **kwargs: Any) -> Container: ...
    @overload
    def run(self, image: str, command: Sequence[str] | str | None = None, *, detach: Literal[False] = False,
            remove: bool = False, **kwargs: Any) -> RunResult: ...
    def run(self, image: str, command: Sequence[str] | str | None = None, *, detach: bool = False,
            remove: bool = False, **kwargs: Any) -> Container | RunResult:
        """Create and start. Detached: the running Container. Otherwise wait and return a
        RunResult with the exit code and output (docker-py raises on non-zero; we return it)."""
        if detach:
            c = self.create(image, command, auto_remove=remove, **kwargs)
            try:
                c.start()
            except BaseException:
                if not remove:
                    c.remove(force=True)
                raise
            return c
        c = self.create(image, command, auto_remove=remove, **kwargs)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            handle = self._rt.start(c.id, attach=(out_w, err_w))
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            if not remove:
                c.remove(force=True)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        output, stderr = collect_output([out_r, err_r])
        code = handle.wait()
        return RunResult(code, output, stderr, c.id)

    def get(self, ref: str) -> Container:
        return Container(self._c, self._rt.resolve(ref))

    def list(self, *, all: bool = False) -> builtins.list[Container]:
        return [Container(self._c, st["id"]) for st in self._rt.list(all=all)]

    # -- verbs by reference (the CLI's and the daemon's) --------------------------------------
    def start(self, ref: str, attach: tuple[int, int] | None = None, stdin: int | None = None) -> Starting:
        """Start; returns once its process runs. ``attach`` (stdout, stderr fds) get its output,
        ``stdin`` becomes its stdin; the handle waits for the exit (``wait()``) or lets go (``close()``).

        :raises ContainerStartError: the process could not be started (its exit code attached)
        """
        return self._rt.start(ref, attach=attach, stdin=stdin)

    def stop(self, ref: str, timeout: float | None = None, stop_signal: int | None = None) -> None:
        """The stop signal (the container's, or ``stop_signal``), ``timeout`` s of grace, then SIGKILL."""
        self._rt.stop(ref, timeout, stop_signal=stop_signal)

    def kill(self, ref: str, signal: int | str = _signal.SIGKILL) -> None:
        self._rt.kill(ref, signal)

    def remove(self, ref: str, force: bool = False) -> str:
        """Remove (``force``: a running one too); its ID."""
        return self._rt.remove(ref, force=force)

    def pause(self, ref: str) -> None:
        """Freeze its processes (``docker pause``).

        :raises ConflictError: not running, or paused already
        """
        self._rt.pause(ref)

    def unpause(self, ref: str) -> None:
        """:raises ConflictError: not paused"""
        self._rt.unpause(ref)

    def rename(self, ref: str, name: str) -> str:
        """Give it the name ``name``; its old name.

        :raises ConflictError: another container has that name
        """
        return self._rt.rename(ref, name)

    def update(self, ref: str, *, memory: str | int | None = None, memory_swap: str | int | None = None,
               pids_limit: int | None = None, cpus: float | None = None, cpu_shares: int | None = None,
               restart_policy: Mapping[str, Any] | None = None) -> None:
        """Change its limits (at once, if it runs) and restart policy, as ``docker update``;
        what is None stays."""
        from pytest_pods.engine.runtime.lifecycle import check_restart_policy  # lazy: only an update

        policy = None
        if restart_policy is not None:
            policy = check_restart_policy(restart_policy, False) or {"Name": "", "MaximumRetryCount": 0}
        self._rt.update(ref, memory=parse_bytes(memory) if memory not in (None, 0, "0") else
                        (0 if memory is not None else None),
                        memory_swap=(-1 if memory_swap in (-1, "-1") else parse_bytes(memory_swap, "--memory-swap")
                                     if memory_swap not in (None, 0, "0") else (0 if memory_swap is not None else None)),
                        pids=pids_limit, cpus=cpus, cpu_shares=cpu_shares,
                        restart_policy=policy)

    def size_rw(self, ref: str) -> int:
        """The bytes of the files the container wrote (its writable layer), as ``SizeRw``."""
        return self._rt.size_rw(ref)

    def remove_link(self, ref: str, alias: str) -> None:
        """Drop the legacy link ``alias`` of the container ``ref`` (``docker rm --link /REF/ALIAS``).

        :raises NotFoundError: it has no such link
        """
        self._rt.remove_link(ref, alias)

    def changes(self, ref: str) -> builtins.list[tuple[str, int]]:
        """What it changed in its root (``docker diff``): (path, kind), kind 0 modified, 1
        added, 2 deleted."""
        return self._rt.changes(ref)

    def exec(self, ref: str, cmd: Sequence[str], *, env: Sequence[str] | None = None, user: str | None = None,
             workdir: str | None = None, stdio: tuple[int, int, int] | None = None, tty: bool = False,
             privileged: bool = False) -> ExecResult:
        """Run ``cmd`` in the running container. With ``stdio`` (stdin, stdout, stderr fds) its
        streams go there (and the result carries only the exit code), else they are captured."""
        return self._rt.exec(ref, builtins.list(cmd), env=builtins.list(env or []), user=user, workdir=workdir,
                             stdio=stdio, tty=tty, privileged=privileged)

    def logs(self, ref: str, follow: bool = False, tail: int | None = None,
             partial: bool = False) -> Iterator[LogLine]:
        """(stream, time, line) in order; with ``follow``, until the container stops; with
        ``partial``, the start of a line as soon as it was written (what an attach shows)."""
        return self._rt.logs(ref, follow=follow, tail=tail, partial=partial)

    def wait(self, ref: str, timeout: float | None = None) -> int:
        """Block until it is not running; its exit code. A container removed already (``--rm``)
        by its full ID: the exit code recorded for it.

        :raises TimeoutError: still running after ``timeout`` seconds
        """
        try:
            return self._rt.wait(ref, timeout)
        except ContainerNotFoundError:
            code = self.exit_code(ref)
            if code is None:
                raise
            return code

    def exit_code(self, ref: str) -> int | None:
        """The exit code of its last run; for a container removed since (``--rm``, by full ID),
        the one recorded at its exit. None while it has not exited."""
        try:
            st = self._rt.state(ref)
        except ContainerNotFoundError:
            if not FULL_ID.fullmatch(ref):
                raise
            return recorded_exit_code(self._rt.dir, ref)
        if st["status"] in ("created", "starting", "running"):
            return None
        return int(st.get("exit_code", 0))

    def state(self, ref: str) -> ContainerState:
        """The engine's record of the container (status, pid, ports, labels, ...)."""
        return self._rt.state(ref)

    def states(self, all: bool = False) -> builtins.list[ContainerState]:
        """The records of running containers (``all``: of every container), newest first."""
        return self._rt.list(all=all)

    def stats(self, ref: str) -> ContainerStats:
        """memory_usage, memory_limit, pids, pids_limit, cpu_usage_ns (from its cgroup)."""
        return self._rt.stats(ref)

    def top(self, ref: str) -> builtins.list[int]:
        """The host pids of the container's processes."""
        return self._rt.procs(ref)

    def processes(self, ref: str, ps_args: str = "") -> ProcessList:
        """``top``: the host's ``ps`` (``-ef`` unless ``ps_args``) cut to the container's
        processes, as dockerd answers it.

        :raises ConflictError: it is not running
        :raises PodsError: ``ps`` refused the options (its first line of complaint attached)
        """
        import subprocess  # lazy: start latency (only top)

        st = self._rt.state(ref)
        if st["status"] != "running":
            raise ConflictError(f"Container {st['id']} is not running")
        pids = self._rt.procs(st["id"])
        args = ["ps", *(ps_args or "-ef").split()]
        try:
            proc = subprocess.run([*args, "-q", ",".join(map(str, pids or [0]))], capture_output=True, check=False)
            if proc.returncode:  # options such as `f` do not go with -q: all processes, filtered below
                proc = subprocess.run(args, capture_output=True, check=False)
        except FileNotFoundError:
            raise PodsError("top needs the host's `ps` (Debian: apt-get install procps)") from None
        if proc.returncode:
            why = proc.stderr.decode(errors="replace").strip().splitlines()
            raise PodsError(f"ps: {why[0] if why else f'exit status {proc.returncode}'}")
        return ps_table(proc.stdout.decode(errors="replace"), set(pids))

    def use_terminal(self, ref: str) -> None:
        """Give a created container a pty as its stdio (``Tty``: ``docker run -t``), before its
        first start (issue 16; until ``create`` takes ``tty`` itself)."""
        from pytest_pods.engine.runtime.monitor import use_terminal  # lazy: start latency (only -t)

        use_terminal(self._rt.dir / self._rt.resolve(ref))

    def has_terminal(self, ref: str) -> bool:
        """Whether the container's process runs on a pty (``Tty``)."""
        from pytest_pods.engine.runtime.monitor import has_terminal  # lazy: start latency (as above)

        return has_terminal(self._rt.dir / self._rt.resolve(ref))

    def terminal_input(self, ref: str) -> int | None:
        """A write end into a running tty container's terminal (``docker attach`` with stdin),
        the caller's to close; None when it has no running pty."""
        from pytest_pods.engine.runtime.monitor import terminal_input  # lazy: start latency (only -t)

        fd = terminal_input(self._rt.dir / self._rt.resolve(ref))
        if fd is not None:
            os.set_blocking(fd, True)
        return fd

    def resize(self, ref: str, height: int, width: int) -> bool:
        """Set a running tty container's window size (its monitor holds the pty); False when it
        has no running pty."""
        from pytest_pods.engine.runtime.monitor import resize_terminal  # lazy: start latency (as above)

        return resize_terminal(self._rt.dir / self._rt.resolve(ref), height, width)

    def gone(self, ref: str) -> bool:
        """True once nothing of a removed container is left on disk (``wait?condition=removed``)."""
        return not (self._rt.dir / ref).exists()

    def settle(self) -> None:
        """Wait until the monitors of containers being removed have released them."""
        self._rt.settle()

    def path_stat(self, ref: str, path: str) -> os.stat_result | None:
        """``stat`` of ``path`` in the container (None: it does not exist)."""
        return self._rt.path_stat(ref, path)

    def get_archive(self, ref: str, path: str, out: IO[bytes], arcname: str | None = None) -> None:
        """``path`` in the container (running, created or stopped) as a tar stream written to ``out``."""
        self._rt.get_archive(ref, path, out, arcname)

    def put_archive(self, ref: str, path: str, src: IO[bytes]) -> None:
        """Unpack the tar stream ``src`` into the directory ``path`` of the container (a created
        one has the files when it starts)."""
        self._rt.put_archive(ref, path, src)

    def export(self, ref: str, out: IO[bytes]) -> None:
        """The container's root file system as a tar written to ``out`` (``docker export``):
        running, created or stopped; what is mounted in it (volumes, binds) is not included."""
        self._rt.export(ref, out)


def ps_table(output: str, pids: Collection[int]) -> ProcessList:
    """The lines of ``ps`` output that belong to ``pids``, split into its columns (the last one,
    the command, keeps its spaces); a thread line (PID ``-``, from ``ps m``) goes with the process
    above it.

    :raises PodsError: the output has no PID column
    """
    lines = output.splitlines()
    titles = lines[0].split() if lines else []
    if "PID" not in titles:
        raise PodsError("Couldn't find PID field in ps output")
    at = titles.index("PID")
    rows: builtins.list[builtins.list[str]] = []
    keep = False
    for line in lines[1:]:
        fields = line.split()
        if len(fields) <= at:
            continue
        if fields[at] != "-":
            keep = fields[at].isdigit() and int(fields[at]) in pids
        if keep:
            rows.append([*fields[:len(titles) - 1], " ".join(fields[len(titles) - 1:])])
    return ProcessList(titles, rows)


class Container(ContainerHandle):
    """A handle on one container, by ID (cheap: state is read when asked for)."""

    def __init__(self, client: Client, cid: str) -> None:
        self._c = client
        self.id = cid

    @property
    def state(self) -> ContainerState:
        return self._c.runtime.state(self.id)

    @property
    def name(self) -> str:
        return str(self.state["name"])

    @property
    def status(self) -> str:
        return str(self.state["status"])

    def start(self) -> None:
        self._c.runtime.start(self.id).close()

    def wait(self, timeout: float | None = None) -> int:
        return self._c.runtime.wait(self.id, timeout)

    def logs(self, *, stdout: bool = True, stderr: bool = True, tail: int | None = None) -> bytes:
        return b"".join(
            line for stream, _, line in self._c.runtime.logs(self.id, tail=tail)
            if (stream == "stdout" and stdout) or (stream == "stderr" and stderr)
        )

    def stream_logs(self, *, follow: bool = True) -> Iterator[LogLine]:
        return self._c.runtime.logs(self.id, follow=follow)

    def exec(self, cmd: Sequence[str] | str, *, environment: Sequence[str] | None = None,
             user: str | None = None, workdir: str | None = None, privileged: bool = False) -> ExecResult:
        if isinstance(cmd, str):
            cmd = ["/bin/sh", "-c", cmd]
        return self._c.runtime.exec(self.id, builtins.list(cmd), env=builtins.list(environment or []), user=user,
                                    workdir=workdir, privileged=privileged)

    def stop(self, timeout: float | None = None) -> None:
        self._c.runtime.stop(self.id, timeout)

    def kill(self, signal: str | int = _signal.SIGKILL) -> None:
        self._c.runtime.kill(self.id, signal)

    def remove(self, *, force: bool = False, v: bool = True) -> None:
        binds = (self.state.get("binds") or []) if v else []
        self._c.runtime.remove(self.id, force=force)
        if binds:
            self._c.runtime.settle()  # the monitor of a running one still holds its mounts
            self._c.volumes.remove_anonymous_of(binds)

    def stats(self) -> ContainerStats:
        return self._c.runtime.stats(self.id)

    def address(self, port: int | str) -> tuple[str, int]:
        """(host, port) on which a published container port is reached from this host."""
        return self._c.runtime.port(self.id, *parse_container_port(port))

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.state.get("labels") or {})

    def follow_logs(self, until: float | None = None) -> Iterator[LogLine]:
        """(stream, time, line) from the start, following until exit or the monotonic ``until``."""
        return self._c.runtime.logs(self.id, follow=True, until=until)

    def probe(self, st: Mapping[str, Any] | None = None) -> LocalProbe:
        """What readiness strategies watch this container through (see :mod:`pytest_pods.wait`)."""
        return LocalProbe(self, st if st is not None else self.state)

    @property
    def pid(self) -> int:
        """The container's pid 1 as the host sees it (0 when not running)."""
        st = self.state
        return int(st["pid"]) if st["status"] == "running" else 0

    def restart(self, timeout: float | None = None) -> None:
        """Stop (the stop signal, then SIGKILL after ``timeout``) and start again; the
        filesystem, name and published ports are kept, as ``docker restart`` does."""
        from pytest_pods.engine import events  # lazy: start latency (only restarts)

        self.stop(timeout)
        self.start()
        events.record(self._c.root, "container", "restart", self.id, events.container_attrs(self.state))

    def copy_in(self, src: str | os.PathLike[str], dest: str) -> None:
        """Copy a host file or directory into the container, running, created or stopped
        (``docker cp SRC CTR:DEST``): into ``dest`` if that is a directory there, else to the
        name ``dest``."""
        import tarfile  # lazy: start latency (tarfile is not on the CLI's path)

        src = os.fspath(src)
        if not os.path.lexists(src):
            raise NotFoundError(f"copy {src} into {self.name}: no such file or directory")
        st = self._c.runtime.path_stat(self.id, dest)
        if st is not None and stat.S_ISDIR(st.st_mode):
            target, arcname = dest, os.path.basename(os.path.normpath(src))
        else:
            target, arcname = os.path.dirname(dest.rstrip("/")) or "/", os.path.basename(dest.rstrip("/"))
        import tempfile  # lazy: start latency (tempfile brings random, shutil, bz2, lzma)

        with tempfile.TemporaryFile() as buf:
            with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
                tf.add(src, arcname=arcname)
            buf.seek(0)
            self._c.runtime.put_archive(self.id, target, buf)

    def copy_out(self, src: str, dest: str | os.PathLike[str]) -> None:
        """Copy a file or directory out of the container, running or not (``docker cp CTR:SRC DEST``):
        into ``dest`` if that is a directory, else to the name ``dest``."""
        dest = Path(dest)
        target, arcname = (dest, None) if dest.is_dir() else (dest.parent, dest.name)
        if not target.is_dir():
            raise NotFoundError(f"copy {src} out of {self.name}: no directory {target}")
        import tempfile  # lazy: start latency (as in copy_in)

        with tempfile.TemporaryFile() as buf:
            self._c.runtime.get_archive(self.id, src, buf, arcname)
            buf.seek(0)
            fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                extract_tar(buf, fd)
            finally:
                os.close(fd)

    def read_file(self, path: str) -> bytes:
        """The content of one file in the container (running or not)."""
        import tarfile  # lazy: start latency (tarfile is not on the CLI's path)

        buf = io.BytesIO()
        self._c.runtime.get_archive(self.id, path, buf)
        buf.seek(0)
        with tarfile.open(fileobj=buf) as tf:
            member = tf.next()
            f = tf.extractfile(member) if member is not None else None
            if f is None:
                raise InvalidArgumentError(f"read {path} in {self.name}: not a regular file")
            return f.read()

    def commit(self, repository: str | None = None, tag: str | None = None, *, message: str = "",
               author: str = "", changes: Sequence[str] | str = (), conf: Mapping[str, Any] | None = None,
               pause: bool = True, stop: bool = False) -> Image:
        """The container's filesystem changes as a new image (docker-py's ``commit``).

        ``pause`` freezes a running container while its changes are read; ``stop`` stops it
        cleanly first (its stop signal), so a service's data files are consistent.
        """
        from pytest_pods.engine.runtime.commit import commit  # lazy: start latency (not on the CLI's path)

        tags = []
        if repository:
            tags.append(f"{repository}:{tag}" if tag else repository)
        return commit(self._c.runtime, self.id, tags=tags, message=message, author=author,
                      changes=[changes] if isinstance(changes, str) else builtins.list(changes), config=conf,
                      pause=pause, stop=stop)

    @property
    def ip(self) -> str:
        """The container's address on its first network ("" with --network none/host)."""
        eps = self.state.get("endpoints") or {}
        return str(next(iter(eps.values()))["ip"]) if eps else ""

    def inspect(self) -> dict[str, Any]:
        """Docker's inspect document, as the daemon serves it (``pods inspect`` = ``docker inspect``)."""
        from pytest_pods.client.docker_docs import api_container_inspect  # lazy: start latency (the CLI's path)

        return api_container_inspect(self._c, self.id)


class LocalProbe:
    """How the local engine watches a container for :mod:`pytest_pods.wait`: a pidfd on its
    process for the exit, and the kernel's socket table of its network namespace for listening
    ports."""

    def __init__(self, container: Container, st: Mapping[str, Any]) -> None:
        self.container = container
        self.pid = int(st.get("pid") or 0)
        self._pidfd: int | None = None
        self._gone = st.get("status") != "running" or not self.pid
        if not self._gone:
            try:
                self._pidfd = os.pidfd_open(self.pid)
            except ProcessLookupError:
                self._gone = True  # exited before we looked: the monitor may not have said so yet
            if self._pidfd is not None and linux.process_start_time(self.pid) != st.get("pid_start"):
                self._gone = True  # the pid was reused
        self._diag: socket.socket | None = None  # a sock_diag netlink socket in its netns

    def exited(self) -> bool:
        if self._gone:
            return True
        if self._pidfd is None:
            return self.container.status != "running"
        return bool(select.select([self._pidfd], [], [], 0)[0])

    def wait_exit(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True (at once) if the container exits meanwhile."""
        if self._gone:
            return True
        if self._pidfd is None:
            time.sleep(seconds)
            return self.exited()
        return bool(select.select([self._pidfd], [], [], seconds)[0])

    def listening(self) -> set[int] | None:
        if self._diag is None:
            self._diag = linux.diag_socket(self.pid)
        return linux.listening_tcp_ports(self.pid, self._diag)

    def connection(self, port: int, timeout: float) -> http.client.HTTPConnection:
        """An HTTP connection to ``port`` on the container's own loopback (no publishing needed)."""
        import http.client  # lazy: start latency (http.client, email: not on the CLI's path)

        pid = self.pid

        class InNetns(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = linux.netns_socket(pid)
                self.sock.settimeout(self.timeout)
                self.sock.connect((self.host, self.port))

        return InNetns("127.0.0.1", port, timeout=timeout)

    def close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        if self._diag is not None:
            self._diag.close()
            self._diag = None


class NetworkCollection:
    """Networks: ``bridge`` (the default, made on first use) and user networks."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, name: str, *, subnet: str | None = None, internal: bool = False,
               labels: Mapping[str, str] | None = None, **ipam: Any) -> NetworkRecord:
        """``ipam``: the engine's IPAM and driver settings (``ipam_config``, ``ipam_options``,
        ``enable_ipv6``, ``options``, ``attachable``: see ``Networks.create``)."""
        nets: Networks = self._c.runtime.networks
        return nets.create(name, subnet=subnet, internal=internal, labels=dict(labels or {}), **ipam)

    def get(self, name: str) -> dict[str, Any]:
        from pytest_pods.client.docker_docs import network_inspect  # lazy: start latency (the CLI's path)

        return network_inspect(self._c, name)

    def list(self, *, create_default: bool = True) -> builtins.list[dict[str, Any]]:
        """Docker-shaped documents; ``create_default=False`` lists only what exists (sweeps)."""
        from pytest_pods.client.docker_docs import network_inspect  # lazy: start latency (the CLI's path)

        nets = self._c.runtime.networks
        return [network_inspect(self._c, r["id"]) for r in (nets.list() if create_default else nets.records())]

    def remove(self, name: str) -> str:
        return str(self._c.runtime.networks.remove(name))

    def connect(self, network: str, container: str, aliases: Sequence[str] = (),
                endpoint_config: Mapping[str, Any] | None = None) -> None:
        """``endpoint_config``: the Engine API's ``EndpointSettings`` (a fixed ``IPAMConfig``
        address, ``Links``, ``DriverOpts``), kept for each start."""
        self._c.runtime.connect(container, network, builtins.list(aliases), endpoint_config)

    def disconnect(self, network: str, container: str) -> None:
        self._c.runtime.disconnect(container, network)


class VolumeCollection:
    """Named volumes (``-v NAME:/path``)."""

    def __init__(self, client: Client) -> None:
        from pytest_pods.engine.runtime.volumes import Volumes  # lazy: start latency (made with the Client)

        self._c = client
        self._v = Volumes(client.root)

    def create(self, name: str | None = None, labels: Mapping[str, str] | None = None, *,
               anonymous: bool = False) -> dict[str, Any]:
        return self._v.create(name, dict(labels or {}), anonymous=anonymous)

    def get(self, name: str) -> dict[str, Any]:
        return self._v.inspect(name)

    def list(self) -> builtins.list[dict[str, Any]]:
        return self._v.list()

    def remove_anonymous_of(self, binds: Sequence[str]) -> builtins.list[str]:
        """``rm -v``: the anonymous volumes among a removed container's binds that no other
        container mounts."""
        done = []
        for b in binds:
            name = self._v.name_of(b.split(":")[0])
            if name and self._v.anonymous(name):
                with contextlib.suppress(ConflictError, NotFoundError):
                    self.remove(name)
                    done.append(name)
        return done

    def prune(self, *, anonymous_only: bool,
              match: Callable[[Mapping[str, Any]], bool] = lambda v: True) -> tuple[builtins.list[str], int]:
        """Remove the volumes no container (running or not) mounts that ``match`` accepts, only
        the anonymous ones with ``anonymous_only`` (dockerd's prune from API 1.42); their names
        and the bytes their files held."""
        in_use = {str(b).split(":")[0] for st in self._c.runtime.list(all=True) for b in st.get("binds") or []}
        deleted, space = [], 0
        for v in self._v.list():
            name = v["Name"]
            if str(self._v.path(name)) in in_use or (anonymous_only and not self._v.anonymous(name)) or not match(v):
                continue
            size = self._v.size(name)
            try:
                self._v.remove(name, in_use_by=[])
            except (ConflictError, NotFoundError, OSError):
                continue
            deleted.append(name)
            space += size
        return deleted, space

    def remove(self, name: str, *, force: bool = False) -> None:
        path = str(self._v.path(name))
        users = [st["id"] for st in self._c.runtime.list(all=True)
                 if any(b.split(":")[0] == path for b in st.get("binds") or [])]
        self._v.remove(name, in_use_by=users, force=force)
