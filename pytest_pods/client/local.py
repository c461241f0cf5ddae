"""The Client API: the one Python interface to images and containers.

The CLI, the pytest plugin and (later) the daemon are thin layers over it. ``Client()`` is the
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

import contextlib
import os
import signal as _signal
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from pytest_pods.engine.image.store import Image, Store, digest_hex
from pytest_pods.engine.runtime.lifecycle import ExecResult, Runtime
from pytest_pods.engine.runtime.spec import Bind, ContainerSpec, parse_bytes
from pytest_pods.errors import ConflictError, ContainerStartError, InvalidArgumentError, NotFoundError

__all__ = ["Client", "Container", "ExecResult", "RunResult"]


class RunResult(NamedTuple):
    """What a foreground ``run`` returns: the exit code and what the process printed."""

    exit_code: int
    output: bytes
    stderr: bytes
    id: str


class Client:
    """The local engine over one root (``PODS_ROOT``, default ``/var/lib/pytest-pods``)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.store = Store(root)
        self.runtime = Runtime(self.store)
        self.images = Images(self)
        self.containers = Containers(self)
        self.networks = NetworkCollection(self)
        self.volumes = VolumeCollection(self)
        self._reap_if_due()

    REAP_INTERVAL = 60.0

    def _reap_if_due(self) -> None:
        """The engine reaps at start, at most once a minute per root: one stat when not due."""
        import time

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

    def reap(self) -> list[str]:
        """Release what killed engines and monitors left behind."""
        return self.runtime.reap()

    def login(self, host: str, username: str, password: str, *, insecure: bool = False) -> None:
        """Check the credentials with the registry, then store them as ``docker login`` does."""
        from pytest_pods.engine.registry import http as transport

        transport.login(host, username, password, insecure=insecure)

    def logout(self, host: str) -> None:
        from pytest_pods.engine.registry import credentials

        credentials.erase(host)

    def cleanup(self) -> list[str]:
        """Release the host state this root holds that nothing uses: networks with no container
        (their bridges and rules; the default one is made again on first use) and empty cgroup
        parents. For the end of a session; running containers are left alone."""
        self.runtime.settle()
        done = self.reap()
        if (self.root / "networks").is_dir() and any((self.root / "networks").iterdir()):
            nets = self.runtime.networks
            for rec in nets.records():
                try:
                    done.append(f"Deleted network: {nets.remove(rec['id'], predefined_ok=True)}")
                except ConflictError:
                    continue  # a container still uses it
        return done

    def prune(self) -> list[str]:
        """Remove every stopped container and the blobs and snapshots nothing uses."""
        done = []
        for st in self.runtime.list(all=True):
            if st["status"] not in ("running", "starting"):
                self.runtime.remove(st["id"])
                done.append(f"Deleted container: {st['id']}")
        # snapshots nothing stacks on go now; unreferenced blobs only when older than the grace
        # period, as a concurrent import or load writes blobs before it records its image
        from pytest_pods.builders.build import cache_blobs

        self.store.gc(in_use_snapshots=self.runtime.in_use_snapshots(), keep=cache_blobs(self.store))
        return done


