"""Docker's JSON documents, both ways: what ``inspect`` prints for containers, images and
networks (the local engine's records in Docker's shape), the Engine API's list rows, and its
create body: written by the remote client (docker-py's ``containers.create`` arguments in
Docker's shape) and read by the daemon (the body back as those arguments).

The daemon serves these documents; the CLI prints them; the remote client writes create bodies.
"""

from __future__ import annotations

import calendar
import json
import os
import signal
import stat
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict, TypeVar

from pytest_pods.client.contract import (
    PortBinding,
    api_port_fields,
    device_list,
    device_parts,
    health_config,
    parse_bytes,
    parse_reference,
    port_bindings_doc,
    security_opts,
    shm_bytes,
    sysctl_map,
    tmpfs_list,
    ulimit_list,
)
from pytest_pods.engine.image.store import Image, Store, digest_hex
from pytest_pods.engine.runtime.spec import CAP_NUMBERS, DEFAULT_CAPS, RLIM_INFINITY, ULIMITS, default_rlimits
from pytest_pods.engine.runtime.volumes import Volumes
from pytest_pods.errors import InvalidArgumentError, NotFoundError, PodsError

if TYPE_CHECKING:
    from pytest_pods.client.local import Client

__all__ = ["CREATE_KEYS", "CreateArguments", "CreateOptions", "ago", "api_container_inspect", "body_field",
           "container_inspect", "container_row", "create_arguments", "create_body", "docker_config",
           "endpoints_for_version", "host_confinement", "image_history", "image_inspect", "image_row", "mount_doc",
           "network_inspect", "network_settings", "optional_body_field", "parse_time", "short", "split_endpoints",
           "status_text"]


def short(digest: str) -> str:
    """The 12 hex digits Docker shows for an ID (``sha256:`` dropped)."""
    return digest_hex(digest)[:12]


# -- inspect documents, in Docker's shape ---------------------------------------------------------
def network_inspect(client: Client, ref: str) -> dict[str, Any]:
    """A network in the Engine API's shape: ``IPAM.Config`` as it was given (dockerd shows a
    given subnet without the gateway it chose), ``Containers`` with their endpoints."""
    nets = client.runtime.networks
    rec = nets.get(ref)
    containers = {e["cid"]: {"Name": e["name"], "EndpointID": e.get("endpoint_id", ""),
                             "MacAddress": e.get("mac", ""), "IPv4Address": f"{e['ip']}/{e['prefix']}",
                             "IPv6Address": f"{e['ip6']}/{e.get('prefix6', 0)}" if e.get("ip6") else ""}
                  for e in nets.endpoints(rec)}
    config = rec.get("ipam_config") or [{"Subnet": rec["subnet"], "Gateway": rec["gateway"]}]
    return {
        "Name": rec["name"], "Id": rec["id"],
        "Created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(rec["created"])),
        "Scope": "local", "Driver": "bridge", "EnableIPv6": bool(rec.get("enable_ipv6")),
        "IPAM": {"Driver": "default", "Options": rec.get("ipam_options"), "Config": config},
        "Internal": rec["internal"], "Attachable": bool(rec.get("attachable")), "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers,
        # the options given; the default network's its Linux bridge too, as dockerd's docker0 (a user
        # network's would read as a changed option to docker-compose, which compares them)
        "Options": {**(rec.get("options") or {}),
                    **({"com.docker.network.bridge.name": rec["bridge"]} if rec["name"] == "bridge" else {})},
        "Labels": rec.get("labels") or {},
    }


def image_inspect(image: Image, store: Store | None = None) -> dict[str, Any]:
    cfg = image.config
    repo_digests: list[str] = []
    if store is not None and (store.root / "registry").is_dir():
        # lazy: start latency (the registry client: http, ssl); only for stores that pulled
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
        "Config": docker_config(cfg.get("config") or {}),
        "RootFS": {"Type": "layers", "Layers": image.diff_ids},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        "Descriptor": {"mediaType": image.manifest.get("mediaType"), "digest": image.manifest_digest},
        "_Names": [str(parse_reference(t)) for t in image.tags],
    }


def docker_config(c: Mapping[str, Any]) -> dict[str, Any]:
    """An image config's ``config`` as Docker's inspect shows it (its defaults filled in)."""
    keys = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts",
            "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "Image", "Volumes", "WorkingDir",
            "Entrypoint", "OnBuild", "Labels", "StopSignal", "Shell")
    defaults: dict[str, Any] = {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
                                "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
                                "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
                                "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None}
    return {k: c.get(k, defaults.get(k)) for k in keys if k in c or k in defaults}


def bundle_config(cdir: Path) -> dict[str, Any]:
    """A container's OCI ``config.json``, or a minimal stand-in when it cannot be read (a dead
    container's files may be broken too: inspect and ps still show it, issue 14)."""
    try:
        cfg = json.loads((cdir / "config.json").read_text())
    except (OSError, ValueError):
        cfg = None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("process"), dict):
        return {"process": {"args": [""], "env": [], "cwd": "/"}, "mounts": []}
    proc = cfg["process"]
    proc["args"] = [str(a) for a in proc.get("args") or []] or [""]
    proc.setdefault("env", [])
    proc.setdefault("cwd", "/")
    cfg["mounts"] = [m for m in cfg.get("mounts") or [] if isinstance(m, dict)]
    return cfg


