"""Volume routes: list, create, inspect, remove, prune (named and anonymous local volumes)."""

from __future__ import annotations

from pytest_pods.client.docker_docs import body_field
from pytest_pods.client.local import Client
from pytest_pods.daemon.filters import labels_match, parse_filters
from pytest_pods.daemon.http import Request
from pytest_pods.daemon.router import Route, query_bool, route


class VolumesRouter:
    def __init__(self, client: Client) -> None:
        self.client = client

    def routes(self) -> list[Route]:
        return [
            route("GET", r"/volumes", self.volume_list),
            route("POST", r"/volumes/create", self.volume_create),
            route("POST", r"/volumes/prune", self.volume_prune),
            route("GET", r"/volumes/(?P<name>[^/]+)", self.volume_inspect),
            route("DELETE", r"/volumes/(?P<name>[^/]+)", self.volume_remove),
        ]

    def volume_list(self, req: Request) -> None:
        filters = parse_filters(req)
        vols = [v for v in self.client.volumes.list()
                if labels_match(v.get("Labels") or {}, filters.get("label", []))
                and (not filters.get("name") or any(n in v["Name"] for n in filters["name"]))]
        req.send_json({"Volumes": vols, "Warnings": []})

    def volume_create(self, req: Request) -> None:
        doc = req.json()
        name = body_field(doc, "Name", str, "") or None
        labels = {str(k): str(v) for k, v in body_field(doc, "Labels", dict, {}).items()}
        req.send_json(self.client.volumes.create(name, labels), 201)

    def volume_inspect(self, req: Request, name: str) -> None:
        req.send_json(self.client.volumes.get(name))

    def volume_remove(self, req: Request, name: str) -> None:
        self.client.volumes.remove(name, force=query_bool(req.query.get("force")))
        req.send(204)

    def volume_prune(self, req: Request) -> None:
        req.send_json({"VolumesDeleted": [], "SpaceReclaimed": 0})
