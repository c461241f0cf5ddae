"""Containers: create, start, wait, logs, exec, stop, kill, remove, inspect, list, reap.

A container is a directory ``root/containers/<id>/`` holding the OCI bundle (``config.json`` and
the ``rootfs`` mount point), the overlay ``upper``/``work`` dirs, ``state.json``, the
``/etc/hosts``-style files bind-mounted in, and ``container.log``. Its process is owned by a
monitor (``engine.monitor``), so the engine's caller may exit. Overlay and every other mount live
only in the container's own mount namespace: when its last process ends the kernel drops them,
so a crash cannot leak a mount on the host.
"""

from __future__ import annotations

import builtins  # Runtime.list shadows the name in the class
import contextlib
import json
import os
import re
import select
import signal
import stat
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple, TypedDict

from pytest_pods.engine import events, linux, rootless
from pytest_pods.engine.files import remove_tree
from pytest_pods.engine.image.store import Image, Store
from pytest_pods.engine.locks import lease, lease_alive, remove_dead_leased
from pytest_pods.engine.runtime.spec import (
    NETWORK_MODES,
    SECCOMP_FILTER_KEY,
    Bind,
    ContainerSpec,
    build_config,
    check_namespace_modes,
    effective_caps,
    group_ids,
    lookup_user,
    merge_env,
    own_capabilities,
    parse_security_opt,
    parse_signal,
    resolve_args,
)
from pytest_pods.engine.runtime.state import (
    STATE,
    BrokenStateError,
    ContainerState,
    NetworkRef,
    dead_state,
    locked,
    now_iso,
    read_state,
    update_state,
    write_state,
)
from pytest_pods.errors import (
    ConflictError,
    ContainerNotFoundError,
    ContainerStartError,
    InvalidArgumentError,
    LimitsUnavailableError,
    LogsUnsupportedError,
    NotFoundError,
    PodsError,
)

if TYPE_CHECKING:
    from pytest_pods.engine.network.networks import EndpointRecord, Networks
    from pytest_pods.engine.network.ports import PortRecord
    from pytest_pods.engine.runtime.cgroups import Cgroup

LABEL_LIMITS_DROPPED = "io.pytest-pods.limits-dropped"
LABEL_OWNER = "io.pytest-pods.owner"
"""A container that lives only as long as the process this lease names (``engine.locks.lease``): a
build's RUN step. Its monitor kills and removes it when that process dies; the reaper removes
what is left of it (issue 14: a killed build leaves nothing running)."""
INCOMPLETE_AFTER = 5.0
"""Seconds after which a container directory without a state file is no create in progress but
what a killed one left: listed as dead, removed by the reaper (a create writes its state within
milliseconds of making the directory)."""
ABANDONED_AFTER = 2.0
"""Seconds a ``starting`` state whose starter died may wait for the monitor it may have forked."""
_warned_dropped = False


RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")
LOG_DRIVERS = ("json-file", "local", "none")
LOG_OPTS = {"json-file": ("max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag"),
            "local": ("max-file", "max-size", "compress")}
"""The log drivers the engine has: ``json-file`` and ``local`` both write the json-file log
(``docker logs`` reads either), ``none`` writes nothing."""


def check_restart_policy(policy: Any, auto_remove: bool) -> dict[str, Any] | None:
    """``HostConfig.RestartPolicy`` checked as dockerd does; None for none ("no").

    :raises InvalidArgumentError: in dockerd's words
    """
    if not policy:
        return None
    name = str(policy.get("Name") or "")
    count = policy.get("MaximumRetryCount") or 0
    if not isinstance(count, int) or isinstance(count, bool):
        raise InvalidArgumentError("json: cannot unmarshal MaximumRetryCount: want an integer")
    if name not in ("", *RESTART_POLICIES):
        raise InvalidArgumentError(f"invalid restart policy '{name}'")
    if name == "on-failure" and count < 0:
        raise InvalidArgumentError("maximum retry count cannot be negative")
    if name != "on-failure" and count:
        raise InvalidArgumentError(f"maximum retry count cannot be used with restart policy '{name}'")
    if auto_remove and name not in ("", "no"):
        raise InvalidArgumentError("can't create 'AutoRemove' container with restart policy")
    return {"Name": name, "MaximumRetryCount": count}  # "no" and "" kept as given: inspect shows them


def check_log_config(config: Any) -> dict[str, Any] | None:
    """``HostConfig.LogConfig`` checked as dockerd does; None for the default (json-file, no options).

    :raises InvalidArgumentError: an unknown driver, in dockerd's words
    """
    if not config:
        return None
    kind = str(config.get("Type") or "json-file")
    opts = config.get("Config") or {}
    if kind not in LOG_DRIVERS:
        raise InvalidArgumentError(f'error looking up logging plugin {kind}: plugin "{kind}" not found')
    if not isinstance(opts, dict) or not all(isinstance(v, str) for v in opts.values()):
        raise InvalidArgumentError("json: cannot unmarshal LogConfig.Config: want string values")
    known = LOG_OPTS.get(kind)
    for key in opts:
        if known is not None and key not in known and key != "mode" and key != "max-buffer-size":
            raise InvalidArgumentError(f"unknown log opt '{key}' for {kind} log driver")
    if kind == "json-file" and not opts:
        return None
    return {"Type": kind, "Config": dict(opts)}


def rootless_limits(spec: ContainerSpec) -> tuple[ContainerSpec, list[str]]:
    """The spec as this engine can run it, and the limits dropped. Rootless without a delegated
    cgroup v2 a limit is refused (LimitsUnavailableError, one line: why and how to get delegation)
    unless PODS_IGNORE_LIMITS=1, which drops it with a warning (once per process)."""
    asked = [what for what, value in (("memory", spec.memory or spec.memory_swap), ("pids", spec.pids_limit),
                                     ("cpu", spec.cpus or spec.cpu_shares)) if value]
    if not asked or not rootless.active() or rootless.delegated_cgroup() is not None:
        return spec, []
    refusal = rootless.limits_refusal(asked[0])
    if refusal is not None:
        raise LimitsUnavailableError(refusal)
    global _warned_dropped
    if not _warned_dropped:
        _warned_dropped = True
        import warnings  # lazy: start latency (only when a limit is dropped)

        warnings.warn(f"pytest-pods: {', '.join(asked)} limit dropped: rootless containers have no cgroup here "
                      f"({rootless.IGNORE_LIMITS_ENV}=1)", RuntimeWarning, stacklevel=3)
    return spec._replace(memory=None, memory_swap=None, pids_limit=None, cpus=None, cpu_shares=None), asked


NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_ADJ = ("brave", "calm", "eager", "fond", "keen", "lucid", "merry", "quiet", "sharp", "tidy", "vivid", "wise")
_NOUN = ("curie", "dijkstra", "hopper", "knuth", "lovelace", "noether", "ritchie", "turing", "wirth", "yonath")
LABEL_ENGINE = "io.pytest-pods.engine"
_SIGTERM = 15


class ContainerStats(TypedDict):
    """What ``stats`` reports, from the container's cgroup (None: not limited)."""

    memory_usage: int
    memory_limit: int | None
    pids: int
    pids_limit: int | None
    cpu_usage_ns: int
    net: dict[str, tuple[int, int]]  # interface -> (received, sent) bytes; lo and host networks left out
    block_read: int
    block_written: int


def _resolv_conf(base: str, servers: Sequence[str], search: Sequence[str], options: Sequence[str]) -> str:
    """``base`` with its nameserver, search and options lines replaced by those given (a search
    of ``.`` alone: no search line), as dockerd writes a container's resolv.conf."""
    if not (servers or search or options):
        return base
    keep = {"nameserver": not servers, "search": not search, "domain": not search, "options": not options}
    lines = [line for line in base.splitlines() if keep.get((line.split() or [""])[0], True)]
    lines += [f"nameserver {s}" for s in servers]
    if search and list(search) != ["."]:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


class ExecResult(NamedTuple):
    exit_code: int
    output: bytes = b""
    stderr: bytes = b""