def container_inspect(client: Client, cid: str) -> dict[str, Any]:
    st = client.runtime.state(cid)
    cdir = client.runtime.dir / st["id"]
    cfg = bundle_config(cdir)
    proc = cfg["process"]
    status = st["status"] if st["status"] != "starting" else "created"
    limits = st.get("limits") or {}
    # Docker's Config carries the merged HEALTHCHECK (the image's, overridden by the container's:
    # issue 16), its State the health the monitor's probes found
    health: Any = st.get("healthcheck")
    if health is None:  # a container created before the engine kept it: its image's
        try:
            health = (client.store.get_image(st["image"]).config.get("config") or {}).get("Healthcheck")
        except PodsError:
            health = None  # its image was removed since (rmi -f): the container still inspects
    return {
        "Id": st["id"],
        "Created": st["created"],
        "Path": proc["args"][0],
        "Args": proc["args"][1:],
        "State": {
            "Status": "paused" if status == "running" and st.get("paused") else status,
            "Running": status in ("running", "restarting"), "Paused": status == "running" and bool(st.get("paused")),
            "Restarting": status == "restarting",
            "OOMKilled": bool(st.get("oom_killed")), "Dead": status == "dead", "Pid": st.get("pid", 0) if status == "running" else 0,
            "ExitCode": st.get("exit_code", 0), "Error": st.get("error", ""),
            "StartedAt": st.get("started_at"), "FinishedAt": st.get("finished_at"),
            **({"Health": st["health"]} if st.get("health") else {}),
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
            **host_confinement(cfg),
            **host_config_rest(st, cfg),
        },
        "GraphDriver": {"Name": "overlay", "Data": {
            "LowerDir": ":".join(st.get("lower_dirs", [])), "UpperDir": str(cdir / "upper"),
            "WorkDir": str(cdir / "work"), "MergedDir": str(cdir / "rootfs")}},
        "Mounts": [mount_doc(client, m) for m in cfg["mounts"]
                   if m["type"] == "bind" and not m["destination"].startswith("/etc/") and not engine_bind(m)],
        "Config": {
            "Hostname": cfg.get("hostname", st.get("hostname", "")), "User": st.get("user", ""),
            "Env": [*(st.get("env_bare") or []), *proc["env"]],
            "Cmd": proc["args"], "Image": st.get("image_name", ""), "WorkingDir": proc["cwd"],
            "Labels": st.get("labels") or {}, "StopSignal": signal.Signals(st.get("stop_signal", 15)).name,
            "StopTimeout": st.get("stop_timeout"), "OpenStdin": bool(st.get("stdin_open")), "Tty": False,
            **({"Healthcheck": health} if health else {}),
        },
        "NetworkSettings": network_settings(st),
    }


