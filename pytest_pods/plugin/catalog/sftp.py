"""SFTP over SSH (issue 17): Debian 12's OpenSSH 9.2 server, with the conventions of the widely
used ``atmoz/sftp`` image, fresh per test.

The fixture ``sftp`` gives each test a server of its own, with the user ``pods`` (password
``pods``) chrooted to its home and a writable ``upload`` directory in it::

    def test_export(sftp):
        app.export(host=sftp.host, port=sftp.port, user=sftp.user, password=sftp.password,
                   path="/upload/report.csv")
        assert sftp.get("/upload/report.csv").startswith(b"id,")   # no library needed
        assert sftp.client().listdir("/upload") == ["report.csv"]  # paramiko's SFTPClient

Paths are as the user sees them over SFTP: ``/`` is the chroot, ``/home/USER`` in the container.

``sftp_container(isolation="user")`` shares one server per session (per xdist worker, whose tests
run one at a time) and gives each test a user of its own (``useradd``/``chpasswd`` in the
container, a millisecond or two), with its own chroot and directories, removed after the test: a
test sees no file of another test's, and its login works for its own tree only.
"""

from __future__ import annotations

import base64
import itertools
import re
import shlex
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from pytest_pods import wait
from pytest_pods.client.contract import ContainerAPI
from pytest_pods.errors import PodsError
from pytest_pods.plugin.fixtures import container
from pytest_pods.plugin.services import (
    Service,
    catalogue_service,
    environment_of,
    per_database,
)
from pytest_pods.plugin.session import PodsSession

__all__ = ["Sftp", "sftp", "sftp_container", "sftp_image"]

sftp_image = catalogue_service("sftp", "pytest-pods/sftp:9.2")

#: sshd's line (run with -D -e: to stderr) once it listens.
READY_LINE = r"Server listening on"
ISOLATION_LEVELS = ("container", "user")
_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
_CHUNK = 64 * 1024  # raw bytes per exec argument (its base64, 87 KiB, stays under Linux's 128 KiB)


