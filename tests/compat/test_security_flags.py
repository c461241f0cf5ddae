"""The confinement flags in every face (issue 14): ``--privileged``, ``--security-opt``,
``--cap-add``/``--cap-drop``, ``--read-only`` with ``--tmpfs``, ``--device``, ``--sysctl``,
``--ulimit`` and ``--shm-size`` reach the container as a user sees them, whoever asks: the real
docker CLI and docker-py against ``pods daemon``, the ``pods`` CLI (local and ``--host``), and the
Client API (local and remote). ``docker inspect`` shows them in HostConfig as Docker does, and a
bad value is refused with a message naming it (the CLIs: exit 125, no traceback; the daemon: 400).

Each case is written once, as docker CLI flags and as docker-py's ``containers.run`` keywords
(the Client API takes the same names and forms).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from pytest_pods import Client
from pytest_pods.client.remote import RemoteClient

Daemon = Any
DockerCLI = Any
Runner = Callable[[list[str], dict[str, Any], str], tuple[int, str]]


def _own_bounding_set() -> str:
    with open("/proc/self/status") as f:
        return next(line.split()[1] for line in f if line.startswith("CapBnd:"))


def _status(out: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)


class Case(NamedTuple):
    flags: list[str]          # docker run flags
    kwargs: dict[str, Any]    # docker-py's containers.run keywords (the Client API takes the same)
    script: str               # sh -c, exits 0: what it prints is checked
    check: Callable[[str], Any]


def _cap_eff_has(bit: int) -> Callable[[str], Any]:
    def check(out: str) -> None:
        assert int(_status(out)["CapEff"], 16) >> bit & 1, out
    return check


def _check_privileged(out: str) -> None:
    st = _status(out)
    assert st["CapEff"] == _own_bounding_set() and st["Seccomp"] == "0", out


def _tmpfs_line(out: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if " /x " in line)


CAPS = "grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status"
CASES: dict[str, Case] = {
    "privileged": Case(["--privileged"], {"privileged": True}, CAPS, _check_privileged),
    "default": Case([], {}, CAPS, lambda out: _status(out) == {"CapEff": "00000000a80425fb", "Seccomp": "2",
                                                              "NoNewPrivs": "0"} or pytest.fail(out)),
    "cap-drop-all": Case(["--cap-drop", "ALL"], {"cap_drop": ["ALL"]}, CAPS,
                         lambda out: _status(out)["CapEff"] == "0000000000000000" or pytest.fail(out)),
    "cap-add-sys-admin": Case(["--cap-add", "SYS_ADMIN"], {"cap_add": ["SYS_ADMIN"]}, CAPS, _cap_eff_has(21)),
    "seccomp-unconfined": Case(["--security-opt", "seccomp=unconfined"], {"security_opt": ["seccomp=unconfined"]},
                               CAPS, lambda out: _status(out)["Seccomp"] == "0" or pytest.fail(out)),
    "no-new-privileges": Case(["--security-opt", "no-new-privileges"], {"security_opt": ["no-new-privileges"]},
                              CAPS, lambda out: _status(out)["NoNewPrivs"] == "1" or pytest.fail(out)),
    "ulimit": Case(["--ulimit", "nofile=1024:2048"], {"ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]},
                   "ulimit -n; ulimit -Hn", lambda out: out.split() == ["1024", "2048"] or pytest.fail(out)),
    "shm-size": Case(["--shm-size", "128m"], {"shm_size": "128m"}, "df -k /dev/shm | tail -1",
                     lambda out: out.split()[1] == "131072" or pytest.fail(out)),
    "sysctl": Case(["--sysctl", "net.ipv4.ip_forward=1"], {"sysctls": {"net.ipv4.ip_forward": "1"}},
                   "cat /proc/sys/net/ipv4/ip_forward", lambda out: out.strip() == "1" or pytest.fail(out)),
    "read-only": Case(["--read-only"], {"read_only": True}, "touch /x 2>&1; echo rc=$?",
                      lambda out: ("Read-only file system" in out and "rc=1" in out) or pytest.fail(out)),
    "read-only-with-tmpfs": Case(
        ["--read-only", "--tmpfs", "/x:size=1m,mode=1777"], {"read_only": True, "tmpfs": {"/x": "size=1m,mode=1777"}},
        "grep ' /x ' /proc/mounts; touch /x/f && echo wrote; stat -c %a /x",
        lambda out: (_tmpfs_line(out)[2] == "tmpfs" and "size=1024k" in _tmpfs_line(out)[3]
                     and "noexec" in _tmpfs_line(out)[3] and "wrote" in out and out.split()[-1] == "1777")
        or pytest.fail(out)),
    "tmpfs-exec": Case(["--tmpfs", "/x:exec"], {"tmpfs": {"/x": "exec"}}, "grep ' /x ' /proc/mounts",
                       lambda out: "noexec" not in _tmpfs_line(out)[3] or pytest.fail(out)),
    "device-renamed": Case(["--device", "/dev/zero:/dev/myzero"], {"devices": ["/dev/zero:/dev/myzero:rwm"]},
                           "ls -l /dev/myzero; head -c 3 /dev/myzero | od -An -tx1",
                           lambda out: (out.startswith("crw") and "1,   5" in out and "00 00 00" in out)
                           or pytest.fail(out)),
    # the permissions are kept: a device given read-only cannot be opened for writing (Docker: EPERM
    # from the device cgroup; a rootless engine without one could bind it read-only, EROFS). Not
    # /dev/null or /dev/zero: every container may write those (runc's default allowed devices).
    "device-read-only": Case(["--device", "/dev/fuse:/dev/myfuse:r"], {"devices": ["/dev/fuse:/dev/myfuse:r"]},
                             "(exec 3</dev/myfuse) 2>&1; echo r=$?; (exec 4>/dev/myfuse) 2>&1; echo w=$?",
                             lambda out: ("r=0" in out and "w=1" in out) or pytest.fail(out)),
    "device-fuse": Case(["--device", "/dev/fuse"], {"devices": ["/dev/fuse"]}, "ls -l /dev/fuse",
                        lambda out: (out.startswith("crw") and "10, 229" in out) or pytest.fail(out)),
}
NEEDS_FUSE = {"device-fuse", "device-read-only"}

FACES = ["docker-cli", "docker-py", "pods-cli", "pods-cli-remote", "client-local", "client-remote"]


@pytest.fixture
def docker_py(daemon: Daemon) -> Iterator[Any]:
    """Scope: function. Depends on: daemon. docker-py on the daemon's socket."""
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=daemon.host, timeout=60)
    yield client
    client.close()