def host_config_rest(st: Mapping[str, Any], cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The rest of ``HostConfig`` as dockerd fills it: its defaults, what the engine applies
    (namespace modes, groups, restart policy, log config, cpu shares), the fields kept as given."""
    linux = cfg.get("linux") or {}
    namespaces = {ns.get("type") for ns in linux.get("namespaces") or []}
    limits = st.get("limits") or {}
    kept = {k: v for k, v in (st.get("host_config") or {}).items() if k != "MacAddress"}
    doc: dict[str, Any] = {
        "ContainerIDFile": "", "VolumeDriver": "", "VolumesFrom": st.get("volumes_from") or None,
        "CgroupnsMode": "private" if "cgroup" in namespaces else "host", "Dns": [], "DnsOptions": [], "DnsSearch": [],
        "ExtraHosts": [h for h in st.get("extra_hosts") or [] if h not in (st.get("link_hosts") or [])] or None,
        "GroupAdd": st.get("group_add") or None, "IpcMode": "private", "Cgroup": "",
        "Links": [f"/{lk['name']}:/{st['name']}/{lk['alias']}" for lk in st.get("links") or []] or None,
        "OomScoreAdj": 0, "PidMode": "" if "pid" in namespaces else "host",
        "UTSMode": "" if "uts" in namespaces else "host", "PublishAllPorts": bool(st.get("publish_all")), "UsernsMode": "", "Runtime": "runc",
        "ConsoleSize": [0, 0], "Isolation": "", "CpuShares": limits.get("cpu_shares") or 0, "CgroupParent": "",
        "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0,
        "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "",
        "DeviceCgroupRules": None, "DeviceRequests": None, "KernelMemory": 0, "KernelMemoryTCP": 0,
        "MemoryReservation": 0, "MemorySwappiness": None, "OomKillDisable": False, "CpuCount": 0, "CpuPercent": 0,
        "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
        "RestartPolicy": dict(st.get("restart_policy") or {"Name": "", "MaximumRetryCount": 0}),
        "LogConfig": {"Type": "json-file", "Config": {}, **(st.get("log_config") or {})},
        "MaskedPaths": linux.get("maskedPaths") or None, "ReadonlyPaths": linux.get("readonlyPaths") or None,
    }
    doc.update(kept)
    return doc


def host_confinement(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``HostConfig``'s confinement fields (Privileged, CapAdd, CapDrop, SecurityOpt, Devices,
    Sysctls, Ulimits, ShmSize) read from a container's OCI ``config.json``: what the engine
    applies, in the words a user would have asked for it (issue 14).

    The bundle holds the outcome, not the request: capabilities show as the changes from Docker's
    default set (``ALL`` where that is the shorter way to say it), SecurityOpt the non-default
    ``seccomp=unconfined`` and ``no-new-privileges`` (not which custom profile), and a ulimit equal
    to the engine's default open-files limit is not listed.
    """
    linux = cfg.get("linux") or {}
    proc = cfg.get("process") or {}
    rules = [r for r in (linux.get("resources") or {}).get("devices") or [] if r.get("allow")]
    privileged = any("type" not in r and "major" not in r for r in rules)  # the one rule allowing every device
    caps = list((proc.get("capabilities") or {}).get("bounding") or [])
    cap_add, cap_drop = (None, None) if privileged else cap_changes(caps)
    security = [] if privileged or "seccomp" in linux else ["seccomp=unconfined"]
    if proc.get("noNewPrivileges"):
        security.append("no-new-privileges")
    mounts = cfg.get("mounts") or []
    shm_size = 64 * 1024 * 1024
    for m in mounts:
        if m.get("destination") == "/dev/shm":
            for opt in m.get("options") or []:
                if opt.startswith("size=") and opt[5:].isdigit():
                    shm_size = int(opt[5:])
    binds = {m["destination"]: m.get("source") for m in mounts if m.get("type") == "bind"}
    devices = []
    for d in [] if privileged else linux.get("devices") or []:
        access = next((r.get("access", "rwm") for r in rules if (r.get("type"), r.get("major"), r.get("minor"))
                       == (d.get("type"), d.get("major"), d.get("minor"))), "rwm")
        devices.append({"PathOnHost": binds.get(d["path"]) or host_device(d), "PathInContainer": d["path"],
                        "CgroupPermissions": access})
    defaults = {r["type"]: r for r in default_rlimits()}
    names = {v: k for k, v in ULIMITS.items()}
    ulimits = [{"Name": names.get(r["type"], str(r["type"]).removeprefix("RLIMIT_").lower()),
                "Soft": -1 if r["soft"] == RLIM_INFINITY else r["soft"],
                "Hard": -1 if r["hard"] == RLIM_INFINITY else r["hard"]}
               for r in proc.get("rlimits") or [] if defaults.get(r["type"]) != r]
    doc: dict[str, Any] = {"Privileged": privileged, "CapAdd": cap_add, "CapDrop": cap_drop,
                           "SecurityOpt": security or None, "Devices": devices, "Ulimits": ulimits,
                           "ShmSize": shm_size}
    if linux.get("sysctl"):
        doc["Sysctls"] = dict(linux["sysctl"])
    return doc


def cap_changes(caps: Sequence[str]) -> tuple[list[str] | None, list[str] | None]:
    """(CapAdd, CapDrop) that turn Docker's default set into ``caps``, the shorter way round:
    ``--cap-drop ALL --cap-add NET_BIND_SERVICE`` rather than thirteen drops."""
    have = set(caps)
    added = [c for c in caps if c not in DEFAULT_CAPS]
    dropped = [c for c in DEFAULT_CAPS if c not in have]
    kept = [c for c in DEFAULT_CAPS if c in have]
    if have >= set(CAP_NUMBERS):
        return ["ALL"], None
    if dropped and len(kept) < len(dropped):
        return (kept + added) or None, ["ALL"]
    return added or None, dropped or None


def host_device(d: Mapping[str, Any]) -> str:
    """The host's path of a container's device node: the same path if it is that device, else the
    first node of /dev with its type and numbers (the bundle keeps only the container's path)."""
    want = (d.get("type"), d.get("major"), d.get("minor"))

    def same(path: str) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False
        kind = "c" if stat.S_ISCHR(st.st_mode) else "b" if stat.S_ISBLK(st.st_mode) else ""
        return (kind, os.major(st.st_rdev), os.minor(st.st_rdev)) == want

    if same(d["path"]):
        return str(d["path"])
    for dirpath, dirs, names in os.walk("/dev"):
        dirs[:] = [n for n in dirs if n not in ("pts", "shm", "mqueue")]
        for n in sorted(names):
            if same(os.path.join(dirpath, n)):
                return os.path.join(dirpath, n)
    return str(d["path"])


def mount_doc(client: Client, m: Mapping[str, Any]) -> dict[str, Any]:
    """A bind mount as docker shows it: a named or anonymous volume's as Type "volume"."""
    rw = "ro" not in m.get("options", [])
    name = Volumes(client.root).name_of(m["source"])
    if name:
        return {"Type": "volume", "Name": name, "Source": m["source"], "Destination": m["destination"],
                "Driver": "local", "Mode": "", "RW": rw, "Propagation": ""}
    return {"Type": "bind", "Source": m["source"], "Destination": m["destination"], "Mode": "", "RW": rw,
            "Propagation": "rprivate"}


def endpoint_settings(e: Mapping[str, Any], *, user_net: bool) -> dict[str, Any]:
    """One ``NetworkSettings.Networks`` entry of a running container (dockerd's fields: on a
    user network its aliases end with the short container ID, as dockerd lists them)."""
    aliases = list(e.get("aliases") or [])
    if user_net and e["cid"][:12] not in aliases:
        aliases.append(e["cid"][:12])
    return {"IPAMConfig": e.get("ipam_config"), "Links": e.get("links"), "Aliases": aliases if user_net else None,
            "NetworkID": e["network_id"], "EndpointID": e.get("endpoint_id", ""), "Gateway": e["gateway"],
            "IPAddress": e["ip"], "IPPrefixLen": e["prefix"], "IPv6Gateway": e.get("gateway6", "") if e.get("ip6") else "",
            "GlobalIPv6Address": e.get("ip6", ""), "GlobalIPv6PrefixLen": e.get("prefix6", 0),
            "MacAddress": e.get("mac", ""), "DriverOpts": e.get("driver_opts")}


def endpoints_for_version(networks: Mapping[str, Any], version: tuple[int, int], *, cid: str, name: str,
                          hostname: str) -> None:
    """``NetworkSettings.Networks`` as the client's API version has them (in place): from 1.44
    each endpoint's ``DNSNames`` (on a user network: the container's name, its aliases, its
    short ID and host name), from 1.45 ``Aliases`` without the short ID dockerd added before."""
    short = cid[:12]
    for net, ep in networks.items():
        if not ep or "NetworkID" not in ep:
            continue
        aliases = list(ep.get("Aliases") or [])
        running = bool(ep.get("EndpointID"))
        if version >= (1, 44):
            ep["DNSNames"] = list(dict.fromkeys([name, *aliases, short, hostname])) if net != "bridge" and running \
                else None
        if version >= (1, 45):
            ep["Aliases"] = [a for a in aliases if a != short] or None


def network_settings(st: Mapping[str, Any]) -> dict[str, Any]:
    """A container state's ``NetworkSettings``: its networks (addresses while it runs) and ports."""
    eps = st.get("endpoints") or {} if st.get("status") == "running" else {}
    networks = {name: endpoint_settings(e, user_net=name != "bridge") for name, e in eps.items()}
    if not networks:
        networks = {n["name"]: {"IPAMConfig": None, "Links": None, "Aliases": n.get("aliases") or None,
                                "NetworkID": n["id"], "EndpointID": "", "Gateway": "", "IPAddress": "",
                                "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                                "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}
                    for n in st.get("networks", [])} or {st.get("network", "none"): {}}
    ports: dict[str, Any] = {}
    for p in st.get("port_specs") or []:
        ports.setdefault(f"{p['container_port']}/{p['proto']}", None)
    if st.get("status") == "running":
        for p in st.get("ports") or []:
            key = f"{p['container_port']}/{p['proto']}"
            ports[key] = (ports.get(key) or []) + [{"HostIp": p["host_ip"], "HostPort": str(p["host_port"])}]
    first = next(iter(networks.values()), {})
    return {"Networks": networks, "Ports": ports, "IPAddress": first.get("IPAddress", ""),
            "Gateway": first.get("Gateway", ""), "IPPrefixLen": first.get("IPPrefixLen", 0),
            "MacAddress": first.get("MacAddress", ""), "EndpointID": first.get("EndpointID", ""),
            "GlobalIPv6Address": first.get("GlobalIPv6Address", ""),
            "GlobalIPv6PrefixLen": first.get("GlobalIPv6PrefixLen", 0), "IPv6Gateway": first.get("IPv6Gateway", "")}


# -- the other way: docker-py's create arguments as an Engine API create body -------------------
CREATE_KEYS = frozenset({
    "environment", "working_dir", "user", "hostname", "volumes", "tmpfs", "memory", "memory_swap",
    "pids_limit", "cpus", "network", "network_aliases", "ports", "publish_all_ports", "read_only",
    "init", "labels", "stop_signal", "stop_timeout", "auto_remove", "no_new_privileges", "cap_add",
    "cap_drop", "stdin_open", "entrypoint", "name", "privileged", "security_opt", "devices", "sysctls", "ulimits",
    "shm_size", "healthcheck", "volumes_from", "restart_policy", "group_add", "pid_mode", "uts_mode", "log_config",
    "cpu_shares", "links", "extra_hosts", "expose", "ipc_mode", "cgroupns_mode", "host_config", "network_endpoint"})


def create_body(image: str, command: Sequence[str] | str | None, kw: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /containers/create``'s body for ``containers.create(image, command, **kw)``.

    :raises TypeError: an argument ``containers.create`` does not take (as a Python call would)
    """
    unknown = set(kw) - CREATE_KEYS
    if unknown:
        raise TypeError(f"create() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    env = kw.get("environment") or {}
    env_list = [f"{k}={v}" for k, v in env.items()] if isinstance(env, Mapping) else [str(e) for e in env]
    exposed, bindings = api_port_fields(kw.get("ports") or ())
    network = kw.get("network") or "bridge"
    hc: dict[str, Any] = {
        "Binds": [str(v) for v in kw.get("volumes") or []] or None,
        "VolumesFrom": _str_list(kw.get("volumes_from")) or None,
        "Tmpfs": {t.partition(":")[0]: t.partition(":")[2] for t in tmpfs_list(kw.get("tmpfs"))} or None,
        "Memory": parse_bytes(kw["memory"]) if kw.get("memory") else 0,
        "PidsLimit": kw.get("pids_limit"), "NanoCpus": int(kw["cpus"] * 1e9) if kw.get("cpus") else 0,
        "NetworkMode": network, "PortBindings": bindings, "PublishAllPorts": bool(kw.get("publish_all_ports")),
        "ReadonlyRootfs": bool(kw.get("read_only")), "Init": bool(kw.get("init")),
        "AutoRemove": bool(kw.get("auto_remove")), "CapAdd": _str_list(kw.get("cap_add")) or None,
        "CapDrop": _str_list(kw.get("cap_drop")) or None, "Privileged": bool(kw.get("privileged")),
        "SecurityOpt": security_opt_doc(kw) or None,
        "Devices": [dict(zip(("PathOnHost", "PathInContainer", "CgroupPermissions"), device_parts(d), strict=True))
                    for d in device_list(kw.get("devices"))],
        "Sysctls": sysctl_map(kw.get("sysctls")) or None,
        "Ulimits": [ulimit_doc(u) for u in ulimit_list(kw.get("ulimits"))],
        "ShmSize": shm_bytes(kw.get("shm_size")) or 0,
        "CpuShares": kw.get("cpu_shares") or 0, "GroupAdd": [str(g) for g in kw.get("group_add") or []] or None,
        "PidMode": kw.get("pid_mode") or "", "UTSMode": kw.get("uts_mode") or "",
        "Links": _pairs(kw.get("links")) or None, "ExtraHosts": _pairs(kw.get("extra_hosts")) or None,
        "IpcMode": kw.get("ipc_mode") or "", "CgroupnsMode": kw.get("cgroupns_mode") or "",
        **dict(kw.get("host_config") or {}),  # other HostConfig fields as the API names them (Dns, CpusetCpus)
    }
    exposed |= {(e if "/" in str(e) else f"{e}/tcp"): {} for e in kw.get("expose") or ()}
    if kw.get("restart_policy"):
        hc["RestartPolicy"] = dict(kw["restart_policy"])
    if kw.get("log_config"):
        hc["LogConfig"] = {"Type": kw["log_config"].get("Type") or "json-file",
                           "Config": dict(kw["log_config"].get("Config") or {})}
    if isinstance(command, str):
        command = ["/bin/sh", "-c", command]
    body: dict[str, Any] = {
        "Image": image, "Cmd": list(command) if command is not None else None,
        "Entrypoint": list(kw["entrypoint"]) if kw.get("entrypoint") is not None else None,
        "Env": env_list, "WorkingDir": kw.get("working_dir") or "", "User": kw.get("user") or "",
        "Hostname": kw.get("hostname") or "", "Labels": dict(kw.get("labels") or {}), "ExposedPorts": exposed,
        "StopSignal": kw.get("stop_signal"), "StopTimeout": kw.get("stop_timeout"),
        "OpenStdin": bool(kw.get("stdin_open")), "HostConfig": hc,
    }
    if kw.get("healthcheck") is not None:
        body["Healthcheck"] = health_config(kw["healthcheck"])
    endpoint = dict(kw.get("network_endpoint") or {})
    if kw.get("network_aliases"):
        endpoint["Aliases"] = list(kw["network_aliases"])
    if endpoint:
        body["NetworkingConfig"] = {"EndpointsConfig": {network: endpoint}}
    return body


def _pairs(value: Mapping[str, str] | Sequence[str] | None) -> list[str]:
    """``{"db": "alias"}`` or ``["db:alias"]`` as ``["db:alias"]`` (Links, ExtraHosts)."""
    if isinstance(value, Mapping):
        return [f"{k}:{v}" for k, v in value.items()]
    return _str_list(value)


def _str_list(value: Sequence[str] | str | None) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value or []]


def security_opt_doc(kw: Mapping[str, Any]) -> list[str]:
    """``SecurityOpt`` as the docker CLI sends it: a ``seccomp=FILE`` read here and sent as its
    compacted JSON (the daemon may run elsewhere; dockerd reads no client paths), and
    ``no_new_privileges`` when the caller gave it.

    :raises InvalidArgumentError: a profile file that cannot be read or is not JSON (the file named)
    """
    opts = security_opts(kw.get("security_opt"))
    for i, opt in enumerate(opts):
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")
        if key != "seccomp" or value in ("unconfined", "builtin") or value.lstrip().startswith("{"):
            continue
        try:
            with open(value, "rb") as f:
                profile = json.load(f)
        except OSError as exc:
            raise InvalidArgumentError(f"opening seccomp profile ({value}) failed: {exc.strerror}. Give the path of "
                                       "a JSON profile (Docker's format), 'unconfined' or 'builtin'.") from None
        except ValueError as exc:
            raise InvalidArgumentError(f"compacting json for seccomp profile ({value}) failed: {exc}") from None
        opts[i] = "seccomp=" + json.dumps(profile, separators=(",", ":"))
    if "no_new_privileges" in kw:
        opts.append("no-new-privileges" if kw["no_new_privileges"] else "no-new-privileges=false")
    return opts


def ulimit_doc(text: str) -> dict[str, Any]:
    """``nofile=1024:2048`` as the Engine API's ``{"Name": "nofile", "Soft": 1024, "Hard": 2048}``."""
    name, _, values = text.partition("=")
    soft, _, hard = values.partition(":")
    return {"Name": name, "Soft": int(soft), "Hard": int(hard or soft)}


# -- the Engine API's list rows, and the times in them -------------------------------------------
def parse_time(ts: str) -> float:
    """An RFC 3339 time (``2024-01-02T03:04:05.123456789Z``) as unix seconds; 0 if unreadable."""
    if not ts:
        return 0.0
    try:
        base, _, frac = ts.rstrip("Z").partition(".")
        return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))
    except ValueError:
        return 0.0


