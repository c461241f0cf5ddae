"""Volume routes: list, create, inspect, remove, prune (named and anonymous local volumes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_pods.client.docker_docs import body_field
from pytest_pods.client.local import Client
from pytest_pods.daemon.filters import labels_match, parse_filters
from pytest_pods.daemon.http import Request
from pytest_pods.daemon.networks import prune_labels_match
from pytest_pods.daemon.router import Route, api_version, query_bool, route
from pytest_pods.errors import HTTPError

#: the label dockerd puts on a volume it named itself (``POST /volumes/create`` without a Name)
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
#: the options dockerd's ``local`` driver takes (a mount: ``type``, ``device``, ``o``; ``size`` on some)
LOCAL_OPTIONS = ("type", "device", "o", "size")


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
        """dockerd's filters: ``name``, ``label``, ``driver``, ``dangling`` (no container mounts it)."""
        filters = parse_filters(req)
        unknown = set(filters) - {"dangling", "driver", "label", "name"}
        if unknown:
            raise HTTPError(400, f"Invalid filter '{sorted(unknown)[0]}'")
        vols = [v for v in self.client.volumes.list()
                if labels_match(v.get("Labels") or {}, filters.get("label", []))
                and (not filters.get("name") or any(n in v["Name"] for n in filters["name"]))
                and (not filters.get("driver") or v["Driver"] in filters["driver"])]
        if filters.get("dangling"):
            want = filters["dangling"][-1].lower() in ("1", "true")
            used = {str(b).split(":")[0] for st in self.client.runtime.list(all=True) for b in st.get("binds") or []}
            vols = [v for v in vols if (v["Mountpoint"] not in used) == want]
        req.send_json({"Volumes": [shown(v) for v in vols], "Warnings": None})

    def volume_create(self, req: Request) -> None:
        """dockerd's checks and texts: a driver other than ``local`` is a plugin that is not
        there (404), an option the local driver does not know a 400."""
        doc = req.json()
        name = body_field(doc, "Name", str, "") or None
        driver = body_field(doc, "Driver", str, "local") or "local"
        who = name or "volume"
        if driver != "local":
            raise HTTPError(404, f'create {who}: error looking up volume plugin {driver}: plugin "{driver}" not found')
        for key, value in body_field(doc, "DriverOpts", dict, {}).items():
            if key not in LOCAL_OPTIONS:
                raise HTTPError(400, f'create {who}: invalid option: "{key}"')
            raise HTTPError(400, f"create {who}: local driver option {key}={value} (a mount: type, device, o) is "
                                 "not supported by this engine: use a bind mount of the directory instead")
        labels = {str(k): str(v) for k, v in body_field(doc, "Labels", dict, {}).items()}
        if name is None:  # dockerd (23+) labels a volume it names itself anonymous: a default prune takes it
            labels.setdefault(ANONYMOUS_LABEL, "")
        req.send_json(shown(self.client.volumes.create(name, labels)), 201)

    def volume_inspect(self, req: Request, name: str) -> None:
        req.send_json(shown(self.client.volumes.get(name)))

    def volume_remove(self, req: Request, name: str) -> None:
        self.client.volumes.remove(name, force=query_bool(req.query.get("force")))
        req.send(204)

    def volume_prune(self, req: Request) -> None:
        """Remove the volumes no container mounts: from API 1.42 only anonymous ones unless the
        ``all`` filter is true, before it every one (dockerd's semantics by version); filters
        ``label``/``label!``. ``SpaceReclaimed``: the bytes their files held."""
        filters = parse_filters(req)
        unknown = set(filters) - {"label", "label!", "all"}
        if unknown:
            raise HTTPError(400, f"Invalid filter '{sorted(unknown)[0]}'")
        every = api_version(req) < (1, 42)  # older clients: every unused volume, whatever ``all`` says
        if filters.get("all") and not every:
            value = filters["all"][-1].lower()
            if value not in ("1", "true", "0", "false"):
                raise HTTPError(400, f"Invalid filter 'all={filters['all'][-1]}'")
            every = value in ("1", "true")

        def match(v: Mapping[str, Any]) -> bool:
            return prune_labels_match(v.get("Labels") or {}, filters)

        deleted, space = self.client.volumes.prune(anonymous_only=not every, match=match)
        if not every:  # and those made without a name through this API (labelled so; not rm -v's to take)
            more, more_space = self.client.volumes.prune(
                anonymous_only=False, match=lambda v: ANONYMOUS_LABEL in (v.get("Labels") or {}) and match(v))
            deleted, space = deleted + more, space + more_space
        req.send_json({"VolumesDeleted": deleted or None, "SpaceReclaimed": space})


def shown(volume: dict[str, Any]) -> dict[str, Any]:
    """A volume as dockerd shows it: ``Options`` null when none were given."""
    return {**volume, "Options": volume.get("Options") or None}