@pytest.fixture(params=FACES)
def run_in(request: pytest.FixtureRequest, daemon: Daemon, client: Client,
           pods_cli: Callable[..., subprocess.CompletedProcess[str]]) -> Runner:
    """Scope: function. ``run_in(flags, kwargs, script)``: busybox ``sh -c script`` without a
    network, through one face; (exit code, stdout and stderr)."""
    face = request.param
    if face == "docker-cli":
        cli: DockerCLI = request.getfixturevalue("docker")
        return lambda flags, kw, script: _proc(cli("run", "--rm", "--network", "none", *flags, "busybox",
                                                      "sh", "-c", script, check=False))
    if face in ("pods-cli", "pods-cli-remote"):
        host = ["--host", daemon.host] if face == "pods-cli-remote" else []
        return lambda flags, kw, script: _proc(pods_cli(*host, "run", "--rm", "--network", "none", *flags, "busybox",
                                                        "sh", "-c", script))
    if face == "docker-py":
        dpy = request.getfixturevalue("docker_py")
        errors = pytest.importorskip("docker.errors")

        def run_docker_py(flags: list[str], kw: dict[str, Any], script: str) -> tuple[int, str]:
            try:
                out = dpy.containers.run("busybox", ["sh", "-c", script], remove=True, network_mode="none",
                                         stderr=True, **kw)
            except errors.ContainerError as exc:
                return exc.exit_status, str(exc.stderr)
            return 0, out.decode()

        return run_docker_py
    api = client if face == "client-local" else RemoteClient(daemon.host)

    def run_api(flags: list[str], kw: dict[str, Any], script: str) -> tuple[int, str]:
        r = api.containers.run("busybox", ["sh", "-c", script], remove=True, network="none", **kw)
        return r.exit_code, (r.output + r.stderr).decode()

    return run_api


