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
    """``2 hours ago`` for an ISO time: docker's CREATED column ("" if unreadable)."""
    from datetime import UTC, datetime  # lazy: start latency (only listings print ages)

    try:
        t = datetime.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return ""
    return human_duration(max(0.0, time.time() - t)) + " ago"


def human_duration(seconds: float) -> str:
    """A duration in docker's words (go-units' HumanDuration): ``About an hour``, ``3 weeks``,
    ``56 years``."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s < 60:
        return "1 second" if s == 1 else f"{s} seconds"
    minutes = s // 60
    if minutes < 60:
        return "About a minute" if minutes == 1 else f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600 / 24 / 365)} years"


def size(n: float) -> str:
    """``1.5MB``: decimal units, three significant digits, as docker shows sizes."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.3g}{unit}"
        n /= 1000
    return f"{n:.3g}TB"


def binary_size(n: float) -> str:
    """``1.5MiB``: binary units, four significant digits, as docker shows memory (go-units BytesSize)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024:
            return f"{n:.4g}{unit}"
        n /= 1024
    return f"{n:.4g}PiB"


def table(rows: list[list[str]], min_width: int = 10) -> None:
    """Print rows (the first is the header) as docker's tabwriter lays them out: each column but the
    last as wide as its widest cell plus three spaces, and at least ``min_width``."""
    widths = [max(min_width, max(len(r[i]) for r in rows) + 3) for i in range(len(rows[0]))]
    for r in rows:
        print("".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)) + r[-1])


def format_template(template: str, doc: Mapping[str, Any]) -> str:
    """``--format``/``-f``: Go's text/template as the docker CLI renders it (cli/gotemplate.py)."""
    from pytest_pods.cli.gotemplate import render  # lazy: start latency (only -f needs it)

    return render(template, doc)


def print_rows(rows: Sequence[Mapping[str, str]], fmt: str | None, headers: Mapping[str, str],
               columns: Sequence[str]) -> None:
    """A listing's ``--format``, as the docker CLI takes it: ``table`` (``columns``, the default),
    ``table TEMPLATE`` (a header from ``headers``, aligned columns), ``json`` (a line per row) or a
    Go template per row."""
    fmt = (fmt or "table").replace("\\t", "\t").replace("\\n", "\n")  # docker's escapes
    if fmt == "json":
        for r in rows:
            print(json.dumps(r, separators=(",", ":"), sort_keys=True))  # docker's: a Go map, keys sorted
        return
    if fmt.startswith("table"):
        template = fmt.removeprefix("table").strip()
        if not template:
            table([[headers[c] for c in columns]] + [[r[c] for c in columns] for r in rows])
            return
        lines = [format_template(template, headers)] + [format_template(template, r) for r in rows]
        table([line.split("\t") for line in lines])
        return
    for r in rows:
        print(format_template(fmt, r))


def print_docs(docs: Sequence[Mapping[str, Any]], template: str | None) -> None:
    """``inspect`` output: a JSON array, or one line per document through ``--format``."""
    if template:
        for d in docs:
            print(format_template(template, d))
    else:
        print(json.dumps(docs, indent=4))


REMOTE = False
"""Set by ``pods --host``: errors then came from a daemon, and say so as docker does."""


def error_prefix() -> str:
    """``pods: `` for the local engine's errors, docker's ``Error response from daemon: `` for a
    remote engine's."""
    return "Error response from daemon: " if REMOTE else "pods: "


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
            print(f"{error_prefix()}{exc}", file=sys.stderr)
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
