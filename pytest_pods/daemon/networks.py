"""Network routes: list, inspect, create, connect, disconnect, remove, prune. ``bridge`` is the
engine's default network; ``host`` and ``none`` are listed as the modes they are. The GET routes
make nothing (issue 14): ``bridge`` is listed from its definition until a container needs it."""

from __future__ import annotations

import contextlib

from pytest_pods.client.docker_docs import body_field, optional_body_field
from pytest_pods.client.local import Client
from pytest_pods.daemon.filters import labels_match, parse_filters
from pytest_pods.daemon.http import Request
from pytest_pods.daemon.router import Route, json_object, route
from pytest_pods.errors import ConflictError, HTTPError, NotFoundError

PREDEFINED = ("host", "none", "bridge")


class NetworksRouter:
    def __init__(self, client: Client) -> None:
        self.client = client

    def routes(self) -> list[Route]:
        return [
            route("GET", r"/networks", self.network_list),
            route("POST", r"/networks/create", self.network_create),
            route("POST", r"/networks/prune", self.network_prune),
            route("GET", r"/networks/(?P<ref>[^/]+)", self.network_inspect),
            route("POST", r"/networks/(?P<ref>[^/]+)/connect", self.network_connect),
            route("POST", r"/networks/(?P<ref>[^/]+)/disconnect", self.network_disconnect),
            route("DELETE", r"/networks/(?P<ref>[^/]+)", self.network_remove),
        ]

    def network_list(self, req: Request) -> None:
        filters = parse_filters(req)
        out = []
        for n in self.client.networks.list():
            if filters.get("name") and not any(f in n["Name"] for f in filters["name"]):
                continue
            if filters.get("id") and not any(n["Id"].startswith(f) for f in filters["id"]):
                continue
            if not labels_match(n.get("Labels") or {}, filters.get("label", [])):
                continue
            out.append(n)
        for name in ("host", "none"):
            if not filters or (filters.get("name") and name in filters["name"]):
                out.append({"Name": name, "Id": name, "Driver": "host" if name == "host" else "null",
                            "Scope": "local", "Internal": False, "IPAM": {"Driver": "default", "Config": []},
                            "Containers": {}, "Options": {}, "Labels": {}})
        req.send_json(out)

    def network_inspect(self, req: Request, ref: str) -> None:
        try:
            req.send_json(self.client.networks.get(ref))
        except NotFoundError:
            raise HTTPError(404, f"network {ref} not found") from None

    def network_create(self, req: Request) -> None:
        doc = json_object(req, "network")
        name = body_field(doc, "Name", str, "")
        if not name:
            raise HTTPError(400, "network name is required")
        driver = body_field(doc, "Driver", str, "bridge") or "bridge"
        if driver != "bridge":
            raise HTTPError(400, f"network driver {driver!r} is not supported (bridge only)")
        with contextlib.suppress(NotFoundError):
            self.client.networks.get(name)
            raise HTTPError(409, f"network with name {name} already exists")
        ipam = body_field(doc, "IPAM", dict, {})
        configs = body_field(ipam, "Config", list, [])
        if not all(isinstance(c, dict) for c in configs):
            raise HTTPError(400, "json: cannot unmarshal IPAM.Config: want a list of objects")
        subnet = optional_body_field(configs[0], "Subnet", str) if configs else None
        labels = {str(k): str(v) for k, v in body_field(doc, "Labels", dict, {}).items()}
        rec = self.client.networks.create(name, subnet=subnet, internal=bool(doc.get("Internal")), labels=labels)
        req.send_json({"Id": rec["id"], "Warning": ""}, 201)

    def network_connect(self, req: Request, ref: str) -> None:
        doc = req.json_object()
        ctr = body_field(doc, "Container", str, "")
        if not ctr:
            raise HTTPError(400, "no container given")
        aliases = body_field(body_field(doc, "EndpointConfig", dict, {}), "Aliases", list, [])
        self.client.networks.connect(ref, ctr, [str(a) for a in aliases])
        req.send(200, b"", "text/plain")

    def network_disconnect(self, req: Request, ref: str) -> None:
        doc = req.json_object()
        ctr = body_field(doc, "Container", str, "")
        if not ctr:
            raise HTTPError(400, "no container given")
        self.client.networks.disconnect(ref, ctr)
        req.send(200, b"", "text/plain")

    def network_remove(self, req: Request, ref: str) -> None:
        if ref in PREDEFINED:
            raise HTTPError(403, f"{ref} is a pre-defined network and cannot be removed")
        self.client.networks.remove(ref)
        req.send(204)

    def network_prune(self, req: Request) -> None:
        """User networks no running container uses (with the ``label`` filter: only those)."""
        filters = parse_filters(req)
        deleted = []
        for n in self.client.networks.list():
            if n["Name"] in PREDEFINED or not labels_match(n.get("Labels") or {}, filters.get("label", [])):
                continue
            try:
                self.client.networks.remove(n["Id"])
            except (ConflictError, NotFoundError):
                continue  # in use (or removed meanwhile by another client)
            deleted.append(n["Name"])
        req.send_json({"NetworksDeleted": deleted})