class Sftp(Service):
    """A running SFTP server: SSH on ``port``, SFTP only, ``user`` chrooted to its home.

    ``host``/``port``, ``user``/``password`` from the host; ``network_host``/``network_port``
    from another container on its network. ``put(path, data)``, ``get(path)``,
    ``listdir(path)`` work in the container (no library needed); ``client()`` is a connected
    paramiko ``SFTPClient`` (``pip install paramiko``). ``home`` is the chroot's path in the
    container.
    """

    PORT = 22

    def __init__(self, container: ContainerAPI, user: str, password: str | None, dirs: Sequence[str] = (),
                 port: int | None = None) -> None:
        super().__init__(container, port)
        self.user = user
        self.password = password
        self.dirs = tuple(dirs)
        self._transports: list[Any] = []

    @property
    def home(self) -> str:
        """The user's chroot in the container (``/`` over SFTP)."""
        return f"/home/{self.user}"

    @property
    def url(self) -> str:
        """``sftp://user@host:port`` from the host."""
        return f"sftp://{self.user}@{self.host}:{self.port}"

    @property
    def network_url(self) -> str:
        return f"sftp://{self.user}@{self.network_host}:{self.network_port}"

    def client(self, **kwargs: Any) -> Any:
        """A paramiko ``SFTPClient``, logged in as ``user`` with ``password`` (its connection
        ends with the test: closed in user isolation, its server removed otherwise); needs
        ``pip install paramiko``. ``kwargs`` go to ``Transport.connect``
        (``pkey=`` for a key)."""
        import paramiko  # type: ignore[import-untyped]  # lazy: optional

        transport = paramiko.Transport((self.host, self.port))
        self._transports.append(transport)
        kwargs.setdefault("username", self.user)
        if "pkey" not in kwargs:
            kwargs.setdefault("password", self.password)
        transport.connect(**kwargs)
        return paramiko.SFTPClient.from_transport(transport)

    def path(self, path: str) -> str:
        """The container's path of ``path`` as the user sees it over SFTP (``/upload/a`` is
        ``/home/USER/upload/a``).

        :raises ValueError: ``..`` in it
        """
        if ".." in path.split("/"):
            raise ValueError(f"pytest-pods: sftp path {path!r}: no '..' (it would leave the chroot)")
        return self.home + "/" + path.lstrip("/")

    def _exec(self, what: str, cmd: Sequence[str], user: str | None = None) -> bytes:
        res = self.container.exec(list(cmd), user=user)
        if res.exit_code != 0:
            text = (res.stderr or res.output).decode(errors="replace").strip()
            raise PodsError(f"sftp {what} on {self.name}: {text or f'exit code {res.exit_code}'}")
        return res.output

    def put(self, path: str, data: bytes | str) -> None:
        """Write ``data`` to ``path`` (as the user sees it) as the user, by exec in the container:
        as if uploaded, without a client library.

        :raises PodsError: the user may not write there (``/`` is root's), or no such directory
        """
        raw = data.encode() if isinstance(data, str) else data
        target = self.path(path)
        for i in range(0, max(len(raw), 1), _CHUNK):
            chunk = base64.b64encode(raw[i:i + _CHUNK]).decode()
            self._exec(f"put {path}", ["sh", "-c", f'printf %s "$1" | base64 -d {">" if i == 0 else ">>"} "$2"',
                                       "sh", chunk, target], user=self.user)

    def get(self, path: str) -> bytes:
        """The content of ``path`` (as the user sees it), read as the user by exec in the container.

        :raises PodsError: no such file, or the user may not read it
        """
        return self._exec(f"get {path}", ["cat", "--", self.path(path)], user=self.user)

    def listdir(self, path: str = "/") -> list[str]:
        """The names in directory ``path`` (as the user sees it), sorted; by exec in the container."""
        out = self._exec(f"listdir {path}", ["ls", "-A1", "--", self.path(path)], user=self.user)
        return sorted(out.decode().splitlines())

    def close(self) -> None:
        """Close the clients ``client()`` opened."""
        for transport in self._transports:
            transport.close()
        self._transports.clear()

    def __repr__(self) -> str:
        return f"<Sftp {self.name} {self.url}>"


def parse_user(spec: str) -> tuple[str, str | None, tuple[str, ...]]:
    """``user:pass[:e][:uid[:gid[:dir1[,dir2]...]]]`` (atmoz/sftp's form): the user, its password
    (None when encrypted) and its directories.

    :raises ValueError: not of that form, with what is wrong
    """
    fields = spec.split(":")
    if len(fields) < 2:
        raise ValueError(f"pytest-pods: sftp user {spec!r}: give user:pass[:e][:uid[:gid[:dir1[,dir2]...]]]")
    user, password, rest = fields[0], fields[1], fields[2:]
    encrypted = bool(rest) and rest[0] == "e"
    rest = rest[1:] if encrypted else rest
    if not _USER.fullmatch(user) or user == "root":
        raise ValueError(f"pytest-pods: sftp user name {user!r}: lower-case letters, digits, _ . - "
                         "(at most 32, not root)")
    for name, value in zip(("uid", "gid"), rest[:2], strict=False):
        if value and not value.isdigit():
            raise ValueError(f"pytest-pods: sftp user {user!r}: {name} {value!r} is not a number")
    dirs = tuple(d for d in (rest[2] if len(rest) > 2 else "").split(",") if d)
    for d in dirs:
        if d.startswith("/") or ".." in d.split("/"):
            raise ValueError(f"pytest-pods: sftp user {user!r}: dir {d!r} must be relative to its home, "
                             "without '..'")
    return user, None if encrypted else password, dirs


