"""What the CLI prints: tables, sizes, ages, ``-f`` templates, inspect documents, per-name
results and pull/push progress, in docker's shapes."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_pods.errors import PodsError


def ago(iso: str) -> str:
    """``2 hours ago`` for an ISO time (docker's CREATED and STATUS columns); "" if unreadable."""
    from datetime import UTC, datetime  # lazy: start latency (only listings print ages)

    try:
        t = datetime.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return ""
    d = max(0, time.time() - t)
    for unit, secs in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if d >= secs * (2 if unit != "days" else 1):
            return f"{int(d // secs)} {unit} ago"
    return "Less than a second ago" if d < 1 else f"{int(d)} seconds ago"


def size(n: float) -> str:
    """``1.5MB``: decimal units, three significant digits, as docker shows sizes."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.3g}{unit}"
        n /= 1000
    return f"{n:.3g}TB"


def table(rows: list[list[str]]) -> None:
    """Print rows (the first is the header) in columns three spaces apart."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip())


def format_template(template: str, doc: Mapping[str, Any]) -> str:
    """``--format``/``-f``: Go's text/template as the docker CLI renders it (cli/gotemplate.py)."""
    from pytest_pods.cli.gotemplate import render  # lazy: start latency (only -f needs it)

    return render(template, doc)


def print_docs(docs: Sequence[Mapping[str, Any]], template: str | None) -> None:
    """``inspect`` output: a JSON array, or one line per document through ``--format``."""
    if template:
        for d in docs:
            print(format_template(template, d))
    else:
        print(json.dumps(docs, indent=4))


def each(names: Sequence[str], action: Callable[[str], object]) -> int:
    """Apply ``action`` to every name, as docker does: print what it returns (a line or a list of
    lines), report each failure and go on; exit 1 if any failed."""
    code = 0
    for name in names:
        try:
            out = action(name)
            for line in out if isinstance(out, list) else [out]:
                print(line)
        except PodsError as exc:
            print(f"Error response from daemon: {exc}", file=sys.stderr)
            code = 1
    return code


class Progress:
    """Per-layer and total progress of a pull or push, redrawn in place on a terminal only."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.layers: dict[str, tuple[str, int, int]] = {}
        self.drawn = 0

    def __call__(self, event: Mapping[str, Any]) -> None:
        if not self.enabled or "id" not in event:
            return
        detail = event.get("progressDetail") or {}
        self.layers[event["id"]] = (event.get("status", ""), int(detail.get("current") or 0),
                                    int(detail.get("total") or 0))
        self.draw()

    def draw(self) -> None:
        out = sys.stdout
        if self.drawn:
            out.write(f"\x1b[{self.drawn}F")
        lines = []
        for ident, (status, cur, tot) in self.layers.items():
            bar = f" {size(cur)}/{size(tot)}" if tot else ""
            lines.append(f"{ident}: {status}{bar}")
        done = sum(c for _, c, _ in self.layers.values())
        total = sum(t for _, _, t in self.layers.values())
        lines.append(f"total: {size(done)}/{size(total)}" if total else "")
        for line in lines:
            out.write("\x1b[2K" + line + "\n")
        self.drawn = len(lines)
        out.flush()

    def done(self) -> None:
        self.drawn = 0
