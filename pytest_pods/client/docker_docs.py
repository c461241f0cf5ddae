"""Docker's JSON documents, both ways: what ``inspect`` prints for containers, images and
networks (the local engine's records in Docker's shape), and the Engine API's create body that
the remote client sends (docker-py's ``containers.create`` arguments in Docker's shape).

The daemon serves these documents; the CLI prints them; the remote client writes create bodies.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_pods.client.contract import api_port_fields, parse_bytes, parse_reference
from pytest_pods.engine.image.store import Image, Store, digest_hex
from pytest_pods.engine.runtime.volumes import Volumes

if TYPE_CHECKING:
    from pytest_pods.client.local import Client

__all__ = ["CREATE_KEYS", "container_inspect", "create_body", "docker_config", "image_inspect", "mount_doc",
           "network_inspect", "network_settings", "short"]


def short(digest: str) -> str:
    """The 12 hex digits Docker shows for an ID (``sha256:`` dropped)."""
    return digest_hex(digest)[:12]


# -- inspect documents, in Docker's shape ---------------------------------------------------------
def network_inspect(client: Client, ref: str) -> dict[str, Any]:
    nets = client.runtime.networks
    rec = nets.get(ref)
    containers = {e["cid"]: {"Name": e["name"], "IPv4Address": f"{e['ip']}/{e['prefix']}",
                             "Aliases": e["aliases"]} for e in nets.endpoints(rec)}
    return {
        "Name": rec["name"], "Id": rec["id"], "Driver": "bridge", "Scope": "local", "Internal": rec["internal"],
        "Created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(rec["created"])),
        "IPAM": {"Driver": "default", "Config": [{"Subnet": rec["subnet"], "Gateway": rec["gateway"]}]},
        "Options": {"com.docker.network.bridge.name": rec["bridge"]}, "Labels": rec.get("labels") or {},
        "Containers": containers,
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


def container_inspect(client: Client, cid: str) -> dict[str, Any]:
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
        "Mounts": [mount_doc(client, m) for m in cfg["mounts"]
                   if m["type"] == "bind" and not m["destination"].startswith("/etc/")],
        "Config": {
            "Hostname": cfg.get("hostname", ""), "User": st.get("user", ""), "Env": proc["env"],
            "Cmd": proc["args"], "Image": st.get("image_name", ""), "WorkingDir": proc["cwd"],
            "Labels": st.get("labels") or {}, "StopSignal": signal.Signals(st.get("stop_signal", 15)).name,
            "StopTimeout": st.get("stop_timeout"), "OpenStdin": bool(st.get("stdin_open")), "Tty": False,
        },
        "NetworkSettings": network_settings(st),
    }


def mount_doc(client: Client, m: Mapping[str, Any]) -> dict[str, Any]:
    """A bind mount as docker shows it: a named or anonymous volume's as Type "volume"."""
    rw = "ro" not in m.get("options", [])
    name = Volumes(client.root).name_of(m["source"])
    if name:
        return {"Type": "volume", "Name": name, "Source": m["source"], "Destination": m["destination"],
                "Driver": "local", "Mode": "", "RW": rw, "Propagation": ""}
    return {"Type": "bind", "Source": m["source"], "Destination": m["destination"], "Mode": "", "RW": rw,
            "Propagation": "rprivate"}


def network_settings(st: Mapping[str, Any]) -> dict[str, Any]:
    """A container state's ``NetworkSettings``: its networks (addresses while it runs) and ports."""
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


# -- the other way: docker-py's create arguments as an Engine API create body -------------------
CREATE_KEYS = frozenset({
    "environment", "working_dir", "user", "hostname", "volumes", "tmpfs", "memory", "memory_swap",
    "pids_limit", "cpus", "network", "network_aliases", "ports", "publish_all_ports", "read_only",
    "init", "labels", "stop_signal", "stop_timeout", "auto_remove", "no_new_privileges", "cap_add",
    "cap_drop", "stdin_open", "entrypoint", "name"})


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
        "Tmpfs": {t.split(":")[0]: (t.split(":", 1)[1] if ":" in t else "") for t in kw.get("tmpfs") or []} or None,
        "Memory": parse_bytes(kw["memory"]) if kw.get("memory") else 0,
        "PidsLimit": kw.get("pids_limit"), "NanoCpus": int(kw["cpus"] * 1e9) if kw.get("cpus") else 0,
        "NetworkMode": network, "PortBindings": bindings, "PublishAllPorts": bool(kw.get("publish_all_ports")),
        "ReadonlyRootfs": bool(kw.get("read_only")), "Init": bool(kw.get("init")),
        "AutoRemove": bool(kw.get("auto_remove")), "CapAdd": list(kw.get("cap_add") or []) or None,
        "CapDrop": list(kw.get("cap_drop") or []) or None,
        "SecurityOpt": None if kw.get("no_new_privileges", True) else ["no-new-privileges=false"],
    }
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
    if kw.get("network_aliases"):
        body["NetworkingConfig"] = {"EndpointsConfig": {network: {"Aliases": list(kw["network_aliases"])}}}
    return body
