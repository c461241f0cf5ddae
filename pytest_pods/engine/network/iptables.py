"""Our iptables chains and rules: made once per host, applied in one exec per change, found by tag.

iptables (nf_tables backend here) does outbound NAT, isolation between networks and published
ports, in chains of our own (``PODS-*``). Every rule carries a comment (its *tag*) naming its
network (``pods:net:<id12>``) or container (``pods:ctr:<id12>``), so that removal and the reaper
find exactly ours. Rules go in one ``iptables-restore --noflush`` call per change; the chains are
global to the host, so changes to them happen under :func:`host_lock`, shared by every root.

Rootless, the same chains and rules live in the rootless netns of one root (``ns``: its
``/proc/PID/ns/net``): each function takes ``ns`` and runs its ``iptables-restore``/``-save`` there
(forked from a thread that entered it); the lock is then the root's own (``rootless_net``).
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import TYPE_CHECKING

from pytest_pods.engine.locks import FileLock
from pytest_pods.engine.network.rootless_net import run_in_netns
from pytest_pods.errors import NetworkError

if TYPE_CHECKING:
    from pytest_pods.engine.network.networks import NetworkRecord

# table -> rule lines (``-A CHAIN ...``, ``-D CHAIN ...``, ``-N CHAIN``, ...), as iptables-restore reads them
RuleSet = dict[str, list[str]]

CHAINS = {"filter": ("PODS-FORWARD",), "nat": ("PODS-POSTROUTING", "PODS-DNAT")}
JUMPS = [
    ("filter", "FORWARD", "-j PODS-FORWARD"),
    ("nat", "POSTROUTING", "-j PODS-POSTROUTING"),
    ("nat", "PREROUTING", "-m addrtype --dst-type LOCAL -j PODS-DNAT"),
    ("nat", "OUTPUT", "-m addrtype --dst-type LOCAL -j PODS-DNAT"),
]
ACCEPT_RETURNING = "-m conntrack --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment pods:base -j ACCEPT"
# rootless only: the outbound helper may hand in a segment conntrack calls INVALID (pasta's
# flagless window updates); un-NATed, it would reach the netns's own stack, whose RST ends the
# container's connection. Dropped, it is ignored, as the container's stack would.
ROOTLESS_JUMPS = [("filter", "INPUT", "-m conntrack --ctstate INVALID -m comment --comment pods:base -j DROP")]
LOCK_PATH = "/run/lock/pytest-pods-iptables.lock"


def network_tag(network_id: str) -> str:
    """The comment on every rule of one network."""
    return f"pods:net:{network_id[:12]}"


def container_tag(cid: str) -> str:
    """The comment on every rule of one container (its published ports)."""
    return f"pods:ctr:{cid[:12]}"


def host_lock() -> FileLock:
    """One lock for the host's iptables chains, shared by every root (the chains are global)."""
    os.makedirs(os.path.dirname(LOCK_PATH), exist_ok=True)
    return FileLock(LOCK_PATH)


def _tool(name: str) -> str:
    """iptables' programs live in /usr/sbin, which an ordinary user's PATH (the rootless engine's)
    often lacks."""
    for d in ("/usr/sbin", "/sbin"):
        if os.access(f"{d}/{name}", os.X_OK):
            return f"{d}/{name}"
    return name


def _run(args: list[str], text: str | None, ns: str | None) -> tuple[int, str, str]:
    import subprocess  # lazy: start latency (subprocess costs milliseconds; --network none never needs it)

    args = [_tool(args[0]), *args[1:]]

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, input=text, capture_output=True, text=True)

    proc = run() if ns is None else run_in_netns(ns, run)
    return proc.returncode, proc.stdout, proc.stderr


def restore(rules: RuleSet, ns: str | None = None) -> None:
    """Apply rule lines (``-A CHAIN ...`` / ``-D CHAIN ...``) per table in one exec.

    :raises NetworkError: iptables-restore refused them (then none of a table's lines applied).
    """
    text = "".join(f"*{table}\n" + "".join(f"{r}\n" for r in lines) + "COMMIT\n"
                   for table, lines in rules.items() if lines)
    if not text:
        return
    code, _out, err = _run(["iptables-restore", "-w", "--noflush"], text, ns)
    if code != 0:
        raise NetworkError(f"iptables: {err.strip() or 'iptables-restore failed'}")


def inverse(rules: RuleSet) -> RuleSet:
    """The ``-D`` lines that delete the ``-A`` lines of ``rules``."""
    return {table: ["-D" + line[2:] for line in lines if line.startswith("-A ")] for table, lines in rules.items()}