def ago(ts: str) -> str:
    """How long ago ``ts`` was, as ``docker ps`` words it (``5 minutes``)."""
    t = parse_time(ts)
    if not t:
        return "Less than a second"
    d = max(0, time.time() - t)
    if d < 1:
        return "Less than a second"
    if d < 60:
        return f"{int(d)} seconds"
    if d < 3600:
        return f"{int(d // 60)} minutes"
    return f"{int(d // 3600)} hours"


def status_text(st: Mapping[str, Any]) -> str:
    """A list row's ``Status``: ``Up 5 minutes``, ``Exited (3) 2 seconds ago``, ``Created``."""
    status = st["status"]
    if status == "running" and st.get("paused"):
        return f"Up {ago(st.get('started_at', ''))} (Paused)"
    if status == "running":
        return f"Up {ago(st.get('started_at', ''))}{health_suffix(st)}"
    if status == "restarting":
        return f"Restarting ({st.get('exit_code', 0)}) {ago(st.get('finished_at', ''))} ago"
    if status == "exited":
        return f"Exited ({st.get('exit_code', 0)}) {ago(st.get('finished_at', ''))} ago"
    if status == "dead":
        return "Dead"
    return "Created"


def health_suffix(st: Mapping[str, Any]) -> str:
    """`` (healthy)``, `` (unhealthy)``, `` (health: starting)`` after a running container's
    ``Up ...`` in ``docker ps``, as dockerd words it; empty without a health check."""
    status = (st.get("health") or {}).get("Status")
    if not status:
        return ""
    return " (health: starting)" if status == "starting" else f" ({status})"