def _proc(p: subprocess.CompletedProcess[str]) -> tuple[int, str]:
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize("case", list(CASES))
def test_each_flag_reaches_the_container(run_in: Runner, case: str) -> None:
    c = CASES[case]
    if case in NEEDS_FUSE and not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse on this host")
    code, out = run_in(c.flags, c.kwargs, c.script)
    assert code == 0, out
    c.check(out)


# -- a custom seccomp profile: a file (the docker CLI sends its JSON), or its JSON ----------------
@pytest.fixture(scope="module")
def no_mkdir_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Scope: module. Docker's default profile, with mkdir refused with EACCES."""
    from pytest_pods.engine.runtime.seccomp import default_profile

    profile = json.loads(json.dumps(default_profile()))
    for rule in profile["syscalls"]:
        rule["names"] = [n for n in rule["names"] if n not in ("mkdir", "mkdirat")]
    profile["syscalls"].append({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13})
    path = tmp_path_factory.mktemp("seccomp") / "no-mkdir.json"
    path.write_text(json.dumps(profile, indent=2))  # indented: the docker CLI compacts it
    return path


def test_a_seccomp_profile_file_applies_in_every_face(run_in: Runner, request: pytest.FixtureRequest,
                                                     no_mkdir_profile: Path) -> None:
    face = request.node.callspec.params["run_in"]
    # docker-py sends security_opt as given: its users pass the profile's JSON, as dockerd wants
    value = no_mkdir_profile.read_text() if face == "docker-py" else str(no_mkdir_profile)
    script = "mkdir /d 2>&1; echo rc=$?; touch /f && echo touched"
    code, out = run_in(["--security-opt", f"seccomp={no_mkdir_profile}"], {"security_opt": [f"seccomp={value}"]},
                       script)
    assert code == 0 and "rc=1" in out and "Permission denied" in out and "touched" in out, out


def test_the_daemon_refuses_a_profile_path_as_dockerd_does(daemon: Daemon, no_mkdir_profile: Path) -> None:
    # dockerd takes the profile's JSON; a path in the request is not read on the daemon's host
    status, body = _create(daemon, {"SecurityOpt": [f"seccomp={no_mkdir_profile}"]})
    assert status == 400 and body["message"].startswith("decoding seccomp profile failed"), body


# -- the Client API's other forms ----------------------------------------------------------------
def test_client_api_takes_strings_dicts_and_lists(client: Client, daemon: Daemon) -> None:
    script = "ulimit -n; ulimit -Hn; ulimit -c; grep ' /x ' /proc/mounts | cut -d' ' -f4; df -k /dev/shm | tail -1"
    for api in (client, RemoteClient(daemon.host)):
        r = api.containers.run("busybox", ["sh", "-c", script], remove=True, network="none",
                               ulimits=["nofile=1024:2048", {"name": "core", "soft": 0, "hard": 0}],
                               tmpfs=["/x:size=2m"], shm_size=64 * 1024 * 1024 * 2, cap_drop="ALL")
        lines = r.output.decode().split("\n")
        assert r.exit_code == 0, r
        assert lines[:3] == ["1024", "2048", "0"] and "size=2048k" in lines[3] and lines[4].split()[1] == "131072"


# -- docker inspect ------------------------------------------------------------------------------
ALL_FLAGS = ["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE", "--ulimit", "nofile=1024:2048",
             "--shm-size", "128m", "--sysctl", "net.ipv4.ip_forward=1", "--device", "/dev/zero:/dev/myzero:rw",
             "--security-opt", "seccomp=unconfined", "--security-opt", "no-new-privileges",
             "--read-only", "--tmpfs", "/x:size=1m"]