def sftp_container(*, scope: str = "function", image: Any = "{sftp_image}", isolation: str = "container",
                   user: str = "pods", password: str = "pods", dirs: Sequence[str] = ("upload",),
                   command: Sequence[str] | str | None = None, pool: int = 0, **options: Any) -> Any:
    """Declare an SFTP fixture (its value is a :class:`Sftp`).

    :param isolation: ``"container"``: each test (each scope) its own server (``pool`` servers
        started ahead); ``"user"``: one server per session (per xdist worker) and each test a
        fresh user with its own chroot, removed after the test
    :param user: the user (``password``, writable ``dirs`` in its chroot)
    :param command: the users as atmoz/sftp takes them, ``["ann:secret:::upload", ...]``
        (instead of ``user``/``password``/``dirs``); the first is the fixture's user. The
        environment's ``SFTP_USERS`` works as well.
    """
    if isolation not in ISOLATION_LEVELS:
        raise ValueError(f"pytest-pods: isolation={isolation!r}: use one of {', '.join(ISOLATION_LEVELS)}")
    if "warm" in options:
        raise ValueError("pytest-pods: sftp_container(warm=...): users and host keys are made when the server "
                         "starts; put the files in the test or in a fixture (sftp.put)")
    if command is not None:
        specs = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
    else:
        specs = environment_of(options).get("SFTP_USERS", "").split()
    if not specs:
        if not password or any(c in password for c in ": \t\n"):
            raise ValueError(f"pytest-pods: sftp_container(password={password!r}): give a non-empty password "
                             "without ':' or blanks")
        specs = [f"{user}:{password}:::{','.join(dirs)}"]
        if command is None and "SFTP_USERS" not in environment_of(options):
            command = specs
    first, first_password, first_dirs = parse_user(specs[0])
    for spec in specs[1:]:
        parse_user(spec)
    options.setdefault("ports", [Sftp.PORT])
    options.setdefault("wait", wait.all_of(wait.log(READY_LINE), wait.tcp(Sftp.PORT)))
    if isolation == "container":
        return container(image=image, command=command, scope=scope, pool=pool,
                         wrap=lambda c: Sftp(c, first, first_password, first_dirs), **options)
    if pool:
        raise ValueError("pytest-pods: sftp_container(pool=...) needs isolation='container'")
    if first_password is None:
        raise ValueError("pytest-pods: sftp_container(isolation='user') gives each test the first user's "
                         "password: give it in clear, not encrypted (':e')")
    return per_database("sftp", scope, image, options,
                        lambda s, name, img, opts: _UserServer(s, name, img, command, opts, first,
                                                               first_password, first_dirs))


class _UserServer:
    """The shared server of user isolation: each test a fresh user (its chroot, its dirs), removed
    with its files after the test. ``useradd``/``chpasswd`` by exec take 60-150 ms here, so the
    next test's user is made while this test runs, and a used one removed, by one thread."""

    def __init__(self, s: PodsSession, fixture: str, image: str, command: Sequence[str] | str | None,
                 options: dict[str, Any], user: str, password: str, dirs: tuple[str, ...]) -> None:
        opts = {k: v for k, v in options.items() if k != "wait"}
        self._s = s
        self.rec = s.start(f"{fixture} (server)", "session", image, command, wait=options["wait"], options=opts)
        self.server = Sftp(self.rec.container, user, password, dirs)
        self._base = user[:24]
        self._password = password
        self._dirs = dirs
        self._count = itertools.count(1)
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="pods-sftp-users")
        self._next: Future[Sftp] = self._worker.submit(self._make)

    def _make(self) -> Sftp:
        name = f"{self._base}-t{next(self._count)}"
        spec = f"{name}:{self._password}:::{','.join(self._dirs)}"
        self.server._exec(f"add user {name}", ["docker-entrypoint.sh", "add-user", spec])
        return Sftp(self.server.container, name, self._password, self._dirs)

    def fresh(self) -> Sftp:
        ready, self._next = self._next, self._worker.submit(self._make)
        return ready.result()

    def done(self, value: Sftp) -> None:
        value.close()
        # -f: even with a session of the user's still open (its files go with it)
        self._worker.submit(self.server._exec, f"remove user {value.user}",
                            ["sh", "-c", 'userdel -f "$1" 2>/dev/null; rm -rf -- "/home/$1"', "sh", value.user])

    def close(self) -> None:
        self._worker.shutdown(wait=True)
        self._s.release(self.rec)


sftp = sftp_container()