class Images:
    def __init__(self, client: Client) -> None:
        self._c = client

    @property
    def _store(self) -> Store:
        return self._c.store

    def list(self) -> list[Image]:
        return self._store.images()

    def get(self, name: str) -> Image:
        return self._store.get_image(name)

    def import_rootfs(self, tarball: str | os.PathLike[str], tag: str | None = None,
                      config: Mapping[str, Any] | None = None) -> Image:
        from pytest_pods.engine.image.bootstrap import import_rootfs

        return import_rootfs(self._store, tarball, tag, config)

    def bootstrap_busybox(self, tag: str = "busybox:latest") -> Image:
        from pytest_pods.engine.image.bootstrap import bootstrap_busybox

        return bootstrap_busybox(self._store, tag)

    def bootstrap_debian(self, suite: str = "bookworm", tag: str | None = None) -> Image:
        from pytest_pods.engine.image.bootstrap import bootstrap_debian

        return bootstrap_debian(self._store, suite, tag)

    def tag(self, source: str, target: str) -> Image:
        return self._store.tag(source, target)

    def remove(self, name: str, *, force: bool = False) -> list[str]:
        rt = self._c.runtime
        return self._store.remove_image(name, in_use=rt.in_use_images(), force=force,
                                        in_use_snapshots=rt.in_use_snapshots())

    def save(self, names: Sequence[str], out: str | os.PathLike[str], format: str = "docker-archive") -> None:
        from pytest_pods.engine.image import archive

        archive.save(self._store, list(names), out, format=format)

    def load(self, src: str | os.PathLike[str]) -> list[str]:
        from pytest_pods.engine.image import archive

        return archive.load(self._store, src)

    def inspect(self, name: str) -> dict[str, Any]:
        return image_inspect(self.get(name), self._store)

    def pull(self, ref: str, *, platform: str | None = None, insecure: bool = False,
             progress: Any = None) -> Image:
        """Pull from a registry (mirrors and rewrites from the registry config tried in order);
        the image is recorded under ``ref`` whichever source served it."""
        from pytest_pods.engine.registry import mirrors

        return mirrors.pull(self._store, ref, platform=platform, insecure=insecure, progress=progress)

    def push(self, name: str, dest: str | None = None, *, insecure: bool = False, progress: Any = None) -> str:
        """Push ``name`` (to ``dest``, another reference, when given); returns the manifest digest."""
        from pytest_pods.engine.image.reference import parse_reference
        from pytest_pods.engine.registry import distribution as registry
        from pytest_pods.engine.registry import mirrors

        host = parse_reference(dest or name).domain
        return str(registry.push(self._store, name, dest, progress=progress,
                                 insecure=insecure or mirrors.is_insecure(host)))

    def build(self, path: str | os.PathLike[str] = ".", *, tag: str | Sequence[str] | None = None,
              dockerfile: str | os.PathLike[str] | None = None, buildargs: Mapping[str, str] | None = None,
              target: str | None = None, nocache: bool = False, labels: Mapping[str, str] | None = None,
              network: str = "bridge", progress: Any = None) -> Image:
        """Build a Dockerfile (docker-py's names); ``progress`` gets one line per step and RUN output."""
        from pytest_pods.builders.build import BuildOptions, build_image

        tags = [tag] if isinstance(tag, str) else list(tag or [])
        opts = BuildOptions(context=Path(path), dockerfile=Path(dockerfile) if dockerfile else None, tags=tags,
                            build_args=dict(buildargs or {}), target=target, no_cache=nocache,
                            labels=dict(labels or {}), network=network, progress=progress)
        return build_image(self._store, self._c.runtime, opts)


class Containers:
    def __init__(self, client: Client) -> None:
        self._c = client

    def create(
        self,
        image: str,
        command: Sequence[str] | None = None,
        *,
        entrypoint: Sequence[str] | None = None,
        name: str | None = None,
        environment: Mapping[str, str] | Sequence[str] | None = None,
        working_dir: str | None = None,
        user: str | None = None,
        hostname: str | None = None,
        volumes: Sequence[str | Bind] = (),
        tmpfs: Sequence[str] = (),
        memory: str | int | None = None,
        memory_swap: str | int | None = None,
        pids_limit: int | None = None,
        cpus: float | None = None,
        network: str = "bridge",
        network_aliases: Sequence[str] = (),
        ports: Sequence[str] | Mapping[str, int | None] = (),
        publish_all_ports: bool = False,
        read_only: bool = False,
        init: bool = False,
        labels: Mapping[str, str] | None = None,
        stop_signal: str | None = None,
        stop_timeout: int | None = None,
        auto_remove: bool = False,
        no_new_privileges: bool = True,
        cap_add: Sequence[str] = (),
        cap_drop: Sequence[str] = (),
        stdin_open: bool = False,
    ) -> Container:
        """Create (not start) a container from ``image``; Docker's names and meanings."""
        img = self._c.store.get_image(image)
        if isinstance(command, str):
            command = ["/bin/sh", "-c", command]
        spec = ContainerSpec(
            image=image, command=command, entrypoint=entrypoint, name=name,
            env=environment or {}, workdir=working_dir, user=user, hostname=hostname,
            binds=[v if isinstance(v, Bind) else self._bind(v) for v in volumes], tmpfs=list(tmpfs),
            memory=parse_bytes(memory) if memory is not None else None,
            memory_swap=(parse_bytes(memory_swap, "--memory-swap") if memory_swap not in (None, -1, "-1") else
                         (-1 if memory_swap in (-1, "-1") else None)),
            pids_limit=pids_limit, cpus=cpus, network=network, read_only=read_only, init=init,
            network_aliases=tuple(network_aliases), ports=_port_specs(ports), publish_all=publish_all_ports,
            labels=labels or {}, stop_signal=stop_signal, stop_timeout=stop_timeout,
            auto_remove=auto_remove, no_new_privileges=no_new_privileges, cap_add=cap_add,
            cap_drop=cap_drop, stdin_open=stdin_open,
        )
        return Container(self._c, self._c.runtime.create(spec, img))

    def _bind(self, text: str) -> Bind:
        """``/host:/ctr[:ro]``, or ``NAME:/ctr[:ro]`` for a named volume (made on first use)."""
        name, sep, rest = text.partition(":")
        if sep and name and not name.startswith(("/", ".", "~")):
            from pytest_pods.engine.runtime.volumes import Volumes

            path = Volumes(self._c.root).create(name)["Mountpoint"]
            return Bind.parse(f"{path}:{rest}")
        return Bind.parse(text)

    def run(self, image: str, command: Sequence[str] | None = None, *, detach: bool = False,
            remove: bool = False, **kwargs: Any) -> Any:
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
            handle = self._c.runtime.start(c.id, attach=(out_w, err_w))
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            if not remove:
                c.remove(force=True)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        from pytest_pods.engine.runtime.lifecycle import _collect

        output, stderr = _collect([out_r, err_r])
        code = handle.wait()
        return RunResult(code, output, stderr, c.id)

    def get(self, ref: str) -> Container:
        return Container(self._c, self._c.runtime.resolve(ref))

    def list(self, *, all: bool = False) -> list[Container]:
        return [Container(self._c, st["id"]) for st in self._c.runtime.list(all=all)]


