"""System routes: ping, version, info, disk usage, events, and registry login."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

from pytest_pods.client.local import Client
from pytest_pods.daemon.containers import mem_total
from pytest_pods.daemon.filters import event_matches, parse_filters
from pytest_pods.daemon.http import Request
from pytest_pods.daemon.router import API_VERSION, ENGINE_VERSION, MIN_API_VERSION, Route, query_float, route
from pytest_pods.daemon.streams import peer_closed
from pytest_pods.errors import HTTPError, PodsError

#: dockerd's texts (daemon/cluster/errors.go errNoSwarm; cluster.go errNoManager, no swarm node)
NO_SWARM = "This node is not part of a swarm"
NOT_A_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this '
                 "node to swarm and try again.")


class SystemRouter:
    def __init__(self, client: Client) -> None:
        self.client = client

    def routes(self) -> list[Route]:
        return [
            route("GET|HEAD", r"/_ping", self.ping),
            route("GET", r"/version", self.version),
            route("GET", r"/info", self.info),
            route("GET", r"/events", self.events_stream),
            route("POST", r"/auth", self.auth),
            route("GET", r"/system/df", self.system_df),
            # no swarm mode: dockerd's answers on a node that is in no swarm (issue 16; clients
            # call leave in teardown)
            route("POST", r"/swarm/leave", self.swarm_leave),
            route("GET", r"/swarm(?:/unlockkey)?", self.not_a_manager),
            route("POST", r"/swarm/update", self.not_a_manager),
            route("GET|POST|DELETE", r"/(?:nodes|services|tasks|secrets|configs)(?:/.*)?", self.not_a_manager),
        ]

    def swarm_leave(self, req: Request) -> None:
        raise HTTPError(503, NO_SWARM)

    def not_a_manager(self, req: Request) -> None:
        raise HTTPError(503, NOT_A_MANAGER)

    def ping(self, req: Request) -> None:
        req.send(200, b"OK", "text/plain; charset=utf-8", {"Cache-Control": "no-cache, no-store, must-revalidate",
                                                         "Pragma": "no-cache"})

    def version(self, req: Request) -> None:
        u = os.uname()
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(u.machine, u.machine)
        req.send_json({
            "Platform": {"Name": "pytest-pods"}, "Version": ENGINE_VERSION, "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION, "GitCommit": "pods", "GoVersion": "n/a (Python)", "Os": "linux",
            "Arch": arch, "KernelVersion": u.release, "BuildTime": "",
            # the docker CLI prints the Engine component's Details, not the top-level fields
            "Components": [{"Name": "Engine", "Version": ENGINE_VERSION, "Details": {
                "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux", "Arch": arch,
                "KernelVersion": u.release, "GitCommit": "pods", "GoVersion": "n/a (Python)", "BuildTime": "",
                "Experimental": "false"}}],
        })

    def info(self, req: Request) -> None:
        engine = self.client.info()
        u = os.uname()
        mem = mem_total()
        req.send_json({
            "ID": "pods-" + engine["root"].replace("/", "-").strip("-"), "Name": u.nodename,
            "Containers": engine["containers"], "ContainersRunning": engine["containers_running"],
            "ContainersPaused": 0, "ContainersStopped": engine["containers_stopped"], "Images": engine["images"],
            "Driver": "overlay2", "DriverStatus": [], "DockerRootDir": engine["root"],
            "OperatingSystem": "pytest-pods", "OSType": "linux", "Architecture": u.machine, "KernelVersion": u.release,
            "NCPU": os.cpu_count(), "MemTotal": mem, "ServerVersion": ENGINE_VERSION, "CgroupDriver": "cgroupfs",
            "CgroupVersion": str(engine["cgroup_version"]), "DefaultRuntime": "pods",
            "Runtimes": {"pods": {"path": "pods"}},
            "SecurityOptions": ["name=no-new-privileges"], "Swarm": {"LocalNodeState": "inactive"},
            "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": []},
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Log": ["json-file"]},
            "Labels": [], "ExperimentalBuild": False, "LiveRestoreEnabled": True, "Debug": False,
            "MemoryLimit": True, "SwapLimit": True, "CpuCfsPeriod": True, "CpuCfsQuota": True,
            "IPv4Forwarding": True, "LoggingDriver": "json-file", "Warnings": [],
        })

    def system_df(self, req: Request) -> None:
        imgs = self.client.images.list()
        images = [{"Id": i.id, "RepoTags": i.familiar_tags, "Size": i.size, "SharedSize": 0, "Containers": 0,
                   "Created": 0, "ParentId": "", "RepoDigests": [], "Labels": {}} for i in imgs]
        req.send_json({"LayersSize": sum(i.size for i in imgs), "Images": images, "Containers": [],
                       "Volumes": [], "BuildCache": []})

    def events_stream(self, req: Request) -> None:
        """``GET /events``: the engine's journal (what every process using this root did: this
        daemon, the CLI, plugin sessions, the containers' monitors), from ``since`` (else from
        now), until ``until`` (else until the client goes)."""
        # the CLI turns --since/--until (10m, RFC 3339) into unix seconds ("1733000000.000000000")
        since = query_float(req.query.get("since")) if req.query.get("since") else None
        until = query_float(req.query.get("until")) if req.query.get("until") else None
        filters = parse_filters(req)
        follow = until is None or until > time.time()

        def lines() -> Iterator[bytes]:
            for ev in self.client.events(since, until, follow=follow, stop=lambda: peer_closed(req.conn)):
                if event_matches(ev, filters):
                    yield json.dumps(ev).encode() + b"\n"

        req.stream(lines())

    def auth(self, req: Request) -> None:
        doc = req.json_object()
        address = str(doc.get("serveraddress") or "https://index.docker.io/v1/")
        host = urlsplit(address).netloc if "://" in address else address.split("/", 1)[0]
        try:
            self.client.login(host, str(doc.get("username", "")), str(doc.get("password", "")),
                              insecure=host.startswith(("127.", "localhost")))
        except PodsError as exc:
            raise HTTPError(401, str(exc)) from None
        except OSError as exc:
            raise HTTPError(500, f"login {host}: {exc}") from None
        req.send_json({"Status": "Login Succeeded", "IdentityToken": ""})
