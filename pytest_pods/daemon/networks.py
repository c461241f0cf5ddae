"""Network routes: list, inspect, create, connect, disconnect, remove, prune. ``bridge`` is the
engine's default network; ``host`` and ``none`` are listed as the modes they are. The GET routes
make nothing (issue 14): ``bridge`` is listed from its definition until a container needs it."""

from __future__ import annotations

import calendar
import contextlib
import re
import time
from typing import Any

from pytest_pods.client.docker_docs import body_field, parse_time
from pytest_pods.client.local import Client
from pytest_pods.daemon.filters import Filters, labels_match, parse_filters
from pytest_pods.daemon.http import Request
from pytest_pods.daemon.router import Route, json_object, route
from pytest_pods.errors import ConflictError, HTTPError, InvalidArgumentError, NotFoundError

PREDEFINED = ("host", "none", "bridge")
#: drivers dockerd knows but this engine does not make (an unknown one is a missing plugin)
KNOWN_DRIVERS = ("host", "null", "overlay", "macvlan", "ipvlan")


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
        unknown = set(filters) - {"dangling", "driver", "id", "label", "name", "scope", "type"}
        if unknown:
            raise HTTPError(400, f"Invalid filter '{sorted(unknown)[0]}'")
        out = []
        for n in [*self.client.networks.list(), *(special(name) for name in ("host", "none"))]:
            if filters.get("name") and not any(f in n["Name"] for f in filters["name"]):
                continue
            if filters.get("id") and not any(n["Id"].startswith(f) for f in filters["id"]):
                continue
            if not labels_match(n.get("Labels") or {}, filters.get("label", [])):
                continue
            if filters.get("driver") and n["Driver"] not in filters["driver"]:
                continue
            if filters.get("type") and ("builtin" if n["Name"] in PREDEFINED else "custom") not in filters["type"]:
                continue
            if filters.get("scope") and "local" not in filters["scope"]:
                continue
            if filters.get("dangling") and (filters["dangling"][-1].lower() in ("1", "true")) != (
                    n["Name"] not in PREDEFINED and not n["Containers"]):
                continue
            out.append({**n, "Containers": {}})  # as dockerd: only inspect lists them (docker-py's greedy=True)
        req.send_json(out)

    def network_inspect(self, req: Request, ref: str) -> None:
        if ref in ("host", "none"):
            req.send_json(special(ref))
            return
        try:
            req.send_json(self.client.networks.get(ref))
        except NotFoundError:
            raise HTTPError(404, f"network {ref} not found") from None

    def network_create(self, req: Request) -> None:
        """dockerd's checks and texts: a name is required, ``bridge``/``host``/``none`` are
        predefined (403), a name taken is a 409, an unknown driver a missing plugin (404)."""
        doc = json_object(req, "network")
        name = body_field(doc, "Name", str, "")
        if not name:
            raise HTTPError(400, "invalid name: network name is required")
        if name in PREDEFINED:
            raise HTTPError(403, f"operation is not permitted on predefined {name} network ")
        driver = body_field(doc, "Driver", str, "bridge") or "bridge"
        if driver != "bridge":
            if driver in KNOWN_DRIVERS:
                raise HTTPError(400, f"network driver {driver!r} is not supported by this engine (bridge only)")
            raise HTTPError(404, f'plugin "{driver}" not found')
        with contextlib.suppress(NotFoundError):
            if self.client.networks.get(name)["Name"] == name:
                raise HTTPError(409, f"network with name {name} already exists")
        ipam = body_field(doc, "IPAM", dict, {})
        ipam_driver = body_field(ipam, "Driver", str, "default") or "default"
        if ipam_driver != "default":
            raise HTTPError(404, f'plugin "{ipam_driver}" not found')
        configs = body_field(ipam, "Config", list, [])
        ipam_options = body_field(ipam, "Options", dict, {}) or None
        labels = {str(k): str(v) for k, v in body_field(doc, "Labels", dict, {}).items()}
        options = {str(k): str(v) for k, v in body_field(doc, "Options", dict, {}).items()}
        try:
            rec = self.client.networks.create(
                name, internal=bool(doc.get("Internal")), labels=labels, ipam_config=configs,
                ipam_options={str(k): str(v) for k, v in ipam_options.items()} if ipam_options else None,
                enable_ipv6=bool(doc.get("EnableIPv6")), options=options, attachable=bool(doc.get("Attachable")))
        except ConflictError as exc:
            if "overlaps" in str(exc):  # dockerd: 403 "Pool overlaps with other one on this address space"
                raise HTTPError(403, str(exc)) from None
            raise
        except InvalidArgumentError as exc:
            if "must belong to the master pool" in str(exc):
                raise HTTPError(403, str(exc)) from None
            raise
        req.send_json({"Id": rec["id"], "Warning": ""}, 201)

    def network_connect(self, req: Request, ref: str) -> None:
        doc = req.json_object()
        ctr = body_field(doc, "Container", str, "")
        if not ctr:
            raise HTTPError(400, "no container given")
        epc = body_field(doc, "EndpointConfig", dict, {})
        aliases = body_field(epc, "Aliases", list, [])
        kept = {k: epc[k] for k in ("IPAMConfig", "Links", "DriverOpts", "MacAddress") if epc.get(k)}
        try:
            self.client.networks.connect(ref, ctr, [str(a) for a in aliases], kept or None)
        except ConflictError as exc:
            if "already exists in network" in str(exc):  # dockerd: 403 for an endpoint that is there
                raise HTTPError(403, str(exc)) from None
            raise
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
        """User networks no running container uses (filters ``label``, ``label!``, ``until``),
        removed; ``NetworksDeleted`` names them (null when none, as dockerd's)."""
        filters = parse_filters(req)
        unknown = set(filters) - {"label", "label!", "until"}
        if unknown:
            raise HTTPError(400, f"Invalid filter '{sorted(unknown)[0]}'")
        until = prune_until(filters)
        deleted = []
        for n in self.client.networks.list(create_default=False):
            if n["Name"] in PREDEFINED or not prune_labels_match(n.get("Labels") or {}, filters):
                continue
            if until is not None and parse_time(n["Created"]) >= until:
                continue
            if n["Containers"]:
                continue
            try:
                self.client.networks.remove(n["Id"])
            except (ConflictError, NotFoundError):
                continue  # in use (or removed meanwhile by another client)
            deleted.append(n["Name"])
        req.send_json({"NetworksDeleted": deleted or None})


