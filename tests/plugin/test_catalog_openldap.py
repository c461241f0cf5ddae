"""The OpenLDAP service of the catalogue (issue 17): Debian 12's slapd 2.5 with bitnami/openldap's
contract (and osixia/openldap's), reached with ldap3 and with ldapsearch, a server per test or a
database per test, reached by name, warm and pooled, leaving nothing."""

from __future__ import annotations

from typing import Any

import pytest

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)

TESTS = '''
import os
import time
import ldap3
import pytest
from ldap3.core.exceptions import LDAPBindError
from pytest_pods import network
from pytest_pods.errors import PodsError
from pytest_pods.plugin.catalog.openldap import openldap_container

HERE = os.path.dirname(os.path.abspath(__file__))
net = network(scope="module")
acme = openldap_container(network=net, environment={
    "LDAP_ROOT": "dc=acme,dc=test", "LDAP_ADMIN_USERNAME": "boss", "LDAP_ADMIN_PASSWORD": "s3cret",
    "LDAP_USERS": "ann,bob", "LDAP_PASSWORDS": "pa:1,pb-2", "LDAP_USER_DC": "people", "LDAP_GROUP": "staff",
    "LDAP_PORT_NUMBER": "2389", "LDAP_ALLOW_ANON_BINDING": "no"})
custom = openldap_container(environment={"LDAP_ROOT": "o=shop", "LDAP_ADMIN_PASSWORD_FILE": "/run/secrets/admin"},
                            volumes=[f"{HERE}/ldifs:/ldifs:ro", f"{HERE}/schemas:/schemas:ro",
                                     f"{HERE}/secrets:/run/secrets:ro"])
osixia = openldap_container(environment={"LDAP_DOMAIN": "corp.example.com", "LDAP_ORGANISATION": "Corp",
                                         "LDAP_ADMIN_PASSWORD": "pw", "LDAP_READONLY_USER": "true"})
per_db = openldap_container(isolation="database")

def seed(ldap):
    ldap.add("dn: cn=seeded,ou=users,dc=example,dc=org\\nobjectClass: organizationalRole\\ncn: seeded\\n")

warmed = openldap_container(warm=seed)
pooled = openldap_container(pool=1, environment={"LDAP_LOGLEVEL": "0"})  # silent: ready on the port

def test_bitnamis_defaults_with_ldap3_and_ldapsearch(openldap):
    assert (openldap.base_dn, openldap.admin_dn, openldap.admin_password) == (
        "dc=example,dc=org", "cn=admin,dc=example,dc=org", "adminpassword")
    assert openldap.url == f"ldap://127.0.0.1:{openldap.port}"
    c = openldap.client()
    assert c.bound and c.extend.standard.who_am_i() == "dn:cn=admin,dc=example,dc=org"
    c.search("ou=users,dc=example,dc=org", "(objectClass=inetOrgPerson)", attributes=["uid", "uidNumber"])
    assert sorted((e.uid.value, e.uidNumber.value) for e in c.entries) == [("user01", "1000"), ("user02", "1001")]
    assert c.add("cn=new,ou=users,dc=example,dc=org", ["inetOrgPerson"], {"cn": "new", "sn": "New", "mail": "new@example.org"})
    # the same server without a client library: ldapsearch in the container
    found = openldap.search("(mail=new@example.org)", attributes=["sn"])
    assert [(e.dn, e["sn"]) for e in found] == [("cn=new,ou=users,dc=example,dc=org", ["New"])]
    [group] = openldap.search("(cn=readers)")
    assert group.dn == "cn=readers,ou=groups,dc=example,dc=org"
    assert group["member"] == ["cn=user01,ou=users,dc=example,dc=org", "cn=user02,ou=users,dc=example,dc=org"]
    # the default users log in with their passwords; anonymous reads are allowed (bitnami's default)
    user = openldap.client("cn=user01,ou=users,dc=example,dc=org", "bitnami1")
    assert user.extend.standard.who_am_i() == "dn:cn=user01,ou=users,dc=example,dc=org"
    with pytest.raises(LDAPBindError):
        openldap.client("cn=user01,ou=users,dc=example,dc=org", "wrong")
    anon = ldap3.Connection(ldap3.Server("127.0.0.1", port=openldap.port), auto_bind=True)
    assert anon.search("dc=example,dc=org", "(uid=user02)") and len(anon.entries) == 1
    # osixia's port 389 serves the same directory; the log says ready as bitnami's and osixia's do
    host, port = openldap.address(389)
    other = ldap3.Connection(ldap3.Server(host, port=port), "cn=admin,dc=example,dc=org", "adminpassword",
                             auto_bind=True)
    assert other.search("dc=example,dc=org", "(cn=new)") and len(other.entries) == 1
    assert openldap.logs().count("slapd starting") == 1
    with pytest.raises(PodsError, match="Bad search filter"):
        openldap.search("(((")

def test_bitnamis_variables_take_effect_and_reached_by_name(acme, pods, net):
    assert (acme.base_dn, acme.admin_dn, acme.container_port) == ("dc=acme,dc=test", "cn=boss,dc=acme,dc=test", 2389)
    c = acme.client()
    c.search("dc=acme,dc=test", "(objectClass=*)", attributes=["member"])
    dns = {e.entry_dn: e for e in c.entries}
    assert set(dns) == {"dc=acme,dc=test", "ou=people,dc=acme,dc=test", "cn=ann,ou=people,dc=acme,dc=test",
                        "cn=bob,ou=people,dc=acme,dc=test", "cn=staff,ou=people,dc=acme,dc=test"}
    assert dns["cn=staff,ou=people,dc=acme,dc=test"].member.values == [
        "cn=ann,ou=people,dc=acme,dc=test", "cn=bob,ou=people,dc=acme,dc=test"]
    assert acme.client("cn=bob,ou=people,dc=acme,dc=test", "pb-2").bound
    with pytest.raises(LDAPBindError):
        acme.client("cn=boss,dc=acme,dc=test", "adminpassword")
    # LDAP_ALLOW_ANON_BINDING=no: an anonymous search is refused
    with pytest.raises(LDAPBindError, match="inappropriateAuthentication"):
        ldap3.Connection(ldap3.Server("127.0.0.1", port=acme.port), auto_bind=True)
    # from another container on the user network, by name, with the image's own ldapsearch
    assert acme.network_url == f"ldap://{acme.name}:2389"
    box = pods.run("pytest-pods/openldap:2.5", ["sleep", "60"], network=net)
    res = box.exec(["ldapsearch", "-x", "-LLL", "-H", acme.network_url, "-D", acme.admin_dn, "-w", "s3cret",
                    "-b", "dc=acme,dc=test", "(uid=ann)", "dn"])
    assert res.exit_code == 0 and res.output.decode().strip() == "dn: cn=ann,ou=people,dc=acme,dc=test", res

def test_custom_ldifs_and_schemas_replace_the_default_tree(custom):
    assert (custom.base_dn, custom.admin_password) == ("o=shop", "from a file")  # LDAP_ADMIN_PASSWORD_FILE
    dns = sorted(e.dn for e in custom.search())
    assert dns == ["cn=till,ou=staff,o=shop", "o=shop", "ou=staff,o=shop"]  # no user01: the LDIFs' tree only
    [till] = custom.search("(shopRole=cashier)", attributes=["shopRole"])  # the custom schema's attribute
    assert till["shopRole"] == ["cashier"]
    c = custom.client()
    assert c.modify("cn=till,ou=staff,o=shop", {"shopRole": [(ldap3.MODIFY_REPLACE, ["manager"])]})
    assert custom.search("(shopRole=manager)")[0].dn == "cn=till,ou=staff,o=shop"

def test_osixias_variables_take_effect(osixia):
    assert (osixia.base_dn, osixia.admin_dn, osixia.admin_password) == (
        "dc=corp,dc=example,dc=com", "cn=admin,dc=corp,dc=example,dc=com", "pw")
    [base] = osixia.search(scope="base", attributes=["o", "objectClass"])
    assert base["o"] == ["Corp"] and "dcObject" in base["objectClass"]
    osixia.add("dn: cn=ann,dc=corp,dc=example,dc=com\\nobjectClass: inetOrgPerson\\ncn: ann\\nsn: A\\n"
               "userPassword: annpw\\n\\n"
               "dn: cn=admins,dc=corp,dc=example,dc=com\\nobjectClass: groupOfUniqueNames\\ncn: admins\\n"
               "uniqueMember: cn=ann,dc=corp,dc=example,dc=com\\n")
    # osixia's memberOf overlay
    [ann] = osixia.search("(cn=ann)", attributes=["memberOf"])
    assert ann["memberOf"] == ["cn=admins,dc=corp,dc=example,dc=com"]
    # osixia's port, 389, and its access rules: anonymous reads nothing, a user reads itself
    host, port = osixia.address(389)
    anon = ldap3.Connection(ldap3.Server(host, port=port), auto_bind=True)
    anon.search("dc=corp,dc=example,dc=com", "(objectClass=*)")
    assert anon.entries == []
    me = osixia.client("cn=ann,dc=corp,dc=example,dc=com", "annpw")
    assert me.search("cn=ann,dc=corp,dc=example,dc=com", "(objectClass=*)", attributes=["sn"])
    assert [e.entry_dn for e in me.entries] == ["cn=ann,dc=corp,dc=example,dc=com"]
    me.search("cn=admins,dc=corp,dc=example,dc=com", "(objectClass=*)")
    assert me.entries == []
    # LDAP_READONLY_USER: cn=readonly (password readonly) reads everything, writes nothing
    ro = osixia.client("cn=readonly,dc=corp,dc=example,dc=com", "readonly")
    ro.search("dc=corp,dc=example,dc=com", "(objectClass=*)")
    assert {"cn=ann,dc=corp,dc=example,dc=com", "cn=admins,dc=corp,dc=example,dc=com"} <= {e.entry_dn for e in ro.entries}
    assert not ro.delete("cn=ann,dc=corp,dc=example,dc=com")
    cfg = osixia.container.exec(["ldapwhoami", "-x", "-H", "ldapi:///", "-D", "cn=admin,cn=config", "-w", "config"])
    assert cfg.output.strip() == b"dn:cn=admin,cn=config", cfg

@pytest.mark.parametrize("n", [1, 2])
def test_each_test_a_database_of_its_own(per_db, n):
    assert per_db.base_dn == f"ou={per_db.database},dc=example,dc=org" and per_db.database.startswith("test-")
    assert per_db.admin_dn == f"cn=admin,{per_db.base_dn}"
    c = per_db.client()
    assert [e.dn for e in per_db.search()] == [per_db.base_dn]  # the other test's entry is not here
    assert c.add(f"cn=same,{per_db.base_dn}", ["organizationalRole"], {"cn": "same", "description": str(n)})
    assert [e["description"] for e in per_db.search("(cn=same)")] == [[str(n)]]
    # the server's own tree is not reached from the test's database, nor written by its admin
    c.search("dc=example,dc=org", "(cn=same)")
    assert c.entries == []
    assert not c.add("cn=intruder,ou=users,dc=example,dc=org", ["organizationalRole"], {"cn": "intruder"})
    assert c.result["description"] == "insufficientAccessRights"
    contexts = per_db.search(base="", scope="base", attributes=["namingContexts"])[0]["namingContexts"]
    assert per_db.base_dn in contexts and "dc=example,dc=org" in contexts
    if n == 2:  # the first test's database is deleted from cn=config (by the fixture's thread)
        first = per_db.base_dn.replace(f"-{per_db.database.rsplit('-', 1)[1]},", "-1,")
        deadline = time.monotonic() + 10
        while first in per_db.search(base="", scope="base", attributes=["namingContexts"])[0]["namingContexts"]:
            assert time.monotonic() < deadline, first
            time.sleep(0.05)

def test_warm_snapshot_keeps_the_entries(warmed):
    assert [e.dn for e in warmed.search("(cn=seeded)")] == ["cn=seeded,ou=users,dc=example,dc=org"]
    assert warmed.client().search("dc=example,dc=org", "(uid=user01)")

def test_pooled_and_silent(pooled):
    assert pooled.client().extend.standard.who_am_i() == "dn:cn=admin,dc=example,dc=org"
    assert "slapd starting" not in pooled.logs()
'''