class ContainerHandle:
    """What a container handle of any engine (local or remote) builds on ``id`` and
    ``address()``: the same helpers, written once."""

    id: str

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id[:12]}>"

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def address(self, port: int | str) -> tuple[str, int]:
        raise NotImplementedError

    def host_port(self, port: int | str) -> int:
        return self.address(port)[1]

    def url(self, port: int | str = 80, path: str = "/", scheme: str = "http") -> str:
        """The URL of a published container port from this host: ``url(8080, "/health")``."""
        host, hport = self.address(port)
        return f"{scheme}://{host}:{hport}/{path.lstrip('/')}"

    def wait_ready(self, strategy: Any, timeout: float = 60.0) -> float:
        """Block until ``strategy`` (see :mod:`pytest_pods.wait`) holds; the seconds it took."""
        from pytest_pods.wait import wait_ready

        return wait_ready(self, strategy, timeout)


class Container(ContainerHandle):
    """A handle on one container, by ID (cheap: state is read when asked for)."""

    def __init__(self, client: Client, cid: str) -> None:
        self._c = client
        self.id = cid

    @property
    def state(self) -> dict[str, Any]:
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

    def stream_logs(self, *, follow: bool = True) -> Iterator[tuple[str, str, bytes]]:
        return self._c.runtime.logs(self.id, follow=follow)

    def exec(self, cmd: Sequence[str] | str, *, environment: Sequence[str] | None = None,
             user: str | None = None, workdir: str | None = None) -> ExecResult:
        if isinstance(cmd, str):
            cmd = ["/bin/sh", "-c", cmd]
        return self._c.runtime.exec(self.id, list(cmd), env=list(environment or []), user=user, workdir=workdir)

    def stop(self, timeout: float | None = None) -> None:
        self._c.runtime.stop(self.id, timeout)

    def kill(self, signal: str | int = _signal.SIGKILL) -> None:
        self._c.runtime.kill(self.id, signal)

    def remove(self, *, force: bool = False) -> None:
        self._c.runtime.remove(self.id, force=force)

    def stats(self) -> dict[str, Any]:
        return self._c.runtime.stats(self.id)

    def address(self, port: int | str) -> tuple[str, int]:
        """(host, port) on which a published container port is reached from this host."""
        num, _, proto = str(port).partition("/")
        return self._c.runtime.port(self.id, int(num), proto or "tcp")

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.state.get("labels") or {})

    def follow_logs(self, until: float | None = None) -> Iterator[tuple[str, str, bytes]]:
        """(stream, time, line) from the start, following until exit or the monotonic ``until``."""
        return self._c.runtime.logs(self.id, follow=True, until=until)

    def probe(self, st: dict[str, Any] | None = None) -> Any:
        """What readiness strategies watch this container through (see :mod:`pytest_pods.wait`)."""
        from pytest_pods.wait import LocalProbe

        return LocalProbe(self, st if st is not None else self.state)

    @property
    def pid(self) -> int:
        """The container's pid 1 as the host sees it (0 when not running)."""
        st = self.state
        return int(st["pid"]) if st["status"] == "running" else 0

    def restart(self, timeout: float | None = None) -> None:
        """Stop (the stop signal, then SIGKILL after ``timeout``) and start again; the
        filesystem, name and published ports are kept, as ``docker restart`` does."""
        self.stop(timeout)
        self.start()

    def copy_in(self, src: str | os.PathLike[str], dest: str) -> None:
        """Copy a host file or directory into the running container (``docker cp SRC CTR:DEST``):
        into ``dest`` if that is a directory there, else to the name ``dest``."""
        import stat
        import tarfile
        import tempfile

        src = os.fspath(src)
        if not os.path.lexists(src):
            raise NotFoundError(f"copy {src} into {self.name}: no such file or directory")
        st = self._c.runtime.path_stat(self.id, dest)
        if st is not None and stat.S_ISDIR(st.st_mode):
            target, arcname = dest, os.path.basename(os.path.normpath(src))
        else:
            target, arcname = os.path.dirname(dest.rstrip("/")) or "/", os.path.basename(dest.rstrip("/"))
        with tempfile.TemporaryFile() as buf:
            with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
                tf.add(src, arcname=arcname)
            buf.seek(0)
            self._c.runtime.put_archive(self.id, target, buf)

    def copy_out(self, src: str, dest: str | os.PathLike[str]) -> None:
        """Copy a file or directory out of the running container (``docker cp CTR:SRC DEST``):
        into ``dest`` if that is a directory, else to the name ``dest``."""
        import tempfile

        from pytest_pods.engine.image.layers import extract_into

        dest = Path(dest)
        target, arcname = (dest, None) if dest.is_dir() else (dest.parent, dest.name)
        if not target.is_dir():
            raise NotFoundError(f"copy {src} out of {self.name}: no directory {target}")
        with tempfile.TemporaryFile() as buf:
            self._c.runtime.get_archive(self.id, src, buf, arcname)
            buf.seek(0)
            fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                extract_into(buf, fd)
            finally:
                os.close(fd)

    def read_file(self, path: str) -> bytes:
        """The content of one file in the running container."""
        import io
        import tarfile

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
        from pytest_pods.engine.runtime.commit import commit

        tags = []
        if repository:
            tags.append(f"{repository}:{tag}" if tag else repository)
        return commit(self._c.runtime, self.id, tags=tags, message=message, author=author,
                      changes=[changes] if isinstance(changes, str) else list(changes), config=conf,
                      pause=pause, stop=stop)

    @property
    def ip(self) -> str:
        """The container's address on its first network ("" with --network none/host)."""
        eps = self.state.get("endpoints") or {}
        return str(next(iter(eps.values()))["ip"]) if eps else ""

    def inspect(self) -> dict[str, Any]:
        return container_inspect(self._c, self.id)


