"""Re-record Docker's outcomes of probe.pl (tests/integration/test_confinement.py compares ours with them).

Needs a running dockerd with a debian:bookworm image (perl-base is all the probe needs), e.g.::

    apt-get install --no-install-recommends docker.io
    dockerd --data-root /tmp/dk/data --exec-root /tmp/dk/exec --pidfile /tmp/dk/docker.pid \\
        -H unix:///tmp/dk/docker.sock --bridge none --iptables=false --ip6tables=false --ip-forward=false &
    pods save -o /tmp/dk/debian.tar debian:bookworm && DOCKER_HOST=unix:///tmp/dk/docker.sock docker load -i /tmp/dk/debian.tar
    DOCKER_HOST=unix:///tmp/dk/docker.sock python3 tests/data/confinement/record_docker.py [/usr/bin/docker]

then stop dockerd by its pid (/tmp/dk/docker.pid) and remove /tmp/dk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = {  # name -> docker run options (the test runs the same variants through our engine)
    "default": [],
    "seccomp_unconfined": ["--security-opt", "seccomp=unconfined"],
    "cap_add_sys_admin": ["--cap-add", "SYS_ADMIN"],
}


def parse(out: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def main() -> None:
    docker = sys.argv[1] if len(sys.argv) > 1 else "docker"
    version = subprocess.run([docker, "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True,
                             check=True).stdout.strip()
    outcomes = {}
    for name, opts in VARIANTS.items():
        cmd = [docker, "run", "--rm", *opts, "--network", "none", "-v", f"{HERE / 'probe.pl'}:/probe.pl:ro",
               "debian:bookworm", "sh", "-c", "perl /probe.pl"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        outcomes[name] = parse(proc.stdout)
    record = {
        "docker_version": version,
        "kernel": os.uname().release,
        "recorded_by": f"DOCKER_HOST={os.environ.get('DOCKER_HOST', '')} python3 tests/data/confinement/record_docker.py "
                       f"{docker}",
        "note": "privileged is not recorded: on this VM root's bounding set lacks CAP_SYS_RESOURCE, and Docker "
                "20.10's runc fails every --privileged start there ('unable to apply caps: operation not permitted')",
        "outcomes": outcomes,
    }
    (HERE / "docker_outcomes.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