def engine_bind(m: Mapping[str, Any]) -> bool:
    """A bind the engine made, not the user: a rootless container's device nodes and /sys, bound from
    the same host path (Docker lists only the user's mounts)."""
    dest = str(m["destination"])
    return m.get("source") == dest and (dest.startswith("/dev/") or dest == "/sys")


def container_row(client: Client, st: Mapping[str, Any]) -> dict[str, Any]:
    """A container's row in ``GET /containers/json`` (what ``docker ps`` prints)."""
    ports = []
    if st["status"] == "running":
        for p in st.get("ports") or []:
            ports.append({"IP": p["host_ip"], "PrivatePort": p["container_port"], "PublicPort": int(p["host_port"]),
                          "Type": p["proto"]})
    created = int(parse_time(st.get("created", "")))
    cmd = " ".join(bundle_config(client.runtime.dir / st["id"])["process"]["args"])
    status = st["status"] if st["status"] != "starting" else "created"
    if status == "running" and st.get("paused"):
        status = "paused"
    return {"Id": st["id"], "Names": ["/" + st["name"]], "Image": st.get("image_name", ""), "ImageID": st["image"],
            "Command": cmd, "Created": created, "Ports": ports, "Labels": st.get("labels") or {},
            "State": status, "Status": status_text(st), "HostConfig": {"NetworkMode": st.get("network", "none")},
            "NetworkSettings": {"Networks": network_settings(st)["Networks"]}, "Mounts": [],
            "SizeRw": 0, "SizeRootFs": 0}


def api_container_inspect(client: Client, cid: str) -> dict[str, Any]:
    """``GET /containers/ID/json``: the inspect document with the fields Docker's clients read
    besides (the ports asked for, restart policy, log config, attach flags)."""
    doc = container_inspect(client, cid)
    specs = [PortBinding.from_record(r) for r in client.runtime.state(cid).get("port_specs") or []]
    st = client.runtime.state(cid)
    doc["Config"]["ExposedPorts"] = {b.key: {} for b in specs} | {k: {} for k in st.get("exposed") or []} or None
    doc["HostConfig"]["PortBindings"] = port_bindings_doc(specs)
    mac = (st.get("host_config") or {}).get("MacAddress")
    if mac:
        doc["Config"]["MacAddress"] = mac
    doc["Config"].setdefault("AttachStdout", False)
    doc["Config"].setdefault("AttachStderr", False)
    return doc