SHOP_LDIF = """dn: o=shop
objectClass: organization
o: shop

dn: ou=staff,o=shop
objectClass: organizationalUnit
ou: staff

dn: cn=till,ou=staff,o=shop
objectClass: shopPerson
cn: till
sn: Till
shopRole: cashier
"""

SHOP_SCHEMA = """dn: cn=shop,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: shop
olcAttributeTypes: ( 1.3.6.1.4.1.99999.1.1 NAME 'shopRole' EQUALITY caseIgnoreMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
olcObjectClasses: ( 1.3.6.1.4.1.99999.2.1 NAME 'shopPerson' SUP inetOrgPerson STRUCTURAL
  MAY shopRole )
"""


def test_openldap_contracts_database_isolation_warm_pool_and_network(inner: Inner) -> None:
    if inner.kind != "local":
        pytest.skip("one engine is enough for the server's own behaviour (the image build is the slow part)")
    pytest.importorskip("ldap3")
    (inner.pytester.path / "ldifs").mkdir()
    (inner.pytester.path / "ldifs" / "10-shop.ldif").write_text(SHOP_LDIF)
    (inner.pytester.path / "schemas").mkdir()
    (inner.pytester.path / "schemas" / "shop.ldif").write_text(SHOP_SCHEMA)
    (inner.pytester.path / "secrets").mkdir()
    (inner.pytester.path / "secrets" / "admin").write_text("from a file\n")
    inner.pytester.makepyfile(test_ldap=TESTS)
    result, sid = inner.run("-v", subprocess=True, timeout=600)
    result.assert_outcomes(passed=8)
    assert inner.left(sid) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"isolation": "vhost"}, "isolation='vhost': use one of container, database"),
    ({"isolation": "database", "pool": 2}, r"warm=/pool=\) needs isolation='container'"),
    ({"isolation": "database", "warm": print}, r"warm=/pool=\) needs isolation='container'"),
    ({"environment": {"LDAP_ENABLE_TLS": "yes"}}, "the recipe has no TLS"),
    ({"environment": {"LDAP_PORT_NUMBER": "ldap"}}, "LDAP_PORT_NUMBER='ldap' is not a port number"),
])
def test_openldap_container_refuses_what_it_cannot_do_by_name(kwargs: dict[str, Any], message: str) -> None:
    from pytest_pods.plugin.catalog.openldap import openldap_container

    with pytest.raises(ValueError, match=message):
        openldap_container(**kwargs)