def saved(ns: str | None = None) -> RuleSet:
    """Every chain (``:NAME ...``) and rule (``-A ...``) of the filter and nat tables, from one
    ``iptables-save``: one exec where ``-C`` checks and ``-S`` listings would cost one each."""
    _code, stdout, _err = _run(["iptables-save"], None, ns)
    out: RuleSet = {"filter": [], "nat": []}
    table = None
    for line in stdout.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif table in out and (line.startswith("-A ") or line.startswith(":")):
            out[table].append(line)
    return out


def _chains_in(lines: list[str]) -> set[str]:
    return {line[1:].split()[0] for line in lines if line.startswith(":")}


def ensure_chains(ns: str | None = None) -> None:
    """Our chains and the jumps into them, once per host (idempotent; callers hold host_lock)."""
    now = saved(ns)
    # iptables-save quotes comments (--comment "pods:base"): compare without the quotes
    have_rules = {table: {line.replace('"', "") for line in lines} for table, lines in now.items()}
    todo: RuleSet = {}
    for table, chains in CHAINS.items():
        have = _chains_in(now[table])
        todo[table] = [f"-N {chain}" for chain in chains if chain not in have]
    for table, chain, rule in JUMPS + (ROOTLESS_JUMPS if ns is not None else []):
        if f"-A {chain} {rule}" not in have_rules[table]:
            todo[table].append(f"-I {chain} 1 {rule}")
    if f"-A PODS-FORWARD {ACCEPT_RETURNING}" not in have_rules["filter"]:
        todo["filter"].append(f"-I PODS-FORWARD 1 {ACCEPT_RETURNING}")
    restore(todo, ns)


def remove_chains_if_unused(now: RuleSet | None = None, ns: str | None = None) -> None:
    """When no network of any root is left, take our chains and the jumps into them away too."""
    now = now if now is not None else saved(ns)
    if any(t.startswith("pods:net:") for t in all_tags(now)):
        return
    todo: RuleSet = {table: [] for table in now}
    for table, chain, rule in JUMPS + (ROOTLESS_JUMPS if ns is not None else []):
        todo[table] += ["-D" + line[2:] for line in now[table] if line.replace('"', "") == f"-A {chain} {rule}"]
    for table, chains in CHAINS.items():
        have = _chains_in(now[table])
        todo[table] += [f"{op} {chain}" for chain in chains if chain in have for op in ("-F", "-X")]
    with contextlib.suppress(NetworkError):
        restore(todo, ns)


def rules_tagged(tag: str, now: RuleSet | None = None, ns: str | None = None) -> RuleSet:
    """The ``-D`` lines that delete every rule whose comment is ``tag``."""
    now = now if now is not None else saved(ns)
    out: RuleSet = {}
    for table, lines in now.items():
        for line in lines:
            if line.startswith("-A ") and (f"--comment {tag} " in line + " " or f'--comment "{tag}"' in line):
                out.setdefault(table, []).append("-D " + line[3:])
    return out


def delete_rules(tag: str, ns: str | None = None) -> None:
    """Delete every rule tagged ``tag``; best effort (the reaper retries what is left)."""
    rules = rules_tagged(tag, ns=ns)
    with contextlib.suppress(NetworkError):
        restore(rules, ns)


def all_tags(now: RuleSet | None = None, ns: str | None = None) -> set[str]:
    """The tags of every rule of ours on the host (of every root)."""
    now = now if now is not None else saved(ns)
    tags = set()
    for lines in now.values():
        for m in re.finditer(r'--comment "?(pods:[\w:.-]+)"?', "\n".join(lines)):
            tags.add(m.group(1))
    return tags


def network_rules(net: NetworkRecord) -> RuleSet:
    """A network's rules: traffic within it, no routing to our other networks, outbound NAT
    (unless ``internal``), and NAT for published ports reached from the host's loopback."""
    br, subnet = net["bridge"], net["subnet"]
    c = f"-m comment --comment {network_tag(net['id'])}"
    filt = [f"-A PODS-FORWARD -i {br} -o {br} {c} -j ACCEPT",
            f"-A PODS-FORWARD -i {br} -o podsb+ {c} -j DROP"]  # no routing between our networks
    nat = [f"-A PODS-POSTROUTING -o {br} -m conntrack --ctstate DNAT {c} -j MASQUERADE",
           f"-A PODS-POSTROUTING -s 127.0.0.0/8 -o {br} {c} -j MASQUERADE"]
    if net.get("internal"):
        filt.append(f"-A PODS-FORWARD -i {br} {c} -j DROP")
        filt.append(f"-A PODS-FORWARD -o {br} {c} -j DROP")
    else:
        filt.append(f"-A PODS-FORWARD -i {br} {c} -j ACCEPT")
        nat.append(f"-A PODS-POSTROUTING -s {subnet} ! -o {br} {c} -j MASQUERADE")
    return {"filter": filt, "nat": nat}
