"""Named volumes: directories under ``ROOT/volumes/<name>/_data`` that containers bind-mount.

``-v data:/var/lib/x`` (a name, not a path) makes the volume on first use, as docker does. A
volume is removed only when no container (running or not) mounts it, unless forced.
"""

from __future__ import annotations

import builtins  # Volumes.list shadows the name in the class
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from pytest_pods.engine.files import remove_tree
from pytest_pods.engine.locks import lease
from pytest_pods.errors import ConflictError, InvalidArgumentError, NotFoundError

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class Volumes:
    def __init__(self, root: Path) -> None:
        self.dir = root / "volumes"

    def _check(self, name: str) -> str:
        if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > 255:
            raise InvalidArgumentError(
                f"create {name!r}: includes invalid characters for a local volume name, only "
                "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        return name

    def path(self, name: str) -> Path:
        return self.dir / self._check(name) / "_data"

    def create(self, name: str | None = None, labels: dict[str, str] | None = None, *,
               anonymous: bool = False) -> dict[str, Any]:
        """Make the volume (or find it); ``anonymous`` ones (``-v /data``) go with ``rm -v``."""
        name = self._check(name or os.urandom(32).hex())
        d = self.dir / name
        meta = d / "volume.json"
        if not meta.exists():
            (d / "_data").mkdir(parents=True, exist_ok=True)
            tmp = d / f".volume.json.{lease()}-"
            tmp.write_text(json.dumps({"name": name, "labels": labels or {}, "created": time.time(),
                                       "anonymous": anonymous}))
            os.replace(tmp, meta)
        return self.inspect(name)

    def name_of(self, path: str) -> str | None:
        """The volume whose data directory ``path`` is, or None."""
        p = Path(path)
        if p.name == "_data" and p.parent.parent == self.dir:
            return p.parent.name
        return None

    def anonymous(self, name: str) -> bool:
        try:
            return bool(json.loads((self.dir / self._check(name) / "volume.json").read_text()).get("anonymous"))
        except (OSError, ValueError, InvalidArgumentError):
            return False

    def inspect(self, name: str) -> dict[str, Any]:
        try:
            rec = json.loads((self.dir / self._check(name) / "volume.json").read_text())
        except FileNotFoundError:
            raise NotFoundError(f"get {name}: no such volume") from None
        return {"Name": rec["name"], "Driver": "local", "Mountpoint": str(self.path(name)),
                "Labels": rec.get("labels") or {}, "Scope": "local", "Options": {},
                "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(rec["created"]))}

    def list(self) -> list[dict[str, Any]]:
        if not self.dir.is_dir():
            return []
        out = []
        for d in sorted(self.dir.iterdir()):
            try:
                out.append(self.inspect(d.name))
            except (NotFoundError, InvalidArgumentError, ValueError):
                continue
        return out

    def remove(self, name: str, *, in_use_by: builtins.list[str], force: bool = False) -> None:
        self.inspect(name)
        if in_use_by and not force:
            raise ConflictError(f"remove {name}: volume is in use - [{', '.join(c[:12] for c in in_use_by)}]")
        remove_tree(self.dir / name)