def image_row(image: Image, tags: list[str], labels: Mapping[str, str]) -> dict[str, Any]:
    """An image's row in ``GET /images/json``, listing ``tags`` (those a filter kept)."""
    return {"Id": image.id, "ParentId": "", "RepoTags": tags or None, "RepoDigests": [],
            "Created": int(parse_time(image.config.get("created", "")) or 0), "Size": image.size,
            "SharedSize": -1, "VirtualSize": image.size, "Labels": labels or None, "Containers": -1}


def image_history(image: Image) -> list[dict[str, Any]]:
    """``GET /images/NAME/history``: newest first, the sizes of the layers the steps made."""
    hist = image.config.get("history") or []
    rows: list[dict[str, Any]] = []
    layer = len(image.layers) - 1
    for h in reversed(hist):
        size = 0
        if not h.get("empty_layer") and layer >= 0:
            size = int(image.layers[layer].get("size", 0))
            layer -= 1
        rows.append({"Id": image.id if not rows else "<missing>",
                     "Created": int(parse_time(h.get("created", "")) or 0),
                     "CreatedBy": h.get("created_by", ""), "Tags": image.familiar_tags if not rows else None,
                     "Size": size, "Comment": h.get("comment", "")})
    return rows


# -- and back: an Engine API create body as the Client's create arguments -----------------------
T = TypeVar("T")


def body_field(doc: Mapping[str, Any], key: str, kind: type[T], default: T) -> T:
    """``doc[key]`` if it is a ``kind`` (``default`` when absent or null).

    :raises InvalidArgumentError: in the words of Go's JSON decoder, as dockerd answers a body of
        the wrong shape
    """
    value = doc.get(key)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise InvalidArgumentError(f"json: cannot unmarshal {type(value).__name__} into field {key}")
    return value


def optional_body_field(doc: Mapping[str, Any], key: str, kind: type[T]) -> T | None:
    """As :func:`body_field`, None when absent or null."""
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, kind):
        raise InvalidArgumentError(f"json: cannot unmarshal {type(value).__name__} into field {key}")
    return value


class Confinement(TypedDict):
    """The confinement part of :class:`CreateOptions`."""

    cap_add: list[str]
    cap_drop: list[str]
    privileged: bool
    security_opt: list[str]
    devices: list[str]
    sysctls: dict[str, str]
    ulimits: list[str]
    shm_size: int | None


class HostModes(TypedDict):
    """The restart policy, groups, namespace modes and log config of :class:`CreateOptions`."""

    restart_policy: dict[str, Any] | None
    group_add: list[str]
    pid_mode: str
    uts_mode: str
    ipc_mode: str
    cgroupns_mode: str
    log_config: dict[str, Any] | None
    host_config: dict[str, Any]
    cpu_shares: int | None
    env_bare_unsets: bool
    links: list[str]
    extra_hosts: list[str]
    expose: list[str]


class CreateOptions(Confinement, HostModes):
    """``Containers.create``'s keyword arguments (but ``name``) that a create body sets."""

    entrypoint: list[str] | None
    environment: list[str]
    working_dir: str | None
    user: str | None
    hostname: str | None
    volumes: list[str]
    tmpfs: list[str]
    memory: int | None
    memory_swap: int | None
    pids_limit: int | None
    cpus: float | None
    network: str
    network_aliases: list[str]
    network_endpoint: dict[str, Any] | None
    ports: list[PortBinding]
    publish_all_ports: bool
    read_only: bool
    init: bool
    labels: dict[str, str]
    stop_signal: str | None
    stop_timeout: int | None
    auto_remove: bool
    stdin_open: bool
    healthcheck: dict[str, Any] | None
    volumes_from: list[str]


class CreateArguments(NamedTuple):
    """A create body read: the command, the keyword arguments, and the anonymous volumes to make
    first (``-v /data``: named here by a fresh ID, removed by ``rm -v``)."""

    command: list[str] | None
    options: CreateOptions
    anonymous_volumes: list[str]