@pytest.mark.parametrize(("environment", "expected"), [
    ({}, ("dc=example,dc=org", "cn=admin,dc=example,dc=org", "adminpassword", 1389)),
    ({"LDAP_ROOT": "dc=a,dc=b", "LDAP_ADMIN_USERNAME": "root", "LDAP_ADMIN_PASSWORD": "x", "LDAP_PORT_NUMBER": "3389"},
     ("dc=a,dc=b", "cn=root,dc=a,dc=b", "x", 3389)),
    ({"LDAP_DOMAIN": "corp.example.com"}, ("dc=corp,dc=example,dc=com", "cn=admin,dc=corp,dc=example,dc=com", "admin",
                                           1389)),
    ({"LDAP_BASE_DN": "o=corp", "LDAP_ADMIN_PASSWORD": "y"}, ("o=corp", "cn=admin,o=corp", "y", 1389)),
])
def test_the_contract_reads_the_images_variables(environment: dict[str, str], expected: tuple[Any, ...]) -> None:
    from pytest_pods.plugin.catalog.openldap import contract

    found = contract({"environment": environment})
    assert (found["base_dn"], found["admin_dn"], found["admin_password"], found["port"]) == expected


@pytest.mark.parametrize(("name", "served"), [
    ("bitnami/openldap", True), ("bitnami/openldap:2.6", True), ("docker.io/bitnami/openldap:2.5", True),
    ("osixia/openldap:1.5.0", True), ("osixia/openldap", True),
    ("bitnami/openldap:2.6.8-debian-12-r5", False), ("osixia/openldap:1.2.0", False), ("openldap", False),
])
def test_the_official_preset_serves_the_openldap_images_names(name: str, served: bool) -> None:
    from pytest_pods.client.aliases import ImageAliases

    found = ImageAliases.parse(["official"]).target(name)
    assert found == (("pytest-pods/openldap:2.5", False) if served else None)
