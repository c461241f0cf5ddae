"""Snapshots: a container's filesystem changes as a new image (``docker commit``).

The container's overlay upper directory *is* its change set, whiteouts included, so committing
is writing that directory as one more layer over the image's. The layer is unpacked once into
``snapshots/<diff_id>`` like any pulled layer, so a container started from the snapshot is one
more overlay lower dir: no copy of the data per start.

Mount points the engine made for the container (``/etc/hosts`` stubs, bind and tmpfs targets,
``/proc``) are no part of the change set when the image did not have them, as in docker.

A running container is frozen (cgroup freezer) while its upper dir is read, so the layer is one
moment of it; ``stop=True`` stops it first with its stop signal, so that a service's data files
are consistent (Postgres' fast shutdown, a checkpoint) rather than crash-consistent.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_pods.engine import linux, rootless
from pytest_pods.engine.image.store import MEDIA_OCI_LAYER, Image
from pytest_pods.engine.locks import lease, lease_alive
from pytest_pods.errors import ConflictError, InvalidArgumentError, PodsError

if TYPE_CHECKING:
    from pytest_pods.engine.runtime.cgroups.interface import Cgroup
    from pytest_pods.engine.runtime.lifecycle import Runtime

ENGINE_MOUNT_POINTS = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/proc", "/sys", "/dev", "/etc")
_CHANGEABLE = {"CMD": "Cmd", "ENTRYPOINT": "Entrypoint", "ENV": "Env", "EXPOSE": "ExposedPorts", "LABEL": "Labels",
               "USER": "User", "WORKDIR": "WorkingDir", "STOPSIGNAL": "StopSignal", "VOLUME": "Volumes"}


@contextlib.contextmanager
def lower_view(lowers: Sequence[str | os.PathLike[str]], tmp: str | os.PathLike[str]):  # type: ignore[no-untyped-def]
    """The merged, read-only view of ``lowers`` (top first) at a temp mount point."""
    where = Path(tempfile.mkdtemp(dir=tmp, prefix=f"view-{lease()}-"))  # the reaper unmounts a killed one's
    mounted = False
    try:
        if len(lowers) == 1:
            linux.mount(str(lowers[0]), str(where), None, linux.MS_BIND)
            mounted = True
            linux.mount(None, str(where), None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY)
        elif lowers:
            options = "lowerdir=" + ":".join(str(p) for p in lowers)
            if rootless.inside():  # overlayfs in a user namespace keeps its state in user.* xattrs
                options += ",userxattr"
            linux.mount("overlay", str(where), "overlay", linux.MS_RDONLY, options)
            mounted = True
        yield where
    finally:
        if mounted:
            linux.umount(str(where), linux.MNT_DETACH)
        os.rmdir(where)


FROZEN_MARK = ".frozen-by."
"""``containers/<id>/.frozen-by.<lease>-``: a commit froze the container (``--pause``)."""


def thaw_abandoned(runtime: Runtime, cid: str) -> bool:
    """Thaw a container a killed commit left frozen (its marker names a lease that is gone)."""
    thawed = False
    cdir = runtime.dir / cid
    with contextlib.suppress(OSError):
        for p in cdir.iterdir():
            if p.name.startswith(FROZEN_MARK) and not lease_alive(p.name.removeprefix(FROZEN_MARK)):
                with contextlib.suppress(Exception):
                    runtime.cgroup(cid).thaw()
                    thawed = True
                p.unlink(missing_ok=True)
    return thawed


def exists_in(view: Path, path: str) -> bool:
    """Whether ``path`` resolves inside ``view`` (symlinks followed within it, never out)."""
    root = os.open(view, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = linux.openat2(root, path.lstrip("/") or ".", os.O_PATH)
    except OSError:
        return False
    finally:
        os.close(root)
    os.close(fd)
    return True


def scrub_mount_points(upper: Path, lowers: Sequence[str | os.PathLike[str]], tmp: str | os.PathLike[str],
                       paths: Iterable[str]) -> None:
    """Remove from ``upper`` the empty files and directories the engine made only to mount
    something on, where the image (``lowers``) had nothing."""
    with lower_view(lowers, tmp) as view:
        for path in sorted(set(paths), key=lambda p: -p.count("/")):
            p = upper / path.lstrip("/")
            if exists_in(view, path) or not (p.exists() or p.is_symlink()):
                continue
            with contextlib.suppress(OSError):
                if p.is_dir() and not p.is_symlink():
                    p.rmdir()  # only when empty
                elif p.stat().st_size == 0:
                    p.unlink()


def apply_changes(config: Mapping[str, Any], changes: Sequence[str], verb: str = "commit") -> dict[str, Any]:
    """``--change``/``-c``: the Dockerfile instructions ``docker commit`` and ``docker import``
    accept, applied to a run config (a copy is returned)."""
    cfg = dict(config)
    for ch in changes:
        instr, _, rest = ch.strip().partition(" ")
        instr, rest = instr.upper(), rest.strip()
        if instr in ("CMD", "ENTRYPOINT"):
            try:
                val = json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
            except ValueError:
                raise InvalidArgumentError(f"{verb} --change {ch!r}: bad JSON array") from None
            cfg["Cmd" if instr == "CMD" else "Entrypoint"] = val
        elif instr == "ENV":
            key, sep, val = rest.partition("=")
            if not sep:
                key, _, val = rest.partition(" ")
            cfg["Env"] = [e for e in cfg.get("Env") or [] if not e.startswith(key + "=")] + [f"{key}={val.strip()}"]
        elif instr in ("WORKDIR", "USER", "STOPSIGNAL"):
            cfg[_CHANGEABLE[instr]] = rest
        elif instr == "LABEL":
            key, _, val = rest.partition("=")
            cfg["Labels"] = dict(cfg.get("Labels") or {}) | {key: val.strip('"')}
        elif instr in ("EXPOSE", "VOLUME"):
            key = _CHANGEABLE[instr]
            names = json.loads(rest) if instr == "VOLUME" and rest.startswith("[") else rest.split()
            cfg[key] = dict(cfg.get(key) or {}) | {
                (n if "/" in n or instr == "VOLUME" else f"{n}/tcp"): {} for n in names}
        else:
            raise InvalidArgumentError(f"{verb} --change {ch!r}: {instr} is not a valid change command "
                                       f"(one of {', '.join(sorted(_CHANGEABLE))})")
    return cfg


def _has_processes(cgroup: Cgroup) -> bool:
    """Whether anything still runs in ``cgroup`` (a removed group has nothing)."""
    try:
        return bool(cgroup.procs())
    except (PodsError, OSError):
        return False


def commit(runtime: Runtime, ref: str, *, tags: Sequence[str] = (), message: str = "", author: str = "",
           changes: Sequence[str] = (), config: Mapping[str, Any] | None = None, pause: bool = True,
           stop: bool = False, stop_timeout: float | None = None) -> Image:
    """The container ``ref``'s changes as a new image over its own image; tagged ``tags``."""
    from pytest_pods.engine.image.layers import (
        write_layer,  # lazy: start latency (tarfile; builders import this module)
    )

    store = runtime.store
    cid = runtime.resolve(ref)
    st = runtime.state(cid)
    if st["status"] in ("starting", "removing", "dead"):
        raise ConflictError(f"commit container {st['name']}: it is {st['status']}")
    if stop and st["status"] == "running":
        runtime.stop(cid, stop_timeout)
        st = runtime.state(cid)
    base = store.get_image(st["image"])
    cdir = runtime.dir / cid
    upper = cdir / "upper"
    targets = [*(b.split(":")[1] for b in st.get("binds") or []), *(t.split(":")[0] for t in st.get("tmpfs") or [])]
    # a target's missing parents were made for it too (empty ones go; ones with files stay)
    mount_points = [*ENGINE_MOUNT_POINTS, *targets,
                    *("/".join(t.rstrip("/").split("/")[:i]) for t in targets for i in range(2, t.count("/") + 1))]
    frozen = None
    marker = cdir / f"{FROZEN_MARK}{lease()}-"
    if pause and st["status"] == "running" and not st.get("paused"):
        frozen = runtime.cgroup(cid)
        marker.touch()  # first: a commit killed while the container is frozen is told by it
        try:
            frozen.freeze()
        except (PodsError, OSError):
            # exiting meanwhile (its cgroup going or gone, before the monitor records the exit):
            # what it wrote is all there is, as dockerd commits a container that stopped under it
            cgroup, frozen = frozen, None
            marker.unlink(missing_ok=True)
            if runtime.state(cid)["status"] == "running" and _has_processes(cgroup):
                raise
    try:
        scrub_mount_points(upper, st["lower_dirs"], store.tmp, mount_points)
        layers, diff_ids = list(base.layers), list(base.diff_ids)
        if any(upper.iterdir()):
            with store.blob_writer() as w:
                write_layer(upper, w, overlay_upper=True)
            layers.append({"mediaType": MEDIA_OCI_LAYER, "digest": w.digest, "size": w.size})
            diff_ids.append(w.digest)
    finally:
        if frozen is not None:
            with contextlib.suppress(PodsError, OSError):  # it may have exited meanwhile
                frozen.thaw()
            marker.unlink(missing_ok=True)
    if len(layers) > len(base.layers):
        store.ensure_snapshot(diff_ids[-1], layers[-1]["digest"])
    run_config = dict(base.config.get("config") or {})
    if config:
        run_config.update(config)
    run_config = apply_changes(run_config, changes)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    history = list(base.config.get("history") or [])
    history.append({"created": created, "created_by": f"pods commit {st['name']}",
                    **({"comment": message} if message else {}), **({"author": author} if author else {}),
                    **({} if len(layers) > len(base.layers) else {"empty_layer": True})})
    image_config = {k: v for k, v in base.config.items() if k not in ("config", "rootfs", "history", "created")}
    image_config |= {"created": created, "config": run_config, "rootfs": {"type": "layers", "diff_ids": diff_ids},
                     "history": history, **({"author": author} if author else {})}
    return store.create_image(image_config, layers, list(tags))