def create_arguments(doc: Mapping[str, Any]) -> CreateArguments:
    """``POST /containers/create``'s body as ``containers.create`` arguments (``create_body``
    the other way).

    :raises InvalidArgumentError: a field of the wrong type or value (the confinement fields as
        dockerd checks them, see :func:`host_config_confinement`), or what the engine does not
        support (``container:NAME`` networking, an unknown mount type)
    """
    hc = body_field(doc, "HostConfig", dict, {})
    cmd = doc.get("Cmd")
    if isinstance(cmd, str):
        cmd = ["/bin/sh", "-c", cmd]
    if cmd is not None and (not isinstance(cmd, list) or not all(isinstance(c, str) for c in cmd)):
        raise InvalidArgumentError("json: cannot unmarshal Cmd: want a list of strings")
    entry = doc.get("Entrypoint")
    if isinstance(entry, str):
        entry = [entry]
    if entry is not None and (not isinstance(entry, list) or not all(isinstance(c, str) for c in entry)):
        raise InvalidArgumentError("json: cannot unmarshal Entrypoint: want a list of strings")
    env = body_field(doc, "Env", list, [])
    if not all(isinstance(e, str) for e in env):
        raise InvalidArgumentError("json: cannot unmarshal Env: want a list of strings")
    labels = body_field(doc, "Labels", dict, {})
    if not all(isinstance(v, str) for v in labels.values()):
        raise InvalidArgumentError("json: cannot unmarshal Labels: want string values")
    for key in ("User", "WorkingDir", "Hostname", "StopSignal"):
        optional_body_field(doc, key, str)
    stop_timeout = doc.get("StopTimeout")
    if stop_timeout is not None and (not isinstance(stop_timeout, int) or isinstance(stop_timeout, bool)):
        raise InvalidArgumentError("json: cannot unmarshal StopTimeout: want an integer")
    ports = PortBinding.from_api(body_field(hc, "PortBindings", dict, {}))
    anonymous: list[str] = []  # volumes made for this container only (-v /data): they go with rm -v

    def anon(target: str) -> str:
        name = os.urandom(32).hex()
        anonymous.append(name)
        return f"{name}:{target}"

    binds = [str(b) if ":" in str(b) else anon(str(b)) for b in body_field(hc, "Binds", list, [])]
    tmpfs_doc = body_field(hc, "Tmpfs", dict, {})
    if not all(isinstance(v, str) for v in tmpfs_doc.values()):
        raise InvalidArgumentError("json: cannot unmarshal Tmpfs: want string options")
    tmpfs = [f"{k}:{v}" if v else str(k) for k, v in tmpfs_doc.items()]
    for m in body_field(hc, "Mounts", list, []):
        if not isinstance(m, dict):
            raise InvalidArgumentError("invalid mount config")
        kind, src, dst = m.get("Type", "volume"), m.get("Source") or "", m.get("Target") or ""
        if kind == "tmpfs":
            topts: dict[str, Any] = m["TmpfsOptions"] if isinstance(m.get("TmpfsOptions"), dict) else {}
            extra = [*(["ro"] if m.get("ReadOnly") else []),
                     *([f"size={int(topts['SizeBytes'])}"] if topts.get("SizeBytes") else []),
                     *([f"mode={int(topts['Mode']):o}"] if topts.get("Mode") else [])]
            tmpfs.append(str(dst) + (":" + ",".join(extra) if extra else ""))
        elif kind in ("bind", "volume") and dst:
            vopts = m.get("VolumeOptions") if kind == "volume" else None
            mode = ",".join([*(["ro"] if m.get("ReadOnly") else []),
                             *(["nocopy"] if isinstance(vopts, dict) and vopts.get("NoCopy") else [])])
            if kind == "volume" and not src:
                binds.append(anon(str(dst)) + (f":{mode}" if mode else ""))
                continue
            binds.append(f"{src}:{dst}{':' + mode if mode else ''}")
        else:
            raise InvalidArgumentError(f"invalid mount config for type {kind!r}")
    targets = {b.split(":")[1] for b in binds if ":" in b} | {t.split(":")[0] for t in tmpfs}
    for path in body_field(doc, "Volumes", dict, {}):
        if str(path) not in targets:
            binds.append(anon(str(path)))
    volume_driver = body_field(hc, "VolumeDriver", str, "")
    if volume_driver not in ("", "local"):  # dockerd looks the driver up for each volume it makes
        for b in binds:
            if not b.startswith("/"):
                raise NotFoundError(f"create {b.split(':')[0]}: error looking up volume plugin {volume_driver}: "
                                    f'plugin "{volume_driver}" not found')
    mode = body_field(hc, "NetworkMode", str, "") or "bridge"
    if mode == "default":
        mode = "bridge"
    if mode.startswith("container:"):
        raise InvalidArgumentError("network mode container:NAME is not supported")
    aliases: list[str] = []
    endpoint: dict[str, Any] | None = None  # the joined network's fixed addresses, Links, DriverOpts
    eps = body_field(doc, "NetworkingConfig", dict, {}).get("EndpointsConfig") or {}
    if not isinstance(eps, dict):
        raise InvalidArgumentError("NetworkingConfig.EndpointsConfig must be an object of network: settings")
    if len(eps) > 1:  # dockerd's text (API < 1.44; later ones connect each)
        raise InvalidArgumentError(f"Container cannot be connected to network endpoints: {', '.join(map(str, eps))}")
    for net, ep in eps.items():
        # as dockerd: the network EndpointsConfig names is the one joined (NetworkMode's is not
        # joined besides it), except with the host and none modes, which join nothing
        if mode not in ("host", "none"):
            mode = "bridge" if net == "default" else str(net)  # the CLI names the default network so
        if isinstance(ep, dict) and net in (mode, "default"):
            aliases += [str(a) for a in ep.get("Aliases") or []]
            endpoint = {k: ep[k] for k in ("IPAMConfig", "Links", "DriverOpts") if ep.get(k)} or None
    cpus = None
    if hc.get("NanoCpus"):
        cpus = int(hc["NanoCpus"]) / 1e9
    elif hc.get("CpuQuota") and hc.get("CpuPeriod"):
        cpus = int(hc["CpuQuota"]) / int(hc["CpuPeriod"])
    confinement = host_config_confinement(hc)
    healthcheck = None
    if doc.get("Healthcheck") is not None:
        from pytest_pods.engine.runtime.health import check_config  # lazy: only for a health check

        healthcheck = dict(check_config(body_field(doc, "Healthcheck", dict, {})))
    options: CreateOptions = {
        "entrypoint": entry, "environment": env, "working_dir": doc.get("WorkingDir") or None,
        "user": doc.get("User") or None, "hostname": doc.get("Hostname") or None,
        "volumes": binds, "tmpfs": tmpfs, "memory": hc.get("Memory") or None,
        "memory_swap": hc.get("MemorySwap") or None, "pids_limit": hc.get("PidsLimit") or None, "cpus": cpus,
        "network": mode, "network_aliases": aliases, "network_endpoint": endpoint, "ports": ports,
        "publish_all_ports": bool(hc.get("PublishAllPorts")), "read_only": bool(hc.get("ReadonlyRootfs")),
        "init": bool(hc.get("Init")), "labels": {str(k): str(v) for k, v in labels.items()},
        "stop_signal": doc.get("StopSignal") or None,
        "stop_timeout": stop_timeout if isinstance(stop_timeout, int) else None,
        "auto_remove": bool(hc.get("AutoRemove")), "stdin_open": bool(doc.get("OpenStdin")),
        "healthcheck": healthcheck, "volumes_from": _strings(hc, "VolumesFrom"), **confinement,
        **host_config_modes(doc, hc),
    }
    return CreateArguments(cmd, options, anonymous)


KEPT_HOST_CONFIG = ("CpuShares", "CpusetCpus", "CpusetMems", "CpuPeriod", "CpuQuota", "VolumeDriver",
                    "MemorySwappiness", "MemoryReservation", "DeviceCgroupRules", "OomScoreAdj", "OomKillDisable",
                    "BlkioWeight", "CgroupParent", "Dns", "DnsOptions", "DnsSearch", "ConsoleSize")
"""HostConfig fields a create body may carry that the engine keeps for inspect as given."""