def special(name: str) -> dict[str, Any]:
    """``host`` and ``none`` as dockerd lists them (modes, not networks of ours)."""
    return {"Name": name, "Id": name, "Created": "0001-01-01T00:00:00Z", "Scope": "local",
            "Driver": "host" if name == "host" else "null", "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None, "Config": []}, "Internal": False, "Attachable": False,
            "Ingress": False, "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": {}, "Options": {},
            "Labels": {}}


def prune_labels_match(labels: dict[str, str], filters: Filters) -> bool:
    """Prune's ``label`` (all must match) and ``label!`` (none may match) filters."""
    if not labels_match(labels, filters.get("label", [])):
        return False
    for f in filters.get("label!", []):
        k, sep, v = f.partition("=")
        if k in labels and (not sep or labels[k] == v):
            return False
    return True


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def prune_until(filters: Filters) -> float | None:
    """The ``until`` filter as unix seconds: a timestamp (unix seconds, RFC 3339 date or time)
    or a Go duration before now (``10m``, ``1h30m``), as dockerd reads it."""
    values = filters.get("until")
    if not values:
        return None
    if len(values) > 1:
        raise HTTPError(400, "more than one until filter specified")
    text = values[0]
    if text and "".join(m.group(0) for m in _DURATION.finditer(text)) == text:
        return time.time() - sum(float(m.group(1)) * _UNIT[m.group(2)] for m in _DURATION.finditer(text))
    with contextlib.suppress(ValueError):
        return float(text)
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%Y-%m-%dT%H:%M"):
        with contextlib.suppress(ValueError):
            return float(calendar.timegm(time.strptime(text.rstrip("Z")[:19], fmt)))
    raise HTTPError(400, f"Invalid filter 'until={text}': not a timestamp or duration")
