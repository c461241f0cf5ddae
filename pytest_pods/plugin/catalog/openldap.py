"""OpenLDAP 2.5 (Debian 12's slapd), with the conventions of bitnami/openldap (and osixia/openldap's
when its variables are set), fresh per test (issue 17).

The fixture ``openldap`` gives each test a server of its own, with bitnami's default tree (base
``dc=example,dc=org``, rootDN ``cn=admin,dc=example,dc=org`` with ``adminpassword``, the users
``user01``/``user02`` in ``ou=users`` and the group ``cn=readers,ou=groups``)::

    def test_login(openldap):
        conn = openldap.client()                 # an ldap3 Connection bound as the admin (pip install ldap3)
        conn.search(openldap.base_dn, "(uid=user01)", attributes=["cn"])
        assert [e.dn for e in openldap.search("(uid=user01)")] == [
            "cn=user01,ou=users,dc=example,dc=org"]   # ldapsearch in the container: no library needed

``openldap_container(isolation="database")`` shares one server per session (per xdist worker) and
gives each test a database of its own: an mdb database added at run time through cn=config under
the suffix ``ou=test-<worker>-<n>,<base>``, with its own rootDN ``cn=admin,<suffix>`` (the
server's admin password), made ahead of the tests by a thread and deleted from cn=config (with
its files) after the test. A search of the server's base does not reach into it (no glue), and a
test's admin may write its own database only.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
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

__all__ = ["Entry", "OpenLdap", "openldap", "openldap_container", "openldap_image"]

openldap_image = catalogue_service("openldap", "pytest-pods/openldap:2.5")

#: slapd's line (run with -d: to stderr) once its listeners take connections, as bitnami's and
#: osixia's images log it.
READY_LINE = r"slapd starting"
ISOLATION_LEVELS = ("container", "database")
#: the variables only osixia/openldap has: any of them set selects its contract
OSIXIA_VARS = ("LDAP_DOMAIN", "LDAP_ORGANISATION", "LDAP_BASE_DN", "LDAP_CONFIG_PASSWORD", "LDAP_READONLY_USER",
               "LDAP_TLS", "LDAP_LOG_LEVEL")
OSIXIA_LDIF_DIR = "/container/service/slapd/assets/config/bootstrap/ldif/custom"
_SCOPES = {"base": "base", "one": "one", "sub": "sub", "children": "children", "subtree": "sub", "level": "one"}


@dataclass(frozen=True)
class Entry:
    """One entry of a search: its DN and its attributes (each a list of values, as strings)."""

    dn: str
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> list[str]:
        """The values of attribute ``name`` (any case); ``[]`` when it has none."""
        for key, values in self.attributes.items():
            if key.lower() == name.lower():
                return values
        return []


def parse_ldif(text: str) -> list[Entry]:
    """The entries of LDIF search output (``ldapsearch -LLL``): ``attr: value``, ``attr:: base64``,
    continuation lines that start with a space."""
    entries: list[Entry] = []
    lines: list[str] = []
    for raw in text.splitlines():
        if raw.startswith(" ") and lines:
            lines[-1] += raw[1:]
        else:
            lines.append(raw)
    dn: str | None = None
    attrs: dict[str, list[str]] = {}
    for line in [*lines, ""]:
        if not line.strip():
            if dn is not None:
                entries.append(Entry(dn, attrs))
            dn, attrs = None, {}
            continue
        if line.startswith("#"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(":"):
            value = base64.b64decode(value[1:].strip()).decode("utf-8", "replace")
        else:
            value = value.strip()
        if name.lower() == "dn":
            dn = value
        else:
            attrs.setdefault(name, []).append(value)
    return entries


def ssha(password: str) -> str:
    """``{SSHA}`` of ``password``, as slappasswd makes it (SHA-1 of the password and a salt)."""
    salt = os.urandom(8)
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode()


class OpenLdap(Service):
    """A running OpenLDAP server: LDAP on ``port`` (1389, bitnami's; 389 too, osixia's), the
    directory under ``base_dn``, administered by ``admin_dn`` with ``admin_password``.

    ``url`` (``ldap://host:port``) from the host, ``network_url`` from another container on its
    network; ``client()`` is an ldap3 ``Connection`` bound as the admin; ``search()`` and ``add()``
    run ``ldapsearch``/``ldapmodify`` in the container (no client library needed).
    """

    PORT = 1389

    def __init__(self, container: ContainerAPI, *, base_dn: str, admin_dn: str, admin_password: str,
                 port: int | None = None, database: str | None = None) -> None:
        super().__init__(container, port)
        self.base_dn, self.admin_dn, self.admin_password = base_dn, admin_dn, admin_password
        self.database = database  # the test's database (its suffix's ou) in database isolation
        self._clients: list[Any] = []

    @property
    def password(self) -> str:
        """The admin's password (``admin_password``)."""
        return self.admin_password

    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    @property
    def network_url(self) -> str:
        return f"ldap://{self.network_host}:{self.network_port}"

    def client(self, user: str | None = None, password: str | None = None, **kwargs: Any) -> Any:
        """An ldap3 ``Connection`` bound as ``user`` (default: the admin) with ``password``;
        needs ``pip install ldap3``. ``kwargs`` go to ``Connection`` (``auto_referrals=``,
        ``read_only=``, ...). Its connection is closed after the test in database isolation.

        :raises ldap3.core.exceptions.LDAPBindError: the server refused the bind
        """
        import ldap3  # type: ignore[import-untyped]  # lazy: optional (pip install ldap3)

        server = ldap3.Server(self.host, port=self.port, get_info=ldap3.NONE, connect_timeout=10)
        kwargs.setdefault("auto_bind", ldap3.AUTO_BIND_NO_TLS)
        kwargs.setdefault("receive_timeout", 30)
        conn = ldap3.Connection(server, user=user or self.admin_dn,
                                password=self.admin_password if password is None and user is None else password,
                                **kwargs)
        self._clients.append(conn)
        return conn

    def _ldap(self, what: str, cmd: Sequence[str], stdin: str | None = None, ok: Sequence[int] = (0,)) -> str:
        """Run an ldap-utils command in the container, bound as the admin over ldapi:///."""
        auth = ["-x", "-H", "ldapi:///", "-D", self.admin_dn, "-w", self.admin_password]
        if stdin is None:
            argv = [cmd[0], *auth, *cmd[1:]]
        else:
            argv = ["sh", "-c", 'in=$1; shift; printf %s "$in" | "$@"', "sh", stdin, cmd[0], *auth, *cmd[1:]]
        res = self.container.exec(argv)
        if res.exit_code not in ok:
            text = (res.stderr or res.output).decode(errors="replace").strip()
            raise PodsError(f"openldap {what} on {self.name}: {text or f'exit code {res.exit_code}'}")
        return res.output.decode("utf-8", "replace")

    def search(self, filter: str = "(objectClass=*)", base: str | None = None, scope: str = "sub",
               attributes: Sequence[str] = ()) -> list[Entry]:
        """The entries under ``base`` (default ``base_dn``) that match ``filter``, by ``ldapsearch``
        in the container, bound as the admin; ``scope`` is ``base``, ``one``, ``sub`` or
        ``children``; ``attributes`` (default: all user attributes).

        :raises ValueError: an unknown scope
        :raises PodsError: the server's answer (a bad filter, no such base)
        """
        if scope not in _SCOPES:
            raise ValueError(f"pytest-pods: openldap search scope {scope!r}: use base, one, sub or children")
        out = self._ldap(f"search {filter!r}", ["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", self.base_dn if base is None else base,
                                                "-s", _SCOPES[scope], filter, *attributes])
        return parse_ldif(out)

    def add(self, ldif: str) -> None:
        """Apply ``ldif`` as the admin (``ldapmodify -a``): entries to add, and ``changetype:``
        records (modify, delete, modrdn) as they say.

        :raises PodsError: the server refused a record (its message names it)
        """
        self._ldap("add", ["ldapmodify", "-a"], stdin=ldif)

    def close(self) -> None:
        """Unbind the connections ``client()`` opened."""
        if not self._clients:
            return
        from ldap3.core.exceptions import LDAPException  # type: ignore[import-untyped]  # lazy: optional

        for conn in self._clients:
            try:
                conn.unbind()
            except (LDAPException, OSError):  # closed by the server already: nothing to release
                pass
        self._clients.clear()

    def __repr__(self) -> str:
        return f"<OpenLdap {self.name} {self.url} {self.base_dn}>"


def _mount_targets(options: Mapping[str, Any]) -> list[str]:
    vols = options.get("volumes") or []
    if isinstance(vols, Mapping):
        return [str(v.get("bind", "")) if isinstance(v, Mapping) else str(v) for v in vols.values()]
    if isinstance(vols, str):
        vols = [vols]
    return [str(v).split(":")[1] if ":" in str(v) else str(v) for v in vols]


def contract(options: dict[str, Any]) -> dict[str, Any]:
    """The base DN, rootDN, its password (None: in a file, read at start) and the port that the
    environment asks for, as the recipe's entrypoint reads them: osixia/openldap's variables
    when one of its own is set (or its custom LDIF directory is mounted), else bitnami's."""
    env = environment_of(options)
    osixia = any(v in env for v in OSIXIA_VARS) or any(t.startswith(OSIXIA_LDIF_DIR) for t in _mount_targets(options))
    secret_file = env.get("LDAP_ADMIN_PASSWORD_FILE") or None
    if osixia:
        domain = env.get("LDAP_DOMAIN") or "example.org"
        base = env.get("LDAP_BASE_DN") or ",".join(f"dc={part}" for part in domain.split("."))
        admin, password = f"cn=admin,{base}", env.get("LDAP_ADMIN_PASSWORD") or "admin"
    else:
        base = env.get("LDAP_ROOT") or "dc=example,dc=org"
        admin = f"cn={env.get('LDAP_ADMIN_USERNAME') or 'admin'},{base}"
        password = env.get("LDAP_ADMIN_PASSWORD") or "adminpassword"
    port = env.get("LDAP_PORT_NUMBER") or "1389"
    if not port.isdigit():
        raise ValueError(f"pytest-pods: openldap_container: LDAP_PORT_NUMBER={port!r} is not a port number")
    return {"base_dn": base, "admin_dn": admin, "admin_password": None if secret_file else password,
            "secret_file": secret_file, "port": int(port), "osixia": osixia}


def _wrap(identity: Mapping[str, Any]) -> Any:
    def wrap(c: ContainerAPI) -> OpenLdap:
        password = identity["admin_password"]
        if password is None:  # LDAP_ADMIN_PASSWORD_FILE: the file the entrypoint read
            password = c.read_file(identity["secret_file"]).decode().rstrip("\n")
        return OpenLdap(c, base_dn=identity["base_dn"], admin_dn=identity["admin_dn"], admin_password=password,
                        port=identity["port"])

    return wrap


def openldap_container(*, scope: str = "function", image: Any = "{openldap_image}", isolation: str = "container",
                       warm: Any = None, command: Sequence[str] | str | None = None, pool: int = 0,
                       **options: Any) -> Any:
    """Declare an OpenLDAP fixture (its value is an :class:`OpenLdap`).

    :param isolation: ``"container"``: each test (each scope) its own server (from the warm
        snapshot when ``warm`` is given; ``pool`` servers started ahead); ``"database"``: one
        server per session (per xdist worker) and each test an mdb database of its own, under
        the suffix ``ou=test-<worker>-<n>,<base>`` with its own rootDN
    :param warm: ``warm(ldap)`` loads entries once per session (``ldap.add(LDIF)``, a client's
        adds); every server of the fixture starts from that snapshot
    :param command: extra slapd flags (``["-4"]``), as the images pass them on
    :param options: the images' variables in ``environment`` (``LDAP_ROOT``,
        ``LDAP_ADMIN_PASSWORD``, ``LDAP_USERS``, ...; or osixia's ``LDAP_DOMAIN``, ...),
        ``volumes`` (``/ldifs``, ``/schemas``), ``network``, ...
    """
    if isolation not in ISOLATION_LEVELS:
        raise ValueError(f"pytest-pods: isolation={isolation!r}: use one of {', '.join(ISOLATION_LEVELS)}")
    identity = contract(options)
    env = environment_of(options)
    if env.get("LDAP_ENABLE_TLS", "no").lower() in ("yes", "true", "1"):
        raise ValueError("pytest-pods: openldap_container: LDAP_ENABLE_TLS=yes: the recipe has no TLS (ldaps or "
                         "StartTLS); test over plain LDAP")
    port = identity["port"]
    options.setdefault("ports", [port] if port == 389 else [port, 389])
    # LDAP_LOGLEVEL=0 (osixia: LDAP_LOG_LEVEL): slapd -d 0 logs nothing, not even its ready line
    level = env.get("LDAP_LOG_LEVEL" if identity["osixia"] else "LDAP_LOGLEVEL", "256").strip()
    options.setdefault("wait", wait.tcp(port) if level == "0" else wait.all_of(wait.log(READY_LINE), wait.tcp(port)))
    if isolation == "container":
        return container(image=image, command=command, scope=scope, wrap=_wrap(identity), warm=warm, pool=pool,
                         **options)
    if warm is not None or pool:
        raise ValueError("pytest-pods: openldap_container(warm=/pool=) needs isolation='container' (in database "
                         "isolation each test's database starts empty but for its base entry: add entries in "
                         "the test or a fixture)")
    return per_database("openldap", scope, image, options,
                        lambda s, name, img, opts: _DatabaseServer(s, name, img, command, opts, identity))


#: where the test databases' files live in the container
_TEST_DATA = "/var/lib/ldap/tests"
#: one exec: delete the databases of ended tests (their suffixes, one a line: the entry of each is
#: looked up, as deletes renumber the others) with their files, then add new ones
_BATCH = r"""set -e
drops=$1; dirs=$2; conf=$3; shift 3
printf '%s\n' "$drops" | while IFS= read -r s; do
    [ -n "$s" ] || continue
    found=$(ldapsearch -Q -Y EXTERNAL -H ldapi:/// -LLL -o ldif-wrap=no -b cn=config "(olcSuffix=$s)" olcDbDirectory)
    dn=$(printf '%s\n' "$found" | sed -n 's/^dn: //p')
    dir=$(printf '%s\n' "$found" | sed -n 's/^olcDbDirectory: //p')
    [ -z "$dn" ] || ldapdelete -Q -Y EXTERNAL -H ldapi:/// "$dn"
    case "$dir" in """ + _TEST_DATA + r"""/*) rm -rf -- "$dir" ;; esac
done
for d in $dirs; do install -d -o openldap -g openldap -m 0700 "$d"; done
[ -z "$conf" ] || printf %s "$conf" | ldapadd -Q -Y EXTERNAL -H ldapi:/// >/dev/null
while [ "$#" -gt 0 ]; do
    printf %s "$3" | ldapadd -x -H ldapi:/// -D "$1" -w "$2" >/dev/null
    shift 3
done
"""


class _DatabaseServer:
    """The shared server of database isolation: each test an mdb database of its own, added
    through cn=config (inserted before the server's own database, which would otherwise serve the
    suffix under its base), ``AHEAD`` at a time by one exec in a thread; the databases of ended
    tests are deleted from cn=config with their files by the same thread, a batch of them per
    exec, so that a test never waits behind another's clean-up."""

    AHEAD = 16

    def __init__(self, s: PodsSession, fixture: str, image: str, command: Sequence[str] | str | None,
                 options: dict[str, Any], identity: Mapping[str, Any]) -> None:
        opts = {k: v for k, v in options.items() if k != "wait"}
        self._s = s
        self.rec = s.start(f"{fixture} (server)", "session", image, command, wait=options["wait"], options=opts)
        self.server: OpenLdap = _wrap(identity)(self.rec.container)
        self._count = 0
        self._ready: collections.deque[str] = collections.deque()
        self._ended: list[str] = []  # suffixes of the databases of ended tests, to delete
        self._lock = threading.Lock()
        self._dropping = False
        self._access = self._main_access()
        self._ended += self._left()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="pods-openldap-databases")
        self._pending: Future[None] | None = self._worker.submit(self._batch, self.AHEAD)

    def _exec(self, what: str, argv: Sequence[str]) -> str:
        res = self.rec.container.exec(list(argv))
        if res.exit_code != 0:
            text = (res.stderr or res.output).decode(errors="replace").strip()
            raise PodsError(f"openldap {what} on {self.rec.container.name}: {text or f'exit code {res.exit_code}'}")
        return res.output.decode("utf-8", "replace")

    def _config_search(self, filter: str, *attrs: str) -> list[Entry]:
        return parse_ldif(self._exec("cn=config search", ["ldapsearch", "-Q", "-Y", "EXTERNAL", "-H", "ldapi:///",
                                                          "-LLL", "-o", "ldif-wrap=no", "-b", "cn=config", filter,
                                                          *attrs]))

    def _main_access(self) -> list[str]:
        """The access rules of the server's own database (osixia's contract has some), for the
        test databases, the server's admin replaced by the test's."""
        found = self._config_search(f"(olcSuffix={self.server.base_dn})", "olcAccess")
        rules = found[0]["olcAccess"] if found else []
        return [r.split("}", 1)[1] if r.startswith("{") else r for r in rules]

    def _left(self) -> list[str]:
        """The test databases an earlier session left on a server it reused (``--pods-reuse``)."""
        suffix = f",{self.server.base_dn}".lower()
        return [e["olcSuffix"][0] for e in self._config_search("(olcDbDirectory=*)", "olcSuffix", "olcDbDirectory")
                if e["olcDbDirectory"] and e["olcDbDirectory"][0].startswith(_TEST_DATA + "/")
                and e["olcSuffix"] and e["olcSuffix"][0].lower().endswith(suffix)]

    def _suffix(self, name: str) -> str:
        return f"ou={name},{self.server.base_dn}"

    def _batch(self, n: int) -> None:
        """Delete the ended tests' databases, then add ``n`` new ones: one exec."""
        with self._lock:
            drops, self._ended = self._ended, []
            self._dropping = False
        if not drops and not n:
            return
        names = []
        for _ in range(n):
            self._count += 1
            names.append(f"test-{self._s.worker}-{self._count}")
        password = self.server.admin_password
        conf, args = [], []
        for name in names:
            suffix = self._suffix(name)
            admin = f"cn=admin,{suffix}"
            rules = "".join(f"olcAccess: {{{i}}}{r.replace(self.server.admin_dn, admin)}\n"
                            for i, r in enumerate(self._access))
            # {1}: before the server's own database, whose suffix is this one's parent
            conf.append(f"dn: olcDatabase={{1}}mdb,cn=config\nobjectClass: olcDatabaseConfig\n"
                        f"objectClass: olcMdbConfig\nolcDatabase: {{1}}mdb\nolcDbDirectory: {_TEST_DATA}/{name}\n"
                        f"olcSuffix: {suffix}\nolcRootDN: {admin}\nolcRootPW: {ssha(password)}\n"
                        f"olcDbMaxSize: 268435456\nolcDbNoSync: TRUE\nolcDbIndex: objectClass eq\n{rules}\n")
            args += [admin, password, f"dn: {suffix}\nobjectClass: organizationalUnit\nou: {name}\n"]
        self._exec("test databases", ["sh", "-c", _BATCH, "sh", "\n".join(drops),
                                      " ".join(f"{_TEST_DATA}/{n}" for n in names), "".join(conf), *args])
        self._ready.extend(names)

    def fresh(self) -> OpenLdap:
        with self._lock:
            pending = self._pending
        if not self._ready and pending is not None:
            pending.result()  # the batch on its way (its error, if it failed)
        if not self._ready:
            self._worker.submit(self._batch, self.AHEAD).result()
        name = self._ready.popleft()
        with self._lock:
            if len(self._ready) < self.AHEAD // 2 and (self._pending is None or self._pending.done()):
                if self._pending is not None and self._pending.exception() is not None:
                    raise PodsError(f"openldap test databases: {self._pending.exception()}")
                self._pending = self._worker.submit(self._batch, self.AHEAD)
        suffix = self._suffix(name)
        return OpenLdap(self.rec.container, base_dn=suffix, admin_dn=f"cn=admin,{suffix}",
                        admin_password=self.server.admin_password, port=self.server.container_port, database=name)

    def done(self, value: OpenLdap) -> None:
        value.close()
        with self._lock:
            self._ended.append(value.base_dn)
            if self._dropping:
                return  # a batch is queued: it takes this one too
            self._dropping = True
        self._worker.submit(self._batch, 0)

    def close(self) -> None:
        # the databases left go with the server's container
        self._worker.shutdown(wait=True)
        self._s.release(self.rec)


openldap = openldap_container()