def _port_specs(ports: Sequence[str] | Mapping[str, int | None]) -> tuple[str, ...]:
    """docker-py's ``{"80/tcp": 8080}`` (None: any free port) or ``["8080:80"]``."""
    if isinstance(ports, Mapping):
        out = []
        for ctr, host in ports.items():
            num, _, proto = str(ctr).partition("/")
            if isinstance(host, tuple):  # (host_ip, host_port)
                out.append(f"{host[0]}:{host[1] or 0}:{num}/{proto or 'tcp'}")
            else:
                out.append(f"{host or 0}:{num}/{proto or 'tcp'}")
        return tuple(out)
    return tuple(str(p) for p in ports)


class NetworkCollection:
    """Networks: ``bridge`` (the default, made on first use) and user networks."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, name: str, *, subnet: str | None = None, internal: bool = False,
               labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        return dict(self._c.runtime.networks.create(name, subnet=subnet, internal=internal, labels=dict(labels or {})))

    def get(self, name: str) -> dict[str, Any]:
        return network_inspect(self._c, name)

    def list(self, *, create_default: bool = True) -> list[dict[str, Any]]:
        """Docker-shaped documents; ``create_default=False`` lists only what exists (sweeps)."""
        nets = self._c.runtime.networks
        return [network_inspect(self._c, r["id"]) for r in (nets.list() if create_default else nets.records())]

    def remove(self, name: str) -> str:
        return str(self._c.runtime.networks.remove(name))

    def connect(self, network: str, container: str, aliases: Sequence[str] = ()) -> None:
        self._c.runtime.connect(container, network, list(aliases))

    def disconnect(self, network: str, container: str) -> None:
        self._c.runtime.disconnect(container, network)


class VolumeCollection:
    """Named volumes (``-v NAME:/path``)."""

    def __init__(self, client: Client) -> None:
        from pytest_pods.engine.runtime.volumes import Volumes

        self._c = client
        self._v = Volumes(client.root)

    def create(self, name: str | None = None, labels: Mapping[str, str] | None = None, *,
               anonymous: bool = False) -> dict[str, Any]:
        return self._v.create(name, dict(labels or {}), anonymous=anonymous)

    def get(self, name: str) -> dict[str, Any]:
        return self._v.inspect(name)

    def list(self) -> list[dict[str, Any]]:
        return self._v.list()

    def remove_anonymous_of(self, binds: Sequence[str]) -> list[str]:
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

    def remove(self, name: str, *, force: bool = False) -> None:
        path = str(self._v.path(name))
        users = [st["id"] for st in self._c.runtime.list(all=True)
                 if any(b.split(":")[0] == path for b in st.get("binds") or [])]
        self._v.remove(name, in_use_by=users, force=force)


def network_inspect(client: Client, ref: str) -> dict[str, Any]:
    import time as _time

    nets = client.runtime.networks
    rec = nets.get(ref)
    containers = {e["cid"]: {"Name": e["name"], "IPv4Address": f"{e['ip']}/{e['prefix']}",
                             "Aliases": e["aliases"]} for e in nets.endpoints(rec)}
    return {
        "Name": rec["name"], "Id": rec["id"], "Driver": "bridge", "Scope": "local", "Internal": rec["internal"],
        "Created": _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(rec["created"])),
        "IPAM": {"Driver": "default", "Config": [{"Subnet": rec["subnet"], "Gateway": rec["gateway"]}]},
        "Options": {"com.docker.network.bridge.name": rec["bridge"]}, "Labels": rec.get("labels") or {},
        "Containers": containers,
    }


# -- inspect documents, in Docker's shape ---------------------------------------------------------
def image_inspect(image: Image, store: Store | None = None) -> dict[str, Any]:
    from pytest_pods.engine.image.reference import parse_reference

    cfg = image.config
    repo_digests: list[str] = []
    if store is not None and (store.root / "registry").is_dir():
        from pytest_pods.engine.registry.distribution import known_repositories

        for repo in known_repositories(store, image.manifest_digest):
            repo_digests.append(f"{parse_reference(repo).familiar_repository}@{image.manifest_digest}")
    return {
        "Id": image.id,
        "RepoTags": image.familiar_tags,
        "RepoDigests": repo_digests,
        "Parent": "",
        "Comment": "",
        "Created": cfg.get("created") or "0001-01-01T00:00:00Z",
        "Architecture": cfg.get("architecture", ""),
        "Os": cfg.get("os", ""),
        "Size": image.size,
        "Config": _docker_config(cfg.get("config") or {}),
        "RootFS": {"Type": "layers", "Layers": image.diff_ids},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        "Descriptor": {"mediaType": image.manifest.get("mediaType"), "digest": image.manifest_digest},
        "_Names": [str(parse_reference(t)) for t in image.tags],
    }


def _docker_config(c: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts",
            "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "Image", "Volumes", "WorkingDir",
            "Entrypoint", "OnBuild", "Labels", "StopSignal", "Shell")
    defaults: dict[str, Any] = {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
                                "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
                                "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
                                "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None}
    out = {k: c.get(k, defaults.get(k)) for k in keys if k in c or k in defaults}
    return out


def container_inspect(client: Client, cid: str) -> dict[str, Any]:
    import json

    st = client.runtime.state(cid)
    cdir = client.runtime.dir / st["id"]
    cfg = json.loads((cdir / "config.json").read_text())
    proc = cfg["process"]
    status = st["status"] if st["status"] != "starting" else "created"
    limits = st.get("limits") or {}
    return {
        "Id": st["id"],
        "Created": st["created"],
        "Path": proc["args"][0],
        "Args": proc["args"][1:],
        "State": {
            "Status": status, "Running": status == "running", "Paused": False, "Restarting": False,
            "OOMKilled": bool(st.get("oom_killed")), "Dead": False, "Pid": st.get("pid", 0) if status == "running" else 0,
            "ExitCode": st.get("exit_code", 0), "Error": st.get("error", ""),
            "StartedAt": st.get("started_at"), "FinishedAt": st.get("finished_at"),
        },
        "Image": st["image"],
        "ResolvConfPath": str(cdir / "resolv.conf"),
        "HostnamePath": str(cdir / "hostname"),
        "HostsPath": str(cdir / "hosts"),
        "LogPath": str(cdir / "container.log"),
        "Name": "/" + st["name"],
        "RestartCount": st.get("restart_count", 0),
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": {
            "Binds": st.get("binds") or None,
            "NetworkMode": st.get("network", "none"),
            "AutoRemove": bool(st.get("auto_remove")),
            "ReadonlyRootfs": bool(st.get("read_only")),
            "Init": bool(st.get("init")),
            "Memory": limits.get("memory") or 0,
            "MemorySwap": limits.get("memory_swap") or 0,
            "PidsLimit": limits.get("pids"),
            "NanoCpus": int((limits.get("cpus") or 0) * 1e9),
            "Tmpfs": {t.partition(":")[0]: t.partition(":")[2] for t in st.get("tmpfs", [])} or None,
            "CapAdd": None, "CapDrop": None,
        },
        "GraphDriver": {"Name": "overlay", "Data": {
            "LowerDir": ":".join(st.get("lower_dirs", [])), "UpperDir": str(cdir / "upper"),
            "WorkDir": str(cdir / "work"), "MergedDir": str(cdir / "rootfs")}},
        "Mounts": [_mount_doc(client, m) for m in cfg["mounts"]
                   if m["type"] == "bind" and not m["destination"].startswith("/etc/")],
        "Config": {
            "Hostname": cfg.get("hostname", ""), "User": st.get("user", ""), "Env": proc["env"],
            "Cmd": proc["args"], "Image": st.get("image_name", ""), "WorkingDir": proc["cwd"],
            "Labels": st.get("labels") or {}, "StopSignal": _signal.Signals(st.get("stop_signal", 15)).name,
            "StopTimeout": st.get("stop_timeout"), "OpenStdin": bool(st.get("stdin_open")), "Tty": False,
        },
        "NetworkSettings": _network_settings(st),
    }


def _mount_doc(client: Client, m: dict[str, Any]) -> dict[str, Any]:
    """A bind mount as docker shows it: a named or anonymous volume's as Type "volume"."""
    from pytest_pods.engine.runtime.volumes import Volumes

    rw = "ro" not in m.get("options", [])
    name = Volumes(client.root).name_of(m["source"])
    if name:
        return {"Type": "volume", "Name": name, "Source": m["source"], "Destination": m["destination"],
                "Driver": "local", "Mode": "", "RW": rw, "Propagation": ""}
    return {"Type": "bind", "Source": m["source"], "Destination": m["destination"], "Mode": "", "RW": rw,
            "Propagation": "rprivate"}