def host_config_modes(doc: Mapping[str, Any], hc: Mapping[str, Any]) -> HostModes:
    """A create body's RestartPolicy, GroupAdd, namespace modes, LogConfig and the fields kept
    for inspect (``KEPT_HOST_CONFIG``, Runtime, Isolation, Config.MacAddress), as
    ``containers.create`` arguments.

    :raises InvalidArgumentError: a runtime or isolation the engine does not have, in dockerd's words
    """
    runtime = body_field(hc, "Runtime", str, "")
    if runtime not in ("", "runc"):
        raise InvalidArgumentError(f"Unknown runtime specified {runtime}")
    isolation = body_field(hc, "Isolation", str, "")
    if isolation not in ("", "default"):
        raise InvalidArgumentError(f"Invalid isolation: '{isolation}' - linux only supports 'default'")
    policy = optional_body_field(hc, "RestartPolicy", dict)
    log_config = optional_body_field(hc, "LogConfig", dict)
    kept = {k: hc[k] for k in KEPT_HOST_CONFIG if hc.get(k) not in (None, "", 0, [], {})}
    if isolation:
        kept["Isolation"] = isolation
    mac = body_field(doc, "MacAddress", str, "")
    if mac:
        kept["MacAddress"] = mac  # Config.MacAddress (API < 1.44); kept, not applied
    return {"restart_policy": policy or None,
            "group_add": _strings(hc, "GroupAdd"), "pid_mode": body_field(hc, "PidMode", str, ""),
            "uts_mode": body_field(hc, "UTSMode", str, ""), "ipc_mode": body_field(hc, "IpcMode", str, ""),
            "cgroupns_mode": body_field(hc, "CgroupnsMode", str, ""),
            "log_config": log_config if log_config and (log_config.get("Type") or log_config.get("Config")) else None,
            "host_config": kept, "cpu_shares": body_field(hc, "CpuShares", int, 0) or None,
            "env_bare_unsets": True, "links": _strings(hc, "Links"), "extra_hosts": _strings(hc, "ExtraHosts"),
            "expose": [str(k) for k in body_field(doc, "ExposedPorts", dict, {})]}


def split_endpoints(doc: dict[str, Any], version: tuple[int, int]) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """From API 1.44 a create body's ``EndpointsConfig`` may name several networks, and the
    container joins each (before, dockerd refuses that: see :func:`create_arguments`). The body
    with the one entry the create joins (NetworkMode's, else the first), and the others to
    connect after the create, as (network, EndpointSettings)."""
    networking = doc.get("NetworkingConfig")
    if not isinstance(networking, dict):
        return doc, []
    eps = networking.get("EndpointsConfig")
    if version < (1, 44) or not isinstance(eps, dict) or len(eps) < 2:
        return doc, []
    hc = doc.get("HostConfig") if isinstance(doc.get("HostConfig"), dict) else {}
    mode = str((hc or {}).get("NetworkMode") or "")
    first = mode if mode in eps else next(iter(eps))
    rest = [(str(k), v if isinstance(v, dict) else {}) for k, v in eps.items() if k != first]
    return {**doc, "NetworkingConfig": {**networking, "EndpointsConfig": {first: eps[first]}}}, rest


def _strings(hc: Mapping[str, Any], key: str) -> list[str]:
    items = body_field(hc, key, list, [])
    if not all(isinstance(i, str) for i in items):
        raise InvalidArgumentError(f"json: cannot unmarshal {key}: want a list of strings")
    return list(items)


def host_config_confinement(hc: Mapping[str, Any]) -> Confinement:
    """HostConfig's Privileged, CapAdd, CapDrop, SecurityOpt, Devices, Sysctls, Ulimits and
    ShmSize as ``containers.create`` arguments (what needs the host, a device node or a
    namespaced sysctl, the engine checks at create).

    :raises InvalidArgumentError: a field of the wrong shape or value, in dockerd's words
    """
    privileged = hc.get("Privileged")
    if privileged is not None and not isinstance(privileged, bool):
        raise InvalidArgumentError("json: cannot unmarshal Privileged: want a boolean")
    security = _strings(hc, "SecurityOpt")
    for opt in security:
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")
        if key == "seccomp" and value not in ("unconfined", "builtin") and not value.lstrip().startswith("{"):
            # dockerd takes the profile's JSON (the docker CLI reads the file); a daemon reads no client paths
            bad = value.lstrip()[:1] or "end of input"
            raise InvalidArgumentError(f"decoding seccomp profile failed: invalid character {bad!r} looking for "
                                       "beginning of value")
    devices: list[str] = []
    for d in body_field(hc, "Devices", list, []):
        if not isinstance(d, dict) or not all(isinstance(v, str) for v in d.values()):
            raise InvalidArgumentError("json: cannot unmarshal Devices: want a list of "
                                       "{PathOnHost, PathInContainer, CgroupPermissions}")
        devices.append(d)  # type: ignore[arg-type]  # checked by device_list below
    sysctls = body_field(hc, "Sysctls", dict, {})
    if not all(isinstance(v, str) for v in sysctls.values()):
        raise InvalidArgumentError("json: cannot unmarshal Sysctls: want string values")
    ulimits = body_field(hc, "Ulimits", list, [])
    for u in ulimits:
        if not isinstance(u, dict) or not isinstance(u.get("Name"), str) or not all(
                isinstance(u.get(k, 0), int) and not isinstance(u.get(k), bool) for k in ("Soft", "Hard")):
            raise InvalidArgumentError("json: cannot unmarshal Ulimits: want a list of {Name, Soft, Hard}")
    shm = hc.get("ShmSize")
    if shm is not None and (not isinstance(shm, int) or isinstance(shm, bool)):
        raise InvalidArgumentError("json: cannot unmarshal ShmSize: want an integer")
    if shm is not None and shm < 0:
        raise InvalidArgumentError("SHM size can not be less than 0")
    return {
        "cap_add": _strings(hc, "CapAdd"), "cap_drop": _strings(hc, "CapDrop"), "privileged": bool(privileged),
        "security_opt": security_opts(security), "devices": device_list(devices),
        "sysctls": sysctl_map(sysctls),
        "ulimits": ulimit_list([{"Name": u["Name"], "Soft": u.get("Soft", 0), "Hard": u.get("Hard", 0)}
                                for u in ulimits]),
        "shm_size": shm or None,
    }
