"""The ``filters`` parameter of list, prune and events requests, and what each filter matches.

Docker sends ``filters`` as JSON: ``{"label": ["a=b"]}`` (or the old ``{"label": {"a=b": true}}``).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Mapping
from typing import Any

from pytest_pods.daemon.http import Request
from pytest_pods.errors import HTTPError

#: filter name -> the values given for it
Filters = dict[str, list[str]]


def parse_filters(req: Request) -> Filters:
    raw = req.query.get("filters")
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        raise HTTPError(400, "invalid filter: bad JSON") from None
    if not isinstance(doc, dict):
        raise HTTPError(400, "invalid filter: not an object")
    out: Filters = {}
    for k, v in doc.items():  # {"label": ["a=b"]} or the old {"label": {"a=b": true}}
        out[str(k)] = [str(x) for x in (v if isinstance(v, list) else list(v) if isinstance(v, dict) else [v])]
    return out


def labels_match(labels: Mapping[str, str], wanted: list[str]) -> bool:
    """Every ``key`` or ``key=value`` of ``wanted`` is among ``labels``."""
    for f in wanted:
        k, sep, v = f.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    return True


def any_label_matches(labels: Mapping[str, str], wanted: list[str]) -> bool:
    """One ``key`` or ``key=value`` of ``wanted`` is among ``labels`` (Ryuk's filter lines)."""
    for spec in wanted:
        k, sep, v = spec.partition("=")
        if k in labels and (not sep or labels[k] == v):
            return True
    return False


def ref_matches(tag: str, pattern: str) -> bool:
    """``reference=busybox`` matches ``busybox:latest``; shell patterns as dockerd's."""
    return fnmatch.fnmatch(tag, pattern) or fnmatch.fnmatch(tag, pattern + ":*")


def event_matches(ev: Mapping[str, Any], filters: Filters) -> bool:
    """dockerd's event filter: each name's values or-ed, the names and-ed; ``container``,
    ``network``, ``volume`` match the actor's ID or name by prefix (so they also keep events of
    other types out), ``image`` the actor or its image exactly, ``event`` the action (a bare
    ``health_status`` any of them), every ``label`` must hold; a name it does not know is
    ignored, as dockerd ignores it (swarm objects' names match no event here)."""
    kind, action = str(ev.get("Type", "")), str(ev.get("Action", ""))
    actor = ev.get("Actor") or {}
    aid, attrs = str(actor.get("ID", "")), actor.get("Attributes") or {}
    name = str(attrs.get("name", ""))

    def fuzzy(key: str) -> bool:
        return not filters.get(key) or any(aid.startswith(v) or name.startswith(v) for v in filters[key])

    def exact(key: str, *values: str) -> bool:
        return not filters.get(key) or any(v in values for v in filters[key])

    events = filters.get("event")
    return (exact("type", kind) and exact("scope", str(ev.get("scope", "local")))
            and (not events or any(action == v or action.startswith(v + ":") for v in events))
            and fuzzy("container") and fuzzy("network") and fuzzy("volume")
            and exact("image", aid, str(attrs.get("image", "")), name)
            and not any(filters.get(k) for k in ("config", "node", "plugin", "secret", "service"))
            and labels_match(attrs, filters.get("label", [])))


def container_matches(row: Mapping[str, Any], filters: Filters) -> bool:
    """Whether a ``GET /containers/json`` row passes ``filters``."""
    if not filters:
        return True
    if not labels_match(row.get("Labels") or {}, filters.get("label", [])):
        return False
    if filters.get("name") and not any(re.search(n.lstrip("/"), row["Names"][0].lstrip("/")) for n in filters["name"]):
        return False
    if filters.get("id") and not any(row["Id"].startswith(i) for i in filters["id"]):
        return False
    if filters.get("status") and row["State"] not in filters["status"]:
        return False
    if filters.get("ancestor") and not any(a in (row["Image"], row["ImageID"]) or row["ImageID"].startswith("sha256:" + a)
                                           for a in filters["ancestor"]):
        return False
    if filters.get("exited"):  # the exit code of an exited container, as its Status says it
        code = re.match(r"Exited \((-?\d+)\)", str(row.get("Status", "")))
        if row["State"] != "exited" or code is None or code.group(1) not in filters["exited"]:
            return False
    if filters.get("health"):
        status = str(row.get("Status", ""))
        health = ("unhealthy" if "(unhealthy)" in status else "healthy" if "(healthy)" in status
                  else "starting" if "(health: starting)" in status else "none")
        if health not in filters["health"]:
            return False
    return not filters.get("network") or any(n in (row.get("NetworkSettings", {}).get("Networks") or {})
                                             for n in filters["network"])