def _network_settings(st: dict[str, Any]) -> dict[str, Any]:
    eps = st.get("endpoints") or {} if st.get("status") == "running" else {}
    networks = {name: {"IPAddress": e["ip"], "IPPrefixLen": e["prefix"], "Gateway": e["gateway"],
                       "Aliases": e["aliases"], "NetworkID": e["network_id"]} for name, e in eps.items()}
    if not networks:
        networks = {n["name"]: {"IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "Aliases": n.get("aliases", []),
                                "NetworkID": n["id"]} for n in st.get("networks", [])} or {st.get("network", "none"): {}}
    ports: dict[str, Any] = {}
    for p in st.get("port_specs") or []:
        ports.setdefault(f"{p['container_port']}/{p['proto']}", None)
    if st.get("status") == "running":
        for p in st.get("ports") or []:
            key = f"{p['container_port']}/{p['proto']}"
            ports[key] = (ports.get(key) or []) + [{"HostIp": p["host_ip"], "HostPort": str(p["host_port"])}]
    first = next(iter(networks.values()), {})
    return {"Networks": networks, "Ports": ports, "IPAddress": first.get("IPAddress", ""),
            "Gateway": first.get("Gateway", ""), "IPPrefixLen": first.get("IPPrefixLen", 0)}


def short(digest: str) -> str:
    return digest_hex(digest)[:12]


__all__ += ["ContainerStartError"]