class Runtime:
    """The container half of the local engine, over one store root."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.dir = store.containers
        self.names = self.dir / ".names"
        self.names.mkdir(exist_ok=True)
        # One cgroup parent per root: the reaper of one root must never touch another's groups.
        self.cgroup_parent = f"pytest-pods-{zlib.crc32(os.fsencode(os.path.realpath(store.root))):08x}"
        empty = store.snapshots / ".empty"
        empty.mkdir(exist_ok=True)
        self._empty_lower = empty
        self._networks: Networks | None = None

    def cgroup(self, cid: str) -> Cgroup:
        """The container's control group (nothing is made: ``create`` is the monitor's)."""
        from pytest_pods.engine.runtime import cgroups  # lazy: start latency (pods ps, logs, inspect never need it)

        return cgroups.open_cgroup(cid, parent=self.cgroup_parent)

    # -- lookup ----------------------------------------------------------------------------
    def _ids(self) -> builtins.list[str]:
        return [p.name for p in self.dir.iterdir() if len(p.name) == 64 and not p.name.startswith(".")]

    def resolve(self, ref: str) -> str:
        """A container ID from a full ID, a unique ID prefix or a name."""
        if not ref:
            raise ContainerNotFoundError("No such container: ")
        name = ref.removeprefix("/")
        if NAME_RE.match(ref):
            with contextlib.suppress(OSError):
                cid = os.readlink(self.names / name)
                if (self.dir / cid / "state.json").exists():
                    return cid
        if re.fullmatch(r"[0-9a-f]{1,64}", ref):
            matches = [i for i in self._ids() if i.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise InvalidArgumentError(f"container ID {ref!r} is ambiguous: give more of it")
        raise ContainerNotFoundError(f"No such container: {ref}")

    def state(self, ref: str) -> ContainerState:
        """The container's state; a container whose state file cannot be read has status
        ``dead`` and an ``error`` naming the file (issue 14: broken state is shown, not hidden)."""
        cid = self.resolve(ref)
        cdir = self.dir / cid
        try:
            st = read_state(cdir)
        except FileNotFoundError:
            if self._incomplete(cid):
                return dead_state(cdir, f"{cdir / STATE}: missing", self._name_of(cid))
            raise ContainerNotFoundError(f"No such container: {ref}") from None
        except BrokenStateError as exc:
            return dead_state(cdir, str(exc), self._name_of(cid))
        if st.get("status") == "removing":
            raise ContainerNotFoundError(f"No such container: {ref}")  # rm -f returned: it is gone
        if st.get("status") in ("running", "restarting") and not _alive(st.get("monitor_pid"), st.get("monitor_start")):
            with contextlib.suppress(OSError, ValueError):  # it may have recorded the exit just before it ended
                st = read_state(cdir)
            if st.get("status") in ("running", "restarting"):
                st = self._release_orphan(cid)  # every verb then sees what is true, as after a reap
        elif st.get("status") == "starting" and self._start_abandoned(cdir, st):
            st = self._release_orphan(cid, status="created")
        return self._refresh(st)

    def _incomplete(self, cid: str) -> bool:
        """A directory without a state file, older than a create takes: what a killed create left."""
        cdir = self.dir / cid
        try:
            return not (cdir / STATE).exists() and time.time() - cdir.stat().st_mtime > INCOMPLETE_AFTER
        except OSError:
            return False

    def _start_abandoned(self, cdir: Path, st: ContainerState) -> bool:
        """A ``starting`` state whose starter and monitor are gone (killed in the middle of ``start``)."""
        if _alive(st.get("monitor_pid"), st.get("monitor_start")):
            return False
        starter = st.get("starter")
        if starter and lease_alive(starter):
            return False
        try:
            return time.time() - (cdir / STATE).stat().st_mtime > ABANDONED_AFTER
        except OSError:
            return False

    def _name_of(self, cid: str) -> str | None:
        """The name whose link points at ``cid`` (for a container whose state cannot say it)."""
        with contextlib.suppress(OSError):
            for link in self.names.iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(link) == cid:
                        return link.name
        return None

    def _release_orphan(self, cid: str, status: str = "exited") -> ContainerState:
        """A running container whose monitor was killed: end its processes, free its cgroup and
        network endpoints, and record it as killed (137). ``status`` "created": a start that was
        killed before its container ran (it may be started again)."""
        with contextlib.suppress(Exception):
            self.cgroup(cid).destroy()
        st = read_state(self.dir / cid)
        _kill_pid1(st)  # without a cgroup (rootless): its pid namespace ends with its pid 1
        if st.get("endpoints") and (self.store.root / "networks").is_dir():
            with contextlib.suppress(Exception):
                for name in list(st["endpoints"]):
                    self.networks.detach(name, cid)
        if st.get("port_specs"):
            with contextlib.suppress(Exception):
                from pytest_pods.engine.network.ports import unpublish  # lazy: start latency

                unpublish(cid)  # its rules, found by their tag
        if status == "created":
            return update_state(self.dir / cid, lambda s: s.update({"status": "created", "pid": 0}))
        return update_state(self.dir / cid, lambda s: s.update({
            "status": "exited", "exit_code": 137, "pid": 0, "error": "the container's monitor was killed",
            "finished_at": now_iso()}))

    def _refresh(self, st: ContainerState) -> ContainerState:
        """A container marked running whose monitor is gone died with it: say so."""
        if st.get("status") in ("running", "restarting") and not _alive(st.get("monitor_pid"), st.get("monitor_start")):
            with contextlib.suppress(OSError, ValueError):  # it may have recorded the exit just before it ended
                again = read_state(self.dir / st["id"])
                if again.get("status") not in ("running", "restarting"):
                    return again
            st["status"] = "exited"
            st["exit_code"] = st.get("exit_code") or 137
            st["error"] = "the container's monitor was killed"
        return st

    # -- create ----------------------------------------------------------------------------
    def create(self, spec: ContainerSpec, image: Image) -> str:
        """Write the bundle and state; return the new ID. Nothing remains if a step fails."""
        if spec.workdir is not None and not spec.workdir.startswith("/"):
            raise InvalidArgumentError(
                f"the working directory {spec.workdir!r} is invalid, it needs to be an absolute path")
        spec, dropped = rootless_limits(spec)
        if spec.pid_mode or spec.uts_mode or spec.ipc_mode or spec.cgroupns_mode:
            check_namespace_modes(spec)
        restart_policy = check_restart_policy(spec.restart_policy, spec.auto_remove)
        log_config = check_log_config(spec.log_config)
        networks, ports = self._plan_network(spec, image)
        if spec.memory is not None and spec.memory < 6 * 1024 * 1024:
            raise InvalidArgumentError("create container: --memory: minimum memory limit allowed is 6MB")
        if spec.pids_limit is not None and spec.pids_limit == 0:
            raise InvalidArgumentError("create container: --pids-limit must be positive or -1")
        if spec.cpus is not None and not 0.01 <= spec.cpus <= os.cpu_count():  # type: ignore[operator]
            raise InvalidArgumentError(
                f"create container: --cpus {spec.cpus}: range of CPUs is from 0.01 to {os.cpu_count()}.00"
            )
        for b in spec.binds:
            if b.target == "/":
                raise InvalidArgumentError("invalid mount config: destination can't be '/'")
            if not os.path.lexists(b.source):
                os.makedirs(b.source, exist_ok=True)  # docker's -v makes a missing host directory
        img_cfg = image.run_config
        args = resolve_args(spec, img_cfg)
        lowers = self.store.lower_dirs(image) or [self._empty_lower]
        uid, gid, groups, home = lookup_user(spec.user if spec.user is not None else img_cfg.get("User"), lowers)
        start_error = None
        if spec.group_add:
            try:
                groups += [g for g in group_ids(spec.group_add, lowers) if g not in groups]
            except InvalidArgumentError as exc:
                start_error = str(exc)  # as dockerd: the create stands, its start fails
        if rootless.inside():
            missing = rootless.unmapped(uid, gid, groups)
            if missing is not None:
                raise ContainerStartError(f"create container: user {spec.user or img_cfg.get('User')!r}: {missing}")
        stop_signal = parse_signal(spec.stop_signal or img_cfg.get("StopSignal") or "SIGTERM")
        healthcheck = None
        if spec.healthcheck is not None or img_cfg.get("Healthcheck"):
            from pytest_pods.engine.runtime import health  # lazy: only containers with a health check

            healthcheck = health.merge(img_cfg.get("Healthcheck"), spec.healthcheck)
        caps = effective_caps(spec.cap_add, spec.cap_drop, privileged=spec.privileged)
        security = parse_security_opt(spec.security_opt, no_new_privileges=spec.no_new_privileges)
        seccomp_section, seccomp_filter = None, None
        # Docker's default profile unless unconfined; a privileged container has none unless one is named
        if security.seccomp != "unconfined" and not (spec.privileged and security.seccomp is None):
            from pytest_pods.engine.runtime import seccomp  # lazy: the profile table and libseccomp, off ps/logs

            seccomp_section, seccomp_filter = seccomp.prepare(security.seccomp, caps, self.store.root / "seccomp")
        cid = os.urandom(32).hex()
        name = spec.name.removeprefix("/") if spec.name else self._random_name()
        if not NAME_RE.match(name) or len(name) > 200:
            raise InvalidArgumentError(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        hostname = spec.hostname or (os.uname().nodename if spec.uts_mode == "host" else cid[:12])
        env = merge_env(img_cfg.get("Env") or [], spec.env_list(), bare_unsets=spec.env_bare_unsets)
        if not any(e.startswith("HOSTNAME=") or e == "HOSTNAME" for e in spec.env_list()):
            env.insert(1, f"HOSTNAME={hostname}")
        if not any(e.startswith("HOME=") for e in env):
            env.append(f"HOME={home}")
        cdir = self.dir / cid
        link = self.names / name
        try:
            os.symlink(cid, link)
        except FileExistsError:
            other = os.readlink(link)
            if (self.dir / other).exists():
                raise ConflictError(
                    f'Conflict. The container name "/{name}" is already in use by container "{other}". '
                    "You have to remove (or rename) that container to be able to reuse that name."
                ) from None
            os.unlink(link)
            os.symlink(cid, link)
        made: list[str] = []  # anonymous volumes of the image's VOLUMEs, made for this container only
        try:
            if spec.volumes_from or img_cfg.get("Volumes"):
                spec = self._volume_binds(spec, img_cfg, made)
            cdir.mkdir()
            for d in ("rootfs", "upper", "work"):
                (cdir / d).mkdir()
            etc = self._write_etc_files(cdir, hostname, spec.network, spec.host_config)
            network_mode = spec.network if spec.network in NETWORK_MODES else networks[0]["name"]
            labels = dict(img_cfg.get("Labels") or {}) | dict(spec.labels)
            config = build_config(
                args=args, env=env, cwd=spec.workdir or img_cfg.get("WorkingDir") or "/",
                uid=uid, gid=gid, additional_gids=groups, hostname=hostname, spec=spec,
                cgroups_path=f"/{self.cgroup_parent}/{cid}", etc_files=etc, caps=caps,
                annotations={LABEL_ENGINE: "pytest-pods"}, security=security,
                seccomp=seccomp_section, seccomp_filter=seccomp_filter,
            )
            (cdir / "config.json").write_text(json.dumps(config, separators=(",", ":")))
            lower_opt = ":".join(str(p) for p in lowers)
            overlay = f"lowerdir={lower_opt},upperdir={cdir / 'upper'},workdir={cdir / 'work'},redirect_dir=off,metacopy=off"
            if rootless.active():  # overlayfs in a user namespace (Linux 5.11): user.overlay.* xattrs,
                # and redirects neither made nor followed ("off" means follow, which userxattr refuses)
                overlay = overlay.replace("redirect_dir=off", "redirect_dir=nofollow") + ",userxattr"
            if len(overlay) > 4000:
                raise InvalidArgumentError(f"create container: image {image.short_id} has too many layers for overlayfs")
            state: ContainerState = {
                "id": cid, "name": name, "created": now_iso(), "image": image.id,
                "image_name": spec.image, "status": "created", "pid": 0, "exit_code": 0,
                "oom_killed": False, "error": "", "started_at": "0001-01-01T00:00:00Z",
                "finished_at": "0001-01-01T00:00:00Z", "labels": labels,
                "lower_dirs": [str(p) for p in lowers], "overlay": overlay,
                "stop_signal": stop_signal,
                "stop_timeout": spec.stop_timeout if spec.stop_timeout is not None else 10,
                "auto_remove": spec.auto_remove, "init": spec.init, "network": network_mode, "networks": networks, "port_specs": ports,
                "limits": {"memory": spec.memory, "memory_swap": spec.memory_swap,
                           "pids": spec.pids_limit, "cpus": spec.cpus},
                "stdin_open": spec.stdin_open, "restart_count": 0, "hostname": hostname,
                "binds": [f"{b.source}:{b.target}{':ro' if b.readonly else ''}" for b in spec.binds],
                "tmpfs": list(spec.tmpfs), "read_only": spec.read_only, "user": spec.user or img_cfg.get("User") or "",
            }
            if healthcheck is not None:
                state["healthcheck"] = healthcheck
            if spec.cpu_shares:
                state["limits"]["cpu_shares"] = spec.cpu_shares
            if restart_policy is not None:
                state["restart_policy"] = restart_policy
            if log_config is not None:
                state["log_config"] = log_config
            if spec.host_config:
                state["host_config"] = dict(spec.host_config)
            if spec.group_add:
                state["group_add"] = list(spec.group_add)
            if start_error:
                state["start_error"] = start_error
            if spec.links:
                state["links"] = self._check_links(spec.links)
            if spec.extra_hosts:
                state["extra_hosts"] = list(spec.extra_hosts)
            if spec.expose:
                state["exposed"] = [e if "/" in e else f"{e}/tcp" for e in spec.expose]
            if spec.publish_all:
                state["publish_all"] = True
            bare = [e for e in spec.env_list() if "=" not in e] if spec.env_bare_unsets else []
            if bare:
                state["env_bare"] = bare  # Config.Env keeps them as given, as dockerd's does
            if spec.volumes_from:
                state["volumes_from"] = list(spec.volumes_from)
            if dropped:
                state["limits_dropped"] = dropped
                state["labels"] = {**labels, LABEL_LIMITS_DROPPED: ",".join(dropped)}
            write_state(cdir, state)
            self._fill_volumes(cid, spec.binds)
        except BaseException:
            remove_tree(cdir)
            with contextlib.suppress(OSError):
                os.unlink(link)
            if made:
                from pytest_pods.engine.runtime.volumes import Volumes  # lazy: only a failed create with image VOLUMEs

                vols = Volumes(self.store.root)
                for vol in made:
                    with contextlib.suppress(PodsError, OSError):
                        vols.remove(vol, in_use_by=[])
            raise
        events.record(self.store.root, "container", "create", cid, events.container_attrs(state))
        return cid

    def _volume_binds(self, spec: ContainerSpec, img_cfg: dict[str, Any], made: list[str]) -> ContainerSpec:
        """The spec's binds, then ``--volumes-from`` containers' mounts, then an anonymous volume
        for each image ``VOLUME``, each only where nothing earlier covers the path (Docker's
        order; issue 16). The anonymous volumes made are appended to ``made``."""
        from pytest_pods.engine.runtime.volumes import Volumes  # lazy: only containers with volumes

        binds = list(spec.binds)
        covered = {b.target for b in binds} | {os.path.normpath(t.partition(":")[0]) for t in spec.tmpfs}
        for ref in spec.volumes_from:
            name, _, mode = ref.partition(":")
            if mode not in ("", "ro", "rw"):
                raise InvalidArgumentError(f"--volumes-from {ref!r}: invalid mode {mode!r}: use ro or rw")
            other = self.state(self.resolve(name))
            for text in other.get("binds") or []:
                b = Bind.parse(text)
                if b.target not in covered:
                    covered.add(b.target)
                    binds.append(b._replace(readonly=b.readonly if not mode else mode == "ro", nocopy=True))
        vols = Volumes(self.store.root)
        for path in img_cfg.get("Volumes") or {}:
            target = os.path.normpath("/" + str(path).lstrip("/"))
            if target in covered or target == "/":
                continue
            covered.add(target)
            vol = vols.create(anonymous=True)["Name"]
            made.append(vol)
            binds.append(Bind(str(vols.path(vol)), target))
        return spec._replace(binds=binds)

    def _fill_volumes(self, cid: str, binds: Sequence[Bind]) -> None:
        """Copy-up: each empty, never-populated volume mounted without ``nocopy`` gets the image's
        content at its mount point (issue 16). Nothing to do costs a ``stat`` per volume bind."""
        if not binds:
            return
        from pytest_pods.engine.runtime.volumes import Volumes  # lazy: only containers with volumes

        vols = Volumes(self.store.root)
        todo = [(name, b.target) for b in binds if not b.nocopy
                for name in [vols.name_of(b.source)] if name and vols.fillable(name)]
        if not todo:
            return
        with self._root(cid, with_binds=False) as rootfd:  # the image's content, not the empty volumes'
            for name, target in todo:
                try:
                    fd = linux.openat2(rootfd, target.strip("/") or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC,
                                       resolve=linux.RESOLVE_IN_ROOT)
                except (FileNotFoundError, NotADirectoryError):
                    continue  # nothing there in the image (docker makes the mount point empty)
                try:
                    vols.fill(name, fd)
                except OSError as exc:
                    raise PodsError(f"create container: copy the image's {target} into volume {name}: {exc}") from None
                finally:
                    os.close(fd)

    def _plan_network(self, spec: ContainerSpec, image: Image) -> tuple[list[NetworkRef], list[PortRecord]]:
        """The networks to join (resolved now: an unknown one fails the create) and ports to publish."""
        if spec.network in NETWORK_MODES:
            if spec.network_aliases:
                raise InvalidArgumentError("network-scoped aliases are only supported for user-defined networks")
            if spec.ports and spec.network == "none":
                raise InvalidArgumentError("create container: published ports need a bridge network, not --network none")
            return [], []
        # lazy: start latency (the network package is off the CLI's start path; --network none never loads it)
        from pytest_pods.engine.network.networks import DEFAULT_NETWORK
        from pytest_pods.engine.network.ports import (  # lazy: start latency (as above)
            PortBinding,
            check_publishable,
            parse_container_port,
            parse_ports,
        )

        rec = self.networks.get(spec.network)
        if rec["name"] == DEFAULT_NETWORK and spec.network_aliases:
            raise InvalidArgumentError("network-scoped aliases are only supported for user-defined networks")
        ports = parse_ports(spec.ports)
        if spec.publish_all:
            published = {(p.container_port, p.proto) for p in ports}
            for key in (image.run_config.get("ExposedPorts") or {}):
                try:
                    port, proto = parse_container_port(key)
                except InvalidArgumentError:
                    continue  # not a port we can publish (as before: docker would refuse the image's EXPOSE)
                if (port, proto) not in published:
                    ports.append(PortBinding(port, proto))
        check_publishable(ports)
        ref: NetworkRef = {"name": rec["name"], "id": rec["id"], "aliases": list(spec.network_aliases)}
        if spec.network_endpoint:
            self.networks.check_endpoint(rec, spec.network_endpoint)  # a bad fixed address fails the create
            ref["endpoint_config"] = dict(spec.network_endpoint)
        return [ref], [p.to_record() for p in ports]

    @property
    def networks(self) -> Networks:
        """The networks of this root (imported on first use: ``--network none`` never pays for it)."""
        if self._networks is None:
            # lazy: start latency (--network none never loads the network package)
            from pytest_pods.engine.network.networks import Networks

            self._networks = Networks(self.store.root)
        return self._networks

    def _random_name(self) -> str:
        while True:
            r = os.urandom(4)
            name = f"{_ADJ[r[0] % len(_ADJ)]}_{_NOUN[r[1] % len(_NOUN)]}_{r[2:].hex()}"
            if not (self.names / name).exists():
                return name

    def _write_etc_files(self, cdir: Path, hostname: str, network: str,
                         host_config: Mapping[str, Any]) -> dict[str, str]:
        """/etc/hostname, /etc/hosts and /etc/resolv.conf of a new container: the host's name
        servers (not its loopback ones), or as ``--dns``, ``--dns-search`` and ``--dns-option``
        (HostConfig.Dns, DnsSearch, DnsOptions) replace them, as docker's."""
        (cdir / "hostname").write_text(hostname + "\n")
        hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        if network == "host":
            hosts.append(f"127.0.1.1\t{os.uname().nodename}")
        else:
            hosts.append(f"127.0.0.1\t{hostname}")
        (cdir / "hosts").write_text("\n".join(hosts) + "\n")
        try:
            resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            resolv = ""
        if network != "host":  # a loopback name server is the host's own, out of a container's reach
            resolv = "".join(line for line in resolv.splitlines(keepends=True)
                             if line.split()[:2] not in (["nameserver", "::1"],)
                             and not (line.split()[:1] == ["nameserver"] and line.split()[1:2]
                                      and line.split()[1].startswith("127.")))
        resolv = _resolv_conf(resolv, host_config.get("Dns") or [], host_config.get("DnsSearch") or [],
                              host_config.get("DnsOptions") or [])
        (cdir / "resolv.conf").write_text(resolv)
        return {"/etc/hostname": str(cdir / "hostname"), "/etc/hosts": str(cdir / "hosts"),
                "/etc/resolv.conf": str(cdir / "resolv.conf")}

    # -- legacy links ----------------------------------------------------------------------
    def _check_links(self, links: Sequence[str]) -> builtins.list[dict[str, str]]:
        """``--link NAME[:ALIAS]`` (the API's ``/NAME:/SELF/ALIAS`` too): the linked container must exist.

        :raises NotFoundError: no such container, in dockerd's words
        """
        out = []
        for link in links:
            name, _, alias = link.partition(":")
            name, alias = name.strip("/"), alias.rsplit("/", 1)[-1] or name.strip("/")
            try:
                linked = self.state(name)
            except ContainerNotFoundError:
                raise NotFoundError(f"could not get container for {name}: No such container: {name}") from None
            out.append({"name": linked["name"], "alias": alias})
        return out

    def _apply_links(self, cid: str, st: ContainerState) -> None:
        """At start: each linked container's address as Docker's link variables
        (``ALIAS_PORT_5432_TCP=tcp://IP:5432``, ``ALIAS_NAME``, ``ALIAS_ENV_*``) in the process's
        environment and as an /etc/hosts entry (``IP ALIAS ID NAME``).

        :raises ConflictError: a linked container is not running (as dockerd refuses the start)
        """
        cdir = self.dir / cid
        env_names: builtins.list[str] = []
        env: builtins.list[str] = []
        hosts: builtins.list[str] = []
        for link in st.get("links") or []:
            try:
                other = self.state(link["name"])
            except ContainerNotFoundError:
                raise ConflictError(f"Cannot link to a non running container: /{link['name']} AS "
                                    f"/{st['name']}/{link['alias']}") from None
            eps = other.get("endpoints") or {}
            ip = next((e["ip"] for e in eps.values() if e.get("ip")), "")
            if other["status"] != "running" or not ip:
                raise ConflictError(f"Cannot link to a non running container: /{other['name']} AS "
                                    f"/{st['name']}/{link['alias']}")
            prefix = re.sub(r"[^A-Za-z0-9_]", "_", link["alias"]).upper()
            ports = sorted({(int(p["container_port"]), p["proto"]) for p in other.get("port_specs") or []}
                           | set(self._exposed(other)))
            pairs = [(f"{prefix}_NAME", f"/{st['name']}/{link['alias']}")]
            for i, (port, proto) in enumerate(ports):
                if i == 0:
                    pairs.append((f"{prefix}_PORT", f"{proto}://{ip}:{port}"))
                key = f"{prefix}_PORT_{port}_{proto.upper()}"
                pairs += [(key, f"{proto}://{ip}:{port}"), (f"{key}_ADDR", ip), (f"{key}_PORT", str(port)),
                          (f"{key}_PROTO", proto)]
            with contextlib.suppress(OSError, ValueError, KeyError):
                other_env = json.loads((self.dir / other["id"] / "config.json").read_text())["process"]["env"]
                for item in other_env:
                    k, sep, v = item.partition("=")
                    if sep and k not in ("HOME", "HOSTNAME", "PATH"):
                        pairs.append((f"{prefix}_ENV_{k}", v))
            env_names += [k for k, _ in pairs]
            env += [f"{k}={v}" for k, v in pairs]
            names = " ".join(dict.fromkeys([link["alias"], other.get("hostname") or other["id"][:12], other["name"]]))
            hosts.append(f"{names}:{ip}")
        config_path = cdir / "config.json"
        config = json.loads(config_path.read_text())
        old = set(st.get("link_env") or [])
        config["process"]["env"] = [e for e in config["process"]["env"] if e.partition("=")[0] not in old] + env
        config_path.write_text(json.dumps(config, separators=(",", ":")))

        def record(s: ContainerState) -> None:
            prev = set(s.get("link_hosts") or [])
            s["extra_hosts"] = [h for h in s.get("extra_hosts") or [] if h not in prev] + hosts
            s["link_hosts"] = hosts
            s["link_env"] = env_names

        update_state(cdir, record)

    def remove_link(self, ref: str, alias: str) -> None:
        """Drop a legacy link by its alias; its variables and hosts entry go at the next start.

        :raises NotFoundError: no such link, in dockerd's words
        """
        cid = self.resolve(ref)

        def drop(s: ContainerState) -> None:
            links = s.get("links") or []
            if not any(lk["alias"] == alias for lk in links):
                raise NotFoundError(f"Could not find container for entity id /{s['name']}/{alias}")
            s["links"] = [lk for lk in links if lk["alias"] != alias]

        update_state(self.dir / cid, drop)

    def _exposed(self, st: ContainerState) -> builtins.list[tuple[int, str]]:
        """The ports a container's image EXPOSEs."""
        try:
            cfg = self.store.get_image(st["image"]).run_config
        except PodsError:
            return []
        out = []
        for key in [*(cfg.get("ExposedPorts") or {}), *(st.get("exposed") or [])]:
            port, _, proto = str(key).partition("/")
            if port.isdigit():
                out.append((int(port), proto or "tcp"))
        return out

    # -- start / wait ----------------------------------------------------------------------
    def start(self, ref: str, *, attach: tuple[int, int] | None = None, stdin: int | None = None) -> Starting:
        """Start the container; returns once its process runs (or raises ContainerStartError).

        ``attach`` (stdout, stderr fds) also receive its output; ``stdin`` becomes its stdin.
        The returned handle can wait for the exit without polling.
        """
        cid = self.resolve(ref)
        cdir = self.dir / cid
        try:
            prev = read_state(cdir)
        except BrokenStateError as exc:
            raise ConflictError(f"start container {cid[:12]}: it is dead ({exc}): remove it with rm -f") from None
        if prev.get("start_error"):
            raise ContainerStartError(prev["start_error"], 125)
        if prev.get("links") or prev.get("link_env") or prev.get("link_hosts"):
            self._apply_links(cid, prev)  # (none left: what the last start's links set goes)
        if prev.get("status") == "exited":  # its last run's monitor may still be releasing the network
            _wait_process(prev.get("monitor_pid"), prev.get("monitor_start"), time.monotonic() + 10)
        with locked(cdir):
            st = self._refresh(read_state(cdir))
            if st["status"] in ("running", "restarting"):  # restarting: its monitor starts it
                return Starting(self, cid, None)
            if st["status"] == "starting" and self._start_abandoned(cdir, st):
                st["status"] = "created"  # its starter was killed before a monitor ran it
            if st["status"] in ("starting", "removing"):
                raise ConflictError(f"start container {cid[:12]}: it is {st['status']}")
            st["status"] = "starting"
            st["starter"] = lease()  # a start killed half-way is told from one in progress
            st.pop("stop_requested", None)  # a new run: its restart policy counts again,
            st["restart_count"] = 0  # from zero (dockerd's start resets RestartCount)
            write_state(cdir, st)
        status_r, status_w = os.pipe()
        fds = [status_w]
        if attach is not None or stdin is not None:
            out, err = attach if attach is not None else (os.open("/dev/null", os.O_WRONLY), os.open("/dev/null", os.O_WRONLY))
            fds += [out, err, stdin if stdin is not None else os.open("/dev/null", os.O_RDONLY)]
        from pytest_pods.engine.runtime.forkserver import spawn  # lazy: start latency (pods ps, logs never fork)
        from pytest_pods.engine.runtime.monitor import MonitorJob, monitor_main  # lazy: start latency (as above)

        payload: MonitorJob = {
            "id": cid, "dir": str(cdir), "config": str(cdir / "config.json"), "rootfs": str(cdir / "rootfs"),
            "overlay": st["overlay"], "limits": st["limits"], "auto_remove": st["auto_remove"],
            "init": st["init"], "attach": attach is not None, "stdin": stdin is not None,
            "stdin_open": bool(st.get("stdin_open")),
            "name_link": str(self.names / st["name"]), "cgroup_parent": self.cgroup_parent,
            "root": str(self.store.root), "name": st["name"], "hostname": st.get("hostname", cid[:12]),
            "hosts": str(cdir / "hosts"), "networks": st.get("networks", []), "ports": st.get("port_specs", []),
        }
        owner = (st.get("labels") or {}).get(LABEL_OWNER)
        if owner:
            payload["owner"] = owner
        if st["auto_remove"] and st.get("binds"):
            vols = self._volume_names(st["binds"])
            if vols:
                payload["volumes"] = vols  # --rm: its anonymous ones go with it (as rm -v)
        if (st.get("log_config") or {}).get("Type") == "none":
            payload["log_driver"] = "none"
        hc = st.get("healthcheck")
        if hc and hc.get("Test") and hc["Test"][0] in ("CMD", "CMD-SHELL") and len(hc["Test"]) > 1:
            payload["healthcheck"] = dict(hc)  # the monitor runs its probes (engine.runtime.health)
        try:
            spawn(monitor_main, payload, fds, detach=True)
        except BaseException:
            os.close(status_r)
            update_state(cdir, lambda s: s.update({"status": "created"}))
            raise
        finally:
            os.close(status_w)
        handle = Starting(self, cid, status_r)
        msg = handle._next()
        if msg is None:
            handle.close()
            if st["auto_remove"]:
                self._remove_dir(cid, volumes=True)
            else:
                update_state(cdir, lambda s: s.update({"status": "created"}))
            raise ContainerStartError(f"start container {cid[:12]}: the monitor exited before starting it")
        if "error" in msg:
            handle.close()
            if st["auto_remove"]:
                self._remove_dir(cid, volumes=True)
            raise ContainerStartError(msg["error"], int(msg.get("code", 125)))
        handle.pid = int(msg["started"])
        return handle

    def wait(self, ref: str, timeout: float | None = None) -> int:
        """Block until the container is not running; return its exit code (no polling)."""
        cid = self.resolve(ref)
        cdir = self.dir / cid
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                st = read_state(cdir)
            except FileNotFoundError:
                return recorded_exit_code(self.dir, cid)  # removed (--rm, rm -f) while we waited
            if st["status"] not in ("running", "starting"):
                return int(st.get("exit_code", 0))
            if st["status"] == "starting":
                time.sleep(0.005)
                continue
            if (st.get("restart_policy") or {}).get("Name") not in (None, "", "no"):
                # its monitor outlives this run (it may start it again): the run's end is the
                # state's, as dockerd's wait returns at each exit
                if not _wait_process(st.get("pid"), st.get("pid_start"), deadline):
                    raise TimeoutError(f"wait for container {cid[:12]}: still running after {timeout} s")
                while (deadline is None or time.monotonic() < deadline) and (cdir / STATE).exists():
                    with contextlib.suppress(OSError, ValueError):
                        st = read_state(cdir)
                        if st["status"] != "running":
                            return int(st.get("exit_code", 0))
                    time.sleep(0.01)
                continue
            if not _wait_process(st.get("monitor_pid"), st.get("monitor_start"), deadline):
                raise TimeoutError(f"wait for container {cid[:12]}: still running after {timeout} s")
            if not (cdir / "state.json").exists():
                return recorded_exit_code(self.dir, cid)
            st = self._refresh(read_state(cdir))
            if st["status"] != "running":
                return int(st.get("exit_code", 0))

    # -- signals ---------------------------------------------------------------------------
    def _settled(self, cid: str, timeout: float = 10.0) -> ContainerState:
        """The state once a start in progress (maybe in another process) has finished."""
        st = self.state(cid)
        deadline = time.monotonic() + timeout
        while st["status"] == "starting" and time.monotonic() < deadline:
            time.sleep(0.01)
            st = self.state(cid)
        return st

    def kill(self, ref: str, sig: int | str = signal.SIGKILL) -> None:
        """Send ``sig`` to the container's pid 1. SIGKILL returns once the container is dead and
        its exit recorded, as dockerd's kill does (issue 16: an inspect right after showed it
        running); another signal returns once it is sent.

        :raises PodsError: still running 10 s after SIGKILL
        """
        cid = self.resolve(ref)
        st = self._settled(cid)
        if st["status"] == "restarting":  # between two runs: no next one (dockerd's kill)
            self._no_restart(cid, st)
            _wait_process(st.get("monitor_pid"), st.get("monitor_start"), time.monotonic() + 10)
            return
        if st["status"] != "running":
            raise ConflictError(f"Cannot kill container: {cid}: Container {cid} is not running")
        num = parse_signal(sig)
        if num in (signal.SIGKILL, int(st.get("stop_signal", _SIGTERM))):
            self._no_restart(cid, st)  # another signal may end it, and its policy restarts it (as dockerd)
        events.record(self.store.root, "container", "kill", cid, events.container_attrs(st, signal=num))
        if _alive(st["pid"], st.get("pid_start")):
            if num == signal.SIGKILL:
                with contextlib.suppress(Exception):
                    self.cgroup(cid).kill(signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(st["pid"], num)
            if num == signal.SIGKILL and st.get("paused"):
                with contextlib.suppress(Exception):
                    self.cgroup(cid).thaw()  # killed where it was frozen, as dockerd resumes it
        if num == signal.SIGKILL:
            try:
                self.wait(cid, timeout=10)
            except TimeoutError:
                raise PodsError(f"kill container {cid[:12]}: still running 10 s after SIGKILL") from None

    def stop(self, ref: str, timeout: float | None = None, *, stop_signal: int | None = None) -> None:
        """The stop signal, ``timeout`` seconds of grace (default the container's), then SIGKILL."""
        cid = self.resolve(ref)
        st = self._settled(cid)
        if st["status"] == "restarting":  # between two runs: it stays exited (once its monitor has let go)
            self._no_restart(cid, st)
            _wait_process(st.get("monitor_pid"), st.get("monitor_start"), time.monotonic() + 10)
            return
        if st["status"] != "running":
            return
        self._no_restart(cid, st)
        grace = st.get("stop_timeout", 10) if timeout is None else timeout
        sig = stop_signal if stop_signal is not None else int(st.get("stop_signal", _SIGTERM))
        events.record(self.store.root, "container", "kill", cid, events.container_attrs(st, signal=sig))
        if _alive(st["pid"], st.get("pid_start")):
            with contextlib.suppress(ProcessLookupError):
                os.kill(st["pid"], sig)
        deadline = time.monotonic() + max(grace, 0)
        if _wait_process(st.get("monitor_pid"), st.get("monitor_start"), deadline):
            events.record(self.store.root, "container", "stop", cid, events.container_attrs(st))
            return
        with contextlib.suppress(Exception):
            self.cgroup(cid).kill(signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(st["pid"], signal.SIGKILL)
        if st.get("paused"):
            with contextlib.suppress(Exception):
                self.cgroup(cid).thaw()
        if not _wait_process(st.get("monitor_pid"), st.get("monitor_start"), time.monotonic() + 10):
            raise PodsError(f"stop container {cid[:12]}: still running 10 s after SIGKILL")
        events.record(self.store.root, "container", "stop", cid, events.container_attrs(st))

    def _no_restart(self, cid: str, st: ContainerState) -> None:
        """A stop or kill through the engine: its restart policy does not start it again (as
        dockerd's "manually stopped"); only for containers that have one."""
        if (st.get("restart_policy") or {}).get("Name") not in (None, "", "no"):
            update_state(self.dir / cid, lambda s: s.update({"stop_requested": True}))

    # -- pause, rename, update, changes ----------------------------------------------------
    def pause(self, ref: str) -> None:
        """Freeze every process of the container (cgroup freezer), as ``docker pause``.

        :raises ConflictError: not running, or paused already (dockerd's words)
        """
        cid = self.resolve(ref)
        cdir = self.dir / cid
        with locked(cdir):
            st = self._refresh(read_state(cdir))
            if st["status"] != "running":
                raise ConflictError(f"Container {cid} is not running")
            if st.get("paused"):
                raise ConflictError(f"Container {cid} is already paused")
            cg = self.cgroup(cid)
            if not cg.paths:
                raise PodsError(f"Cannot pause container {cid}: this engine has no cgroup freezer here "
                                "(rootless without a delegated cgroup)")
            try:
                cg.freeze()
            except PodsError as exc:
                raise PodsError(f"Cannot pause container {cid}: {exc}") from None
            st["paused"] = True
            write_state(cdir, st)
        events.record(self.store.root, "container", "pause", cid, events.container_attrs(st))

    def unpause(self, ref: str) -> None:
        """Thaw a paused container.

        :raises ConflictError: not paused (dockerd's words)
        """
        cid = self.resolve(ref)
        cdir = self.dir / cid
        with locked(cdir):
            st = self._refresh(read_state(cdir))
            if st["status"] != "running" or not st.get("paused"):
                raise PodsError(f"Container {cid} is not paused")  # dockerd answers 500
            self.cgroup(cid).thaw()
            st["paused"] = False
            write_state(cdir, st)
        events.record(self.store.root, "container", "unpause", cid, events.container_attrs(st))

    def rename(self, ref: str, new_name: str) -> str:
        """Give the container the name ``new_name``; returns its old name.

        :raises InvalidArgumentError: an empty or invalid name, or its own
        :raises ConflictError: another container has that name
        """
        cid = self.resolve(ref)
        cdir = self.dir / cid
        name = new_name.removeprefix("/")
        if not name:
            raise InvalidArgumentError("Neither old nor new names may be empty")
        if not NAME_RE.match(name) or len(name) > 200:
            raise InvalidArgumentError(f"Error when allocating new name: Invalid container name (/{name}), only "
                                       "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        with locked(cdir):
            st = read_state(cdir)
            old = st["name"]
            if old == name:
                raise InvalidArgumentError("Renaming a container with the same name as its current name")
            link = self.names / name
            try:
                os.symlink(cid, link)
            except FileExistsError:
                other = os.readlink(link)
                if (self.dir / other / STATE).exists():
                    raise ConflictError(
                        f'Error when allocating new name: Conflict. The container name "/{name}" is already in use '
                        f'by container "{other}". You have to remove (or rename) that container to be able to reuse '
                        "that name.") from None
                os.unlink(link)
                os.symlink(cid, link)
            st["name"] = name
            write_state(cdir, st)
            with contextlib.suppress(OSError):
                if os.readlink(self.names / old) == cid:
                    os.unlink(self.names / old)
        events.record(self.store.root, "container", "rename", cid, events.container_attrs(st, oldName="/" + old))
        return old

    def update(self, ref: str, *, memory: int | None = None, memory_swap: int | None = None,
               pids: int | None = None, cpus: float | None = None, cpu_shares: int | None = None,
               restart_policy: dict[str, Any] | None = None) -> None:
        """Change a container's limits (now, if it runs: its cgroup) and its restart policy, as
        ``docker update``; what is None stays as it is.

        :raises InvalidArgumentError: a limit out of range, or a restart policy for an --rm one
        """
        cid = self.resolve(ref)
        cdir = self.dir / cid
        if memory is not None and 0 < memory < 6 * 1024 * 1024:
            raise InvalidArgumentError("Minimum memory limit allowed is 6MB")
        asked = [what for what, value in (("memory", memory or memory_swap), ("pids", pids),
                                          ("cpu", cpus or cpu_shares)) if value]
        if asked and rootless.active() and rootless.delegated_cgroup() is None:
            # no cgroup to write them to: refused, or (PODS_IGNORE_LIMITS=1) not recorded either,
            # never shown in inspect as if applied
            refusal = rootless.limits_refusal(asked[0])
            if refusal is not None:
                raise LimitsUnavailableError(refusal)
            memory = memory_swap = pids = cpus = cpu_shares = None
        if cpus is not None and not 0 <= cpus <= (os.cpu_count() or 1):
            raise InvalidArgumentError(f"Range of CPUs is from 0.01 to {os.cpu_count()}.00, as there are only "
                                       f"{os.cpu_count()} CPUs available")
        with locked(cdir):
            st = read_state(cdir)
            if restart_policy is not None and restart_policy.get("Name") not in (None, "", "no") and st.get("auto_remove"):
                raise ConflictError(f"Cannot update container {cid}: Restart policy cannot be updated because "
                                    "AutoRemove is enabled for the container")
            limits: dict[str, Any] = dict(st["limits"])
            for key, value in (("memory", memory), ("memory_swap", memory_swap), ("pids", pids), ("cpus", cpus),
                               ("cpu_shares", cpu_shares)):
                if value is not None:
                    limits[key] = value or None
            mem, swap = limits.get("memory"), limits.get("memory_swap")
            if mem and swap and swap not in (-1, 0) and swap < mem:
                raise InvalidArgumentError("Minimum memoryswap limit should be larger than memory limit, see usage")
            if self._refresh(st)["status"] == "running" and any(
                    v is not None for v in (memory, memory_swap, pids, cpus, cpu_shares)):
                from pytest_pods.engine.runtime import cgroups  # lazy: only an update

                new = cgroups.Limits(memory=mem, memory_swap=swap, pids=limits.get("pids"),
                                     cpus=limits.get("cpus"), cpu_shares=limits.get("cpu_shares"))
                new.check()
                cgroups.open_cgroup(cid, new, parent=self.cgroup_parent).set_limits(new)
            st["limits"] = limits  # type: ignore[typeddict-item]
            if restart_policy is not None:
                st["restart_policy"] = restart_policy
            write_state(cdir, st)
        events.record(self.store.root, "container", "update", cid, events.container_attrs(st))

    def changes(self, ref: str) -> builtins.list[tuple[str, int]]:
        """What the container changed in its root, as ``docker diff``: (path, kind), kind 0 a
        modified path, 1 an added one, 2 a deleted one (an overlay whiteout); a parent directory
        of an added or deleted path counts as modified."""
        cid = self.resolve(ref)
        st = self.state(cid)
        upper = self.dir / cid / "upper"
        lowers = [Path(d) for d in st.get("lower_dirs") or []]
        from pytest_pods.engine.runtime.commit import ENGINE_MOUNT_POINTS  # lazy: only docker diff

        mount_points = {*ENGINE_MOUNT_POINTS, *(b.split(":")[1] for b in st.get("binds") or [] if ":" in b),
                        *(t.split(":")[0] for t in st.get("tmpfs") or [])}

        mount_parents = {os.path.dirname(m) for m in mount_points if not os.path.lexists(upper / m.lstrip("/"))
                         or self._engine_made(upper / m.lstrip("/"), lowers, m)}

        def own_news(rel: str, full: str) -> bool:
            """Whether the directory holds more than the engine's mount points."""
            with contextlib.suppress(OSError):
                for name in os.listdir(upper / rel):
                    child = f"{full}/{name}"
                    if child not in mount_points or not self._engine_made(upper / rel / name, lowers, child):
                        return True
            return False

        def in_lower(rel: str) -> os.stat_result | None:
            for d in lowers:
                with contextlib.suppress(OSError):
                    return os.lstat(d / rel)
            return None

        out: builtins.list[tuple[str, int]] = []
        seen_dirs: set[str] = set()

        def note_parent(path: str) -> None:
            parent = os.path.dirname(path)
            if parent != "/" and parent not in seen_dirs:
                out.append((parent, 0))
                seen_dirs.add(parent)

        def walk(rel: str) -> None:
            try:
                entries = sorted(os.scandir(upper / rel) if rel else os.scandir(upper), key=lambda e: e.name)
            except OSError:
                return
            for e in entries:
                path = f"{rel}/{e.name}" if rel else e.name
                full = "/" + path
                info = e.stat(follow_symlinks=False)
                lower = in_lower(path)
                if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
                    out.append((full, 2))  # a whiteout: deleted
                    note_parent(full)
                    continue
                is_dir = stat.S_ISDIR(info.st_mode)
                if lower is None:
                    if full in mount_points and (is_dir or info.st_size == 0):
                        if is_dir:
                            walk(path)  # made only to mount on: what is under it may be the user's
                        continue
                    out.append((full, 1))
                    seen_dirs.add(full)
                    note_parent(full)
                elif full not in seen_dirs and not (
                        is_dir and stat.S_ISDIR(lower.st_mode) and lower.st_mode == info.st_mode
                        and (lower.st_uid, lower.st_gid) == (info.st_uid, info.st_gid)
                        and (lower.st_mtime_ns == info.st_mtime_ns
                             or (full in mount_parents and not own_news(path, full)))):
                    # a directory only copied up (its times as they were) is no change of its
                    # own, nor one whose only news is what the engine mounts in it
                    out.append((full, 0))
                    seen_dirs.add(full)
                if is_dir:
                    walk(path)

        walk("")
        return out

    def size_rw(self, ref: str) -> int:
        """The bytes of regular files in the container's upper dir (hard links counted once)."""
        seen: set[tuple[int, int]] = set()
        total = 0
        for dirpath, _, files in os.walk(self.dir / self.resolve(ref) / "upper"):
            for f in files:
                with contextlib.suppress(OSError):
                    st = os.lstat(os.path.join(dirpath, f))
                    if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                        seen.add((st.st_dev, st.st_ino))
                        total += st.st_size
        return total

    @staticmethod
    def _engine_made(path: Path, lowers: Sequence[Path], target: str) -> bool:
        """An empty file or directory in the upper dir that the engine made to mount on."""
        if any(os.path.lexists(d / target.lstrip("/")) for d in lowers):
            return False
        try:
            st = path.lstat()
        except OSError:
            return False
        return (stat.S_ISREG(st.st_mode) and st.st_size == 0) or (stat.S_ISDIR(st.st_mode) and not any(path.iterdir()))

    # -- networks --------------------------------------------------------------------------
    def connect(self, ref: str, network: str, aliases: builtins.list[str] | None = None,
                endpoint_config: Mapping[str, Any] | None = None) -> None:
        """Join a network: now, if the container runs; at its next start otherwise.
        ``endpoint_config``: the Engine API's ``EndpointSettings`` (``IPAMConfig``'s fixed
        addresses, ``Links``, ``DriverOpts``), checked now and kept for each start."""
        cid = self.resolve(ref)
        cdir = self.dir / cid
        st = self.state(cid)
        if st.get("network") in NETWORK_MODES:
            raise ConflictError(f"container {st['name']} uses --network {st['network']}: it cannot join a network")
        rec = self.networks.get(network)
        if rec["name"] in (st.get("endpoints") or {}) or any(n["id"] == rec["id"] for n in st.get("networks", [])):
            raise ConflictError(f"endpoint with name {st['name']} already exists in network {rec['name']}")
        entry: NetworkRef = {"name": rec["name"], "id": rec["id"], "aliases": list(aliases or [])}
        if endpoint_config:
            self.networks.check_endpoint(rec, endpoint_config)
            entry["endpoint_config"] = dict(endpoint_config)
        if st["status"] == "running":
            eps = st.get("endpoints") or {}
            ep = self.networks.attach(rec["name"], cid=cid, name=st["name"], aliases=entry["aliases"],
                                      pid=st["pid"], pid_start=st.get("pid_start"),
                                      hosts_path=str(cdir / "hosts"), hostname=st.get("hostname", cid[:12]),
                                      ifname=_free_ifname(eps), default_route=not eps,
                                      endpoint_config=endpoint_config)
        else:
            ep = None

        def join(s: ContainerState) -> None:
            if ep is not None:
                s.setdefault("endpoints", {})[rec["name"]] = ep
            s.setdefault("networks", []).append(entry)

        update_state(cdir, join)

    def disconnect(self, ref: str, network: str) -> None:
        cid = self.resolve(ref)
        cdir = self.dir / cid
        st = self.state(cid)
        rec = self.networks.get(network)
        joined = rec["name"] in (st.get("endpoints") or {}) or any(n["id"] == rec["id"] for n in st.get("networks", []))
        if not joined:
            raise NotFoundError(f"container {st['name']} is not connected to network {rec['name']}")
        eps = dict(st.get("endpoints") or {})
        if st["status"] == "running" and rec["name"] in eps:
            self.networks.detach(rec["name"], cid)
            eps.pop(rec["name"])
            self.networks.move_default_route(st["pid"], eps)  # never through an internal network

        def drop(s: ContainerState) -> None:
            (s.get("endpoints") or {}).pop(rec["name"], None)
            s["networks"] = [n for n in s.get("networks", []) if n["id"] != rec["id"]]

        update_state(cdir, drop)

    def port(self, ref: str, container_port: int, proto: str = "tcp") -> tuple[str, int]:
        """The (host address, host port) a container port is published on."""
        st = self.state(ref)
        for p in st.get("ports") or []:
            if p["container_port"] == int(container_port) and p["proto"] == proto:
                host = "127.0.0.1" if p["host_ip"] == "0.0.0.0" else p["host_ip"]
                return host, int(p["host_port"])
        if st["status"] != "running":
            raise ConflictError(f"container {st['name']} is not running: its ports are assigned at start")
        raise NotFoundError(f"No public port '{container_port}/{proto}' published for {st['name']}")

    # -- exec ------------------------------------------------------------------------------
    def exec(
        self,
        ref: str,
        cmd: builtins.list[str],
        *,
        env: builtins.list[str] | None = None,
        user: str | None = None,
        workdir: str | None = None,
        stdio: tuple[int, int, int] | None = None,
        tty: bool = False,
        privileged: bool = False,
    ) -> ExecResult:
        """Run ``cmd`` in the running container. With ``stdio`` the process uses those fds and
        output is not captured; otherwise stdout and stderr are collected and returned.
        ``privileged``: every capability for this process (``docker exec --privileged``); the
        container's namespaces, seccomp filter and devices stay as they are, as in Docker."""
        cid = self.resolve(ref)
        st = self.state(cid)
        if st["status"] != "running":
            raise ConflictError(f"Container {cid} is not running")
        if st.get("paused"):
            raise ConflictError(f"Container {ref} is paused, unpause the container before exec")
        if not cmd:
            raise InvalidArgumentError("exec: no command given")
        config = json.loads((self.dir / cid / "config.json").read_text())
        proc = dict(config["process"])
        proc["args"] = list(cmd)
        proc["env"] = merge_env(proc.get("env", []), env or [])
        proc["terminal"] = tty
        if workdir:
            proc["cwd"] = workdir
        if user is not None:
            uid, gid, groups, _ = lookup_user(user, [Path(f"/proc/{st['pid']}/root")])
            proc["user"] = {"uid": uid, "gid": gid, "additionalGids": groups}
        if privileged:
            caps = own_capabilities()
            proc["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
        filter_path = (config.get("annotations") or {}).get(SECCOMP_FILTER_KEY)
        if filter_path:  # an exec runs under the container's seccomp filter, as in runc
            if not os.path.exists(filter_path):
                from pytest_pods.engine.runtime import seccomp  # lazy: only when the cache was removed

                seccomp.ensure_compiled(config["linux"]["seccomp"], Path(filter_path).parent)
            proc[SECCOMP_FILTER_KEY] = filter_path
        from pytest_pods.engine.runtime.forkserver import spawn  # lazy: start latency (as in start)
        from pytest_pods.engine.runtime.monitor import ExecJob, exec_main  # lazy: start latency (as in start)

        status_r, status_w = os.pipe()
        captured: builtins.list[tuple[int, int]] = []
        if stdio is None:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            null = os.open("/dev/null", os.O_RDONLY)
            fds = [status_w, null, out_w, err_w]
            captured = [(out_r, out_w), (err_r, err_w)]
        else:
            fds = [status_w, *stdio]
        exec_id = os.urandom(32).hex()
        attrs = events.container_attrs(st, execID=exec_id)
        shown = " ".join(cmd)
        events.record(self.store.root, "container", f"exec_create: {shown}", cid, attrs)
        events.record(self.store.root, "container", f"exec_start: {shown}", cid, attrs)
        try:
            job: ExecJob = {"id": cid, "pid": st["pid"], "process": proc, "cgroup_parent": self.cgroup_parent}
            spawn(exec_main, job, fds, detach=False)
        finally:
            os.close(status_w)
            if stdio is None:
                for fd in fds[1:]:
                    os.close(fd)
        outputs = [b"", b""]
        if captured:
            outputs = collect_output([r for r, _ in captured])
        with os.fdopen(status_r, "rb") as f:
            line = f.readline()
        if not line:
            raise PodsError(f"exec in container {cid[:12]}: the exec process ended without a status")
        msg = json.loads(line)
        code = int(msg.get("code", 126)) if "error" in msg else int(msg["exited"])
        events.record(self.store.root, "container", "exec_die", cid, {**attrs, "exitCode": str(code)})
        if "error" in msg:
            raise ContainerStartError(msg["error"], code)
        return ExecResult(code, outputs[0], outputs[1])

    # -- copy ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _root(self, ref: str, *, write: bool = False, with_binds: bool = True) -> Iterator[int]:
        """An fd on the container's root directory, as ``docker cp`` sees it: a running
        container's mount namespace's ``/``; a created or stopped one's overlay, mounted for the
        copy (issue 16: testcontainers copies files in before the start). That mount is made
        under the container's lock, so a start waits for the copy and finds its files in the
        upper dir, and it is detached as soon as its root is open: no mount outlives the fd (a
        copy killed in between leaves it in ``tmp/``, where the reaper unmounts it)."""
        cid = self.resolve(ref)
        cdir = self.dir / cid
        if self.state(cid)["status"] != "running":
            with locked(cdir):
                st = self._refresh(read_state(cdir))
                if st["status"] in ("created", "exited"):
                    fd, view = self._mount_root(st, write, with_binds)
                    try:
                        yield fd
                    finally:
                        os.close(fd)
                        if view is not None:
                            with contextlib.suppress(OSError):
                                linux.umount(view, linux.MNT_DETACH)  # the binds under it go too
                            os.rmdir(view)
                    return
        st = self.state(cid)
        if st["status"] != "running":
            raise ConflictError(f"copy files of container {st['name']}: it is {st['status']}")
        fd = os.open(f"/proc/{st['pid']}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if not _alive(st["pid"], st.get("pid_start")):
                raise ConflictError(f"copy files of container {st['name']}: it is not running")
            yield fd
        finally:
            os.close(fd)

    def _mount_root(self, st: ContainerState, write: bool, with_binds: bool = True) -> tuple[int, str | None]:
        """Mount the container's overlay (its own options: upper dir, rootless ``userxattr``)
        at a temp point and open its root. Without volumes or binds the mount is detached at
        once (the fd is the only way in) and the view is None; with them, each is mounted at its
        target as a start would (docker cp reaches into a stopped container's volumes), and the
        view stays mounted until the caller detaches it (a killed copy's: the reaper's).
        ``with_binds=False``: the image's own tree only (a volume's copy-up reads what it hides)."""
        import tempfile  # lazy: start latency

        binds = [b.split(":") for b in st.get("binds") or [] if ":" in b] if with_binds else []
        where = tempfile.mkdtemp(dir=self.store.tmp, prefix=f"view-{lease()}-")
        try:
            try:  # rw with binds: their mount points are made as a start makes them
                linux.mount("overlay", where, "overlay", 0 if write or binds else linux.MS_RDONLY, st["overlay"])
            except OSError as exc:
                raise PodsError(f"copy files of container {st['name']}: mount its root: {exc.strerror}") from None
            fd = os.open(where, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except BaseException:
            os.rmdir(where)
            raise
        if not binds:
            linux.umount(where, linux.MNT_DETACH)
            os.rmdir(where)
            return fd, None
        try:
            for source, target, *mode in sorted(binds, key=lambda b: b[1].rstrip("/").count("/")):
                self._bind_into_view(fd, source, target, readonly="ro" in mode)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                linux.umount(where, linux.MNT_DETACH)
            os.rmdir(where)
            raise
        return fd, where

    @staticmethod
    def _bind_into_view(root_fd: int, source: str, target: str, *, readonly: bool) -> None:
        """Bind ``source`` at ``target`` under ``root_fd``: resolved in that root (a symlink in the
        image cannot lead the mount out of it), made when missing, read-only as the container has it."""
        from pytest_pods.engine.runtime.nsinit import locked_flags, open_in_root  # lazy: start latency

        if not os.path.exists(source):
            return  # a bind whose host path went: the start would refuse it; a copy sees the image
        is_file = not os.path.isdir(source)
        try:
            point = open_in_root(root_fd, target, create_dir=not is_file, create_file=is_file)
        except OSError as exc:
            raise PodsError(f"copy files: mount {source} at {target}: {exc.strerror}") from None
        try:
            linux.mount(source, f"/proc/self/fd/{point}", None, linux.MS_BIND | linux.MS_REC)
        finally:
            os.close(point)
        if readonly:
            mounted = open_in_root(root_fd, target)  # the fd above points below the new mount
            try:
                linux.mount(None, f"/proc/self/fd/{mounted}", None,
                            linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | locked_flags(mounted))
            except OSError as exc:
                raise PodsError(f"copy files: mount {source} at {target} read-only: {exc.strerror}") from None
            finally:
                os.close(mounted)

    def path_stat(self, ref: str, path: str) -> os.stat_result | None:
        """lstat of ``path`` inside the container, None if it does not exist."""
        from pytest_pods.engine.runtime.copying import resolve  # lazy: start latency (tarfile)

        with self._root(ref) as rootfd:
            try:
                pfd, _name, st = resolve(rootfd, path)
            except NotFoundError:
                return None
            os.close(pfd)
            if st is not None and stat.S_ISLNK(st.st_mode):
                with contextlib.suppress(OSError):  # a link to a directory counts as one
                    fd = linux.openat2(rootfd, path.strip("/"), os.O_PATH, resolve=linux.RESOLVE_IN_ROOT)
                    st = os.fstat(fd)
                    os.close(fd)
            return st

    def get_archive(self, ref: str, path: str, out: Any, arcname: str | None = None) -> None:
        """Write ``path`` in the container to ``out`` as a tar (``docker cp`` out)."""
        from pytest_pods.engine.runtime.copying import write_tar  # lazy: start latency (tarfile)

        with self._root(ref) as rootfd:
            write_tar(rootfd, path, out, arcname)

    def export(self, ref: str, out: Any) -> None:
        """Write the container's root file system to ``out`` as a tar (``docker export``)."""
        from pytest_pods.engine.runtime.copying import write_root_tar  # lazy: start latency (tarfile)

        with self._root(ref) as rootfd:
            write_root_tar(rootfd, out)

    def put_archive(self, ref: str, path: str, src: Any) -> None:
        """Unpack the tar ``src`` into the directory ``path`` of the container (a created one's
        files are there when it starts)."""
        from pytest_pods.engine.runtime.copying import extract_tar  # lazy: start latency (tarfile)

        with self._root(ref, write=True) as rootfd:
            extract_tar(rootfd, path, src)

    # -- logs ------------------------------------------------------------------------------
    def logs(self, ref: str, *, follow: bool = False, tail: int | None = None,
             since: float | None = None, until: float | None = None,
             partial: bool = False) -> Iterator[tuple[str, str, bytes]]:
        """(stream, time, line) in order; with ``follow``, until the container stops or the
        monotonic deadline ``until`` passes. Following waits on inotify for new lines and on a
        pidfd for the exit, so neither a new line nor the end is noticed late. With ``partial``
        (an attach), the start of a line comes as soon as it was written, not with its end."""
        cid = self.resolve(ref)
        cdir = self.dir / cid
        if (self.state(cid).get("log_config") or {}).get("Type") == "none":
            raise LogsUnsupportedError("configured logging driver does not support reading")
        path = cdir / "container.log"
        path.touch(exist_ok=True)
        watch, wd = linux.watch(path) if follow else (-1, -1)
        exited = _pidfd(self.state(cid)) if follow else None
        try:
            with open(path, "rb") as f:
                lines = f.readlines()
                if lines and not lines[-1].endswith(b"\n"):
                    f.seek(-len(lines.pop()), os.SEEK_CUR)
                joined = _LogLines(partial)
                records = [r for raw in lines for r in joined.add(raw)]
                if tail is not None and tail >= 0:
                    records = records[-tail:] if tail else []
                yield from records
                if not follow:
                    return
                pending = b""
                while True:
                    chunk = f.read()
                    if chunk:
                        pending += chunk
                        *complete, pending = pending.split(b"\n")
                        for raw in complete:
                            yield from joined.add(raw)
                        continue
                    try:
                        st = self._refresh(read_state(cdir))
                    except FileNotFoundError:
                        return
                    if st["status"] not in ("running", "starting"):
                        rest = f.read()
                        for raw in (pending + rest).split(b"\n"):
                            yield from joined.add(raw)
                        return
                    remaining = None if until is None else until - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return
                    timeout: float | None
                    if exited is None:
                        wait_on, timeout = [watch], 0.5
                    elif select.select([exited], [], [], 0)[0]:
                        wait_on, timeout = [watch], 0.01  # gone: the monitor is finishing the log
                    else:
                        wait_on, timeout = [watch, exited], remaining
                    if remaining is not None:
                        timeout = remaining if timeout is None else min(timeout, remaining)
                    select.select(wait_on, [], [], timeout)
                    linux.drain(watch)
        finally:
            if watch >= 0:
                linux.unwatch(watch, wd)
            if exited is not None:
                os.close(exited)

    # -- remove ----------------------------------------------------------------------------
    def remove(self, ref: str, *, force: bool = False) -> str:
        cid = self.resolve(ref)
        if force and self._finish_removal(cid):
            return cid
        st = self.state(cid)
        if st["status"] == "dead":  # not running by definition: what runs of it is an orphan to end
            self._remove_dead(cid)
            return cid
        deadline = time.monotonic() + 10
        while force and st["status"] == "starting" and time.monotonic() < deadline:
            time.sleep(0.01)  # a start in another process: let it finish, then stop what it made
            st = self.state(cid)
        if st["status"] == "restarting":
            if not force:
                raise ConflictError(
                    f"cannot remove container {cid[:12]}: container is restarting: stop the container before removing or force remove"
                )
            self.stop(cid)  # its monitor leaves it exited
            _wait_process(st.get("monitor_pid"), st.get("monitor_start"), time.monotonic() + 10)
            st = self.state(cid)
        if st["status"] in ("running", "starting"):
            if not force:
                raise ConflictError(
                    f"cannot remove container {cid[:12]}: container is running: stop the container before removing or force remove"
                )
            if self._hand_removal_to_monitor(cid):
                return cid  # its monitor records the destroy
            self.stop(cid, timeout=0)
        self._remove_dir(cid)
        events.record(self.store.root, "container", "destroy", cid, events.container_attrs(st))
        return cid

    def _hand_removal_to_monitor(self, cid: str) -> bool:
        """``rm -f`` of a running container: mark it for removal, free its name, kill it; its
        monitor releases the cgroup, the network, the host ports and the directory as it ends (as
        for ``--rm``), and this returns once it has (see :meth:`_kill_for_removal`). False when
        there is no live monitor to hand it to (the caller removes it itself)."""
        cdir = self.dir / cid
        with locked(cdir):
            st = read_state(cdir)
            if st.get("status") != "running" or not _alive(st.get("monitor_pid"), st.get("monitor_start")):
                return False
            st["remove_requested"] = True
            st["status"] = "removing"
            write_state(cdir, st)
        link = self.names / st["name"]
        with contextlib.suppress(OSError):
            if os.readlink(link) == cid:
                os.unlink(link)  # the name is free at once, as after docker rm -f
        events.record(self.store.root, "container", "kill", cid, events.container_attrs(st, signal=signal.SIGKILL.value))
        self._kill_for_removal(cid, st)
        return True

    def _finish_removal(self, cid: str) -> bool:
        """``rm -f`` by ID of a container another ``rm -f`` marked ``removing`` (in progress, or
        killed before it killed the container): finish it. False when it is not so marked."""
        try:
            st = read_state(self.dir / cid)
        except (OSError, ValueError):
            return False
        if st.get("status") != "removing":
            return False
        if _alive(st.get("monitor_pid"), st.get("monitor_start")):
            self._kill_for_removal(cid, st)
        else:
            self._remove_dir(cid)
        return True

    def _kill_for_removal(self, cid: str, st: ContainerState) -> None:
        """Kill a container marked ``removing`` and wait for its processes to end, then for its
        monitor, which releases the rest. Also what finishes the job when the ``rm -f`` that marked
        it was killed before this step (reap, or the next ``rm -f`` by ID): killing twice is harmless.

        The monitor holds the sockets that reserve the container's host ports (``ports.reserve``;
        rootless, its forwarder holds them and ends with it) and deletes the DNAT rules: returning
        before it ended left the port taken for ~10-20 ms after ``rm -f``, so the next test's
        container on the same fixed host port failed to bind it (issue 15: function scope means
        function scope). Waiting for it costs those milliseconds here instead."""
        with contextlib.suppress(Exception):
            self.cgroup(cid).kill(signal.SIGKILL)
        pid, start = st.get("pid"), st.get("pid_start")
        if pid and _alive(pid, start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not _wait_process(pid, start, time.monotonic() + 10):
            raise PodsError(f"remove container {cid[:12]}: still running 10 s after SIGKILL")
        if st.get("endpoints"):  # its veths go now, not when the kernel frees its netns (issue 14)
            self.networks.release_links(st["endpoints"])
        monitor, monitor_start = st.get("monitor_pid"), st.get("monitor_start")
        if not _wait_process(monitor, monitor_start, time.monotonic() + 10):
            raise PodsError(f"remove container {cid[:12]}: its monitor (pid {monitor}) still releases the "
                            "container 10 s after its end: its host ports may still be taken")

    def _volume_names(self, binds: Sequence[str]) -> builtins.list[str]:
        """The volumes (``ROOT/volumes/<name>/_data``) among a container's binds: string work only."""
        prefix = f"{self.store.root / 'volumes'}/"
        out = []
        for text in binds:
            src = text.split(":")[0]
            name = src.removeprefix(prefix).removesuffix("/_data")
            if src.startswith(prefix) and src.endswith("/_data") and name and "/" not in name:
                out.append(name)
        return out

    def _remove_dir(self, cid: str, *, volumes: bool = False) -> None:
        """Remove the container's directory; ``volumes`` (``--rm``): its anonymous volumes too."""
        from pytest_pods.engine.runtime.monitor import remove_container_dir  # lazy: start latency (as in start)

        cdir = self.dir / cid
        binds: builtins.list[str] = []
        try:
            st = read_state(cdir)
            name = st["name"]
            binds = st.get("binds") or []
        except (OSError, ValueError, KeyError):
            name = None
        with contextlib.suppress(Exception):
            self.cgroup(cid).destroy()
        remove_container_dir(cdir, str(self.names / name) if name else None)
        vols = self._volume_names(binds) if volumes else []
        if vols:
            from pytest_pods.engine.runtime.volumes import remove_anonymous  # lazy: only containers with volumes

            remove_anonymous(self.store.root, vols, leaving=cid)

    def _remove_dead(self, cid: str) -> None:
        """Remove a container whose state cannot be read, as completely as can be found without
        it: the processes of its cgroup and their monitor, its network endpoints and rules (by its
        ID), its cgroup, its name links and its directory."""
        cdir = self.dir / cid
        cg = self.cgroup(cid)
        procs: builtins.list[int] = []
        with contextlib.suppress(Exception):
            procs = builtins.list(cg.procs())
        if not procs and (self.store.root / "networks").is_dir():
            # no cgroup (rootless): its network endpoints name its pid 1, whose end ends the rest
            with contextlib.suppress(Exception):
                for rec in self.networks.records():
                    for ep in self.networks.endpoints(rec):
                        if ep.get("cid") == cid and _alive(ep.get("pid"), ep.get("pid_start")):
                            procs.append(int(ep["pid"]))
        # the monitor is the parent of the container's pid 1: not in the cgroup, not init
        monitors = {ppid for ppid in (_parent_pid(p) for p in procs) if ppid and ppid not in procs
                    and ppid not in (1, os.getpid())}
        starts = {m: linux.process_start_time(m) for m in monitors}
        with contextlib.suppress(Exception):
            cg.kill(signal.SIGKILL)
        for p in procs:
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)
        deadline = time.monotonic() + 5
        for m, start in starts.items():
            if not _wait_process(m, start, deadline) and _alive(m, start):
                with contextlib.suppress(OSError):
                    os.kill(m, signal.SIGKILL)  # a monitor that did not end with its container
                _wait_process(m, start, time.monotonic() + 2)
        if (self.store.root / "networks").is_dir():
            with contextlib.suppress(Exception):
                running = {i for i in self._ids() if i != cid and self._status_of(i) in ("running", "restarting", "starting", "dead")}
                self.networks.reap(running)  # its endpoints, leases and rules, found by its ID
        with contextlib.suppress(Exception):
            cg.destroy()
        from pytest_pods.engine.runtime.monitor import remove_container_dir  # lazy: start latency (as in start)

        with contextlib.suppress(OSError):
            for link in self.names.iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(link) == cid:
                        link.unlink()
        remove_container_dir(cdir, None)

    def list(self, *, all: bool = False) -> builtins.list[ContainerState]:
        """Running containers (``all``: every one, newest first), a container whose state cannot
        be read among them as ``dead`` (its ``error`` names the file)."""
        out = []
        for cid in self._ids():
            cdir = self.dir / cid
            try:
                st = self._refresh(read_state(cdir))
            except FileNotFoundError:
                if not all or not self._incomplete(cid):
                    continue  # a create in progress, or removed meanwhile
                st = dead_state(cdir, f"{cdir / STATE}: missing", self._name_of(cid))
            except BrokenStateError as exc:
                if not all:
                    continue
                st = dead_state(cdir, str(exc), self._name_of(cid))
            except OSError:
                continue
            if st["status"] == "removing":
                continue  # removed; its monitor is finishing the job
            if all or st["status"] in ("running", "restarting"):
                out.append(st)
        return sorted(out, key=lambda s: s["created"], reverse=True)

    def procs(self, ref: str) -> builtins.list[int]:
        """The host pids of the container's processes: its cgroup's, or (no cgroup: rootless where
        none is delegated) its pid namespace's."""
        cid = self.resolve(ref)
        cg = self.cgroup(cid)
        if cg.paths:
            return builtins.list(cg.procs())
        st = self.state(cid)
        return linux.namespace_pids(int(st.get("pid") or 0)) if st["status"] == "running" else []

    def stats(self, ref: str) -> ContainerStats:
        cid = self.resolve(ref)
        cg = self.cgroup(cid)
        s = cg.stats()
        pids = self.procs(cid)
        if not cg.paths:  # no cgroup: what the kernel shows of its processes
            s = s._replace(memory_usage=linux.resident_bytes(pids), pids_current=len(pids),
                           cpu_usage_ns=linux.cpu_time_ns(pids))
        st = self.state(cid)
        pid = int(st.get("pid") or 0) if st["status"] == "running" else 0
        net = linux.net_bytes(pid) if pid and st.get("network") != "host" else {}
        block_read, block_written = linux.io_bytes(pids)
        return {"memory_usage": s.memory_usage, "memory_limit": s.memory_limit, "pids": s.pids_current,
                "pids_limit": s.pids_limit, "cpu_usage_ns": s.cpu_usage_ns, "net": net,
                "block_read": block_read, "block_written": block_written}

    # -- reaping ---------------------------------------------------------------------------
    def reap(self) -> builtins.list[str]:
        """Release what killed engines, builders and monitors left: processes, cgroups, state,
        network endpoints, temp dirs and the mounts in them, half-written files. A container whose
        state cannot be read is left for ``rm -f`` (``ps -a`` shows it dead), its processes too."""
        self.settle(timeout=2.0)
        done = []
        for cid in self._ids():
            cdir = self.dir / cid
            try:
                st = read_state(cdir)
            except FileNotFoundError:
                if self._incomplete(cid):  # what a killed create left
                    self._remove_dead(cid)
                    done.append(f"removed incomplete container {cid[:12]}")
                continue
            except BrokenStateError as exc:
                done.append(f"left dead container {cid[:12]}: {exc} (rm -f removes it)")
                continue
            except OSError:
                continue
            if st["status"] == "running" and any(p.name.startswith(".frozen-by.") for p in cdir.iterdir()):
                from pytest_pods.engine.runtime.commit import thaw_abandoned  # lazy: start latency (tarfile)

                if thaw_abandoned(self, cid):
                    done.append(f"thawed container {cid[:12]} (its commit was killed)")
            done += remove_dead_leased(cdir)  # half-written state files
            monitor = _alive(st.get("monitor_pid"), st.get("monitor_start"))
            if st["status"] == "removing" and monitor and _alive(st.get("pid"), st.get("pid_start")):
                with contextlib.suppress(Exception):  # its rm -f was killed before it killed it
                    self._kill_for_removal(cid, st)
                    _wait_process(st.get("monitor_pid"), st.get("monitor_start"), time.monotonic() + 5)
                    done.append(f"removed container {cid[:12]} (its rm -f was killed)")
                continue
            if st["status"] == "removing" and not monitor:
                self._remove_dir(cid)  # removed while its monitor was killed: finish the job
                done.append(f"removed container {cid[:12]} (its monitor was killed)")
                continue
            if st["status"] == "starting" and not monitor and self._start_abandoned(cdir, st):
                with contextlib.suppress(OSError, ValueError):
                    st = self._release_orphan(cid, status="created")
                    done.append(f"reset container {cid[:12]} (its start was killed)")
            elif st["status"] in ("running", "restarting") and not monitor:
                with contextlib.suppress(Exception):
                    self.cgroup(cid).destroy()
                _kill_pid1(st)
                if st.get("auto_remove"):
                    self._remove_dir(cid, volumes=True)
                    done.append(f"removed container {cid[:12]} (its monitor was killed)")
                    continue
                st = update_state(cdir, lambda s: s.update({"status": "exited", "exit_code": 137, "pid": 0,
                                                            "error": "the container's monitor was killed",
                                                            "finished_at": now_iso()}))
                done.append(f"stopped container {cid[:12]} (its monitor was killed)")
            owner = (st.get("labels") or {}).get(LABEL_OWNER)
            if owner and not lease_alive(owner) and st["status"] in ("created", "exited"):
                self._remove_dir(cid)  # a build step whose builder was killed: nobody will commit it
                done.append(f"removed container {cid[:12]} (its builder was killed)")
        from pytest_pods.engine.runtime import cgroups  # lazy: start latency (as in cgroup())

        live = set(self._ids())
        for name in cgroups.list_cgroups(parent=self.cgroup_parent):
            if name in live:
                try:
                    status = read_state(self.dir / name)["status"]
                except (OSError, ValueError):
                    continue  # being created, or dead: rm -f ends what runs in it
                if status in ("running", "restarting", "starting"):
                    continue
            with contextlib.suppress(Exception):
                self.cgroup(name).destroy()
                done.append(f"removed cgroup {name[:12]}")
        if not rootless.active():  # a rootless engine's groups, if any, are under the user's own cgroup
            cgroups.remove_empty_parents(parent=self.cgroup_parent)
            cgroups.remove_stale_parents()
        # always: a bridge whose records a crash wiped is found by its marker, not by a record
        running = {i for i in self._ids() if self._status_of(i) in ("running", "restarting", "starting", "dead")}
        done += self.networks.reap(running)
        for link in self.names.iterdir():
            with contextlib.suppress(OSError):
                if not (self.dir / os.readlink(link)).exists():
                    link.unlink()
        for p in self.dir.iterdir():
            if p.name.startswith(".removing-"):
                remove_tree(p)
        exits = self.dir / ".exits"
        if exits.is_dir():
            for p in exits.iterdir():
                with contextlib.suppress(OSError):
                    if time.time() - p.stat().st_mtime > 3600:
                        p.unlink()
        done += self.store.reap_temp()
        return done

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the monitors of containers removed with ``rm -f`` have finished releasing
        them (for callers about to check or clean the host: session ends, reapers, tests)."""
        deadline = time.monotonic() + timeout
        for cid in self._ids():
            with contextlib.suppress(OSError, ValueError):
                st = read_state(self.dir / cid)
                if st.get("status") == "removing":
                    _wait_process(st.get("monitor_pid"), st.get("monitor_start"), deadline)

    def _status_of(self, cid: str) -> str:
        """Its status; "dead" when its state cannot be read (its endpoints are then kept: it may
        still run), "gone" when there is none."""
        try:
            return str(self._refresh(read_state(self.dir / cid))["status"])
        except BrokenStateError:
            return "dead"
        except (OSError, ValueError):
            return "gone"

    def in_use_images(self) -> set[str]:
        out = set()
        for cid in self._ids():
            with contextlib.suppress(OSError, ValueError, KeyError):
                out.add(read_state(self.dir / cid)["image"])
        return out

    def in_use_snapshots(self) -> set[str]:
        out: set[str] = set()
        for cid in self._ids():
            with contextlib.suppress(OSError, ValueError, KeyError):
                out.update("sha256:" + Path(p).name for p in read_state(self.dir / cid)["lower_dirs"]
                           if len(Path(p).name) == 64)
        return out


class Starting:
    """A started container's status channel: wait for its exit without polling."""

    def __init__(self, runtime: Runtime, cid: str, fd: int | None) -> None:
        self.runtime = runtime
        self.id = cid
        self.pid = 0
        self._file: IO[bytes] | None = os.fdopen(fd, "rb") if fd is not None else None

    def _next(self) -> dict[str, Any] | None:
        if self._file is None:
            return None
        line = self._file.readline()
        return json.loads(line) if line else None

    def wait(self) -> int:
        """The exit code, from the monitor's last message (works for ``--rm`` containers too)."""
        if self._file is not None:
            msg = self._next()
            self.close()
            if msg is not None and "exited" in msg:
                return int(msg["exited"])
        return self.runtime.wait(self.id)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def recorded_exit_code(containers: Path, cid: str) -> int:
    """The exit code the monitor left for a container removed since (``.exits/<id>``, written at
    its exit: a ``wait`` may outlive the container); 0 when none was recorded."""
    try:
        return int((containers / ".exits" / cid).read_text())
    except (OSError, ValueError):
        return 0


def _free_ifname(endpoints: dict[str, EndpointRecord]) -> str:
    used = {e.get("ifname") for e in endpoints.values()}
    return next(f"eth{i}" for i in range(10) if f"eth{i}" not in used)


def _alive(pid: int | None, start: int | None) -> bool:
    if not pid:
        return False
    return linux.process_start_time(int(pid)) == start


def _parent_pid(pid: int) -> int:
    """The parent of ``pid`` (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0
    return int(stat[stat.rindex(b")") + 2:].split()[1])


def _kill_pid1(st: ContainerState) -> None:
    """SIGKILL the container's pid 1 if it is still the process recorded: the kernel then ends
    every process of its pid namespace (how a rootless engine without cgroups kills a container)."""
    pid = st.get("pid")
    if pid and _alive(pid, st.get("pid_start")):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        _wait_process(pid, st.get("pid_start"), time.monotonic() + 5)


def _pidfd(st: ContainerState) -> int | None:
    """A pidfd on a running container's process (readable once it exits), or None."""
    pid, start = st.get("pid"), st.get("pid_start")
    if st.get("status") != "running" or not _alive(pid, start):
        return None
    try:
        fd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return None
    if not _alive(pid, start):  # reused between the check and the open
        os.close(fd)
        return None
    return fd


def _wait_process(pid: int | None, start: int | None, deadline: float | None) -> bool:
    """Wait for a (non-child) process to end, with a pidfd; False when the deadline passed."""
    if not _alive(pid, start):
        return True
    try:
        fd = os.pidfd_open(int(pid))  # type: ignore[arg-type]
    except ProcessLookupError:
        return True
    try:
        if not _alive(pid, start):  # the pid was reused between the check and the open
            return True
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([fd], [], [], remaining)
        return bool(ready)
    finally:
        os.close(fd)


def collect_output(fds: list[int]) -> list[bytes]:
    """Read each fd to its end (all at once, so that no pipe fills and blocks its writer); closes them."""
    bufs = {fd: bytearray() for fd in fds}
    open_fds = list(fds)
    while open_fds:
        ready, _, _ = select.select(open_fds, [], [])
        for fd in ready:
            data = os.read(fd, 65536)
            if data:
                bufs[fd] += data
            else:
                os.close(fd)
                open_fds.remove(fd)
    return [bytes(bufs[fd]) for fd in fds]


class _LogLines:
    """The log file's entries as lines: an entry marked ``partial`` (the start of a line the
    monitor wrote before its end) is held until the entry that ends its line, unless the reader
    wants the pieces as they come (an attach)."""

    def __init__(self, pieces: bool) -> None:
        self.pieces = pieces
        self.open: dict[str, tuple[str, bytes]] = {}  # stream -> (time of its start, bytes so far)

    def add(self, raw: bytes) -> list[tuple[str, str, bytes]]:
        if not raw.strip():
            return []
        rec = json.loads(raw)
        stream, ts, data = rec["stream"], rec["time"], rec["log"].encode("utf-8", "surrogateescape")
        if self.pieces:
            return [(stream, ts, data)] if data else []
        start = self.open.pop(stream, None)
        if start is not None:
            ts, data = start[0], start[1] + data
        if rec.get("partial"):
            self.open[stream] = (ts, data)
            return []
        return [(stream, ts, data)] if data else []