def _check_host_config(hc: dict[str, Any]) -> None:
    assert hc["Privileged"] is False
    assert hc["CapAdd"] == ["CAP_NET_BIND_SERVICE"] and hc["CapDrop"] == ["ALL"]
    assert sorted(hc["SecurityOpt"]) == ["no-new-privileges", "seccomp=unconfined"]
    assert hc["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert hc["ShmSize"] == 128 * 1024 * 1024
    assert hc["Sysctls"] == {"net.ipv4.ip_forward": "1"}
    assert hc["Devices"] == [{"PathOnHost": "/dev/zero", "PathInContainer": "/dev/myzero", "CgroupPermissions": "rw"}]
    assert hc["ReadonlyRootfs"] is True and hc["Tmpfs"] == {"/x": "size=1m"}


def test_docker_inspect_shows_the_host_config(docker: DockerCLI, docker_py: Any) -> None:
    name = f"t-{uuid.uuid4().hex[:12]}"
    docker("create", "--name", name, "--network", "none", *ALL_FLAGS, "busybox", "true")
    try:
        _check_host_config(json.loads(docker("inspect", name).stdout)[0]["HostConfig"])
        _check_host_config(docker_py.containers.get(name).attrs["HostConfig"])
        fmt = docker("inspect", "-f", "{{.HostConfig.ShmSize}} {{.HostConfig.ReadonlyRootfs}}", name).stdout
        assert fmt.split() == [str(128 * 1024 * 1024), "true"]
    finally:
        docker("rm", "-f", name, check=False)
    docker("create", "--name", name, "--network", "none", "--privileged", "busybox", "true")
    try:
        hc = json.loads(docker("inspect", name).stdout)[0]["HostConfig"]
        assert hc["Privileged"] is True and hc["SecurityOpt"] is None
    finally:
        docker("rm", "-f", name, check=False)


def test_a_plain_container_shows_dockers_defaults(docker: DockerCLI) -> None:
    name = f"t-{uuid.uuid4().hex[:12]}"
    docker("create", "--name", name, "--network", "none", "busybox", "true")
    try:
        hc = json.loads(docker("inspect", name).stdout)[0]["HostConfig"]
    finally:
        docker("rm", "-f", name, check=False)
    assert {k: hc[k] for k in ("Privileged", "CapAdd", "CapDrop", "SecurityOpt", "Devices", "Ulimits", "ShmSize",
                               "ReadonlyRootfs")} == {
        "Privileged": False, "CapAdd": None, "CapDrop": None, "SecurityOpt": None, "Devices": [], "Ulimits": [],
        "ShmSize": 64 * 1024 * 1024, "ReadonlyRootfs": False}
    assert "Sysctls" not in hc


# -- bad values: exit 125 and the option named; the daemon answers 400 -------------------------
BAD = [
    pytest.param(["--shm-size", "abc"], "--shm-size", id="shm-size-abc"),
    pytest.param(["--ulimit", "nofile=abc"], "nofile", id="ulimit-abc"),
    pytest.param(["--ulimit", "nofile=2048:1024"], "soft limit", id="ulimit-soft-above-hard"),
    pytest.param(["--ulimit", "nosuch=1"], "nosuch", id="ulimit-unknown"),
    pytest.param(["--sysctl", "kernel.panic=1"], "kernel.panic", id="sysctl-not-namespaced"),
    pytest.param(["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"], "net.ipv4.ip_forward",
                 id="sysctl-net-with-host-network"),
    pytest.param(["--device", "/dev/nope"], "/dev/nope", id="device-missing"),
    pytest.param(["--device", "/dev/zero:relative"], "relative", id="device-relative"),
    pytest.param(["--device", "/dev/zero:/dev/z:rwx"], "rwx", id="device-bad-mode"),
    pytest.param(["--security-opt", "seccomp=/nope.json"], "/nope.json", id="seccomp-missing-file"),
    pytest.param(["--security-opt", "frob=1"], "frob", id="security-opt-unknown"),
    pytest.param(["--tmpfs", "/x:frob=1"], "frob", id="tmpfs-bad-option"),
    pytest.param(["--tmpfs", "relative"], "relative", id="tmpfs-relative"),
    pytest.param(["--cap-add", "NOPE"], "NOPE", id="cap-unknown"),
]


def _clean_refusal(p: subprocess.CompletedProcess[str], needle: str) -> None:
    assert p.returncode == 125, (p.returncode, p.stdout, p.stderr)
    assert needle in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and p.stdout == "", p.stderr


@pytest.mark.parametrize("args,needle", BAD)
def test_bad_values_are_refused_by_docker_with_125(docker: DockerCLI, args: list[str], needle: str) -> None:
    _clean_refusal(docker("run", "--rm", *args, "busybox", "true", check=False), needle)


@pytest.mark.parametrize("remote", [False, True], ids=["local", "remote"])
@pytest.mark.parametrize("args,needle", BAD)
def test_bad_values_are_refused_by_pods_with_125(pods_cli: Callable[..., subprocess.CompletedProcess[str]],
                                                 daemon: Daemon, remote: bool, args: list[str], needle: str) -> None:
    host = ["--host", daemon.host] if remote else []
    p = pods_cli(*host, "run", "--rm", *args, "busybox", "true")
    _clean_refusal(p, needle)
    assert p.stderr.count("\n") == 1, p.stderr


def _create(daemon: Daemon, host_config: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """``POST /containers/create`` of busybox with ``host_config``; (status, JSON answer). A
    container it made is removed."""

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(str(daemon.sock))

    conn = Conn("localhost", timeout=60)
    try:
        body = json.dumps({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none", **host_config}})
        conn.request("POST", "/v1.41/containers/create", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        doc = json.loads(resp.read() or b"{}")
        if resp.status == 201:
            conn.request("DELETE", f"/v1.41/containers/{doc['Id']}?force=1")
            conn.getresponse().read()
        return resp.status, doc
    finally:
        conn.close()


@pytest.mark.parametrize("host_config,needle", [
    pytest.param({"Privileged": "yes"}, "Privileged", id="privileged-not-bool"),
    pytest.param({"ShmSize": -1}, "SHM size can not be less than 0", id="shm-negative"),
    pytest.param({"Ulimits": [{"Name": "nofile", "Soft": 2048, "Hard": 1024}]}, "soft limit", id="ulimit-soft-above-hard"),
    pytest.param({"Ulimits": [{"Name": "nosuch", "Soft": 1, "Hard": 1}]}, "nosuch", id="ulimit-unknown"),
    pytest.param({"Ulimits": "nofile=1"}, "Ulimits", id="ulimits-not-a-list"),
    pytest.param({"Devices": [{"PathOnHost": "/dev/nope", "PathInContainer": "/dev/nope", "CgroupPermissions": "rwm"}]},
                 "/dev/nope", id="device-missing"),
    pytest.param({"Sysctls": {"kernel.panic": "1"}}, "kernel.panic", id="sysctl-not-namespaced"),
    pytest.param({"Sysctls": {"net.ipv4.ip_forward": 1}}, "Sysctls", id="sysctl-not-a-string"),
    pytest.param({"SecurityOpt": ["seccomp={not json"]}, "seccomp", id="seccomp-bad-json"),
    pytest.param({"SecurityOpt": ["no-new-privileges=maybe"]}, "maybe", id="nnp-not-bool"),
    pytest.param({"CapAdd": ["NOPE"]}, "NOPE", id="cap-unknown"),
    pytest.param({"Tmpfs": {"/x": "frob=1"}}, "frob", id="tmpfs-bad-option"),
])
def test_the_daemon_answers_400_naming_the_field(daemon: Daemon, host_config: dict[str, Any], needle: str) -> None:
    status, doc = _create(daemon, host_config)
    assert status == 400 and needle in doc.get("message", ""), (status, doc)



# -- the documents both ways, without a container ------------------------------------------------
def test_a_create_body_reads_back_as_the_same_arguments(no_mkdir_profile: Path) -> None:
    from pytest_pods.client.docker_docs import create_arguments, create_body

    body = create_body("busybox", ["true"], {
        "privileged": True, "security_opt": [f"seccomp={no_mkdir_profile}", "label=disable"],
        "devices": ["/dev/zero:/dev/myzero", {"PathOnHost": "/dev/null"}], "sysctls": ["net.ipv4.ip_forward=1"],
        "ulimits": ["nofile=1024", {"Name": "core", "Soft": -1, "Hard": -1}], "shm_size": "1g",
        "cap_add": "SYS_ADMIN", "cap_drop": ["NET_RAW"], "read_only": True, "tmpfs": ["/run", "/x:size=1m,exec"],
        "no_new_privileges": True})
    hc = body["HostConfig"]
    assert hc["Privileged"] is True and hc["ShmSize"] == 1 << 30 and hc["ReadonlyRootfs"] is True
    assert hc["SecurityOpt"][0] == "seccomp=" + json.dumps(json.loads(no_mkdir_profile.read_text()),
                                                           separators=(",", ":"))
    assert hc["SecurityOpt"][1:] == ["label=disable", "no-new-privileges"]
    assert hc["Devices"] == [
        {"PathOnHost": "/dev/zero", "PathInContainer": "/dev/myzero", "CgroupPermissions": "rwm"},
        {"PathOnHost": "/dev/null", "PathInContainer": "/dev/null", "CgroupPermissions": "rwm"}]
    assert hc["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 1024}, {"Name": "core", "Soft": -1, "Hard": -1}]
    assert hc["Sysctls"] == {"net.ipv4.ip_forward": "1"} and hc["Tmpfs"] == {"/run": "", "/x": "size=1m,exec"}
    assert hc["CapAdd"] == ["SYS_ADMIN"] and hc["CapDrop"] == ["NET_RAW"]
    opts = create_arguments(body).options
    assert {k: opts[k] for k in ("privileged", "devices", "sysctls", "ulimits", "shm_size", "cap_add", "cap_drop",
                                 "read_only", "tmpfs")} == {
        "privileged": True, "devices": ["/dev/zero:/dev/myzero:rwm", "/dev/null:/dev/null:rwm"],
        "sysctls": {"net.ipv4.ip_forward": "1"}, "ulimits": ["nofile=1024:1024", "core=-1:-1"],
        "shm_size": 1 << 30, "cap_add": ["SYS_ADMIN"], "cap_drop": ["NET_RAW"], "read_only": True,
        "tmpfs": ["/run", "/x:size=1m,exec"]}
    assert opts["security_opt"] == hc["SecurityOpt"]


# -- exec --privileged -----------------------------------------------------------------------------
# Docker gives the exec'd process every capability and leaves the container as it is: its seccomp
# filter (made for the container's capabilities) still applies, so CAP_NET_ADMIN is the witness here,
# not mount(2). CapEff is compared with this host's bounding set, which Docker's "all" means too.
EXEC_FACES = ["docker-cli", "docker-py", "pods-cli", "pods-cli-remote", "client-local", "client-remote"]
NET_ADMIN = "ip addr add 127.0.0.9/8 dev lo 2>&1; echo rc=$?; " + CAPS


@pytest.mark.parametrize("face", EXEC_FACES)
def test_exec_privileged_gets_every_capability_and_keeps_seccomp(
        face: str, daemon: Daemon, client: Client, request: pytest.FixtureRequest,
        pods_cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    ctr = client.containers.run("busybox", ["sleep", "300"], detach=True, network="none")
    try:
        def exec_in(privileged: bool) -> str:
            cmd = ["sh", "-c", NET_ADMIN]
            if face == "docker-cli":
                cli: DockerCLI = request.getfixturevalue("docker")
                p = cli("exec", *(["--privileged"] if privileged else []), ctr.id, *cmd, check=False)
                return str(p.stdout + p.stderr)
            if face == "docker-py":
                res = request.getfixturevalue("docker_py").containers.get(ctr.id).exec_run(cmd, privileged=privileged)
                return str(res.output.decode())
            if face in ("pods-cli", "pods-cli-remote"):
                host = ["--host", daemon.host] if face == "pods-cli-remote" else []
                p = pods_cli(*host, "exec", *(["--privileged"] if privileged else []), ctr.id, *cmd)
                return p.stdout + p.stderr
            api = client if face == "client-local" else RemoteClient(daemon.host)
            r = api.containers.get(ctr.id).exec(cmd, privileged=privileged)
            return (r.output + r.stderr).decode()

        plain, privileged = exec_in(False), exec_in(True)
        assert "rc=0" not in plain and _status(plain)["CapEff"] == "00000000a80425fb", plain
        assert "rc=0" in privileged, privileged
        assert _status(privileged)["CapEff"] == _own_bounding_set(), privileged
        assert _status(privileged)["Seccomp"] == "2", privileged  # the container's filter stays
        # the container itself is unchanged: its next plain exec has the default set again
        assert _status(exec_in(False))["CapEff"] == "00000000a80425fb"
    finally:
        ctr.remove(force=True)


def test_exec_inspect_says_privileged(daemon: Daemon, client: Client) -> None:
    ctr = client.containers.run("busybox", ["sleep", "300"], detach=True, network="none")
    try:
        api = RemoteClient(daemon.host)
        for privileged in (False, True):
            doc = api.request("POST", f"/containers/{ctr.id}/exec", body={"Cmd": ["true"], "Privileged": privileged})
            info = api.request("GET", f"/exec/{doc['Id']}/json")
            assert info["ProcessConfig"]["privileged"] is privileged
    finally:
        ctr.remove(force=True)
